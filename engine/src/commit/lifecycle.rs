//! Lifecycle events: what a commit did to namespaces, tables, accumulators and the event
//! stream, as hooks (`add_lifecycle_hook`) receive it. A commit that emitted an event also
//! stores all its events in the lifecycle outbox (`stored::lifecycle`), in the same commit.

use aedb_catalog::DdlOperation;
use serde::Serialize;

use super::apply::{Applied, Limits};
use super::validation::Mutation;
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::lifecycle;

/// Where published commits' lifecycle events go: the instance's hooks (`api::lifecycle`).
pub trait LifecycleSink: Send + Sync {
    /// Whether anyone listens; a commit hands over no events otherwise.
    fn listening(&self) -> bool;
    /// Take one published commit's events. Called on the thread leading the commit group,
    /// in commit order: it must not block.
    fn publish(&self, events: Vec<LifecycleEvent>);
}

/// One thing a commit did, with the commit's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LifecycleEvent {
    ProjectCreated {
        project_id: String,
        seq: u64,
    },
    ProjectDropped {
        project_id: String,
        seq: u64,
    },
    ScopeCreated {
        project_id: String,
        scope_id: String,
        seq: u64,
    },
    ScopeDropped {
        project_id: String,
        scope_id: String,
        seq: u64,
    },
    TableCreated {
        project_id: String,
        scope_id: String,
        table_name: String,
        seq: u64,
    },
    TableDropped {
        project_id: String,
        scope_id: String,
        table_name: String,
        seq: u64,
    },
    TableAltered {
        project_id: String,
        scope_id: String,
        table_name: String,
        seq: u64,
    },
    AccumulatorDeltaAppended {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
        release_exposure_id: Option<String>,
        seq: u64,
    },
    AccumulatorExposureReserved {
        project_id: String,
        scope_id: String,
        accumulator_name: String,
        amount: i64,
        exposure_id: String,
        seq: u64,
    },
    AppEventEmitted {
        project_id: String,
        scope_id: String,
        topic: String,
        event_key: String,
        payload_json: String,
        seq: u64,
    },
}

fn of_ddl(op: &DdlOperation, seq: u64) -> Option<LifecycleEvent> {
    use DdlOperation as D;
    use LifecycleEvent as E;
    let table = |p: &String, s: &String, t: &String| (p.clone(), s.clone(), t.clone());
    Some(match op {
        D::CreateProject { project_id, .. } => E::ProjectCreated {
            project_id: project_id.clone(),
            seq,
        },
        D::DropProject { project_id, .. } => E::ProjectDropped {
            project_id: project_id.clone(),
            seq,
        },
        D::CreateScope {
            project_id,
            scope_id,
            ..
        } => E::ScopeCreated {
            project_id: project_id.clone(),
            scope_id: scope_id.clone(),
            seq,
        },
        D::DropScope {
            project_id,
            scope_id,
            ..
        } => E::ScopeDropped {
            project_id: project_id.clone(),
            scope_id: scope_id.clone(),
            seq,
        },
        D::CreateTable {
            project_id,
            scope_id,
            table_name,
            ..
        }
        | D::CreateTableIfNotExists {
            project_id,
            scope_id,
            table_name,
            ..
        } => {
            let (project_id, scope_id, table_name) = table(project_id, scope_id, table_name);
            E::TableCreated {
                project_id,
                scope_id,
                table_name,
                seq,
            }
        }
        D::DropTable {
            project_id,
            scope_id,
            table_name,
            ..
        } => {
            let (project_id, scope_id, table_name) = table(project_id, scope_id, table_name);
            E::TableDropped {
                project_id,
                scope_id,
                table_name,
                seq,
            }
        }
        D::AlterTable {
            project_id,
            scope_id,
            table_name,
            ..
        } => {
            let (project_id, scope_id, table_name) = table(project_id, scope_id, table_name);
            E::TableAltered {
                project_id,
                scope_id,
                table_name,
                seq,
            }
        }
        _ => return None,
    })
}

/// The events of one applied mutation (a DDL no-op or a duplicate delta has none).
fn of_mutation(mutation: &Mutation, applied: &Applied, seq: u64) -> Vec<LifecycleEvent> {
    use LifecycleEvent as E;
    match mutation {
        Mutation::Ddl(op) if applied.ddl_applied == Some(true) => {
            of_ddl(op, seq).into_iter().collect()
        }
        Mutation::Accumulate {
            project_id,
            scope_id,
            accumulator_name,
            delta,
            dedupe_key,
            order_key,
            release_exposure_id,
        } if applied.affected_rows > 0 => vec![E::AccumulatorDeltaAppended {
            project_id: project_id.clone(),
            scope_id: scope_id.clone(),
            accumulator_name: accumulator_name.clone(),
            delta: *delta,
            dedupe_key: dedupe_key.clone(),
            order_key: *order_key,
            release_exposure_id: release_exposure_id.clone(),
            seq,
        }],
        Mutation::ExposeAccumulator {
            project_id,
            scope_id,
            accumulator_name,
            amount,
            exposure_id,
        } if applied.affected_rows > 0 => {
            let accumulator = (project_id, scope_id, accumulator_name);
            vec![reserved(accumulator, *amount, exposure_id, seq)]
        }
        Mutation::EmitEvent {
            project_id,
            scope_id,
            topic,
            event_key,
            payload_json,
        } => vec![E::AppEventEmitted {
            project_id: project_id.clone(),
            scope_id: scope_id.clone(),
            topic: topic.clone(),
            event_key: event_key.clone(),
            payload_json: payload_json.clone(),
            seq,
        }],
        _ => Vec::new(),
    }
}

