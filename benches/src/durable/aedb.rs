//! aedb's durable engine (`aedb::Engine`): `DurabilityMode::Full`, `CommitFinality::Durable`,
//! one tree named `kv`.
//!
//! Checkpoints as in normal operation (W1, W2): `AedbConfig::default()`'s triggers, untouched — a
//! checkpoint every `checkpoint_wal_bytes` (256 MiB) of log and at least every
//! `checkpoint_interval_ms` (60 s) while there are new commits, and for space
//! (`checkpoint_space_percent`). Manual checkpoints (W8, W9): `checkpoint_interval_ms` 0,
//! `checkpoint_wal_bytes` 2^50 and `checkpoint_space_percent` 0, so only the workload's
//! `checkpoint_now` runs one (recovery's own checkpoint after a replay stays at its default).
//! Otherwise the defaults, except the buffer pool (the workload's cache size), the page size and
//! O_DIRECT (the run's `--page-size` and `--direct-io`).

use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{CommitFinality, Engine};
use anyhow::{Context, Result};

use super::{CheckpointStats, Durable, DurableConfig};
use crate::data::Batch;
use crate::engines::EngineSpec;

const TREE: &str = "kv";

pub struct AedbDurable {
    label: String,
    engine: Engine,
    page_size: u64,
}

/// The configuration W1, W2, W8 and W9 open aedb with.
pub fn config(spec: &EngineSpec, config: DurableConfig) -> AedbConfig {
    let defaults = AedbConfig::default();
    let (checkpoint_interval_ms, checkpoint_wal_bytes, checkpoint_space_percent) =
        if config.manual_checkpoints {
            (0, 1 << 50, 0)
        } else {
            (
                defaults.checkpoint_interval_ms,
                defaults.checkpoint_wal_bytes,
                defaults.checkpoint_space_percent,
            )
        };
    AedbConfig {
        durability_mode: DurabilityMode::Full,
        checkpoint_interval_ms,
        checkpoint_wal_bytes,
        checkpoint_space_percent,
        buffer_pool_bytes: config.cache_bytes,
        page_size: spec.page_size,
        direct_io: spec.direct_io,
        ..defaults
    }
}

impl AedbDurable {
    pub fn open(
        label: String,
        dir: &Path,
        spec: &EngineSpec,
        config: DurableConfig,
    ) -> Result<Self> {
        let engine = Engine::open(self::config(spec, config), dir)
            .context("aedb: open the durable engine")?;
        Ok(AedbDurable {
            label,
            engine,
            page_size: u64::from(spec.page_size),
        })
    }
}

impl Durable for AedbDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.engine
            .commit_blocking(CommitFinality::Durable, move |txn| {
                txn.insert(TREE, &key, &value)?;
                Ok(())
            })
            .context("aedb: durable commit")?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = batch
            .pairs()
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
            .collect();
        self.engine
            .commit_blocking(CommitFinality::Durable, move |txn| {
                for (key, value) in &pairs {
                    txn.insert(TREE, key, value)?;
                }
                Ok(())
            })
            .context("aedb: durable batch commit")?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.engine.snapshot().get(TREE, key)?)
    }

    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        let info = self.engine.checkpoint_now().context("aedb: checkpoint")?;
        Ok(Some(CheckpointStats {
            bytes_written: Some(info.pages_written as u64 * self.page_size),
        }))
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(self.engine.group_stats().1)
    }

    fn log_replay(&self) -> Option<super::LogReplay> {
        let report = self.engine.recovery_report();
        Some(super::LogReplay {
            frames: report.frames_replayed,
            bytes: report.bytes_replayed,
            checkpointed_after_redo: report.checkpointed_after_redo,
        })
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.engine.shutdown().context("aedb: shutdown")?;
        Ok(())
    }
}
