//! One conformance suite for every I/O backend: io_uring, pread/pwrite and the simulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aedb_io::sim::{Fault, SimVfs};
use aedb_io::{
    all_ok, os_vfs, submit_async, submit_wait, AlignedBuf, BackendKind, IoBackendChoice, IoDone,
    IoErrorKind, IoFile, IoOp, IoResult, OpKind, OpenOptions, Vfs,
};

fn pattern(len: usize, seed: u8) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(len);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = seed.wrapping_add((i % 251) as u8);
    }
    buf
}

/// A pattern whose first 8 bytes hold `tag`, so no two of a test's buffers are alike.
fn tagged(len: usize, tag: u64) -> AlignedBuf {
    let mut buf = pattern(len, tag as u8);
    buf[..8].copy_from_slice(&tag.to_le_bytes());
    buf
}

fn read(
    vfs: &dyn Vfs,
    path: &Path,
    offset: u64,
    len: usize,
) -> Result<AlignedBuf, aedb_io::IoError> {
    let file = vfs.open(path, OpenOptions::default())?;
    let mut done = all_ok(submit_wait(
        &*file,
        vec![IoOp::Read {
            offset,
            buf: AlignedBuf::zeroed(len),
        }],
    ))?;
    Ok(done
        .pop()
        .and_then(IoDone::into_buf)
        .expect("read returns its buffer"))
}

/// Submit a batch and wait for it, failing the test (instead of hanging it) if it never ends.
fn submit_timed(file: &dyn IoFile, ops: Vec<IoOp>) -> Vec<IoResult> {
    let (tx, rx) = std::sync::mpsc::channel();
    file.submit(
        ops,
        Box::new(move |results| {
            let _ = tx.send(results);
        }),
    );
    rx.recv_timeout(Duration::from_secs(120))
        .expect("a batch never completed")
}

/// Batches larger than io_uring's completion queue (512 entries), and many batches in flight at
/// once from several threads.
fn big_and_concurrent_batches(vfs: &dyn Vfs, dir: &Path) {
    const SMALL: usize = 512;
    const COUNT: u64 = 2000;
    let path = dir.join("stress.dat");
    let create = OpenOptions {
        create: true,
        ..OpenOptions::default()
    };
    let file = vfs.open(&path, create).expect("create");

    let mut ops: Vec<IoOp> = (0..COUNT)
        .map(|i| IoOp::Write {
            offset: i * SMALL as u64,
            buf: tagged(SMALL, i),
        })
        .collect();
    ops.push(IoOp::Sync);
    let results = submit_timed(&*file, ops);
    assert_eq!(results.len(), COUNT as usize + 1);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(IoDone::Write(buf)) => assert_eq!(buf.len(), SMALL, "op {i}"),
            Ok(IoDone::Sync) => assert_eq!(i, COUNT as usize),
            other => panic!("op {i}: {other:?}"),
        }
    }
    assert_eq!(file.len().expect("len"), COUNT * SMALL as u64);
    let reads = (0..COUNT)
        .map(|i| IoOp::Read {
            offset: i * SMALL as u64,
            buf: AlignedBuf::zeroed(SMALL),
        })
        .collect();
    let done = all_ok(submit_timed(&*file, reads)).expect("reads");
    assert_eq!(done.len(), COUNT as usize);
    for (i, d) in done.into_iter().enumerate() {
        assert_eq!(
            &d.into_buf().expect("buffer")[..],
            &tagged(SMALL, i as u64)[..],
            "read {i}"
        );
    }

    // Each thread puts all its batches in flight before waiting for any, then reads its region
    // back in one batch; the regions follow the first part's.
    const THREADS: u64 = 4;
    const BATCHES: u64 = 64;
    const PER_BATCH: u64 = 16;
    let base = COUNT * SMALL as u64;
    let offset = |t: u64, b: u64, k: u64| base + ((t * BATCHES + b) * PER_BATCH + k) * SMALL as u64;
    let seed = |t: u64, b: u64, k: u64| (t << 32) | (b << 16) | k;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let file = &file;
            scope.spawn(move || {
                let (tx, rx) = std::sync::mpsc::channel();
                for b in 0..BATCHES {
                    let mut ops: Vec<IoOp> = (0..PER_BATCH)
                        .map(|k| IoOp::Write {
                            offset: offset(t, b, k),
                            buf: tagged(SMALL, seed(t, b, k)),
                        })
                        .collect();
                    if b % 8 == 7 {
                        ops.push(IoOp::Sync);
                    }
                    let tx = tx.clone();
                    file.submit(
                        ops,
                        Box::new(move |results| {
                            let _ = tx.send((b, results));
                        }),
                    );
                }
                let mut finished = vec![false; BATCHES as usize];
                for _ in 0..BATCHES {
                    let (b, results) = rx
                        .recv_timeout(Duration::from_secs(120))
                        .expect("a batch never completed");
                    assert!(
                        !finished[b as usize],
                        "thread {t}: batch {b} completed twice"
                    );
                    finished[b as usize] = true;
                    let expected = PER_BATCH as usize + usize::from(b % 8 == 7);
                    assert_eq!(results.len(), expected, "thread {t}: batch {b}");
                    for (k, r) in results.iter().enumerate() {
                        assert!(
                            matches!(r, Ok(IoDone::Write(_)) | Ok(IoDone::Sync)),
                            "thread {t}: batch {b}: op {k}: {r:?}"
                        );
                    }
                }
                let reads = (0..BATCHES * PER_BATCH)
                    .map(|n| IoOp::Read {
                        offset: offset(t, 0, n),
                        buf: AlignedBuf::zeroed(SMALL),
                    })
                    .collect();
                let done = all_ok(submit_timed(&**file, reads)).expect("read back");
                for (n, d) in done.into_iter().enumerate() {
                    let (b, k) = (n as u64 / PER_BATCH, n as u64 % PER_BATCH);
                    assert_eq!(
                        &d.into_buf().expect("buffer")[..],
                        &tagged(SMALL, seed(t, b, k))[..],
                        "thread {t}: batch {b}: write {k}"
                    );
                }
            });
        }
    });
    assert_eq!(
        file.len().expect("len"),
        offset(THREADS, 0, 0),
        "every thread's region is written"
    );
    drop(file);
    vfs.remove(&path).expect("remove");
}

