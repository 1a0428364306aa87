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
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RawMutex, RwLock};

use crate::alloc::{decode_freelist_page, Allocator};
use crate::btree::cursor::{owned_bound, Cursor};
use crate::btree::{self, TreeRecord, WriteCtx};
use crate::error::{PagerError, Result};
use crate::io::{all_ok, submit_wait, AlignedBuf, BackendKind, IoFile, IoOp, OpenOptions, Vfs};
use crate::meta::{self, Meta};
use crate::page::{self, PageId, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN};
use crate::pool::{BufferPool, PageRef, PoolStats};

mod file;
mod read;
mod snapshot;
mod txn;

use file::{create_file, load_freelist, make_meta_durable, read_meta_or_unfinished};
pub use read::{bound_ref, prefix_end, ReadTrees};
use snapshot::{Pin, ViewSource};
pub use snapshot::{Range, Snapshot, TreeView};
pub use txn::WriteTxn;

/// The page size the batch constants below were measured with.
const CHECKPOINT_TUNED_PAGE_SIZE: usize = 4096;

/// Pages written per batch during a checkpoint (4 KiB ones beside commits: `batch_bounds`).
const CHECKPOINT_BATCH_PAGES: usize = 128;

/// Separate writes (runs of adjacent pages) per batch while commits sync their log: each log
/// sync queues behind the batch in flight, and scattered pages cost the device one operation
/// each. Eight keep that wait under a millisecond on the benchmark machine (W9 in
/// docs/BENCHMARKS.md: 128 scattered pages per batch put a commit's p50 at 3.6 ms). After
/// such a batch the checkpoint also pauses as long as the batch took, so the log has the
/// device to itself half the time: without the pause, small batches back to back still put
/// W9's commit p99 at 4.4 ms (every log flush then also flushes the writes queued since the
/// last one); with it, 1.0 ms, for a checkpoint that takes twice as long.
const CHECKPOINT_BATCH_RUNS_BESIDE_COMMITS: usize = 8;

/// The longest pause after one batch beside commits: a batch slowed by something else (a
/// stalled device) must not stall the checkpoint twice as long again.
const MAX_CHECKPOINT_PAUSE: Duration = Duration::from_millis(5);

/// The bounds of one checkpoint batch: pages, and runs of adjacent pages. Beside commits, what
/// a commit's log sync waits behind is the bytes of the batch in flight, and the constants
/// above were measured with 4 KiB pages: larger pages get proportionally fewer (at least one).
/// With 8 KiB pages and the 4 KiB counts, W9's commit p99 during a checkpoint was twice as
/// high (460 against 216 µs, docs/BENCHMARKS.md).
fn batch_bounds(beside_commits: bool, page_size: usize) -> (usize, usize) {
    if !beside_commits {
        return (CHECKPOINT_BATCH_PAGES, usize::MAX);
    }
    let scale = (page_size / CHECKPOINT_TUNED_PAGE_SIZE).max(1);
    (
        (CHECKPOINT_BATCH_PAGES / scale).max(1),
        (CHECKPOINT_BATCH_RUNS_BESIDE_COMMITS / scale).max(1),
    )
}

/// How many of `ids` (ascending) the next checkpoint batch takes: at most `max_pages`, in at
/// most `max_runs` runs of adjacent ids. Always at least one id when there is one.
fn batch_len(ids: &[PageId], max_pages: usize, max_runs: usize) -> usize {
    let mut runs = 1;
    let mut len = 1.min(ids.len());
    while len < ids.len() && len < max_pages {
        if ids[len] != ids[len - 1] + 1 {
            if runs == max_runs {
                break;
            }
            runs += 1;
        }
        len += 1;
    }
    len
}

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
    /// Readers of other processes, asked after each checkpoint which generation the oldest of
    /// them reads (None: no such readers can exist, as on the simulator).
    readers: RwLock<Option<Arc<dyn ReaderRegistry>>>,
}

/// Where the store learns which checkpoint generations readers in other processes still read
/// (they open the newest durable meta page and read its pages lazily, so the pages that
/// generation reaches must not be reused under them).
pub trait ReaderRegistry: Send + Sync {
    /// The oldest generation a live reader reads, or None when there is no reader.
    fn oldest_generation(&self) -> std::io::Result<Option<u64>>;
}

