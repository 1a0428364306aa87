//! Recovery at open: analysis (the newest valid meta page, the log scanned from its WAL
//! position), redo (every valid frame merged into the trees in sorted batches, `redo.rs`), and
//! the log writer opened after the last valid frame.

use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::Vfs;
use aedb_pager::PageStore;
use aedb_wal::{scan, Integrity, WalConfig, WalError, WalWriter};

use super::redo::{redo_buffer_bytes, redo_loan_bytes, RedoBatch};
use super::{RecoveryReport, WAL_DIR};
use crate::config::AedbConfig;
use crate::error::{AedbError, Result};

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
    let outcome = scan(
        &**vfs,
        &dir.join(WAL_DIR),
        meta.wal_position,
        &integrity,
        config.recovery_mode,
        |header, payload| {
            batch.apply(store, header.seq, payload).map_err(|error| {
                tracing::error!(lsn = header.lsn, seq = header.seq, %error, "redo stopped");
                apply_error = Some(error);
                WalError::BadRecord(format!("redo stopped at LSN {}", header.lsn))
            })
        },
    );
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
/// position applied in LSN order, a checkpoint when the redo was long.
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
    let mut wal = WalWriter::open(
        Arc::clone(vfs),
        &wal_dir,
        wal_config,
        &outcome,
        meta.wal_position,
    )?;
    if outcome.frames_replayed > config.recovery_checkpoint_frames {
        let info = store.checkpoint()?;
        if info.readers_oldest.is_none() {
            wal.remove_covered(info.meta.seq)?;
        }
        report.checkpointed_after_redo = true;
    }
    Ok((wal, report))
}
