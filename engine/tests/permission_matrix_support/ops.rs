//! The operations of the matrix and what each needs: every `Mutation` variant and every DDL
//! kind, plus the `_as` helpers and the caller-bearing query, each at a home place and at
//! places that differ from it in one coordinate (table, scope, project, key prefix).

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, IndexType, TableAlteration};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::*;
use aedb::query::plan::Query;
use aedb::Permission;

use super::kinds::{ddl_kind, kind_of};
use super::model::Need;

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
/// Rows every table starts with; row i is the target of the i-th keyed write below.
pub const SEEDED_ROWS: i64 = 6;

/// How a mutation reaches the engine with a caller.
#[derive(Debug, Clone, Copy)]
pub enum Path {
    CommitAs,
    CommitAsDurable,
    Envelope,
}

#[derive(Debug, Clone)]
pub enum Action {
    Commit(Box<Mutation>, Path),
    KvSetAs {
        place: (String, String),
        key: Vec<u8>,
    },
    KvDelAs {
        place: (String, String),
        key: Vec<u8>,
    },
    /// `accumulate_as`, or `accumulate_with_release_as` when releasing.
    AccumulateAs {
        place: (String, String),
        name: String,
        order_key: u64,
        release: Option<String>,
    },
    ExposeAs {
        place: (String, String),
        name: String,
        exposure_id: String,
    },
    EmitAs {
        place: (String, String),
        topic: String,
        event_key: String,
    },
    Query {
        place: (String, String),
        query: Box<Query>,
    },
}

#[derive(Debug, Clone)]
pub struct Op {
    /// The mutation kind it commits (`query` for a read).
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

/// The permissions the delegation operations grant (to `bob`) and revoke (from `carol`): one
/// of each kind, in places near and far from the home place.
pub fn delegated() -> Vec<Permission> {
    use Permission as P;
    let kv = |project: &str, scope: Option<&str>, prefix: Option<&[u8]>| P::KvWrite {
        project_id: project.into(),
        scope_id: scope.map(Into::into),
        prefix: prefix.map(<[u8]>::to_vec),
    };
    vec![
        P::GlobalAdmin,
        P::ProjectAdmin {
            project_id: "p0".into(),
        },
        P::ProjectAdmin {
            project_id: "p1".into(),
        },
        P::ScopeAdmin {
            project_id: "p0".into(),
            scope_id: "s0".into(),
        },
        P::TableDdl {
            project_id: "p0".into(),
        },
        P::TableRead {
            project_id: "p0".into(),
            scope_id: "s0".into(),
            table_name: "t0".into(),
        },
        P::TableWrite {
            project_id: "p0".into(),
            scope_id: "s1".into(),
            table_name: "t1".into(),
        },
        P::IndexRead {
            project_id: "p0".into(),
            scope_id: "s0".into(),
            table_name: "t0".into(),
            index_name: "ix_n".into(),
        },
        kv("p0", Some("s0"), Some(b"ab")),
        P::KvRead {
            project_id: "p0".into(),
            scope_id: None,
            prefix: None,
        },
        kv("p1", Some("s1"), None),
        P::PolicyBypass {
            project_id: "p0".into(),
            table_name: None,
        },
        P::PolicyBypass {
            project_id: "p1".into(),
            table_name: Some("t0".into()),
        },
    ]
}

/// Builds the list; numbers rows, keys and order keys so that no two operations collide.
struct Builder {
    ops: Vec<Op>,
    next: u64,
}

impl Builder {
    fn serial(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn push(&mut self, kind: &'static str, label: String, needs: Vec<Need>, action: Action) {
        self.ops.push(Op {
            kind,
            label,
            needs,
            action,
        });
    }

    /// A mutation, by the three commit paths in turn.
    fn commit(&mut self, label: String, needs: Vec<Need>, mutation: Mutation) {
        let path = match self.ops.len() % 3 {
            0 => Path::CommitAs,
            1 => Path::CommitAsDurable,
            _ => Path::Envelope,
        };
        let kind = kind_of(&mutation);
        self.push(kind, label, needs, Action::Commit(Box::new(mutation), path));
    }
}

fn place(p: &str, s: &str) -> (String, String) {
    (p.into(), s.into())
}

fn table_write(p: &str, s: &str, t: &str) -> Need {
    Need::TableWrite {
        project: p.into(),
        scope: s.into(),
        table: t.into(),
    }
}

fn table_read(p: &str, s: &str, t: &str) -> Need {
    Need::TableRead {
        project: p.into(),
        scope: s.into(),
        table: t.into(),
    }
}

fn kv_write(p: &str, s: &str, key: &[u8]) -> Need {
    Need::KvWrite {
        project: p.into(),
        scope: s.into(),
        key: key.to_vec(),
    }
}

fn table_ops(b: &mut Builder) {
    for (p, s, t) in TABLE_PLACES {
        let (pid, sid, tname) = (p.to_string(), s.to_string(), t.to_string());
        let id = 100 + b.serial() as i64 * 2;
        let pk = |i: i64| vec![Value::Integer(i)];
        let muts = vec![
            Mutation::Insert {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(id),
                row: row(id),
            },
            Mutation::InsertBatch {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 1_000), row(id + 1_001)],
            },
            Mutation::Upsert {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(id + 2_000),
                row: row(id + 2_000),
            },
            Mutation::UpsertBatch {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 3_000), row(1)],
            },
            Mutation::UpsertOnConflict {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                row: row(id + 4_000),
                conflict_target: ConflictTarget::PrimaryKey,
                conflict_action: ConflictAction::DoNothing,
            },
            Mutation::UpsertBatchOnConflict {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 5_000), row(2)],
                conflict_target: ConflictTarget::PrimaryKey,
                conflict_action: ConflictAction::DoMerge,
            },
            Mutation::Delete {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(1),
            },
            Mutation::DeleteWhere {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(2i64),
                limit: None,
            },
            Mutation::UpdateWhere {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(3i64),
                updates: vec![("n".into(), Value::Integer(7))],
                limit: None,
            },
            Mutation::UpdateWhereExpr {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(4i64),
                updates: vec![("n".into(), TableUpdateExpr::AddI64(1))],
                limit: None,
            },
            Mutation::TableIncU256 {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(5),
                column: "u".into(),
                amount_be: u256(1),
            },
            Mutation::TableDecU256 {
                project_id: pid,
                scope_id: sid,
                table_name: tname,
                primary_key: pk(6),
                column: "u".into(),
                amount_be: u256(1),
            },
        ];
        for m in muts {
            let label = format!("{} on {p}.{s}.{t}", kind_of(&m));
            b.commit(label, vec![table_write(p, s, t)], m);
        }
    }
}

