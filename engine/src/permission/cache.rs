//! The grants each caller holds, decoded once and shared by the checks on the read path, so a
//! `_as` point read costs a map lookup rather than a scan of `sys:grants`.
//!
//! Validity rests on the engine's watermark of watched trees (`Engine::watched_changed_at`;
//! `sys:grants` is watched), raised before a commit that writes grants is published. An entry
//! read at snapshot `L` is current while `L` is at or after the watermark: no grant or revoke
//! committed since. A grant or revoke therefore invalidates every entry at once; they are rare
//! next to the checks.
//!
//! Bounded: past [`MAX_CALLERS`] the map is cleared and refilled by use.

use std::collections::HashMap;
use std::sync::Arc;

use aedb_catalog::permission::Permission;
use parking_lot::RwLock;

use crate::durable::Engine;
use crate::error::Result;
use crate::stored::grants;

/// More callers than this active at once only costs grant lookups.
pub const MAX_CALLERS: usize = 1000;

struct Entry {
    loaded_at: u64,
    permissions: Arc<[Permission]>,
}

#[derive(Default)]
pub(crate) struct GrantCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl GrantCache {
    /// The permissions `caller` holds now (as of the newest visible commit).
    pub fn held(&self, engine: &Engine, caller: &str) -> Result<Arc<[Permission]>> {
        if let Some(entry) = self.entries.read().get(caller) {
            // The watermark is read after the entry: a grant committed after the entry was
            // loaded has raised it past `loaded_at`.
            if entry.loaded_at >= engine.watched_changed_at() {
                return Ok(Arc::clone(&entry.permissions));
            }
        }
        let watermark = engine.watched_changed_at();
        let snapshot = engine.snapshot();
        let permissions: Arc<[Permission]> = grants::grants_of(&snapshot, caller)?
            .into_iter()
            .map(|g| g.permission)
            .collect();
        // A snapshot older than the watermark misses a commit that is being published: good
        // enough for this call (that commit has not returned yet), not for the next.
        if snapshot.seq() >= watermark {
            let mut entries = self.entries.write();
            if entries.len() >= MAX_CALLERS {
                entries.clear();
            }
            entries.insert(
                caller.to_string(),
                Entry {
                    loaded_at: snapshot.seq(),
                    permissions: Arc::clone(&permissions),
                },
            );
        }
        Ok(permissions)
    }
}
