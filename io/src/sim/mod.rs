//! A deterministic simulated file system for crash and fault testing.
//!
//! It keeps, per file, the bytes and length made durable by the last `Sync` apart from the
//! writes (and growth) since, and, per directory, the entries made durable by `sync_dir` apart
//! from those created or removed since. From that it builds the disk a machine would see after a
//! crash ([`CrashMode`]): what a killed process leaves, what a power loss leaves, and the
//! torn and garbage variants a real device may produce.
//!
//! Names and contents are apart, as in a real file system: a directory entry names an inode,
//! so a rename moves a name (durable once its directory is synced) and an unlinked file stays
//! readable and writable through the handles still open on it.
//!
//! Locks ([`LockFile`]) live in memory, per inode and per open lock file, and a crash image
//! starts with none: the processes that held them died with the machine.
//!
//! Every op that changes the disk (write, sync, grow, create, remove, rename, directory sync)
//! is a numbered *write point*. [`SimVfs::crash_at`] makes the machine crash at a given point: that op
//! and every later one fail with [`IoErrorKind::Crashed`]. A crash-point sweep runs a workload
//! once to count its points, then once per point.
//!
//! Faults ([`Fault`]) make a read, write, sync, grow or remove fail once or forever with an
//! errno; a failed sync can also lose the writes it was to make durable, as Linux does: their
//! pages stay readable in the cache, marked clean, and no later sync writes them (until a write
//! dirties the page again). And
//! [`SimVfs::flip_bit_on_read`] makes reads return a flipped bit, as rot at rest would.
//! All randomness comes from explicit seeds, so a failing case replays exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

mod faults;
mod file;

pub use faults::{CrashMode, Fault, SplitMix64, SECTOR_BYTES};
use file::{apply_write, cache_pages, image_after_power_loss, Pending, SimFile};

use super::{
    run_in_order, BackendKind, Completion, IoDone, IoError, IoErrorKind, IoFile, IoOp, IoResult,
    LockFile, OpKind, OpenOptions, Vfs,
};

/// An inode's number.
type Ino = u64;

/// The locks on one inode, by the open lock file (its owner number) that holds them.
#[derive(Debug, Default)]
struct LockTable {
    exclusive: Option<u64>,
    shared: BTreeMap<u64 /* byte */, BTreeSet<u64 /* owner */>>,
}

#[derive(Default)]
struct SimState {
    /// File contents by inode.
    files: BTreeMap<Ino, SimFile>,
    next_ino: Ino,
    /// Handles open per inode: an inode no name reaches lives while one is open.
    open: BTreeMap<Ino, usize>,
    dirs: BTreeSet<PathBuf>,
    /// Names, as processes see them and as made durable by `sync_dir`.
    entries_current: BTreeMap<PathBuf, Ino>,
    entries_durable: BTreeMap<PathBuf, Ino>,
    locks: BTreeMap<Ino, LockTable>,
    next_owner: u64,
    write_points: u64,
    crash_at: Option<u64>,
    crashed: bool,
    faults: Vec<(Fault, u64 /* matches seen */, bool /* fired */)>,
    flips: Vec<(PathBuf, u64, u8)>,
}

/// The simulated file system. Clones share one disk.
#[derive(Clone, Default)]
pub struct SimVfs {
    state: Arc<Mutex<SimState>>,
}

struct SimFileHandle {
    state: Arc<Mutex<SimState>>,
    /// The name it was opened by (what faults and flips match).
    path: PathBuf,
    ino: Ino,
    read_only: bool,
    /// Opened with O_DIRECT: reads come from the device where the cache and the device
    /// differ without the cache knowing (pages a failed sync lost).
    direct: bool,
}

/// An open lock file of the simulator.
struct SimLockHandle {
    state: Arc<Mutex<SimState>>,
    path: PathBuf,
    ino: Ino,
    owner: u64,
}

