//! Shared helpers: running `aedb` and `aedb-explorer` in-process, the database every test
//! builds, file fingerprints, and reading the commands' output.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use aedb::catalog::schema::{ColumnDef, Constraint, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::Expr;
use aedb::AedbInstance;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub(crate) struct Output {
    pub(crate) status: i32,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Output {
    pub(crate) fn json(&self) -> Json {
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
pub(crate) fn aedb(args: &[&str]) -> Output {
    invoke("aedb", args, |a, o, e, p| aedb_cli::run(a, o, e, p))
}

/// `aedb-explorer ARGS…` (as `cargo run -p aedb-explorer -- ARGS…` runs it).
pub(crate) fn explorer(args: &[&str]) -> Output {
    invoke("aedb-explorer", args, |a, o, e, p| {
        aedb_explorer::run(a, o, e, p)
    })
}

/// The value of a `key  value` line of human output.
pub(crate) fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .filter(|rest| rest.starts_with("  "))
                .map(str::trim)
        })
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub(crate) fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        max_segment_bytes: 256 << 10,
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    }
}

pub(crate) fn s(dir: &Path) -> &str {
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
pub(crate) fn user_row(i: i64) -> Row {
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

pub(crate) const USERS: i64 = 60;

/// A database with every value type, secondary indexes (plain, unique, partial), a table with
/// a composite key in a second scope, KV spaces, an empty project, and a dropped table.
pub(crate) fn build(dir: &Path) {
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
pub(crate) fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32])> {
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

pub(crate) fn table_id(dir: &Path, name: &str) -> String {
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
