//! Renames, whole-file helpers and locks: one suite for io_uring, pread/pwrite and the
//! simulator, then what only the simulator can show (what a crash keeps of a rename).

use std::path::{Path, PathBuf};

use aedb_io::sim::{CrashMode, Fault, SimVfs};
use aedb_io::{
    all_ok, os_vfs, read_whole_file, submit_wait, write_file_durably, AlignedBuf, IoBackendChoice,
    IoErrorKind, IoFile, IoOp, OpKind, OpenOptions, Vfs,
};

const CREATE: OpenOptions = OpenOptions {
    create: true,
    read_only: false,
    direct: false,
};

const READ_ONLY: OpenOptions = OpenOptions {
    create: false,
    read_only: true,
    direct: false,
};

fn write(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) {
    let file = vfs.open(path, CREATE).expect("open");
    all_ok(submit_wait(
        &*file,
        vec![
            IoOp::Write {
                offset: 0,
                buf: AlignedBuf::from_slice(bytes),
            },
            IoOp::Sync,
        ],
    ))
    .expect("write");
}

fn suite(vfs: &dyn Vfs, dir: &Path) {
    vfs.create_dir_all(dir).expect("dir");

    // rename moves the content to the new name and replaces what was there.
    let (a, b) = (dir.join("a"), dir.join("b"));
    write(vfs, &a, b"first");
    write(vfs, &b, b"older, longer content");
    vfs.rename(&a, &b).expect("rename");
    assert!(!vfs.exists(&a));
    assert_eq!(read_whole_file(vfs, &b, 64).expect("read"), b"first");
    let missing = vfs.rename(&a, &b).expect_err("renaming a missing file");
    assert_eq!(missing.kind, IoErrorKind::Os(libc::ENOENT));

    // write_file_durably: creates, replaces, and is not fooled by a stale longer temp file.
    write_file_durably(vfs, dir, "KEY", b"0123456789").expect("create");
    assert_eq!(
        read_whole_file(vfs, &dir.join("KEY"), 64).expect("read"),
        b"0123456789"
    );
    write(
        vfs,
        &dir.join("KEY.tmp"),
        b"a stale temporary file, longer than the key",
    );
    write_file_durably(vfs, dir, "KEY", b"abc").expect("replace");
    assert_eq!(
        read_whole_file(vfs, &dir.join("KEY"), 64).expect("read"),
        b"abc"
    );
    assert!(!vfs.exists(&dir.join("KEY.tmp")));
    write_file_durably(vfs, dir, "EMPTY", b"").expect("empty");
    assert_eq!(
        read_whole_file(vfs, &dir.join("EMPTY"), 0).expect("read"),
        b""
    );

    // read_whole_file: a bound on the size, ENOENT for a missing file.
    let big = read_whole_file(vfs, &dir.join("KEY"), 2).expect_err("over the bound");
    assert_eq!(big.kind, IoErrorKind::Os(libc::EFBIG));
    let none = read_whole_file(vfs, &dir.join("none"), 8).expect_err("missing");
    assert_eq!(none.kind, IoErrorKind::Os(libc::ENOENT));

    // The exclusive lock: one open file at a time, released when it is dropped.
    let lock_path = dir.join("LOCK");
    assert!(
        vfs.open_lock(&lock_path, READ_ONLY).is_err(),
        "read-only never creates"
    );
    let first = vfs.open_lock(&lock_path, CREATE).expect("open lock");
    assert!(first.try_lock_exclusive().expect("lock"));
    assert!(
        first.try_lock_exclusive().expect("again"),
        "a holder may ask again"
    );
    let second = vfs.open_lock(&lock_path, CREATE).expect("open lock");
    assert!(!second.try_lock_exclusive().expect("refused"));
    drop(first);
    assert!(second.try_lock_exclusive().expect("free again"));
    drop(second);

    // Shared byte locks (Linux and the simulator): the lowest byte another open file holds.
    if cfg!(target_os = "linux") {
        let table = vfs.open_lock(&dir.join("READERS"), CREATE).expect("table");
        assert_eq!(table.lowest_locked_byte().expect("ask"), None);
        let r1 = vfs.open_lock(&dir.join("READERS"), READ_ONLY).expect("r1");
        let r2 = vfs.open_lock(&dir.join("READERS"), READ_ONLY).expect("r2");
        r1.lock_shared_byte(9).expect("r1 at 9");
        r2.lock_shared_byte(4).expect("r2 at 4");
        r2.lock_shared_byte(4).expect("twice is once");
        assert_eq!(table.lowest_locked_byte().expect("ask"), Some(4));
        assert_eq!(
            r2.lowest_locked_byte().expect("ask"),
            Some(9),
            "own locks do not count"
        );
        r2.unlock_byte(4).expect("unlock");
        assert_eq!(table.lowest_locked_byte().expect("ask"), Some(9));
        r2.lock_shared_byte(0).expect("r2 at 0");
        assert_eq!(table.lowest_locked_byte().expect("ask"), Some(0));
        drop(r2);
        assert_eq!(table.lowest_locked_byte().expect("ask"), Some(9));
        drop(r1);
        assert_eq!(table.lowest_locked_byte().expect("ask"), None);
    }
}

fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    (tmp, dir)
}

#[test]
#[cfg(target_os = "linux")]
fn io_uring_backend_renames_and_locks() {
    let Ok(vfs) = os_vfs(IoBackendChoice::IoUring) else {
        eprintln!("io_uring unavailable here: skipped");
        return;
    };
    let (_tmp, dir) = temp_dir();
    suite(&*vfs, &dir);
}

#[test]
fn pread_pwrite_backend_renames_and_locks() {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("sync backend");
    let (_tmp, dir) = temp_dir();
    suite(&*vfs, &dir);
}

#[test]
fn simulated_backend_renames_and_locks() {
    suite(&SimVfs::new(), Path::new("/sim/d"));
}

#[test]
fn the_os_backends_share_locks() {
    // Two backends of one process are two open files of one file: they exclude each other.
    let (_tmp, dir) = temp_dir();
    let sync = os_vfs(IoBackendChoice::Sync).expect("sync backend");
    let auto = os_vfs(IoBackendChoice::Auto).expect("auto backend");
    sync.create_dir_all(&dir).expect("dir");
    let held = sync.open_lock(&dir.join("LOCK"), CREATE).expect("open");
    assert!(held.try_lock_exclusive().expect("lock"));
    let other = auto.open_lock(&dir.join("LOCK"), CREATE).expect("open");
    assert!(!other.try_lock_exclusive().expect("refused"));
}

#[test]
fn a_rename_survives_power_loss_only_once_its_directory_is_synced() {
    let sim = SimVfs::new();
    let dir = Path::new("/db");
    sim.create_dir_all(dir).expect("dir");
    write(&sim, &dir.join("tmp"), b"new");
    sim.sync_dir(dir).expect("sync dir");
    sim.rename(&dir.join("tmp"), &dir.join("name"))
        .expect("rename");

    let lost = sim.crash_image(CrashMode::PowerLoss, 1);
    assert!(
        !lost.exists(&dir.join("name")),
        "the rename was not durable"
    );
    assert_eq!(
        lost.file_bytes(&dir.join("tmp")).as_deref(),
        Some(&b"new"[..])
    );
    let process = sim.crash_image(CrashMode::ProcessCrash, 1);
    assert_eq!(
        process.file_bytes(&dir.join("name")).as_deref(),
        Some(&b"new"[..])
    );

    sim.sync_dir(dir).expect("sync dir");
    let kept = sim.crash_image(CrashMode::PowerLoss, 1);
    assert_eq!(
        kept.file_bytes(&dir.join("name")).as_deref(),
        Some(&b"new"[..])
    );
    assert!(!kept.exists(&dir.join("tmp")));
    assert_eq!(kept.durable_entries(), vec![dir.join("name")]);
}

#[test]
fn write_file_durably_leaves_old_or_new_at_every_crash_point() {
    // Count the write points of a replacement, then crash at each of them.
    let prepare = || {
        let sim = SimVfs::new();
        let dir = Path::new("/db");
        sim.create_dir_all(dir).expect("dir");
        write_file_durably(&sim, dir, "KEY", b"old").expect("first");
        sim
    };
    let counted = prepare();
    let before = counted.write_points();
    write_file_durably(&counted, Path::new("/db"), "KEY", b"new!").expect("second");
    let points = counted.write_points() - before;
    assert!(
        points >= 4,
        "create, write, sync, rename, directory sync: {points}"
    );
    for point in 0..points {
        let sim = prepare();
        sim.crash_at(sim.write_points() + point);
        assert!(write_file_durably(&sim, Path::new("/db"), "KEY", b"new!").is_err());
        for mode in CrashMode::ALL {
            for seed in 0..4 {
                let image = sim.crash_image(mode, seed);
                let key = read_whole_file(&image, &Path::new("/db").join("KEY"), 64);
                let key = key.expect("a key is always there");
                assert!(
                    key == b"old" || key == b"new!",
                    "point {point}, {mode:?}, seed {seed}: {key:?}"
                );
            }
        }
    }
}

