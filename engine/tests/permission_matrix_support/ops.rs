//! The operations of the matrix and what each needs: every `Mutation` variant and every DDL
//! kind, plus the `_as` helpers and the caller-bearing reads, each at a home place and at
//! places that differ from it in one coordinate (table, scope, project, key prefix); built
//! by `writes`, `reads` and `ddl_ops`.

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::commit::validation::Mutation;
use aedb::query::plan::Query;
use aedb::Permission;

pub use super::ddl_ops::delegated;
use super::ddl_ops::{delegation_ops, drop_ops, schema_ops, transfer_ops};
use super::kinds::kind_of;
use super::model::Need;
use super::reads::read_ops;
use super::writes::{accumulator_ops, event_ops, kv_ops, table_ops};

pub const PROJECTS: [&str; 2] = ["p0", "p1"];
pub const SCOPES: [&str; 2] = ["s0", "s1"];
pub const TABLES: [&str; 2] = ["t0", "t1"];
/// Home, other table, other scope, other project.
pub const TABLE_PLACES: [(&str, &str, &str); 4] = [
    ("p0", "s0", "t0"),
    ("p0", "s0", "t1"),
    ("p0", "s1", "t0"),
    ("p1", "s0", "t0"),
];
/// Home (keys under "ab"); keys only a grant prefix "a" matches; keys no "a" grant matches;
/// other scope; other project.
pub const KV_PLACES: [(&str, &str, &str); 5] = [
    ("p0", "s0", "ab"),
    ("p0", "s0", "a_"),
    ("p0", "s0", "b"),
    ("p0", "s1", "ab"),
    ("p1", "s0", "ab"),
];
/// Home, other scope, other project (DDL needs are per project, but a scope must not matter).
pub const SCOPE_PLACES: [(&str, &str); 3] = [("p0", "s0"), ("p0", "s1"), ("p1", "s0")];
/// The table with a read policy: callers without `PolicyBypass` see only rows with an id up
/// to `POLICY_MAX_ID` (the seeded ones, not those the operations insert). Not joined by the
/// matrix's joins.
pub const POLICED: (&str, &str, &str) = ("p1", "s0", "t0");
pub const POLICY_MAX_ID: i64 = 100;
/// Rows every table starts with; row i is the target of the i-th keyed write below.
pub const SEEDED_ROWS: i64 = 6;

/// How a mutation reaches the engine with a caller.
#[derive(Debug, Clone, Copy)]
pub enum Path {
    CommitAs,
    CommitAsDurable,
    Envelope,
}

/// How a query reaches the engine with a caller.
#[derive(Debug, Clone, Copy)]
pub enum QueryPath {
    WithOptions,
    ReadTx,
    Explain,
}

/// A project and a scope.
pub type Place = (String, String);

#[derive(Debug, Clone)]
pub enum Action {
    Commit(Box<Mutation>, Path),
    KvSetAs {
        place: Place,
        key: Vec<u8>,
    },
    KvDelAs {
        place: Place,
        key: Vec<u8>,
    },
    /// `accumulate_as`, or `accumulate_with_release_as` when releasing.
    AccumulateAs {
        place: Place,
        name: String,
        order_key: u64,
        release: Option<String>,
    },
    ExposeAs {
        place: Place,
        name: String,
        exposure_id: String,
    },
    ExposeManyAs {
        place: Place,
        name: String,
        ids: Vec<String>,
    },
    ReleaseAs {
        place: Place,
        name: String,
        exposure_id: String,
    },
    CreateAccumulatorAs {
        place: Place,
        name: String,
    },
    EmitAs {
        place: Place,
        topic: String,
        event_key: String,
    },
    Query {
        place: Place,
        query: Box<Query>,
        path: QueryPath,
    },
    /// `kv_get`, or `kv_get` of a read transaction begun with `begin_read_tx_as`.
    KvGet {
        place: Place,
        key: Vec<u8>,
        in_read_tx: bool,
    },
    KvScan {
        place: Place,
        prefix: Vec<u8>,
    },
    CounterRead {
        place: Place,
        key: Vec<u8>,
    },
    AccumulatorRead {
        place: Place,
        name: String,
    },
    EventStream,
}

