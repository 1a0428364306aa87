//! aedb: an embedded, transactional storage engine.
//!
//! Layers: the storage core (`aedb::storage`: paged copy-on-write B+trees, buffer pool,
//! snapshots, checkpoints, over io_uring or pread/pwrite), the write-ahead log (`aedb_wal`), and
//! the durable engine (`aedb::engine`: recovery, the group-commit pipeline, checkpoints). The
//! catalog and query layers of the README build on `Engine::commit` in the next step.

pub mod config;
pub mod engine;
pub mod error;

/// The storage core: see the `aedb-pager` crate.
pub use aedb_pager as storage;
/// The write-ahead log: see the `aedb-wal` crate.
pub use aedb_wal as wal;

pub use engine::{CommitOutcome, Engine, LoggedTxn, RecoveryReport};
pub use error::AedbError;

/// When a commit call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitFinality {
    /// Once the commit is readable by new snapshots.
    #[default]
    Visible,
    /// Once its WAL frame (and every earlier one) is fsynced — in every durability mode.
    Durable,
}
