//! aedb: an embedded, transactional storage engine.
//!
//! This release carries the storage core (`aedb::storage`): paged copy-on-write B+trees in one
//! data file, a bounded buffer pool, snapshots and checkpoints, over io_uring or pread/pwrite.
//! The WAL, the catalog and the query layer of the README build on it in the next steps.

/// The storage core: see the `aedb-pager` crate.
pub use aedb_pager as storage;
