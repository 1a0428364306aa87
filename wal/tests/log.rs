//! The log on the simulated disk: group writes, rotation, truncation, torn tails versus
//! corruption, both recovery modes, and a reader that never panics on damaged segments.

use std::path::Path;
use std::sync::Arc;

use aedb_io::sim::{CrashMode, Fault, SimVfs};
use aedb_io::{IoErrorKind, OpKind, Vfs};
use aedb_wal::frame::frame_bytes;
use aedb_wal::segment::{list_segments, SEGMENT_HEADER_BYTES};
use aedb_wal::{scan, Integrity, RecoveryMode, ScanOutcome, WalConfig, WalError, WalWriter};
use proptest::prelude::*;

const DIR: &str = "/db/wal";

type Frames = Vec<(u64, Vec<u8>)>;

fn config(integrity: Integrity) -> WalConfig {
    WalConfig {
        segment_bytes: 16 << 10,
        integrity,
    }
}

fn full() -> Integrity {
    Integrity {
        hash_chain: true,
        hmac_key: Some([5; 32]),
    }
}

fn read_all(
    vfs: &SimVfs,
    after: u64,
    integrity: &Integrity,
    mode: RecoveryMode,
) -> Result<(Frames, ScanOutcome), WalError> {
    let mut frames = Vec::new();
    let outcome = scan(vfs, Path::new(DIR), after, integrity, mode, |h, payload| {
        frames.push((h.seq, payload.to_vec()));
        Ok(())
    })?;
    Ok((frames, outcome))
}

fn writer(vfs: &SimVfs, integrity: Integrity, checkpoint: u64) -> WalWriter {
    let (_, outcome) = read_all(vfs, checkpoint, &integrity, RecoveryMode::Strict).expect("scan");
    WalWriter::open(
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
        Path::new(DIR),
        config(integrity),
        &outcome,
        checkpoint,
    )
    .expect("writer")
}

fn payload(seq: u64) -> Vec<u8> {
    vec![seq as u8; 100 + (seq as usize * 37) % 900]
}

#[test]
fn frames_round_trip_across_rotations_and_reopen() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=200 {
        assert_eq!(w.append(seq, &payload(seq)).unwrap(), seq);
        if seq % 7 == 0 {
            w.flush(true).unwrap();
        }
    }
    w.flush(true).unwrap();
    assert!(w.segment_count() > 3, "16 KiB segments must rotate");
    drop(w);
    let (frames, outcome) = read_all(&vfs, 0, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames.len(), 200);
    assert!(frames.iter().all(|(seq, p)| *p == payload(*seq)));
    assert_eq!(outcome.last_lsn, 200);
    assert!(outcome.dropped.is_none());
    // Only frames after the checkpoint are handed out.
    let (after, _) = read_all(&vfs, 150, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(after.first().map(|f| f.0), Some(151));
    assert_eq!(after.len(), 50);
    // Reopen: writing continues at LSN 201 in a new segment; the chain still verifies.
    let mut w = writer(&vfs, full(), 0);
    assert_eq!(w.append(201, b"more").unwrap(), 201);
    w.flush(true).unwrap();
    let (frames, _) = read_all(&vfs, 0, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames.len(), 201);
    // A checkpoint at 150 lets the segments it covers go.
    let before = list_segments(&vfs, Path::new(DIR)).unwrap().len();
    let removed = w.remove_covered(150).unwrap();
    assert!(removed > 0);
    assert_eq!(
        list_segments(&vfs, Path::new(DIR)).unwrap().len(),
        before - removed
    );
    let (frames, _) = read_all(&vfs, 150, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames.first().map(|f| f.0), Some(151));
    assert_eq!(frames.len(), 51);
}

#[test]
fn wrong_key_or_missing_chain_is_corruption() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=5 {
        w.append(seq, &payload(seq)).unwrap();
    }
    w.flush(true).unwrap();
    drop(w);
    let other_key = Integrity {
        hash_chain: true,
        hmac_key: Some([6; 32]),
    };
    // Every frame fails the HMAC: the first frame's damage is proven by the later frames.
    let err = read_all(&vfs, 0, &other_key, RecoveryMode::Strict).unwrap_err();
    assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
}

