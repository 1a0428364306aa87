//! The durable engine under `AedbInstance`: recovery at open, the commit pipeline, snapshots,
//! checkpoints, and shutdown. Everything above it (tables, KV, accumulators, events,
//! processors) commits through [`Engine::commit`] with a body that applies effects to B+trees;
//! the pipeline logs those effects, so redo never re-runs validation logic.

/// How many trees `Engine::watch_tree` tracks at most.
pub const MAX_WATCHED_TREES: usize = 8;

mod answers;
mod checkpointer;
mod group;
mod leader;
mod lock;
mod pipeline;
mod readers;
mod recovery;
mod redo;
mod retained;
mod structural;
mod txn;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use aedb_pager::io::{os_vfs, BackendKind, IoErrorKind, Vfs};
use aedb_pager::{CheckpointInfo, PageStore, ReaderRegistry, Snapshot, StoreConfig};
use aedb_wal::WalWriter;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

pub use txn::LoggedTxn;

use crate::config::AedbConfig;
use crate::error::{AedbError, Result};
use crate::CommitFinality;
use checkpointer::{checkpoint, checkpointer_loop};
use leader::Pipeline;
use lock::DirLock;
use pipeline::{Msg, Shared, Writer};
use recovery::{recover, redo_log};

pub const DATA_FILE: &str = "data.aedb";
pub const WAL_DIR: &str = "wal";

/// What a commit returns: its sequence, the durable head when it was acknowledged, and the
/// body's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome<T> {
    pub commit_seq: u64,
    pub durable_head_seq: u64,
    pub value: T,
}

/// What recovery did at open.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub checkpoint_seq: u64,
    pub frames_replayed: u64,
    pub bytes_replayed: u64,
    pub recovered_seq: u64,
    /// Where the log ended early and why (a torn tail; in permissive mode, damage).
    pub dropped: Option<String>,
    /// Redo replayed more than `recovery_checkpoint_frames` frames, so the open asked for a
    /// checkpoint of what it replayed. The first group's leader runs it after the open has
    /// returned (the writer thread, at once): reads go on meanwhile, no commit is applied
    /// before it is durable, and the durable head does not count the replayed commits until
    /// then ([`Engine::wait_for_recovery_checkpoint`]).
    pub checkpointed_after_redo: bool,
    /// Log payload redo buffered before each merge: what the buffer pool lent for it (half of
    /// it, at most 1 GiB), at least 64 MiB (`redo.rs`).
    pub redo_buffer_bytes: u64,
    /// Frames the buffer pool lent for the redo buffer: the pool had that many fewer while
    /// redo ran.
    pub redo_lent_frames: u64,
    /// Dirty frames the pool wrote back to evict them while redo ran (under the loan): redo
    /// dirtied more pages than the frames it had left.
    pub redo_write_backs: u64,
}

pub struct Engine {
    shared: Arc<Shared>,
    /// The commit pipeline (None when read-only).
    pipeline: Option<Arc<Pipeline>>,
    writer: Mutex<Option<JoinHandle<Option<WalWriter>>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
    recovery: RecoveryReport,
    read_only: bool,
    _lock: Option<DirLock>,
    /// A read-only open's registration with writers in other processes (`readers.rs`).
    _registration: Option<readers::ReaderRegistration>,
}

impl Engine {
    /// Open (creating when empty) the database in `dir` on the OS file system, recovering it.
    pub fn open(config: AedbConfig, dir: &Path) -> Result<Self> {
        let vfs = os_vfs(config.io_backend).map_err(|e| AedbError::Io(e.to_string()))?;
        Self::open_with_vfs(config, dir, vfs)
    }

    /// Open on any file system. On the OS's file systems the directory lock is taken as by
    /// [`Engine::open`]; the simulator has no other process to exclude.
    pub fn open_with_vfs(config: AedbConfig, dir: &Path, vfs: Arc<dyn Vfs>) -> Result<Self> {
        Self::open_writable(config, dir, vfs, false)
    }

