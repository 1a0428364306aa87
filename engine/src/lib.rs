//! aedb: an embedded, transactional storage engine.
//!
//! Layers: the storage core (`aedb::storage`: paged copy-on-write B+trees, buffer pool,
//! snapshots, checkpoints, over io_uring or pread/pwrite), the write-ahead log (`aedb::wal`),
//! the durable engine (`durable`: recovery, the group-commit pipeline, checkpoints), and
//! the API of the README (`AedbInstance`: namespaces, tables, KV, queries).

mod api;
pub mod commit;
pub mod config;
mod cursor;
mod durable;
pub mod error;
pub mod permission;
mod schema_cache;
pub mod stored;
pub(crate) mod trust_marker;

/// Schemas, types and DDL (`aedb::catalog::DdlOperation`, `aedb::catalog::types::Value`, …).
pub mod catalog {
    pub use aedb_catalog::namespace::DEFAULT_SCOPE_ID;
    pub use aedb_catalog::*;

    /// Table schemas (`aedb::catalog::schema::{TableSchema, ColumnDef, …}`), and the
    /// alterations of `DdlOperation::AlterTable`, where the original has them.
    pub mod schema {
        pub use aedb_catalog::ddl::TableAlteration;
        pub use aedb_catalog::schema::*;
    }
}

/// Queries (`aedb::query::plan::{Query, Expr, QueryOptions, ConsistencyMode}`).
pub mod query {
    pub use crate::api::KvScanResult;
    pub use aedb_query::*;

    /// Query results (`aedb::query::executor::QueryResult`), where the original has them.
    pub mod executor {
        pub use aedb_query::exec::*;
        pub use aedb_query::plan::QueryResult;
    }
}

/// Preflight results (`aedb::preflight::PreflightResult`), where the original has them.
pub mod preflight {
    pub use crate::api::{PreflightPlan, PreflightResult};
}

/// The storage core as users of `aedb` meet it: the I/O backends (the simulated one too, for
/// crash tests of their own code), snapshots and what reads them, checkpoint results, the
/// pager's errors, and the invariant checker. Its internals (pages, the pool, B+tree nodes,
/// allocation) are the `aedb-pager` crate's, which the tools use directly.
pub mod storage {
    pub use aedb_pager::check::check_file;
    pub use aedb_pager::io;
    pub use aedb_pager::{
        max_key_bytes, BackendKind, CheckReport, CheckpointInfo, IoBackendChoice, Meta, PageStore,
        PagerError, Range, ReadTrees, Snapshot, TreeRecord, TreeView, Version, Violation,
        MAX_VALUE_BYTES,
    };

    /// Page identity and kind, as errors name them.
    pub mod page {
        pub use aedb_pager::page::{PageId, PageType, PAGE_SIZE_DEFAULT};
    }

    /// KV entries (`aedb::storage::keyspace::KvEntry`), where the original has them.
    pub mod keyspace {
        /// The bounds of the keys starting with a prefix (for `kv_scan_range*`).
        pub use crate::api::kv_prefix_bounds;
        pub use crate::stored::kv::KvEntry;
    }
}
/// The write-ahead log: see the `aedb-wal` crate.
pub use aedb_wal as wal;

pub use aedb_catalog::DdlResult;
/// Effect batches, keyed state and pull-based processors (`aedb::engine_interface`).
pub use api::engine_interface;
pub use api::{
    encode_primary_key, AccumulatorExposureMetrics, AccumulatorLag, AedbInstance,
    EventOutboxRecord, EventStreamPage, KvScanResult, LifecycleEvent, LifecycleHook, PreflightPlan,
    PreflightResult, ProjectInfo, ReactiveProcessorDeadLetter, ReactiveProcessorHealth,
    ReactiveProcessorInfo, ReactiveProcessorLag, ReactiveProcessorOptions,
    ReactiveProcessorRuntimeStatus, ReactiveProcessorSloStatus, ReadTx, ScopeInfo, TableInfo,
};
pub use durable::{CommitOutcome, Engine, LoggedTxn, RecoveryReport, DATA_FILE, WAL_DIR};
pub use error::AedbError;
pub use permission::{CallerContext, Permission};

/// When a commit call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitFinality {
    /// Once the commit is readable by new snapshots.
    #[default]
    Visible,
    /// Once its WAL frame (and every earlier one) is fsynced — in every durability mode.
    Durable,
}
