//! The page store: one data file of named copy-on-write B+trees, with snapshots, one writer at
//! a time, and checkpoints that make a published version durable.
//!
//! State machine of a version:
//!
//! ```text
//!  WriteTxn (private pages) --commit()--> published head --checkpoint()--> durable (meta page)
//!        \--drop/abort()--> discarded (its pages free at once)
//! ```
//!
//! Invariants:
//! 1. No page reachable from the durable meta page is written (copy-on-write + `alloc.rs`).
//! 2. A page is reused only when no pinned snapshot, no durable checkpoint and no running
//!    transaction can reach it.
//! 3. The meta page is written only after every page it reaches is written and synced, and
//!    synced itself before the checkpoint is reported durable. "Written" includes writes by
//!    eviction that were still in flight when the checkpoint looked (see `checkpoint_inner`),
//!    and a checkpoint writes no page its version does not reach.
//! 4. Snapshots are pinned under the `pins` lock while the head is read, so a writer computing
//!    the oldest pinned version never misses a reader that is about to pin. The head's pin is
//!    created once and shared (`head_pin`): most snapshots are an `Arc` clone of it, with no
//!    lock on the pin table and no allocation; publishing a new head drops the store's share.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RawMutex, RwLock};

use crate::alloc::{decode_freelist_page, Allocator};
use crate::btree::cursor::{owned_bound, Cursor};
use crate::btree::{self, TreeRecord, WriteCtx};
use crate::error::{PagerError, Result};
use crate::io::{all_ok, submit_wait, AlignedBuf, BackendKind, IoFile, IoOp, OpenOptions, Vfs};
use crate::meta::{self, Meta};
use crate::page::{self, PageId, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN};
use crate::pool::{BufferPool, PoolStats};

/// Pages written per batch during a checkpoint.
const CHECKPOINT_BATCH_PAGES: usize = 256;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Page size for a new file (an existing file keeps its own).
    pub page_size: u32,
    pub buffer_pool_bytes: u64,
    /// Open the data file with O_DIRECT (off by default: see docs/BENCHMARKS.md).
    pub direct_io: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            page_size: PAGE_SIZE_DEFAULT,
            buffer_pool_bytes: 256 << 20,
            direct_io: false,
        }
    }
}

/// A published version of the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub seq: u64,
    /// Root of the tree of trees.
    pub root: PageId,
    pub tree_count: u64,
}

struct WriterState {
    alloc: Allocator,
}

struct Inner {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    file: Arc<dyn IoFile>,
    pool: Arc<BufferPool>,
    writer: Arc<Mutex<WriterState>>,
    head: RwLock<Version>,
    /// Pinned versions and their pin counts (shared with every `Pin`).
    pins: Arc<Mutex<BTreeMap<u64, usize>>>,
    /// The pin of the head, shared by the snapshots taken of it (None until the first one).
    head_pin: RwLock<Option<Arc<Pin>>>,
    durable: Mutex<Meta>,
    /// The version of the newest durable checkpoint, readable without the checkpoint lock (so
    /// pinning it under the pin lock cannot deadlock with a running checkpoint).
    durable_version: RwLock<Version>,
    failed: Mutex<Option<String>>,
    read_only: bool,
}

/// The store. Cheap to clone; all clones share one file and pool.
#[derive(Clone)]
pub struct PageStore {
    inner: Arc<Inner>,
}

/// What a checkpoint made durable.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointInfo {
    pub meta: Meta,
    pub pages_written: usize,
}

impl PageStore {
    /// Open the data file at `path`, creating it when absent (or empty).
    pub fn open(vfs: Arc<dyn Vfs>, path: &Path, config: &StoreConfig) -> Result<Self> {
        Self::open_inner(vfs, path, config, false)
    }

