//! The permission matrix's database, its operations and the check of the engine against the
//! model (`model`), shared by the random and the fixed cases.

mod ddl_ops;
pub mod kinds;
pub mod model;
pub mod ops;
mod reads;
mod writes;

use std::ops::Bound;

use aedb::catalog::expr::{col, Expr};
use aedb::catalog::schema::{ColumnDef, IndexType};
use aedb::catalog::types::Value;
use aedb::catalog::DdlOperation;
use aedb::commit::tx::{TransactionEnvelope, WriteIntent};
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::error::QueryError;
use aedb::query::plan::{ConsistencyMode, Query, QueryOptions, QueryResult};
use aedb::storage::{ReadTrees, Snapshot};
use aedb::{AedbError, AedbInstance, CallerContext, CommitFinality, Permission};

use model::{Model, Owned, Verdict};
use ops::*;

pub const ALICE: &str = "alice";

fn config() -> AedbConfig {
    AedbConfig {
        // Durability is not what this suite checks; every operation is a commit.
        durability_mode: DurabilityMode::OsBuffered,
        buffer_pool_bytes: 16 << 20,
        ..AedbConfig::default()
    }
}

fn owner(owned: bool) -> Option<String> {
    owned.then(|| ALICE.to_string())
}

fn create_table(p: &str, s: &str, t: &str, owned: bool, columns: Vec<ColumnDef>) -> Mutation {
    Mutation::Ddl(DdlOperation::CreateTable {
        project_id: p.into(),
        scope_id: s.into(),
        table_name: t.into(),
        owner_id: owner(owned),
        columns,
        primary_key: vec!["id".into()],
    })
}

fn policy((p, s, t): (&str, &str, &str), predicate: Expr) -> Mutation {
    Mutation::Ddl(DdlOperation::SetReadPolicy {
        project_id: p.into(),
        scope_id: s.into(),
        table_name: t.into(),
        predicate,
        actor_id: None,
    })
}

/// Projects, scopes and tables (`t0`, `t1` seeded; `tx`, `td` for schema changes), with
/// `owned`'s resources owned by alice.
fn namespaces(owned: &Owned) -> Vec<Mutation> {
    let mut out = Vec::new();
    for p in PROJECTS {
        out.push(Mutation::Ddl(DdlOperation::CreateProject {
            project_id: p.into(),
            owner_id: owner(owned.projects.iter().any(|x| x == p)),
            if_not_exists: false,
        }));
        for s in SCOPES {
            let scope_owned = owned.scopes.iter().any(|(x, y)| x == p && y == s);
            out.push(Mutation::Ddl(DdlOperation::CreateScope {
                project_id: p.into(),
                scope_id: s.into(),
                owner_id: owner(scope_owned),
                if_not_exists: false,
            }));
            for t in TABLES {
                let table_owned = owned
                    .tables
                    .iter()
                    .any(|(x, y, z)| x == p && y == s && z == t);
                out.push(create_table(p, s, t, table_owned, table_columns()));
                out.push(Mutation::InsertBatch {
                    project_id: p.into(),
                    scope_id: s.into(),
                    table_name: t.into(),
                    rows: (1..=SEEDED_ROWS).map(row).collect(),
                });
            }
            let small = table_columns().into_iter().take(2).collect::<Vec<_>>();
            out.push(create_table(p, s, "tx", false, small.clone()));
            out.push(create_table(p, s, "td", false, small));
            out.push(policy((p, s, "tx"), col("id").gte(0i64)));
            out.push(Mutation::Ddl(DdlOperation::CreateIndex {
                project_id: p.into(),
                scope_id: s.into(),
                table_name: "tx".into(),
                index_name: "ix_drop".into(),
                if_not_exists: false,
                columns: vec!["n".into()],
                index_type: IndexType::BTree,
                partial_filter: None,
            }));
        }
    }
    out.push(policy(POLICED, col("id").lte(POLICY_MAX_ID)));
    out
}

fn create_accumulator(p: &str, s: &str, name: &str) -> Mutation {
    Mutation::Ddl(DdlOperation::CreateAccumulator {
        project_id: p.into(),
        scope_id: s.into(),
        accumulator_name: name.into(),
        if_not_exists: false,
        value_type: Default::default(),
        dedupe_retain_commits: None,
        snapshot_every: 8,
        exposure_margin_bps: 0,
        exposure_ttl_commits: None,
    })
}