fn kv_mutations(p: &str, s: &str, prefix: &str) -> Vec<Mutation> {
    let (pid, sid) = (p.to_string(), s.to_string());
    let key = |kind: &str| kv_key(prefix, kind);
    let eight = 1u64.to_be_bytes();
    vec![
        Mutation::KvSet {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("set"),
            value: b"v".to_vec(),
        },
        Mutation::KvDel {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("del"),
        },
        Mutation::KvIncU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("inc"),
            amount_be: u256(1),
        },
        Mutation::KvDecU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount_be: u256(1),
        },
        Mutation::KvAddU256Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("add256"),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::TreatAsZero,
            on_overflow: KvU256OverflowPolicy::Saturate,
        },
        Mutation::KvSubU256Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::TreatAsZero,
            on_underflow: KvU256UnderflowPolicy::NoOp,
        },
        Mutation::KvMaxU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("max256"),
            candidate_be: u256(9),
            on_missing: KvU256MissingPolicy::TreatAsZero,
        },
        Mutation::KvMinU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            candidate_be: u256(3),
            on_missing: KvU256MissingPolicy::TreatAsZero,
        },
        Mutation::KvMutateU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("mut256"),
            op: KvU256MutatorOp::Set,
            operand_be: u256(5),
            expected_seq: None,
        },
        Mutation::KvAddU64Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("u64"),
            amount_be: eight,
            on_missing: KvU64MissingPolicy::TreatAsZero,
            on_overflow: KvU64OverflowPolicy::Saturate,
        },
        Mutation::KvSubU64Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("u64"),
            amount_be: eight,
            on_missing: KvU64MissingPolicy::TreatAsZero,
            on_underflow: KvU64UnderflowPolicy::NoOp,
        },
        Mutation::KvMaxU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("max64"),
            candidate_be: 9u64.to_be_bytes(),
            on_missing: KvU64MissingPolicy::TreatAsZero,
        },
        Mutation::KvMinU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("min64"),
            candidate_be: 3u64.to_be_bytes(),
            on_missing: KvU64MissingPolicy::TreatAsZero,
        },
        Mutation::KvMutateU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("mut64"),
            op: KvU64MutatorOp::Add,
            operand_be: eight,
            expected_seq: None,
        },
        // On the seeded u256 (the u64 key is back at zero by now).
        Mutation::KvSubIntEx {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount: KvIntegerAmount::U256(u256(1)),
            on_missing: KvIntegerMissingPolicy::TreatAsZero,
            on_underflow: KvIntegerUnderflowPolicy::NoOp,
        },
        Mutation::CounterAdd {
            project_id: pid,
            scope_id: sid,
            key: key("counter"),
            amount_be: eight,
            shard_count: 4,
            shard_hint: 1,
        },
    ]
}