#[test]
fn unsynced_tail_lost_in_a_crash_is_not_an_error_and_synced_frames_survive() {
    for mode in CrashMode::ALL {
        for seed in 0..8 {
            let vfs = SimVfs::new();
            let mut w = writer(&vfs, full(), 0);
            for seq in 1..=20 {
                w.append(seq, &payload(seq)).unwrap();
            }
            w.flush(true).unwrap();
            for seq in 21..=30 {
                w.append(seq, &payload(seq)).unwrap();
            }
            w.flush(false).unwrap(); // written, never synced
            let image = vfs.crash_image(mode, seed);
            let (frames, outcome) = read_all(&image, 0, &full(), RecoveryMode::Strict)
                .unwrap_or_else(|e| panic!("{mode:?} seed {seed}: {e}"));
            assert!(
                frames.len() >= 20,
                "{mode:?}: synced frames lost ({} left)",
                frames.len()
            );
            assert!(frames
                .iter()
                .enumerate()
                .all(|(i, (seq, p))| *seq == i as u64 + 1 && *p == payload(*seq)));
            // Recovery can write on, and the next recovery reads straight through.
            let mut w = writer(&image, full(), 0);
            let next = outcome.last_lsn + 1;
            w.append(next, b"after").unwrap();
            w.flush(true).unwrap();
            let (again, _) = read_all(&image, 0, &full(), RecoveryMode::Strict).unwrap();
            assert_eq!(again.len() as u64, next);
        }
    }
}

#[test]
fn damage_inside_the_synced_log_is_refused_in_strict_and_cut_in_permissive() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, Integrity::default(), 0);
    for seq in 1..=10 {
        w.append(seq, &payload(seq)).unwrap();
        w.flush(true).unwrap();
    }
    drop(w);
    let (_, path) = list_segments(&vfs, Path::new(DIR)).unwrap().remove(0);
    // Damage frame 3's payload.
    let first = 40 + payload(1).len() as u64;
    let second = 40 + payload(2).len() as u64;
    vfs.corrupt(
        &path,
        SEGMENT_HEADER_BYTES + first + second + 50,
        &[0xEE; 4],
    );
    match read_all(&vfs, 0, &Integrity::default(), RecoveryMode::Strict) {
        Err(WalError::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, path);
            assert_eq!(offset, SEGMENT_HEADER_BYTES + first + second);
        }
        other => panic!("strict recovery must refuse: {other:?}"),
    }
    let (frames, outcome) =
        read_all(&vfs, 0, &Integrity::default(), RecoveryMode::Permissive).unwrap();
    assert_eq!(frames.len(), 2);
    assert!(
        outcome
            .dropped
            .as_deref()
            .is_some_and(|d| d.contains("LSN 3")),
        "{:?}",
        outcome.dropped
    );
}

fn segment_bytes_for_fuzz() -> (SimVfs, std::path::PathBuf, Vec<u8>) {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=12 {
        w.append(seq, &payload(seq)[..50]).unwrap();
    }
    w.flush(true).unwrap();
    let (_, path) = list_segments(&vfs, Path::new(DIR)).unwrap().remove(0);
    let bytes = vfs.file_bytes(&path).unwrap();
    (vfs, path, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, .. ProptestConfig::default() })]

    #[test]
    fn reader_never_panics_on_mutated_or_truncated_segments(
        edits in proptest::collection::vec((0usize..2000, any::<u8>()), 0..12),
        cut in proptest::option::of(0usize..2000),
        strict in any::<bool>(),
    ) {
        let (vfs, path, mut bytes) = segment_bytes_for_fuzz();
        for (at, byte) in edits {
            if at < bytes.len() {
                bytes[at] = byte;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        let image = SimVfs::new();
        let file = image.open(&path, aedb_io::OpenOptions { create: true, ..Default::default() }).unwrap();
        aedb_io::all_ok(aedb_io::submit_wait(&*file, vec![aedb_io::IoOp::Write { offset: 0, buf: aedb_io::AlignedBuf::from_slice(&bytes) }])).unwrap();
        drop(vfs);
        let mode = if strict { RecoveryMode::Strict } else { RecoveryMode::Permissive };
        let result = read_all(&image, 0, &full(), mode);
        if let Ok((frames, _)) = result {
            for (i, (seq, _)) in frames.iter().enumerate() {
                prop_assert_eq!(*seq, i as u64 + 1);
            }
        }
    }

    #[test]
    fn record_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = aedb_wal::decode_record(&bytes);
        let _ = aedb_wal::frame::decode(&bytes, &full(), &[0; 32]);
        let _ = aedb_wal::frame::decode_crc_only(&bytes);
    }
}

