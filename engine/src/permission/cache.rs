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

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aedb_catalog::expr::Expr;
use aedb_catalog::permission::{kv_read_reach, KvReach, Permission};
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
    /// The value of `key` now (as of the newest visible commit), loaded on a miss, with the
    /// sequence it was read at: it stays current while that is at or after
    /// `Engine::watched_changed_at`.
    pub fn get_or_load_at(
        &self,
        engine: &Engine,
        key: &str,
        load: impl FnOnce(&Snapshot) -> Result<V>,
    ) -> Result<(V, u64)> {
        if let Some(entry) = self.entries.read().get(key) {
            // The watermark is read after the entry: a change committed after the entry was
            // loaded has raised it past `loaded_at`.
            if entry.loaded_at >= engine.watched_changed_at() {
                return Ok((entry.value.clone(), entry.loaded_at));
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
        Ok((value, snapshot.seq()))
    }
}

/// What one caller may read, as far as it was asked: its permissions, and per table and per
/// KV scope the decision drawn from them (with the table's read policy), each computed once.
/// Valid as long as the entry holding it (grants and policies share the watermark).
pub(crate) struct CallerView {
    pub permissions: Arc<[Permission]>,
    /// Table name → (project, scope, decision): keyed so a lookup borrows the caller's names.
    tables: RwLock<HashMap<String, Vec<TablePlace>>>,
    /// Scope → (project, reach).
    kv: RwLock<HashMap<String, Vec<KvPlace>>>,
}

type TablePlace = (String, String, TableRead);
type KvPlace = (String, Arc<KvReach>);

/// May the caller read a table, and through which policy.
#[derive(Clone)]
pub(crate) enum TableRead {
    Denied,
    /// Every row.
    Whole,
    /// Only rows matching the table's read policy.
    Policed(Arc<Expr>),
}

/// Decisions remembered per caller, at most this many of each kind (then forgotten).
const MAX_DECISIONS: usize = 256;

impl CallerView {
    fn new(permissions: Arc<[Permission]>) -> Self {
        CallerView {
            permissions,
            tables: RwLock::new(HashMap::new()),
            kv: RwLock::new(HashMap::new()),
        }
    }

    /// The decision for `project.scope.table`, computed by `decide` on first use.
    pub fn table(
        &self,
        (project, scope, table): (&str, &str, &str),
        decide: impl FnOnce(&[Permission]) -> Result<TableRead>,
    ) -> Result<TableRead> {
        let found = self.tables.read().get(table).and_then(|places| {
            places
                .iter()
                .find(|(p, s, _)| p == project && s == scope)
                .map(|(_, _, d)| d.clone())
        });
        if let Some(decision) = found {
            return Ok(decision);
        }
        let decision = decide(&self.permissions)?;
        let mut tables = self.tables.write();
        if tables.len() >= MAX_DECISIONS {
            tables.clear();
        }
        let place = (project.to_string(), scope.to_string(), decision.clone());
        tables.entry(table.to_string()).or_default().push(place);
        Ok(decision)
    }

    /// Which keys of `project.scope` the caller may read.
    pub fn kv_reach(&self, project: &str, scope: &str) -> Arc<KvReach> {
        let found = self.kv.read().get(scope).and_then(|places| {
            places
                .iter()
                .find(|(p, _)| p == project)
                .map(|(_, reach)| Arc::clone(reach))
        });
        if let Some(reach) = found {
            return reach;
        }
        let reach = Arc::new(kv_read_reach(self.permissions.iter(), project, scope));
        let mut kv = self.kv.write();
        if kv.len() >= MAX_DECISIONS {
            kv.clear();
        }
        let place = (project.to_string(), Arc::clone(&reach));
        kv.entry(scope.to_string()).or_default().push(place);
        reach
    }
}

/// The caches of one instance.
pub(crate) struct AuthzCache {
    /// Tells this instance's entries in the per-thread memo from another instance's.
    id: u64,
    callers: WatchedMap<Arc<CallerView>>,
}

impl Default for AuthzCache {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        AuthzCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            callers: WatchedMap::default(),
        }
    }
}

/// The last decision of one kind made on a thread. A service's request thread usually asks
/// for the same caller and place again and again: answering from here costs a few comparisons,
/// not two hashed lookups under locks. Valid by the same watermark rule as the map.
struct Remembered<V> {
    /// The `AuthzCache` it came from.
    cache: u64,
    loaded_at: u64,
    /// Caller, project, scope, table ("" for a KV scope).
    key: [String; 4],
    value: V,
}

type Slot<V> = std::thread::LocalKey<RefCell<Option<Remembered<V>>>>;

std::thread_local! {
    static LAST_KV_REACH: RefCell<Option<Remembered<Arc<KvReach>>>> = const { RefCell::new(None) };
    static LAST_TABLE_READ: RefCell<Option<Remembered<TableRead>>> = const { RefCell::new(None) };
}