impl Action {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Action::Query { .. }
                | Action::KvGet { .. }
                | Action::KvScan { .. }
                | Action::CounterRead { .. }
                | Action::AccumulatorRead { .. }
                | Action::EventStream
        )
    }
}

#[derive(Debug, Clone)]
pub struct Op {
    /// The mutation kind it commits, or for a read what it reads (`query`, `kv_get`, …).
    pub kind: &'static str,
    pub label: String,
    pub needs: Vec<Need>,
    pub action: Action,
}

pub fn kv_key(prefix: &str, kind: &str) -> Vec<u8> {
    format!("{prefix}.{kind}").into_bytes()
}

pub fn accumulator_name(prefix: &str) -> String {
    format!("{prefix}acc")
}

pub fn topic(prefix: &str) -> String {
    format!("{prefix}topic")
}

pub fn u256(n: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[31] = n;
    out
}

pub fn row(id: i64) -> Row {
    Row::from_values(vec![
        Value::Integer(id),
        Value::Integer(0),
        Value::U256(u256(100)),
    ])
}

pub fn table_columns() -> Vec<ColumnDef> {
    let column = |name: &str, col_type, nullable| ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    };
    vec![
        column("id", ColumnType::Integer, false),
        column("n", ColumnType::Integer, true),
        column("u", ColumnType::U256, true),
    ]
}

/// Builds the list; numbers rows, keys and order keys so that no two operations collide.
pub(super) struct Builder {
    pub(super) ops: Vec<Op>,
    pub(super) next: u64,
}

impl Builder {
    pub(super) fn serial(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub(super) fn push(
        &mut self,
        kind: &'static str,
        label: String,
        needs: Vec<Need>,
        action: Action,
    ) {
        self.ops.push(Op {
            kind,
            label,
            needs,
            action,
        });
    }

    /// A mutation, by the three commit paths in turn.
    pub(super) fn commit(&mut self, label: String, needs: Vec<Need>, mutation: Mutation) {
        let path = match self.ops.len() % 3 {
            0 => Path::CommitAs,
            1 => Path::CommitAsDurable,
            _ => Path::Envelope,
        };
        let kind = kind_of(&mutation);
        self.push(kind, label, needs, Action::Commit(Box::new(mutation), path));
    }
}

pub(super) fn place(p: &str, s: &str) -> Place {
    (p.into(), s.into())
}

pub(super) fn table_write(p: &str, s: &str, t: &str) -> Need {
    Need::TableWrite {
        project: p.into(),
        scope: s.into(),
        table: t.into(),
    }
}

pub(super) fn table_read(p: &str, s: &str, t: &str) -> Need {
    Need::TableRead {
        project: p.into(),
        scope: s.into(),
        table: t.into(),
    }
}

pub(super) fn kv_read(p: &str, s: &str, key: &[u8]) -> Need {
    Need::KvRead {
        project: p.into(),
        scope: s.into(),
        key: key.to_vec(),
    }
}

pub(super) fn kv_write(p: &str, s: &str, key: &[u8]) -> Need {
    Need::KvWrite {
        project: p.into(),
        scope: s.into(),
        key: key.to_vec(),
    }
}

/// Only the grants and revokes of `permissions`.
pub fn delegation_only(permissions: &[Permission]) -> Vec<Op> {
    let mut b = Builder {
        ops: Vec::new(),
        next: 0,
    };
    delegation_ops(&mut b, permissions);
    b.ops
}

/// Every operation, in an order where none undoes what a later one relies on. `delegate`:
/// the permissions the delegation operations grant and revoke.
pub fn all_ops(delegate: &[Permission]) -> Vec<Op> {
    let mut b = Builder {
        ops: Vec::new(),
        next: 0,
    };
    table_ops(&mut b);
    kv_ops(&mut b);
    accumulator_ops(&mut b);
    event_ops(&mut b);
    read_ops(&mut b);
    schema_ops(&mut b);
    delegation_ops(&mut b, delegate);
    transfer_ops(&mut b);
    drop_ops(&mut b);
    b.ops
}