/// Accumulators with a balance and the exposures the operations release, and the KV values
/// the operations delete or decrement.
fn data() -> Vec<Mutation> {
    let mut out = Vec::new();
    for p in PROJECTS {
        for s in SCOPES {
            out.push(create_accumulator(p, s, "accdrop"));
        }
    }
    for (p, s, prefix) in KV_PLACES {
        let name = accumulator_name(prefix);
        out.push(create_accumulator(p, s, &name));
        out.push(Mutation::Accumulate {
            project_id: p.into(),
            scope_id: s.into(),
            accumulator_name: name.clone(),
            delta: 1_000_000,
            dedupe_key: "seed".into(),
            order_key: 1,
            release_exposure_id: None,
        });
        for id in ["rel1", "rel2", "rel3", "rel4"] {
            out.push(Mutation::ExposeAccumulator {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                amount: 1,
                exposure_id: id.into(),
            });
        }
        for kind in ["del", "del_as", "read"] {
            out.push(Mutation::KvSet {
                project_id: p.into(),
                scope_id: s.into(),
                key: kv_key(prefix, kind),
                value: b"old".to_vec(),
            });
        }
        out.push(Mutation::KvIncU256 {
            project_id: p.into(),
            scope_id: s.into(),
            key: kv_key(prefix, "dec"),
            amount_be: u256(100),
        });
    }
    out
}

fn grant(to: &str, permission: &Permission, delegable: bool) -> Mutation {
    Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: to.into(),
        permission: permission.clone(),
        actor_id: None,
        delegable,
    })
}

/// A database with everything the operations use, prepared anonymously (outside secure
/// mode anonymous commits skip the checks, as a deployment bootstraps its grants): alice
/// holds the model's grants and owns its resources; carol holds each of `delegate`, so
/// revoking one changes something.
pub async fn prepare(
    dir: &std::path::Path,
    model: &Model,
    delegate: &[Permission],
) -> AedbInstance {
    let db = AedbInstance::open(config(), dir).expect("open");
    db.commit_many_atomic(namespaces(&model.owned))
        .await
        .expect("namespaces");
    db.commit_many_atomic(data()).await.expect("data");
    let mut grants: Vec<Mutation> = delegate.iter().map(|p| grant("carol", p, false)).collect();
    grants.extend(model.granted.iter().map(|(p, d)| grant(ALICE, p, *d)));
    if !grants.is_empty() {
        db.commit_many_atomic(grants).await.expect("grants");
    }
    db
}

#[derive(Debug)]
pub enum Outcome {
    Done,
    /// What a scan or a query returned: keys (all ASCII here, as text), or rows.
    Read(Vec<String>),
    Denied(String),
    /// Any other error, or a read that found nothing where something is; shown only in
    /// failure messages (through `Debug`).
    #[allow(dead_code)]
    Failed(String),
}

fn outcome<T>(result: Result<T, AedbError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        Err(AedbError::PermissionDenied(why)) => Outcome::Denied(why),
        Err(other) => Outcome::Failed(format!("{other:?}")),
    }
}

fn read_outcome<T>(result: Result<T, QueryError>, found: impl FnOnce(&T) -> bool) -> Outcome {
    match result {
        Ok(value) if found(&value) => Outcome::Done,
        Ok(_) => Outcome::Failed("the read found nothing".into()),
        Err(QueryError::PermissionDenied { permission, .. }) => Outcome::Denied(permission),
        Err(other) => Outcome::Failed(format!("{other:?}")),
    }
}

