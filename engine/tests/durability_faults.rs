//! Targeted tests of the durability review's findings: idempotent replays answered before the
//! original is durable (F2), failures between a commit's frame and its publication (F3), a
//! damaged header on the newest log segment (F6), damage the checkpoint covers (R6), a torn
//! creation of the data file (R3), and the answer of commits caught by a failed log (R7).

use std::ops::Bound;
use std::path::Path;

use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::storage::io::sim::{CrashMode, Fault, SimVfs};
use aedb::storage::io::{OpKind, Vfs};
use aedb::{AedbError, CommitFinality, Engine};

mod sim_support;
use sim_support::{open_sim as open_with, DIR};

fn config(mode: DurabilityMode) -> AedbConfig {
    AedbConfig {
        durability_mode: mode,
        batch_interval_ms: 3_600_000,
        batch_max_bytes: 1 << 30,
        page_size: 4096,
        buffer_pool_bytes: 16 * 4096,
        max_segment_bytes: 64 << 10,
        checkpoint_interval_ms: 0,
        checkpoint_wal_bytes: 1 << 40,
        ..AedbConfig::default()
    }
}

fn put(engine: &Engine, key: u64, len: usize, finality: CommitFinality) -> Result<u64, AedbError> {
    engine
        .commit_blocking(finality, move |txn| {
            txn.insert("kv", &key.to_be_bytes(), &vec![key as u8; len])
                .map(|_| ())
        })
        .map(|o| o.commit_seq)
}

fn keys(engine: &Engine) -> Vec<u64> {
    match engine.snapshot().tree("kv").expect("lookup") {
        None => Vec::new(),
        Some(tree) => tree
            .range(Bound::Unbounded, Bound::Unbounded, false)
            .map(|e| {
                let (k, _) = e.expect("scan");
                u64::from_be_bytes(k.try_into().expect("8-byte key"))
            })
            .collect(),
    }
}

/// Ten durable commits (checkpointed when `checkpoint`), then a power loss: the image and its
/// newest log segment, for a test to damage.
fn ten_durable_commits_then_power_loss(checkpoint: bool) -> (SimVfs, std::path::PathBuf) {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    for key in 1..=10 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    if checkpoint {
        engine.checkpoint_now().expect("checkpoint");
    }
    vfs.crash_now();
    drop(engine);
    let image = vfs.crash_image(CrashMode::PowerLoss, 0);
    let segment = newest_segment(&image);
    (image, segment)
}

fn newest_segment(vfs: &SimVfs) -> std::path::PathBuf {
    let segments =
        aedb::wal::segment::list_segments(vfs, &Path::new(DIR).join("wal")).expect("list segments");
    segments.last().expect("a segment").1.clone()
}

/// F2: a body that writes nothing (an idempotent replay) answered Durable must not return
/// before the head it read is durable — in Batch mode that head may be only visible.
#[test]
fn a_replay_answered_durable_waits_for_the_head_it_read() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Batch)).expect("open");
    let seq = put(&engine, 1, 10, CommitFinality::Visible).expect("visible commit");
    assert!(
        engine.durable_head_seq() < seq,
        "Batch leaves a Visible commit unsynced for the test to mean anything"
    );
    let replay = engine
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.discard();
            Ok(())
        })
        .expect("replay");
    assert_eq!(replay.commit_seq, 0, "a discarded body has no sequence");
    assert!(
        replay.durable_head_seq >= seq,
        "the replay claims durability of a head that is not durable"
    );
    vfs.crash_now();
    drop(engine);
    let image = vfs.crash_image(CrashMode::PowerLoss, 0);
    let engine = open_with(&image, config(DurabilityMode::Batch)).expect("recover");
    assert_eq!(keys(&engine), vec![1], "the answered-durable head survived");
}

/// Full: every commit call returns durable, the default finality included.
#[test]
fn full_mode_answers_every_commit_durable() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    for key in 1..=5 {
        let outcome = engine
            .commit_blocking(CommitFinality::Visible, move |txn| {
                txn.insert("kv", &u64::to_be_bytes(key), b"v").map(|_| ())
            })
            .expect("commit");
        assert!(outcome.durable_head_seq >= outcome.commit_seq);
    }
    // The log holds every acknowledged commit; the data file (its growth included) is made
    // durable by checkpoints, before a meta page points into it.
    assert_eq!(
        vfs.unsynced_writes_under(&Path::new(DIR).join("wal")),
        0,
        "nothing acknowledged is unsynced"
    );
    assert!(
        vfs.unsynced_writes() > 0,
        "the data file's growth waits for a checkpoint"
    );
}