    /// [`Engine::open_with_vfs`] for a secure open: a directory once opened with weaker
    /// settings is refused once the directory is locked, before anything is read or written
    /// (`trust_marker.rs`).
    pub(crate) fn open_strict_with_vfs(
        config: AedbConfig,
        dir: &Path,
        vfs: Arc<dyn Vfs>,
    ) -> Result<Self> {
        Self::open_writable(config, dir, vfs, true)
    }

    fn open_writable(
        config: AedbConfig,
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        refuse_weakened: bool,
    ) -> Result<Self> {
        let lock = if vfs.kind() == BackendKind::Simulated {
            None
        } else {
            // Durably: the lock file is the first entry of a new database directory.
            vfs.create_dir_all(dir)
                .map_err(|e| AedbError::Io(e.to_string()))?;
            sync_in_parent(&*vfs, dir)?;
            Some(DirLock::acquire_in(&*vfs, dir)?)
        };
        if refuse_weakened {
            crate::trust_marker::check_strict_open(&*vfs, dir, &config)?;
        }
        let readers: Option<Arc<dyn ReaderRegistry>> = match lock {
            Some(_) => Some(Arc::new(readers::ReaderTable::open_in(&*vfs, dir)?)),
            None => None,
        };
        Self::open_inner(config, dir, vfs, lock, readers)
    }

    /// Open without writing anything (no lock, no new log segment, no checkpoint): the newest
    /// checkpoint plus the log redone in memory. Beside a live writer it registers as a reader
    /// (`readers.rs`), so the writer reuses none of the pages it reads.
    pub fn open_read_only(config: AedbConfig, dir: &Path) -> Result<Self> {
        let vfs =
            os_vfs(aedb_pager::IoBackendChoice::Sync).map_err(|e| AedbError::Io(e.to_string()))?;
        Self::open_read_only_with_vfs(config, dir, vfs)
    }

    pub fn open_read_only_with_vfs(
        config: AedbConfig,
        dir: &Path,
        vfs: Arc<dyn Vfs>,
    ) -> Result<Self> {
        // No registration for a database that is not there (nothing is created then).
        let registration =
            if vfs.kind() == BackendKind::Simulated || !vfs.exists(&dir.join(DATA_FILE)) {
                None
            } else {
                Some(readers::ReaderRegistration::begin_in(&*vfs, dir))
            };
        Self::open_read_only_inner(config, dir, vfs, registration)
    }

    fn open_read_only_inner(
        config: AedbConfig,
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        registration: Option<readers::ReaderRegistration>,
    ) -> Result<Self> {
        config
            .validate()
            .map_err(|message| AedbError::InvalidConfig { message })?;
        let store_config = StoreConfig {
            page_size: config.page_size,
            buffer_pool_bytes: config.buffer_pool_bytes,
            direct_io: false,
        };
        let store =
            PageStore::open_read_only(Arc::clone(&vfs), &dir.join(DATA_FILE), &store_config)?;
        if let Some(registration) = &registration {
            registration.settle(store.durable_meta().generation);
        }
        let (_, recovery) = redo_log(&store, &vfs, dir, &config)?;
        let durable = store.head().seq;
        Ok(Engine {
            shared: Self::shared(store, durable, &config),
            pipeline: None,
            writer: Mutex::new(None),
            checkpointer: Mutex::new(None),
            dir: dir.to_path_buf(),
            recovery,
            read_only: true,
            _lock: None,
            _registration: registration,
        })
    }

