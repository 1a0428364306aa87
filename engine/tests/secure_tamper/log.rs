//! The log: frames flipped, forged, swapped, spliced out; segments deleted or damaged; torn
//! tails; another key; and frames a checkpoint already covers.

use std::path::Path;

use aedb::wal::frame::{Check, FRAME_HEADER_BYTES};
use aedb::wal::inspect::{End, FrameReport, SegmentReport};
use aedb::AedbInstance;

use super::support::*;

// ---- the log ----

/// The untampered log: several segments, every frame verified under the key, LSNs
/// consecutive from 1.
fn log_layout(dir: &Path) -> Vec<SegmentReport> {
    let segments = inspect_log(dir);
    assert!(segments.len() >= 3, "{} segments", segments.len());
    let mut lsn = 1;
    for segment in &segments {
        assert!(
            matches!(segment.end, Some(End::Zeros { .. })),
            "{segment:?}"
        );
        assert!(segment.frames.len() >= 3, "{}", segment.path.display());
        for frame in &segment.frames {
            assert!(frame.crc_ok && frame.lsn_ok, "{frame:?}");
            assert_eq!((frame.chain, frame.hmac), (Check::Ok, Check::Ok));
            assert_eq!(frame.header.lsn, lsn);
            lsn += 1;
        }
    }
    assert!(lsn > ROWS as u64, "{} frames for {ROWS} rows", lsn - 1);
    segments
}

#[test]
fn the_untampered_copy_opens_with_every_row() {
    let (_tmp, dir) = copy_of(pristine());
    let frames: usize = log_layout(&dir).iter().map(|s| s.frames.len()).sum();
    let (ids, report) = open_and_read(&dir);
    assert_eq!(ids, (0..ROWS).collect::<Vec<_>>());
    assert_eq!(report.frames_replayed, frames as u64, "{report:?}");
    assert_eq!(report.dropped, None);
}

/// Flip one byte, `at` bytes into frame `f` of segment `s` (`pick` chooses them): its CRC
/// fails, and the next frame's synced-through LSN says it had been durable.
fn flipped_frame(pick: fn(&[SegmentReport]) -> (usize, usize), at: fn(&FrameReport) -> u64) {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    let (s, f) = pick(&segments);
    let (segment, frame) = (&segments[s], &segments[s].frames[f]);
    flip(&segment.path, frame.offset + at(frame));
    refused(&dir, Expect::Damaged, &segment.path, frame.offset);
}

#[test]
fn a_flipped_payload_byte_fails_the_open() {
    flipped_frame(
        |s| (s.len() - 1, s[s.len() - 1].frames.len() / 2),
        mid_payload,
    );
}

#[test]
fn a_flipped_header_byte_fails_the_open() {
    // The commit sequence field.
    flipped_frame(|s| (1, s[1].frames.len() / 2), |_| 16);
}

#[test]
fn a_flipped_length_byte_fails_the_open() {
    // The payload length's third byte: the frame now claims 64 KiB more than its segment holds.
    flipped_frame(|s| (1, s[1].frames.len() / 2), |_| 6);
}

#[test]
fn a_flipped_hmac_byte_fails_the_open() {
    flipped_frame(|s| (1, s[1].frames.len() / 2), |f| f.total as u64 - 1);
}

#[test]
fn a_flipped_byte_in_an_earlier_segment_fails_the_open() {
    flipped_frame(|s| (0, s[0].frames.len() / 2), mid_payload);
}

#[test]
fn a_flipped_byte_in_the_first_frame_fails_the_open() {
    flipped_frame(|_| (0, 0), |_| FRAME_HEADER_BYTES as u64);
}

#[test]
fn the_last_frame_of_a_segment_flipped_fails_the_open() {
    // The evidence that it was durable is in the next segment.
    flipped_frame(|s| (0, s[0].frames.len() - 1), mid_payload);
}

#[test]
fn a_forged_payload_with_its_crc_and_chain_redone_fails_its_hmac() {
    let middle = |s: &[SegmentReport]| (1, s[1].frames.len() / 2);
    forged_refused(pristine(), middle, Forgery::Payload, HMAC);
}

#[test]
fn a_forged_header_with_its_crc_redone_breaks_the_chain() {
    let middle = |s: &[SegmentReport]| (1, s[1].frames.len() / 2);
    forged_refused(pristine(), middle, Forgery::Header, CHAIN);
}

#[test]
fn two_frames_swapped_fail_the_open() {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    let segment = &segments[1];
    // Two frames of one length, so the swap leaves every other frame where it was.
    let (a, b) = (1..segment.frames.len())
        .find_map(|i| {
            let x = &segment.frames[i];
            let y = segment.frames[i + 1..]
                .iter()
                .find(|y| y.total == x.total)?;
            Some((x, y))
        })
        .expect("two frames of one length");
    edit(&segment.path, |bytes| {
        let (x, y) = (a.offset as usize, b.offset as usize);
        let first = bytes[x..x + a.total].to_vec();
        bytes.copy_within(y..y + b.total, x);
        bytes[y..y + b.total].copy_from_slice(&first);
    });
    // The frame now at `a`'s place carries `b`'s LSN and chain hash: the chain breaks there.
    refused(&dir, CHAIN, &segment.path, a.offset);
}