/// The store. Cheap to clone; all clones share one file and pool.
#[derive(Clone)]
pub struct PageStore {
    inner: Arc<Inner>,
}

/// Pages freed since the last checkpoint began that a checkpoint still reaches: the file keeps
/// them from reuse until the next checkpoint is durable, so under random rewrites it grows to
/// the live pages plus these (a shadow-paging store's space cost). `PageStore::space_held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceHeld {
    pub held_pages: u64,
    pub page_count: u64,
}

/// The default of [`SpaceHeld::checkpoint_due`]'s percentage: a file stays within about 5 %
/// (plus one growth extent) of its live pages.
pub const CHECKPOINT_SPACE_PERCENT_DEFAULT: u32 = 5;

/// The default of [`SpaceHeld::checkpoint_due`]'s minimum, in bytes: below it a small file
/// would checkpoint every few commits.
pub const CHECKPOINT_SPACE_MIN_BYTES_DEFAULT: u64 = 16 << 20;

impl SpaceHeld {
    /// Whether the held pages pass `percent` of the file's pages and `min_pages`: a checkpoint
    /// now lets them be reused. `percent` 0: never.
    pub fn checkpoint_due(&self, percent: u32, min_pages: u64) -> bool {
        percent > 0
            && self.held_pages >= min_pages.max(1)
            && self.held_pages.saturating_mul(100)
                >= self.page_count.saturating_mul(u64::from(percent))
    }

    /// Whether the held pages pass twice what [`checkpoint_due`] allows: commits replace pages
    /// faster than checkpoints let them be reused, and should wait for one. Without the wait
    /// the file grows by what the commits replace while each checkpoint is written.
    ///
    /// [`checkpoint_due`]: SpaceHeld::checkpoint_due
    pub fn commits_should_wait(&self, percent: u32, min_pages: u64) -> bool {
        let doubled = SpaceHeld {
            held_pages: self.held_pages / 2,
            page_count: self.page_count,
        };
        doubled.checkpoint_due(percent, min_pages)
    }
}