/// F3: read errors inside commits (some during the catalog update that follows the body)
/// around log rotations. A failed commit leaves no frame and no LSN is handed out twice: the
/// database opens in Strict mode with exactly the acknowledged commits.
#[test]
fn failed_commits_around_rotations_leave_no_frame() {
    let mut failures = 0;
    for skip in 0..40u64 {
        let vfs = SimVfs::new();
        let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
        for key in 0..20 {
            put(&engine, key, 3000, CommitFinality::Durable).expect("warm-up commit");
        }
        vfs.inject(Fault::once(OpKind::Read, skip, libc::EIO).on_path("data.aedb"));
        let mut acked = (0..20).collect::<Vec<u64>>();
        for key in 20..60 {
            match put(&engine, key, 3000, CommitFinality::Durable) {
                Ok(_) => acked.push(key),
                Err(AedbError::Io(_) | AedbError::Corruption(_)) => failures += 1,
                Err(AedbError::Failed(_)) => break,
                Err(other) => panic!("skip {skip}: unexpected {other}"),
            }
        }
        vfs.crash_now();
        drop(engine);
        for kind in [CrashMode::ProcessCrash, CrashMode::PowerLoss] {
            let image = vfs.crash_image(kind, skip);
            let engine = open_with(&image, config(DurabilityMode::Full))
                .unwrap_or_else(|e| panic!("skip {skip} {kind:?}: strict recovery refused: {e}"));
            assert_eq!(keys(&engine), acked, "skip {skip} {kind:?}");
            assert!(engine.store().check().is_ok());
        }
    }
    assert!(failures > 0, "no injected read error ever failed a commit");
    println!("{failures} commits failed by injected read errors; every acknowledged one kept");
}

/// F6: the newest segment's header damaged while it holds frames the checkpoint does not cover:
/// Strict refuses naming the segment, Permissive opens and reports the loss.
#[test]
fn a_damaged_header_on_the_newest_segment_is_not_dropped_silently() {
    let (image, segment) = ten_durable_commits_then_power_loss(false);
    image.corrupt(&segment, 20, &[0xA5; 4]);
    match open_with(&image, config(DurabilityMode::Full)) {
        Err(AedbError::Corruption(message)) => {
            assert!(
                message.contains("wal-") && message.contains("header"),
                "{message}"
            )
        }
        Err(other) => panic!("unexpected {other}"),
        Ok(_) => panic!("strict recovery dropped a segment of acknowledged commits"),
    }
    let permissive = AedbConfig {
        recovery_mode: RecoveryMode::Permissive,
        ..config(DurabilityMode::Full)
    };
    let engine = open_with(&image, permissive).expect("permissive open");
    let dropped = engine.recovery_report().dropped.clone().expect("reported");
    assert!(dropped.contains("header"), "{dropped}");
}

/// R6: damage wholly covered by a durable checkpoint (a frame, the newest segment's header)
/// loses nothing redo needs, and Strict opens.
#[test]
fn damage_the_checkpoint_covers_does_not_refuse_the_open() {
    for target in ["frame", "header"] {
        let (image, segment) = ten_durable_commits_then_power_loss(true);
        let offset = if target == "frame" { 128 + 400 } else { 20 };
        image.corrupt(&segment, offset, &[0x5A; 8]);
        let engine = open_with(&image, config(DurabilityMode::Full))
            .unwrap_or_else(|e| panic!("{target}: strict refused covered damage: {e}"));
        assert_eq!(keys(&engine), (1..=10).collect::<Vec<_>>(), "{target}");
    }
}

/// R7: commits answered while the log fails are `Failed` with an outcome-unknown reason when
/// their frame reached the OS, and a reopen shows each either fully there or absent.
#[test]
fn commits_caught_by_a_failed_sync_say_their_outcome_is_unknown() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    put(&engine, 1, 10, CommitFinality::Durable).expect("commit");
    vfs.inject(Fault::forever(OpKind::Sync, 0, libc::EIO).on_path("wal"));
    let err = put(&engine, 2, 10, CommitFinality::Durable).expect_err("the sync fails");
    assert_eq!(vfs.faults_fired(), 1);
    match err {
        AedbError::Failed(reason) => assert!(reason.contains("unknown"), "{reason}"),
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        put(&engine, 3, 10, CommitFinality::Visible),
        Err(AedbError::Failed(_))
    ));
}