fn kv_key_of(m: &Mutation) -> Vec<u8> {
    use Mutation as M;
    match m {
        M::KvSet { key, .. }
        | M::KvDel { key, .. }
        | M::KvIncU256 { key, .. }
        | M::KvDecU256 { key, .. }
        | M::KvAddU256Ex { key, .. }
        | M::KvSubU256Ex { key, .. }
        | M::KvMaxU256 { key, .. }
        | M::KvMinU256 { key, .. }
        | M::KvMutateU256 { key, .. }
        | M::KvAddU64Ex { key, .. }
        | M::KvSubU64Ex { key, .. }
        | M::KvMaxU64 { key, .. }
        | M::KvMinU64 { key, .. }
        | M::KvMutateU64 { key, .. }
        | M::KvSubIntEx { key, .. }
        | M::CounterAdd { key, .. } => key.clone(),
        other => panic!("not a KV mutation: {other:?}"),
    }
}

fn kv_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        for m in kv_mutations(p, s, prefix) {
            let key = kv_key_of(&m);
            let label = format!(
                "{} on {p}.{s} {:?}",
                kind_of(&m),
                String::from_utf8_lossy(&key)
            );
            b.commit(label, vec![kv_write(p, s, &key)], m);
        }
        let key = kv_key(prefix, "set_as");
        let needs = vec![kv_write(p, s, &key)];
        let action = Action::KvSetAs {
            place: place(p, s),
            key,
        };
        b.push(
            "KvSet",
            format!("kv_set_as on {p}.{s} {prefix}"),
            needs,
            action,
        );
        let key = kv_key(prefix, "del_as");
        let needs = vec![kv_write(p, s, &key)];
        let action = Action::KvDelAs {
            place: place(p, s),
            key,
        };
        b.push(
            "KvDel",
            format!("kv_del_as on {p}.{s} {prefix}"),
            needs,
            action,
        );
    }
}

fn accumulator_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        let name = accumulator_name(prefix);
        let needs = vec![kv_write(p, s, name.as_bytes())];
        let acc = |b: &mut Builder, release: Option<&str>| {
            let n = b.serial();
            Mutation::Accumulate {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                delta: 1,
                dedupe_key: format!("d{n}"),
                order_key: 10 + n,
                release_exposure_id: release.map(Into::into),
            }
        };
        let n = b.serial();
        let muts = vec![
            acc(b, None),
            acc(b, Some("rel1")),
            Mutation::ExposeAccumulator {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                amount: 1,
                exposure_id: format!("e{n}"),
            },
            Mutation::ExposeAccumulatorBatch {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                exposures: vec![(1, format!("e{n}a")), (2, format!("e{n}b"))],
            },
            Mutation::ReleaseAccumulatorExposure {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                exposure_id: "rel2".into(),
            },
        ];
        for m in muts {
            b.commit(
                format!("{} on {p}.{s}.{name}", kind_of(&m)),
                needs.clone(),
                m,
            );
        }
        for release in [None, Some("rel3".to_string())] {
            let order_key = 10 + b.serial();
            let action = Action::AccumulateAs {
                place: place(p, s),
                name: name.clone(),
                order_key,
                release: release.clone(),
            };
            let label = format!("accumulate_as on {p}.{s}.{name} releasing {release:?}");
            b.push("Accumulate", label, needs.clone(), action);
        }
        let action = Action::ExposeAs {
            place: place(p, s),
            name: name.clone(),
            exposure_id: format!("x{}", b.serial()),
        };
        b.push(
            "ExposeAccumulator",
            format!("expose_accumulator_as on {p}.{s}.{name}"),
            needs,
            action,
        );
    }
}

fn event_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        let topic = topic(prefix);
        let needs = vec![kv_write(p, s, topic.as_bytes())];
        let m = Mutation::EmitEvent {
            project_id: p.into(),
            scope_id: s.into(),
            topic: topic.clone(),
            event_key: format!("k{}", b.serial()),
            payload_json: "{\"n\":1}".into(),
        };
        b.commit(format!("EmitEvent on {p}.{s}.{topic}"), needs.clone(), m);
        let action = Action::EmitAs {
            place: place(p, s),
            topic: topic.clone(),
            event_key: format!("k{}", b.serial()),
        };
        b.push(
            "EmitEvent",
            format!("emit_event_as on {p}.{s}.{topic}"),
            needs,
            action,
        );
    }
}

