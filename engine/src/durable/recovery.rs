//! Recovery at open: analysis (the newest valid meta page, the log scanned from its WAL
//! position), redo (every valid frame merged into the trees in sorted batches, `redo.rs`), and
//! the log writer opened after the last valid frame.

use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::Vfs;
use aedb_pager::PageStore;
use std::sync::mpsc;

use aedb_wal::frame::FrameHeader;
use aedb_wal::{scan, Integrity, Result as WalResult, ScanOutcome, WalConfig, WalError, WalWriter};

use super::redo::{redo_buffer_bytes, redo_loan_bytes, RedoBatch};
use super::{RecoveryReport, WAL_DIR};
use crate::config::AedbConfig;
use crate::error::{AedbError, Result};

/// Payload bytes the scanning thread hands redo at a time (a larger frame goes alone).
const SCAN_BATCH_BYTES: usize = 4 << 20;

/// Frames read and verified, copied out of the scan's segment buffer for redo.
#[derive(Default)]
struct ScannedFrames {
    payloads: Vec<u8>,
    /// Each frame's sequence, LSN and where its payload ends in `payloads`.
    frames: Vec<(u64, u64, usize)>,
}

impl ScannedFrames {
    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether `payload` would take this batch past its bound (a batch always takes one).
    fn is_full_for(&self, payload: &[u8]) -> bool {
        !self.is_empty() && self.payloads.len() + payload.len() > SCAN_BATCH_BYTES
    }

    fn push(&mut self, header: &FrameHeader, payload: &[u8]) {
        self.payloads.extend_from_slice(payload);
        self.frames
            .push((header.seq, header.lsn, self.payloads.len()));
    }

    fn clear(&mut self) {
        self.payloads.clear();
        self.frames.clear();
    }

    /// Hand each frame to `apply` in log order, until one fails.
    fn apply_each(
        &self,
        apply: &mut impl FnMut(u64, u64, &[u8]) -> std::result::Result<(), ()>,
    ) -> std::result::Result<(), ()> {
        let mut start = 0;
        for &(seq, lsn, end) in &self.frames {
            apply(seq, lsn, &self.payloads[start..end])?;
            start = end;
        }
        Ok(())
    }
}

/// What a scan hands each frame to.
type Redo<'r> = &'r mut dyn FnMut(&FrameHeader, &[u8]) -> WalResult<()>;
/// A scan of the log, handing each valid frame to its argument in order.
type ScanLog<'a> = dyn Fn(Redo<'_>) -> WalResult<ScanOutcome> + Sync + 'a;

/// Run `scan_log` (reading and verifying the log: its I/O, CRCs and hash chain) on a thread of
/// its own while this thread redoes the frames it hands over, in order (design 4 of #10: the
/// log is read and verified on another core). When the thread cannot start, the scan runs
/// here, frame by frame. `apply` failing stops the scan at its next hand-off.
///
/// Memory: the hand-off is a rendezvous, so at most three batch buffers exist: one being
/// filled, one being applied, and one emptied on its way back to be filled again (each at most
/// [`SCAN_BATCH_BYTES`], or one larger frame). A panic of the scan is passed on as raised.
fn scan_beside_redo(
    scan_log: &ScanLog<'_>,
    apply: &mut impl FnMut(u64, u64, &[u8]) -> std::result::Result<(), ()>,
) -> WalResult<ScanOutcome> {
    let stopped = || WalError::BadRecord("redo stopped".into());
    // The scan's warnings (a permissive drop) go where this thread's go.
    let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<ScannedFrames>(0);
        let (recycle, recycled) = mpsc::sync_channel::<ScannedFrames>(1);
        let scanner = std::thread::Builder::new()
            .name("aedb-log-scan".into())
            .spawn_scoped(scope, move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _entered = span.enter();
                    let mut pending = ScannedFrames::default();
                    let outcome = scan_log(&mut |header, payload| {
                        if pending.is_full_for(payload) {
                            let next = recycled.try_recv().unwrap_or_default();
                            sender
                                .send(std::mem::replace(&mut pending, next))
                                .map_err(|_| stopped())?;
                        }
                        pending.push(header, payload);
                        Ok(())
                    });
                    // What the scan accepted before it ended (a permissive drop ends it with
                    // `Ok`), for redo to apply whatever the outcome.
                    if !pending.is_empty() {
                        let _ = sender.send(pending);
                    }
                    outcome
                })
            });
        let scanner = match scanner {
            Ok(scanner) => scanner,
            Err(err) => {
                tracing::warn!(error = %err, "no log scan thread: scanning on this one");
                return scan_log(&mut |header, payload| {
                    apply(header.seq, header.lsn, payload).map_err(|()| stopped())
                });
            }
        };
        for mut frames in receiver.iter() {
            if frames.apply_each(apply).is_err() {
                break;
            }
            frames.clear();
            let _ = recycle.try_send(frames);
        }
        // Hanging up stops a scan still running (its next hand-off fails).
        drop(receiver);
        match scanner.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Analysis and redo, nothing written: returns what the log scan found and the report.