impl SimVfs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Crash when the `point`-th write point (counting from 0) is reached.
    pub fn crash_at(&self, point: u64) {
        self.state.lock().crash_at = Some(point);
    }

    /// Crash now: every later op fails.
    pub fn crash_now(&self) {
        self.state.lock().crashed = true;
    }

    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Write points passed so far.
    pub fn write_points(&self) -> u64 {
        self.state.lock().write_points
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().faults.push((fault, 0, false));
    }

    /// How many injected faults have fired (a test that injects one asserts it did).
    pub fn faults_fired(&self) -> usize {
        self.state
            .lock()
            .faults
            .iter()
            .filter(|(_, _, fired)| *fired)
            .count()
    }

    pub fn clear_faults(&self) {
        let mut state = self.state.lock();
        state.faults.clear();
        state.flips.clear();
    }

    /// Reads covering `offset` of the file at `path` see the byte XORed with `mask`.
    pub fn flip_bit_on_read(&self, path: &Path, offset: u64, mask: u8) {
        self.state
            .lock()
            .flips
            .push((path.to_path_buf(), offset, mask));
    }

    /// Change stored bytes in place, durable and current alike (rot at rest, or a test's edit).
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) {
        let mut state = self.state.lock();
        let Some(&ino) = state.entries_current.get(path) else {
            return;
        };
        if let Some(file) = state.files.get_mut(&ino) {
            for data in [&mut file.durable, &mut file.current] {
                let start = (offset as usize).min(data.len());
                let end = (start + bytes.len()).min(data.len());
                data[start..end].copy_from_slice(&bytes[..end - start]);
            }
        }
    }

    /// The current bytes of a file, as a process would read them.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let ino = state.entries_current.get(path)?;
        state.files.get(ino).map(|f| f.current.clone())
    }

    /// The names a power loss now would keep: those made durable by a directory sync.
    pub fn durable_entries(&self) -> Vec<PathBuf> {
        self.state.lock().entries_durable.keys().cloned().collect()
    }

    /// The machine after a crash now, as the next process sees it.
    ///
    /// After a [`CrashMode::ProcessCrash`] the operating system survives: the next process reads
    /// every completed write and sees every directory entry, but what was never synced is still
    /// only in the page cache, so a later power loss (a `crash_image` of this image) can still
    /// drop it. Every other mode is a power loss: the image holds only what reached the device,
    /// and all of it is durable. Faults and the crash point are not carried over.
    pub fn crash_image(&self, mode: CrashMode, seed: u64) -> SimVfs {
        let state = self.state.lock();
        if mode == CrashMode::ProcessCrash {
            // Inodes only open handles kept alive die with the process.
            let named: BTreeSet<Ino> = state
                .entries_current
                .values()
                .chain(state.entries_durable.values())
                .copied()
                .collect();
            let image = SimState {
                files: named
                    .iter()
                    .filter_map(|ino| Some((*ino, state.files.get(ino)?.clone())))
                    .collect(),
                next_ino: state.next_ino,
                dirs: state.dirs.clone(),
                entries_current: state.entries_current.clone(),
                entries_durable: state.entries_durable.clone(),
                ..SimState::default()
            };
            return SimVfs {
                state: Arc::new(Mutex::new(image)),
            };
        }
        let mut rng = SplitMix64(seed);
        let entries = state.entries_durable.clone();
        let mut image = SimState {
            next_ino: state.next_ino,
            dirs: state.dirs.clone(),
            entries_current: entries.clone(),
            entries_durable: entries.clone(),
            ..SimState::default()
        };
        for ino in entries.values() {
            let Some(file) = state.files.get(ino) else {
                continue;
            };
            if image.files.contains_key(ino) {
                continue;
            }
            let bytes = match mode {
                CrashMode::PowerLoss => file.durable.clone(),
                _ => image_after_power_loss(file, mode, &mut rng),
            };
            image.files.insert(
                *ino,
                SimFile {
                    durable: bytes.clone(),
                    current: bytes,
                    ..SimFile::default()
                },
            );
        }
        SimVfs {
            state: Arc::new(Mutex::new(image)),
        }
    }

    /// How many writes (and growths) are not yet durable, plus cache pages a failed sync lost,
    /// over every file: what a power loss now could drop (a count of items, not bytes). Zero
    /// after everything was synced and no lost page is left unwritten.
    pub fn unsynced_writes(&self) -> usize {
        self.unsynced_writes_under(Path::new("/"))
    }

    /// [`SimVfs::unsynced_writes`] of the files under `dir`.
    pub fn unsynced_writes_under(&self, dir: &Path) -> usize {
        let state = self.state.lock();
        state
            .entries_current
            .iter()
            .filter(|(path, _)| path.starts_with(dir))
            .filter_map(|(_, ino)| state.files.get(ino))
            .map(|f| f.pending.len() + f.lost_pages.len())
            .sum()
    }
}

