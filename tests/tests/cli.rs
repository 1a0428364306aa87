//! The `aedb` command and `aedb-explorer`, end to end on databases built here: every README
//! command with its output asserted; read-only proven by file hashes (also beside a live
//! writer); damaged inputs (a flipped byte in a leaf page, a truncated WAL segment, a zeroed
//! meta page) reported precisely with a non-zero exit and no panic; dump → restore → parity.
//!
//! Both programs run in-process through their `run` functions (the binaries are thin wrappers
//! around them), with the argument vectors exactly as typed on the command line.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use aedb::catalog::schema::{ColumnDef, Constraint, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::Expr;
use aedb::{AedbInstance, CommitFinality};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

struct Output {
    status: i32,
    out: String,
    err: String,
}

impl Output {
    fn json(&self) -> Json {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.out, self.err))
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.out, self.err
        )
    }
}

fn invoke(
    program: &str,
    args: &[&str],
    run: fn(Vec<String>, &mut dyn std::io::Write, &mut dyn std::io::Write, bool) -> i32,
) -> Output {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = catch_unwind(AssertUnwindSafe(|| run(argv, &mut out, &mut err, false)))
        .unwrap_or_else(|_| panic!("{program} {} panicked", args.join(" ")));
    Output {
        status,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// `aedb ARGS…` (as `cargo run --bin aedb -- ARGS…` runs it).
fn aedb(args: &[&str]) -> Output {
    invoke("aedb", args, |a, o, e, p| aedb_cli::run(a, o, e, p))
}

/// `aedb-explorer ARGS…` (as `cargo run -p aedb-explorer -- ARGS…` runs it).
fn explorer(args: &[&str]) -> Output {
    invoke("aedb-explorer", args, |a, o, e, p| {
        aedb_explorer::run(a, o, e, p)
    })
}

/// The value of a `key  value` line of human output.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .filter(|rest| rest.starts_with("  "))
                .map(str::trim)
        })
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        max_segment_bytes: 256 << 10,
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    }
}

fn s(dir: &Path) -> &str {
    dir.to_str().expect("utf-8 path")
}

fn col(name: &str, col_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    }
}

fn u256(n: u8) -> [u8; 32] {
    let mut v = [0u8; 32];
    v[31] = n;
    v[0] = n / 3;
    v
}

/// Row `i` of `demo/app/users`: every value type, some Nulls, some values long enough to
/// overflow a 4 KiB page.
fn user_row(i: i64) -> Row {
    let mut neg = [0xffu8; 32];
    neg[31] = i as u8;
    Row::from_values(vec![
        Value::Integer(i),
        Value::Text(format!("user-{i:03}")),
        Value::U8((i % 90) as u8),
        Value::U64(1_000 + i as u64 * 7),
        Value::Float(match i % 4 {
            0 => -1.5 * i as f64,
            1 => 1e300,
            2 => 0.125,
            _ => i as f64 / 3.0,
        }),
        Value::Boolean(i % 2 == 0),
        Value::U256(u256(i as u8)),
        Value::I256(neg),
        if i % 5 == 0 {
            Value::Null
        } else if i % 7 == 0 {
            Value::Blob(vec![i as u8; 5000])
        } else {
            Value::Blob(vec![0, 1, 2, i as u8])
        },
        Value::Timestamp(1_700_000_000_000_000 + i * 1_000_000),
        Value::Json(format!("{{\"n\":{i}}}")),
        if i % 3 == 0 {
            Value::Null
        } else {
            Value::Text(format!("note\0{i}"))
        },
    ])
}

const USERS: i64 = 60;

