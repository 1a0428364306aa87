//! The permission matrix's database, its operations and the check of the engine against the
//! model (`model`), shared by the random and the fixed cases.

pub mod kinds;
pub mod model;
pub mod ops;

use std::ops::Bound;

use aedb::catalog::schema::{ColumnDef, IndexType};
use aedb::catalog::DdlOperation;
use aedb::commit::tx::{TransactionEnvelope, WriteIntent};
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::error::QueryError;
use aedb::query::plan::QueryOptions;
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
        for id in ["rel1", "rel2", "rel3"] {
            out.push(Mutation::ExposeAccumulator {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                amount: 1,
                exposure_id: id.into(),
            });
        }
        for kind in ["del", "del_as"] {
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
    Denied(String),
    /// Any other error; shown only in failure messages (through `Debug`).
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

/// Run `action` as `caller`.
pub async fn run(db: &AedbInstance, caller: &CallerContext, action: &Action) -> Outcome {
    let who = || caller.clone();
    match action {
        Action::Commit(m, Path::CommitAs) => outcome(db.commit_as(who(), (**m).clone()).await),
        Action::Commit(m, Path::CommitAsDurable) => outcome(
            db.commit_as_with_finality(who(), (**m).clone(), CommitFinality::Durable)
                .await,
        ),
        Action::Commit(m, Path::Envelope) => {
            let envelope = TransactionEnvelope {
                caller: Some(who()),
                write_intent: WriteIntent {
                    mutations: vec![(**m).clone()],
                },
                ..TransactionEnvelope::default()
            };
            outcome(db.commit_envelope(envelope).await)
        }
        Action::KvSetAs { place: (p, s), key } => {
            outcome(db.kv_set_as(who(), p, s, key.clone(), b"v".to_vec()).await)
        }
        Action::KvDelAs { place: (p, s), key } => {
            outcome(db.kv_del_as(who(), p, s, key.clone()).await)
        }
        Action::AccumulateAs {
            place: (p, s),
            name,
            order_key,
            release,
        } => {
            let dedupe = format!("as{order_key}");
            outcome(match release {
                None => {
                    db.accumulate_as(who(), p, s, name, 1, dedupe, *order_key)
                        .await
                }
                Some(id) => {
                    db.accumulate_with_release_as(
                        who(),
                        p,
                        s,
                        name,
                        1,
                        dedupe,
                        *order_key,
                        Some(id.clone()),
                    )
                    .await
                }
            })
        }
        Action::ExposeAs {
            place: (p, s),
            name,
            exposure_id,
        } => outcome(
            db.expose_accumulator_as(who(), p, s, name, 1, exposure_id.clone())
                .await,
        ),
        Action::EmitAs {
            place: (p, s),
            topic,
            event_key,
        } => outcome(
            db.emit_event_as(who(), p, s, topic, event_key.clone(), "{}".into())
                .await,
        ),
        Action::Query {
            place: (p, s),
            query,
        } => {
            let options = QueryOptions::default();
            match db
                .query_with_options_as(Some(caller), p, s, (**query).clone(), options)
                .await
            {
                Ok(result) if result.rows.is_empty() => Outcome::Failed("no rows".into()),
                Ok(_) => Outcome::Done,
                Err(QueryError::PermissionDenied { permission, .. }) => Outcome::Denied(permission),
                Err(other) => Outcome::Failed(format!("{other:?}")),
            }
        }
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
    /// Operations the spec allows by a way this port lacks; not held either way.
    pub spec_only: Vec<String>,
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
                assert!(
                    matches!(got, Outcome::Done),
                    "{label}: the model allows it, the engine answered {got:?}\n{context}"
                );
                // Each write is set up to change something, which also shows that the
                // unchanged-state check below can see a change.
                let changed = difference(&before, &db.engine().snapshot());
                let reads = matches!(op.action, Action::Query { .. });
                assert_eq!(changed.is_some(), !reads, "{label}: changes {changed:?}");
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
            // Not held to either answer; a refusal must still leave everything as it was.
            Verdict::SpecOnly(why) => {
                if let Outcome::Denied(_) = got {
                    let changed = difference(&before, &db.engine().snapshot());
                    assert_eq!(
                        changed, None,
                        "{label}: denied but changed state\n{context}"
                    );
                } else {
                    assert!(matches!(got, Outcome::Done), "{label}: {got:?}\n{context}");
                }
                tally.spec_only.push(format!("{label} ({why})"));
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
