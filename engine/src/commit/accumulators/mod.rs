//! Accumulator mutations inside a commit: create and drop, exactly-once deltas, exposures and
//! their release. Storage is `stored::accumulators`; this module holds the rules.
//!
//! The projector runs inside each commit that touches an accumulator: the new delta is folded
//! into the materialized value in the same commit, so no delta stays unapplied and the
//! projected and strong values agree; a delta that would take the value past i64 fails its
//! commit with `Overflow` instead. (`projector_error` stays in the stored state for the
//! format's sake and for a state written otherwise: folding and strong reads honour it, but
//! this engine never sets it.) The same commit
//! prunes dedupe records past their retention and drops exposures past their TTL, a bounded
//! number at a time, so no commit pays for a backlog all at once.

use aedb_catalog::schema::AccumulatorValueType;

use std::collections::HashMap;

use super::apply::{rows, Applied, Limits, RefusedExposure};
use super::validation::Mutation;
use crate::durable::LoggedTxn;
use crate::error::{AedbError, ResourceType, Result};
use crate::stored::accumulators::{
    self as stored, Acc, AccumulatorDef, DedupeRecord, Exposure, State,
};
use crate::stored::catalog::{check_id, refuse_system, require_scope};

mod upkeep;

pub use upkeep::expire_for_read;
use upkeep::{clean_up, expire, fold};

const MAX_MARGIN_BPS: u32 = 10_000;
/// Longest dedupe key or exposure id: they are stored in B+tree keys (with a tag and a
/// sequence), which a page bounds.
const MAX_ID_BYTES: usize = 512;

