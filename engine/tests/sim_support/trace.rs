//! A trace of a run's write points: a [`Vfs`] over a [`SimVfs`] that records, for every write
//! point the simulator counts, which op it was, on which file, and under which label the test
//! had set (e.g. "checkpoint" around `checkpoint_now`). A sweep runs its reference workload
//! on it, so it can choose crash points by kind and assert that the kinds it means to crash at
//! happen at all. The crash runs themselves use the plain [`SimVfs`]: its write points are
//! numbered the same way, so a traced point's number is the point to crash at.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use aedb::config::AedbConfig;
use aedb::storage::io::sim::SimVfs;
use aedb::storage::io::AlignedBuf;
use aedb::storage::io::{
    BackendKind, Completion, IoError, IoFile, IoOp, IoResult, LockFile, OpenOptions, Vfs,
};
use aedb::{AedbError, Engine};

/// What a write point did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointOp {
    Write {
        offset: u64,
        len: u64,
    },
    Sync,
    /// The file grew to `len` bytes (set_len / fallocate).
    Grow {
        len: u64,
    },
    Create,
    Remove,
    Rename,
    SyncDir,
}

/// One write point of a traced run.
#[derive(Debug, Clone)]
pub struct TracedPoint {
    /// Its number: `SimVfs::crash_at(point)` crashes there.
    pub point: u64,
    pub path: PathBuf,
    pub op: PointOp,
    /// The label set when it happened.
    pub label: &'static str,
}

#[derive(Default)]
struct Log {
    points: Vec<TracedPoint>,
    /// The op the machine crashed at (`SimVfs::crash_at`), which passed no write point.
    crashed_at: Option<TracedPoint>,
    label: &'static str,
}

/// A [`SimVfs`] whose write points are recorded. Clones share the disk and the trace.
#[derive(Clone)]
pub struct TracingVfs {
    sim: SimVfs,
    log: Arc<Mutex<Log>>,
}

impl TracingVfs {
    pub fn new(sim: SimVfs) -> Self {
        TracingVfs {
            sim,
            log: Arc::default(),
        }
    }

    pub fn sim(&self) -> &SimVfs {
        &self.sim
    }

    /// Open the engine in `DIR` on this file system.
    pub fn open(&self, config: AedbConfig) -> Result<Engine, AedbError> {
        Engine::open_with_vfs(
            config,
            Path::new(super::DIR),
            Arc::new(self.clone()) as Arc<dyn Vfs>,
        )
    }

    /// Label the write points from now on.
    pub fn set_label(&self, label: &'static str) {
        self.lock().label = label;
    }

    pub fn points(&self) -> Vec<TracedPoint> {
        self.lock().points.clone()
    }

    /// The op at which the crash point set with `SimVfs::crash_at` fired, if it did.
    pub fn crashed_at(&self) -> Option<TracedPoint> {
        self.lock().crashed_at.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` (one simulator call) with the trace held, so no other op interleaves, and
    /// record the write points it passed as `ops` (in order), on `path`.
    fn traced<T>(&self, path: &Path, ops: &[PointOp], f: impl FnOnce() -> T) -> T {
        let mut log = self.lock();
        let before = self.sim.write_points();
        let was_up = !self.sim.has_crashed();
        let out = f();
        let passed = self.sim.write_points() - before;
        assert!(
            passed as usize <= ops.len(),
            "{passed} write points for {} traced ops on {}",
            ops.len(),
            path.display()
        );
        let label = log.label;
        let point = |i: usize| TracedPoint {
            point: before + i as u64,
            path: path.to_path_buf(),
            op: ops[i],
            label,
        };
        let traced: Vec<TracedPoint> = (0..passed as usize).map(point).collect();
        log.points.extend(traced);
        // The first op that passed no point is the one the crash fired at.
        if was_up && self.sim.has_crashed() && (passed as usize) < ops.len() {
            log.crashed_at = Some(point(passed as usize));
        }
        out
    }
}

impl Vfs for TracingVfs {
    fn kind(&self) -> BackendKind {
        self.sim.kind()
    }

    fn open(&self, path: &Path, opts: OpenOptions) -> Result<Arc<dyn IoFile>, IoError> {
        let inner = self.traced(path, &[PointOp::Create], || self.sim.open(path, opts))?;
        Ok(Arc::new(TracingFile {
            inner,
            vfs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn exists(&self, path: &Path) -> bool {
        self.sim.exists(path)
    }

    fn remove(&self, path: &Path) -> Result<(), IoError> {
        self.traced(path, &[PointOp::Remove], || self.sim.remove(path))
    }

    fn create_dir_all(&self, dir: &Path) -> Result<(), IoError> {
        self.sim.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), IoError> {
        self.traced(dir, &[PointOp::SyncDir], || self.sim.sync_dir(dir))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, IoError> {
        self.sim.list_dir(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), IoError> {
        self.traced(to, &[PointOp::Rename], || self.sim.rename(from, to))
    }

    fn open_lock(&self, path: &Path, opts: OpenOptions) -> Result<Box<dyn LockFile>, IoError> {
        self.traced(path, &[PointOp::Create], || self.sim.open_lock(path, opts))
    }
}

struct TracingFile {
    inner: Arc<dyn IoFile>,
    vfs: TracingVfs,
    path: PathBuf,
}

impl TracingFile {
    /// The write points `ops` pass, in order (reads and write-backs pass none).
    fn point_ops(ops: &[IoOp]) -> Vec<PointOp> {
        ops.iter()
            .filter_map(|op| match op {
                IoOp::Write { offset, buf } => Some(PointOp::Write {
                    offset: *offset,
                    len: buf.len() as u64,
                }),
                IoOp::Sync => Some(PointOp::Sync),
                IoOp::Grow { len } => Some(PointOp::Grow { len: *len }),
                IoOp::Read { .. } | IoOp::WriteBack { .. } => None,
            })
            .collect()
    }
}

impl IoFile for TracingFile {
    fn submit(&self, ops: Vec<IoOp>, done: Completion) {
        // The simulator completes on the calling thread: completing after the trace is
        // released keeps the contract.
        let results = self.submit_now(ops);
        done(results)
    }

    fn len(&self) -> Result<u64, IoError> {
        self.inner.len()
    }

    fn read_now(&self, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf, IoError> {
        self.inner.read_now(offset, buf)
    }

    fn submit_now(&self, ops: Vec<IoOp>) -> Vec<IoResult> {
        let traced = Self::point_ops(&ops);
        self.vfs
            .traced(&self.path, &traced, || self.inner.submit_now(ops))
    }
}