/// Small flushes land in blocks written with zeros ahead of them, a stretch at a time: one
/// zero write per stretch, not one per flush; and the frames read back across the stretches.
#[test]
fn small_flushes_write_zeros_ahead_a_stretch_at_a_time() {
    let vfs = SimVfs::new();
    let integrity = full();
    let (_, outcome) = read_all(&vfs, 0, &integrity, RecoveryMode::Strict).expect("scan");
    let mut w = WalWriter::open(
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
        Path::new(DIR),
        WalConfig {
            segment_bytes: 4 << 20,
            integrity: integrity.clone(),
        },
        &outcome,
        0,
    )
    .expect("writer");
    let before = vfs.write_points();
    let flushes = 2_000u64;
    for seq in 1..=flushes {
        w.append(seq, &[seq as u8; 200]).expect("append");
        w.flush(true).expect("flush");
    }
    // Each flush is a frame write and a sync; ~560 KB of frames cross a few 128 KiB stretches.
    let points = vfs.write_points() - before;
    let zero_writes = points - 2 * flushes;
    assert!(
        (2..=8).contains(&zero_writes),
        "{zero_writes} zero writes for {flushes} small flushes"
    );
    drop(w);
    let (frames, outcome) = read_all(&vfs, 0, &integrity, RecoveryMode::Strict).expect("scan");
    assert_eq!(frames.len() as u64, flushes);
    assert!(outcome.dropped.is_none());
}

#[test]
fn a_covered_segment_removed_from_the_middle_breaks_the_chain() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=120 {
        w.append(seq, &payload(seq)).unwrap();
    }
    w.flush(true).unwrap();
    drop(w);
    let segments = list_segments(&vfs, Path::new(DIR)).unwrap();
    assert!(segments.len() >= 4, "{}", segments.len());
    // A checkpoint covering everything: redo needs none of the frames, but the log must still
    // hold together — a middle segment taken out breaks the chain at the next one.
    vfs.remove(&segments[1].1).unwrap();
    let err = read_all(&vfs, 120, &full(), RecoveryMode::Strict).unwrap_err();
    assert!(err.to_string().contains("chain"), "{err}");
    // Outside secure mode (no HMAC key) a covered gap is accepted: a failed fsync's frames,
    // redone and checkpointed, can leave one legitimately.
    let chain_only = Integrity {
        hash_chain: true,
        hmac_key: None,
    };
    let unkeyed = SimVfs::new();
    let mut w = writer(&unkeyed, chain_only.clone(), 0);
    for seq in 1..=120 {
        w.append(seq, &payload(seq)).unwrap();
    }
    w.flush(true).unwrap();
    drop(w);
    let segments = list_segments(&unkeyed, Path::new(DIR)).unwrap();
    unkeyed.remove(&segments[1].1).unwrap();
    assert!(read_all(&unkeyed, 120, &chain_only, RecoveryMode::Strict).is_ok());
}