    /// Open an existing data file without writing a byte to it: for inspection tools, also
    /// beside a live process. Write transactions still work (recovery redoes the WAL into
    /// them) but stay in memory: the pool keeps their pages instead of writing them back, and
    /// checkpoints are refused.
    pub fn open_read_only(vfs: Arc<dyn Vfs>, path: &Path, config: &StoreConfig) -> Result<Self> {
        Self::open_inner(vfs, path, config, true)
    }

    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    fn open_inner(
        vfs: Arc<dyn Vfs>,
        path: &Path,
        config: &StoreConfig,
        read_only: bool,
    ) -> Result<Self> {
        if !page::valid_page_size(config.page_size) {
            return Err(PagerError::InvalidConfig(format!(
                "page size {} is not a power of two in {PAGE_SIZE_MIN}..={PAGE_SIZE_MAX}",
                config.page_size
            )));
        }
        if let Some(dir) = path.parent().filter(|_| !read_only) {
            vfs.create_dir_all(dir)?;
        }
        let existed = vfs.exists(path);
        let file = vfs.open(
            path,
            OpenOptions {
                create: !read_only,
                read_only,
                direct: config.direct_io,
            },
        )?;
        if existed && !read_only {
            // A killed process may have left writes (even a meta page) in the page cache only.
            // This process is about to build on what it reads, and acknowledge commits on top
            // of it: make it durable first, so a power loss after this open cannot take away a
            // checkpoint that later commits rely on.
            all_ok(submit_wait(&*file, vec![IoOp::Sync]))?;
            if let Some(dir) = path.parent() {
                vfs.sync_dir(dir)?;
            }
        }
        let meta = match read_meta_or_unfinished(&*file, path, read_only)? {
            Some(meta) => meta,
            None if read_only => {
                return Err(PagerError::NoValidMeta {
                    path: path.to_path_buf(),
                    reason: "the file is empty".into(),
                })
            }
            None => create_file(&*vfs, &*file, path, config.page_size, existed)?,
        };
        let page_size = meta.page_size as usize;
        if existed && !read_only {
            rewrite_meta(&*file, &meta)?;
        }
        let pool = Arc::new(
            BufferPool::new(Arc::clone(&file), page_size, config.buffer_pool_bytes)?
                .with_read_only(read_only),
        );
        let file_len = file.len()?;
        if file_len < meta.page_count * page_size as u64 {
            return Err(PagerError::corrupt(
                meta.slot(),
                format!(
                    "file is {file_len} bytes, the checkpoint needs {} pages",
                    meta.page_count
                ),
            ));
        }
        let mut alloc = Allocator::new(
            page_size,
            meta.page_count,
            file_len / page_size as u64,
            meta.generation,
        );
        alloc.set_read_only(read_only);
        let (fl_pages, fl_ids) = load_freelist(&pool, &meta)?;
        alloc.load_freelist(fl_pages, fl_ids);
        tracing::info!(path = %path.display(), backend = %vfs.kind(), page_size, generation = meta.generation, seq = meta.seq, "store opened");
        Ok(PageStore {
            inner: Arc::new(Inner {
                vfs,
                path: path.to_path_buf(),
                file,
                pool,
                writer: Arc::new(Mutex::new(WriterState { alloc })),
                head: RwLock::new(Version {
                    seq: meta.seq,
                    root: meta.root,
                    tree_count: meta.tree_count,
                }),
                pins: Arc::new(Mutex::new(BTreeMap::new())),
                head_pin: RwLock::new(None),
                durable: Mutex::new(meta),
                durable_version: RwLock::new(Version {
                    seq: meta.seq,
                    root: meta.root,
                    tree_count: meta.tree_count,
                }),
                failed: Mutex::new(None),
                read_only,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn backend(&self) -> BackendKind {
        self.inner.vfs.kind()
    }

    pub fn page_size(&self) -> usize {
        self.inner.pool.page_size()
    }

    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.inner.pool
    }

    /// The newest durable meta page.
    pub fn durable_meta(&self) -> Meta {
        *self.inner.durable.lock()
    }

    /// The newest published version.
    pub fn head(&self) -> Version {
        *self.inner.head.read()
    }

    /// Pin the newest published version.
    pub fn snapshot(&self) -> Snapshot {
        let head_seq = self.inner.head.read().seq;
        if let Some(pin) = self
            .inner
            .head_pin
            .read()
            .as_ref()
            .filter(|pin| pin.version.seq == head_seq)
        {
            return Snapshot {
                pin: Arc::clone(pin),
            };
        }
        let pin = self.pin(|| *self.inner.head.read());
        let stale = {
            let mut cached = self.inner.head_pin.write();
            if self.inner.head.read().seq == pin.version.seq {
                cached.replace(Arc::clone(&pin))
            } else {
                None
            }
        };
        // Outside the lock: dropping the last share of a pin takes the pin table's lock.
        drop(stale);
        Snapshot { pin }
    }

    /// Pin the version of the newest durable checkpoint (a new file has an empty one).
    pub fn checkpoint_snapshot(&self) -> Snapshot {
        Snapshot {
            pin: self.pin(|| *self.inner.durable_version.read()),
        }
    }

    /// A new pin of the version `version` reads, counted under the pin table's lock.
    fn pin(&self, version: impl FnOnce() -> Version) -> Arc<Pin> {
        let mut pins = self.inner.pins.lock();
        let version = version();
        *pins.entry(version.seq).or_insert(0) += 1;
        drop(pins);
        Arc::new(Pin {
            pins: Arc::clone(&self.inner.pins),
            pool: Arc::clone(&self.inner.pool),
            version,
            trees: RwLock::new(std::collections::HashMap::new()),
        })
    }

    fn check_failed(&self) -> Result<()> {
        if let Some(reason) = self
            .inner
            .failed
            .lock()
            .clone()
            .or_else(|| self.inner.pool.failure())
        {
            return Err(PagerError::Failed(reason));
        }
        Ok(())
    }

    /// Why the store refuses writes, if it does (a failed write, sync or growth of the data
    /// file: after a failed fsync the kernel may have dropped dirty pages, so nothing written
    /// since can be trusted to reach the disk until the file is reopened and recovered).
    pub fn failure(&self) -> Option<String> {
        self.check_failed().err().map(|e| e.to_string())
    }

    fn latch_failure(&self, err: &PagerError) {
        let mut failed = self.inner.failed.lock();
        if failed.is_none() {
            tracing::error!(error = %err, "store latched into the failed state");
            *failed = Some(err.to_string());
        }
    }

    /// Begin the (only) write transaction; waits while another one runs.
    pub fn begin_write(&self) -> Result<WriteTxn> {
        self.check_failed()?;
        let mut writer = self.inner.writer.lock_arc();
        let base = {
            let pins = self.inner.pins.lock();
            let head = *self.inner.head.read();
            let oldest = pins
                .keys()
                .next()
                .copied()
                .unwrap_or(head.seq)
                .min(head.seq);
            // Frames of reclaimed pages are garbage: drop them rather than ever write them back.
            for id in writer.alloc.reclaim(oldest) {
                self.inner.pool.discard(id);
            }
            head
        };
        Ok(WriteTxn {
            store: self.clone(),
            writer,
            seq: base.seq + 1,
            base,
            catalog: TreeRecord {
                root: base.root,
                len: base.tree_count,
            },
            trees: BTreeMap::new(),
            committed: false,
        })
    }

    /// Make the newest published version durable: write its dirty pages and free list, sync,
    /// then write the other meta page and sync. Commits may go on meanwhile; only the capture
    /// of the free list waits for the running write transaction.
    ///
    /// The meta page records the version's commit sequence as the WAL position it covers: the
    /// log gives every commit one frame whose LSN equals the commit's sequence.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.checkpoint_unless(|| None)
    }

    /// [`checkpoint`], refused when `refuse` gives a reason. `refuse` is asked once no other
    /// checkpoint runs and before anything is captured, under the lock [`durable_meta`] takes:
    /// whoever sets the reason and then reads `durable_meta` knows that no checkpoint started
    /// after the reason was set, and sees every one that did before.
    ///
    /// [`checkpoint`]: PageStore::checkpoint
    /// [`durable_meta`]: PageStore::durable_meta
    pub fn checkpoint_unless(
        &self,
        refuse: impl FnOnce() -> Option<String>,
    ) -> Result<CheckpointInfo> {
        if self.inner.read_only {
            return Err(PagerError::ReadOnly);
        }
        self.check_failed()?;
        let result = self.checkpoint_inner(refuse);
        match &result {
            Err(PagerError::Refused(_)) | Ok(_) => {}
            Err(err) => self.latch_failure(err),
        }
        result
    }

    /// The checkpoint of the head version V, in this order (invariant 3 of the module):
    ///
    /// 1. Under the writer lock: capture V and the pages it does not use (its free list).
    /// 2. Write every dirty page V reaches, and only those: a page V does not use may be
    ///    freed, reused and rewritten by later commits while this runs, so a frame of it met
    ///    in the pool may be stale (F5 of the durability review). A page V reaches cannot be
    ///    reused before the next checkpoint is durable, so its frame is its only one.
    /// 3. Wait for every eviction write-back in flight: one may have marked a page of V clean
    ///    before its write reached the OS (F4); the sync must come after it.
    /// 4. Sync the data, then write and sync the meta page. Only then is V durable, and only
    ///    then may the log it covers be deleted (by the caller).
    fn checkpoint_inner(&self, refuse: impl FnOnce() -> Option<String>) -> Result<CheckpointInfo> {
        let inner = &self.inner;
        let mut durable = inner.durable.lock();
        if let Some(reason) = refuse() {
            return Err(PagerError::Refused(reason));
        }
        let (meta, capture) = {
            let mut writer = inner.writer.lock();
            let head = *inner.head.read();
            let pool = Arc::clone(&inner.pool);
            let capture = writer.alloc.capture_freelist(
                &*inner.file,
                &mut |id| Ok(pool.create(id)),
                head.seq,
            )?;
            let meta = Meta {
                page_size: inner.pool.page_size() as u32,
                generation: capture.generation,
                seq: head.seq,
                root: head.root,
                freelist_root: capture.root,
                freelist_len: capture.listed,
                page_count: capture.page_count,
                wal_position: head.seq,
                tree_count: head.tree_count,
            };
            (meta, capture)
        };
        let mut dirty = inner.pool.dirty_pages();
        dirty.retain(|page| capture.covers(page.id()));
        let page_size = inner.pool.page_size() as u64;
        let mut pages_written = 0;
        for (n, chunk) in dirty.chunks(CHECKPOINT_BATCH_PAGES).enumerate() {
            let mut written = Vec::with_capacity(chunk.len());
            let mut ops = Vec::with_capacity(chunk.len());
            for page in chunk {
                if let Some(buf) = inner.pool.sealed_copy(page) {
                    ops.push(IoOp::Write {
                        offset: page.id() * page_size,
                        buf,
                    });
                    written.push(page);
                }
            }
            pages_written += ops.len();
            if let Err(err) = all_ok(submit_wait(&*inner.file, ops)) {
                // Pages not known to be on disk stay dirty for the next attempt (after reopen).
                for page in written
                    .into_iter()
                    .chain(dirty.get((n + 1) * CHECKPOINT_BATCH_PAGES..).unwrap_or(&[]))
                {
                    inner.pool.mark_dirty(page);
                }
                return Err(err.into());
            }
        }
        if let Some(reason) = inner.pool.wait_for_write_backs() {
            return Err(PagerError::Failed(reason));
        }
        // Copy-on-write: nothing V reaches changes after the capture, so what was written is
        // what V holds.
        debug_assert!(
            dirty.iter().all(|page| !inner.pool.is_dirty(page)),
            "a page of the captured version changed during its checkpoint"
        );
        all_ok(submit_wait(&*inner.file, vec![IoOp::Sync]))?;
        let mut buf = AlignedBuf::zeroed(page_size as usize);
        meta.encode(&mut buf);
        all_ok(submit_wait(
            &*inner.file,
            vec![
                IoOp::Write {
                    offset: meta.slot() * page_size,
                    buf,
                },
                IoOp::Sync,
            ],
        ))?;
        *durable = meta;
        // Publish the new durable version before its predecessor's pages can be reclaimed.
        *inner.durable_version.write() = Version {
            seq: meta.seq,
            root: meta.root,
            tree_count: meta.tree_count,
        };
        inner
            .writer
            .lock()
            .alloc
            .checkpoint_durable(meta.generation);
        tracing::debug!(
            generation = meta.generation,
            seq = meta.seq,
            pages_written,
            "checkpoint durable"
        );
        Ok(CheckpointInfo {
            meta,
            pages_written,
        })
    }

    /// Allocation figures for the checker and the debug tools: page count, free, pending.
    pub fn allocation(&self) -> (u64, usize, usize) {
        let writer = self.inner.writer.lock();
        (
            writer.alloc.page_count(),
            writer.alloc.free_len(),
            writer.alloc.pending_len(),
        )
    }

    pub(crate) fn with_allocator<T>(&self, f: impl FnOnce(&Allocator) -> T) -> T {
        f(&self.inner.writer.lock().alloc)
    }
}

/// Read both meta slots at every possible page size; None for a new (empty or all-zero) file.
fn read_meta(file: &dyn IoFile, path: &Path) -> Result<Option<Meta>> {
    let len = file.len()?;
    if len == 0 {
        return Ok(None);
    }
    let mut candidates = Vec::new();
    let mut all_zero = true;
    let mut size = PAGE_SIZE_MIN as u64;
    while size <= PAGE_SIZE_MAX as u64 {
        for slot in 0..2u64 {
            let offset = slot * size;
            if offset + size > len {
                continue;
            }
            let read = all_ok(submit_wait(
                file,
                vec![IoOp::Read {
                    offset,
                    buf: AlignedBuf::zeroed(size as usize),
                }],
            ))?;
            let Some(buf) = read.into_iter().next().and_then(|d| d.into_buf()) else {
                continue;
            };
            all_zero &= buf.iter().all(|b| *b == 0);
            let decoded = Meta::decode(&buf, slot).and_then(|m| {
                if m.page_size as u64 == size {
                    Ok(m)
                } else {
                    Err(PagerError::corrupt(
                        slot,
                        format!("page size {} read at size {size}", m.page_size),
                    ))
                }
            });
            if decoded.is_ok() || size == PAGE_SIZE_MIN as u64 {
                candidates.push((slot, decoded));
            }
        }
        size *= 2;
    }
    if all_zero {
        return Ok(None);
    }
    meta::choose(path, &candidates).map(Some)
}

/// [`read_meta`], and a file no valid meta page describes but that never grew past the two
/// meta pages is a creation torn by a crash (its write landed in part, its length in full):
/// every meta page ever written to such a file described the empty store at sequence 0, so it
/// is created again rather than refused. A file that grew is refused.
///
/// Why the length tells: a new file is two pages (less, when its creation's length reached the
/// disk only in part); growth adds at least 64 pages of at least `PAGE_SIZE_MIN` bytes, so a
/// file that ever grew is never shorter than 66 of the smallest pages.
fn read_meta_or_unfinished(
    file: &dyn IoFile,
    path: &Path,
    read_only: bool,
) -> Result<Option<Meta>> {
    match read_meta(file, path) {
        Err(PagerError::NoValidMeta { .. }) if !read_only && never_grew(file.len()?) => {
            tracing::warn!(path = %path.display(), "data file creation was torn by a crash; creating it again");
            Ok(None)
        }
        other => other,
    }
}

/// Write the chosen meta page again, byte for byte, and sync it.
///
/// The sync at open does not prove the meta page reached the disk: after a failed fsync the
/// kernel marks the pages it could not write clean, and a later fsync (this process's) reports
/// success without writing them. A meta page read from such a cache may exist nowhere else, and
/// its free list hands out pages the previous checkpoint still reaches. Writing it again
/// dirties it, so the sync really writes it. The bytes are the ones already there, so a write
/// torn by a power loss leaves the same valid page.
fn rewrite_meta(file: &dyn IoFile, meta: &Meta) -> Result<()> {
    let size = meta.page_size as u64;
    let offset = meta.slot() * size;
    let read = all_ok(submit_wait(
        file,
        vec![IoOp::Read {
            offset,
            buf: AlignedBuf::zeroed(size as usize),
        }],
    ))?;
    let Some(buf) = read.into_iter().next().and_then(|d| d.into_buf()) else {
        return Err(PagerError::corrupt(
            meta.slot(),
            "meta page could not be read again",
        ));
    };
    all_ok(submit_wait(
        file,
        vec![IoOp::Write { offset, buf }, IoOp::Sync],
    ))?;
    Ok(())
}

fn never_grew(len: u64) -> bool {
    len < MIN_GROWN_PAGES * PAGE_SIZE_MIN as u64
}

/// The fewest pages a file that ever grew holds: the two meta pages and one growth extent.
const MIN_GROWN_PAGES: u64 = 2 + crate::alloc::MIN_GROWTH_PAGES;

/// Write the two meta pages of an empty store and make the file and its directory entry durable.
fn create_file(
    vfs: &dyn Vfs,
    file: &dyn IoFile,
    path: &Path,
    page_size: u32,
    existed: bool,
) -> Result<Meta> {
    let mut meta = Meta {
        page_size,
        generation: 0,
        seq: 0,
        root: 0,
        freelist_root: 0,
        freelist_len: 0,
        page_count: 2,
        wal_position: 0,
        tree_count: 0,
    };
    // Both meta pages in one write: a crash leaves both, neither (an empty or all-zero file is
    // created again), or a torn pair whose valid half still describes the empty store.
    let size = page_size as usize;
    let mut buf = AlignedBuf::zeroed(2 * size);
    for generation in [0u64, 1] {
        meta.generation = generation;
        let at = generation as usize * size;
        meta.encode(&mut buf[at..at + size]);
    }
    all_ok(submit_wait(
        file,
        vec![IoOp::Write { offset: 0, buf }, IoOp::Sync],
    ))?;
    if !existed {
        if let Some(dir) = path.parent() {
            vfs.sync_dir(dir)?;
        }
    }
    tracing::info!(path = %path.display(), page_size, "created data file");
    Ok(meta)
}

fn load_freelist(pool: &BufferPool, meta: &Meta) -> Result<(Vec<PageId>, Vec<PageId>)> {
    let mut pages = Vec::new();
    let mut ids = Vec::new();
    let mut next = meta.freelist_root;
    while next != 0 {
        if pages.len() as u64 >= meta.page_count {
            return Err(PagerError::corrupt(
                meta.freelist_root,
                "free list has a cycle",
            ));
        }
        let buf = pool.read_from_disk(next)?;
        let (mut chunk, following) = decode_freelist_page(&buf, next, meta.page_count)?;
        pages.push(next);
        ids.append(&mut chunk);
        next = following;
    }
    if ids.len() as u64 != meta.freelist_len {
        return Err(PagerError::corrupt(
            meta.freelist_root,
            format!(
                "free list holds {} ids, the meta page says {}",
                ids.len(),
                meta.freelist_len
            ),
        ));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(PagerError::corrupt(
            w[0],
            "page listed twice in the free list",
        ));
    }
    Ok((pages, ids))
}

/// Keeps a version's pages from being reused while any clone of its snapshot lives.
/// One count on a version in the pin table. It holds the table and the pool rather than the
/// store: the store caches the head's pin, and a pin holding the store would keep it alive.
struct Pin {
    pins: Arc<Mutex<BTreeMap<u64, usize>>>,
    pool: Arc<BufferPool>,
    version: Version,
    /// Trees of this version already looked up by name (a version never changes, and the
    /// head's pin is shared by every reader until the next commit). Bounded.
    trees: RwLock<std::collections::HashMap<String, Option<TreeRecord>>>,
}

/// Names a pin remembers at most.
const PIN_TREE_CACHE: usize = 64;

impl Drop for Pin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock();
        if let Some(count) = pins.get_mut(&self.version.seq) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.version.seq);
            }
        }
    }
}

