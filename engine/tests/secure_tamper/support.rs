//! What the tampering cases share: the fixtures (built once per run, copied by every case),
//! opening and reading back, and tampering with bytes and frames.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::error::CorruptionKind;
use aedb::query::plan::Query;
use aedb::query::QueryError;
use aedb::storage::io::{os_vfs, IoBackendChoice};
use aedb::wal::frame::{self, Integrity, FRAME_HEADER_BYTES, HASH_BYTES};
use aedb::wal::inspect::{self, FrameReport, SegmentReport};
use aedb::{AedbError, AedbInstance, RecoveryReport, WAL_DIR};

pub const KEY: [u8; 32] = [0x5a; 32];
pub const ROWS: i64 = 160;

pub fn config() -> AedbConfig {
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
pub fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Row `id`'s text: every fifth long enough to go to overflow pages, the rest inline.
pub fn body(id: i64) -> String {
    let len = if id % 5 == 0 { 3000 } else { 300 };
    let fill = char::from(b'a' + (id % 26) as u8);
    format!("{id:05}-{}", fill.to_string().repeat(len))
}

pub fn upsert(id: i64, text: String) -> Mutation {
    Mutation::Upsert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        primary_key: vec![Value::Integer(id)],
        row: Row::from_values(vec![Value::Integer(id), Value::Text(text)]),
    }
}

pub fn column(name: &str, col_type: ColumnType) -> ColumnDef {
    let name = name.into();
    ColumnDef {
        name,
        col_type,
        nullable: false,
    }
}

pub async fn build(dir: &Path) {
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
pub type Files = Vec<(PathBuf, Vec<u8>)>;

pub fn capture(dir: &Path) -> Files {
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
pub fn pristine() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("db");
        block(build(&dir));
        capture(&dir)
    })
}

/// A fresh copy of `files` in a directory of its own.
pub fn copy_of(files: &Files) -> (tempfile::TempDir, PathBuf) {
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
pub fn inspect_log(dir: &Path) -> Vec<SegmentReport> {
    let vfs = os_vfs(IoBackendChoice::Sync).expect("vfs");
    inspect::segments(&*vfs, &dir.join(WAL_DIR), Some(KEY))
        .expect("list segments")
        .map(|s| s.expect("segment reads"))
        .collect()
}

// ---- opening and reading back ----

/// The rows of `p.app.t` by id, each checked against what was written.
pub async fn read_rows(db: &AedbInstance) -> Result<Vec<i64>, QueryError> {
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

pub fn open(dir: &Path) -> Result<AedbInstance, AedbError> {
    AedbInstance::open(config(), dir)
}

pub fn open_err(dir: &Path) -> AedbError {
    match open(dir) {
        Ok(_) => panic!("the tampered database opened"),
        Err(err) => err,
    }
}

/// Open, read every row, shut down: the ids read and what recovery did.
pub fn open_and_read(dir: &Path) -> (Vec<i64>, RecoveryReport) {
    block(async {
        let db = open(dir).expect("open");
        let ids = read_rows(&db).await.expect("rows");
        let report = db.engine().recovery_report().clone();
        db.shutdown().await.expect("shutdown");
        (ids, report)
    })
}

pub fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).expect("name")
}

/// `text` names `segment`'s file and `offset` in it.
pub fn assert_names(text: &str, segment: &Path, offset: u64) {
    let at = format!(" at offset {offset}");
    assert!(
        text.contains(file_name(segment)) && text.contains(&at),
        "{} at offset {offset} not named: {text}",
        segment.display()
    );
}

#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// `AedbError::Corruption`: damage found by the CRC and the synced-through LSN of a later
    /// frame, a segment header that does not decode, a log that starts too late.
    Damaged,
    /// `AedbError::DataCorruption` of this log kind: a frame whose CRC holds but whose HMAC,
    /// chain or order does not.
    Check(CorruptionKind),
}

/// `err` is the expected log corruption, naming `segment`'s file and `offset`.
pub fn assert_log_error(err: &AedbError, expect: Expect, segment: &Path, offset: u64) {
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

pub const HMAC: Expect = Expect::Check(CorruptionKind::LogHmac);
pub const CHAIN: Expect = Expect::Check(CorruptionKind::LogChain);

/// The open of `dir` fails with the expected log corruption, naming `segment` and `offset`;
/// so does the production open (it recovers the same way before it checks any caller).
pub fn refused(dir: &Path, expect: Expect, segment: &Path, offset: u64) {
    assert_log_error(&open_err(dir), expect, segment, offset);
    match AedbInstance::open_production(config(), dir) {
        Ok(_) => panic!("the production open accepted the tampered log"),
        Err(err) => assert_log_error(&err, expect, segment, offset),
    }
}

// ---- tampering with bytes ----

pub fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read");
    change(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

pub fn flip(path: &Path, at: u64) {
    edit(path, |bytes| bytes[at as usize] ^= 0x01);
}

/// How a forger without the key rewrites a frame, always with a CRC that holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forgery {
    /// A payload byte changed; the chain hash redone, an HMAC under a guessed key.
    Payload,
    /// The same without an HMAC at all: a downgrade.
    PayloadWithoutHmac,
    /// The commit sequence changed; the chain hash computed from zeros.
    Header,
}

/// Rewrite frame `index` of `segment` as `forgery` says.
pub fn forge(segment: &SegmentReport, index: usize, forgery: Forgery) {
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
pub fn forged_refused(
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

pub fn mid_payload(frame: &FrameReport) -> u64 {
    FRAME_HEADER_BYTES as u64 + u64::from(frame.header.len) / 2
}

// ---- the checkpointed fixture ----

/// Rows deleted after the first checkpoint, so that the data file has a free list.
pub fn deleted(id: i64) -> bool {
    (30..90).contains(&id) && id % 3 == 0
}

pub fn kept_rows() -> Vec<i64> {
    (0..ROWS).filter(|id| !deleted(*id)).collect()
}

/// The fixture redone and checkpointed (by the open's recovery), some rows deleted, shut down
/// (checkpointed again): every row is in the data file; the log keeps only the segment of the
/// deletes, which the checkpoint covers.
pub fn checkpointed() -> &'static Files {
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