/// Run `action` as `caller`.
pub async fn run(db: &AedbInstance, caller: &CallerContext, action: &Action) -> Outcome {
    if action.is_read() {
        return run_read(db, caller, action).await;
    }
    let who = || caller.clone();
    let result = match action {
        Action::Commit(m, Path::CommitAs) => db.commit_as(who(), (**m).clone()).await,
        Action::Commit(m, Path::CommitAsDurable) => {
            db.commit_as_with_finality(who(), (**m).clone(), CommitFinality::Durable)
                .await
        }
        Action::Commit(m, Path::Envelope) => {
            let envelope = TransactionEnvelope {
                caller: Some(who()),
                write_intent: WriteIntent {
                    mutations: vec![(**m).clone()],
                },
                ..TransactionEnvelope::default()
            };
            db.commit_envelope(envelope).await
        }
        Action::KvSetAs { place: (p, s), key } => {
            db.kv_set_as(who(), p, s, key.clone(), b"v".to_vec()).await
        }
        Action::KvDelAs { place: (p, s), key } => db.kv_del_as(who(), p, s, key.clone()).await,
        Action::AccumulateAs {
            place: (p, s),
            name,
            order_key,
            release,
        } => {
            let (dedupe, release) = (format!("as{order_key}"), release.clone());
            db.accumulate_with_release_as(who(), p, s, name, 1, dedupe, *order_key, release)
                .await
        }
        Action::ExposeAs {
            place: (p, s),
            name,
            exposure_id,
        } => {
            db.expose_accumulator_as(who(), p, s, name, 1, exposure_id.clone())
                .await
        }
        Action::ExposeManyAs {
            place: (p, s),
            name,
            ids,
        } => {
            let exposures = ids.iter().map(|id| (1, id.clone())).collect();
            db.expose_accumulator_many_atomic_as(who(), p, s, name, exposures)
                .await
        }
        Action::ReleaseAs {
            place: (p, s),
            name,
            exposure_id,
        } => {
            db.release_accumulator_exposure_as(who(), p, s, name, exposure_id.clone())
                .await
        }
        Action::CreateAccumulatorAs {
            place: (p, s),
            name,
        } => db.create_accumulator_as(who(), p, s, name, None, 8).await,
        Action::EmitAs {
            place: (p, s),
            topic,
            event_key,
        } => {
            db.emit_event_as(who(), p, s, topic, event_key.clone(), "{}".into())
                .await
        }
        read => unreachable!("a read: {read:?}"),
    };
    outcome(result)
}

async fn run_read(db: &AedbInstance, caller: &CallerContext, action: &Action) -> Outcome {
    let latest = ConsistencyMode::AtLatest;
    match action {
        Action::Query {
            place: (p, s),
            query,
            path,
        } => {
            let query = (**query).clone();
            match path {
                QueryPath::WithOptions => rows(
                    db.query_with_options_as(Some(caller), p, s, query, QueryOptions::default())
                        .await,
                ),
                QueryPath::ReadTx => match db.begin_read_tx_as(caller, latest).await {
                    Ok(tx) => rows(tx.query(p, s, query, None).await),
                    Err(e) => read_outcome(Err::<(), _>(e), |_| true),
                },
                QueryPath::Explain => {
                    read_outcome(db.explain_query_as(Some(caller), p, s, query).await, |_| {
                        true
                    })
                }
            }
        }
        Action::KvGet {
            place: (p, s),
            key,
            in_read_tx: false,
        } => read_outcome(db.kv_get(p, s, key, latest, caller).await, Option::is_some),
        Action::KvGet {
            place: (p, s),
            key,
            in_read_tx: true,
        } => {
            let tx = match db.begin_read_tx_as(caller, latest).await {
                Ok(tx) => tx,
                Err(e) => return read_outcome(Err::<(), _>(e), |_| true),
            };
            read_outcome(tx.kv_get(p, s, key).await, Option::is_some)
        }
        Action::KvScan {
            place: (p, s),
            prefix,
        } => match db
            .kv_scan_prefix(p, s, prefix, 10_000, None, latest, caller)
            .await
        {
            Ok(page) if page.cursor.is_none() => {
                Outcome::Read(page.entries.iter().map(|(k, _)| text(k)).collect())
            }
            other => read_outcome(other, |_| false),
        },
        Action::CounterRead { place: (p, s), key } => read_outcome(
            db.counter_read_sharded_as(caller, p, s, key, 4, latest)
                .await,
            |_| true,
        ),
        Action::AccumulatorRead {
            place: (p, s),
            name,
        } => {
            let value = db.accumulator_value_as(caller, p, s, name, latest).await;
            let available = db
                .accumulator_available_as(caller, p, s, name, latest)
                .await;
            match (outcome(value), outcome(available)) {
                (Outcome::Done, Outcome::Done) => Outcome::Done,
                (Outcome::Denied(why), Outcome::Denied(_)) => Outcome::Denied(why),
                (a, b) => Outcome::Failed(format!("value {a:?}, available {b:?}")),
            }
        }
        Action::EventStream => outcome(db.read_event_stream_as(caller, None, 0, 100, latest).await),
        write => unreachable!("a write: {write:?}"),
    }
}

fn rows(result: Result<QueryResult, QueryError>) -> Outcome {
    match result {
        Ok(r) => Outcome::Read(
            r.rows
                .iter()
                .map(|row| format!("{:?}", row.values))
                .collect(),
        ),
        other => read_outcome(other, |_| false),
    }
}