/// R3: a creation torn by a crash (length on disk, meta pages not) is created again; a damaged
/// file that ever grew is refused, not replaced.
#[test]
fn a_torn_creation_is_recreated_and_a_grown_file_is_refused() {
    use aedb::storage::io::{submit_wait, AlignedBuf, IoOp, OpenOptions};
    for (len, expect_open) in [(4096usize, true), (8192, true), (66 * 4096 + 4096, false)] {
        let vfs = SimVfs::new();
        let dir = Path::new(DIR);
        vfs.create_dir_all(dir).expect("dir");
        let file = vfs
            .open(
                &dir.join("data.aedb"),
                OpenOptions {
                    create: true,
                    ..OpenOptions::default()
                },
            )
            .expect("create");
        let mut garbage = AlignedBuf::zeroed(len);
        for (i, b) in garbage.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        for result in submit_wait(
            &*file,
            vec![IoOp::Write {
                offset: 0,
                buf: garbage,
            }],
        ) {
            result.expect("write");
        }
        match open_with(&vfs, config(DurabilityMode::Full)) {
            Ok(engine) => {
                assert!(expect_open, "a {len}-byte damaged file was replaced");
                assert_eq!(engine.visible_head_seq(), 0);
            }
            Err(AedbError::Corruption(_)) => {
                assert!(!expect_open, "a {len}-byte torn creation was refused")
            }
            Err(other) => panic!("{len}: unexpected {other}"),
        }
    }
}

/// After the latch, written is not enough: a Visible commit in Batch mode whose group's sync
/// failed is not answered Ok (its frame may be dropped from the cache without reaching disk).
#[test]
fn a_visible_commit_whose_group_sync_failed_is_not_acknowledged() {
    let vfs = SimVfs::new();
    let config = AedbConfig {
        // Every group syncs: the Visible commit's group is the one whose sync fails.
        batch_max_bytes: 1,
        ..config(DurabilityMode::Batch)
    };
    let engine = open_with(&vfs, config).expect("open");
    put(&engine, 1, 10, CommitFinality::Visible).expect("commit");
    vfs.inject(Fault::forever(OpKind::Sync, 0, libc::EIO).on_path("wal"));
    match put(&engine, 2, 10, CommitFinality::Visible) {
        Err(AedbError::Failed(reason)) => assert!(reason.contains("unknown"), "{reason}"),
        other => panic!("a commit whose sync failed was answered {other:?}"),
    }
    assert_eq!(vfs.faults_fired(), 1);
}

