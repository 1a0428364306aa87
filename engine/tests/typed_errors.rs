//! Errors stay typed across layers: damage to a page of the data file reaches the caller as
//! corruption naming the page, on reads (`QueryError::Corruption`) and writes
//! (`AedbError::DataCorruption`) alike; a log that fails its HMAC check is corruption of kind
//! `LogHmac`; and every conversion between the layers' errors keeps corruption, I/O and the
//! scan bound typed, both ways.

use std::path::Path;

use aedb::catalog::namespace::table_tree;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::error::CorruptionKind;
use aedb::query::plan::{ConsistencyMode, Query};
use aedb::query::QueryError;
use aedb::storage::io::{IoError, IoErrorKind, OpKind};
use aedb::storage::page::PageType;
use aedb::storage::PagerError;
use aedb::wal::frame::FrameProblem;
use aedb::wal::WalError;
use aedb::{AedbError, AedbInstance, CommitFinality};

fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    }
}

fn insert(id: i64) -> Mutation {
    Mutation::Insert {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        primary_key: vec![Value::Integer(id)],
        row: Row::from_values(vec![Value::Integer(id), Value::Text(format!("row {id}"))]),
    }
}

/// A table `p/app/t` of 20 rows, shut down cleanly (everything checkpointed); returns the page
/// its tree's root is on (a leaf: 20 small rows fit in one page).
async fn build(dir: &Path) -> u64 {
    let db = AedbInstance::open(config(), dir).expect("open");
    db.create_project("p").await.expect("project");
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "id".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
            ColumnDef {
                name: "name".into(),
                col_type: ColumnType::Text,
                nullable: false,
            },
        ],
        primary_key: vec!["id".into()],
    }))
    .await
    .expect("table");
    for id in 0..20 {
        db.commit(insert(id)).await.expect("row");
    }
    db.shutdown().await.expect("shutdown");
    // The root as the data file holds it after the checkpoint of the shutdown.
    let db = AedbInstance::open(config(), dir).expect("reopen");
    let schema = db.describe_table("p", "app", "t").await.expect("schema");
    let root = db
        .engine()
        .snapshot()
        .tree(&table_tree(schema.table_id))
        .expect("tree")
        .expect("the table has a tree")
        .record()
        .root;
    db.shutdown().await.expect("shutdown");
    assert!(root >= 2, "page {root} is a meta page");
    root
}

/// Flip 16 bytes in the middle of `page` of the data file.
fn damage(dir: &Path, page: u64) {
    let path = dir.join(aedb::DATA_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    let size = config().page_size as usize;
    let middle = page as usize * size + size / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xFF;
    }
    std::fs::write(&path, bytes).expect("write");
}

#[tokio::test]
async fn a_damaged_page_is_corruption_naming_it_on_reads_and_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let page = build(&dir).await;
    damage(&dir, page);
    let db = AedbInstance::open(config(), &dir).expect("opening reads no table page");

    // A read of the page.
    let err = db
        .query("p", "app", Query::select(&["*"]).from("t").limit(50))
        .await
        .expect_err("the table's only page is damaged");
    match &err {
        QueryError::Corruption {
            page: Some(p),
            kind: CorruptionKind::Checksum,
            message,
        } => {
            assert_eq!(*p, page);
            assert!(message.contains(&format!("page {page}")), "{message}");
        }
        other => panic!("expected corruption of page {page}, got {other:?}"),
    }
    assert_eq!(err.code_str(), "corruption");
    assert_eq!(err.corrupt_page(), Some(page));
    assert!(err.to_string().starts_with("data corruption: "), "{err}");

    // A point lookup reads it too.
    let err = db
        .query(
            "p",
            "app",
            Query::select(&["*"])
                .from("t")
                .where_(aedb::catalog::expr::col("id").eq(Value::Integer(3))),
        )
        .await
        .expect_err("damaged");
    assert_eq!(err.corrupt_page(), Some(page), "{err:?}");

    // A write that descends to it.
    let err = db
        .commit_with_finality(insert(1000), CommitFinality::Durable)
        .await
        .expect_err("the insert reads the damaged page");
    match &err {
        AedbError::DataCorruption {
            page: Some(p),
            kind: CorruptionKind::Checksum,
            message,
        } => {
            assert_eq!(*p, page);
            assert!(message.contains(&format!("page {page}")), "{message}");
        }
        other => panic!("expected corruption of page {page}, got {other:?}"),
    }
    assert_eq!(err.code_str(), "corruption");
    assert!(err.is_corruption());
    assert_eq!(err.corrupt_page(), Some(page));
    assert_eq!(err.corruption_kind(), Some(CorruptionKind::Checksum));

    // A predicate write: it finds its rows through the query layer, so the damage passes
    // PagerError -> QueryError -> AedbError and stays the same corruption.
    let err = db
        .commit(Mutation::DeleteWhere {
            project_id: "p".into(),
            scope_id: "app".into(),
            table_name: "t".into(),
            predicate: aedb::catalog::expr::col("id").gte(Value::Integer(0)),
            limit: None,
        })
        .await
        .expect_err("the delete reads the damaged page");
    assert!(
        matches!(
            &err,
            AedbError::DataCorruption {
                page: Some(p),
                kind: CorruptionKind::Checksum,
                ..
            } if *p == page
        ),
        "{err:?}"
    );

    // Nothing of the failed writes was applied; the instance still works elsewhere.
    db.create_project("q").await.expect("an unrelated write");
    db.shutdown().await.expect("shutdown");
}

