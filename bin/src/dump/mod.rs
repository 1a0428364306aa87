//! Logical dumps (`aedb dump export|parity|restore`):
//!
//! - `format.rs`: the dump file (docs/CLI.md, "Dump format"): records with their CRCs, the
//!   trailer's SHA-256, the payload of each kind, and the order records must come in;
//! - `parity.rs`: the parity checksum over the logical content, and `dump parity`;
//! - `export.rs`: the traversal of a database through the engine's owners of its data, and
//!   `dump export`;
//! - `restore.rs`: a dump replayed through the public API, and `dump restore`.
//!
//! The parity checksum is a SHA-256 over the logical content only (see `Parity`), so a restored
//! database has the parity of its dump although table ids, creation times and KV versions
//! differ.

mod export;
mod format;
mod parity;
mod restore;

use aedb::catalog::namespace::{ProjectEntry, ScopeEntry};
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Row;

use crate::util::{Ctx, Res, EXIT_FOUND, EXIT_OK};

pub use export::{export, traverse};
pub use format::{DumpReader, DumpWriter, Item, ItemReader, Record};
pub use parity::{canonical_schema, parity, read_dump, DumpSummary, Parity, Section};
pub use restore::restore;

/// What a traversal of a database reports, in dump order.
pub trait Visitor {
    fn project(&mut self, entry: &ProjectEntry) -> Res<()>;
    fn scope(&mut self, entry: &ScopeEntry) -> Res<()>;
    fn table(&mut self, schema: &TableSchema) -> Res<()>;
    /// `row` is the row in column order.
    fn row(&mut self, key: &[u8], row: &Row) -> Res<()>;
    fn kv_space(&mut self, project: &str, scope: &str) -> Res<()>;
    fn kv(&mut self, key: &[u8], version: u64, created_at: u64, value: &[u8]) -> Res<()>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub projects: u64,
    pub scopes: u64,
    pub tables: u64,
    pub table_rows: u64,
    pub kv_entries: u64,
}

pub(crate) fn status(ctx: &Ctx<'_>) -> i32 {
    if ctx.damage.is_empty() {
        EXIT_OK
    } else {
        EXIT_FOUND
    }
}