impl SimState {
    /// Count a write point; fail if the machine is (now) crashed.
    fn write_point(&mut self, op: OpKind, offset: u64) -> Result<(), IoError> {
        if self.crashed {
            return Err(crashed(op, offset));
        }
        if self.crash_at == Some(self.write_points) {
            self.crashed = true;
            return Err(crashed(op, offset));
        }
        self.write_points += 1;
        Ok(())
    }

    fn check_fault(&mut self, op: OpKind, path: &Path, offset: u64) -> Result<(), IoError> {
        self.fault_for(op, path, offset)
            .map_or(Ok(()), |(err, _)| Err(err))
    }

    /// The error an injected fault (or the crash) gives this op, and whether it loses writes.
    fn fault_for(&mut self, op: OpKind, path: &Path, offset: u64) -> Option<(IoError, bool)> {
        if self.crashed {
            return Some((crashed(op, offset), false));
        }
        let text = path.to_string_lossy();
        for (fault, seen, fired) in &mut self.faults {
            if fault.op != op || !text.contains(fault.path_contains.as_str()) {
                continue;
            }
            if *fired && !fault.forever {
                continue;
            }
            *seen += 1;
            if *seen > fault.skip {
                *fired = true;
                return Some((IoError::os(op, offset, fault.errno), fault.loses_writes));
            }
        }
        None
    }

    /// Run `op` on inode `ino`; `direct` reads as O_DIRECT does (`SimFile::read_into`).
    fn exec(&mut self, ino: Ino, path: &Path, op: IoOp, direct: bool) -> IoResult {
        let kind = op.kind();
        let offset = op.offset();
        // A write-back only paces (nothing becomes durable): not a crash point of its own.
        if kind != OpKind::Read && kind != OpKind::WriteBack {
            self.write_point(kind, offset)?;
        }
        if let Some((err, loses_writes)) = self.fault_for(kind, path, offset) {
            if loses_writes && kind == OpKind::Sync {
                if let Some(file) = self.files.get_mut(&ino) {
                    file.lose_pending_writes();
                }
            }
            return Err(err);
        }
        let Some(file) = self.files.get_mut(&ino) else {
            return Err(IoError::os(kind, offset, libc::EBADF));
        };
        match op {
            IoOp::Read { offset, mut buf } => {
                let start = offset as usize;
                let end = start + buf.len();
                if end > file.current.len() {
                    return Err(IoError::new(
                        kind,
                        offset,
                        IoErrorKind::Short,
                        "read past end of file",
                    ));
                }
                file.read_into(offset, &mut buf, direct);
                for (flip_path, at, mask) in &self.flips {
                    if flip_path == path && *at >= offset && *at < end as u64 {
                        buf[(*at - offset) as usize] ^= mask;
                    }
                }
                Ok(IoDone::Read(buf))
            }
            IoOp::Write { offset, buf } => {
                apply_write(&mut file.current, offset, &buf, None);
                // The pages this write dirties go to disk whole at the next sync again.
                for page in cache_pages(offset, buf.len()) {
                    file.lost_pages.remove(&page);
                }
                file.pending.push(Pending::Write {
                    offset,
                    data: buf.to_vec(),
                });
                Ok(IoDone::Write(buf))
            }
            IoOp::Sync => {
                file.sync();
                Ok(IoDone::Sync)
            }
            IoOp::WriteBack { .. } => Ok(IoDone::WriteBack),
            IoOp::Grow { len } => {
                if (file.current.len() as u64) < len {
                    file.current.resize(len as usize, 0);
                    file.pending.push(Pending::Grow);
                }
                Ok(IoDone::Grow)
            }
        }
    }