    fn shared(store: PageStore, durable_seq: u64, config: &AedbConfig) -> Arc<Shared> {
        let covered = store.durable_meta().wal_position;
        let head = store.head().seq;
        Arc::new(Shared {
            store,
            durable_seq: AtomicU64::new(durable_seq),
            failed: Mutex::new(None),
            covered_lsn: AtomicU64::new(covered),
            checkpointed_seq: AtomicU64::new(covered),
            checkpoint_request: Mutex::new(false),
            checkpoint_signal: Condvar::new(),
            checkpoint_finished: Condvar::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            recovery_checkpoint_due: std::sync::atomic::AtomicBool::new(false),
            retained: Mutex::new(retained::RetainedVersions::new(
                config.max_versions,
                retained_page_budget(config),
            )),
            groups: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            watched_trees: parking_lot::RwLock::new(Arc::from(Vec::new())),
            watched_changed_at: AtomicU64::new(head),
            structural: Arc::new(Mutex::new(structural::StructuralVersions::new(head))),
            marks: tokio::sync::watch::channel(0).0,
        })
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn open_inner(
        config: AedbConfig,
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        lock: Option<DirLock>,
        readers: Option<Arc<dyn ReaderRegistry>>,
    ) -> Result<Self> {
        config
            .validate()
            .map_err(|message| AedbError::InvalidConfig { message })?;
        vfs.create_dir_all(dir)
            .map_err(|e| AedbError::Io(e.to_string()))?;
        // With the directory locked and the configuration valid, before recovery changes
        // anything: a weak open is remembered, and a secure open then refuses the directory.
        crate::trust_marker::note_open(&*vfs, dir, &config)?;
        let store_config = StoreConfig {
            page_size: config.page_size,
            buffer_pool_bytes: config.buffer_pool_bytes,
            direct_io: config.direct_io,
        };
        let store = PageStore::open(Arc::clone(&vfs), &dir.join(DATA_FILE), &store_config)?;
        if let Some(readers) = readers {
            // Before recovery's checkpoint: that one may already free pages a reader reads.
            store.set_reader_registry(readers);
        }
        let (wal, recovery) = recover(&store, &vfs, dir, &config)?;
        // What redo replayed is durable once its checkpoint is (see `Writer::log_vouches`).
        let durable = if recovery.checkpointed_after_redo {
            store.durable_meta().seq
        } else {
            wal.synced_lsn()
        };
        let shared = Self::shared(store, durable, &config);
        // Before any thread starts: the first leader runs it before its group (the writer
        // thread's first run, at once, unless a caller leads first).
        shared
            .recovery_checkpoint_due
            .store(recovery.checkpointed_after_redo, Ordering::Release);
        let pipeline = Arc::new(Pipeline::new(
            Writer::new(Arc::clone(&shared), wal, config.clone()),
            config.max_inflight_commits,
        ));
        let writer = {
            let pipeline = Arc::clone(&pipeline);
            std::thread::Builder::new()
                .name("aedb-writer".into())
                .spawn(move || pipeline.run_writer_thread())
                .map_err(|e| AedbError::Io(e.to_string()))?
        };
        let checkpointer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("aedb-checkpointer".into())
                .spawn(move || checkpointer_loop(&shared))
        };
        let checkpointer = match checkpointer {
            Ok(handle) => handle,
            Err(err) => {
                // The writer thread holds the log and the data file: stop it before failing.
                pipeline.close();
                let _ = writer.join();
                return Err(AedbError::Io(err.to_string()));
            }
        };
        tracing::info!(dir = %dir.display(), backend = %vfs.kind(), seq = recovery.recovered_seq, replayed = recovery.frames_replayed, "database open");
        Ok(Engine {
            shared,
            pipeline: Some(pipeline),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            dir: dir.to_path_buf(),
            recovery,
            read_only: false,
            _lock: lock,
            _registration: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file system the engine runs on (files beside the data file use it too).
    pub fn vfs(&self) -> Arc<dyn Vfs> {
        self.shared.store.vfs()
    }

    /// The lock file held while open (None on a simulated file system).
    pub fn lock_path(&self) -> Option<&Path> {
        self._lock.as_ref().map(DirLock::path)
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn backend(&self) -> BackendKind {
        self.shared.store.backend()
    }

    pub fn store(&self) -> &PageStore {
        &self.shared.store
    }

    /// A snapshot of the newest visible version.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.store.snapshot()
    }

    /// Track commits that write `tree` (see [`Engine::watched_changed_at`]), from the next
    /// commit on: call it before the first commit that writes the tree. The layer above
    /// names the trees (the schema catalog, grants), so this core knows no tree by name.
    /// At most [`MAX_WATCHED_TREES`]: every write compares its tree against the list.
    pub fn watch_tree(&self, tree: &str) -> Result<()> {
        let mut watched = self.shared.watched_trees.write();
        if watched.iter().any(|t| &**t == tree) {
            return Ok(());
        }
        if watched.len() >= MAX_WATCHED_TREES {
            return Err(AedbError::InvalidConfig {
                message: format!(
                    "engine already watches {MAX_WATCHED_TREES} trees, not also {tree:?}"
                ),
            });
        }
        let mut trees: Vec<Arc<str>> = watched.iter().cloned().collect();
        trees.push(Arc::from(tree));
        *watched = Arc::from(trees);
        Ok(())
    }

    /// A wake-up hint for deliveries: a sequence at or past the newest marked commit
    /// (`LoggedTxn::mark`) that is deliverable — durable under `Full` and `Batch`, written
    /// under `OsBuffered` — never past what is deliverable. Raised once per group at most,
    /// and by the checkpoint after a replaying open to the replayed head (which of the
    /// replayed commits were marked is not known); 0 until then.
    pub fn watch_marks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.marks.subscribe()
    }

    /// Sequence of the newest commit that wrote a watched tree (at least the head at open).
    /// Two snapshots at or after it see the same watched trees.
    pub fn watched_changed_at(&self) -> u64 {
        self.shared.watched_changed_at.load(Ordering::SeqCst)
    }

    /// Sequence of the newest commit that deleted a key from `tree` or dropped it (at least
    /// the head at open: deletes before it are not tracked).
    pub fn structural_version(&self, tree: &str) -> u64 {
        self.shared.structural.lock().of(tree)
    }

    /// A snapshot of exactly commit `seq`: the head, or one of the most recent commits (at most
    /// `max_versions`, and fewer when they would hold more than an eighth of the buffer pool
    /// in replaced pages: see `retained.rs`). Commits applied together in one group (`group.rs`)
    /// are one version, their group's last sequence: a sequence inside a group is not one.
    /// `Err(oldest)` when it is not retained (or `Err(head)` when it is in the future: compare
    /// with `visible_head_seq`).
    pub fn snapshot_at(&self, seq: u64) -> std::result::Result<Snapshot, u64> {
        let head = self.snapshot();
        if head.seq() == seq {
            return Ok(head);
        }
        let retained = self.shared.retained.lock();
        if let Some(found) = retained.find(seq) {
            return Ok(found);
        }
        let checkpoint = self.shared.store.checkpoint_snapshot();
        if checkpoint.seq() == seq {
            return Ok(checkpoint);
        }
        let oldest = retained.oldest_seq().unwrap_or(head.seq()).min(head.seq());
        Err(oldest)
    }

    /// A snapshot of the newest durable checkpoint.
    pub fn checkpoint_snapshot(&self) -> Snapshot {
        self.shared.store.checkpoint_snapshot()
    }

    pub fn visible_head_seq(&self) -> u64 {
        self.shared.store.head().seq
    }

    pub fn durable_head_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// (groups written, fsyncs) since open: commits per fsync shows group commit at work.
    pub fn group_stats(&self) -> (u64, u64) {
        (
            self.shared.groups.load(Ordering::Relaxed),
            self.shared.syncs.load(Ordering::Relaxed),
        )
    }

    /// Commits (and sync requests) queued for the writer and not yet taken into a group: the
    /// depth of the commit queue, which `max_inflight_commits` bounds.
    pub fn queued_commits(&self) -> usize {
        self.pipeline
            .as_ref()
            .map_or(0, |pipeline| pipeline.queued())
    }

    /// (versions retained for `AtSeq` reads, pages they keep from reuse).
    pub fn retention_stats(&self) -> (usize, u64) {
        let retained = self.shared.retained.lock();
        (retained.len(), retained.held_pages())
    }

    /// Queue a commit; `lead`: the caller will try to run the group itself (blocking callers),
    /// otherwise the writer thread is woken to run it (async callers: no runtime thread blocks
    /// in a group's write and sync). Leading on an async caller's thread inside
    /// `tokio::task::block_in_place` was measured faster (ARCHITECTURE.md, "Decisions still
    /// open") and not kept: it panics in a `LocalSet` polled outside the runtime's workers,
    /// which nothing public lets a library detect beforehand.
    fn enqueue<T: Send + 'static>(
        &self,
        finality: CommitFinality,
        dry_run: bool,
        lead: bool,
        body: impl FnOnce(&mut LoggedTxn) -> Result<T> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<pipeline::Committed>>> {
        self.shared.check_failed()?;
        let pipeline = self.pipeline()?;
        let (reply, receiver) = oneshot::channel();
        let body: pipeline::Body =
            Box::new(move |txn| body(txn).map(|v| Box::new(v) as Box<dyn Any + Send>));
        let msg = Msg::Commit {
            body,
            finality,
            dry_run,
            reply,
        };
        pipeline.push(msg, !lead)?;
        if lead {
            pipeline.lead();
        }
        Ok(receiver)
    }

    fn pipeline(&self) -> Result<&Pipeline> {
        match &self.pipeline {
            Some(pipeline) => Ok(pipeline),
            None => Err(AedbError::ReadOnly),
        }
    }

    /// Commit atomically: `body` runs on the writer against the latest state; its effects are
    /// logged and published. Returns at visibility or durability, as asked. The body must not
    /// itself wait for another commit (it runs on the only writer), and should not panic (a
    /// panic fails the commit with `CommitPanicked`).
    pub async fn commit<T: Send + 'static>(
        &self,
        finality: CommitFinality,
        body: impl FnOnce(&mut LoggedTxn) -> Result<T> + Send + 'static,
    ) -> Result<CommitOutcome<T>> {
        let receiver = self.enqueue(finality, false, false, body)?;
        let committed = receiver.await.map_err(|_| AedbError::Closed)??;
        downcast(committed)
    }

    /// Run `body` on the writer against the latest state, then discard every change: nothing
    /// is logged, published or given a sequence (for advisory preflight checks).
    pub async fn dry_run<T: Send + 'static>(
        &self,
        body: impl FnOnce(&mut LoggedTxn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let receiver = self.enqueue(CommitFinality::Visible, true, false, body)?;
        let committed = receiver.await.map_err(|_| AedbError::Closed)??;
        downcast(committed).map(|o| o.value)
    }

    /// `commit` for threads outside an async runtime. The calling thread runs the commit
    /// (and the group it leads) itself when no other commit is running (`leader.rs`).
    pub fn commit_blocking<T: Send + 'static>(
        &self,
        finality: CommitFinality,
        body: impl FnOnce(&mut LoggedTxn) -> Result<T> + Send + 'static,
    ) -> Result<CommitOutcome<T>> {
        let receiver = self.enqueue(finality, false, true, body)?;
        let committed = receiver.blocking_recv().map_err(|_| AedbError::Closed)??;
        downcast(committed)
    }