#[test]
fn an_unlinked_file_stays_usable_through_its_open_handle() {
    let sim = SimVfs::new();
    let path = Path::new("/d/f");
    let file = sim.open(path, CREATE).expect("open");
    sim.remove(path).expect("remove");
    assert!(!sim.exists(path));
    all_ok(submit_wait(
        &*file,
        vec![IoOp::Write {
            offset: 0,
            buf: AlignedBuf::from_slice(b"still here"),
        }],
    ))
    .expect("write to an unlinked file");
    assert_eq!(file.len().expect("len"), 10);
    // A new file of the same name is another file.
    let again = sim.open(path, CREATE).expect("recreate");
    assert_eq!(again.len().expect("len"), 0);
}

#[test]
fn a_crash_releases_the_simulators_locks() {
    let sim = SimVfs::new();
    let path = Path::new("/d/LOCK");
    let held = sim.open_lock(path, CREATE).expect("open");
    assert!(held.try_lock_exclusive().expect("lock"));
    sim.crash_now();
    assert_eq!(
        held.try_lock_exclusive().expect_err("crashed").kind,
        IoErrorKind::Crashed
    );
    let image = sim.crash_image(CrashMode::ProcessCrash, 0);
    let next = image.open_lock(path, CREATE).expect("open after the crash");
    assert!(next.try_lock_exclusive().expect("free after the crash"));
}

/// A sync that fails losing its writes (Linux marks the pages clean): the cache still shows
/// them, to this process and after a process crash to the next; no later sync writes them and
/// a power loss drops them; a page written again goes to disk whole, lost bytes included.
#[test]
fn a_sync_that_loses_writes_leaves_them_in_the_cache_only() {
    let sim = SimVfs::new();
    let dir = Path::new("/db");
    sim.create_dir_all(dir).expect("dir");
    let path = dir.join("log");
    write(&sim, &path, &[b'a'; 3 * 4096]);
    sim.sync_dir(dir).expect("sync dir");
    let file = sim.open(&path, CREATE).expect("open");
    let write_at = |offset: u64, bytes: &[u8]| {
        let buf = AlignedBuf::from_slice(bytes);
        all_ok(submit_wait(&*file, vec![IoOp::Write { offset, buf }])).expect("write");
    };
    let sync = || all_ok(submit_wait(&*file, vec![IoOp::Sync]));
    write_at(100, &[b'b'; 100]);
    write_at(8192 + 10, &[b'c'; 10]);
    sim.inject(Fault::once(OpKind::Sync, 0, libc::EIO).losing_writes());
    assert!(sync().is_err(), "the injected sync failure");
    sync().expect("a later sync succeeds");
    let bytes = |vfs: &SimVfs, range: std::ops::Range<usize>| {
        vfs.file_bytes(&path).expect("the file")[range].to_vec()
    };
    assert_eq!(
        bytes(&sim, 100..200),
        vec![b'b'; 100],
        "the cache shows them"
    );
    let process = sim.crash_image(CrashMode::ProcessCrash, 0);
    assert_eq!(bytes(&process, 100..200), vec![b'b'; 100]);
    let lost = sim.crash_image(CrashMode::PowerLoss, 0);
    assert_eq!(bytes(&lost, 100..200), vec![b'a'; 100], "never written");
    assert_eq!(bytes(&lost, 8202..8212), vec![b'a'; 10]);
    // Page 2 dirtied again: the next sync writes all of it.
    write_at(9000, b"d");
    sync().expect("sync");
    let kept = sim.crash_image(CrashMode::PowerLoss, 0);
    assert_eq!(bytes(&kept, 8202..8212), vec![b'c'; 10]);
    assert_eq!(bytes(&kept, 9000..9001), b"d".to_vec());
    assert_eq!(
        bytes(&kept, 100..200),
        vec![b'a'; 100],
        "page 0 is still lost"
    );
    // O_DIRECT reads the device: page 0's older bytes, but page 2 as the cache has it (written
    // since), and dirty pages as the cache has them (Linux writes them back first).
    write_at(4096, &[b'e'; 8]);
    let direct = sim
        .open(
            &path,
            OpenOptions {
                create: false,
                read_only: true,
                direct: true,
            },
        )
        .expect("open direct");
    let read = |file: &dyn IoFile| {
        file.read_now(0, AlignedBuf::zeroed(3 * 4096))
            .expect("read")
            .to_vec()
    };
    let device = read(&*direct);
    assert_eq!(device[100..200], [b'a'; 100], "the device's bytes");
    assert_eq!(device[4096..4104], [b'e'; 8], "a dirty page");
    assert_eq!(device[9000], b'd');
    assert_eq!(read(&*file)[100..200], [b'b'; 100], "buffered: the cache");
}