/// A pinned, immutable version of every tree.
#[derive(Clone)]
pub struct Snapshot {
    pin: Arc<Pin>,
}

impl Snapshot {
    pub fn seq(&self) -> u64 {
        self.pin.version.seq
    }

    /// The root of the tree of trees.
    pub fn root(&self) -> PageId {
        self.pin.version.root
    }

    pub fn version(&self) -> Version {
        self.pin.version
    }

    fn pool(&self) -> &Arc<BufferPool> {
        &self.pin.pool
    }

    /// The tree named `name`, or None.
    pub fn tree(&self, name: &str) -> Result<Option<TreeView>> {
        let cached = self.pin.trees.read().get(name).copied();
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.lookup_tree(name)?;
                let mut trees = self.pin.trees.write();
                if trees.len() >= PIN_TREE_CACHE {
                    trees.clear();
                }
                trees.insert(name.to_string(), record);
                record
            }
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let root_page = match record.root {
            0 => None,
            root => Some(self.pool().get(root)?),
        };
        Ok(Some(TreeView {
            snapshot: self.clone(),
            record,
            root_page,
        }))
    }

    /// The record of tree `name` in the tree of trees.
    fn lookup_tree(&self, name: &str) -> Result<Option<TreeRecord>> {
        let root = self.root();
        btree::get_with(self.pool(), root, name.as_bytes(), |bytes| {
            TreeRecord::decode(bytes, root)
        })?
        .transpose()
    }

    /// Every tree, by name.
    pub fn trees(&self) -> Result<Vec<(String, TreeRecord)>> {
        let cursor = Cursor::new(
            Arc::clone(self.pool()),
            self.root(),
            Bound::Unbounded,
            Bound::Unbounded,
            false,
        );
        let mut out = Vec::new();
        for item in cursor {
            let (name, record) = item?;
            let record = TreeRecord::decode(&record, self.root())?;
            out.push((String::from_utf8_lossy(&name).into_owned(), record));
        }
        Ok(out)
    }

    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.tree(tree)? {
            Some(view) => view.get(key),
            None => Ok(None),
        }
    }
}

