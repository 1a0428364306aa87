//! `AedbInstance`: the public API of the README — namespaces, DDL, mutations, queries, KV —
//! over the durable engine. Every write is a `Mutation` applied inside one commit of the
//! engine's pipeline; every read runs on a pinned snapshot chosen by its `ConsistencyMode`.
//!
//! One file per API area, each an `impl AedbInstance` block: `write.rs` (commits, envelopes,
//! DDL, preflight), `namespaces.rs` (projects, scopes, tables), `read.rs` (queries, read
//! transactions), `kv.rs` (KV and counters). The logic lives below: mutation application in
//! `commit/`, stored data in `stored/`, queries in the query crate.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aedb_catalog::keys::encode_key;
use aedb_pager::io::Vfs;
use aedb_pager::CheckpointInfo;

use crate::commit::apply::Limits;
use crate::commit::envelope::IdempotencyWindow;
use crate::commit::row_rules::RowLimits;
use crate::config::AedbConfig;
use crate::cursor::CursorCodec;
use crate::durable::Engine;
use crate::error::{AedbError, Result};
use crate::schema_cache::SchemaCache;
use crate::stored::catalog;

mod accumulator_reads;
mod accumulators;
pub mod engine_interface;
mod events;
mod kv;
mod kv_read;
mod lifecycle;
mod namespaces;
mod processors;
mod read;
mod security;
mod write;

pub use crate::commit::{PreflightPlan, PreflightResult};
pub use accumulator_reads::{AccumulatorExposureMetrics, AccumulatorLag};
pub use events::{EventOutboxRecord, EventStreamPage};
pub use kv_read::{prefix_bounds as kv_prefix_bounds, KvScanResult};
pub use lifecycle::{LifecycleEvent, LifecycleHook};
pub use namespaces::{ProjectInfo, ScopeInfo, TableInfo};
pub use processors::{
    ReactiveProcessorDeadLetter, ReactiveProcessorHealth, ReactiveProcessorInfo,
    ReactiveProcessorLag, ReactiveProcessorOptions, ReactiveProcessorRuntimeStatus,
    ReactiveProcessorSloStatus,
};
pub use read::ReadTx;

pub struct AedbInstance {
    engine: Arc<Engine>,
    config: AedbConfig,
    cursors: CursorCodec,
    schemas: SchemaCache,
    /// Reactive processors of this process; dropped with the instance, which ends their tasks.
    processors: processors::Processors,
    hooks: lifecycle::Hooks,
    caller_policy: security::CallerPolicy,
    /// The grants of recent callers and the read policies of tables, for `_as` reads.
    authz: crate::permission::cache::AuthzCache,
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl AedbInstance {
    /// Open (creating when empty) the database in `dir`, recovering it after a crash.
    pub fn open(config: AedbConfig, dir: &Path) -> Result<Self> {
        let vfs =
            aedb_pager::io::os_vfs(config.io_backend).map_err(|e| AedbError::Io(e.to_string()))?;
        Self::open_with_vfs(config, dir, vfs)
    }

    /// [`Self::open`] on any file system, as [`Engine::open_with_vfs`]: every file of the
    /// database (the data file, the log, the cursor key) goes through `vfs`. With the
    /// simulated disk (`aedb::storage::io::sim::SimVfs`), crash tests run the whole API on a
    /// disk that can be crashed at any write point; there no directory lock is taken.
    pub fn open_with_vfs(config: AedbConfig, dir: &Path, vfs: Arc<dyn Vfs>) -> Result<Self> {
        let engine = Engine::open_with_vfs(config.clone(), dir, vfs)?;
        Self::over(engine, config, dir)
    }

    /// The instance over a writable engine just opened on `dir`.
    fn over(engine: Engine, config: AedbConfig, dir: &Path) -> Result<Self> {
        catalog::watch(&engine)?;
        crate::stored::grants::watch(&engine)?;
        crate::stored::read_policies::watch(&engine)?;
        let cursors = CursorCodec::for_dir(&*engine.vfs(), dir, config.hmac_key, false)?;
        Ok(AedbInstance {
            engine: Arc::new(engine),
            config,
            cursors,
            schemas: SchemaCache::default(),
            processors: Default::default(),
            hooks: Default::default(),
            caller_policy: security::CallerPolicy::Optional,
            authz: Default::default(),
        })
    }

    /// Open for reading only: no byte of the directory changes and no lock is taken, so it
    /// works beside a live process (seen as of its newest durable log frame). Writes return
    /// `AedbError::ReadOnly`.
    pub fn open_read_only(config: AedbConfig, dir: &Path) -> Result<Self> {
        let engine = Engine::open_read_only(config.clone(), dir)?;
        catalog::watch(&engine)?;
        crate::stored::grants::watch(&engine)?;
        crate::stored::read_policies::watch(&engine)?;
        let cursors = CursorCodec::for_dir(&*engine.vfs(), dir, config.hmac_key, true)?;
        Ok(AedbInstance {
            engine: Arc::new(engine),
            config,
            cursors,
            schemas: SchemaCache::default(),
            processors: Default::default(),
            hooks: Default::default(),
            caller_policy: security::CallerPolicy::Optional,
            authz: Default::default(),
        })
    }

    /// The durable engine underneath (for storage-level tools and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Wait until the checkpoint the open left due after replaying the log is over (at once
    /// when it replayed nothing): reads run and commits queue meanwhile, and this is for a
    /// caller that wants the open's whole work done, or its failure reported, before it goes
    /// on. It blocks the calling thread (call it before serving, or in `spawn_blocking`); an
    /// error means the instance is latched. [`Engine::wait_for_recovery_checkpoint`].
    pub fn wait_for_recovery_checkpoint(&self) -> Result<()> {
        self.engine.wait_for_recovery_checkpoint()
    }

    pub(super) fn limits(&self) -> Limits {
        Limits {
            rows: RowLimits {
                max_table_value_bytes: self.config.max_table_value_bytes,
                max_scan_rows: self.config.max_scan_rows,
                max_batch_rows: self.config.max_batch_rows,
            },
            max_kv_key_bytes: self.config.max_kv_key_bytes,
            max_kv_value_bytes: self.config.max_kv_value_bytes,
            max_event_payload_bytes: self.config.max_event_payload_bytes,
            now_micros: now_micros(),
            idempotency_window: IdempotencyWindow {
                commits: self.config.idempotency_window_commits,
                micros: self
                    .config
                    .idempotency_window_seconds
                    .saturating_mul(1_000_000),
            },
            refused_exposures: Default::default(),
            lifecycle_sink: Some(self.hooks.sink()),
        }
    }

    // ---- operations ----

    /// Checkpoint now; commits and queries go on meanwhile.
    pub async fn checkpoint_now(&self) -> Result<CheckpointInfo> {
        self.engine.checkpoint_now()
    }

    /// Make everything durable, checkpoint, release the directory lock.
    pub async fn shutdown(self) -> Result<()> {
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.shutdown(),
            Err(_) => Err(AedbError::Validation(
                "the instance is still in use elsewhere".into(),
            )),
        }
    }
}

/// The encoded primary key of a tuple (for callers building keys, e.g. tests and tools).
pub fn encode_primary_key(values: &[aedb_catalog::types::Value]) -> Vec<u8> {
    encode_key(values)
}
