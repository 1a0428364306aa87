//! One copy-on-write transaction for a group of commits (design 3 of #10).
//!
//! The leader applies every commit of its group to one write transaction rather than one
//! transaction each. The pages the first commit copies (the root, the branches above the
//! leaves it writes, the tree of trees) are then written in place by the commits after it,
//! and the tree records, the publish and the retained version are paid once a group instead
//! of once a commit: at 64 writers a commit's apply was about 39 µs, most of it copying the
//! same upper pages again (session 11's measurement, ARCHITECTURE "Decisions").
//!
//! Each commit keeps its own sequence, frame (LSN = sequence) and answer. The frames are
//! appended when the group is sealed, after its one `prepare`, so invariant 2 of
//! `pipeline/mod.rs` holds: an appended frame is never taken back.
//!
//! A commit that fails (an error, a panic, a poison) or discards after writing must leave no
//! trace, but its writes share pages with the commits before it. Instead of an undo log, the
//! transaction is dropped and rebuilt by replaying the records of the commits before it, as
//! recovery would (their records are exactly their effects). Failed commits are rare next to
//! successful ones, and a rebuild costs at most what the group cost so far.
//!
//! Invariants:
//! 1. `applied` holds the group's commits in order; the logged ones have consecutive
//!    sequences from the transaction's base + 1, and a discard waits for the one before it.
//! 2. `txn` holds exactly the effects of the logged commits in `applied`.
//! 3. Nothing of a group reaches the log before it is sealed, so a group that fails before
//!    then answers every commit of it with an error, and no crash can bring one back.
//!
//! Versions: readers see a group's commits together, when it is sealed. A sequence inside a
//! group other than its last is not a version of its own (`Engine::snapshot_at`).

use std::any::Any;

use aedb_pager::{PageStore, WriteTxn};
use aedb_wal::{decode_record_ref, WalOpRef};
use tokio::sync::oneshot;

use super::pipeline::{Committed, Shared};
use super::txn::{AfterPublish, LoggedTxn};
use crate::error::{AedbError, Result};

/// Log bytes a group transaction gathers at most before it is sealed and a new one begins (the
/// frames wait in memory until then, and a rebuild replays at most this much); less with
/// small log segments (`Writer::seal_bytes`).
pub(super) const SEAL_BYTES: usize = 4 << 20;

pub(super) type Reply = oneshot::Sender<Result<Committed>>;

/// A commit applied to the group's transaction, answered once the group is sealed and its
/// frame written or synced.
pub(super) struct Applied {
    /// 0 for a discard (no frame, no sequence consumed).
    pub seq: u64,
    /// The commit whose durability makes this answer durable (itself, or for a discard the
    /// commit before it).
    pub wait_for: u64,
    /// The frame's payload; `None` for a discard.
    pub payload: Option<Vec<u8>>,
    pub durable: bool,
    pub value: Box<dyn Any + Send>,
    pub reply: Reply,
    pub after_publish: Vec<AfterPublish>,
    pub marked: bool,
}

/// The write transaction a group's commits are applied to, and those commits.
pub(super) struct GroupTxn {
    /// `None` only while a commit's body holds it, or after a failed rebuild.
    txn: Option<WriteTxn>,
    base_seq: u64,
    applied: Vec<Applied>,
    logged: u64,
    logged_bytes: usize,
    seal_bytes: usize,
    /// The transaction was rebuilt: the group is sealed before another commit joins it, so
    /// no record is replayed twice (many failures in a row would otherwise replay the group
    /// once each).
    rebuilt: bool,
}

/// What one commit needs from the caller to be applied.
pub(super) struct CommitCall {
    pub durable: bool,
    pub reply: Reply,
}

impl GroupTxn {
    pub fn begin(store: &PageStore, seal_bytes: usize) -> Result<Self> {
        let txn = store.begin_write()?;
        Ok(GroupTxn {
            base_seq: txn.base().seq,
            txn: Some(txn),
            applied: Vec::new(),
            logged: 0,
            logged_bytes: 0,
            seal_bytes,
            rebuilt: false,
        })
    }

    /// The sequence the next logged commit gets.
    fn next_seq(&self) -> u64 {
        self.base_seq + 1 + self.logged
    }

    /// Whether the group should be sealed before it takes another commit.
    pub fn is_full(&self) -> bool {
        self.rebuilt || self.logged_bytes >= self.seal_bytes
    }

    /// Hand the transaction to the next commit's body, as that commit's sequence.
    pub fn open_commit(
        &mut self,
        make: impl FnOnce(WriteTxn, u64) -> LoggedTxn,
    ) -> Result<LoggedTxn> {
        let seq = self.next_seq();
        let txn = self.txn.take().ok_or_else(|| {
            // Unreachable: a group whose rebuild failed is failed and dropped at once.
            AedbError::Failed("a commit group lost its write transaction".to_string())
        })?;
        Ok(make(txn, seq))
    }