#[test]
fn a_checkpoint_past_the_log_leaves_a_gap_the_chain_accepts() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=10 {
        w.append(seq, &payload(seq)).unwrap();
    }
    w.flush(true).unwrap();
    drop(w);
    // The data file's checkpoint covers up to 15 (frames 11..15 never reached the log): the
    // writer reopens at 16 with the chain where the log ended.
    let mut w = writer(&vfs, full(), 15);
    assert_eq!(w.append(16, &payload(16)).unwrap(), 16);
    w.flush(true).unwrap();
    drop(w);
    let (frames, _) = read_all(&vfs, 15, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames.iter().map(|f| f.0).collect::<Vec<_>>(), [16]);
}

/// A torn tail a recovery abandoned is no damage: a permissive scan reads on through every
/// later segment (it stopped after the first one, and the writer then deleted the rest as
/// stale — acknowledged commits lost; the re-review found it).
#[test]
fn permissive_recovery_reads_past_a_torn_tail_abandoned_earlier() {
    let mut torn_seen = 0;
    for (mode, seed) in CrashMode::ALL
        .into_iter()
        .flat_map(|m| (0..8).map(move |s| (m, s)))
    {
        let vfs = SimVfs::new();
        let mut w = writer(&vfs, full(), 0);
        for seq in 1..=20 {
            w.append(seq, &payload(seq)).unwrap();
        }
        w.flush(true).unwrap();
        for seq in 21..=30 {
            w.append(seq, &payload(seq)).unwrap();
        }
        w.flush(false).unwrap();
        let image = vfs.crash_image(mode, seed);
        let (_, outcome) = read_all(&image, 0, &full(), RecoveryMode::Strict).unwrap();
        torn_seen += usize::from(outcome.dropped.is_some());
        let first = outcome.last_lsn;
        // The next session writes on, across several new segments, all synced.
        let mut w = writer(&image, full(), 0);
        let last = first + 120;
        for seq in first + 1..=last {
            w.append(seq, &payload(seq)).unwrap();
        }
        w.flush(true).unwrap();
        assert!(w.segment_count() >= 3, "{mode:?}: {}", w.segment_count());
        drop(w);
        for recovery in [RecoveryMode::Strict, RecoveryMode::Permissive] {
            let (frames, outcome) = read_all(&image, 0, &full(), recovery).unwrap();
            assert_eq!(outcome.last_lsn, last, "{mode:?} {recovery:?}");
            assert_eq!(frames.len() as u64, last, "{mode:?} {recovery:?}");
            assert!(
                outcome.stale.is_empty(),
                "{mode:?} {recovery:?}: {:?}",
                outcome.stale
            );
        }
    }
    assert!(
        torn_seen > 0,
        "no crash image left a torn (garbage) tail to abandon"
    );
}

