//! Decoded table schemas shared by queries, so a point query does not look up and decode its
//! table's catalog entry every time (measured: a third of a hot PK query).
//!
//! Validity rests on the engine's catalog watermark (`Engine::catalog_changed_at`), the
//! sequence of the newest commit that wrote the catalog, raised before that commit is
//! published. An entry read at snapshot `L` answers a query at snapshot `S` only when both are
//! at or after the watermark: no commit between them changed the catalog. Anything older (an
//! `AtSeq` read of the past, an entry read before a DDL) goes back to the catalog tree.
//!
//! Bounded: past [`MAX_ENTRIES`] the map is cleared and refilled by use.

use std::collections::HashMap;
use std::sync::Arc;

use aedb_catalog::schema::TableSchema;
use parking_lot::RwLock;

/// More tables than this in use at once only costs catalog lookups.
pub const MAX_ENTRIES: usize = 4096;

struct Entry {
    loaded_at: u64,
    schema: Arc<TableSchema>,
}

#[derive(Default)]
pub(crate) struct SchemaCache {
    entries: RwLock<HashMap<Vec<u8>, Entry>>,
}

impl SchemaCache {
    /// The schema under catalog key `key` as of snapshot `snapshot_seq`, if cached and valid.
    pub fn get(&self, key: &[u8], snapshot_seq: u64, watermark: u64) -> Option<Arc<TableSchema>> {
        if snapshot_seq < watermark {
            return None;
        }
        let entries = self.entries.read();
        let entry = entries.get(key)?;
        (entry.loaded_at >= watermark).then(|| Arc::clone(&entry.schema))
    }

    /// Remember `schema`, read from the catalog at snapshot `loaded_at`.
    pub fn insert(&self, key: &[u8], loaded_at: u64, watermark: u64, schema: Arc<TableSchema>) {
        if loaded_at < watermark {
            return;
        }
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_vec(), Entry { loaded_at, schema });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: name.into(),
            owner_id: None,
            columns: Vec::new(),
            primary_key: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            table_id: 1,
            slots: Vec::new(),
            slot_count: 0,
        })
    }

    #[test]
    fn entries_answer_only_between_the_watermark_and_now() {
        let cache = SchemaCache::default();
        cache.insert(b"t", 10, 5, schema("a"));
        assert_eq!(cache.get(b"t", 12, 5).unwrap().table_name, "a");
        assert!(
            cache.get(b"t", 4, 5).is_none(),
            "a snapshot before the watermark"
        );
        assert!(
            cache.get(b"t", 12, 11).is_none(),
            "read before a newer catalog write"
        );
        cache.insert(b"u", 3, 5, schema("b"));
        assert!(
            cache.get(b"u", 12, 5).is_none(),
            "read before the watermark: not kept"
        );
    }

    #[test]
    fn bounded() {
        let cache = SchemaCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&i.to_le_bytes(), 1, 0, schema("x"));
        }
        assert!(cache.entries.read().len() <= MAX_ENTRIES);
    }
}
