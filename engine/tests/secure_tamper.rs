//! Tampering with a database opened with `AedbConfig::production` (an HMAC on every log frame,
//! the hash chain, `RecoveryMode::Strict`, `DurabilityMode::Full`).
//!
//! The log: a frame altered, reordered or removed before the valid tail, or a whole segment
//! removed before the newest, fails the open with corruption naming the segment file and the
//! byte offset. A torn tail (the last frame cut short, as a crash in its write leaves it) is no
//! tampering: the database opens with every complete frame and the recovery report says where
//! the log ended. The data file: a damaged page gives a typed error naming the page, on open or
//! on the read that meets it, never a panic and never wrong rows.
//!
//! Beyond what these files can show, and asserted by no case: frames cut off at the end on a
//! frame boundary (or the newest segment deleted) look like a log that ended there, and a page
//! whose CRC a forger redid says what the forger wrote (pages carry no keyed MAC).
//!
//! One database is built per run: commits over several 64 KiB segments, left as a crash leaves
//! it (no checkpoint covers them, so recovery verifies and redoes every frame). Each case
//! tampers with a copy; a refused log is refused by `open_production` too. Frames are found with the log's inspection API (`aedb wal`'s) and pages
//! with the checker's walk (`aedb pages`'), not at fixed offsets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aedb::catalog::namespace::table_tree;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::error::CorruptionKind;
use aedb::query::plan::Query;
use aedb::query::QueryError;
use aedb::storage::io::{os_vfs, IoBackendChoice};
use aedb::wal::frame::{self, Check, Integrity, FRAME_HEADER_BYTES, HASH_BYTES};
use aedb::wal::inspect::{self, End, FrameReport, SegmentReport};
use aedb::{AedbError, AedbInstance, RecoveryReport, DATA_FILE, WAL_DIR};
use aedb_pager::btree::node::NodeRef;
use aedb_pager::check::{walk_file, Part, Visitor};
use aedb_pager::{PageStore, StoreConfig};

const KEY: [u8; 32] = [0x5a; 32];
const ROWS: i64 = 160;

fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        // The log spans several segments.
        max_segment_bytes: 64 << 10,
        // No checkpoint while the fixture is built: every frame stays in the log.
        checkpoint_wal_bytes: 1 << 40,
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::production(KEY)
    }
}

/// Async work on a runtime of its own: the fixtures are built once, by whichever test asks
/// first, and a runtime cannot be started inside another.
fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Row `id`'s text: every fifth long enough to go to overflow pages, the rest inline.
fn body(id: i64) -> String {
    let len = if id % 5 == 0 { 3000 } else { 300 };
    let fill = char::from(b'a' + (id % 26) as u8);
    format!("{id:05}-{}", fill.to_string().repeat(len))
}

fn upsert(id: i64, text: String) -> Mutation {
    Mutation::Upsert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        primary_key: vec![Value::Integer(id)],
        row: Row::from_values(vec![Value::Integer(id), Value::Text(text)]),
    }
}

fn column(name: &str, col_type: ColumnType) -> ColumnDef {
    let name = name.into();
    ColumnDef {
        name,
        col_type,
        nullable: false,
    }
}

async fn build(dir: &Path) {
    let config = config();
    assert_eq!(config.durability_mode, DurabilityMode::Full);
    assert_eq!(config.recovery_mode, RecoveryMode::Strict);
    assert!(config.hash_chain_required && config.hmac_key == Some(KEY));
    let db = AedbInstance::open(config, dir).expect("open");
    db.create_project("p").await.expect("project");
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![
            column("id", ColumnType::Integer),
            column("body", ColumnType::Text),
        ],
        primary_key: vec!["id".into()],
    }))
    .await
    .expect("table");
    for id in 0..ROWS {
        db.commit(upsert(id, body(id))).await.expect("row");
    }
    // Shutting down, or dropping the instance, would checkpoint and delete the covered
    // segments: left as a crash leaves it, every frame is in the log for recovery to verify.
    std::mem::forget(db);
}

/// The files of a database directory, relative path and bytes.
type Files = Vec<(PathBuf, Vec<u8>)>;

fn capture(dir: &Path) -> Files {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside").to_path_buf();
                out.push((relative, std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// The fixture's files: built once per run, copied by every case.
fn pristine() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("db");
        block(build(&dir));
        capture(&dir)
    })
}