#[test]
fn a_frame_spliced_out_fails_the_open() {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    let segment = &segments[1];
    let frame = &segment.frames[segment.frames.len() / 2];
    edit(&segment.path, |bytes| {
        let at = frame.offset as usize;
        bytes.drain(at..at + frame.total);
        // The file keeps its length, as the writer's preallocation does.
        bytes.resize(bytes.len() + frame.total, 0);
    });
    refused(&dir, CHAIN, &segment.path, frame.offset);
}

#[test]
fn a_middle_segment_deleted_fails_the_open() {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    std::fs::remove_file(&segments[1].path).expect("remove");
    // The log breaks where the previous segment's frames end; the next segment proves it.
    let Some(End::Zeros { offset }) = segments[0].end else {
        panic!("{:?}", segments[0].end);
    };
    let err = open_err(&dir);
    assert_log_error(&err, Expect::Damaged, &segments[0].path, offset);
    let missing = format!(
        "frames from LSN {} are missing",
        segments[1].frames[0].header.lsn
    );
    let proof = format!("(in {})", file_name(&segments[2].path));
    assert!(err.to_string().contains(&missing), "{err}");
    assert!(err.to_string().contains(&proof), "{err}");
}

#[test]
fn the_first_segment_deleted_fails_the_open() {
    // The log then starts after what the checkpoint (the empty creation) covers.
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    std::fs::remove_file(&segments[0].path).expect("remove");
    refused(&dir, Expect::Damaged, &segments[1].path, 0);
}

#[test]
fn a_damaged_middle_segment_header_fails_the_open() {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    // The first LSN field.
    flip(&segments[1].path, 24);
    refused(&dir, Expect::Damaged, &segments[1].path, 0);
}

/// The last frame of the log damaged by `cut`, as a crash in its write can leave it: the
/// database opens with every earlier frame, and the recovery report names where the log ended.
fn torn_tail(cut: impl FnOnce(&Path, &FrameReport)) {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    let newest = segments.last().expect("segments");
    let last = newest.frames.last().expect("frames");
    cut(&newest.path, last);
    let (ids, report) = open_and_read(&dir);
    // The last frame held the last row.
    assert_eq!(ids, (0..ROWS - 1).collect::<Vec<_>>());
    let dropped = report.dropped.expect("the torn tail is reported");
    assert_names(&dropped, &newest.path, last.offset);
    // Opened again: the same rows.
    assert_eq!(open_and_read(&dir).0, (0..ROWS - 1).collect::<Vec<_>>());
}

#[test]
fn a_torn_tail_in_preallocated_space_opens_with_every_complete_frame() {
    torn_tail(|path, last| {
        let (start, end) = (last.offset as usize, last.offset as usize + last.total);
        edit(path, |bytes| bytes[start + last.total / 2..end].fill(0));
    });
}

#[test]
fn a_torn_tail_at_the_end_of_the_file_opens_with_every_complete_frame() {
    torn_tail(|path, last| {
        edit(path, |bytes| {
            bytes.truncate(last.offset as usize + last.total / 2)
        });
    });
}

#[test]
fn the_last_frame_flipped_reads_as_a_torn_tail_and_is_reported() {
    // Nothing after it says it was durable, and a torn write (a garbage sector) can leave the
    // same bytes: it is dropped, and reported. The limit of what a log alone can tell.
    torn_tail(|path, last| flip(path, last.offset + mid_payload(last)));
}

#[test]
fn the_last_frame_forged_fails_its_hmac() {
    // A CRC that holds rules out a torn write: the HMAC decides.
    forged_refused(pristine(), last_frame, Forgery::Payload, HMAC);
}

#[test]
fn the_last_frame_rewritten_without_its_hmac_fails_the_open() {
    forged_refused(pristine(), last_frame, Forgery::PayloadWithoutHmac, HMAC);
}

fn last_frame(s: &[SegmentReport]) -> (usize, usize) {
    (s.len() - 1, s[s.len() - 1].frames.len() - 1)
}

#[test]
fn another_hmac_key_fails_the_open() {
    let (_tmp, dir) = copy_of(pristine());
    let segments = log_layout(&dir);
    let first = &segments[0];
    let other = config().with_hmac_key([0xa5; 32]);
    for opened in [
        AedbInstance::open(other.clone(), &dir),
        AedbInstance::open_production(other, &dir),
    ] {
        let Err(err) = opened else {
            panic!("opened under another key")
        };
        assert_log_error(&err, HMAC, &first.path, first.frames[0].offset);
    }
}

// ---- frames a checkpoint covers ----

#[test]
fn a_flipped_frame_the_checkpoint_covers_is_refused() {
    // Redo needs none of these frames, but with authenticated frames and strict recovery the
    // log must be intact, not merely sufficient (wal/src/reader.rs, `evidence_floor`): a
    // damaged frame a later frame proves durable fails the open, naming segment and offset.
    let (_tmp, dir) = copy_of(checkpointed());
    let segments = inspect_log(&dir);
    let segment = segments.last().expect("segment");
    assert!(segment.frames.len() >= 3, "{segment:?}");
    let frame = &segment.frames[1];
    flip(&segment.path, frame.offset + mid_payload(frame));
    match open(&dir) {
        Err(err) => assert_names(&err.to_string(), &segment.path, frame.offset),
        Ok(_) => panic!("a damaged frame before the valid tail was accepted"),
    }
}

#[test]
fn a_forged_frame_the_checkpoint_covers_fails_the_open() {
    // A frame whose CRC holds and whose HMAC does not is tampering wherever it lies.
    forged_refused(checkpointed(), |s| (s.len() - 1, 1), Forgery::Payload, HMAC);
}