/// What a checkpoint made durable.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointInfo {
    pub meta: Meta,
    pub pages_written: usize,
    /// The oldest generation another process's reader read when the checkpoint became durable
    /// (None: no reader). While there is one, the log it may still scan is kept too.
    pub readers_oldest: Option<u64>,
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
            make_meta_durable(&*vfs, path, &*file, &meta)?;
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
                readers: RwLock::new(None),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file system the store's file lives on.
    pub fn vfs(&self) -> Arc<dyn Vfs> {
        Arc::clone(&self.inner.vfs)
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
        let base = *self.inner.head.read();
        let oldest = self.oldest_pinned_seq();
        // Frames of reclaimed pages are garbage: drop them rather than ever write them back.
        self.inner
            .pool
            .discard_reclaimed(&writer.alloc.reclaim(oldest));
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
            poisoned: None,
            read_records: Default::default(),
        })
    }

    /// The oldest sequence a pinned snapshot reads (the head's when none is pinned), asked
    /// under the writer lock (lock order: writer, then pins). Until that lock is released, new
    /// pins are of the head, which cannot move, or of a checkpoint's version, whose pages wait
    /// for a newer durable generation that the allocator learns only under the writer lock.
    fn oldest_pinned_seq(&self) -> u64 {
        let pins = self.inner.pins.lock();
        let head = self.inner.head.read().seq;
        pins.keys().next().copied().unwrap_or(head).min(head)
    }

    /// Make the newest published version durable: write its dirty pages and free list, sync,
    /// then write the other meta page and sync. Commits may go on meanwhile; only the capture
    /// of the free list waits for the running write transaction.
    ///
    /// The meta page records the version's commit sequence as the WAL position it covers: the
    /// log gives every commit one frame whose LSN equals the commit's sequence.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.checkpoint_unless(|| None, &mut || false)
    }

    /// [`checkpoint`], refused when `refuse` gives a reason. `refuse` is asked once no other
    /// checkpoint runs and before anything is captured, under the lock [`durable_meta`] takes:
    /// whoever sets the reason and then reads `durable_meta` knows that no checkpoint started
    /// after the reason was set, and sees every one that did before.
    ///
    ///
    /// `log_syncing` is asked before each batch of pages: true while commits sync a log on the
    /// same device since it was last asked. The batch is then kept small and followed by a
    /// pause as long as it took ([`CHECKPOINT_BATCH_RUNS_BESIDE_COMMITS`]), so a commit's sync
    /// waits behind little.
    ///
    /// [`checkpoint`]: PageStore::checkpoint
    /// [`durable_meta`]: PageStore::durable_meta
    pub fn checkpoint_unless(
        &self,
        refuse: impl FnOnce() -> Option<String>,
        log_syncing: &mut dyn FnMut() -> bool,
    ) -> Result<CheckpointInfo> {
        if self.inner.read_only {
            return Err(PagerError::ReadOnly);
        }
        self.check_failed()?;
        let result = self.checkpoint_inner(refuse, log_syncing);
        match &result {
            Err(PagerError::Refused(_)) | Ok(_) => {}
            Err(err) => self.latch_failure(err),
        }
        result
    }

    /// Write one batch of a checkpoint's dirty pages (ids in order): the ones still dirty are
    /// pinned for the batch, and runs of adjacent pages go out as one write each. Returns the
    /// pages written; on failure the batch's pages are dirty again (for the next attempt).
    fn write_checkpoint_batch(&self, ids: &[PageId]) -> Result<usize> {
        let pool = &self.inner.pool;
        let page_size = pool.page_size();
        let pinned: Vec<PageRef> = ids.iter().filter_map(|id| pool.pin_if_dirty(*id)).collect();
        let mut ops = Vec::new();
        let mut written: Vec<&PageRef> = Vec::with_capacity(pinned.len());
        let mut run = 0;
        while run < pinned.len() {
            let mut end = run + 1;
            while end < pinned.len() && pinned[end].id() == pinned[end - 1].id() + 1 {
                end += 1;
            }
            let mut buf = AlignedBuf::zeroed((end - run) * page_size);
            let mut filled = 0;
            for page in &pinned[run..end] {
                // A page another write-back took meanwhile ends the run's contiguous prefix.
                if !pool.seal_into(page, &mut buf[filled * page_size..(filled + 1) * page_size]) {
                    break;
                }
                written.push(page);
                filled += 1;
            }
            if filled > 0 {
                let buf = if filled == end - run {
                    buf
                } else {
                    AlignedBuf::from_slice(&buf[..filled * page_size])
                };
                ops.push(IoOp::Write {
                    offset: pinned[run].id() * page_size as u64,
                    buf,
                });
            }
            run += filled.max(1);
        }
        // Pacing: after the batch's writes (a write-back is a barrier), wait until they are on
        // the device before the next batch, so a commit's log sync never queues behind more
        // than one batch of checkpoint writes, and the final data sync has little left. One
        // range from the first to the last page (clean pages in it cost nothing): one per run
        // would be a syscall per page when the dirty pages are scattered. The range may pass
        // 4 GiB; every backend takes that (io_uring as "to the end of the file").
        if let (Some(first), Some(last)) = (written.first(), written.last()) {
            let offset = first.id() * page_size as u64;
            ops.push(IoOp::WriteBack {
                offset,
                len: (last.id() + 1) * page_size as u64 - offset,
            });
        }
        if let Err(err) = all_ok(submit_wait(&*self.inner.file, ops)) {
            // Pages not known to be on disk stay dirty for the next attempt (after reopen).
            for page in written {
                pool.mark_dirty(page);
            }
            return Err(err.into());
        }
        Ok(written.len())
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
    fn checkpoint_inner(
        &self,
        refuse: impl FnOnce() -> Option<String>,
        log_syncing: &mut dyn FnMut() -> bool,
    ) -> Result<CheckpointInfo> {
        let inner = &self.inner;
        let mut durable = inner.durable.lock();
        if let Some(reason) = refuse() {
            return Err(PagerError::Refused(reason));
        }
        let (meta, capture) = {
            let mut writer = inner.writer.lock();
            let head = *inner.head.read();
            // The capture may take reusable waiting pages for its free list: judge them by the
            // pins of now, not of the last begin (a checkpoint snapshot pinned since then reads
            // the durable version, older than any head).
            let oldest = self.oldest_pinned_seq();
            writer.alloc.set_oldest_pinned(oldest);
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
        let mut dirty = inner.pool.dirty_page_ids();
        dirty.retain(|id| capture.covers(*id));
        let mut pages_written = 0;
        let mut rest = &dirty[..];
        while !rest.is_empty() {
            let beside_commits = log_syncing();
            let (max_pages, max_runs) = batch_bounds(beside_commits, inner.pool.page_size());
            let len = batch_len(rest, max_pages, max_runs);
            let started = Instant::now();
            pages_written += self.write_checkpoint_batch(&rest[..len])?;
            rest = &rest[len..];
            if beside_commits && !rest.is_empty() {
                std::thread::sleep(started.elapsed().min(MAX_CHECKPOINT_PAUSE));
            }
        }
        if let Some(reason) = inner.pool.wait_for_write_backs() {
            return Err(PagerError::Failed(reason));
        }
        // Copy-on-write: nothing V reaches changes after the capture, so what was written is
        // what V holds.
        debug_assert!(
            dirty
                .iter()
                .all(|id| inner.pool.pin_if_dirty(*id).is_none()),
            "a page of the captured version changed during its checkpoint"
        );
        all_ok(submit_wait(&*inner.file, vec![IoOp::Sync]))?;
        let page_size = inner.pool.page_size() as u64;
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
        // Asked only now: a reader that registers later reads this meta page or a newer one.
        let readers_oldest = self.readers_oldest();
        inner
            .writer
            .lock()
            .alloc
            .checkpoint_durable(meta.generation, readers_oldest);
        tracing::debug!(
            generation = meta.generation,
            seq = meta.seq,
            pages_written,
            "checkpoint durable"
        );
        Ok(CheckpointInfo {
            meta,
            pages_written,
            readers_oldest,
        })
    }

    /// Install the registry of other processes' readers, before the first write transaction:
    /// readers already registered may read an older generation than the one this store opened,
    /// whose pages its loaded free list can hold (`Allocator::readers_at_open`).
    pub fn set_reader_registry(&self, registry: Arc<dyn ReaderRegistry>) {
        *self.inner.readers.write() = Some(registry);
        let oldest = self.readers_oldest();
        self.inner.writer.lock().alloc.readers_at_open(oldest);
    }

    fn readers_oldest(&self) -> Option<u64> {
        let registry = self.inner.readers.read().clone()?;
        match registry.oldest_generation() {
            Ok(oldest) => oldest,
            Err(err) => {
                // Unknown readers: reuse nothing a checkpoint since open freed.
                tracing::warn!(error = %err, "could not ask for readers; keeping freed pages");
                Some(0)
            }
        }
    }

    /// Pages the file holds only until the next checkpoint, against the pages it has: what a
    /// checkpoint policy bounds space with.
    pub fn space_held(&self) -> SpaceHeld {
        let writer = self.inner.writer.lock();
        SpaceHeld {
            held_pages: writer.alloc.freed_since_capture(),
            page_count: writer.alloc.page_count(),
        }
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

#[cfg(test)]
mod tests {
    use super::{batch_bounds, batch_len};

    #[test]
    fn a_batch_ends_at_its_page_or_run_limit() {
        let ids = [1, 2, 3, 7, 8, 20, 30, 31, 32, 33];
        assert_eq!(batch_len(&ids, 128, usize::MAX), ids.len());
        assert_eq!(batch_len(&ids, 4, usize::MAX), 4);
        assert_eq!(batch_len(&ids, 128, 1), 3);
        assert_eq!(batch_len(&ids, 128, 2), 5);
        assert_eq!(batch_len(&ids, 128, 3), 6);
        assert_eq!(batch_len(&ids[6..], 128, 1), 4);
        assert_eq!(batch_len(&[], 128, 1), 0);
        assert_eq!(batch_len(&[5], 128, 1), 1);
    }

    #[test]
    fn a_batch_beside_commits_keeps_the_bytes_of_4_kib_pages() {
        assert_eq!(batch_bounds(true, 4096), (128, 8));
        assert_eq!(batch_bounds(true, 8192), (64, 4));
        assert_eq!(batch_bounds(true, 16384), (32, 2));
        assert_eq!(batch_bounds(true, 32768), (16, 1));
        assert_eq!(batch_bounds(true, 65536), (8, 1));
        for page_size in [4096, 8192, 65536] {
            assert_eq!(batch_bounds(false, page_size), (128, usize::MAX));
        }
    }
}
