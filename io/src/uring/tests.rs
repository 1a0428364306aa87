//! Tests of the io_uring backend: the ring thread at its bounds and on failure.

use super::*;
use crate::AlignedBuf;
use std::sync::Mutex;

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
