//! W11: the original aedb's own benchmark calls through the public `AedbInstance` API, ours
//! against the original aedb 0.1.9 (`seed`) in the same run.
//!
//! Each round, per engine, in a fresh directory: a table `users(id Integer PK, name Text,
//! age Integer)` with 10,000 rows (age = id % 100) and a BTree index on `age`, a table
//! `orders(id Integer PK, user_id Integer, amount Integer)` with 100 rows for the join, and
//! 10,000 KV pairs (`k000000`…, 64-byte values). Then, time per call (each measured loop runs
//! inside one `block_on`, as an async caller would issue the calls; every result is checked):
//! upserts at `Full` (and 64 separate commits against one `UpsertBatch` of 64), the hot reads after
//! a warm-up pass, then upserts after a reopen in `Batch`, the time from `open` (`Full`) to the
//! first PK query's answer, and last upserts after a reopen in `OsBuffered`. Both engines use their
//! default configuration but for the durability mode; the original needs
//! `RecoveryMode::Permissive` for `OsBuffered` (its `Strict` default refuses that mode), and once
//! opened so the directory no longer opens `Strict`: hence that mode comes last.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{progress, remove_dir, round_order, RunConfig};
use crate::data::SplitMix64;
use crate::report::{count, Better, Table, Unit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Batch,
    OsBuffered,
}

/// One engine behind its public async API; each method runs its whole loop and returns seconds.
pub trait ApiDb {
    /// Create the tables, the index and the KV pairs: `rows` users, 100 orders, `rows` pairs.
    fn load(&self, rows: i64) -> Result<()>;
    /// One `Upsert` commit per key.
    fn upserts(&self, keys: &[i64]) -> Result<f64>;
    /// One `UpsertBatch` commit of all the keys.
    fn upsert_batch(&self, keys: &[i64]) -> Result<f64>;
    fn pk_queries(&self, keys: &[i64]) -> Result<f64>;
    /// `age = a`, limit 10.
    fn index_queries(&self, ages: &[i64]) -> Result<f64>;
    fn kv_gets(&self, keys: &[i64]) -> Result<f64>;
    /// The PK queries through `query_with_options_as` by a caller granted `TableRead`.
    fn pk_queries_as(&self, keys: &[i64]) -> Result<f64>;
    /// The KV gets through `kv_get` by a caller granted `KvRead` on the project.
    fn kv_gets_as(&self, keys: &[i64]) -> Result<f64>;
    /// Prefix `k` + the first 5 digits: 10 keys each.
    fn prefix_scans(&self, keys: &[i64]) -> Result<f64>;
    /// `select * from users limit 100`, `times` times.
    fn scans(&self, times: usize) -> Result<f64>;
    /// orders ⋈ users on `orders.user_id = users.id`, limit 100 (100 rows), `times` times.
    fn joins(&self, times: usize) -> Result<f64>;
    fn close(self: Box<Self>) -> Result<()>;
}

fn user_name(id: i64) -> String {
    format!("user-{id:06}")
}

fn kv_key(i: i64) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

fn check(what: &str, got: usize, expected: usize) -> Result<()> {
    anyhow::ensure!(
        got == expected,
        "{what}: {got} results, expected {expected}"
    );
    Ok(())
}

