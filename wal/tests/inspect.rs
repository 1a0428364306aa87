//! `inspect`: the log frame by frame as tools see it, checked by the reader's own code, on a
//! sound log, under a wrong or missing key, with a damaged frame that later frames prove was
//! durable, and with a segment cut short.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aedb_io::sim::SimVfs;
use aedb_io::Vfs;
use aedb_wal::frame::{Check, FrameProblem};
use aedb_wal::inspect::{self, End, SegmentReport};
use aedb_wal::segment::{list_segments, read_segment, SEGMENT_HEADER_BYTES};
use aedb_wal::{scan, Integrity, RecoveryMode, WalConfig, WalWriter};

const DIR: &str = "/db/wal";
const KEY: [u8; 32] = [5; 32];

fn full() -> Integrity {
    Integrity {
        hash_chain: true,
        hmac_key: Some(KEY),
    }
}

fn payload(seq: u64) -> Vec<u8> {
    vec![seq as u8; 100 + (seq as usize * 37) % 900]
}

/// A log of `frames` frames, each synced, in 16 KiB segments.
fn log(integrity: Integrity, frames: u64) -> SimVfs {
    let vfs = SimVfs::new();
    let outcome = scan(
        &vfs,
        Path::new(DIR),
        0,
        &integrity,
        RecoveryMode::Strict,
        |_, _| Ok(()),
    )
    .expect("scan");
    let config = WalConfig {
        segment_bytes: 16 << 10,
        integrity,
    };
    let vfs_arc = Arc::new(vfs.clone()) as Arc<dyn Vfs>;
    let mut w = WalWriter::open(vfs_arc, Path::new(DIR), config, &outcome, 0).expect("writer");
    for seq in 1..=frames {
        w.append(seq, &payload(seq)).expect("append");
        w.flush(true).expect("flush");
    }
    vfs
}

fn inspect_all(vfs: &SimVfs, key: Option<[u8; 32]>) -> Vec<SegmentReport> {
    inspect::segments(vfs, Path::new(DIR), key)
        .expect("list")
        .map(|s| s.expect("read"))
        .collect()
}

fn first_segment(vfs: &SimVfs) -> PathBuf {
    list_segments(vfs, Path::new(DIR))
        .expect("list")
        .remove(0)
        .1
}

#[test]
fn a_sound_log_is_every_frame_in_order_and_verified() {
    let vfs = log(full(), 40);
    let segments = inspect_all(&vfs, Some(KEY));
    assert!(segments.len() > 1, "16 KiB segments rotate");
    let frames: Vec<_> = segments.iter().flat_map(|s| &s.frames).collect();
    assert_eq!(frames.len(), 40);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.header.lsn, i as u64 + 1);
        assert!(f.crc_ok && f.lsn_ok);
        assert_eq!((f.chain, f.hmac), (Check::Ok, Check::Ok));
        assert!(f.payload.starts_with(&payload(f.header.lsn)));
    }
    for s in &segments {
        assert!(s.header.as_ref().is_ok_and(|h| h.number == s.number));
        assert!(matches!(s.end, Some(End::Zeros { .. })), "{:?}", s.end);
        assert!(s.later.is_empty() && s.durable_evidence().is_none());
    }
    // Without the key the HMACs are unverified; under another key they fail, the chain holds.
    let keyless = inspect_all(&vfs, None);
    assert!(keyless
        .iter()
        .flat_map(|s| &s.frames)
        .all(|f| (f.chain, f.hmac) == (Check::Ok, Check::Unverified)));
    let wrong = inspect_all(&vfs, Some([6; 32]));
    assert!(wrong
        .iter()
        .flat_map(|s| &s.frames)
        .all(|f| (f.chain, f.hmac) == (Check::Ok, Check::Mismatch)));
}

#[test]
fn a_damaged_frame_ends_its_segment_and_later_frames_prove_it_durable() {
    let vfs = log(Integrity::default(), 10);
    let path = first_segment(&vfs);
    let first = 40 + payload(1).len() as u64;
    let second = 40 + payload(2).len() as u64;
    let third = SEGMENT_HEADER_BYTES + first + second;
    vfs.corrupt(&path, third + 50, &[0xEE; 4]);
    let segment = inspect_all(&vfs, None).remove(0);
    assert_eq!(segment.frames.len(), 3);
    let damaged = &segment.frames[2];
    assert_eq!((damaged.offset, damaged.crc_ok), (third, false));
    assert_eq!(
        segment.end,
        Some(End::Bad {
            offset: third,
            problem: FrameProblem::Checksum,
            lsn: Some(3),
        })
    );
    assert_eq!(segment.missing_lsn(), 3);
    let lsns: Vec<u64> = segment.later.iter().map(|l| l.header.lsn).collect();
    assert_eq!(lsns, (4..=10).collect::<Vec<_>>());
    assert_eq!(segment.durable_evidence().map(|l| l.header.lsn), Some(4));
    // Recovery agrees: the damage is corruption, not a torn tail.
    assert!(scan(
        &vfs,
        Path::new(DIR),
        0,
        &Integrity::default(),
        RecoveryMode::Strict,
        |_, _| Ok(())
    )
    .is_err());
}

#[test]
fn a_segment_cut_inside_a_frame_ends_truncated() {
    let vfs = log(Integrity::default(), 3);
    let path = first_segment(&vfs);
    let bytes = read_segment(&vfs, &path).expect("read");
    let first = 40 + payload(1).len();
    let cut = SEGMENT_HEADER_BYTES as usize + first + 20;
    let segment = inspect::inspect_segment(1, path.clone(), &bytes[..cut], None);
    assert_eq!(segment.frames.len(), 1);
    assert_eq!(
        segment.end,
        Some(End::Truncated {
            offset: SEGMENT_HEADER_BYTES + first as u64,
            lsn: None,
            needed: 40,
            available: 20,
        })
    );
    let cut = SEGMENT_HEADER_BYTES as usize + first + 60;
    let segment = inspect::inspect_segment(1, path.clone(), &bytes[..cut], None);
    assert!(matches!(
        segment.end,
        Some(End::Truncated {
            lsn: Some(2),
            available: 60,
            ..
        })
    ));
    let whole = SEGMENT_HEADER_BYTES as usize + first;
    let segment = inspect::inspect_segment(1, path, &bytes[..whole], None);
    assert_eq!(
        segment.end,
        Some(End::FileEnd {
            offset: whole as u64
        })
    );
}