/// A failed log write may still have put some of its frames on disk: the commits it carried
/// are answered with an unknown outcome too, not a plain failure.
#[test]
fn commits_caught_by_a_failed_write_say_their_outcome_is_unknown() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    put(&engine, 1, 10, CommitFinality::Durable).expect("commit");
    vfs.inject(Fault::forever(OpKind::Write, 0, libc::EIO).on_path("wal"));
    match put(&engine, 2, 10, CommitFinality::Durable) {
        Err(AedbError::Failed(reason)) => assert!(reason.contains("unknown"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(vfs.faults_fired(), 1);
}

/// Two permissive opens in a row: the first drops the log at damage it cannot read past, and
/// the commits acknowledged after it (in the segment that open started at the damaged LSN)
/// must survive a power loss and the second permissive open. The second scan stopped at the
/// same damage and deleted that segment as stale.
#[test]
fn commits_after_a_permissive_open_survive_the_next_permissive_open() {
    let (image, segment) = ten_durable_commits_then_power_loss(false);
    image.corrupt(&segment, 128 + 400, &[0x5A; 8]);
    // No checkpoint after redo: it would cover the damaged segment and delete it before any
    // commit, closing the window this test is about (a large replay's open has the window).
    let permissive = AedbConfig {
        recovery_mode: RecoveryMode::Permissive,
        recovery_checkpoint_frames: u64::MAX,
        ..config(DurabilityMode::Full)
    };
    let engine = open_with(&image, permissive.clone()).expect("first permissive open");
    assert!(!engine.recovery_report().checkpointed_after_redo);
    assert!(
        engine.recovery_report().dropped.is_some(),
        "damage reported"
    );
    let kept = keys(&engine);
    assert!(
        kept.len() < 10,
        "the damage dropped part of the log: {kept:?}"
    );
    for key in 100..=110 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit after the open");
    }
    image.crash_now();
    drop(engine);
    let mut image = image.crash_image(CrashMode::PowerLoss, 1);
    for open in ["second", "third"] {
        let engine = open_with(&image, permissive.clone()).expect("permissive open");
        let mut expected = kept.clone();
        expected.extend(100..=110);
        assert_eq!(keys(&engine), expected, "{open} permissive open");
        image.crash_now();
        drop(engine);
        image = image.crash_image(CrashMode::PowerLoss, 2);
    }
}

/// Recovery's redo buffer is lent by the buffer pool (half of it), at least 64 MiB: memory
/// stays within the pool setting plus that fixed overhead, however long the log.
#[test]
fn redo_buffers_what_the_pool_lends() {
    let (image, _) = ten_durable_commits_then_power_loss(false);
    let large_pool = AedbConfig {
        buffer_pool_bytes: 512 << 20,
        ..config(DurabilityMode::Full)
    };
    let engine = open_with(&image, large_pool).expect("reopen with a large pool");
    let report = engine.recovery_report();
    assert_eq!(report.frames_replayed, 10);
    assert_eq!(report.redo_buffer_bytes, 256 << 20, "half the pool");
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
    assert_eq!(
        engine.store().pool_stats().lent_frames,
        0,
        "the pool has its frames back once open"
    );
    drop(engine);

    // 16 frames lend nothing (the pool keeps 16 usable): the fixed 64 MiB.
    let (image, _) = ten_durable_commits_then_power_loss(false);
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("reopen");
    assert_eq!(engine.recovery_report().redo_buffer_bytes, 64 << 20);
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
}

/// A failure inside redo is returned as raised, typed — here a damaged tree page met by a merge
/// that a logged drop of the tree forces mid-scan is a page-checksum error naming the page —
/// not as a malformed log record naming whichever frame was being read when the merge ran.
#[test]
fn a_failure_inside_redo_is_returned_typed_not_as_a_bad_log_record() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    for key in 1..=10 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    engine.checkpoint_now().expect("checkpoint");
    let kv_root = engine
        .snapshot()
        .tree("kv")
        .expect("lookup")
        .expect("kv")
        .record()
        .root;
    for key in 11..=20 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    // Redo merges the buffered puts into "kv" before it can drop it: inside the log scan.
    engine
        .commit_blocking(CommitFinality::Durable, |txn| {
            txn.drop_tree("kv").map(|_| ())
        })
        .expect("drop");
    vfs.crash_now();
    drop(engine);
    let image = vfs.crash_image(CrashMode::PowerLoss, 0);
    // The checkpointed root of "kv" (its only page) reads damaged.
    let data = Path::new(DIR).join(aedb::DATA_FILE);
    image.flip_bit_on_read(&data, kv_root * 4096 + 100, 0x01);
    let Err(err) = open_with(&image, config(DurabilityMode::Full)) else {
        panic!("the open recovered through damaged pages");
    };
    assert!(
        matches!(err, AedbError::DataCorruption { page: Some(page), .. } if page == kv_root),
        "expected the damaged page's own error, got {err:?}"
    );
}

fn segment_numbers(vfs: &SimVfs) -> Vec<u64> {
    aedb::wal::segment::list_segments(vfs, &Path::new(DIR).join("wal"))
        .expect("list segments")
        .into_iter()
        .map(|(number, _)| number)
        .collect()
}

/// Deleting the segments a checkpoint covers is tried once per checkpoint: a refused unlink is
/// not retried by every later group (a directory that refuses one refuses the next, and each
/// try costs the committing caller an unlink, a warning and a directory sync), and the next
/// checkpoint tries again. Commits go on meanwhile.
#[test]
fn a_refused_segment_deletion_waits_for_the_next_checkpoint() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    for key in 1..=60 {
        put(&engine, key, 4_000, CommitFinality::Durable).expect("commit");
    }
    let before = segment_numbers(&vfs);
    assert!(before.len() > 2, "64 KiB segments must rotate: {before:?}");
    vfs.inject(Fault::once(OpKind::Remove, 0, libc::EACCES).on_path("wal"));
    engine.checkpoint_now().expect("checkpoint");
    // The first group after the checkpoint tries (after its answer, holding the writer), so
    // the second commit's return means the try is over.
    for key in 61..=62 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit after a refusal");
    }
    assert_eq!(vfs.faults_fired(), 1, "the deletion was tried");
    // The fault fired once: any retry from now on would succeed and delete the segments.
    for key in 63..=70 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    assert_eq!(
        segment_numbers(&vfs),
        before,
        "no retry before the next checkpoint"
    );
    engine.checkpoint_now().expect("second checkpoint");
    for key in 71..=72 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    let after = segment_numbers(&vfs);
    assert_eq!(
        after.len(),
        1,
        "only the current segment is left: {after:?}"
    );
    assert!(after[0] >= before[before.len() - 1]);
    assert_eq!(keys(&engine), (1..=72).collect::<Vec<u64>>());
}