    /// A new, empty inode named `path` (replacing what the name reached).
    fn create(&mut self, path: &Path) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.files.insert(ino, SimFile::default());
        if let Some(old) = self.entries_current.insert(path.to_path_buf(), ino) {
            self.forget_if_unreachable(old);
        }
        ino
    }

    /// Drop an inode that no name, durable or not, and no open handle reaches any more.
    fn forget_if_unreachable(&mut self, ino: Ino) {
        let named = self
            .entries_current
            .values()
            .chain(self.entries_durable.values())
            .any(|&i| i == ino);
        if !named && !self.open.contains_key(&ino) {
            self.files.remove(&ino);
            self.locks.remove(&ino);
        }
    }

    fn opened(&mut self, ino: Ino) {
        *self.open.entry(ino).or_insert(0) += 1;
    }

    fn closed(&mut self, ino: Ino) {
        if let Some(count) = self.open.get_mut(&ino) {
            *count -= 1;
            if *count == 0 {
                self.open.remove(&ino);
                self.forget_if_unreachable(ino);
            }
        }
    }

    /// The inode `path` names, created when allowed (a write point) and missing.
    fn lookup_or_create(&mut self, path: &Path, opts: OpenOptions) -> Result<Ino, IoError> {
        if let Some(&ino) = self.entries_current.get(path) {
            return Ok(ino);
        }
        if !opts.create || opts.read_only {
            return Err(IoError::os(OpKind::Read, 0, libc::ENOENT).with_path(path));
        }
        self.write_point(OpKind::Write, 0)?;
        Ok(self.create(path))
    }

    /// A lock op's checks: the machine is up and no fault is injected for it.
    fn lock_op(&mut self, ino: Ino, path: &Path, offset: u64) -> Result<&mut LockTable, IoError> {
        self.check_fault(OpKind::Lock, path, offset)?;
        Ok(self.locks.entry(ino).or_default())
    }
}

fn crashed(op: OpKind, offset: u64) -> IoError {
    IoError::new(
        op,
        offset,
        IoErrorKind::Crashed,
        "simulated machine has crashed",
    )
}

impl Vfs for SimVfs {
    fn kind(&self) -> BackendKind {
        BackendKind::Simulated
    }

    fn open(&self, path: &Path, opts: OpenOptions) -> Result<Arc<dyn IoFile>, IoError> {
        let mut state = self.state.lock();
        let ino = state.lookup_or_create(path, opts)?;
        state.opened(ino);
        Ok(Arc::new(SimFileHandle {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            ino,
            read_only: opts.read_only,
            direct: opts.direct,
        }))
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.state.lock();
        state.entries_current.contains_key(path) || state.dirs.contains(path)
    }

    fn remove(&self, path: &Path) -> Result<(), IoError> {
        let mut state = self.state.lock();
        state.write_point(OpKind::Remove, 0)?;
        state.check_fault(OpKind::Remove, path, 0)?;
        match state.entries_current.remove(path) {
            Some(ino) => {
                state.forget_if_unreachable(ino);
                Ok(())
            }
            None => Err(IoError::os(OpKind::Remove, 0, libc::ENOENT).with_path(path)),
        }
    }

