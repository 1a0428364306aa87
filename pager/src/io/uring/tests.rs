//! Tests of the io_uring backend: the ring thread at its bounds, thread rings, fallbacks.

use super::*;
use crate::io::AlignedBuf;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

fn pattern(len: usize, seed: u64) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(len);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seed as u8).wrapping_mul(31).wrapping_add((i % 251) as u8);
    }
    buf
}

fn temp_file() -> (tempfile::TempDir, Arc<File>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("f"))
        .expect("create");
    (dir, Arc::new(file))
}

fn file_len(file: &File) -> u64 {
    file.metadata().expect("metadata").len()
}

/// Run `batches` through a ring thread loop on this thread, with a ring of 4 submission and
/// 8 completion entries, and hand back each batch's results and the loop's final state.
fn run_small_ring(file: &Arc<File>, batches: Vec<Vec<IoOp>>) -> (Vec<Vec<IoResult>>, RingLoop) {
    let ring = IoUring::new(4).expect("ring");
    let (tx, rx) = sync_channel(REQUEST_QUEUE_MAX);
    let slots: Arc<Mutex<Vec<Option<Vec<IoResult>>>>> =
        Arc::new(Mutex::new((0..batches.len()).map(|_| None).collect()));
    for (i, ops) in batches.into_iter().enumerate() {
        let slots = Arc::clone(&slots);
        let done: Completion = Box::new(move |results| {
            slots.lock().expect("results")[i] = Some(results);
        });
        tx.send(Request {
            file: Arc::clone(file),
            ops,
            done,
        })
        .expect("send");
    }
    drop(tx);
    let mut ring_loop = RingLoop::new(ring, rx);
    ring_loop.run();
    let results = std::mem::take(&mut *slots.lock().expect("results"))
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("batch {i} never completed")))
        .collect();
    (results, ring_loop)
}

#[test]
fn batches_larger_than_the_completion_queue_stay_within_it() {
    let (_dir, file) = temp_file();
    let mut big: Vec<IoOp> = (0..300u64)
        .map(|i| IoOp::Write {
            offset: i * 512,
            buf: pattern(512, i),
        })
        .collect();
    big.push(IoOp::Sync);
    big.extend((0..300u64).map(|i| IoOp::Read {
        offset: i * 512,
        buf: AlignedBuf::zeroed(512),
    }));
    let mut batches = vec![big];
    for b in 1..=6u64 {
        batches.push(
            (0..40u64)
                .map(|i| IoOp::Write {
                    offset: (1000 * b + i) * 512,
                    buf: pattern(512, 1000 * b + i),
                })
                .collect(),
        );
    }
    let (results, mut ring_loop) = run_small_ring(&file, batches);

    let cq = ring_loop.cq_capacity;
    assert_eq!(cq, 8, "the test ring's completion queue");
    assert!(
        ring_loop.peak_inflight <= cq,
        "{} in flight",
        ring_loop.peak_inflight
    );
    assert_eq!(
        ring_loop.peak_inflight, cq,
        "the batches never reached the bound"
    );
    assert_eq!(ring_loop.inflight, 0);
    assert!(ring_loop.parked.is_empty());
    assert!(ring_loop.ring.submission().is_empty());
    assert!(ring_loop.batches.iter().all(Option::is_none));

    assert_eq!(results[0].len(), 601);
    for (i, result) in results[0].iter().enumerate() {
        match (i, result) {
            (0..300, Ok(IoDone::Write(_))) | (300, Ok(IoDone::Sync)) => {}
            (301.., Ok(IoDone::Read(buf))) => {
                let seed = (i - 301) as u64;
                assert_eq!(&buf[..], &pattern(512, seed)[..], "read {seed}");
            }
            other => panic!("op {i}: {other:?}"),
        }
    }
    for (b, batch) in results.iter().enumerate().skip(1) {
        assert_eq!(batch.len(), 40);
        assert!(
            batch.iter().all(|r| matches!(r, Ok(IoDone::Write(_)))),
            "batch {b}"
        );
    }
    for (b, i) in [(1u64, 0u64), (3, 17), (6, 39)] {
        let mut back = AlignedBuf::zeroed(512);
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut back, (1000 * b + i) * 512)
            .expect("read back");
        assert_eq!(&back[..], &pattern(512, 1000 * b + i)[..]);
    }
}