/// An open whose checkpoint after redo cannot delete the segments it covers, and a shutdown
/// that cannot either, both succeed: the data is safe and only space is at stake. The next
/// open without the fault replays nothing twice and loses nothing.
#[test]
fn opens_and_shutdowns_succeed_when_covered_segments_cannot_be_deleted() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    for key in 1..=60 {
        put(&engine, key, 4_000, CommitFinality::Durable).expect("commit");
    }
    vfs.crash_now();
    drop(engine);
    let image = vfs.crash_image(CrashMode::PowerLoss, 0);
    let before = segment_numbers(&image);
    assert!(before.len() > 2, "64 KiB segments must rotate: {before:?}");
    image.inject(Fault::forever(OpKind::Remove, 0, libc::EACCES).on_path("wal"));
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("open after a crash");
    assert!(engine.recovery_report().checkpointed_after_redo);
    assert!(image.faults_fired() > 0, "the open tried to delete");
    assert_eq!(segment_numbers(&image)[0], before[0], "nothing deleted");
    for key in 61..=70 {
        put(&engine, key, 100, CommitFinality::Durable).expect("commit");
    }
    engine
        .shutdown()
        .expect("a shutdown that cannot delete segments");
    image.clear_faults();
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("reopen");
    assert_eq!(keys(&engine), (1..=70).collect::<Vec<u64>>());
    engine.checkpoint_now().expect("checkpoint");
    put(&engine, 71, 100, CommitFinality::Durable).expect("commit");
    engine.shutdown().expect("shutdown");
    assert_eq!(
        segment_numbers(&image).len(),
        1,
        "the covered segments went"
    );
}

/// Open without waiting for the checkpoint after redo (`open_with` waits for it, as the sweeps
/// need), with a pool the ten commits' pages fit in (redo then writes nothing).
fn open_without_waiting(image: &SimVfs) -> Engine {
    let config = AedbConfig {
        buffer_pool_bytes: 4 << 20,
        ..config(DurabilityMode::Full)
    };
    Engine::open_with_vfs(
        config,
        Path::new(DIR),
        std::sync::Arc::new(image.clone()) as std::sync::Arc<dyn Vfs>,
    )
    .expect("open")
}

/// The checkpoint after redo runs once the open has returned: reads see what redo replayed
/// meanwhile, and its failure latches the instance (commits fail, naming it) where it used to
/// fail the open. Nothing is lost: the next open replays the log again.
#[test]
fn a_failed_checkpoint_after_redo_latches_while_reads_go_on() {
    let (image, _) = ten_durable_commits_then_power_loss(false);
    image.inject(Fault::forever(OpKind::Write, 0, libc::EIO).on_path(aedb::DATA_FILE));
    let engine = open_without_waiting(&image);
    assert!(engine.recovery_report().checkpointed_after_redo);
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
    let err = engine
        .wait_for_recovery_checkpoint()
        .expect_err("the checkpoint cannot write");
    assert!(
        matches!(&err, AedbError::Failed(reason) if reason.contains("checkpoint after recovery")),
        "{err:?}"
    );
    assert!(image.faults_fired() > 0);
    let commit = put(&engine, 11, 100, CommitFinality::Durable);
    assert!(matches!(commit, Err(AedbError::Failed(_))), "{commit:?}");
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
    // The replayed commits were never made durable by this process (what processors deliver
    // stops there), however far its log is synced.
    assert_eq!(engine.durable_head_seq(), 0);
    drop(engine);
    image.clear_faults();
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("reopen");
    assert_eq!(engine.recovery_report().frames_replayed, 10);
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
}