/// Damage a permissive recovery dropped must not end the next permissive scan before the
/// segment that recovery went on in: it starts exactly at the dropped LSN. The scan stopped at
/// the damage, and the writer then deleted that segment as stale, with every commit
/// acknowledged in it (review of session 8).
#[test]
fn permissive_recovery_keeps_the_log_written_after_an_earlier_permissive_recovery() {
    for integrity in [Integrity::default(), full()] {
        let vfs = SimVfs::new();
        let mut w = writer(&vfs, integrity.clone(), 0);
        for seq in 1..=40 {
            w.append(seq, &payload(seq)).unwrap();
            w.flush(true).unwrap();
        }
        assert!(w.segment_count() >= 2, "{}", w.segment_count());
        drop(w);
        let (_, first_segment) = list_segments(&vfs, Path::new(DIR)).unwrap().remove(0);
        let mut bytes = Vec::new();
        aedb_wal::segment::read_segment_into(&vfs, &first_segment, &mut bytes).unwrap();
        let frame_3 = aedb_wal::frame::frames_within(&bytes[SEGMENT_HEADER_BYTES as usize..])
            .find(|(_, header)| header.lsn == 3)
            .map(|(at, _)| SEGMENT_HEADER_BYTES + at as u64)
            .unwrap();
        vfs.corrupt(&first_segment, frame_3 + 50, &[0xEE; 4]);

        let (frames, outcome) = read_all(&vfs, 0, &integrity, RecoveryMode::Permissive).unwrap();
        assert_eq!(frames.len(), 2, "the first permissive open keeps LSN 1..=2");
        assert!(!outcome.stale.is_empty(), "later segments are stale");
        let mut w = WalWriter::open(
            Arc::new(vfs.clone()) as Arc<dyn Vfs>,
            Path::new(DIR),
            config(integrity.clone()),
            &outcome,
            0,
        )
        .unwrap();
        // Acknowledged durable commits, across a rotation, then a crash before a checkpoint.
        let last = 2 + 60;
        for seq in 3..=last {
            w.append(seq, &payload(seq + 1000)).unwrap();
            w.flush(true).unwrap();
        }
        assert!(w.segment_count() >= 3, "{}", w.segment_count());
        drop(w);
        let image = vfs.crash_image(CrashMode::PowerLoss, 1);

        for _second_open in 0..2 {
            let (frames, outcome) =
                read_all(&image, 0, &integrity, RecoveryMode::Permissive).unwrap();
            assert_eq!(outcome.last_lsn, last, "{integrity:?}");
            assert_eq!(frames.len() as u64, last);
            assert_eq!(frames[2].1, payload(3 + 1000), "LSN 3 is the new session's");
            assert!(outcome.stale.is_empty(), "{:?}", outcome.stale);
            assert!(
                outcome
                    .dropped
                    .as_deref()
                    .is_some_and(|d| d.contains("LSN 3") && d.contains("earlier recovery")),
                "{:?}",
                outcome.dropped
            );
            // The writer of this open deletes nothing and goes on after the last frame.
            let w = WalWriter::open(
                Arc::new(image.clone()) as Arc<dyn Vfs>,
                Path::new(DIR),
                config(integrity.clone()),
                &outcome,
                0,
            )
            .unwrap();
            drop(w);
        }
        assert!(
            matches!(
                read_all(&image, 0, &integrity, RecoveryMode::Strict),
                Err(WalError::Corrupt { .. })
            ),
            "strict recovery still refuses the damage"
        );
    }
}

