//! The writer's share of checkpoints: asking for one when the log, the clock or the space
//! replaced since the last one say so, holding commits while replaced pages wait for one,
//! running the checkpoint a replaying open left due before the first group, and deleting the
//! log segments a durable checkpoint covers. The checkpoint itself runs on the checkpointer
//! thread (`checkpointer.rs`); this is what the leader of a group does about it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aedb_pager::io::IoErrorKind;
use aedb_wal::{WalError, WalWriter};

use super::{panic_message, Writer, CHECKPOINT_REQUEST_GAP};
use crate::durable::checkpointer;
use crate::error::Result;

impl Writer {
    /// What every group ends with, whoever led it: a checkpoint asked for when one is due, and
    /// the log segments a checkpoint now covers deleted (at the first group after it, so a run
    /// of blocking commits deletes them at the same points every time; the crash sweeps count
    /// on it).
    pub fn after_group(&mut self) {
        self.maybe_request_checkpoint();
        // A backend that is gone fails the next group's write, which latches the instance.
        let _ = self.truncate_covered();
    }

    /// Delete the log segments a new checkpoint covers. An error: the backend is gone.
    fn truncate_covered(&mut self) -> Result<()> {
        let covered = self.shared.covered_lsn.load(Ordering::Acquire);
        if covered > self.truncated_through {
            // Tried once per checkpoint, failed or not: a directory that refuses an unlink
            // refuses the next group's too, and retrying would put an unlink, a warning and
            // a directory sync on every commit. The next checkpoint tries again.
            self.truncated_through = covered;
            return delete_covered_segments(&mut self.wal, covered);
        }
        Ok(())
    }

    /// The checkpoint the open left due after redo, and the deletion of the log it covers,
    /// before the first group: what the open used to do before it returned, now done while
    /// reads already run.
    ///
    /// Why no commit may go before it: redo may have replayed frames that only the page cache
    /// held (a log fsync that failed before the crash leaves them there, marked clean, and
    /// no later fsync writes them again). Commits acknowledged after such a frame would be
    /// lost with it on a power loss; the checkpoint writes the replayed state afresh. A
    /// failure latches the instance (the open used to fail): the group's commits then fail.
    pub(super) fn recovery_checkpoint(&mut self) {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            checkpointer::checkpoint(&self.shared)?;
            self.truncate_covered()
        }));
        match outcome {
            Ok(Ok(())) => {
                // The replayed log is covered now: it no longer counts towards the next
                // checkpoint by size (even while covered segments stay for a reader).
                self.log_vouches = true;
                self.bytes_since_checkpoint_request = 0;
                self.last_checkpoint_request = Instant::now();
                // The replayed commits are deliverable now. Which of them were marked is not
                // known here; the head is at or past every one, so processors look again
                // instead of sleeping through their idle pause.
                let head = self.shared.store.head().seq;
                self.shared
                    .marks
                    .send_modify(|mark| *mark = (*mark).max(head));
            }
            Ok(Err(err)) => self
                .shared
                .latch(format!("the checkpoint after recovery failed: {err}")),
            Err(panic) => self.shared.latch(format!(
                "the checkpoint after recovery panicked: {}",
                panic_message(&*panic)
            )),
        }
        let _request = self.shared.checkpoint_request.lock();
        self.shared
            .recovery_checkpoint_due
            .store(false, Ordering::Release);
        self.shared.checkpoint_finished.notify_all();
    }

    fn maybe_request_checkpoint(&mut self) {
        // Only commits no checkpoint covers call for one: the log may stay long (or covered
        // and undeleted) while a reader of another process is registered.
        let uncovered =
            self.shared.store.head().seq > self.shared.checkpointed_seq.load(Ordering::Acquire);
        // Bytes logged since the last request, not the live log: while readers keep covered
        // segments, the live log does not shrink after a checkpoint.
        let by_size = uncovered
            && self.bytes_since_checkpoint_request > self.config.checkpoint_wal_bytes
            && self.last_checkpoint_request.elapsed() >= CHECKPOINT_REQUEST_GAP;
        let interval = self.config.checkpoint_interval_ms;
        let by_age = uncovered
            && interval > 0
            && self.last_checkpoint_request.elapsed() >= Duration::from_millis(interval);
        // Pages replaced since the last checkpoint began wait for the next one before reuse.
        // No gap: requests are coalesced, so checkpoints for space run back to back while the
        // commits replace pages faster than one checkpoint lets them be reused.
        let (percent, min_pages) = self.space_setting();
        let space = self.shared.store.space_held();
        let by_space = uncovered && space.checkpoint_due(percent, min_pages);
        if by_size || by_age || by_space {
            self.last_checkpoint_request = Instant::now();
            self.bytes_since_checkpoint_request = 0;
            self.shared.request_checkpoint();
        }
        if space.commits_should_wait(percent, min_pages) {
            self.wait_for_space(percent, min_pages);
        }
    }

    fn space_setting(&self) -> (u32, u64) {
        let page_size = self.shared.store.page_size() as u64;
        (
            self.config.checkpoint_space_percent,
            self.config.checkpoint_space_min_bytes / page_size,
        )
    }

    /// Hold the next commits (the caller holds the writer) until a checkpoint has begun since
    /// the held pages passed the limit: it resets their count, and the pages become reusable
    /// once it is durable. The bounded queue in front of the writer carries the wait back to
    /// the callers. Ends at once if the instance latched or stops.
    fn wait_for_space(&self, percent: u32, min_pages: u64) {
        let started = Instant::now();
        // Once: a request made while a checkpoint runs starts the next one right after it,
        // whose capture is what the wait needs.
        self.shared.request_checkpoint();
        loop {
            if self.shared.failed.lock().is_some()
                || self.shared.stopping.load(Ordering::Acquire)
                || !self
                    .shared
                    .store
                    .space_held()
                    .commits_should_wait(percent, min_pages)
            {
                break;
            }
            let mut request = self.shared.checkpoint_request.lock();
            // A timeout, not only the signal: a checkpoint may begin (and reset the count)
            // without finishing soon.
            self.shared
                .checkpoint_finished
                .wait_for(&mut request, Duration::from_millis(10));
        }
        tracing::debug!(waited = ?started.elapsed(), "commits waited for a checkpoint to reuse pages");
    }
}

/// Delete the log segments a durable checkpoint through `lsn` covers. Only space is at stake
/// (recovery skips covered frames, and a covered segment that comes back after a power loss
/// is deleted again), so a refused unlink or a failed directory sync is logged, not
/// returned: it must not fail a commit, an open or a close whose data is safe. A backend
/// that is gone (the machine went down under it, or it is closing) is returned: nothing
/// reaches the disk any more, and an open must not go on as if it had recovered.
pub(in crate::durable) fn delete_covered_segments(wal: &mut WalWriter, lsn: u64) -> Result<()> {
    match wal.remove_covered(lsn) {
        Ok(_) => Ok(()),
        Err(WalError::Io(err))
            if matches!(err.kind, IoErrorKind::Crashed | IoErrorKind::Closed) =>
        {
            Err(WalError::Io(err).into())
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not delete WAL segments a checkpoint covers");
            Ok(())
        }
    }
}