    fn create_dir_all(&self, dir: &Path) -> Result<(), IoError> {
        // Directories themselves are modelled as always durable; their entries are not.
        let mut state = self.state.lock();
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), IoError> {
        let mut state = self.state.lock();
        state.write_point(OpKind::Sync, 0)?;
        state.check_fault(OpKind::Sync, dir, 0)?;
        let in_dir = |p: &Path| p.parent() == Some(dir);
        let current: Vec<(PathBuf, Ino)> = state
            .entries_current
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, ino)| (p.clone(), *ino))
            .collect();
        let dropped: Vec<Ino> = state
            .entries_durable
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(_, ino)| *ino)
            .collect();
        state.entries_durable.retain(|p, _| !in_dir(p));
        state.entries_durable.extend(current);
        for ino in dropped {
            state.forget_if_unreachable(ino);
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, IoError> {
        let state = self.state.lock();
        Ok(state
            .entries_current
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), IoError> {
        let mut state = self.state.lock();
        state.write_point(OpKind::Write, 0)?;
        let Some(ino) = state.entries_current.remove(from) else {
            return Err(IoError::os(OpKind::Write, 0, libc::ENOENT).with_path(from));
        };
        if let Some(replaced) = state.entries_current.insert(to.to_path_buf(), ino) {
            if replaced != ino {
                state.forget_if_unreachable(replaced);
            }
        }
        Ok(())
    }

    fn open_lock(&self, path: &Path, opts: OpenOptions) -> Result<Box<dyn LockFile>, IoError> {
        let mut state = self.state.lock();
        if state.crashed {
            return Err(crashed(OpKind::Lock, 0));
        }
        let ino = state.lookup_or_create(path, opts)?;
        state.opened(ino);
        let owner = state.next_owner;
        state.next_owner += 1;
        Ok(Box::new(SimLockHandle {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            ino,
            owner,
        }))
    }
}

impl SimFileHandle {
    fn run(&self, state: &mut SimState, ops: Vec<IoOp>) -> Vec<IoResult> {
        run_in_order(ops, |op| {
            if self.read_only && op.kind() != OpKind::Read {
                return Err(IoError::os(op.kind(), op.offset(), libc::EBADF));
            }
            state.exec(self.ino, &self.path, op, self.direct)
        })
    }
}

impl IoFile for SimFileHandle {
    fn submit(&self, ops: Vec<IoOp>, done: Completion) {
        let results = self.run(&mut self.state.lock(), ops);
        done(results)
    }

    fn submit_now(&self, ops: Vec<IoOp>) -> Vec<IoResult> {
        self.run(&mut self.state.lock(), ops)
    }

    fn read_now(&self, offset: u64, buf: super::AlignedBuf) -> Result<super::AlignedBuf, IoError> {
        let result = self.state.lock().exec(
            self.ino,
            &self.path,
            IoOp::Read { offset, buf },
            self.direct,
        );
        match result? {
            IoDone::Read(buf) => Ok(buf),
            _ => Err(IoError::os(OpKind::Read, offset, libc::EIO)),
        }
    }

    fn len(&self) -> Result<u64, IoError> {
        let state = self.state.lock();
        state
            .files
            .get(&self.ino)
            .map(|f| f.current.len() as u64)
            .ok_or_else(|| IoError::os(OpKind::Read, 0, libc::EBADF))
    }
}

impl Drop for SimFileHandle {
    fn drop(&mut self) {
        self.state.lock().closed(self.ino);
    }
}

impl LockFile for SimLockHandle {
    fn try_lock_exclusive(&self) -> Result<bool, IoError> {
        let mut state = self.state.lock();
        let table = state.lock_op(self.ino, &self.path, 0)?;
        match table.exclusive {
            Some(holder) if holder != self.owner => Ok(false),
            _ => {
                table.exclusive = Some(self.owner);
                Ok(true)
            }
        }
    }

    fn lock_shared_byte(&self, offset: u64) -> Result<(), IoError> {
        let mut state = self.state.lock();
        let table = state.lock_op(self.ino, &self.path, offset)?;
        table.shared.entry(offset).or_default().insert(self.owner);
        Ok(())
    }

    fn unlock_byte(&self, offset: u64) -> Result<(), IoError> {
        let mut state = self.state.lock();
        let table = state.lock_op(self.ino, &self.path, offset)?;
        if let Some(owners) = table.shared.get_mut(&offset) {
            owners.remove(&self.owner);
            if owners.is_empty() {
                table.shared.remove(&offset);
            }
        }
        Ok(())
    }

    fn lowest_locked_byte(&self) -> Result<Option<u64>, IoError> {
        let mut state = self.state.lock();
        let table = state.lock_op(self.ino, &self.path, 0)?;
        Ok(table
            .shared
            .iter()
            .find(|(_, owners)| owners.iter().any(|&o| o != self.owner))
            .map(|(byte, _)| *byte))
    }
}

impl Drop for SimLockHandle {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(table) = state.locks.get_mut(&self.ino) {
            if table.exclusive == Some(self.owner) {
                table.exclusive = None;
            }
            for owners in table.shared.values_mut() {
                owners.remove(&self.owner);
            }
            table.shared.retain(|_, owners| !owners.is_empty());
        }
        state.closed(self.ino);
    }
}
