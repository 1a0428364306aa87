//! What the read path's checks decode from small watched trees — each caller's grants, each
//! table's read policy — kept so a `_as` point read costs a map lookup rather than a tree scan.
//!
//! Validity rests on the engine's watermark of watched trees (`Engine::watched_changed_at`;
//! `sys:grants` and `sys:read_policies` are watched), raised before a commit that writes one
//! of them is published. An entry read at snapshot `L` is current while `L` is at or after the
//! watermark: nothing was granted, revoked or changed since. Any such change therefore
//! invalidates every entry at once; changes are rare next to the checks.
//!
//! Bounded: past [`MAX_ENTRIES`] the map is cleared and refilled by use.

use std::collections::HashMap;
use std::sync::Arc;

use aedb_catalog::expr::Expr;
use aedb_catalog::permission::Permission;
use aedb_pager::Snapshot;
use parking_lot::RwLock;

use crate::durable::Engine;
use crate::error::Result;
use crate::stored::{grants, read_policies};

/// More keys than this in use at once only costs lookups.
pub const MAX_ENTRIES: usize = 1000;

struct Entry<V> {
    loaded_at: u64,
    value: V,
}

/// A map of values decoded from watched trees, each valid until the next change of them.
pub(crate) struct WatchedMap<V> {
    entries: RwLock<HashMap<String, Entry<V>>>,
}

impl<V> Default for WatchedMap<V> {
    fn default() -> Self {
        WatchedMap {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<V: Clone> WatchedMap<V> {
    /// The value of `key` now (as of the newest visible commit), loaded on a miss.
    pub fn get_or_load(
        &self,
        engine: &Engine,
        key: &str,
        load: impl FnOnce(&Snapshot) -> Result<V>,
    ) -> Result<V> {
        if let Some(entry) = self.entries.read().get(key) {
            // The watermark is read after the entry: a change committed after the entry was
            // loaded has raised it past `loaded_at`.
            if entry.loaded_at >= engine.watched_changed_at() {
                return Ok(entry.value.clone());
            }
        }
        let watermark = engine.watched_changed_at();
        let snapshot = engine.snapshot();
        let value = load(&snapshot)?;
        // A snapshot older than the watermark misses a commit being published: good enough
        // for this call (that commit has not returned yet), not for the next.
        if snapshot.seq() >= watermark {
            let mut entries = self.entries.write();
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            let entry = Entry {
                loaded_at: snapshot.seq(),
                value: value.clone(),
            };
            entries.insert(key.to_string(), entry);
        }
        Ok(value)
    }
}

/// The caches of one instance.
#[derive(Default)]
pub(crate) struct AuthzCache {
    grants: WatchedMap<Arc<[Permission]>>,
    policies: WatchedMap<Option<Arc<Expr>>>,
}

impl AuthzCache {
    /// The permissions `caller` holds now.
    pub fn held(&self, engine: &Engine, caller: &str) -> Result<Arc<[Permission]>> {
        self.grants.get_or_load(engine, caller, |snapshot| {
            Ok(grants::grants_of(snapshot, caller)?
                .into_iter()
                .map(|g| g.permission)
                .collect())
        })
    }

    /// The read policy of a table now, if it has one.
    pub fn policy(
        &self,
        engine: &Engine,
        (project, scope, table): (&str, &str, &str),
    ) -> Result<Option<Arc<Expr>>> {
        let key = format!("{project}\0{scope}\0{table}");
        self.policies.get_or_load(engine, &key, |snapshot| {
            Ok(read_policies::get(snapshot, project, scope, table)?.map(Arc::new))
        })
    }
}