/// The suite. `dir` is a directory the backend can create files in.
fn conformance(vfs: Arc<dyn Vfs>, dir: &Path) {
    vfs.create_dir_all(dir).expect("mkdir");
    big_and_concurrent_batches(&*vfs, dir);
    let path = dir.join("conf.dat");
    let create = OpenOptions {
        create: true,
        ..OpenOptions::default()
    };
    let file = vfs.open(&path, create).expect("create");
    assert_eq!(file.len().expect("len"), 0);

    // Many writes and a sync in one batch; results in op order.
    let mut ops: Vec<IoOp> = (0..32u64)
        .map(|i| IoOp::Write {
            offset: i * 4096,
            buf: pattern(4096, i as u8),
        })
        .collect();
    ops.push(IoOp::Sync);
    let results = submit_wait(&*file, ops);
    assert_eq!(results.len(), 33);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(IoDone::Write(buf)) => assert_eq!(buf.len(), 4096, "op {i}"),
            Ok(IoDone::Sync) => assert_eq!(i, 32),
            other => panic!("op {i}: {other:?}"),
        }
    }
    assert_eq!(file.len().expect("len"), 32 * 4096);
    for i in [0u64, 7, 31] {
        assert_eq!(
            &read(&*vfs, &path, i * 4096, 4096).expect("read")[..],
            &pattern(4096, i as u8)[..]
        );
    }

    // A batch of reads, then grow, then a write into the grown space.
    let reads: Vec<IoOp> = (0..8u64)
        .map(|i| IoOp::Read {
            offset: i * 4096,
            buf: AlignedBuf::zeroed(4096),
        })
        .collect();
    let done = all_ok(submit_wait(&*file, reads)).expect("reads");
    for (i, d) in done.into_iter().enumerate() {
        assert_eq!(
            &d.into_buf().expect("buffer")[..],
            &pattern(4096, i as u8)[..]
        );
    }
    all_ok(submit_wait(
        &*file,
        vec![
            IoOp::Grow { len: 64 * 4096 },
            IoOp::Write {
                offset: 63 * 4096,
                buf: pattern(4096, 99),
            },
            IoOp::Sync,
        ],
    ))
    .expect("grow then write");
    assert_eq!(file.len().expect("len"), 64 * 4096);
    assert_eq!(
        &read(&*vfs, &path, 63 * 4096, 4096).expect("read")[..],
        &pattern(4096, 99)[..]
    );
    // Grown space reads as zeros; growing to a smaller length changes nothing.
    assert!(read(&*vfs, &path, 40 * 4096, 4096)
        .expect("read")
        .iter()
        .all(|b| *b == 0));
    all_ok(submit_wait(&*file, vec![IoOp::Grow { len: 4096 }])).expect("grow smaller");
    assert_eq!(file.len().expect("len"), 64 * 4096);

    // A short read (past the end) fails, and every later op of the batch is canceled.
    let results = submit_wait(
        &*file,
        vec![
            IoOp::Read {
                offset: 64 * 4096,
                buf: AlignedBuf::zeroed(4096),
            },
            IoOp::Sync,
            IoOp::Write {
                offset: 0,
                buf: pattern(4096, 5),
            },
        ],
    );
    assert!(
        results[0].is_err(),
        "read past end must fail: {:?}",
        results[0]
    );
    for r in &results[1..] {
        assert_eq!(
            r.as_ref().map(|_| ()).unwrap_err().kind,
            IoErrorKind::Canceled
        );
    }
    assert_eq!(
        &read(&*vfs, &path, 0, 4096).expect("read")[..],
        &pattern(4096, 0)[..],
        "canceled write must not land"
    );

    // A write-back after writes waits for them (a barrier) and leaves the bytes readable.
    let done = submit_timed(
        &*file,
        vec![
            IoOp::Write {
                offset: 8 * 4096,
                buf: pattern(8192, 88),
            },
            IoOp::WriteBack {
                offset: 8 * 4096,
                len: 8192,
            },
        ],
    );
    assert!(matches!(done[1], Ok(IoDone::WriteBack)), "{:?}", done[1]);
    // Longer than 4 GiB (more than one io_uring entry can say) works too.
    let done = submit_timed(
        &*file,
        vec![IoOp::WriteBack {
            offset: 4096,
            len: 5 << 30,
        }],
    );
    assert!(matches!(done[0], Ok(IoDone::WriteBack)), "{:?}", done[0]);
    assert_eq!(
        &read(&*vfs, &path, 8 * 4096, 8192).expect("read")[..],
        &pattern(8192, 88)[..]
    );

    // submit_now runs a batch on the calling thread with the same contract: a write then its
    // sync, and a failing op canceling the rest.
    let done = all_ok(file.submit_now(vec![
        IoOp::Write {
            offset: 5 * 4096,
            buf: pattern(4096, 55),
        },
        IoOp::Sync,
    ]))
    .expect("write+sync now");
    assert_eq!(done.len(), 2);
    assert_eq!(
        &read(&*vfs, &path, 5 * 4096, 4096).expect("read")[..],
        &pattern(4096, 55)[..]
    );
    let results = file.submit_now(vec![
        IoOp::Read {
            offset: 64 * 4096,
            buf: AlignedBuf::zeroed(4096),
        },
        IoOp::Write {
            offset: 6 * 4096,
            buf: pattern(4096, 66),
        },
        IoOp::Sync,
    ]);
    assert!(results[0].is_err());
    for r in &results[1..] {
        assert_eq!(
            r.as_ref().map(|_| ()).unwrap_err().kind,
            IoErrorKind::Canceled
        );
    }
    assert_eq!(
        &read(&*vfs, &path, 6 * 4096, 4096).expect("read")[..],
        &pattern(4096, 6)[..],
        "canceled write must not land"
    );
    all_ok(submit_wait(
        &*file,
        vec![IoOp::Write {
            offset: 5 * 4096,
            buf: pattern(4096, 5),
        }],
    ))
    .expect("restore");

    // read_now reads on the calling thread, with the same checks.
    let now = file
        .read_now(7 * 4096, AlignedBuf::zeroed(4096))
        .expect("read_now");
    assert_eq!(&now[..], &pattern(4096, 7)[..]);
    assert!(
        file.read_now(64 * 4096, AlignedBuf::zeroed(4096)).is_err(),
        "read_now past the end must fail"
    );

    // The async path gives the same results.
    let results = futures_lite_block_on(submit_async(
        &*file,
        vec![IoOp::Read {
            offset: 4096,
            buf: AlignedBuf::zeroed(4096),
        }],
    ));
    assert_eq!(
        &all_ok(results)
            .expect("async read")
            .pop()
            .and_then(IoDone::into_buf)
            .expect("buffer")[..],
        &pattern(4096, 1)[..]
    );

    // Directory operations.
    vfs.sync_dir(dir).expect("sync dir");
    assert!(vfs.exists(&path));
    assert!(vfs.list_dir(dir).expect("list").contains(&path));
    assert!(vfs
        .open(&dir.join("missing"), OpenOptions::default())
        .is_err());
    drop(file);
    vfs.remove(&path).expect("remove");
    assert!(!vfs.exists(&path));
}