/// A log written under an HMAC key, left to recovery (no checkpoint after the commit).
async fn log_under_key(dir: &Path) {
    let db = AedbInstance::open(
        AedbConfig {
            hmac_key: Some([7; 32]),
            ..config()
        },
        dir,
    )
    .expect("open");
    db.create_project("p").await.expect("project");
    db.commit_with_finality(
        Mutation::KvSet {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        },
        CommitFinality::Durable,
    )
    .await
    .expect("kv");
    // No shutdown: the frames after the checkpoint must be verified to be redone.
    std::mem::forget(db);
}

#[tokio::test]
async fn a_log_that_fails_its_hmac_check_is_typed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    log_under_key(&dir).await;
    let with_key = |key| AedbConfig {
        hmac_key: key,
        ..config()
    };
    for key in [Some([8; 32]), None] {
        let err = match AedbInstance::open_read_only(with_key(key), &dir) {
            Err(err) => err,
            Ok(_) => panic!("opened with key {key:?}"),
        };
        match &err {
            AedbError::DataCorruption {
                page: None,
                kind: CorruptionKind::LogHmac,
                message,
            } => assert!(message.contains("wal"), "{message}"),
            other => panic!("key {key:?}: expected a log HMAC failure, got {other:?}"),
        }
        assert_eq!(err.code_str(), "corruption");
        assert_eq!(err.corruption_kind(), Some(CorruptionKind::LogHmac));
    }
    let db = AedbInstance::open_read_only(with_key(Some([7; 32])), &dir).expect("the right key");
    let entry = db
        .kv_get_no_auth("p", "app", b"k", ConsistencyMode::AtLatest)
        .await
        .expect("get");
    assert_eq!(entry.map(|e| e.value), Some(b"v".to_vec()));
}

// ---- each conversion ----

fn checksum(page: u64) -> PagerError {
    PagerError::Checksum {
        page,
        stored: 0xdead_beef,
        computed: 0x1234_5678,
    }
}

fn page_errors() -> Vec<(PagerError, CorruptionKind)> {
    vec![
        (checksum(9), CorruptionKind::Checksum),
        (
            PagerError::WrongPageType {
                page: 9,
                expected: PageType::Branch,
                found: 3,
            },
            CorruptionKind::WrongPageType,
        ),
        (
            PagerError::corrupt(9, "slot out of bounds"),
            CorruptionKind::Malformed,
        ),
    ]
}