/// One tree of a snapshot: point reads, cursors and counts without a tree-of-trees lookup.
#[derive(Clone)]
pub struct TreeView {
    snapshot: Snapshot,
    record: TreeRecord,
    /// The root page, pinned for the view's life (None for an empty tree).
    root_page: Option<crate::pool::PageRef>,
}

impl TreeView {
    pub fn record(&self) -> TreeRecord {
        self.record
    }

    pub fn len(&self) -> u64 {
        self.record.len
    }

    pub fn is_empty(&self) -> bool {
        self.record.len == 0
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, <[u8]>::to_vec)
    }

    /// [`TreeView::get`], handing the value to `read` where it lies (decode without a copy).
    pub fn get_with<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        match &self.root_page {
            Some(root) => btree::get_from_with(self.snapshot.pool(), root, key, read),
            None => Ok(None),
        }
    }

    /// Entries within the bounds, in key order (or reverse order).
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, reverse: bool) -> Range {
        self.range_owned(owned_bound(lower), owned_bound(upper), reverse)
    }

    /// [`TreeView::range`] taking bounds the caller already owns (no copy).
    pub fn range_owned(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Range {
        Range {
            cursor: Cursor::new(
                Arc::clone(self.snapshot.pool()),
                self.record.root,
                lower,
                upper,
                reverse,
            ),
            _snapshot: Some(self.snapshot.clone()),
        }
    }

    /// Entries whose key starts with `prefix`.
    pub fn prefix(&self, prefix: &[u8], reverse: bool) -> Range {
        let upper = prefix_end(prefix);
        let upper_bound = match &upper {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        self.range(Bound::Included(prefix), upper_bound, reverse)
    }

    /// Entries within the bounds, counted in O(height).
    pub fn count(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        count_range(self.snapshot.pool(), self.record.root, lower, upper)
    }
}

fn count_range(
    pool: &BufferPool,
    root: PageId,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> Result<u64> {
    let high = btree::rank(pool, root, upper)?;
    let low = match lower {
        Bound::Unbounded => 0,
        Bound::Included(k) => btree::rank(pool, root, Bound::Excluded(k))?,
        Bound::Excluded(k) => btree::rank(pool, root, Bound::Included(k))?,
    };
    Ok(high.saturating_sub(low))
}

/// Borrow an owned bound.
pub fn bound_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key with this prefix (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// An iterator over a key range that keeps its version pinned.
pub struct Range {
    cursor: Cursor,
    _snapshot: Option<Snapshot>,
}

impl Range {
    pub fn seek(&mut self, key: &[u8]) {
        self.cursor.seek(key);
    }

    /// The next entry handed to `read` where it lies (a caller that decodes it skips copying
    /// the key and value out); None at the end of the range.
    pub fn next_with<R>(&mut self, read: impl FnOnce(&[u8], &[u8]) -> R) -> Result<Option<R>> {
        self.cursor.next_with(read)
    }
}

impl Iterator for Range {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next()
    }
}

/// The write transaction. Dropping it without `commit` discards every change.
pub struct WriteTxn {
    store: PageStore,
    writer: parking_lot::ArcMutexGuard<RawMutex, WriterState>,
    base: Version,
    seq: u64,
    catalog: TreeRecord,
    /// Trees this transaction has opened: their current record and whether it changed.
    trees: BTreeMap<String, (TreeRecord, bool)>,
    committed: bool,
}

impl WriteTxn {
    /// The sequence number this transaction will publish.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn base(&self) -> Version {
        self.base
    }

    fn ctx(
        &mut self,
    ) -> (
        WriteCtx<'_>,
        &mut BTreeMap<String, (TreeRecord, bool)>,
        &mut TreeRecord,
    ) {
        let inner = &self.store.inner;
        (
            WriteCtx {
                pool: &inner.pool,
                alloc: &mut self.writer.alloc,
                file: &*inner.file,
                seq: self.seq,
            },
            &mut self.trees,
            &mut self.catalog,
        )
    }

    fn record(&mut self, name: &str) -> Result<TreeRecord> {
        if let Some((record, _)) = self.trees.get(name) {
            return Ok(*record);
        }
        let record = match btree::get(&self.store.inner.pool, self.catalog.root, name.as_bytes())? {
            Some(bytes) => TreeRecord::decode(&bytes, self.catalog.root)?,
            None => TreeRecord::default(),
        };
        self.trees.insert(name.to_string(), (record, false));
        Ok(record)
    }

    fn check_tree_name(&self, name: &str) -> Result<()> {
        let max = crate::btree::node::max_key_bytes(self.store.page_size());
        if name.len() > max {
            return Err(PagerError::KeyTooLarge {
                len: name.len(),
                max,
            });
        }
        Ok(())
    }

    /// Run `op` on the named tree's record, marking it changed.
    fn modify<T>(
        &mut self,
        name: &str,
        op: impl FnOnce(&mut WriteCtx<'_>, &mut TreeRecord) -> Result<T>,
    ) -> Result<T> {
        self.check_tree_name(name)?;
        let mut record = self.record(name)?;
        let (mut ctx, trees, _) = self.ctx();
        let result = op(&mut ctx, &mut record);
        // Even on error the record reflects pages already rewritten; an error aborts the
        // transaction in every caller above, so only consistency within it matters.
        trees.insert(name.to_string(), (record, true));
        result
    }

    /// Create an empty tree if it does not exist (trees are also created by the first insert).
    pub fn create_tree(&mut self, name: &str) -> Result<()> {
        self.modify(name, |_, _| Ok(()))
    }

    /// Insert or replace; true when a value was replaced.
    pub fn insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        self.modify(tree, |ctx, record| btree::insert(ctx, record, key, value))
    }

    /// Delete; true when the key was there.
    pub fn remove(&mut self, tree: &str, key: &[u8]) -> Result<bool> {
        if self.record(tree)?.root == 0 {
            return Ok(false);
        }
        self.modify(tree, |ctx, record| btree::remove(ctx, record, key))
    }

    /// Load strictly increasing keys into an empty tree in one pass.
    pub fn bulk_load<I, K, V>(&mut self, tree: &str, items: I) -> Result<u64>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.modify(tree, |ctx, record| btree::bulk_load(ctx, record, items))
    }

    pub fn get(&mut self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let record = self.record(tree)?;
        btree::get(&self.store.inner.pool, record.root, key)
    }

    pub fn len(&mut self, tree: &str) -> Result<u64> {
        Ok(self.record(tree)?.len)
    }

    pub fn count(&mut self, tree: &str, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        let record = self.record(tree)?;
        count_range(&self.store.inner.pool, record.root, lower, upper)
    }

    /// Entries of the tree as this transaction sees them. The borrow keeps the tree unchanged
    /// while the range is alive.
    pub fn range<'t>(
        &'t mut self,
        tree: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<TxnRange<'t>> {
        let record = self.record(tree)?;
        Ok(TxnRange {
            cursor: Cursor::new(
                Arc::clone(&self.store.inner.pool),
                record.root,
                owned_bound(lower),
                owned_bound(upper),
                reverse,
            ),
            _txn: std::marker::PhantomData,
        })
    }

    /// Delete a tree and free all its pages. True when it existed.
    pub fn drop_tree(&mut self, name: &str) -> Result<bool> {
        let record = self.record(name)?;
        let existed = btree::get(&self.store.inner.pool, self.catalog.root, name.as_bytes())?
            .is_some()
            || self.trees.get(name).is_some_and(|(_, changed)| *changed);
        let mut pages = Vec::new();
        crate::check::collect_tree_pages(&self.store.inner.pool, record.root, &mut pages)?;
        let (mut ctx, trees, catalog) = self.ctx();
        for page in pages {
            ctx.free(page);
        }
        btree::remove(&mut ctx, catalog, name.as_bytes())?;
        trees.remove(name);
        Ok(existed)
    }

    /// Publish every change as version `seq()`: new snapshots see it at once.
    pub fn commit(mut self) -> Result<u64> {
        self.prepare()?;
        Ok(self.publish())
    }

    /// Write the records of the changed trees into the tree of trees: the last step of a
    /// commit that can fail (it allocates and may read). After it succeeds, [`publish`] cannot
    /// fail, so a caller can log the commit in between and never has to take the log back.
    ///
    /// [`publish`]: WriteTxn::publish
    pub fn prepare(&mut self) -> Result<()> {
        let changed: Vec<(String, TreeRecord)> = self
            .trees
            .iter()
            .filter(|(_, (_, changed))| *changed)
            .map(|(name, (record, _))| (name.clone(), *record))
            .collect();
        for (name, record) in changed {
            let (mut ctx, trees, catalog) = self.ctx();
            btree::insert(&mut ctx, catalog, name.as_bytes(), &record.encode())?;
            if let Some(entry) = trees.get_mut(&name) {
                entry.1 = false;
            }
        }
        Ok(())
    }

    /// Make the prepared transaction the head. Infallible by design (see [`prepare`]).
    ///
    /// [`prepare`]: WriteTxn::prepare
    pub fn publish(mut self) -> u64 {
        debug_assert!(
            self.trees.values().all(|(_, changed)| !changed),
            "publish before prepare: tree records would be lost"
        );
        let version = Version {
            seq: self.seq,
            root: self.catalog.root,
            tree_count: self.catalog.len,
        };
        self.writer.alloc.commit(self.seq);
        {
            let _pins = self.store.inner.pins.lock();
            *self.store.inner.head.write() = version;
        }
        // The old head's pin is no longer the head's; readers holding it keep it alive.
        let stale = self.store.inner.head_pin.write().take();
        drop(stale);
        self.committed = true;
        self.seq
    }

    /// Publish as version `seq` (at least `seq()`). Recovery redoes many logged commits in one
    /// transaction and publishes the last one's sequence.
    pub fn commit_as(mut self, seq: u64) -> Result<u64> {
        if seq < self.seq {
            return Err(PagerError::InvalidConfig(format!(
                "cannot publish version {seq} before {}",
                self.seq
            )));
        }
        self.seq = seq;
        self.commit()
    }

    /// Discard every change (the same as dropping the transaction).
    pub fn abort(self) {}
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if !self.committed {
            for id in self.writer.alloc.abort() {
                self.store.inner.pool.discard(id);
            }
        }
    }
}

/// A range read inside a write transaction.
pub struct TxnRange<'t> {
    cursor: Cursor,
    _txn: std::marker::PhantomData<&'t mut WriteTxn>,
}

impl Iterator for TxnRange<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next()
    }
}