/// A fresh copy of `files` in a directory of its own.
fn copy_of(files: &Files) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    for (relative, bytes) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
    }
    (tmp, dir)
}

/// Every segment of the log, as the inspection API reads it under the key.
fn inspect_log(dir: &Path) -> Vec<SegmentReport> {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("vfs");
    inspect::segments(&*vfs, &dir.join(WAL_DIR), Some(KEY))
        .expect("list segments")
        .map(|s| s.expect("segment reads"))
        .collect()
}

// ---- opening and reading back ----

/// The rows of `p.app.t` by id, each checked against what was written.
async fn read_rows(db: &AedbInstance) -> Result<Vec<i64>, QueryError> {
    let query = Query::select(&["*"]).from("t").limit(ROWS as usize + 10);
    let result = db.query("p", "app", query).await?;
    assert!(!result.truncated, "one page holds every row");
    let mut ids = Vec::new();
    for row in &result.rows {
        match row.values.as_slice() {
            [Value::Integer(id), Value::Text(text)] => {
                assert_eq!(text, &body(*id), "row {id} reads back as written");
                ids.push(*id);
            }
            other => panic!("unexpected row {other:?}"),
        }
    }
    Ok(ids)
}

fn open(dir: &Path) -> Result<AedbInstance, AedbError> {
    AedbInstance::open(config(), dir)
}

fn open_err(dir: &Path) -> AedbError {
    match open(dir) {
        Ok(_) => panic!("the tampered database opened"),
        Err(err) => err,
    }
}

/// Open, read every row, shut down: the ids read and what recovery did.
fn open_and_read(dir: &Path) -> (Vec<i64>, RecoveryReport) {
    block(async {
        let db = open(dir).expect("open");
        let ids = read_rows(&db).await.expect("rows");
        let report = db.engine().recovery_report().clone();
        db.shutdown().await.expect("shutdown");
        (ids, report)
    })
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).expect("name")
}

/// `text` names `segment`'s file and `offset` in it.
fn assert_names(text: &str, segment: &Path, offset: u64) {
    let at = format!(" at offset {offset}");
    assert!(
        text.contains(file_name(segment)) && text.contains(&at),
        "{} at offset {offset} not named: {text}",
        segment.display()
    );
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `AedbError::Corruption`: damage found by the CRC and the synced-through LSN of a later
    /// frame, a segment header that does not decode, a log that starts too late.
    Damaged,
    /// `AedbError::DataCorruption` of this log kind: a frame whose CRC holds but whose HMAC,
    /// chain or order does not.
    Check(CorruptionKind),
}

/// `err` is the expected log corruption, naming `segment`'s file and `offset`.
fn assert_log_error(err: &AedbError, expect: Expect, segment: &Path, offset: u64) {
    let expected = match expect {
        Expect::Damaged => matches!(err, AedbError::Corruption(_)),
        Expect::Check(kind) => matches!(
            err,
            AedbError::DataCorruption { page: None, kind: k, .. } if *k == kind
        ),
    };
    assert!(expected, "expected {expect:?}, got {err:?}");
    assert_names(&err.to_string(), segment, offset);
    assert_eq!(err.code_str(), "corruption");
}

const HMAC: Expect = Expect::Check(CorruptionKind::LogHmac);
const CHAIN: Expect = Expect::Check(CorruptionKind::LogChain);

/// The open of `dir` fails with the expected log corruption, naming `segment` and `offset`;
/// so does the production open (it recovers the same way before it checks any caller).
fn refused(dir: &Path, expect: Expect, segment: &Path, offset: u64) {
    assert_log_error(&open_err(dir), expect, segment, offset);
    match AedbInstance::open_production(config(), dir) {
        Ok(_) => panic!("the production open accepted the tampered log"),
        Err(err) => assert_log_error(&err, expect, segment, offset),
    }
}

// ---- tampering with bytes ----

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read");
    change(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

fn flip(path: &Path, at: u64) {
    edit(path, |bytes| bytes[at as usize] ^= 0x01);
}

/// How a forger without the key rewrites a frame, always with a CRC that holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Forgery {
    /// A payload byte changed; the chain hash redone, an HMAC under a guessed key.
    Payload,
    /// The same without an HMAC at all: a downgrade.
    PayloadWithoutHmac,
    /// The commit sequence changed; the chain hash computed from zeros.
    Header,
}