    /// Take back the transaction from a commit whose body `ran`: keep the commit (to be
    /// answered when the group is sealed), or answer its failure and take its writes out.
    /// `Err` when the transaction could not be rebuilt: the caller fails the whole group.
    pub fn close_commit(
        &mut self,
        store: &PageStore,
        shared: &Shared,
        mut logged: LoggedTxn,
        ran: Result<Box<dyn Any + Send>>,
        call: CommitCall,
    ) -> Result<()> {
        let seq = logged.seq();
        let touched = logged.is_touched();
        let poison = logged.take_poison();
        let discarded = logged.is_discarded();
        let wrote_watched = logged.wrote_watched();
        let deleted_from = logged.take_deleted_from();
        let after_publish = logged.take_after_publish();
        let marked = logged.is_marked();
        let (txn, record) = logged.into_parts();
        self.txn = Some(txn);
        let value = match (ran, poison) {
            (Err(err), _) | (Ok(_), Some(err)) => {
                let _ = call.reply.send(Err(err));
                return self.take_out(store, touched);
            }
            (Ok(value), None) => value,
        };
        if discarded {
            // Nothing is logged, but the answer rests on what the body read: the commits
            // before it (an idempotent replay answers with its original commit).
            if let Err(err) = self.take_out(store, touched) {
                let _ = call.reply.send(Err(err.clone()));
                return Err(err);
            }
            self.applied.push(Applied {
                seq: 0,
                wait_for: seq - 1,
                payload: None,
                durable: call.durable,
                value,
                reply: call.reply,
                after_publish: Vec::new(),
                marked: false,
            });
            return Ok(());
        }
        let payload = record.finish();
        if payload.len() > aedb_wal::frame::MAX_PAYLOAD_BYTES {
            // The record's own bound (`max_transaction_bytes`) keeps below it; checked here
            // so that appending at the seal cannot refuse a frame.
            let _ = call.reply.send(Err(AedbError::TransactionTooLarge {
                len: payload.len(),
                max: aedb_wal::frame::MAX_PAYLOAD_BYTES,
            }));
            return self.take_out(store, true);
        }
        // Before the next body runs and before the group is published: the next commit's
        // checks (a read set's structural versions, a schema cache) must see this one.
        if wrote_watched {
            shared
                .watched_changed_at
                .fetch_max(seq, std::sync::atomic::Ordering::SeqCst);
        }
        if !deleted_from.is_empty() {
            shared.structural.lock().note(deleted_from, seq);
        }
        self.logged += 1;
        // Counted as frames: what a log segment has to hold.
        self.logged_bytes += aedb_wal::frame::frame_bytes(payload.len());
        self.applied.push(Applied {
            seq,
            wait_for: seq,
            payload: Some(payload),
            durable: call.durable,
            value,
            reply: call.reply,
            after_publish,
            marked,
        });
        Ok(())
    }

    /// Take a failed or discarded commit's writes out of the transaction (nothing to do when
    /// none reached it): rebuild it from the commits before.
    fn take_out(&mut self, store: &PageStore, touched: bool) -> Result<()> {
        if !touched {
            return Ok(());
        }
        // Dropping the transaction discards every page it wrote and releases the writer.
        self.txn = None;
        // With nothing logged yet, the rebuild replayed nothing: no reason to seal.
        self.rebuilt = self.logged > 0;
        let txn = rebuild(store, &self.applied)?;
        debug_assert_eq!(
            txn.base().seq,
            self.base_seq,
            "the head moved inside a group"
        );
        tracing::debug!(
            commits = self.logged,
            "a commit group was rebuilt after a failed commit"
        );
        self.txn = Some(txn);
        Ok(())
    }

    /// The transaction and the commits applied to it, for sealing.
    pub fn into_parts(self) -> (Option<WriteTxn>, Vec<Applied>) {
        (self.txn, self.applied)
    }

    /// Answer every commit of a group that cannot be logged with `err`.
    pub fn fail(self, err: &AedbError) {
        fail_all(self.applied, err);
    }
}

/// The sequence of the last logged commit of `applied` (none: only discards).
pub(super) fn last_logged(applied: &[Applied]) -> Option<u64> {
    applied
        .iter()
        .rev()
        .find(|c| c.payload.is_some())
        .map(|c| c.seq)
}

/// Answer `applied` with `err`: nothing of them was logged or published.
pub(super) fn fail_all(applied: Vec<Applied>, err: &AedbError) {
    for commit in applied {
        let _ = commit.reply.send(Err(err.clone()));
    }
}

/// A new write transaction holding the effects of the logged commits of `applied`.
pub(super) fn rebuild(store: &PageStore, applied: &[Applied]) -> Result<WriteTxn> {
    let mut txn = store.begin_write()?;
    for payload in applied.iter().filter_map(|a| a.payload.as_deref()) {
        replay(&mut txn, payload)?;
    }
    Ok(txn)
}

/// Apply a commit's logged record to `txn`: what the commit's body did, op by op.
fn replay(txn: &mut WriteTxn, payload: &[u8]) -> Result<()> {
    for op in decode_record_ref(payload)? {
        match op {
            WalOpRef::Put { tree, key, value } => {
                txn.insert(tree, key, value)?;
            }
            WalOpRef::Delete { tree, key } => {
                txn.remove(tree, key)?;
            }
            WalOpRef::CreateTree { tree } => txn.create_tree(tree)?,
            WalOpRef::DropTree { tree } => {
                txn.drop_tree(tree)?;
            }
        }
    }
    Ok(())
}