/// A minimal executor for the async test (the pager has no runtime dependency).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("d");
    (tmp, dir)
}

#[test]
#[cfg(target_os = "linux")]
fn io_uring_backend_conforms() {
    let vfs =
        os_vfs(IoBackendChoice::IoUring).expect("io_uring must be available on this CI machine");
    assert_eq!(vfs.kind(), BackendKind::IoUring);
    let (_tmp, dir) = temp_dir();
    conformance(vfs, &dir);
}

#[test]
fn pread_pwrite_backend_conforms() {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("sync backend");
    assert_eq!(vfs.kind(), BackendKind::Sync);
    let (_tmp, dir) = temp_dir();
    conformance(vfs, &dir);
}

#[test]
fn simulated_backend_conforms() {
    conformance(Arc::new(SimVfs::new()), Path::new("/sim/d"));
}

#[test]
fn auto_falls_back_when_io_uring_is_disabled() {
    // Set for this test binary only; other tests ask for backends explicitly.
    std::env::set_var(aedb_io::DISABLE_IO_URING_ENV, "1");
    let vfs = os_vfs(IoBackendChoice::Auto).expect("auto");
    std::env::remove_var(aedb_io::DISABLE_IO_URING_ENV);
    assert_eq!(vfs.kind(), BackendKind::Sync);
    let (_tmp, dir) = temp_dir();
    conformance(vfs, &dir);
}