/// Rewrite frame `index` of `segment` as `forgery` says.
fn forge(segment: &SegmentReport, index: usize, forgery: Forgery) {
    let report = &segment.frames[index];
    let (mut header, mut payload) = (report.header, report.payload.clone());
    match forgery {
        Forgery::Header => header.seq += 1000,
        _ => payload[report.payload.len() / 2] ^= 0x01,
    }
    let protection = Integrity {
        hash_chain: true,
        hmac_key: (forgery != Forgery::PayloadWithoutHmac).then_some([0x11; 32]),
    };
    edit(&segment.path, |bytes| {
        let mut prev = [0u8; 32];
        if forgery != Forgery::Header {
            prev.copy_from_slice(&match index.checked_sub(1) {
                // The chain hash follows the previous frame's payload.
                Some(i) => {
                    let before = &segment.frames[i];
                    let at =
                        before.offset as usize + FRAME_HEADER_BYTES + before.header.len as usize;
                    bytes[at..at + HASH_BYTES].to_vec()
                }
                // The segment header holds the chain value before its first frame.
                None => bytes[32..64].to_vec(),
            });
        }
        let mut forged = Vec::new();
        frame::encode(&mut forged, header, &payload, &protection, &prev);
        // Frames after it stay where they are; a shorter last frame leaves zeros behind it.
        let last = index + 1 == segment.frames.len();
        assert!(forged.len() == report.total || last && forged.len() < report.total);
        let at = report.offset as usize;
        bytes[at..at + report.total].fill(0);
        bytes[at..at + forged.len()].copy_from_slice(&forged);
    });
}

/// Forge the frame `pick` chooses in a copy of `files`: its CRC holds (no torn write), and
/// the open is refused with `expect`, naming that frame.
fn forged_refused(
    files: &Files,
    pick: fn(&[SegmentReport]) -> (usize, usize),
    forgery: Forgery,
    expect: Expect,
) {
    let (_tmp, dir) = copy_of(files);
    let segments = inspect_log(&dir);
    let (s, f) = pick(&segments);
    forge(&segments[s], f, forgery);
    let forged = &inspect_log(&dir)[s].frames[f];
    assert!(forged.crc_ok, "{forged:?}");
    refused(
        &dir,
        expect,
        &segments[s].path,
        segments[s].frames[f].offset,
    );
}

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

fn mid_payload(frame: &FrameReport) -> u64 {
    FRAME_HEADER_BYTES as u64 + u64::from(frame.header.len) / 2
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

// ---- the data file ----

/// Rows deleted after the first checkpoint, so that the data file has a free list.
fn deleted(id: i64) -> bool {
    (30..90).contains(&id) && id % 3 == 0
}

fn kept_rows() -> Vec<i64> {
    (0..ROWS).filter(|id| !deleted(*id)).collect()
}

/// The fixture redone and checkpointed (by the open's recovery), some rows deleted, shut down
/// (checkpointed again): every row is in the data file; the log keeps only the segment of the
/// deletes, which the checkpoint covers.
fn checkpointed() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let (_tmp, dir) = copy_of(pristine());
        block(async {
            let db = open(&dir).expect("open");
            for id in (0..ROWS).filter(|id| deleted(*id)) {
                db.commit(Mutation::Delete {
                    project_id: "p".into(),
                    scope_id: "app".into(),
                    table_name: "t".into(),
                    primary_key: vec![Value::Integer(id)],
                })
                .await
                .expect("delete");
            }
            db.shutdown().await.expect("shutdown");
        });
        capture(&dir)
    })
}

/// The pages of one tree, as the checker's walk meets them.
#[derive(Debug, Default)]
struct TreePages {
    root: u64,
    branches: Vec<u64>,
    leaves: Vec<u64>,
    overflow: Vec<u64>,
}

/// The data file's pages by role.
#[derive(Debug, Default)]
struct Layout {
    current: String,
    trees: BTreeMap<String, TreePages>,
    freelist: Vec<u64>,
    free: Vec<u64>,
    /// The slot of the newest meta page.
    meta_slot: u64,
    page_size: u64,
}

impl Visitor for Layout {
    fn enter(&mut self, part: Part<'_>) {
        self.current.clear();
        if let Part::Tree { name, record } = part {
            self.current = name.to_string();
            self.trees.entry(name.to_string()).or_default().root = record.root;
        }
    }

    fn page(&mut self, id: u64, what: &'static str) {
        match what {
            "free-list" => self.freelist.push(id),
            "free" => self.free.push(id),
            _ => {}
        }
    }