/// A database with every value type, secondary indexes (plain, unique, partial), a table with
/// a composite key in a second scope, KV spaces, an empty project, and a dropped table.
fn build(dir: &Path) {
    let rt = runtime();
    rt.block_on(async {
        let db = AedbInstance::open(config(), dir).expect("open");
        let ddl = |op| Mutation::Ddl(op);
        db.create_project("demo").await.expect("project");
        db.create_scope("demo", "extra").await.expect("scope");
        db.create_project("empty").await.expect("project");
        db.commit(ddl(DdlOperation::CreateTable {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "users".into(),
            owner_id: None,
            columns: vec![
                col("id", ColumnType::Integer, false),
                col("name", ColumnType::Text, false),
                col("age", ColumnType::U8, false),
                col("balance", ColumnType::U64, false),
                col("score", ColumnType::Float, false),
                col("active", ColumnType::Boolean, false),
                col("big", ColumnType::U256, false),
                col("neg", ColumnType::I256, false),
                col("photo", ColumnType::Blob, true),
                col("seen", ColumnType::Timestamp, false),
                col("meta", ColumnType::Json, false),
                col("note", ColumnType::Text, true),
            ],
            primary_key: vec!["id".into()],
        }))
        .await
        .expect("users");
        db.commit(ddl(DdlOperation::CreateIndex {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "users".into(),
            index_name: "by_name".into(),
            if_not_exists: false,
            columns: vec!["name".into()],
            index_type: IndexType::BTree,
            partial_filter: None,
        }))
        .await
        .expect("index");
        db.commit(ddl(DdlOperation::CreateIndex {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "users".into(),
            index_name: "adults".into(),
            if_not_exists: false,
            columns: vec!["age".into(), "seen".into()],
            index_type: IndexType::BTree,
            partial_filter: Some(Expr::Gte("age".into(), Value::U8(18))),
        }))
        .await
        .expect("partial index");
        db.commit(ddl(DdlOperation::AlterTable {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "users".into(),
            alteration: TableAlteration::AddConstraint(Constraint::Unique {
                name: "uniq_balance".into(),
                columns: vec!["balance".into()],
            }),
        }))
        .await
        .expect("unique");
        for chunk in (0..USERS).collect::<Vec<_>>().chunks(25) {
            db.commit(Mutation::InsertBatch {
                project_id: "demo".into(),
                scope_id: "app".into(),
                table_name: "users".into(),
                rows: chunk.iter().map(|&i| user_row(i)).collect(),
            })
            .await
            .expect("rows");
        }
        db.checkpoint_now().await.expect("checkpoint");
        db.commit(ddl(DdlOperation::CreateTable {
            project_id: "demo".into(),
            scope_id: "extra".into(),
            table_name: "orders".into(),
            owner_id: Some("ops".into()),
            columns: vec![
                col("user_id", ColumnType::Integer, false),
                col("order_no", ColumnType::U64, false),
                col("amount", ColumnType::Float, true),
            ],
            primary_key: vec!["user_id".into(), "order_no".into()],
        }))
        .await
        .expect("orders");
        db.commit(ddl(DdlOperation::CreateIndex {
            project_id: "demo".into(),
            scope_id: "extra".into(),
            table_name: "orders".into(),
            index_name: "by_amount".into(),
            if_not_exists: false,
            columns: vec!["amount".into()],
            index_type: IndexType::UniqueHash,
            partial_filter: None,
        }))
        .await
        .expect("unique index");
        db.commit(Mutation::InsertBatch {
            project_id: "demo".into(),
            scope_id: "extra".into(),
            table_name: "orders".into(),
            rows: (0..12)
                .map(|i| {
                    Row::from_values(vec![
                        Value::Integer(i % 4),
                        Value::U64(i as u64),
                        if i == 5 {
                            Value::Null
                        } else {
                            Value::Float(i as f64 * 2.5)
                        },
                    ])
                })
                .collect(),
        })
        .await
        .expect("orders rows");
        // A default added after a row stored Null: that row keeps its Null.
        db.commit(ddl(DdlOperation::AlterTable {
            project_id: "demo".into(),
            scope_id: "extra".into(),
            table_name: "orders".into(),
            alteration: TableAlteration::AddConstraint(Constraint::Default {
                column: "amount".into(),
                value: Value::Float(-1.0),
            }),
        }))
        .await
        .expect("default");
        for i in 0..30u32 {
            db.kv_set(
                "demo",
                "app",
                format!("user:{i:02}").into_bytes(),
                i.to_be_bytes().to_vec(),
            )
            .await
            .expect("kv");
        }
        db.kv_set("demo", "app", vec![0, 1, 0, 2], vec![7; 3000])
            .await
            .expect("kv binary");
        db.kv_set("demo", "extra", b"k".to_vec(), b"v".to_vec())
            .await
            .expect("kv extra");
        // A table created, filled and dropped: its pages end up free.
        db.commit(ddl(DdlOperation::CreateTable {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "scratch".into(),
            owner_id: None,
            columns: vec![col("k", ColumnType::Integer, false)],
            primary_key: vec!["k".into()],
        }))
        .await
        .expect("scratch");
        db.commit(Mutation::InsertBatch {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "scratch".into(),
            rows: (0..200)
                .map(|i| Row::from_values(vec![Value::Integer(i)]))
                .collect(),
        })
        .await
        .expect("scratch rows");
        db.commit(ddl(DdlOperation::DropTable {
            project_id: "demo".into(),
            scope_id: "app".into(),
            table_name: "scratch".into(),
            if_exists: false,
        }))
        .await
        .expect("drop");
        db.shutdown().await.expect("shutdown");
    });
}

/// Every file under `dir` with its length and SHA-256.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32])> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(path, (bytes.len() as u64, Sha256::digest(&bytes).into()));
            }
        }
    }
    out
}

fn table_id(dir: &Path, name: &str) -> String {
    let out = aedb(&["tree", "list", "--data-dir", s(dir), "--json"]);
    assert_eq!(out.status, 0, "{out:?}");
    let json = out.json();
    let trees = json["trees"].as_array().expect("trees");
    trees
        .iter()
        .find(|t| t["what"].as_str() == Some(&format!("table {name}")))
        .and_then(|t| t["name"].as_str())
        .unwrap_or_else(|| panic!("no tree for {name}: {json}"))
        .to_string()
}