    /// Make every commit so far durable (an fsync in any durability mode).
    pub fn sync_blocking(&self) -> Result<u64> {
        let pipeline = match &self.pipeline {
            Some(pipeline) => pipeline,
            None => return Err(AedbError::Closed),
        };
        let (reply, receiver) = oneshot::channel();
        pipeline.push(Msg::Sync(reply), false)?;
        pipeline.lead();
        receiver.blocking_recv().map_err(|_| AedbError::Closed)?
    }

    /// Checkpoint the newest visible version now (commits and queries go on meanwhile); the
    /// log segments it covers are deleted by the writer afterwards.
    pub fn checkpoint_now(&self) -> Result<CheckpointInfo> {
        if self.read_only {
            return Err(AedbError::ReadOnly);
        }
        self.shared.check_failed()?;
        checkpoint(&self.shared)
    }

    /// Wait until the checkpoint the open asked for after redo
    /// ([`RecoveryReport::checkpointed_after_redo`]) is over: at once when there was none.
    /// Commits wait for it anyway; this is for a caller that wants the open's whole work done
    /// (or its failure reported) before it goes on. An error: the instance is latched — by
    /// that checkpoint's failure (where the open used to fail), or by a failure since. It
    /// blocks the calling thread: from async code, call it in `spawn_blocking`.
    pub fn wait_for_recovery_checkpoint(&self) -> Result<()> {
        self.shared.wait_for_recovery_checkpoint();
        self.shared.check_failed()
    }

