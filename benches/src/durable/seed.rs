//! The original aedb 0.1.9 (`seed`): `DurabilityMode::Full`, KV pairs in project `bench`, scope
//! `app`; single-pair commits through `commit_with_finality(KvSet, CommitFinality::Durable)`,
//! batches through `commit_many_atomic` (in `Full` mode a commit returns only after its epoch's
//! fsync; the batch path checks `durable_head_seq` and forces an fsync if it ever lags). Every
//! other setting is its `AedbConfig::default()`; it has no automatic checkpoint trigger to set
//! (its checkpoints run on `checkpoint_now` only, in every workload). Its API is
//! async: each instance has its own tokio runtime, and the calling threads block on it.

use std::path::Path;

use anyhow::{Context, Result};
use seed::commit::validation::Mutation;
use seed::config::{AedbConfig, DurabilityMode};
use seed::query::plan::ConsistencyMode;
use seed::{AedbInstance, CommitFinality};

use super::{CheckpointStats, Durable};
use crate::data::Batch;

const PROJECT: &str = "bench";
const SCOPE: &str = "app";

pub struct SeedDurable {
    label: String,
    runtime: tokio::runtime::Runtime,
    db: Option<AedbInstance>,
    dir: std::path::PathBuf,
}

impl SeedDurable {
    pub fn open(label: String, dir: &Path) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("seed: tokio runtime")?;
        let config = AedbConfig {
            durability_mode: DurabilityMode::Full,
            ..AedbConfig::default()
        };
        let db = {
            let _entered = runtime.enter();
            AedbInstance::open(config, dir).context("seed: open")?
        };
        runtime.block_on(async {
            db.create_project(PROJECT).await?;
            db.create_scope(PROJECT, SCOPE).await
        })?;
        Ok(SeedDurable {
            label,
            runtime,
            db: Some(db),
            dir: dir.to_path_buf(),
        })
    }

    fn db(&self) -> &AedbInstance {
        self.db.as_ref().expect("open until close")
    }

    fn kv_set(key: &[u8], value: &[u8]) -> Mutation {
        Mutation::KvSet {
            project_id: PROJECT.into(),
            scope_id: SCOPE.into(),
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }
}

impl Durable for SeedDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let db = self.db();
        self.runtime
            .block_on(db.commit_with_finality(Self::kv_set(key, value), CommitFinality::Durable))?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let db = self.db();
        let mutations = batch
            .pairs()
            .map(|(key, value)| Self::kv_set(key, value))
            .collect();
        self.runtime.block_on(async {
            let result = db.commit_many_atomic(mutations).await?;
            if result.durable_head_seq < result.commit_seq {
                db.force_fsync().await?;
            }
            Ok::<_, seed::error::AedbError>(())
        })?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let db = self.db();
        let entry = self
            .runtime
            .block_on(db.kv_get_no_auth(PROJECT, SCOPE, key, ConsistencyMode::AtLatest))
            .map_err(|err| anyhow::anyhow!("seed: kv_get: {err:?}"))?;
        Ok(entry.map(|entry| entry.value))
    }

    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        let db = self.db();
        let seq = self.runtime.block_on(db.checkpoint_now())?;
        let file = self.dir.join(format!("checkpoint_{seq:016}.aedb.zst"));
        let bytes_written = std::fs::metadata(file).ok().map(|meta| meta.len());
        Ok(Some(CheckpointStats { bytes_written }))
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(self.db().metrics().wal_sync_ops)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(db) = self.db.take() {
            self.runtime.block_on(db.shutdown())?;
            let _entered = self.runtime.enter();
            drop(db);
        }
        Ok(())
    }
}

impl Drop for SeedDurable {
    fn drop(&mut self) {
        // The instance's tasks live on this runtime: drop it inside.
        if let Some(db) = self.db.take() {
            let _entered = self.runtime.enter();
            drop(db);
        }
    }
}
