//! The index-entry rule lives in the catalog crate (`aedb_catalog::index`); this is its public
//! path `aedb::query::index`.

pub use aedb_catalog::index::*;