/// 70 synced frames over several segments; returns the segments' paths and the offset of
/// frame `lsn` in the first one.
fn synced_log(vfs: &SimVfs, integrity: &Integrity, lsn: u64) -> (Vec<std::path::PathBuf>, u64) {
    let mut w = writer(vfs, integrity.clone(), 0);
    for seq in 1..=70 {
        w.append(seq, &payload(seq)).unwrap();
        w.flush(true).unwrap();
    }
    assert!(w.segment_count() >= 3, "{}", w.segment_count());
    drop(w);
    let paths: Vec<_> = list_segments(vfs, Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let mut bytes = Vec::new();
    aedb_wal::segment::read_segment_into(vfs, &paths[0], &mut bytes).unwrap();
    let at = aedb_wal::frame::frames_within(&bytes[SEGMENT_HEADER_BYTES as usize..])
        .find(|(_, header)| header.lsn == lsn)
        .map(|(at, _)| SEGMENT_HEADER_BYTES + at as u64)
        .unwrap();
    (paths, at)
}

/// After a permissive drop, a later segment of the old log that cannot be read (its header
/// damaged too) is stale like the others: the open goes on and says so.
#[test]
fn after_a_permissive_drop_an_unreadable_later_segment_is_stale() {
    let vfs = SimVfs::new();
    let (paths, frame_3) = synced_log(&vfs, &Integrity::default(), 3);
    vfs.corrupt(&paths[0], frame_3 + 50, &[0xEE; 4]);
    vfs.corrupt(&paths[1], 8, &[0xEE; 4]);
    let (frames, outcome) =
        read_all(&vfs, 0, &Integrity::default(), RecoveryMode::Permissive).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(outcome.stale, paths[1..].to_vec());
    let dropped = outcome.dropped.unwrap();
    assert!(
        dropped.contains("LSN 3") && dropped.contains("stale"),
        "{dropped}"
    );
    assert!(matches!(
        read_all(&vfs, 0, &Integrity::default(), RecoveryMode::Strict),
        Err(WalError::Corrupt { .. })
    ));
}

/// A frame whose CRC holds but whose HMAC does not, wholly covered by the checkpoint: a
/// permissive scan reads on into the next segment (it dropped every frame after the checkpoint
/// before) and reports the damage as covered; secure strict recovery refuses it.
#[test]
fn permissive_recovery_reads_past_altered_frames_the_checkpoint_covers() {
    let vfs = SimVfs::new();
    let (paths, frame_3) = synced_log(&vfs, &full(), 3);
    let mut bytes = Vec::new();
    aedb_wal::segment::read_segment_into(&vfs, &paths[1], &mut bytes).unwrap();
    let second_starts = aedb_wal::segment::SegmentHeader::decode(&bytes, &paths[1])
        .unwrap()
        .first_lsn;
    let checkpoint = second_starts - 1;
    // Alter frame 3's HMAC (the last 32 bytes of the frame) and make its CRC hold again.
    aedb_wal::segment::read_segment_into(&vfs, &paths[0], &mut bytes).unwrap();
    let start = frame_3 as usize;
    let (_, header) = aedb_wal::frame::frames_within(&bytes[start..])
        .next()
        .unwrap();
    let end = start + header.total_len();
    bytes[end - 1] ^= 0xFF;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[start..start + 36]);
    crc.update(&bytes[start + 40..end]);
    vfs.corrupt(&paths[0], frame_3 + 36, &crc.finalize().to_le_bytes());
    vfs.corrupt(&paths[0], end as u64 - 1, &[bytes[end - 1]]);

    let (frames, outcome) = read_all(&vfs, checkpoint, &full(), RecoveryMode::Permissive).unwrap();
    assert_eq!(outcome.last_lsn, 70);
    assert_eq!(frames.len() as u64, 70 - checkpoint);
    assert!(outcome.stale.is_empty(), "{:?}", outcome.stale);
    let dropped = outcome.dropped.unwrap();
    assert!(
        dropped.contains("LSN 3") && dropped.contains("checkpoint covers"),
        "{dropped}"
    );
    assert!(matches!(
        read_all(&vfs, checkpoint, &full(), RecoveryMode::Strict),
        Err(WalError::Corrupt { .. })
    ));
}

/// The newest segment's header damaged while its frames are all covered by the checkpoint:
/// nothing redo needs is lost, so recovery opens and the segment is stale — except in secure
/// mode (authenticated frames, strict), where the log must be intact and the open is refused.
#[test]
fn a_damaged_newest_header_the_checkpoint_covers_is_refused_only_in_secure_mode() {
    let chain_only = Integrity {
        hash_chain: true,
        hmac_key: None,
    };
    for (integrity, secure) in [(chain_only, false), (full(), true)] {
        let vfs = SimVfs::new();
        let (paths, _) = synced_log(&vfs, &integrity, 1);
        let newest = paths.last().unwrap();
        vfs.corrupt(newest, 8, &[0xEE; 4]);
        let covered = read_all(&vfs, 70, &integrity, RecoveryMode::Strict);
        match (covered, secure) {
            (Ok((frames, outcome)), false) => {
                assert!(frames.is_empty());
                assert_eq!(outcome.stale, vec![newest.clone()]);
            }
            (Err(WalError::Corrupt { segment, .. }), true) => assert_eq!(&segment, newest),
            (other, _) => panic!("secure {secure}: {other:?}"),
        }
        // Not covered: refused either way.
        assert!(
            matches!(
                read_all(&vfs, 0, &integrity, RecoveryMode::Strict),
                Err(WalError::Corrupt { .. })
            ),
            "secure {secure}"
        );
    }
}