fn read_ops(b: &mut Builder) {
    for (p, s, t) in TABLE_PLACES {
        let query = Query::select(&["*"]).from(t).limit(100);
        let action = Action::Query {
            place: place(p, s),
            query: Box::new(query),
        };
        b.push(
            "query",
            format!("query {p}.{s}.{t}"),
            vec![table_read(p, s, t)],
            action,
        );
    }
    // A join needs reading every table it names.
    for (p, s) in [("p0", "s0"), ("p0", "s1")] {
        let query = Query::select(&["*"])
            .from("t0")
            .inner_join("t1", "t0.id", "t1.id")
            .limit(100);
        let needs = vec![table_read(p, s, "t0"), table_read(p, s, "t1")];
        let action = Action::Query {
            place: place(p, s),
            query: Box::new(query),
        };
        b.push("query", format!("query {p}.{s}.t0 join t1"), needs, action);
    }
}

fn ddl(b: &mut Builder, label: String, needs: Vec<Need>, op: DdlOperation) {
    b.commit(label, needs, Mutation::Ddl(op));
}

/// Schema DDL that leaves the tables of the other operations alone (they use `tx`, `td`).
fn schema_ops(b: &mut Builder) {
    let needs = vec![Need::GlobalAdmin];
    let op = DdlOperation::CreateProject {
        project_id: "pnew".into(),
        owner_id: None,
        if_not_exists: false,
    };
    ddl(b, "CreateProject pnew".into(), needs, op);
    for p in PROJECTS {
        let needs = vec![Need::ProjectAdmin { project: p.into() }];
        let op = DdlOperation::CreateScope {
            project_id: p.into(),
            scope_id: "snew".into(),
            owner_id: None,
            if_not_exists: false,
        };
        ddl(b, format!("CreateScope {p}.snew"), needs, op);
    }
    for (p, s) in SCOPE_PLACES {
        let needs = vec![Need::TableDdl { project: p.into() }];
        let (pid, sid) = (p.to_string(), s.to_string());
        let ops = vec![
            DdlOperation::CreateTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tnew".into(),
                owner_id: None,
                columns: table_columns(),
                primary_key: vec!["id".into()],
            },
            DdlOperation::CreateTableIfNotExists {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tnew2".into(),
                owner_id: None,
                columns: table_columns(),
                primary_key: vec!["id".into()],
            },
            DdlOperation::AlterTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                alteration: TableAlteration::AddColumn(ColumnDef {
                    name: "extra".into(),
                    col_type: ColumnType::Integer,
                    nullable: true,
                }),
            },
            DdlOperation::DropTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "td".into(),
                if_exists: false,
            },
            DdlOperation::CreateIndex {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                index_name: "ix_new".into(),
                if_not_exists: false,
                columns: vec!["n".into()],
                index_type: IndexType::BTree,
                partial_filter: None,
            },
            DdlOperation::DropIndex {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                index_name: "ix_drop".into(),
                if_exists: false,
            },
            DdlOperation::CreateAccumulator {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                accumulator_name: "accnew".into(),
                if_not_exists: false,
                value_type: Default::default(),
                dedupe_retain_commits: None,
                snapshot_every: 8,
                exposure_margin_bps: 0,
                exposure_ttl_commits: None,
            },
            DdlOperation::DropAccumulator {
                project_id: pid,
                scope_id: sid,
                accumulator_name: "accdrop".into(),
                if_exists: false,
            },
        ];
        for op in ops {
            let label = format!("{} in {p}.{s}", ddl_kind(&op));
            ddl(b, label, needs.clone(), op);
        }
    }
}

fn delegation_ops(b: &mut Builder, permissions: &[Permission]) {
    for permission in permissions {
        let needs = vec![Need::Delegate(permission.clone())];
        let grant = DdlOperation::GrantPermission {
            caller_id: "bob".into(),
            permission: permission.clone(),
            actor_id: None,
            delegable: false,
        };
        ddl(b, format!("grant {permission:?}"), needs.clone(), grant);
        let revoke = DdlOperation::RevokePermission {
            caller_id: "carol".into(),
            permission: permission.clone(),
            actor_id: None,
        };
        ddl(b, format!("revoke {permission:?}"), needs, revoke);
    }
}

/// Last: they remove what the others use.
fn drop_ops(b: &mut Builder) {
    for (p, s) in SCOPE_PLACES {
        let needs = vec![Need::ScopeAdmin {
            project: p.into(),
            scope: s.into(),
        }];
        let op = DdlOperation::DropScope {
            project_id: p.into(),
            scope_id: s.into(),
            if_exists: false,
        };
        ddl(b, format!("DropScope {p}.{s}"), needs, op);
    }
    for p in PROJECTS {
        let needs = vec![Need::ProjectAdmin { project: p.into() }];
        let op = DdlOperation::DropProject {
            project_id: p.into(),
            if_exists: false,
        };
        ddl(b, format!("DropProject {p}"), needs, op);
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
    drop_ops(&mut b);
    b.ops
}