/// Whether a commit of `mutations` gathers lifecycle events: for hooks that listen, or for
/// the lifecycle outbox of a commit that emits an event. Otherwise nobody reads them, and a
/// batch of exposures need not look up its ids twice.
pub fn wanted(mutations: &[Mutation], limits: &Limits) -> bool {
    limits
        .lifecycle_sink
        .as_ref()
        .is_some_and(|s| s.listening())
        || mutations
            .iter()
            .any(|m| matches!(m, Mutation::EmitEvent { .. }))
}

/// Apply `mutation` and, when `events` is given, add the lifecycle events it caused.
pub fn apply_noting(
    txn: &mut LoggedTxn,
    mutation: &Mutation,
    limits: &Limits,
    events: Option<&mut Vec<LifecycleEvent>>,
) -> Result<Applied> {
    let Some(events) = events else {
        return super::apply::apply(txn, mutation, limits);
    };
    let Mutation::ExposeAccumulatorBatch {
        project_id,
        scope_id,
        accumulator_name,
        exposures,
    } = mutation
    else {
        let applied = super::apply::apply(txn, mutation, limits)?;
        events.extend(of_mutation(mutation, &applied, txn.seq()));
        return Ok(applied);
    };
    // The batch's ids open with this commit's sequence after it, less those opened so
    // before it (by an earlier mutation of this commit): what it opened, including an expired
    // exposure it opened again.
    let opened_in_commit = super::accumulators::opened_in_commit;
    let before: std::collections::HashSet<String> =
        opened_in_commit(txn, project_id, scope_id, accumulator_name, exposures)?
            .into_iter()
            .map(|(_, id)| id.clone())
            .collect();
    let applied = super::apply::apply(txn, mutation, limits)?;
    let opened = opened_in_commit(txn, project_id, scope_id, accumulator_name, exposures)?
        .into_iter()
        .filter(|(_, id)| !before.contains(id));
    let seq = txn.seq();
    let accumulator = (project_id, scope_id, accumulator_name);
    events.extend(opened.map(|(amount, id)| reserved(accumulator, *amount, id, seq)));
    Ok(applied)
}

fn reserved(
    (project_id, scope_id, accumulator_name): (&String, &String, &String),
    amount: i64,
    exposure_id: &str,
    seq: u64,
) -> LifecycleEvent {
    LifecycleEvent::AccumulatorExposureReserved {
        project_id: project_id.clone(),
        scope_id: scope_id.clone(),
        accumulator_name: accumulator_name.clone(),
        amount,
        exposure_id: exposure_id.to_string(),
        seq,
    }
}

/// Hand a commit's lifecycle `events` to `limits.lifecycle_sink` for when the commit is
/// acknowledged (so hooks hear commits in order, whatever becomes of the caller); when the
/// commit emitted an event, they are also stored in the lifecycle outbox in this commit.
pub fn record(txn: &mut LoggedTxn, events: Vec<LifecycleEvent>, limits: &Limits) -> Result<()> {
    // Only commits that emit events are recorded: they create the system project anyway,
    // where recording every DDL commit would create it in every database. Hooks hear all.
    let outboxed = events
        .iter()
        .any(|e| matches!(e, LifecycleEvent::AppEventEmitted { .. }));
    if outboxed {
        // An event's payload is in the event outbox already (same commit, topic and key):
        // the lifecycle outbox leaves it out rather than store it twice.
        let stored: Vec<LifecycleEvent> = events
            .iter()
            .cloned()
            .map(|mut e| {
                if let LifecycleEvent::AppEventEmitted { payload_json, .. } = &mut e {
                    payload_json.clear();
                }
                e
            })
            .collect();
        let json = serde_json::to_string(&stored)
            .map_err(|e| AedbError::Validation(format!("lifecycle events: {e}")))?;
        lifecycle::append(txn, events.len(), json, limits.now_micros)?;
        // Processors waiting for events wake once this commit is deliverable.
        txn.mark();
    }
    if let Some(sink) = limits.lifecycle_sink.as_ref() {
        if !events.is_empty() && sink.listening() {
            let sink = sink.clone();
            txn.after_publish(Box::new(move || sink.publish(events)));
        }
    }
    Ok(())
}