    fn node(&mut self, node: &NodeRef<'_>, _used: usize) {
        let tree = self.trees.entry(self.current.clone()).or_default();
        match node.is_leaf() {
            true => tree.leaves.push(node.id()),
            false => tree.branches.push(node.id()),
        }
    }

    fn overflow(&mut self, id: u64, _used: u64) {
        let tree = self.trees.entry(self.current.clone()).or_default();
        tree.overflow.push(id);
    }
}

/// Walk the data file of `dir` with the checker (which must find nothing wrong).
fn layout(dir: &Path) -> Layout {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("vfs");
    let store_config = StoreConfig {
        page_size: config().page_size,
        buffer_pool_bytes: 1 << 20,
        direct_io: false,
    };
    let store = PageStore::open_read_only(vfs, &dir.join(DATA_FILE), &store_config).expect("store");
    let meta = store.durable_meta();
    let mut layout = Layout {
        meta_slot: meta.slot(),
        page_size: u64::from(meta.page_size),
        ..Layout::default()
    };
    let report = walk_file(store.pool(), &meta, &mut layout);
    assert!(report.is_ok(), "{:?}", report.violations);
    assert!(!layout.freelist.is_empty() && !layout.free.is_empty());
    layout
}

/// The table's tree in `layout` (its name from the catalog).
fn table_pages<'a>(dir: &Path, layout: &'a Layout) -> &'a TreePages {
    let id = block(async {
        let db = AedbInstance::open_read_only(config(), dir).expect("open");
        let schema = db.describe_table("p", "app", "t").await;
        schema.expect("schema").table_id
    });
    let table = &layout.trees[&table_tree(id)];
    let two_levels = table.branches == [table.root];
    assert!(two_levels && !table.overflow.is_empty(), "{table:?}");
    table
}

/// Flip one byte in the middle of `page` of the data file.
fn flip_page(dir: &Path, layout: &Layout, page: u64) {
    let size = layout.page_size;
    flip(&dir.join(DATA_FILE), page * size + size / 2);
}

/// What opening and reading every row gives: the error of the open, else of the read, else
/// the rows.
#[derive(Debug)]
enum Outcome {
    OpenFails(AedbError),
    ReadFails(QueryError),
    Rows(Vec<i64>),
}

fn outcome(dir: &Path) -> Outcome {
    block(async {
        let db = match open(dir) {
            Ok(db) => db,
            Err(err) => return Outcome::OpenFails(err),
        };
        match read_rows(&db).await {
            Ok(ids) => Outcome::Rows(ids),
            Err(err) => Outcome::ReadFails(err),
        }
    })
}

/// `outcome` is corruption of `page` found by `kind`, at the open (`at_open`) or at the read.
fn assert_page_error(outcome: &Outcome, at_open: bool, page: u64, kind: CorruptionKind) {
    let (found, message) = match (outcome, at_open) {
        (Outcome::ReadFails(e @ QueryError::Corruption { page, kind, .. }), false) => {
            ((*page, *kind), e.to_string())
        }
        (Outcome::OpenFails(e @ AedbError::DataCorruption { page, kind, .. }), true) => {
            ((*page, *kind), e.to_string())
        }
        (other, _) => panic!("expected {kind:?} of page {page}, got {other:?}"),
    };
    assert_eq!(found, (Some(page), kind), "{message}");
    assert!(message.contains(&format!("page {page}")), "{message}");
}

/// Flip a byte of the page `pick` chooses in a copy of the checkpointed fixture: the read of
/// the rows meets it and fails naming it (opening reads none of these pages).
fn read_meets(pick: impl Fn(&Layout, &TreePages) -> u64) {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = pick(&layout, table_pages(&dir, &layout));
    flip_page(&dir, &layout, page);
    assert_page_error(&outcome(&dir), false, page, CorruptionKind::Checksum);
}

#[test]
fn a_damaged_leaf_fails_the_read_naming_it() {
    read_meets(|_, table| table.leaves[table.leaves.len() / 2]);
}

#[test]
fn a_damaged_branch_fails_the_read_naming_it() {
    read_meets(|_, table| table.root);
}

#[test]
fn a_damaged_overflow_page_fails_the_read_naming_it() {
    read_meets(|_, table| table.overflow[table.overflow.len() / 2]);
}

#[test]
fn a_damaged_tree_of_trees_fails_the_read_naming_it() {
    read_meets(|layout, _| layout.trees["(tree of trees)"].root);
}