/// `held == asked` without a call into the C library's `memcmp`: the names compared on every
/// `_as` read are a few bytes long, and the call (four of them a read) cost a KV get a third
/// of its time (session 19: 0.35 against 0.26 µs, `kv_get` against `kv_get_no_auth`).
#[inline]
fn same_name(held: &str, asked: &str) -> bool {
    let (held, asked) = (held.as_bytes(), asked.as_bytes());
    if held.len() != asked.len() {
        return false;
    }
    let mut held_words = held.chunks_exact(8);
    let mut asked_words = asked.chunks_exact(8);
    for (h, a) in held_words.by_ref().zip(asked_words.by_ref()) {
        // Fails closed: a chunk that is not eight bytes (never, by `chunks_exact`) is unequal.
        match (h.first_chunk::<8>(), a.first_chunk::<8>()) {
            (Some(h), Some(a)) if h == a => {}
            _ => return false,
        }
    }
    let (h, a) = (held_words.remainder(), asked_words.remainder());
    (0..h.len()).all(|i| h[i] == a[i])
}

impl AuthzCache {
    /// What `caller` may read now.
    pub fn caller(&self, engine: &Engine, caller: &str) -> Result<Arc<CallerView>> {
        self.caller_at(engine, caller).map(|(view, _)| view)
    }

    fn caller_at(&self, engine: &Engine, caller: &str) -> Result<(Arc<CallerView>, u64)> {
        self.callers.get_or_load_at(engine, caller, |snapshot| {
            let permissions: Arc<[Permission]> = grants::grants_of(snapshot, caller)?
                .into_iter()
                .map(|g| g.permission)
                .collect();
            Ok(Arc::new(CallerView::new(permissions)))
        })
    }

    /// `answer` applied to the decision for `key` (caller first): the one remembered in
    /// `slot` while current (borrowed, not cloned: this is every `_as` read's path), else one
    /// drawn by `decide` from the caller's view, then remembered.
    fn remembered<V: 'static, R>(
        &self,
        slot: &'static Slot<V>,
        engine: &Engine,
        key: [&str; 4],
        decide: impl FnOnce(&CallerView) -> Result<V>,
        answer: impl FnOnce(&V) -> R,
    ) -> Result<R> {
        let answer = slot.with(|last| {
            let last = last.borrow();
            let current = last.as_ref().filter(|l| {
                l.cache == self.id
                    && l.key.iter().zip(key).all(|(held, asked)| same_name(held, asked))
                    // Read after the entry, as in `WatchedMap`.
                    && l.loaded_at >= engine.watched_changed_at()
            });
            match current {
                Some(l) => Ok(answer(&l.value)),
                None => Err(answer),
            }
        });
        let answer = match answer {
            Ok(answered) => return Ok(answered),
            Err(answer) => answer,
        };
        let (view, loaded_at) = self.caller_at(engine, key[0])?;
        let value = decide(&view)?;
        let answered = answer(&value);
        slot.with(|last| {
            *last.borrow_mut() = Some(Remembered {
                cache: self.id,
                loaded_at,
                key: key.map(str::to_string),
                value,
            });
        });
        Ok(answered)
    }

    /// Whether `caller` may read `place` (project, scope, table) now, and through which
    /// policy: `decide` draws it from the caller's view on a miss.
    pub fn table_read(
        &self,
        engine: &Engine,
        caller: &str,
        (project, scope, table): (&str, &str, &str),
        decide: impl FnOnce(&CallerView) -> Result<TableRead>,
    ) -> Result<TableRead> {
        let key = [caller, project, scope, table];
        self.remembered(&LAST_TABLE_READ, engine, key, decide, TableRead::clone)
    }

    /// `decide` applied to which keys of `project.scope` `caller` may read now.
    pub fn with_kv_reach<R>(
        &self,
        engine: &Engine,
        (caller, project, scope): (&str, &str, &str),
        decide: impl FnOnce(&KvReach) -> R,
    ) -> Result<R> {
        let key = [caller, project, scope, ""];
        let reach = |view: &CallerView| Ok(view.kv_reach(project, scope));
        self.remembered(&LAST_KV_REACH, engine, key, reach, |reach| decide(reach))
    }
}

/// The read policy of a table now (for a decision of [`CallerView::table`]).
pub(crate) fn policy_now(
    engine: &Engine,
    (project, scope, table): (&str, &str, &str),
) -> Result<Option<Expr>> {
    read_policies::get(&engine.snapshot(), project, scope, table)
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn same_name_is_string_equality() {
        let names = [
            "",
            "a",
            "b",
            "reader",
            "readers",
            "bench-reader",
            "bench-readex",
            "xench-reader",
            "a-name-of-twenty-two!!",
            "a-name-of-twenty-two!?",
            "01234567",
            "0123456X",
            "0123456789abcdef",
            "01234567X9abcdef",
            "0123456789abcdeX",
        ];
        for held in names {
            for asked in names {
                assert_eq!(same_name(held, asked), held == asked, "{held:?} {asked:?}");
            }
        }
    }
}
