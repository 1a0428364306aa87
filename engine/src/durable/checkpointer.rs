//! Checkpoints of the durable engine: the background checkpointer and the one function every
//! checkpoint goes through, which advances the durable and WAL-covered marks it makes true.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use aedb_pager::CheckpointInfo;

use super::pipeline::Shared;
use crate::error::Result;

/// Checkpoint the head, unless the engine has latched: a checkpoint started after the log
/// failed would make durable commits that were already answered `Failed` (see `finish_group`).
pub(super) fn checkpoint(shared: &Shared) -> Result<CheckpointInfo> {
    // Commits sync the log beside this checkpoint when the count of syncs moves between two
    // batches: the checkpoint then writes in small batches, so those syncs queue behind less.
    let mut syncs_seen = shared.syncs.load(Ordering::Relaxed);
    let mut log_syncing = || {
        let syncs = shared.syncs.load(Ordering::Relaxed);
        std::mem::replace(&mut syncs_seen, syncs) != syncs
    };
    let info = shared
        .store
        .checkpoint_unless(|| shared.failed.lock().clone(), &mut log_syncing)?;
    shared
        .checkpointed_seq
        .fetch_max(info.meta.seq, Ordering::AcqRel);
    if info.readers_oldest.is_none() {
        // A reader of another process may still scan the log from its older checkpoint.
        shared
            .covered_lsn
            .fetch_max(info.meta.wal_position, Ordering::AcqRel);
    }
    // A durable checkpoint makes every commit up to it durable, whatever the log's state.
    shared
        .durable_seq
        .fetch_max(info.meta.seq, Ordering::AcqRel);
    Ok(info)
}

/// Runs requested checkpoints off the writer thread, so commits wait for one only when the
/// pages they replaced pass twice the space setting (`Writer::wait_for_space`). A panic in a
/// checkpoint latches the instance, which ends such a wait: a dead checkpointer would leave it
/// polling until shutdown.
pub(super) fn checkpointer_loop(shared: &Shared) {
    loop {
        {
            let mut request = shared.checkpoint_request.lock();
            while !*request {
                shared.checkpoint_signal.wait(&mut request);
            }
            *request = false;
        }
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        if shared.failed.lock().is_some() {
            continue;
        }
        match catch_unwind(AssertUnwindSafe(|| checkpoint(shared))) {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => shared.latch(format!("checkpoint failed: {err}")),
            Err(panic) => shared.latch(format!(
                "the checkpointer panicked: {}",
                super::pipeline::panic_message(&*panic)
            )),
        }
        let _request = shared.checkpoint_request.lock();
        shared.checkpoint_finished.notify_all();
    }
}