/// No commit goes before the checkpoint after redo: when the first one returns, the data file
/// already holds everything redo replayed (a frame only the page cache held must not end up
/// behind commits acknowledged after it). A shutdown while it is due does not wait forever.
#[test]
fn the_first_commit_after_a_replaying_open_follows_its_checkpoint() {
    let (image, _) = ten_durable_commits_then_power_loss(false);
    let engine = open_without_waiting(&image);
    let recovered = engine.recovery_report().recovered_seq;
    assert_eq!(recovered, 10);
    put(&engine, 11, 100, CommitFinality::Durable).expect("commit");
    assert!(
        engine.store().durable_meta().seq >= recovered,
        "the first commit returned before the replayed state was checkpointed"
    );
    drop(engine);

    let (image, _) = ten_durable_commits_then_power_loss(false);
    let engine = open_without_waiting(&image);
    engine
        .shutdown()
        .expect("shutdown while the checkpoint after redo is due");
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("reopen");
    assert_eq!(engine.recovery_report().frames_replayed, 0);
    assert_eq!(keys(&engine), (1..=10).collect::<Vec<u64>>());
}

/// The case the checkpoint after redo is for: a log fsync failed and lost a commit's frame
/// (Linux keeps its page in the cache, clean, and no later fsync writes it), the process died,
/// and the next one, in the same boot, replays that frame from the cache and acknowledges new
/// commits. A power loss must keep them: the checkpoint put the replayed state in the data
/// file before any of them. With the checkpoint turned off (`recovery_checkpoint_frames`), the
/// same run loses them — the log has a hole where the lost frame was.
#[test]
fn commits_after_replaying_a_frame_a_failed_fsync_lost_survive_a_power_loss() {
    for checkpoint_after_redo in [true, false] {
        let vfs = SimVfs::new();
        let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
        for key in 1..=5 {
            put(&engine, key, 100, CommitFinality::Durable).expect("commit");
        }
        vfs.inject(
            Fault::once(OpKind::Sync, 0, libc::EIO)
                .on_path("wal-")
                .losing_writes(),
        );
        assert!(
            put(&engine, 6, 100, CommitFinality::Durable).is_err(),
            "its fsync failed"
        );
        vfs.crash_now();
        drop(engine);
        let image = vfs.crash_image(CrashMode::ProcessCrash, 0);
        let config = AedbConfig {
            recovery_checkpoint_frames: if checkpoint_after_redo { 0 } else { u64::MAX },
            ..config(DurabilityMode::Full)
        };
        let engine = open_with(&image, config.clone()).expect("same-boot reopen");
        assert_eq!(
            keys(&engine),
            (1..=6).collect::<Vec<u64>>(),
            "the lost frame is replayed from the cache"
        );
        for key in 7..=8 {
            put(&engine, key, 100, CommitFinality::Durable).expect("commit after the reopen");
        }
        image.crash_now();
        drop(engine);
        let after = image.crash_image(CrashMode::PowerLoss, 0);
        let reopened = open_with(&after, config);
        if checkpoint_after_redo {
            let engine = reopened.expect("reopen after the power loss");
            assert_eq!(keys(&engine), (1..=8).collect::<Vec<u64>>());
        } else if let Ok(engine) = reopened {
            let kept = keys(&engine);
            assert!(
                !kept.contains(&8),
                "without the checkpoint the scenario should lose commits: {kept:?}"
            );
        }
    }
}

/// Replayed commits become deliverable when the checkpoint after redo is durable, and the
/// watchers of marked commits (processors) are told then, not at the next new commit.
#[test]
fn the_checkpoint_after_redo_wakes_the_watchers_of_marks() {
    let (image, _) = ten_durable_commits_then_power_loss(false);
    let engine = open_without_waiting(&image);
    let marks = engine.watch_marks();
    engine
        .wait_for_recovery_checkpoint()
        .expect("the checkpoint after redo");
    assert_eq!(engine.durable_head_seq(), 10);
    assert_eq!(*marks.borrow(), 10, "the watchers are told");
}