/// The adapter for one crate: ours (`aedb`) and the original (`seed`) have the same API shape.
/// `$table_extra` adds the fields one crate's `CreateTable` needs beyond the other's.
macro_rules! api_adapter {
    ($module:ident, $krate:ident, $label:literal, { $($table_extra:tt)* }) => {
        pub mod $module {
            use std::path::Path;
            use std::time::Instant;

            use anyhow::{Context, Result};
            use $krate::catalog::schema::{ColumnDef, IndexType};
            use $krate::catalog::types::{ColumnType, Row, Value};
            use $krate::catalog::DdlOperation;
            use $krate::commit::validation::Mutation;
            use $krate::config::{AedbConfig, DurabilityMode};
            use $krate::permission::{CallerContext, Permission};
            use $krate::query::plan::{ConsistencyMode, Expr, Query, QueryOptions};
            use $krate::AedbInstance;

            use super::{check, kv_key, user_name, ApiDb, Mode};

            const P: &str = "bench";
            const S: &str = "app";
            /// The caller of the `_as` reads, granted what they need at load.
            const READER: &str = "bench-reader";

            pub struct Db {
                runtime: tokio::runtime::Runtime,
                db: Option<AedbInstance>,
            }

            fn err(what: &str, e: impl std::fmt::Debug) -> anyhow::Error {
                anyhow::anyhow!("{}: {what}: {e:?}", $label)
            }

            fn column(name: &str, col_type: ColumnType) -> ColumnDef {
                ColumnDef { name: name.into(), col_type, nullable: false }
            }

            fn user(id: i64, generation: i64) -> Row {
                Row::from_values(vec![
                    Value::Integer(id),
                    Value::Text(user_name(id + generation).into()),
                    Value::Integer((id + generation) % 100),
                ])
            }

            fn upsert(id: i64, generation: i64) -> Mutation {
                Mutation::Upsert {
                    project_id: P.into(),
                    scope_id: S.into(),
                    table_name: "users".into(),
                    primary_key: vec![Value::Integer(id)],
                    row: user(id, generation),
                }
            }

            fn create_table(name: &str, columns: Vec<ColumnDef>) -> Mutation {
                Mutation::Ddl(DdlOperation::CreateTable {
                    project_id: P.into(),
                    scope_id: S.into(),
                    table_name: name.into(),
                    owner_id: None,
                    $($table_extra)*
                    columns,
                    primary_key: vec!["id".into()],
                })
            }

            fn pk_query(id: i64) -> Query {
                Query::select(&["*"])
                    .from("users")
                    .where_(Expr::Eq("id".into(), Value::Integer(id)))
            }

            impl Db {
                pub fn open(dir: &Path, mode: Mode) -> Result<Self> {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .context("tokio runtime")?;
                    let mut config = AedbConfig::default();
                    config.durability_mode = match mode {
                        Mode::Full => DurabilityMode::Full,
                        Mode::Batch => DurabilityMode::Batch,
                        Mode::OsBuffered => DurabilityMode::OsBuffered,
                    };
                    if mode == Mode::OsBuffered {
                        config.recovery_mode = $krate::config::RecoveryMode::Permissive;
                    }
                    let db = {
                        let _entered = runtime.enter();
                        AedbInstance::open(config, dir).map_err(|e| err("open", e))?
                    };
                    Ok(Db { runtime, db: Some(db) })
                }

                fn db(&self) -> &AedbInstance {
                    self.db.as_ref().expect("open until close")
                }

                /// Open and answer one PK query: seconds from the call to `open` to the answer.
                pub fn open_to_first_query(dir: &Path, id: i64) -> Result<f64> {
                    let start = Instant::now();
                    let db = Db::open(dir, Mode::Full)?;
                    let rows = db
                        .runtime
                        .block_on(db.db().query(P, S, pk_query(id)))
                        .map_err(|e| err("first query", e))?
                        .rows
                        .len();
                    let seconds = start.elapsed().as_secs_f64();
                    check("first PK query", rows, 1)?;
                    Box::new(db).close()?;
                    Ok(seconds)
                }
            }

            impl ApiDb for Db {
                fn load(&self, rows: i64) -> Result<()> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        db.create_project(P).await.map_err(|e| err("project", e))?;
                        if !db.scope_exists(P, S).await.map_err(|e| err("scope", e))? {
                            db.create_scope(P, S).await.map_err(|e| err("scope", e))?;
                        }
                        db.commit(create_table(
                            "users",
                            vec![
                                column("id", ColumnType::Integer),
                                column("name", ColumnType::Text),
                                column("age", ColumnType::Integer),
                            ],
                        ))
                        .await
                        .map_err(|e| err("create users", e))?;
                        db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
                            project_id: P.into(),
                            scope_id: S.into(),
                            table_name: "users".into(),
                            index_name: "users_age".into(),
                            if_not_exists: false,
                            columns: vec!["age".into()],
                            index_type: IndexType::BTree,
                            partial_filter: None,
                        }))
                        .await
                        .map_err(|e| err("create index", e))?;
                        db.commit(create_table(
                            "orders",
                            vec![
                                column("id", ColumnType::Integer),
                                column("user_id", ColumnType::Integer),
                                column("amount", ColumnType::Integer),
                            ],
                        ))
                        .await
                        .map_err(|e| err("create orders", e))?;
                        let ids: Vec<i64> = (0..rows).collect();
                        for chunk in ids.chunks(1000) {
                            db.commit(Mutation::UpsertBatch {
                                project_id: P.into(),
                                scope_id: S.into(),
                                table_name: "users".into(),
                                rows: chunk.iter().map(|id| user(*id, 0)).collect(),
                            })
                            .await
                            .map_err(|e| err("load users", e))?;
                        }
                        db.commit(Mutation::UpsertBatch {
                            project_id: P.into(),
                            scope_id: S.into(),
                            table_name: "orders".into(),
                            rows: (0..100)
                                .map(|i: i64| {
                                    Row::from_values(vec![
                                        Value::Integer(i),
                                        Value::Integer(i * 97 % rows),
                                        Value::Integer(i * 10),
                                    ])
                                })
                                .collect(),
                        })
                        .await
                        .map_err(|e| err("load orders", e))?;
                        for chunk in ids.chunks(1000) {
                            let pairs = chunk
                                .iter()
                                .map(|i| Mutation::KvSet {
                                    project_id: P.into(),
                                    scope_id: S.into(),
                                    key: kv_key(*i),
                                    value: vec![(*i % 251) as u8; 64],
                                })
                                .collect();
                            db.commit_many_atomic(pairs)
                                .await
                                .map_err(|e| err("load kv", e))?;
                        }
                        let grants = [
                            Permission::TableRead {
                                project_id: P.into(),
                                scope_id: S.into(),
                                table_name: "users".into(),
                            },
                            Permission::KvRead {
                                project_id: P.into(),
                                scope_id: None,
                                prefix: None,
                            },
                        ];
                        for permission in grants {
                            db.commit(Mutation::Ddl(DdlOperation::GrantPermission {
                                caller_id: READER.into(),
                                permission,
                                actor_id: None,
                                delegable: false,
                            }))
                            .await
                            .map_err(|e| err("grant", e))?;
                        }
                        Ok(())
                    })
                }

                fn upserts(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let start = Instant::now();
                        for (i, id) in keys.iter().enumerate() {
                            db.commit(upsert(*id, i as i64 + 1))
                                .await
                                .map_err(|e| err("upsert", e))?;
                        }
                        Ok(start.elapsed().as_secs_f64())
                    })
                }

                fn upsert_batch(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    let rows = keys.iter().map(|id| user(*id, 7)).collect();
                    self.runtime.block_on(async {
                        let start = Instant::now();
                        db.commit(Mutation::UpsertBatch {
                            project_id: P.into(),
                            scope_id: S.into(),
                            table_name: "users".into(),
                            rows,
                        })
                        .await
                        .map_err(|e| err("upsert batch", e))?;
                        Ok(start.elapsed().as_secs_f64())
                    })
                }

                fn pk_queries(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for id in keys {
                            found += db
                                .query(P, S, pk_query(*id))
                                .await
                                .map_err(|e| err("PK query", e))?
                                .rows
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("PK queries", found, keys.len())?;
                        Ok(seconds)
                    })
                }

                fn index_queries(&self, ages: &[i64]) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for age in ages {
                            let query = Query::select(&["*"])
                                .from("users")
                                .where_(Expr::Eq("age".into(), Value::Integer(*age)))
                                .limit(10);
                            found += db
                                .query(P, S, query)
                                .await
                                .map_err(|e| err("index query", e))?
                                .rows
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("index queries", found, ages.len() * 10)?;
                        Ok(seconds)
                    })
                }

                fn kv_gets(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    let keys: Vec<Vec<u8>> = keys.iter().map(|i| kv_key(*i)).collect();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for key in &keys {
                            found += db
                                .kv_get_no_auth(P, S, key, ConsistencyMode::AtLatest)
                                .await
                                .map_err(|e| err("kv get", e))?
                                .map_or(0, |entry| usize::from(entry.value.len() == 64));
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("KV gets", found, keys.len())?;
                        Ok(seconds)
                    })
                }

                fn pk_queries_as(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    let caller = CallerContext::new(READER);
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for id in keys {
                            found += db
                                .query_with_options_as(
                                    Some(&caller),
                                    P,
                                    S,
                                    pk_query(*id),
                                    QueryOptions::default(),
                                )
                                .await
                                .map_err(|e| err("PK query as", e))?
                                .rows
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("PK queries as", found, keys.len())?;
                        Ok(seconds)
                    })
                }

                fn kv_gets_as(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    let caller = CallerContext::new(READER);
                    let keys: Vec<Vec<u8>> = keys.iter().map(|i| kv_key(*i)).collect();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for key in &keys {
                            found += db
                                .kv_get(P, S, key, ConsistencyMode::AtLatest, &caller)
                                .await
                                .map_err(|e| err("kv get as", e))?
                                .map_or(0, |entry| usize::from(entry.value.len() == 64));
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("KV gets as", found, keys.len())?;
                        Ok(seconds)
                    })
                }

                fn prefix_scans(&self, keys: &[i64]) -> Result<f64> {
                    let db = self.db();
                    let prefixes: Vec<Vec<u8>> = keys
                        .iter()
                        .map(|i| {
                            let mut key = kv_key(*i);
                            key.pop();
                            key
                        })
                        .collect();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for prefix in &prefixes {
                            found += db
                                .kv_scan_prefix_no_auth(P, S, prefix, 10, ConsistencyMode::AtLatest)
                                .await
                                .map_err(|e| err("prefix scan", e))?
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("prefix scans", found, prefixes.len() * 10)?;
                        Ok(seconds)
                    })
                }

                fn scans(&self, times: usize) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for _ in 0..times {
                            let query = Query::select(&["*"]).from("users").limit(100);
                            found += db
                                .query(P, S, query)
                                .await
                                .map_err(|e| err("scan", e))?
                                .rows
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("scans", found, times * 100)?;
                        Ok(seconds)
                    })
                }

                fn joins(&self, times: usize) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let mut found = 0;
                        let start = Instant::now();
                        for _ in 0..times {
                            let query = Query::select(&["*"])
                                .from("orders")
                                .inner_join("users", "orders.user_id", "users.id")
                                .limit(100);
                            found += db
                                .query(P, S, query)
                                .await
                                .map_err(|e| err("join", e))?
                                .rows
                                .len();
                        }
                        let seconds = start.elapsed().as_secs_f64();
                        check("joins", found, times * 100)?;
                        Ok(seconds)
                    })
                }

                fn close(mut self: Box<Self>) -> Result<()> {
                    if let Some(db) = self.db.take() {
                        self.runtime
                            .block_on(db.shutdown())
                            .map_err(|e| err("shutdown", e))?;
                    }
                    Ok(())
                }
            }

            impl Drop for Db {
                fn drop(&mut self) {
                    // The original's tasks live on this runtime: drop it inside.
                    if let Some(db) = self.db.take() {
                        let _entered = self.runtime.enter();
                        drop(db);
                    }
                }
            }
        }
    };
}