#[test]
fn readme_commands_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);
    let dump = tmp.path().join("db.aedbdump");
    let f = s(&dump);

    let out = aedb(&["dump", "export", "--data-dir", d, "--out", f]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(
        field(&out.out, "tables"),
        format!("2 ({} rows)", USERS + 12)
    );
    assert_eq!(field(&out.out, "kv entries"), "32");
    assert_eq!(field(&out.out, "namespaces"), "2 projects, 3 scopes");
    assert!(dump.is_file());

    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(field(&out.out, "expected"), field(&out.out, "actual"));
    assert_eq!(field(&out.out, "expected").len(), 64);

    let out = aedb(&["check", "invariants", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(field(&out.out, "table rows"), (USERS + 12).to_string());
    assert_eq!(field(&out.out, "indexes"), "4");
    assert_eq!(field(&out.out, "kv entries"), "32");
    assert_eq!(field(&out.out, "tables"), "2");

    let out = explorer(&["projects", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.out.lines().collect();
    assert!(lines[0].starts_with("PROJECT"), "{out:?}");
    assert!(
        lines[1].starts_with("demo ") && lines[1].contains(" 2 "),
        "{out:?}"
    );
    assert!(lines[2].starts_with("empty"), "{out:?}");

    let out = explorer(&["scopes", "--data-dir", d, "--project", "demo"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out, "SCOPE\napp\nextra\n");

    let out = explorer(&[
        "tables",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let users = out.out.lines().nth(1).expect("users line");
    let cells: Vec<&str> = users.split_whitespace().collect();
    assert_eq!(
        cells,
        ["users", "12", "id", "by_name,adults,uniq_balance", "60"],
        "{out:?}"
    );

    let out = explorer(&[
        "describe-table",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "extra",
        "--table",
        "orders",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "primary key"), "user_id, order_no");
    assert_eq!(field(&out.out, "owner"), "ops");
    assert!(
        out.out.contains("by_amount  amount   UniqueHash"),
        "{out:?}"
    );

    let out = explorer(&[
        "scan-table",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
        "--table",
        "users",
        "--limit",
        "5",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.out.lines().collect();
    assert!(lines[0].starts_with("id:Integer  name:Text"), "{out:?}");
    assert_eq!(lines.len(), 1 + 5 + 2, "{out:?}");
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &first[..5],
        ["0", "user-000", "0", "1000", "-0.0"],
        "{out:?}"
    );
    assert_eq!(first.last(), Some(&"NULL"), "{out:?}");
    assert!(
        lines[2].ends_with("{\"n\":1}    note\\u{0}1"),
        "control characters escaped: {out:?}"
    );
    assert!(
        lines[6].starts_with("rows_returned=5 rows_examined=5 truncated=true"),
        "{out:?}"
    );
    assert!(lines[7].starts_with("cursor="), "{out:?}");

    let out = explorer(&[
        "scan-kv",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
        "--prefix-hex",
        "757365723a3031",
        "--limit",
        "3",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.out
            .lines()
            .nth(1)
            .expect("entry")
            .starts_with("757365723a3031  \"user:01\"  00000001"),
        "{out:?}"
    );
    assert!(
        out.out.contains("entries_returned=1 truncated=false"),
        "{out:?}"
    );

    // Restore into a new directory: the parity of the dump holds there.
    let restored = tmp.path().join("restored");
    let r = s(&restored);
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["check", "invariants", "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    for (scope, table) in [("app", "users"), ("extra", "orders")] {
        let args = |dir| {
            vec![
                "--json",
                "scan-table",
                "--data-dir",
                dir,
                "--project",
                "demo",
                "--scope",
                scope,
                "--table",
                table,
                "--limit",
                "1000",
            ]
        };
        let a = explorer(&args(d)).json();
        let b = explorer(&args(r)).json();
        assert_eq!(a["rows"], b["rows"], "{table} differs after restore");
        assert_eq!(
            a["rows_returned"].as_u64(),
            Some(if table == "users" { 60 } else { 12 })
        );
    }
    let kv = |dir| {
        explorer(&[
            "--json",
            "scan-kv",
            "--data-dir",
            dir,
            "--project",
            "demo",
            "--scope",
            "app",
            "--limit",
            "100",
        ])
        .json()
    };
    let (a, b) = (kv(d), kv(r));
    let values = |j: &Json| -> Vec<(Json, Json)> {
        j["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| (e["key_hex"].clone(), e["value_hex"].clone()))
            .collect()
    };
    assert_eq!(values(&a), values(&b));
    assert_eq!(values(&a).len(), 31);
    let out = explorer(&[
        "describe-table",
        "--data-dir",
        r,
        "--project",
        "demo",
        "--scope",
        "app",
        "--table",
        "users",
    ]);
    assert!(out.out.contains("unique uniq_balance (balance)"), "{out:?}");
    assert!(out.out.contains("adults        age,seen  BTree"), "{out:?}");

    // A second restore into the now non-empty directory is refused and writes nothing.
    let before = fingerprint(&restored);
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err.contains("the restore target must be empty"),
        "{out:?}"
    );
    assert_eq!(before, fingerprint(&restored));

    // A database that differs: parity says what.
    let rt = runtime();
    rt.block_on(async {
        let db = AedbInstance::open(config(), &restored).expect("open");
        db.kv_set("demo", "extra", b"k".to_vec(), b"changed".to_vec())
            .await
            .expect("kv");
        db.shutdown().await.expect("shutdown");
    });
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("mismatch"), "{out:?}");
    assert!(
        out.out
            .contains("differs: kv demo/extra: same count (1), different content"),
        "{out:?}"
    );
    let json = aedb(&["--json", "dump", "parity", "--dump", f, "--data-dir", r]).json();
    assert_eq!(json["result"], "mismatch");

    // A damaged dump is refused precisely, and restore writes nothing from it.
    let mut bytes = std::fs::read(&dump).expect("dump");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = tmp.path().join("bad.aedbdump");
    std::fs::write(&bad, &bytes).expect("write");
    let out = aedb(&["dump", "parity", "--dump", s(&bad), "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.err.contains("damaged dump: record"), "{out:?}");
    assert!(out.err.contains("checksum mismatch"), "{out:?}");
    let target = tmp.path().join("never");
    let out = aedb(&[
        "dump",
        "restore",
        "--dump",
        s(&bad),
        "--data-dir",
        s(&target),
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(!target.exists());
    std::fs::write(&bad, &bytes[..bytes.len() - 10]).expect("write");
    let out = aedb(&["dump", "parity", "--dump", s(&bad), "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
}

#[test]
fn page_level_commands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);

    let out = aedb(&["meta", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("page size 4096"), "{out:?}");
    let magic: Vec<&str> = field(&out.out, "magic").split_whitespace().collect();
    assert_eq!(magic, ["AEDBDATA", "AEDBDATA"], "{out:?}");
    assert!(out.out.contains("current: page "), "{out:?}");
    assert!(out.out.contains("both meta pages are valid"), "{out:?}");
    let meta = aedb(&["--json", "meta", "--data-dir", d]).json();
    let current = meta["current"].as_u64().expect("current");
    let generation = |slot: u64| {
        meta["slots"][slot as usize]["fields"]["generation"]
            .as_u64()
            .expect("gen")
    };
    assert!(generation(current) > generation(1 - current));

    let out = aedb(&["pages", "stat", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "page size"), "4096 bytes");
    assert!(out.out.contains("problems: none"), "{out:?}");
    let stat = aedb(&["--json", "pages", "stat", "--data-dir", d]).json();
    let by_type = &stat["pages_by_type"];
    let total: u64 = [
        "meta",
        "branch",
        "leaf",
        "overflow",
        "free-list",
        "free",
        "leaked",
        "unallocated",
        "unreadable",
    ]
    .iter()
    .map(|k| by_type[*k].as_u64().expect("count"))
    .sum();
    assert_eq!(total, stat["file_pages"].as_u64().expect("file pages"));
    assert_eq!(by_type["meta"], 2);
    assert_eq!(by_type["leaked"], 0);
    assert!(by_type["overflow"].as_u64() > Some(0), "{stat}");
    assert!(
        by_type["free"].as_u64() > Some(0),
        "the dropped table's pages are free: {stat}"
    );
    assert!(stat["freelist"]["ids"].as_u64() > Some(0));

    let users = table_id(&dir, "demo/app/users");
    let out = aedb(&["tree", "list", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.out
            .lines()
            .any(|l| l.starts_with(&format!("{users} ")) && l.contains("table demo/app/users")),
        "{out:?}"
    );
    assert!(
        out.out.contains("index by_name of demo/app/users"),
        "{out:?}"
    );
    assert!(out.out.contains("KV space demo/app"), "{out:?}");

    let out = aedb(&["tree", "dump", &users, "--data-dir", d, "--keys"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("level 0 (root)"), "{out:?}");
    assert!(out.out.contains("    (59)"), "every key listed: {out:?}");
    let tree = aedb(&["--json", "tree", "dump", &users, "--data-dir", d]).json();
    let levels = tree["levels"].as_array().expect("levels");
    let leaf = levels
        .last()
        .and_then(|l| l[0]["page"].as_u64())
        .expect("leaf");
    let entries: u64 = levels
        .last()
        .expect("leaves")
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["entries"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(entries, USERS as u64);

    let out = aedb(&["pages", "dump", &leaf.to_string(), "--data-dir", d, "--hex"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        field(&out.out, "checksum").starts_with("valid (0x"),
        "{out:?}"
    );
    assert_eq!(field(&out.out, "type"), "3 (leaf)");
    assert_eq!(field(&out.out, "role now"), format!("leaf of tree {users}"));
    assert!(out.out.contains("CELL  OFFSET  KEY"), "{out:?}");
    assert!(out.out.contains("00000000  "), "hex dump: {out:?}");
    let out = aedb(&["pages", "dump", "0", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "magic"), "AEDBDATA");
    let out = aedb(&["pages", "dump", "999999", "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains("page 999999 is beyond the end of the file"),
        "{out:?}"
    );

    let svg = tmp.path().join("map.svg");
    let out = aedb(&[
        "pages",
        "map",
        "--data-dir",
        d,
        "--svg",
        s(&svg),
        "--width",
        "32",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let map_lines: Vec<&str> = out
        .out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("legend"))
        .collect();
    assert!(map_lines[0].trim_start().starts_with("0  MM"), "{out:?}");
    let image = std::fs::read_to_string(&svg).expect("svg");
    assert!(
        image.starts_with("<svg") && image.contains(&format!("page {leaf}: leaf of {users}")),
        "{image}"
    );

    let out = aedb(&["wal", "dump", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("LSN  SEQ  OFFSET"), "{out:?}");
    assert!(
        out.out
            .contains("put    kv:demo:app [KV space demo/app] key \"user:00\""),
        "{out:?}"
    );
    assert!(out.out.contains("end: frames end at offset"), "{out:?}");
    assert!(
        out.out.contains("strict recovery accepts the log"),
        "{out:?}"
    );
    assert!(out.out.contains("damage: none"), "{out:?}");
    let wal = aedb(&["--json", "wal", "dump", "--data-dir", d, "--no-effects"]).json();
    let frames: Vec<&Json> = wal["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .flat_map(|s| s["frames"].as_array().expect("frames"))
        .collect();
    assert!(!frames.is_empty());
    assert!(
        frames
            .iter()
            .all(|f| f["crc"] == "ok" && f["chain"] == "ok"),
        "{wal}"
    );

    for command in [
        vec!["--help"],
        vec!["dump", "export", "--help"],
        vec!["pages", "map", "--help"],
        vec!["wal", "dump", "--help"],
    ] {
        let out = aedb(&command);
        assert_eq!(out.status, 0, "{out:?}");
        assert!(out.out.contains("Example"), "{out:?}");
    }
    let out = explorer(&["scan-table", "--help"]);
    assert!(
        out.out.contains("Example:\n  aedb-explorer scan-table"),
        "{out:?}"
    );
    let out = aedb(&["pages", "stat"]);
    assert_eq!(out.status, 2, "{out:?}");
    assert!(out.err.contains("--data-dir"), "{out:?}");

    // Clear errors naming the path, with a hint.
    let missing = tmp.path().join("nope");
    let out = aedb(&["check", "invariants", "--data-dir", s(&missing)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains(&format!("error: {}: no such directory", missing.display())),
        "{out:?}"
    );
    assert!(out.err.contains("hint: "), "{out:?}");
    assert!(!missing.exists());
    let out = explorer(&[
        "--json",
        "tables",
        "--data-dir",
        tmp.path().to_str().expect("path"),
        "--project",
        "x",
        "--scope",
        "y",
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.json()["error"]
            .as_str()
            .expect("error")
            .contains("data.aedb: not found"),
        "{out:?}"
    );
}

/// Every inspection command, as run against `dir`.
fn inspections(dir: &Path, out_dir: &Path) -> Vec<Vec<String>> {
    let d = s(dir).to_string();
    let o = |name: &str| s(&out_dir.join(name)).to_string();
    let users = table_id(dir, "demo/app/users");
    let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        v(&[
            "aedb",
            "dump",
            "export",
            "--data-dir",
            &d,
            "--out",
            &o("x.aedbdump"),
        ]),
        v(&[
            "aedb",
            "dump",
            "parity",
            "--dump",
            &o("x.aedbdump"),
            "--data-dir",
            &d,
        ]),
        v(&["aedb", "check", "invariants", "--data-dir", &d]),
        v(&["aedb", "pages", "stat", "--data-dir", &d]),
        v(&["aedb", "pages", "dump", "2", "--data-dir", &d, "--hex"]),
        v(&[
            "aedb",
            "pages",
            "map",
            "--data-dir",
            &d,
            "--svg",
            &o("m.svg"),
        ]),
        v(&["aedb", "tree", "list", "--data-dir", &d]),
        v(&["aedb", "tree", "dump", &users, "--data-dir", &d, "--keys"]),
        v(&["aedb", "wal", "dump", "--data-dir", &d]),
        v(&["aedb", "meta", "--data-dir", &d]),
        v(&["aedb-explorer", "projects", "--data-dir", &d]),
        v(&[
            "aedb-explorer",
            "scopes",
            "--data-dir",
            &d,
            "--project",
            "demo",
        ]),
        v(&[
            "aedb-explorer",
            "tables",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
        ]),
        v(&[
            "aedb-explorer",
            "describe-table",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
            "--table",
            "users",
        ]),
        v(&[
            "aedb-explorer",
            "scan-table",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
            "--table",
            "users",
            "--limit",
            "7",
        ]),
        v(&[
            "aedb-explorer",
            "scan-kv",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
        ]),
    ]
}

fn run_argv(argv: &[String]) -> Output {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    if argv[0] == "aedb" {
        aedb(&args)
    } else {
        explorer(&args)
    }
}

#[test]
fn inspection_changes_no_byte_also_beside_a_live_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let outputs = tmp.path().join("outputs");
    std::fs::create_dir(&outputs).expect("mkdir");
    let commands = inspections(&dir, &outputs);

    // Offline: a closed database.
    let before = fingerprint(&dir);
    for argv in &commands {
        let out = run_argv(argv);
        assert_eq!(out.status, 0, "{}: {out:?}", argv.join(" "));
        assert_eq!(
            before,
            fingerprint(&dir),
            "{} changed the directory",
            argv.join(" ")
        );
    }

    // Beside a live writer holding the directory (its lock, its open log segment) whose
    // newest commits exist only in the log.
    let rt = runtime();
    let live = AedbInstance::open(config(), &dir).expect("live writer");
    rt.block_on(async {
        live.commit_with_finality(
            Mutation::KvSet {
                project_id: "demo".into(),
                scope_id: "extra".into(),
                key: b"live".to_vec(),
                value: b"only in the log".to_vec(),
            },
            CommitFinality::Durable,
        )
        .await
        .expect("live commit");
    });
    let before = fingerprint(&dir);
    for argv in &commands {
        let out = run_argv(argv);
        assert_eq!(out.status, 0, "{}: {out:?}", argv.join(" "));
        assert_eq!(
            before,
            fingerprint(&dir),
            "{} changed the directory beside a live writer",
            argv.join(" ")
        );
    }
    let out = explorer(&[
        "scan-kv",
        "--data-dir",
        s(&dir),
        "--project",
        "demo",
        "--scope",
        "extra",
    ]);
    assert!(
        out.out.contains("\"live\""),
        "the log's newest commit is seen: {out:?}"
    );
    let out = aedb(&["wal", "dump", "--data-dir", s(&dir), "--from-lsn", "0"]);
    assert!(
        out.out
            .contains("put    kv:demo:extra [KV space demo/extra] key \"live\""),
        "{out:?}"
    );
    // The writer is unaffected and goes on.
    rt.block_on(async {
        live.kv_set("demo", "extra", b"after".to_vec(), b"x".to_vec())
            .await
            .expect("commit after");
        live.shutdown().await.expect("shutdown");
    });
    let out = aedb(&["check", "invariants", "--data-dir", s(&dir)]);
    assert_eq!(out.status, 0, "{out:?}");
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

/// Commands on a damaged database: each must exit non-zero (never panic: `invoke` catches
/// that) and say `needle` on stdout or stderr.
fn expect_damage(argv: &[&str], needles: &[&str]) {
    let out = if argv[0] == "aedb" {
        aedb(&argv[1..])
    } else {
        explorer(&argv[1..])
    };
    assert_ne!(out.status, 0, "{}: {out:?}", argv.join(" "));
    let all = format!("{}{}", out.out, out.err);
    for needle in needles {
        assert!(
            all.contains(needle),
            "{}: {needle:?} not reported: {out:?}",
            argv.join(" ")
        );
    }
}

#[test]
fn a_flipped_byte_in_a_leaf_page_is_reported_where_it_is() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);
    let orders = table_id(&dir, "demo/extra/orders");
    let tree = aedb(&["--json", "tree", "dump", &orders, "--data-dir", d]).json();
    let leaf = tree["levels"][0][0]["page"]
        .as_u64()
        .expect("orders is one leaf");
    flip_byte(&dir.join("data.aedb"), leaf * 4096 + 2000);
    let page = format!("page {leaf}");
    let out_file = tmp.path().join("x.aedbdump");
    let o = s(&out_file);
    expect_damage(
        &["aedb", "check", "invariants", "--data-dir", d],
        &[
            &format!("{page} (leaf of tree {orders}: table demo/extra/orders)"),
            "checksum mismatch",
            "violations: ",
        ],
    );
    expect_damage(
        &["aedb", "pages", "dump", &leaf.to_string(), "--data-dir", d],
        &["INVALID: stored 0x", "DOES NOT VERIFY"],
    );
    expect_damage(
        &["aedb", "pages", "stat", "--data-dir", d],
        &[&format!(
            "{page} (tree {orders}): {page}: checksum mismatch"
        )],
    );
    expect_damage(&["aedb", "pages", "map", "--data-dir", d], &["!"]);
    expect_damage(
        &["aedb", "tree", "list", "--data-dir", d],
        &[&format!("{page} (tree {orders})")],
    );
    expect_damage(
        &["aedb", "tree", "dump", &orders, "--data-dir", d],
        &[&format!("{page}  UNREADABLE")],
    );
    expect_damage(
        &["aedb", "dump", "export", "--data-dir", d, "--out", o],
        &[&format!("table demo/extra/orders (tree {orders})"), &page],
    );
    assert!(!out_file.exists(), "no dump is left behind");
    expect_damage(
        &[
            "aedb-explorer",
            "scan-table",
            "--data-dir",
            d,
            "--project",
            "demo",
            "--scope",
            "extra",
            "--table",
            "orders",
        ],
        &[&page, "checksum mismatch"],
    );
    // What the damage does not touch still reads.
    let out = explorer(&[
        "scan-table",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
        "--table",
        "users",
        "--limit",
        "2",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
}

#[test]
fn a_truncated_wal_segment_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);
    let wal = aedb(&["--json", "wal", "dump", "--data-dir", d, "--no-effects"]).json();
    let segments = wal["segments"].as_array().expect("segments");
    let last = segments
        .iter()
        .rev()
        .find(|s| !s["frames"].as_array().expect("frames").is_empty())
        .expect("a segment with frames");
    let frame = last["frames"]
        .as_array()
        .and_then(|f| f.last())
        .expect("frame");
    let path = PathBuf::from(last["path"].as_str().expect("path"));
    let cut =
        frame["offset"].as_u64().expect("offset") + frame["bytes"].as_u64().expect("bytes") - 9;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(cut).expect("truncate");
    drop(file);
    let lsn = frame["lsn"].as_u64().expect("lsn");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    expect_damage(
        &["aedb", "wal", "dump", "--data-dir", d],
        &[
            &name,
            &format!(
                "TRUNCATED: the frame at offset {} (LSN {lsn})",
                frame["offset"]
            ),
            "the file was truncated",
        ],
    );
    expect_damage(
        &["aedb", "check", "invariants", "--data-dir", d],
        &["write-ahead log", &name, "the file was truncated"],
    );
    expect_damage(
        &["aedb-explorer", "projects", "--data-dir", d],
        &["damage: ", &name, "truncated"],
    );
    expect_damage(
        &[
            "aedb",
            "dump",
            "export",
            "--data-dir",
            d,
            "--out",
            s(&tmp.path().join("x")),
        ],
        &["damage: ", &name],
    );
}

#[test]
fn a_zeroed_meta_page_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);
    let meta = aedb(&["--json", "meta", "--data-dir", d]).json();
    let current = meta["current"].as_u64().expect("current");
    let path = dir.join("data.aedb");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[current as usize * 4096..(current as usize + 1) * 4096].fill(0);
    std::fs::write(&path, bytes).expect("write");
    let invalid = format!("meta page {current} is invalid: page {current}: checksum mismatch");
    let out = aedb(&["meta", "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.out.contains(&format!(
            "current: page {} — meta page {} is the only valid one",
            1 - current,
            1 - current
        )),
        "{out:?}"
    );
    assert!(out.out.contains("(the page is all zeros)"), "{out:?}");
    assert!(out.err.contains(&invalid), "{out:?}");
    expect_damage(
        &["aedb", "check", "invariants", "--data-dir", d],
        &[&format!("page {current} (meta)"), "invalid meta page"],
    );
    expect_damage(&["aedb", "pages", "stat", "--data-dir", d], &[&invalid]);
    expect_damage(&["aedb", "tree", "list", "--data-dir", d], &[&invalid]);
    expect_damage(&["aedb", "wal", "dump", "--data-dir", d], &[&invalid]);
    expect_damage(&["aedb-explorer", "projects", "--data-dir", d], &[&invalid]);
    expect_damage(
        &[
            "aedb",
            "dump",
            "export",
            "--data-dir",
            d,
            "--out",
            s(&tmp.path().join("x")),
        ],
        &[&invalid],
    );
    // Both meta pages gone: every command still answers, naming the file.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..2 * 4096].fill(0);
    std::fs::write(&path, bytes).expect("write");
    expect_damage(&["aedb", "meta", "--data-dir", d], &["current: none"]);
    expect_damage(
        &["aedb", "pages", "stat", "--data-dir", d],
        &["no valid meta page", "hint: `aedb meta"],
    );
    expect_damage(
        &["aedb", "check", "invariants", "--data-dir", d],
        &["no valid meta page"],
    );
    expect_damage(
        &["aedb-explorer", "projects", "--data-dir", d],
        &["data.aedb"],
    );
}

#[test]
fn catalog_level_violations_are_reported_with_their_location() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let users = table_id(&dir, "demo/app/users");
    let id = users.trim_start_matches("t:").to_string();
    // Damage no API would cause, written through the engine's raw commit path: storage stays
    // sound, the catalog-level invariants do not.
    let rt = runtime();
    rt.block_on(async {
        let db = AedbInstance::open(config(), &dir).expect("open");
        let by_name = format!("i:{id}:by_name");
        let uniq = format!("i:{id}:uniq_balance");
        let table = users.clone();
        db.engine()
            .commit(CommitFinality::Durable, move |txn| {
                let pk3 = aedb::encode_primary_key(&[Value::Integer(3)]);
                let mut entry = aedb::encode_primary_key(&[Value::Text("user-003".into())]);
                entry.extend_from_slice(&pk3);
                assert!(txn.remove(&by_name, &entry)?);
                let mut stale = aedb::encode_primary_key(&[Value::U64(5)]);
                stale.extend_from_slice(&aedb::encode_primary_key(&[Value::Integer(999)]));
                txn.insert(&uniq, &stale, &[])?;
                txn.insert("t:99", b"orphan", b"row")?;
                txn.insert("kv:demo:app", b"short", &[1, 2, 3])?;
                let misplaced = aedb::catalog::rows::encode_row(&user_row(5));
                txn.insert(
                    &table,
                    &aedb::encode_primary_key(&[Value::Integer(1000)]),
                    &misplaced,
                )?;
                Ok(())
            })
            .await
            .expect("raw commit");
        db.shutdown().await.expect("shutdown");
    });
    let out = aedb(&["check", "invariants", "--data-dir", s(&dir)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.out.starts_with("violations: "), "{out:?}");
    let violations = [
        (
            format!("index by_name of demo/app/users (tree i:{id}:by_name)"),
            "no entry for row (3) (a rebuild has one)".to_string(),
        ),
        (
            format!("index uniq_balance of demo/app/users (tree i:{id}:uniq_balance)"),
            "entry [U64(5), Integer(999)] has no row that yields it (a rebuild drops it)".into(),
        ),
        (
            "tree t:99".into(),
            "no catalog entry owns it (an orphan left behind?)".into(),
        ),
        (
            "KV space demo/app (tree kv:demo:app)".into(),
            "entry \"short\" of 3 bytes is shorter than its 16-byte header".into(),
        ),
        (
            format!("table demo/app/users (tree {users})"),
            "row stored under key (1000) has primary key [Integer(5)]".into(),
        ),
    ];
    for (location, problem) in &violations {
        assert!(
            out.out
                .lines()
                .any(|l| l.starts_with(location.as_str()) && l.ends_with(problem.as_str())),
            "{location}: {problem} missing: {out:?}"
        );
    }
    let json = aedb(&["--json", "check", "invariants", "--data-dir", s(&dir)]).json();
    assert_eq!(json["ok"], false);
    assert!(json["violations"].as_array().expect("violations").len() >= 5);
}

#[test]
fn a_log_under_an_hmac_needs_its_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    let d = s(&dir);
    runtime().block_on(async {
        let db = AedbInstance::open(config().with_hmac_key([7; 32]), &dir).expect("open");
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
        // Left to recovery: the frames after the checkpoint must be verified to be read.
        std::mem::forget(db);
    });
    let key = "07".repeat(32);
    let out = aedb(&["wal", "dump", "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.out.contains("unverified"), "{out:?}");
    assert!(
        out.err.contains("no key was given (--hmac-key-hex)"),
        "{out:?}"
    );
    let out = aedb(&["wal", "dump", "--data-dir", d, "--hmac-key-hex", &key]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("ok   ok     ok"), "{out:?}");
    let out = explorer(&["scopes", "--data-dir", d, "--project", "p"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err.contains("hint: the log is protected by an HMAC"),
        "{out:?}"
    );
    let out = explorer(&[
        "scan-kv",
        "--data-dir",
        d,
        "--project",
        "p",
        "--scope",
        "app",
        "--hmac-key-hex",
        &key,
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("\"k\""), "{out:?}");
    let wrong = "08".repeat(32);
    let out = aedb(&["wal", "dump", "--data-dir", d, "--hmac-key-hex", &wrong]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains("the HMAC does not verify (altered, or a wrong key)"),
        "{out:?}"
    );
    let out = aedb(&["meta", "--data-dir", d, "--hmac-key-hex", "abc"]);
    assert_eq!(out.status, 0, "meta does not need the key: {out:?}");
    let out = aedb(&[
        "check",
        "invariants",
        "--data-dir",
        d,
        "--hmac-key-hex",
        "abc",
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains("--hmac-key-hex: \"abc\" has an odd number of hex digits"),
        "{out:?}"
    );
}

/// A database with events (the engine's own tables in `_system`): a dump holds the user's
/// data only, restores, and matches its parity; the system project is not part of it.
#[test]
fn dumps_leave_the_engines_own_tables_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    runtime().block_on(async {
        let db = AedbInstance::open(config(), &dir).expect("open");
        db.create_project("demo").await.expect("project");
        db.kv_set("demo", "app", b"k".to_vec(), b"v".to_vec())
            .await
            .expect("kv");
        db.emit_event("demo", "app", "t", "e1".into(), "{}".into())
            .await
            .expect("event");
        db.ack_reactive_processor_checkpoint("proc", 1)
            .await
            .expect("ack");
        db.shutdown().await.expect("shutdown");
    });
    let dump = tmp.path().join("db.aedbdump");
    let restored = tmp.path().join("restored");
    let (d, f, r) = (s(&dir), s(&dump), s(&restored));
    let out = aedb(&["dump", "export", "--data-dir", d, "--out", f]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "namespaces"), "1 projects, 1 scopes");
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", d]);
    assert_eq!(out.status, 0, "the source matches too: {out:?}");
}