#[test]
fn a_failure_cancels_every_later_op_even_those_in_flight() {
    let (_dir, file) = temp_file();
    let mut ops: Vec<IoOp> = (0..8u64)
        .map(|i| IoOp::Write {
            offset: i * 512,
            buf: pattern(512, i),
        })
        .collect();
    // Past the end: a short read, while the writes around it may be in flight.
    ops.push(IoOp::Read {
        offset: 1 << 20,
        buf: AlignedBuf::zeroed(512),
    });
    ops.extend((8..28u64).map(|i| IoOp::Write {
        offset: i * 512,
        buf: pattern(512, i),
    }));
    ops.push(IoOp::Sync);
    ops.push(IoOp::Write {
        offset: 1 << 21,
        buf: pattern(512, 99),
    });
    let (mut results, _) = run_small_ring(&file, vec![ops]);
    let results = results.remove(0);
    assert_eq!(results.len(), 31);
    // Submitted before the read, with room in the ring: they ran and succeeded.
    for (i, r) in results[..8].iter().enumerate() {
        assert!(matches!(r, Ok(IoDone::Write(_))), "op {i}: {r:?}");
    }
    assert_eq!(
        results[8].as_ref().map(|_| ()).map_err(|e| e.kind),
        Err(IoErrorKind::Short)
    );
    for (i, r) in results.iter().enumerate().skip(9) {
        let err = r.as_ref().map(|_| ()).expect_err("canceled");
        assert_eq!(err.kind, IoErrorKind::Canceled, "op {i}");
    }
    assert_eq!(
        results[30]
            .as_ref()
            .map(|_| ())
            .map_err(|e| (e.op, e.offset)),
        Err((OpKind::Write, 1 << 21))
    );
    assert!(file_len(&file) < 1 << 21, "the write after the barrier ran");
}

#[test]
fn run_linked_declines_before_queueing_anything() {
    let (_dir, file) = temp_file();
    let mut slot = LocalRing::Untried;

    // A Grow cannot be linked; the valid write before it must not be queued either.
    let ops = vec![
        IoOp::Write {
            offset: 1 << 20,
            buf: pattern(512, 1),
        },
        IoOp::Grow { len: 1 << 21 },
    ];
    let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("declined");
    assert!(
        matches!(&back[0], IoOp::Write { offset, buf } if *offset == 1 << 20 && buf[..] == pattern(512, 1)[..])
    );
    assert!(matches!(back[1], IoOp::Grow { len } if len == 1 << 21));
    assert!(slot.queue_is_empty());

    // More ops than the ring has entries.
    let ops: Vec<IoOp> = (0..=LOCAL_RING_ENTRIES as u64)
        .map(|i| IoOp::Write {
            offset: (1 << 20) + i * 512,
            buf: pattern(512, i),
        })
        .collect();
    let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("declined");
    assert_eq!(back.len(), LOCAL_RING_ENTRIES as usize + 1);
    assert!(
        matches!(slot, LocalRing::Ready(_)),
        "declining keeps the ring"
    );
    assert!(slot.queue_is_empty());
    assert_eq!(file_len(&file), 0, "a declined op reached the disk");

    // The ring still works, and only this batch's write lands: nothing stale was queued.
    let results = run_linked(
        &mut slot,
        &file,
        vec![
            IoOp::Write {
                offset: 0,
                buf: pattern(512, 7),
            },
            IoOp::Sync,
        ],
        enter_kernel,
    )
    .expect("ran");
    assert!(matches!(&results[0], Ok(IoDone::Write(buf)) if buf[..] == pattern(512, 7)[..]));
    assert!(matches!(results[1], Ok(IoDone::Sync)));
    assert!(slot.queue_is_empty());
    assert_eq!(file_len(&file), 512);
}