api_adapter!(ours, aedb, "aedb", {});
api_adapter!(original, seed, "aedb-0.1.9", { if_not_exists: false, });

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    Original,
}

fn open(which: Which, dir: &Path, mode: Mode) -> Result<Box<dyn ApiDb>> {
    Ok(match which {
        Which::Ours => Box::new(ours::Db::open(dir, mode)?),
        Which::Original => Box::new(original::Db::open(dir, mode)?),
    })
}

fn open_to_first_query(which: Which, dir: &Path, id: i64) -> Result<f64> {
    match which {
        Which::Ours => ours::Db::open_to_first_query(dir, id),
        Which::Original => original::Db::open_to_first_query(dir, id),
    }
}

/// Rows loaded and calls per measured loop.
struct Calls {
    rows: i64,
    full_upserts: usize,
    batches_of_64: usize,
    buffered_upserts: usize,
    reads: usize,
    scans: usize,
}

pub fn run_w11(ctx: &RunConfig) -> Result<Table> {
    let calls = if ctx.quick {
        Calls {
            rows: 10_000,
            full_upserts: 20,
            batches_of_64: 1,
            buffered_upserts: 200,
            reads: 2_000,
            scans: 100,
        }
    } else {
        Calls {
            rows: 10_000,
            full_upserts: 200,
            batches_of_64: 3,
            buffered_upserts: 5_000,
            reads: 50_000,
            scans: 2_000,
        }
    };
    let engines = [(Which::Ours, "aedb"), (Which::Original, "aedb-0.1.9")];
    let mut table = Table::new(
        format!(
            "W11 API calls: users table of {} rows (index on age), time per call",
            count(calls.rows as usize)
        ),
        engines.iter().map(|(_, label)| label.to_string()).collect(),
    );
    let row =
        |table: &mut Table, label: &str| table.add_row(label, Unit::MicrosFine, Better::Lower);
    let upsert_full = row(&mut table, "upsert, Full (one commit)");
    let upsert_batch_mode = row(&mut table, "upsert, Batch (one commit)");
    let upsert_os = row(&mut table, "upsert, OsBuffered (one commit)");
    let separate_64 = row(&mut table, "64 rows as 64 upsert commits, Full (total)");
    let batch_64 = row(&mut table, "64 rows as one UpsertBatch, Full (total)");
    let pk = row(&mut table, "PK query (Eq on id)");
    let index = row(&mut table, "index query (Eq on age, limit 10)");
    let kv_get = row(&mut table, "KV get (kv_get_no_auth)");
    let pk_as = row(
        &mut table,
        "PK query as a granted caller (query_with_options_as)",
    );
    let kv_get_as = row(&mut table, "KV get as a granted caller (kv_get)");
    let ratio = |table: &mut Table, label: &str| table.add_row(label, Unit::Plain, Better::Lower);
    let pk_as_paired = ratio(&mut table, "PK query as ÷ anonymous, alternating slices");
    let kv_as_paired = ratio(&mut table, "KV get as ÷ anonymous, alternating slices");
    let prefix = row(&mut table, "KV prefix scan of 10");
    let scan = row(&mut table, "scan of 100 rows (limit 100)");
    let join = row(&mut table, "join of 100 (orders ⋈ users on PK)");
    let open_first = row(&mut table, "open to first PK query");
    let micros = |seconds: f64, n: usize| seconds * 1e6 / n as f64;
    for round in 0..ctx.rounds {
        for engine in round_order(engines.len(), round) {
            let (which, label) = &engines[engine];
            let dir = ctx.root.join("W11").join(format!("{label}-r{round}"));
            remove_dir(&dir)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let mut rng = SplitMix64(0x0aed_b011 + round as u64);
            let mut keys = |n: usize| -> Vec<i64> {
                (0..n)
                    .map(|_| rng.below(calls.rows as u64) as i64)
                    .collect()
            };

            let db = open(*which, &dir, Mode::Full)?;
            let started = Instant::now();
            db.load(calls.rows)?;
            progress(format_args!(
                "W11: {label} loaded in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            let full = keys(calls.full_upserts);
            table.record(upsert_full, engine, micros(db.upserts(&full)?, full.len()));
            let (mut separate, mut batched) = (0.0, 0.0);
            for _ in 0..calls.batches_of_64 {
                separate += db.upserts(&keys(64))?;
                batched += db.upsert_batch(&keys(64))?;
            }
            table.record(separate_64, engine, micros(separate, calls.batches_of_64));
            table.record(batch_64, engine, micros(batched, calls.batches_of_64));
            // Warm-up pass, then the measured reads.
            db.pk_queries(&keys(calls.reads / 10))?;
            db.kv_gets(&keys(calls.reads / 10))?;
            let reads = keys(calls.reads);
            table.record(pk, engine, micros(db.pk_queries(&reads)?, reads.len()));
            let ages: Vec<i64> = reads.iter().map(|k| k % 100).collect();
            table.record(index, engine, micros(db.index_queries(&ages)?, ages.len()));
            table.record(kv_get, engine, micros(db.kv_gets(&reads)?, reads.len()));
            db.pk_queries_as(&keys(calls.reads / 10))?;
            table.record(
                pk_as,
                engine,
                micros(db.pk_queries_as(&reads)?, reads.len()),
            );
            table.record(
                kv_get_as,
                engine,
                micros(db.kv_gets_as(&reads)?, reads.len()),
            );
            // The same calls in alternating tenths: the machine's speed drifts between loops
            // by more than the difference measured, so the two are compared slice by slice,
            // each going first in every other slice (the second finds the cache warmer).
            let (mut pk_pair, mut kv_pair) = ([0.0; 2], [0.0; 2]);
            for (i, slice) in reads.chunks(reads.len().div_ceil(10).max(1)).enumerate() {
                let (pk_anon, pk_as, kv_anon, kv_as) = if i % 2 == 0 {
                    let pk = (db.pk_queries(slice)?, db.pk_queries_as(slice)?);
                    let kv = (db.kv_gets(slice)?, db.kv_gets_as(slice)?);
                    (pk.0, pk.1, kv.0, kv.1)
                } else {
                    let pk_as = db.pk_queries_as(slice)?;
                    let pk_anon = db.pk_queries(slice)?;
                    let kv_as = db.kv_gets_as(slice)?;
                    (pk_anon, pk_as, db.kv_gets(slice)?, kv_as)
                };
                pk_pair[0] += pk_anon;
                pk_pair[1] += pk_as;
                kv_pair[0] += kv_anon;
                kv_pair[1] += kv_as;
            }
            table.record(pk_as_paired, engine, pk_pair[1] / pk_pair[0]);
            table.record(kv_as_paired, engine, kv_pair[1] / kv_pair[0]);
            let firsts: Vec<i64> = reads.iter().map(|k| k / 10 * 10).collect();
            table.record(
                prefix,
                engine,
                micros(db.prefix_scans(&firsts)?, firsts.len()),
            );
            db.scans(calls.scans / 10)?;
            table.record(scan, engine, micros(db.scans(calls.scans)?, calls.scans));
            db.joins(calls.scans / 10)?;
            table.record(join, engine, micros(db.joins(calls.scans)?, calls.scans));
            db.close()?;

            // OsBuffered last: after the original has been opened with Permissive recovery
            // (which that mode needs), its Strict open refuses the directory.
            let db = open(*which, &dir, Mode::Batch)?;
            let upserts = keys(calls.buffered_upserts);
            table.record(
                upsert_batch_mode,
                engine,
                micros(db.upserts(&upserts)?, upserts.len()),
            );
            db.close()?;
            let seconds = open_to_first_query(*which, &dir, keys(1)[0])?;
            table.record(open_first, engine, seconds * 1e6);
            let db = open(*which, &dir, Mode::OsBuffered)?;
            let upserts = keys(calls.buffered_upserts);
            table.record(
                upsert_os,
                engine,
                micros(db.upserts(&upserts)?, upserts.len()),
            );
            db.close()?;
            progress(format_args!(
                "W11: round {round} {label} done in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            remove_dir(&dir)?;
        }
    }
    table.note(format!(
        "Calls per round: {} Full upserts, {}× (64 separate commits, one batch of 64), {} upserts per buffered mode, {} PK queries, index queries, KV gets and prefix scans each (after a warm-up of a tenth), {} scans and joins each.",
        calls.full_upserts, calls.batches_of_64, calls.buffered_upserts, calls.reads, calls.scans
    ));
    table.note("Each measured loop runs inside one tokio `block_on` (2-worker runtime per engine), so the times include each engine's async path but not a runtime entry per call.");
    Ok(table)
}