/// A frame altered with its CRC made to match, so that only its chain hash tells: redo, which
/// checks the chain links beside the scan, stops before it, and the scan that verifies the
/// chain itself decides as before — strict recovery refuses the log, naming the chain;
/// permissive recovery keeps the commits before it and reports the drop.
#[test]
fn a_frame_only_its_chain_hash_exposes_is_refused_or_dropped_as_before() {
    use aedb::wal::frame::{frames_within, FRAME_HEADER_BYTES};
    let (image, segment) = ten_durable_commits_then_power_loss(false);
    let bytes = image.file_bytes(&segment).expect("the segment");
    let (at, header) = frames_within(&bytes)
        .find(|(_, header)| header.lsn == 6)
        .expect("frame 6");
    let mut frame = bytes[at..at + header.total_len()].to_vec();
    frame[FRAME_HEADER_BYTES + 10] ^= 0x55;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&frame[..36]);
    crc.update(&frame[FRAME_HEADER_BYTES..]);
    frame[36..40].copy_from_slice(&crc.finalize().to_le_bytes());
    image.corrupt(&segment, at as u64, &frame);
    let Err(err) = open_with(&image, config(DurabilityMode::Full)) else {
        panic!("strict recovery opened a log whose chain breaks at frame 6");
    };
    assert!(
        matches!(
            &err,
            AedbError::DataCorruption { kind: aedb::error::CorruptionKind::LogChain, message, .. }
                if message.contains("frame LSN 6")
        ),
        "{err:?}"
    );
    let permissive = AedbConfig {
        recovery_mode: RecoveryMode::Permissive,
        ..config(DurabilityMode::Full)
    };
    let engine = open_with(&image, permissive).expect("permissive recovery");
    assert_eq!(keys(&engine), (1..=5).collect::<Vec<u64>>());
    let dropped = engine.recovery_report().dropped.clone().unwrap_or_default();
    assert!(dropped.contains("frame LSN 6"), "{dropped}");
}

/// Keys 1..=120, each to a value of 300 `round` bytes, in one durable commit: every leaf is
/// copied, so the pages the last checkpoint reached are freed.
fn rewrite_all(engine: &Engine, round: u8) {
    engine
        .commit_blocking(CommitFinality::Durable, move |txn| {
            for key in 1..=120u64 {
                txn.insert("kv", &key.to_be_bytes(), &[round; 300])?;
            }
            Ok(())
        })
        .expect("rewrite");
}

/// A checkpoint whose meta page a failed fsync lost (Linux keeps it in the cache, clean, and
/// no later fsync writes it), then a process crash: the next open, in the same boot, reads that
/// meta from the cache and builds on it (its free list hands out pages the device's older meta
/// still reaches). The open must put that meta on the device first (`make_meta_durable`: an
/// O_DIRECT read shows the device's older bytes there, so the slot is written again), so a
/// power loss right after the open finds it.
#[test]
fn a_checkpoint_meta_a_failed_fsync_lost_is_made_durable_by_the_next_open() {
    let vfs = SimVfs::new();
    let engine = open_with(&vfs, config(DurabilityMode::Full)).expect("open");
    rewrite_all(&engine, 1);
    engine.checkpoint_now().expect("checkpoint");
    let first = engine.store().durable_meta().seq;
    rewrite_all(&engine, 2);
    // A checkpoint syncs the data file twice: its pages, then its meta page.
    vfs.inject(
        Fault::once(OpKind::Sync, 1, libc::EIO)
            .on_path("data.aedb")
            .losing_writes(),
    );
    assert!(engine.checkpoint_now().is_err(), "its meta's fsync failed");
    vfs.crash_now();
    drop(engine);

    let image = vfs.crash_image(CrashMode::ProcessCrash, 0);
    let engine = open_with(&image, config(DurabilityMode::Full)).expect("same-boot reopen");
    let cached = engine.store().durable_meta();
    assert!(
        cached.seq > first,
        "the open chose the meta only the cache holds"
    );
    assert_eq!(engine.recovery_report().frames_replayed, 0);
    image.crash_now();
    drop(engine);

    let after = image.crash_image(CrashMode::PowerLoss, 0);
    let engine = open_with(&after, config(DurabilityMode::Full)).expect("reopen after power loss");
    assert_eq!(
        (
            engine.store().durable_meta().generation,
            engine.recovery_report().frames_replayed
        ),
        (cached.generation, 0),
        "the meta the last open built on is on the device"
    );
    rewrite_all(&engine, 3);
    let tree = engine.snapshot().tree("kv").expect("lookup").expect("kv");
    let values: Vec<Vec<u8>> = tree
        .range(Bound::Unbounded, Bound::Unbounded, false)
        .map(|entry| entry.expect("scan").1)
        .collect();
    assert_eq!(values, vec![vec![3u8; 300]; 120]);
}