#[test]
fn pager_to_aedb() {
    for (err, kind) in page_errors() {
        let text = err.to_string();
        let e = AedbError::from(err);
        match &e {
            AedbError::DataCorruption {
                page: Some(9),
                kind: k,
                message,
            } => {
                assert_eq!(*k, kind);
                assert_eq!(message, &text);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.code_str(), "corruption");
        // The text is what it was before the variant carried the page.
        assert_eq!(e.to_string(), format!("data corruption: {text}"));
    }
    let meta = PagerError::NoValidMeta {
        path: "db/data.aedb".into(),
        reason: "zeros".into(),
    };
    let text = meta.to_string();
    assert!(matches!(AedbError::from(meta), AedbError::Corruption(m) if m == text));
    let io = IoError::os(OpKind::Read, 40960, 5);
    match AedbError::from(PagerError::Io(io.clone())) {
        AedbError::Io(message) => {
            assert_eq!(message, io.to_string());
            assert!(message.contains("Read at offset 40960"), "{message}");
            assert!(message.contains("Os(5)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pager_to_query() {
    for (err, kind) in page_errors() {
        let text = err.to_string();
        let q = QueryError::from(err);
        assert_eq!(
            q,
            QueryError::Corruption {
                page: Some(9),
                kind,
                message: text,
            }
        );
        assert_eq!(q.code_str(), "corruption");
    }
    let io = IoError::new(OpKind::Read, 4096, IoErrorKind::Short, "short read");
    let q = QueryError::from(PagerError::Io(io.clone()));
    assert_eq!(
        q,
        QueryError::Io {
            op: Some(OpKind::Read),
            kind: Some(IoErrorKind::Short),
            message: io.to_string(),
        }
    );
    assert_eq!(q.code_str(), "io");
    let q = QueryError::from(PagerError::NoValidMeta {
        path: "db/data.aedb".into(),
        reason: "zeros".into(),
    });
    assert_eq!(q.code_str(), "corruption");
    assert_eq!(q.corrupt_page(), None);
}

fn wal_corrupt(reason: String) -> WalError {
    WalError::Corrupt {
        segment: "db/wal/wal-0000000000000001".into(),
        offset: 4096,
        reason,
    }
}

#[test]
fn wal_to_aedb() {
    // The reasons as wal/src/reader.rs words them.
    let verification =
        |p: FrameProblem| wal_corrupt(format!("frame LSN 3 fails verification: {p:?}"));
    let cases = [
        (
            verification(FrameProblem::HmacMismatch),
            CorruptionKind::LogHmac,
        ),
        (
            verification(FrameProblem::Protection(
                "frame carries an HMAC and no key is configured".into(),
            )),
            CorruptionKind::LogHmac,
        ),
        (
            verification(FrameProblem::Protection(
                "frame has no HMAC but a key is configured".into(),
            )),
            CorruptionKind::LogHmac,
        ),
        (
            verification(FrameProblem::ChainMismatch),
            CorruptionKind::LogChain,
        ),
        (
            verification(FrameProblem::Protection(
                "frame has no chain hash but the configuration requires one".into(),
            )),
            CorruptionKind::LogChain,
        ),
        (
            wal_corrupt("segment header breaks the hash chain".into()),
            CorruptionKind::LogChain,
        ),
        (
            verification(FrameProblem::Protection("LSN 5 where 3 was due".into())),
            CorruptionKind::LogOrder,
        ),
        (WalError::MissingKey, CorruptionKind::LogHmac),
    ];
    for (err, kind) in cases {
        let text = err.to_string();
        match AedbError::from(err) {
            AedbError::DataCorruption {
                page: None,
                kind: k,
                message,
            } => {
                assert_eq!(k, kind, "{text}");
                assert_eq!(message, text);
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    // Other damage to the log stays text, as callers match it.
    let torn = wal_corrupt(
        "frame LSN 4 is damaged (Checksum) but LSN 6 written later says it was durable".into(),
    );
    let text = torn.to_string();
    assert!(matches!(AedbError::from(torn), AedbError::Corruption(m) if m == text));
    let io = IoError::os(OpKind::Sync, 0, 28);
    assert!(
        matches!(AedbError::from(WalError::Io(io.clone())), AedbError::Io(m) if m == io.to_string())
    );
    assert!(matches!(
        AedbError::from(WalError::FrameTooLarge { len: 10, max: 5 }),
        AedbError::TransactionTooLarge { len: 10, max: 5 }
    ));
}

#[test]
fn aedb_to_query_and_back() {
    let typed = [
        AedbError::DataCorruption {
            page: Some(12),
            kind: CorruptionKind::Checksum,
            message: checksum(12).to_string(),
        },
        AedbError::DataCorruption {
            page: None,
            kind: CorruptionKind::LogHmac,
            message: "WAL corrupt in x at offset 0: frame LSN 1 fails verification: HmacMismatch"
                .into(),
        },
        AedbError::Corruption("row of 3 bytes".into()),
        AedbError::Io("Read at offset 0 failed: Os(5): Input/output error".into()),
        AedbError::ScanBoundExceeded {
            estimated_rows: 10_001,
            max_scan_rows: 10_000,
        },
    ];
    for err in typed {
        let code = err.code_str();
        let text = err.to_string();
        let q = QueryError::from(err.clone());
        assert_eq!(q.code_str(), code, "{err:?} -> {q:?}");
        assert_eq!(q.to_string(), text, "{err:?} -> {q:?}");
        assert_eq!(q.corrupt_page(), err.corrupt_page());
        let back = AedbError::from(q.clone());
        assert_eq!(format!("{back:?}"), format!("{err:?}"), "via {q:?}");
    }
    assert_eq!(
        QueryError::from(AedbError::Corruption("row of 3 bytes".into())),
        QueryError::Corruption {
            page: None,
            kind: CorruptionKind::Other,
            message: "row of 3 bytes".into(),
        }
    );
    assert_eq!(
        QueryError::from(AedbError::Io("disk gone".into())),
        QueryError::Io {
            op: None,
            kind: None,
            message: "disk gone".into(),
        }
    );
    // Unchanged: validation is an invalid query, the rest internal.
    assert!(matches!(
        QueryError::from(AedbError::Validation("bad".into())),
        QueryError::InvalidQuery { reason } if reason == "bad"
    ));
    assert_eq!(QueryError::from(AedbError::Closed).code_str(), "internal");
}

#[test]
fn query_to_aedb_and_back() {
    let typed = [
        QueryError::Corruption {
            page: Some(4),
            kind: CorruptionKind::WrongPageType,
            message: "page 4: expected a Leaf page, found type byte 2".into(),
        },
        QueryError::Corruption {
            page: None,
            kind: CorruptionKind::LogChain,
            message: "segment header breaks the hash chain".into(),
        },
        QueryError::corruption("catalog entry does not decode"),
        QueryError::ScanBoundExceeded {
            estimated_rows: 50_000,
            max_scan_rows: 10_000,
        },
        QueryError::Io {
            op: None,
            kind: None,
            message: "Read at offset 0 failed: Os(5): Input/output error".into(),
        },
    ];
    for q in typed {
        let e = AedbError::from(q.clone());
        assert_eq!(e.code_str(), q.code_str(), "{q:?} -> {e:?}");
        assert_eq!(e.to_string(), q.to_string(), "{q:?} -> {e:?}");
        assert_eq!(e.corrupt_page(), q.corrupt_page());
        assert_eq!(QueryError::from(e), q);
    }
    // A read's I/O error keeps its op and kind as a query error; as an engine error they are
    // in its text.
    let io = IoError::os(OpKind::Read, 8192, 5);
    let q = QueryError::from(PagerError::Io(io.clone()));
    match AedbError::from(q) {
        AedbError::Io(message) => assert_eq!(message, io.to_string()),
        other => panic!("{other:?}"),
    }
    // Unchanged: a missing table and column keep their engine forms.
    assert_eq!(
        AedbError::from(QueryError::TableNotFound {
            project_id: "p".into(),
            table: "t".into(),
        })
        .code_str(),
        "table_not_found"
    );
}

#[test]
fn the_scan_bound_has_one_code_on_both_sides() {
    let e = AedbError::ScanBoundExceeded {
        estimated_rows: 11,
        max_scan_rows: 10,
    };
    assert_eq!(e.code_str(), "scan_bound_exceeded");
    assert_eq!(
        e.to_string(),
        "scan of about 11 rows exceeds max_scan_rows (10)"
    );
    assert_eq!(
        QueryError::from(e),
        QueryError::ScanBoundExceeded {
            estimated_rows: 11,
            max_scan_rows: 10,
        }
    );
}
