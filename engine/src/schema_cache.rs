//! Decoded table schemas shared by queries, so a point query does not look up and decode its
//! table's catalog entry every time (measured: a third of a hot PK query).
//!
//! Validity rests on the engine's catalog watermark (`Engine::watched_changed_at`, watching `sys:catalog`), the
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
    project: String,
    scope: String,
    loaded_at: u64,
    schema: Arc<TableSchema>,
}

/// Keyed by table name, then project and scope, so a lookup borrows the caller's names.
#[derive(Default)]
pub(crate) struct SchemaCache {
    entries: RwLock<HashMap<String, Vec<Entry>>>,
}

impl SchemaCache {
    /// The schema of `project.scope.table` as of snapshot `snapshot_seq`, if cached and valid.
    /// `watermark` is read after the entry is found: an entry can have been read at a version
    /// newer than the snapshot, after a DDL that raised the watermark past the snapshot.
    pub fn get(
        &self,
        (project, scope, table): (&str, &str, &str),
        snapshot_seq: u64,
        watermark: impl FnOnce() -> u64,
    ) -> Option<Arc<TableSchema>> {
        let (loaded_at, schema) = {
            let entries = self.entries.read();
            let entry = entries
                .get(table)?
                .iter()
                .find(|e| e.project == project && e.scope == scope)?;
            (entry.loaded_at, Arc::clone(&entry.schema))
        };
        let watermark = watermark();
        (snapshot_seq >= watermark && loaded_at >= watermark).then_some(schema)
    }

    /// Remember `schema`, read from the catalog at snapshot `loaded_at`.
    pub fn insert(
        &self,
        (project, scope, table): (&str, &str, &str),
        loaded_at: u64,
        watermark: u64,
        schema: Arc<TableSchema>,
    ) {
        if loaded_at < watermark {
            return;
        }
        let mut entries = self.entries.write();
        let count: usize = entries.values().map(Vec::len).sum();
        if count >= MAX_ENTRIES {
            entries.clear();
        }
        let same_name = entries.entry(table.to_string()).or_default();
        same_name.retain(|e| e.project != project || e.scope != scope);
        same_name.push(Entry {
            project: project.to_string(),
            scope: scope.to_string(),
            loaded_at,
            schema,
        });
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
        let t = ("p", "app", "t");
        cache.insert(t, 10, 5, schema("a"));
        assert_eq!(cache.get(t, 12, || 5).unwrap().table_name, "a");
        assert!(
            cache.get(("p", "other", "t"), 12, || 5).is_none(),
            "another scope"
        );
        assert!(
            cache.get(t, 4, || 5).is_none(),
            "a snapshot before the watermark"
        );
        assert!(
            cache.get(t, 12, || 11).is_none(),
            "read before a newer catalog write"
        );
        let u = ("p", "app", "u");
        cache.insert(u, 3, 5, schema("b"));
        assert!(
            cache.get(u, 12, || 5).is_none(),
            "read before the watermark: not kept"
        );
    }

    #[test]
    fn bounded() {
        let cache = SchemaCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(("p", "app", &format!("t{i}")), 1, 0, schema("x"));
        }
        let count: usize = cache.entries.read().values().map(Vec::len).sum();
        assert!(count <= MAX_ENTRIES);
    }
}