/// `reserve` rotates before a group's frames when they would straddle the segment's end but
/// fit a fresh one, so no rotation (the one append that does I/O) falls between them; a group
/// larger than a segment is left to rotate inside itself; the log reads back whole either way.
#[test]
fn a_reserved_group_never_straddles_two_segments() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    let mut seq = 0;
    let mut straddled = 0;
    for group in 0..60u64 {
        let sizes: Vec<usize> = (0..1 + group % 5)
            .map(|i| 300 + (group * 131 + i * 17) as usize % 3_000)
            .collect();
        let segment = config(full()).segment_bytes;
        let used = w.live_bytes() - (w.segment_count() as u64 - 1) * segment;
        let frames: u64 = sizes.iter().map(|len| frame_bytes(*len) as u64).sum();
        let before = w.segment_count();
        w.reserve(sizes.iter().copied()).unwrap();
        let segments = w.segment_count();
        assert_eq!(
            segments > before,
            used + frames > segment,
            "group {group}: rotate exactly when the frames would not fit"
        );
        for len in &sizes {
            seq += 1;
            w.append(seq, &vec![seq as u8; *len]).unwrap();
        }
        assert_eq!(
            w.segment_count(),
            segments,
            "group {group} rotated inside itself"
        );
        w.flush(true).unwrap();
        straddled += usize::from(segments > 1);
    }
    assert!(
        straddled > 0,
        "premise: the groups fill several 16 KiB segments"
    );
    // Larger than a segment: reserve leaves it to the appends, which rotate.
    let before = w.segment_count();
    w.reserve([10_000usize, 10_000].into_iter()).unwrap();
    assert_eq!(w.segment_count(), before);
    for len in [10_000, 10_000] {
        seq += 1;
        w.append(seq, &vec![1; len]).unwrap();
    }
    w.flush(true).unwrap();
    assert!(w.segment_count() > before);
    drop(w);
    let (frames, outcome) = read_all(&vfs, 0, &full(), RecoveryMode::Strict).unwrap();
    assert_eq!(frames.len() as u64, seq);
    assert_eq!(outcome.last_lsn, seq);
}

/// Deleting covered segments: one already gone (an unlink that reported failure may still have
/// taken effect) counts as deleted, and a refused unlink keeps that segment and the later ones,
/// still makes the deletions before it durable, and leaves the next call to start again there.
#[test]
fn covered_segments_outlive_a_missing_file_and_a_refused_unlink() {
    let vfs = SimVfs::new();
    let mut w = writer(&vfs, full(), 0);
    for seq in 1..=200 {
        w.append(seq, &payload(seq)).unwrap();
    }
    w.flush(true).unwrap();
    let dir = Path::new(DIR);
    let before = list_segments(&vfs, dir).unwrap();
    assert!(before.len() > 4, "16 KiB segments must rotate");
    vfs.remove(&before[0].1).unwrap();
    // The next unlink is the missing first segment's, then the second's; the third is refused.
    vfs.inject(Fault::once(OpKind::Remove, 2, libc::EACCES).on_path("wal"));
    let err = w
        .remove_covered(200)
        .expect_err("the refused unlink is reported");
    assert!(
        matches!(&err, WalError::Io(io) if io.op == OpKind::Remove
            && io.kind == IoErrorKind::Os(libc::EACCES)),
        "{err}"
    );
    assert_eq!(vfs.faults_fired(), 1);
    // Both deletions before the refusal survive a power loss; the refused segment does not go.
    let lost_power = vfs.crash_image(CrashMode::PowerLoss, 0);
    let names = |v: &SimVfs| -> Vec<u64> {
        list_segments(v, dir)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let expected: Vec<u64> = before[2..].iter().map(|(n, _)| *n).collect();
    assert_eq!(names(&lost_power), expected);
    assert_eq!(w.segment_count(), before.len() - 2);
    // The next call goes on from the refused segment and leaves only the current one.
    let removed = w.remove_covered(200).expect("no fault left");
    assert_eq!(removed, before.len() - 3);
    assert_eq!(names(&vfs), vec![before[before.len() - 1].0]);
    let (frames, _) = read_all(&vfs, 200, &full(), RecoveryMode::Strict).unwrap();
    assert!(frames.is_empty());
}