fn check_stored_id(what: &str, id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(AedbError::Validation(format!("{what} must not be blank")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(AedbError::Validation(format!(
            "{what} of {} bytes exceeds {MAX_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

/// The options of `CreateAccumulator`.
pub struct CreateOptions {
    pub if_not_exists: bool,
    pub value_type: AccumulatorValueType,
    pub dedupe_retain_commits: Option<u64>,
    pub snapshot_every: u64,
    pub exposure_margin_bps: u32,
    pub exposure_ttl_commits: Option<u64>,
}

pub fn create(txn: &mut LoggedTxn, acc: Acc<'_>, options: &CreateOptions) -> Result<bool> {
    check_id("project_id", acc.project)?;
    check_id("scope_id", acc.scope)?;
    check_id("accumulator_name", acc.name)?;
    refuse_system(acc.project)?;
    require_scope(txn, acc.project, acc.scope)?;
    if options.snapshot_every == 0 {
        return Err(AedbError::Validation("snapshot_every must be > 0".into()));
    }
    if options.exposure_margin_bps >= MAX_MARGIN_BPS {
        return Err(AedbError::Validation(format!(
            "exposure_margin_bps must be below {MAX_MARGIN_BPS}, got {}",
            options.exposure_margin_bps
        )));
    }
    if stored::definition(txn, acc)?.is_some() {
        if options.if_not_exists {
            return Ok(false);
        }
        // As the original: an accumulator is reported as a table resource.
        return Err(AedbError::AlreadyExists {
            resource_type: ResourceType::Table,
            resource_id: acc.dotted(),
        });
    }
    let def = AccumulatorDef {
        value_type: options.value_type,
        dedupe_retain_commits: options.dedupe_retain_commits,
        snapshot_every: options.snapshot_every,
        exposure_margin_bps: options.exposure_margin_bps,
        exposure_ttl_commits: options.exposure_ttl_commits,
        created_seq: txn.seq(),
    };
    stored::create(txn, acc, &def)?;
    Ok(true)
}

pub fn drop(txn: &mut LoggedTxn, acc: Acc<'_>, if_exists: bool) -> Result<bool> {
    if stored::definition(txn, acc)?.is_none() {
        if if_exists {
            return Ok(false);
        }
        return Err(missing(acc));
    }
    stored::drop(txn, acc)?;
    Ok(true)
}

/// Drop every accumulator of a scope (the scope is being dropped).
pub fn drop_scope(txn: &mut LoggedTxn, project: &str, scope: &str) -> Result<()> {
    for name in stored::names_in_scope(txn, project, scope)? {
        stored::drop(
            txn,
            Acc {
                project,
                scope,
                name: &name,
            },
        )?;
    }
    Ok(())
}

pub fn missing(acc: Acc<'_>) -> AedbError {
    AedbError::Validation(format!("accumulator does not exist: {}", acc.dotted()))
}

/// The definition of `acc`, or the error the original gives for a missing one.
pub fn require(reader: &impl aedb_pager::ReadTrees, acc: Acc<'_>) -> Result<AccumulatorDef> {
    stored::definition(reader, acc)?.ok_or_else(|| missing(acc))
}

/// The effective value less the open exposure, for assertions; `None` when `acc` does not
/// exist.
pub fn available(reader: &impl aedb_pager::ReadTrees, acc: Acc<'_>) -> Result<Option<i128>> {
    if stored::definition(reader, acc)?.is_none() {
        return Ok(None);
    }
    let state = stored::state(reader, acc)?;
    Ok(Some(
        healthy_effective(&state)? - i128::from(state.total_exposure),
    ))
}

/// The open exposure and the most it may reach, for assertions; `None` when `acc` does not
/// exist.
pub fn exposure_headroom(
    reader: &impl aedb_pager::ReadTrees,
    acc: Acc<'_>,
) -> Result<Option<(i128, i64)>> {
    let Some(def) = stored::definition(reader, acc)? else {
        return Ok(None);
    };
    let state = stored::state(reader, acc)?;
    let limit = exposure_limit(healthy_effective(&state)?, def.exposure_margin_bps);
    Ok(Some((i128::from(state.total_exposure), limit)))
}

/// Apply an accumulator mutation.
pub fn apply(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    use Mutation as M;
    match mutation {
        M::Accumulate {
            project_id,
            scope_id,
            accumulator_name,
            delta,
            dedupe_key,
            order_key,
            release_exposure_id,
        } => {
            let acc = acc_of(project_id, scope_id, accumulator_name);
            let delta = Delta {
                amount: *delta,
                dedupe_key,
                order_key: *order_key,
                release: release_exposure_id.as_deref(),
            };
            accumulate(txn, acc, &delta)
        }
        M::ExposeAccumulator {
            project_id,
            scope_id,
            accumulator_name,
            amount,
            exposure_id,
        } => expose(
            txn,
            acc_of(project_id, scope_id, accumulator_name),
            &[(*amount, exposure_id.clone())],
            limits,
        ),
        M::ExposeAccumulatorBatch {
            project_id,
            scope_id,
            accumulator_name,
            exposures,
        } => expose(
            txn,
            acc_of(project_id, scope_id, accumulator_name),
            exposures,
            limits,
        ),
        M::ReleaseAccumulatorExposure {
            project_id,
            scope_id,
            accumulator_name,
            exposure_id,
        } => release(
            txn,
            acc_of(project_id, scope_id, accumulator_name),
            exposure_id,
        ),
        _ => Err(AedbError::Validation("not an accumulator mutation".into())),
    }
}

/// The ids of `exposures` (a batch's) that are open with `opened_seq` = this commit.
pub fn opened_in_commit<'e>(
    txn: &LoggedTxn,
    project: &str,
    scope: &str,
    name: &str,
    exposures: &'e [(i64, String)],
) -> Result<Vec<&'e (i64, String)>> {
    let acc = acc_of(project, scope, name);
    let mut seen = std::collections::HashSet::with_capacity(exposures.len());
    let mut opened = Vec::new();
    for exposure in exposures {
        if !seen.insert(exposure.1.as_str()) {
            continue;
        }
        if let Some(open) = stored::exposure(txn, acc, &exposure.1)? {
            if open.opened_seq == txn.seq() {
                opened.push(exposure);
            }
        }
    }
    Ok(opened)
}

fn acc_of<'a>(project: &'a str, scope: &'a str, name: &'a str) -> Acc<'a> {
    Acc {
        project,
        scope,
        name,
    }
}

struct Delta<'a> {
    amount: i64,
    dedupe_key: &'a str,
    order_key: u64,
    release: Option<&'a str>,
}

fn accumulate(txn: &mut LoggedTxn, acc: Acc<'_>, delta: &Delta<'_>) -> Result<Applied> {
    check_id("accumulator_name", acc.name)?;
    check_stored_id("dedupe_key", delta.dedupe_key)?;
    if let Some(id) = delta.release {
        check_stored_id("release_exposure_id", id)?;
    }
    let def = require(txn, acc)?;
    let mut state = stored::state(txn, acc)?;
    let loaded = state.clone();
    // Expiry first, as every operation does, so what is open does not depend on the order of
    // the mutations in a commit.
    expire(txn, acc, &def, &mut state)?;
    // The dedupe check comes before the order check, so an exact retry succeeds even after
    // later deltas. A record past its retention is forgotten here, pruned or not.
    if let Some(seen) = stored::dedupe(txn, acc, delta.dedupe_key)? {
        if upkeep::retained(&def, seen.seq, txn.seq()) {
            if seen.order_key == delta.order_key && seen.delta == delta.amount {
                if state != loaded {
                    stored::put_state(txn, acc, &state)?;
                }
                return Ok(rows(0));
            }
            return Err(AedbError::Validation(format!(
                "dedupe key already used with different payload: {}",
                delta.dedupe_key
            )));
        }
        stored::forget_dedupe(txn, acc, delta.dedupe_key, seen)?;
    }
    if let Some(latest) = state.latest_order_key {
        if delta.order_key <= latest {
            return Err(AedbError::Validation(format!(
                "order key must be strictly increasing (latest={latest}, got={})",
                delta.order_key
            )));
        }
    }
    state.pending = state
        .pending
        .checked_add(i128::from(delta.amount))
        .ok_or(AedbError::Overflow)?;
    let seq = txn.seq();
    state.latest_order_key = Some(delta.order_key);
    state.latest_seq = seq;
    state.unapplied_deltas += 1;
    stored::append_delta(txn, acc, delta.order_key, delta.amount)?;
    let record = DedupeRecord {
        order_key: delta.order_key,
        delta: delta.amount,
        seq,
    };
    stored::put_dedupe(txn, acc, delta.dedupe_key, record)?;
    if let Some(id) = delta.release {
        let open = stored::exposure(txn, acc, id)?.ok_or_else(|| unknown_exposure(id))?;
        close(txn, acc, &mut state, id, open)?;
    }
    fold(txn, acc, &mut state)?;
    clean_up(txn, acc, &def, &mut state)?;
    stored::put_state(txn, acc, &state)?;
    Ok(rows(1))
}

fn unknown_exposure(id: &str) -> AedbError {
    AedbError::Validation(format!("release requested for unknown exposure id: {id}"))
}

fn close(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    state: &mut State,
    id: &str,
    open: Exposure,
) -> Result<()> {
    stored::close_exposure(txn, acc, id, open)?;
    state.total_exposure = state
        .total_exposure
        .checked_sub(open.amount)
        .ok_or(AedbError::Overflow)?;
    state.open_exposures = state.open_exposures.checked_sub(1).ok_or_else(|| {
        AedbError::Corruption(format!(
            "accumulator {}: an exposure is open but none is counted",
            acc.dotted()
        ))
    })?;
    Ok(())
}

/// The most the open exposures of an accumulator may total: the effective value less the
/// margin, rounded down, clamped to i64.
pub fn exposure_limit(effective: i128, margin_bps: u32) -> i64 {
    let keep = i128::from(MAX_MARGIN_BPS.saturating_sub(margin_bps));
    let scaled =
        effective
            .checked_mul(keep)
            .unwrap_or(if effective < 0 { i128::MIN } else { i128::MAX });
    scaled
        .div_euclid(i128::from(MAX_MARGIN_BPS))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The effective value, refused while the projector is unhealthy.
pub fn healthy_effective(state: &State) -> Result<i128> {
    match &state.projector_error {
        Some(err) => Err(AedbError::Validation(format!(
            "accumulator projector unhealthy: {err}"
        ))),
        None => Ok(state.effective()),
    }
}

fn expose(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    exposures: &[(i64, String)],
    limits: &Limits,
) -> Result<Applied> {
    check_id("accumulator_name", acc.name)?;
    if exposures.is_empty() {
        return Err(AedbError::Validation("no exposures given".into()));
    }
    for (amount, id) in exposures {
        if *amount <= 0 {
            return Err(AedbError::Validation("exposure amount must be > 0".into()));
        }
        check_stored_id("exposure id", id)?;
    }
    let def = require(txn, acc)?;
    let mut state = stored::state(txn, acc)?;
    expire(txn, acc, &def, &mut state)?;
    let limit = exposure_limit(healthy_effective(&state)?, def.exposure_margin_bps);
    let mut opened = 0;
    let mut in_batch: HashMap<&str, i64> = HashMap::with_capacity(exposures.len());
    for (amount, id) in exposures {
        if let Some(earlier) = in_batch.insert(id, *amount) {
            if earlier != *amount {
                return Err(AedbError::Validation(format!(
                    "duplicate exposure id with different amount in batch: {id}"
                )));
            }
            continue;
        }
        if let Some(open) = stored::exposure(txn, acc, id)? {
            if open.amount != *amount {
                return Err(AedbError::Validation(format!(
                    "exposure id already exists with different amount: {id}"
                )));
            }
            continue;
        }
        let total = state
            .total_exposure
            .checked_add(*amount)
            .ok_or(AedbError::Overflow)?;
        if total > limit {
            limits.refused_exposures.lock().push(RefusedExposure {
                project: acc.project.to_string(),
                scope: acc.scope.to_string(),
                name: acc.name.to_string(),
                created_seq: def.created_seq,
            });
            return Err(AedbError::Validation(format!(
                "exposure margin exceeded: requested_total={total}, allowed={limit}"
            )));
        }
        let exposure = Exposure {
            amount: *amount,
            opened_seq: txn.seq(),
        };
        stored::open_exposure(txn, acc, id, exposure)?;
        state.total_exposure = total;
        state.open_exposures += 1;
        opened += 1;
    }
    stored::put_state(txn, acc, &state)?;
    Ok(rows(opened))
}

fn release(txn: &mut LoggedTxn, acc: Acc<'_>, id: &str) -> Result<Applied> {
    check_id("accumulator_name", acc.name)?;
    let def = require(txn, acc)?;
    let mut state = stored::state(txn, acc)?;
    expire(txn, acc, &def, &mut state)?;
    let open = stored::exposure(txn, acc, id)?.ok_or_else(|| unknown_exposure(id))?;
    close(txn, acc, &mut state, id, open)?;
    stored::put_state(txn, acc, &state)?;
    Ok(rows(1))
}

/// Count a refused exposure. It runs in a commit of its own after the refused one failed
/// (that commit wrote nothing), so the count survives the refusal; an accumulator dropped (or
/// dropped and created again) meanwhile is not the one that refused, and is left alone.
pub fn record_rejection(txn: &mut LoggedTxn, refused: &RefusedExposure) -> Result<()> {
    let acc = Acc {
        project: &refused.project,
        scope: &refused.scope,
        name: &refused.name,
    };
    match stored::definition(txn, acc)? {
        Some(def) if def.created_seq == refused.created_seq => {}
        _ => return Ok(()),
    }
    let mut state = stored::state(txn, acc)?;
    state.rejections += 1;
    stored::put_state(txn, acc, &state)
}

/// `CreateAccumulator` and `DropAccumulator` (the DDL dispatch hands them here).
pub fn apply_ddl(txn: &mut LoggedTxn, op: &aedb_catalog::DdlOperation) -> Result<bool> {
    use aedb_catalog::DdlOperation;
    match op {
        DdlOperation::CreateAccumulator {
            project_id,
            scope_id,
            accumulator_name,
            if_not_exists,
            value_type,
            dedupe_retain_commits,
            snapshot_every,
            exposure_margin_bps,
            exposure_ttl_commits,
        } => create(
            txn,
            Acc {
                project: project_id,
                scope: scope_id,
                name: accumulator_name,
            },
            &CreateOptions {
                if_not_exists: *if_not_exists,
                value_type: *value_type,
                dedupe_retain_commits: *dedupe_retain_commits,
                snapshot_every: *snapshot_every,
                exposure_margin_bps: *exposure_margin_bps,
                exposure_ttl_commits: *exposure_ttl_commits,
            },
        ),
        DdlOperation::DropAccumulator {
            project_id,
            scope_id,
            accumulator_name,
            if_exists,
        } => drop(
            txn,
            Acc {
                project: project_id,
                scope: scope_id,
                name: accumulator_name,
            },
            *if_exists,
        ),
        other => Err(AedbError::Validation(format!(
            "not an accumulator operation: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal counted after the accumulator was dropped and created again under the same
    /// name is not the new one's (the count commit runs after the refused commit failed, so
    /// other commits can come between them).
    #[tokio::test]
    async fn a_refusal_counts_only_on_the_accumulator_that_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let db = crate::AedbInstance::open(Default::default(), dir.path()).expect("open");
        db.create_project("p").await.expect("project");
        let created = db
            .create_accumulator("p", "app", "c", None, 10)
            .await
            .expect("create");
        let refusal = |created_seq| RefusedExposure {
            project: "p".into(),
            scope: "app".into(),
            name: "c".into(),
            created_seq,
        };
        let count = |refused: RefusedExposure| {
            db.engine()
                .commit(crate::CommitFinality::Visible, move |txn| {
                    record_rejection(txn, &refused)
                })
        };
        count(refusal(created.commit_seq)).await.expect("count");
        let rejections = |db: &crate::AedbInstance| {
            let state = stored::state(
                &db.engine().snapshot(),
                Acc {
                    project: "p",
                    scope: "app",
                    name: "c",
                },
            );
            state.expect("state").rejections
        };
        assert_eq!(rejections(&db), 1);
        db.drop_accumulator("p", "app", "c").await.expect("drop");
        db.create_accumulator("p", "app", "c", None, 10)
            .await
            .expect("again");
        count(refusal(created.commit_seq)).await.expect("count");
        assert_eq!(rejections(&db), 0, "the old accumulator's refusal");
    }

    #[test]
    fn the_margin_rule_rounds_down() {
        assert_eq!(exposure_limit(1_000, 1_000), 900);
        assert_eq!(exposure_limit(0, 1_000), 0);
        assert_eq!(exposure_limit(999, 1_000), 899, "899.1 rounds down");
        assert_eq!(exposure_limit(-10, 1_000), -9);
        assert_eq!(exposure_limit(-11, 1_000), -10, "-9.9 rounds down");
        assert_eq!(exposure_limit(i128::MAX, 0), i64::MAX, "clamped");
    }
}