pub(super) fn redo_log(
    store: &PageStore,
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &AedbConfig,
) -> Result<(aedb_wal::ScanOutcome, RecoveryReport)> {
    let meta = store.durable_meta();
    let integrity = integrity(config);
    // Logged ops are buffered and merged into the trees in sorted batches, all published at
    // the end as the last redone commit's version (`redo.rs`). The buffer's memory is lent by
    // the pool until then.
    let loan = store.pool().lend(redo_loan_bytes(config.buffer_pool_bytes));
    let redo_buffer = redo_buffer_bytes(loan.bytes());
    let redo_lent_frames = loan.bytes() / store.page_size() as u64;
    let write_backs_before = store.pool_stats().write_backs;
    let mut batch = RedoBatch::new(store.head().seq, redo_buffer);
    // A failed apply (a write-back's I/O error in a merge, a damaged page, a bad record) is
    // returned as raised, typed; the scan only needs to stop. The frame it stopped at is logged:
    // a merge's failure is not that frame's fault.
    let mut apply_error: Option<AedbError> = None;
    let mut apply = |seq: u64, lsn: u64, payload: &[u8]| {
        batch.apply(store, seq, payload).map_err(|error| {
            tracing::error!(lsn, seq, %error, "redo stopped");
            apply_error = Some(error);
        })
    };
    let wal_dir = dir.join(WAL_DIR);
    let scan_log = |redo: Redo<'_>| {
        scan(
            &**vfs,
            &wal_dir,
            meta.wal_position,
            &integrity,
            config.recovery_mode,
            redo,
        )
    };
    let outcome = scan_beside_redo(&scan_log, &mut apply);
    if let Some(error) = apply_error {
        return Err(error);
    }
    let outcome = outcome?;
    batch.finish(store)?;
    drop(batch);
    let redo_write_backs = store.pool_stats().write_backs - write_backs_before;
    drop(loan);
    // Redo evicts pages through the pool: a write-back that failed latched it, and what was
    // redone may not be on disk.
    if let Some(reason) = store.failure() {
        return Err(AedbError::Failed(format!(
            "recovery could not write: {reason}"
        )));
    }
    let report = RecoveryReport {
        checkpoint_seq: meta.seq,
        frames_replayed: outcome.frames_replayed,
        bytes_replayed: outcome.bytes_replayed,
        recovered_seq: store.head().seq,
        dropped: outcome.dropped.clone(),
        checkpointed_after_redo: false,
        redo_buffer_bytes: redo_buffer as u64,
        redo_lent_frames,
        redo_write_backs,
    };
    if let Some(dropped) = &outcome.dropped {
        tracing::warn!(%dropped, "recovery stopped before the end of the log files");
    }
    Ok((outcome, report))
}

pub(super) fn integrity(config: &AedbConfig) -> Integrity {
    Integrity {
        hash_chain: config.hash_chain_required,
        hmac_key: config.hmac_key,
    }
}