#[test]
fn linked_entries_refuse_buffers_longer_than_an_entry_can_say() {
    let (_dir, file) = temp_file();
    let fd = types::Fd(file.as_raw_fd());
    let mut ops = vec![
        IoOp::Write {
            offset: 0,
            buf: pattern(4096, 1),
        },
        IoOp::Read {
            offset: 0,
            buf: AlignedBuf::zeroed(8192),
        },
    ];
    assert!(linked_entries(fd, &mut ops, 4096).is_none());
    let entries = linked_entries(fd, &mut ops, 8192).expect("fits");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].get_user_data(), 1);
    assert!(linked_entries(fd, &mut [], MAX_SQE_LEN).is_none());
}

#[test]
fn a_ring_that_refuses_entries_is_dropped_and_the_ops_come_back() {
    let (_dir, file) = temp_file();
    // A disabled ring answers every io_uring_enter with EBADFD.
    let ring = IoUring::builder()
        .setup_r_disabled()
        .build(LOCAL_RING_ENTRIES)
        .expect("disabled ring");
    let mut slot = LocalRing::Ready(Box::new(ring));
    let ops = vec![
        IoOp::Write {
            offset: 0,
            buf: pattern(512, 3),
        },
        IoOp::Sync,
    ];
    let back = run_linked(&mut slot, &file, ops, enter_kernel).expect_err("fell back");
    assert!(matches!(&back[0], IoOp::Write { buf, .. } if buf[..] == pattern(512, 3)[..]));
    assert!(matches!(back[1], IoOp::Sync));
    assert!(matches!(slot, LocalRing::Unavailable));
    assert_eq!(file_len(&file), 0);
    // Later calls on this thread go straight to the fallback.
    let back = run_linked(&mut slot, &file, back, enter_kernel).expect_err("fell back");
    assert_eq!(back.len(), 2);
}

/// Submits without waiting, then fails every wait: a ring whose `io_uring_enter` broke after
/// the kernel took the entries.
fn enter_then_fail(ring: &IoUring, how: Enter) -> io::Result<usize> {
    match how {
        Enter::SubmitAndWait(_) => ring.submit(),
        Enter::Wait(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
    }
}

#[test]
fn waiting_that_keeps_failing_gives_up_with_errors() {
    let (_dir, file) = temp_file();
    let (read_end, write_end) = pipe();
    // A read of an empty pipe whose writer stays open never completes.
    let pipe = File::from(read_end);
    let mut slot = LocalRing::Untried;
    let started = std::time::Instant::now();
    let results = run_linked(
        &mut slot,
        &pipe,
        vec![
            IoOp::Read {
                offset: 0,
                buf: AlignedBuf::zeroed(512),
            },
            IoOp::Sync,
        ],
        enter_then_fail,
    )
    .expect("gave up with results");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].as_ref().map(|_| ()).map_err(|e| e.kind),
        Err(IoErrorKind::Os(libc::EIO))
    );
    assert_eq!(
        results[1].as_ref().map(|_| ()).map_err(|e| e.kind),
        Err(IoErrorKind::Canceled)
    );
    assert!(matches!(slot, LocalRing::Unavailable));
    drop(write_end);
    // The thread's calls now fall back; this file still works through the fallback path.
    let back = run_linked(&mut slot, &file, vec![IoOp::Sync], enter_kernel);
    assert!(back.is_err());
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    unsafe {
        (
            std::os::fd::FromRawFd::from_raw_fd(fds[0]),
            std::os::fd::FromRawFd::from_raw_fd(fds[1]),
        )
    }
}