    /// Stop accepting commits, make everything durable, checkpoint, delete covered log
    /// segments, and release the directory lock.
    pub fn shutdown(self) -> Result<()> {
        self.stop(true)
    }

    fn stop(&self, checkpoint_at_end: bool) -> Result<()> {
        let Some(pipeline) = &self.pipeline else {
            return Ok(());
        };
        let Some(writer) = self.writer.lock().take() else {
            return Ok(());
        };
        pipeline.close();
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.request_checkpoint();
        if let Some(handle) = self.checkpointer.lock().take() {
            if handle.join().is_err() {
                self.shared.latch("the checkpointer thread panicked".into());
            }
        }
        let wal = match writer.join() {
            Ok(wal) => wal,
            Err(_) => {
                self.shared.latch("the writer thread panicked".into());
                None
            }
        };
        self.shared.check_failed()?;
        if checkpoint_at_end {
            let info = checkpoint(&self.shared)?;
            if let Some(mut wal) = wal.filter(|_| info.readers_oldest.is_none()) {
                pipeline::delete_covered_segments(&mut wal, info.meta.seq)?;
            }
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(err) = self.stop(true) {
            tracing::warn!(error = %err, "shutdown on drop did not complete; recovery will redo the log");
        }
    }
}

/// Sync the directory holding `dir`: a database directory made by someone else may not be
/// durable in its parent yet.
fn sync_in_parent(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return Ok(()),
    };
    match vfs.sync_dir(parent) {
        Ok(()) => Ok(()),
        // A parent the process may enter but not read (mode 0711) cannot be opened to sync; a
        // directory `create_dir_all` made just now was synced in it as it was created.
        Err(err)
            if matches!(
                err.kind,
                IoErrorKind::Os(libc::EACCES | libc::EPERM | libc::EINVAL)
            ) =>
        {
            tracing::warn!(dir = %parent.display(), error = %err, "could not sync the database directory's parent");
            Ok(())
        }
        Err(err) => Err(AedbError::Io(err.to_string())),
    }
}

fn downcast<T: 'static>(committed: pipeline::Committed) -> Result<CommitOutcome<T>> {
    match committed.value.downcast::<T>() {
        Ok(value) => Ok(CommitOutcome {
            commit_seq: committed.commit_seq,
            durable_head_seq: committed.durable_head_seq,
            value: *value,
        }),
        Err(_) => Err(AedbError::Validation(
            "commit body returned an unexpected type".into(),
        )),
    }
}

/// Pages the retained versions may keep from reuse: an eighth of the buffer pool, so that the
/// garbage they hold stays cached and comes back a little at a time.
fn retained_page_budget(config: &AedbConfig) -> u64 {
    (config.buffer_pool_bytes / u64::from(config.page_size) / 8).max(64)
}