#[test]
fn a_damaged_catalog_page_fails_the_read_naming_it() {
    read_meets(|layout, _| layout.trees["sys:catalog"].root);
}

#[test]
fn a_damaged_free_list_page_fails_the_open_naming_it() {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.freelist[0]);
    let page = layout.freelist[0];
    assert_page_error(&outcome(&dir), true, page, CorruptionKind::Checksum);
}

#[test]
fn a_damaged_free_page_changes_nothing() {
    // No version reaches it; its next user writes it whole.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.free[0]);
    assert!(matches!(outcome(&dir), Outcome::Rows(ids) if ids == kept_rows()));
}

#[test]
fn a_leaf_resealed_with_a_wrong_cell_count_is_malformed() {
    // Pages carry a CRC, no keyed MAC: a forger can redo it. What no longer decodes is still
    // refused, naming the page, without a panic.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = table_pages(&dir, &layout).leaves[0];
    edit(&dir.join(DATA_FILE), |bytes| {
        let size = layout.page_size as usize;
        let bytes = &mut bytes[page as usize * size..][..size];
        bytes[24..26].copy_from_slice(&u16::MAX.to_le_bytes());
        aedb_pager::page::seal(bytes);
    });
    assert_page_error(&outcome(&dir), false, page, CorruptionKind::Malformed);
}

#[test]
fn a_damaged_page_that_redo_reads_fails_the_open_naming_it() {
    // A commit after the checkpoint is in the log only; redoing it reads the damaged leaf.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    let page = table_pages(&dir, &layout).leaves[0];
    block(async {
        let db = open(&dir).expect("open");
        db.commit(upsert(1, body(1))).await.expect("update");
        std::mem::forget(db);
    });
    // The crashed instance keeps its directory locked: recover a copy.
    let (_crashed, dir) = copy_of(&capture(&dir));
    flip_page(&dir, &layout, page);
    assert_page_error(&outcome(&dir), true, page, CorruptionKind::Checksum);
}

#[test]
fn both_meta_pages_damaged_fail_the_open_naming_the_file() {
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, 0);
    flip_page(&dir, &layout, 1);
    match outcome(&dir) {
        Outcome::OpenFails(AedbError::Corruption(message)) => {
            assert!(message.contains(DATA_FILE), "{message}");
            assert!(message.contains("meta page 0") && message.contains("meta page 1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_newest_meta_page_damaged_falls_back_and_the_log_heals_it() {
    // The older meta page names the checkpoint of the open that deleted rows, and the log
    // (its newest segment is never deleted) still holds the deletes: redone on the older
    // checkpoint, whose pages nothing reused, they give every row as it was.
    let (_tmp, dir) = copy_of(checkpointed());
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.meta_slot);
    let (ids, report) = open_and_read(&dir);
    assert_eq!(ids, kept_rows());
    let deletes = (0..ROWS).filter(|id| deleted(*id)).count() as u64;
    assert_eq!(report.frames_replayed, deletes, "{report:?}");
}

#[test]
fn the_newest_meta_page_damaged_after_reuse_fails_the_open() {
    // Pages only the older checkpoint reaches are reused once the newer one is durable, and a
    // small pool writes them back before any checkpoint. Falling back to the older checkpoint
    // then meets a page that holds something else: a typed error naming it, not old rows.
    let (_tmp, dir) = copy_of(checkpointed());
    let small = AedbConfig {
        buffer_pool_bytes: 48 << 12,
        max_segment_bytes: 4 << 20,
        ..config()
    };
    block(async {
        let db = AedbInstance::open(small.clone(), &dir).expect("open");
        let rows = (0..ROWS).filter(|id| !deleted(*id));
        for id in rows.clone() {
            let update = upsert(id, format!("first {id}"));
            db.commit(update).await.expect("update");
        }
        db.checkpoint_now().await.expect("checkpoint");
        for id in rows {
            let update = upsert(id, format!("second {id}"));
            db.commit(update).await.expect("update");
        }
        std::mem::forget(db);
    });
    let (_crashed, dir) = copy_of(&capture(&dir));
    let layout = layout(&dir);
    flip_page(&dir, &layout, layout.meta_slot);
    match AedbInstance::open(small, &dir) {
        Err(AedbError::DataCorruption { page: Some(_), .. }) => {}
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("opened on the older checkpoint"),
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