fn text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The keys with `prefix` in the scope that the model lets `model`'s caller read, read
/// anonymously.
async fn readable_keys(
    db: &AedbInstance,
    model: &Model,
    (p, s): &Place,
    prefix: &[u8],
) -> Vec<String> {
    let all = db
        .kv_scan_prefix_no_auth(p, s, prefix, 10_000, ConsistencyMode::AtLatest)
        .await
        .expect("anonymous scan");
    all.iter()
        .filter(|(k, _)| model.may_read(p, s, k))
        .map(|(k, _)| text(k))
        .collect()
}

/// The rows a query shows the model's caller: what it shows anonymously, less what the
/// read policy hides from a caller that does not bypass it.
async fn visible_rows(
    db: &AedbInstance,
    model: &Model,
    (p, s): &Place,
    query: &Query,
) -> Vec<String> {
    let all = db
        .query_with_options(p, s, query.clone(), QueryOptions::default())
        .await
        .expect("anonymous query");
    let policed = (p.as_str(), s.as_str(), query.table.as_str()) == POLICED;
    let hidden = policed && !model.bypasses(p, &query.table);
    all.rows
        .iter()
        .filter(|row| {
            !hidden
                || matches!(row.values.first(), Some(Value::Integer(id)) if *id <= POLICY_MAX_ID)
        })
        .map(|row| format!("{:?}", row.values))
        .collect()
}

/// What an allowed read must return (None: a write, or a read only held to succeeding).
async fn expected(db: &AedbInstance, model: &Model, action: &Action) -> Option<Vec<String>> {
    match action {
        Action::KvScan { place, prefix } => Some(readable_keys(db, model, place, prefix).await),
        Action::Query {
            place,
            query,
            path: QueryPath::WithOptions | QueryPath::ReadTx,
        } => Some(visible_rows(db, model, place, query).await),
        _ => None,
    }
}

fn entries(snapshot: &Snapshot, tree: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    snapshot
        .range(tree, Bound::Unbounded, Bound::Unbounded, false)
        .expect("range")
        .collect::<Result<_, _>>()
        .expect("entries")
}

/// The first difference between two versions' contents, if any.
pub fn difference(before: &Snapshot, after: &Snapshot) -> Option<String> {
    if before.seq() == after.seq() {
        return None;
    }
    let names = |s: &Snapshot| -> Vec<String> {
        s.trees()
            .expect("trees")
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    let (old, new) = (names(before), names(after));
    if old != new {
        return Some(format!("trees {old:?} became {new:?}"));
    }
    old.into_iter()
        .find(|tree| entries(before, tree) != entries(after, tree))
        .map(|tree| format!("tree {tree} changed"))
}

/// How the operations went against the model.
#[derive(Debug, Default)]
pub struct Tally {
    pub allowed: usize,
    pub denied: usize,
}

/// Run every operation as `caller` and hold the engine to the model: allowed → done; denied
/// → `PermissionDenied` and not a byte changed. `context` (the grants, the owners) is for the
/// failure message.
pub async fn check_all(
    db: &AedbInstance,
    caller: &CallerContext,
    model: &Model,
    ops: &[Op],
    context: &str,
) -> Tally {
    let mut tally = Tally::default();
    for op in ops {
        let verdict = model.verdict(&op.needs);
        let before = db.engine().snapshot();
        let got = run(db, caller, &op.action).await;
        let label = &op.label;
        match verdict {
            Verdict::Allowed => {
                match expected(db, model, &op.action).await {
                    Some(want) => assert!(
                        matches!(&got, Outcome::Read(seen) if *seen == want),
                        "{label}: the model shows {want:?}, the engine {got:?}\n{context}"
                    ),
                    None => assert!(
                        matches!(got, Outcome::Done),
                        "{label}: the model allows it, the engine answered {got:?}\n{context}"
                    ),
                }
                // Each write is set up to change something, which also shows that the
                // unchanged-state check below can see a change.
                let changed = difference(&before, &db.engine().snapshot());
                let read = op.action.is_read();
                assert_eq!(changed.is_some(), !read, "{label}: changes {changed:?}");
                tally.allowed += 1;
            }
            Verdict::Denied => {
                assert!(
                    matches!(got, Outcome::Denied(_)),
                    "{label}: the model denies it, the engine answered {got:?}\n{context}"
                );
                let changed = difference(&before, &db.engine().snapshot());
                assert_eq!(
                    changed, None,
                    "{label}: denied but changed state\n{context}"
                );
                tally.denied += 1;
            }
        }
    }
    tally
}

/// The grants' and owners' description for failure messages.
pub fn describe(model: &Model) -> String {
    format!(
        "grants to {ALICE}: {:?}\nowned by {ALICE}: {:?}",
        model.granted, model.owned
    )
}
