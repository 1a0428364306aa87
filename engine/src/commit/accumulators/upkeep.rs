//! The work every commit that touches an accumulator does besides its own: dropping exposures
//! past their TTL, folding new deltas into the value, forgetting dedupe records past their
//! retention and compacting the folded part of the delta log.
//!
//! Expiry runs first in every operation (and before an accumulator assertion), so what is open
//! never depends on the order of the mutations in a commit. Each step is bounded per commit,
//! and the optional ones (pruning, compaction) also stop while the commit's record is near its
//! byte limit, so cleanup never makes a commit too large: a backlog drains over later commits.

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::accumulators::{self as stored, Acc, AccumulatorDef, State};

use super::close;

/// Exposures expired, dedupe records pruned, per commit at most.
const EXPIRY_BATCH: usize = 64;
/// Folded deltas deleted per commit at most, once `snapshot_every` have gathered.
const COMPACTION_BATCH: usize = 256;

/// Whether a dedupe record written at `seq` is still remembered at commit `now`.
pub fn retained(def: &AccumulatorDef, seq: u64, now: u64) -> bool {
    match def.dedupe_retain_commits {
        Some(retain) => now.saturating_sub(seq) <= retain,
        None => true,
    }
}

/// Optional work runs only while the record has room for a quarter of its limit to spare.
fn has_room(txn: &LoggedTxn) -> bool {
    txn.room() > txn.max_bytes() / 4
}

/// Close exposures opened more than `exposure_ttl_commits` commits ago (oldest first).
/// Expired exposures a commit leaves (more than its batch) still count until a later commit
/// closes them: an exposure is never freed early.
pub fn expire(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    def: &AccumulatorDef,
    state: &mut State,
) -> Result<()> {
    let Some(ttl) = def.exposure_ttl_commits else {
        return Ok(());
    };
    let Some(before) = txn.seq().checked_sub(ttl) else {
        return Ok(());
    };
    for (id, open) in stored::exposures_opened_before(txn, acc, before, EXPIRY_BATCH)? {
        close(txn, acc, state, &id, open)?;
    }
    Ok(())
}

/// Expire what is due before an assertion reads the accumulator, in the commit's
/// transaction; nothing when it does not exist.
pub fn expire_for_read(txn: &mut LoggedTxn, acc: Acc<'_>) -> Result<()> {
    let Some(def) = stored::definition(txn, acc)? else {
        return Ok(());
    };
    let mut state = stored::state(txn, acc)?;
    let before = state.clone();
    expire(txn, acc, &def, &mut state)?;
    if state != before {
        stored::put_state(txn, acc, &state)?;
    }
    Ok(())
}

/// Fold the unapplied deltas into the materialized value, in order-key order. A delta that
/// would take the value past i64 fails its commit with `Overflow` (nothing is applied), so the
/// value never becomes unreadable.
pub fn fold(txn: &mut LoggedTxn, acc: Acc<'_>, state: &mut State) -> Result<()> {
    if state.projector_error.is_some() || state.unapplied_deltas == 0 {
        return Ok(());
    }
    let after = (state.materialized_seq > 0).then_some(state.last_applied_order_key);
    let pending = stored::deltas_after(txn, acc, after, state.unapplied_deltas as usize)?;
    for (order_key, delta) in pending {
        state.value = state.value.checked_add(delta).ok_or(AedbError::Overflow)?;
        state.pending -= i128::from(delta);
        state.unapplied_deltas -= 1;
        state.last_applied_order_key = order_key;
        state.applied_in_log += 1;
        state.materialized_seq = txn.seq();
    }
    Ok(())
}

/// Forget dedupe records past their retention and compact the delta log, while there is room.
pub fn clean_up(
    txn: &mut LoggedTxn,
    acc: Acc<'_>,
    def: &AccumulatorDef,
    state: &mut State,
) -> Result<()> {
    if let Some(retain) = def.dedupe_retain_commits {
        if let Some(before) = txn.seq().checked_sub(retain) {
            if has_room(txn) {
                stored::prune_dedupe(txn, acc, before, EXPIRY_BATCH)?;
            }
        }
    }
    if state.applied_in_log >= def.snapshot_every && has_room(txn) {
        let removed =
            stored::compact_deltas(txn, acc, state.last_applied_order_key, COMPACTION_BATCH)?;
        state.applied_in_log = state.applied_in_log.saturating_sub(removed);
    }
    Ok(())
}