#[test]
fn simulator_faults_fire_once_or_forever() {
    let sim = SimVfs::new();
    let path = Path::new("/f/a");
    let file = sim
        .open(
            path,
            OpenOptions {
                create: true,
                ..OpenOptions::default()
            },
        )
        .expect("create");
    sim.inject(Fault::once(OpKind::Sync, 1, libc_eio()));
    assert!(
        all_ok(submit_wait(&*file, vec![IoOp::Sync])).is_ok(),
        "first sync skipped"
    );
    let err = all_ok(submit_wait(&*file, vec![IoOp::Sync])).expect_err("second sync fails");
    assert_eq!(err.kind, IoErrorKind::Os(libc_eio()));
    assert!(
        all_ok(submit_wait(&*file, vec![IoOp::Sync])).is_ok(),
        "a once fault fires once"
    );
    sim.inject(Fault::forever(OpKind::Write, 0, 28));
    for _ in 0..3 {
        let err = all_ok(submit_wait(
            &*file,
            vec![IoOp::Write {
                offset: 0,
                buf: pattern(512, 1),
            }],
        ))
        .expect_err("ENOSPC");
        assert_eq!(err.kind, IoErrorKind::Os(28));
    }
}

#[test]
fn simulator_crash_images_separate_synced_from_unsynced() {
    let sim = SimVfs::new();
    let dir = Path::new("/c");
    let path = dir.join("f");
    let file = sim
        .open(
            &path,
            OpenOptions {
                create: true,
                ..OpenOptions::default()
            },
        )
        .expect("create");
    all_ok(submit_wait(
        &*file,
        vec![
            IoOp::Write {
                offset: 0,
                buf: pattern(4096, 1),
            },
            IoOp::Sync,
        ],
    ))
    .expect("durable write");
    sim.sync_dir(dir).expect("dir sync");
    all_ok(submit_wait(
        &*file,
        vec![
            IoOp::Write {
                offset: 0,
                buf: pattern(4096, 2),
            },
            IoOp::Grow { len: 8192 },
        ],
    ))
    .expect("volatile");
    // A file created but its directory never synced.
    let other = dir.join("g");
    sim.open(
        &other,
        OpenOptions {
            create: true,
            ..OpenOptions::default()
        },
    )
    .expect("create g");

    let process = sim.crash_image(aedb_io::sim::CrashMode::ProcessCrash, 1);
    assert_eq!(
        process.file_bytes(&path).expect("file")[..4096],
        pattern(4096, 2)[..]
    );
    assert_eq!(process.file_bytes(&path).expect("file").len(), 8192);
    assert!(process.exists(&other));

    let power = sim.crash_image(aedb_io::sim::CrashMode::PowerLoss, 1);
    assert_eq!(
        power.file_bytes(&path).expect("file"),
        pattern(4096, 1).to_vec()
    );
    assert!(!power.exists(&other), "an entry never made durable is lost");

    for seed in 0..32 {
        let torn = sim.crash_image(aedb_io::sim::CrashMode::TornWrite, seed);
        let bytes = torn.file_bytes(&path).expect("file");
        assert_eq!(bytes.len(), 4096, "unsynced growth is lost");
        // Each 512-byte sector is wholly old or wholly new.
        for sector in bytes
            .chunks(512)
            .zip(pattern(4096, 1).chunks(512))
            .zip(pattern(4096, 2).chunks(512))
        {
            let ((got, old), new) = sector;
            assert!(
                got == old || got == new,
                "seed {seed}: a sector mixes old and new bytes"
            );
        }
    }

    sim.crash_at(sim.write_points());
    let err = all_ok(submit_wait(&*file, vec![IoOp::Sync])).expect_err("crashed");
    assert_eq!(err.kind, IoErrorKind::Crashed);
    assert!(sim.has_crashed());
}

fn libc_eio() -> i32 {
    5
}