/// Recovery, then the log writer: the newest valid meta page, every valid frame after its WAL
/// position applied in LSN order; the report says whether a checkpoint is due after it.
pub(super) fn recover(
    store: &PageStore,
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &AedbConfig,
) -> Result<(WalWriter, RecoveryReport)> {
    let meta = store.durable_meta();
    let wal_dir = dir.join(WAL_DIR);
    // What redo reads must be what a power loss after this open leaves (the store synced the
    // data file as it opened): see `segment::sync_all`.
    aedb_wal::segment::sync_all(&**vfs, &wal_dir)?;
    vfs.sync_dir(dir)
        .map_err(|e| AedbError::Io(e.to_string()))?;
    let (outcome, mut report) = redo_log(store, vfs, dir, config)?;
    let wal_config = WalConfig {
        segment_bytes: config.max_segment_bytes,
        integrity: integrity(config),
    };
    let wal = WalWriter::open(
        Arc::clone(vfs),
        &wal_dir,
        wal_config,
        &outcome,
        meta.wal_position,
    )?;
    // The checkpoint itself is run by the first group's leader once the engine is up, before
    // that group (`Writer::recovery_checkpoint`): reads go on meanwhile.
    report.checkpointed_after_redo = outcome.frames_replayed > config.recovery_checkpoint_frames;
    Ok((wal, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `frames` frames of 1 MiB each, handed to redo in order; the scan stops at the
    /// first frame redo refuses, as `aedb_wal::scan` does.
    fn fake_log(
        frames: u64,
        scanned: &std::sync::atomic::AtomicU64,
    ) -> impl Fn(Redo<'_>) -> WalResult<ScanOutcome> + Sync + '_ {
        move |redo| {
            for seq in 1..=frames {
                let header = FrameHeader {
                    len: 1 << 20,
                    lsn: seq,
                    seq,
                    synced_through: 0,
                    flags: 0,
                };
                let payload = vec![seq as u8; 1 << 20];
                scanned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                redo(&header, &payload)?;
            }
            Ok(ScanOutcome {
                frames_replayed: frames,
                ..ScanOutcome::default()
            })
        }
    }

    #[test]
    fn every_frame_scanned_beside_redo_is_applied_in_log_order() {
        let scanned = std::sync::atomic::AtomicU64::new(0);
        let mut applied = Vec::new();
        // 20 MiB: several hand-offs, and a last partial one.
        let outcome = scan_beside_redo(&fake_log(20, &scanned), &mut |seq, lsn, payload| {
            assert_eq!(seq, lsn);
            assert!(payload.len() == 1 << 20 && payload.iter().all(|b| *b == seq as u8));
            applied.push(seq);
            Ok(())
        });
        assert_eq!(outcome.expect("the scan succeeds").frames_replayed, 20);
        assert_eq!(applied, (1..=20).collect::<Vec<u64>>());
    }

    #[test]
    fn a_panicking_scan_is_passed_on_as_raised_not_reported_as_damage() {
        let panicking = |_: Redo<'_>| -> WalResult<ScanOutcome> { panic!("a bug in the scan") };
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scan_beside_redo(&panicking, &mut |_, _, _| Ok(()))
        }));
        let Err(panic) = ended else {
            panic!("the scan's panic did not reach the caller");
        };
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"a bug in the scan"));
    }

    #[test]
    fn a_refused_frame_stops_the_scan_and_nothing_after_it_is_applied() {
        let scanned = std::sync::atomic::AtomicU64::new(0);
        let mut applied = Vec::new();
        let outcome = scan_beside_redo(&fake_log(1_000, &scanned), &mut |seq, _, _| {
            if seq == 7 {
                return Err(());
            }
            applied.push(seq);
            Ok(())
        });
        assert!(outcome.is_err(), "the scan reports that redo stopped");
        assert_eq!(applied, (1..=6).collect::<Vec<u64>>());
        // The scan thread stopped within what was in flight, not at the end of the log.
        let read = scanned.load(std::sync::atomic::Ordering::Relaxed);
        // One batch being applied, one filled (and the frame it stopped at).
        let in_flight = ((2 * SCAN_BATCH_BYTES) >> 20) as u64 + 1;
        assert!(read <= 7 + in_flight, "scanned {read} frames");
    }
}
