//! aedb's storage core: the page format, the buffer pool, page allocation, the copy-on-write
//! B+tree with its cursors, snapshots, checkpoints, and the invariant checker.
//!
//! Layering, bottom up: `io` (the crate `aedb-io`, re-exported: the only code that touches
//! files) → `page`/`meta` (byte layouts) → `pool` (frames over the data file) → `alloc` (which
//! pages are free) → `btree` (trees over pages) → `store` (versions, snapshots, the writer,
//! checkpoints) → `check`.

pub mod alloc;
pub mod arena;
pub mod btree;
pub mod check;
pub mod error;
pub mod meta;
pub mod overflow;
pub mod page;
pub mod pool;
pub mod store;

/// The I/O layer (its own crate, `aedb-io`), under its old path.
pub use aedb_io as io;

pub use btree::node::max_key_bytes;
pub use btree::{TreeRecord, MAX_VALUE_BYTES};
pub use check::{CheckReport, Violation};
pub use error::{PagerError, Result};
pub use io::{BackendKind, IoBackendChoice};
pub use meta::Meta;
pub use page::{PageId, PAGE_SIZE_DEFAULT};
pub use store::{
    CheckpointInfo, PageStore, Range, ReadTrees, ReaderRegistry, Snapshot, SpaceHeld, StoreConfig,
    TreeView, Version, WriteTxn, CHECKPOINT_SPACE_MIN_BYTES_DEFAULT,
    CHECKPOINT_SPACE_PERCENT_DEFAULT,
};
