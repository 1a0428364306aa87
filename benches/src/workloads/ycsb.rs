//! W7: YCSB workloads A (50% reads, 50% updates), B (95/5) and C (reads only) through aedb's table
//! API (`AedbInstance`, `DurabilityMode::Full`) against SQLite (`journal_mode=WAL`,
//! `synchronous=FULL`), at reduced sizes: `usertable(id Integer PK, field0 Text)` with one 100-byte
//! field instead of ten, 2 client threads, Zipfian (θ = 0.99, scrambled) keys, a fixed time per
//! workload. Every update is its own durable commit on both engines.
//!
//! Each round, per engine, in a fresh directory: load the records (aedb: `UpsertBatch` commits of
//! 1,000 rows; SQLite: one transaction), then run A, B and C in that order on the same data, each
//! for `seconds` with both threads; ops/s is the sum of both threads' completed operations over the
//! elapsed time. aedb: one instance, each call through `Handle::block_on` of a shared 2-worker
//! tokio runtime; reads are PK queries (`select *` where `id = k`), updates `commit(Upsert)`.
//! SQLite: each thread reads through its own connection (`SELECT * FROM usertable WHERE id = ?`),
//! updates go through one shared connection behind a mutex (`UPDATE usertable SET field0 = ? WHERE
//! id = ?`, autocommit), which hands the write lock over without SQLite's busy-handler sleeps.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::{Expr, Query};
use aedb::AedbInstance;
use anyhow::{Context, Result};
use parking_lot::Mutex;
use rusqlite::{params, Connection};

use super::{progress, remove_dir, round_order, RunConfig};
use crate::data::SplitMix64;
use crate::report::{count, Better, Table, Unit};

const THREADS: usize = 2;
const FIELD_BYTES: usize = 100;
const P: &str = "bench";
const S: &str = "app";

/// YCSB's scrambled Zipfian generator (Gray et al.), θ = 0.99, over `0..n`.
struct Zipf {
    n: u64,
    theta: f64,
    zetan: f64,
    alpha: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Self {
        let theta = 0.99;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        Zipf {
            n,
            theta,
            zetan,
            alpha: 1.0 / (1.0 - theta),
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan),
        }
    }

    fn next(&self, rng: &mut SplitMix64) -> i64 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.n as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        // Scramble (FNV-1a of the rank) so the popular keys are spread over the key space.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in rank.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % self.n) as i64
    }
}

fn field(rng: &mut SplitMix64) -> String {
    (0..FIELD_BYTES)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// One engine: each method is called from a client thread.
trait Ycsb: Sync {
    fn read(&self, id: i64) -> Result<()>;
    fn update(&self, id: i64, field: String) -> Result<()>;
}

struct AedbYcsb {
    runtime: tokio::runtime::Runtime,
    db: AedbInstance,
}

impl AedbYcsb {
    fn open(dir: &Path, records: i64) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let config = AedbConfig {
            durability_mode: DurabilityMode::Full,
            ..AedbConfig::default()
        };
        let db =
            AedbInstance::open(config, dir).map_err(|e| anyhow::anyhow!("aedb: open: {e:?}"))?;
        let mut rng = SplitMix64(0x0aed_b007);
        runtime
            .block_on(async {
                db.create_project(P).await?;
                let column = |name: &str, col_type| ColumnDef {
                    name: name.into(),
                    col_type,
                    nullable: false,
                };
                db.commit(Mutation::Ddl(DdlOperation::CreateTable {
                    project_id: P.into(),
                    scope_id: S.into(),
                    table_name: "usertable".into(),
                    owner_id: None,
                    columns: vec![
                        column("id", ColumnType::Integer),
                        column("field0", ColumnType::Text),
                    ],
                    primary_key: vec!["id".into()],
                }))
                .await?;
                let ids: Vec<i64> = (0..records).collect();
                for chunk in ids.chunks(1000) {
                    db.commit(Mutation::UpsertBatch {
                        project_id: P.into(),
                        scope_id: S.into(),
                        table_name: "usertable".into(),
                        rows: chunk
                            .iter()
                            .map(|id| {
                                Row::from_values(vec![
                                    Value::Integer(*id),
                                    Value::Text(field(&mut rng)),
                                ])
                            })
                            .collect(),
                    })
                    .await?;
                }
                Ok::<_, aedb::AedbError>(())
            })
            .map_err(|e| anyhow::anyhow!("aedb: load: {e:?}"))?;
        Ok(AedbYcsb { runtime, db })
    }
}

impl Ycsb for AedbYcsb {
    fn read(&self, id: i64) -> Result<()> {
        let query = Query::select(&["*"])
            .from("usertable")
            .where_(Expr::Eq("id".into(), Value::Integer(id)));
        let rows = self
            .runtime
            .handle()
            .block_on(self.db.query(P, S, query))
            .map_err(|e| anyhow::anyhow!("aedb: read: {e:?}"))?
            .rows
            .len();
        anyhow::ensure!(rows == 1, "aedb: read {id}: {rows} rows");
        Ok(())
    }

    fn update(&self, id: i64, field: String) -> Result<()> {
        self.runtime
            .handle()
            .block_on(self.db.commit(Mutation::Upsert {
                project_id: P.into(),
                scope_id: S.into(),
                table_name: "usertable".into(),
                primary_key: vec![Value::Integer(id)],
                row: Row::from_values(vec![Value::Integer(id), Value::Text(field)]),
            }))
            .map_err(|e| anyhow::anyhow!("aedb: update: {e:?}"))?;
        Ok(())
    }
}

struct SqliteYcsb {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
}

impl SqliteYcsb {
    fn open(dir: &Path, records: i64) -> Result<Self> {
        let path = dir.join("data.sqlite");
        let open = || -> Result<Connection> {
            let conn = Connection::open(&path).context("sqlite: open")?;
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            anyhow::ensure!(
                mode.eq_ignore_ascii_case("wal"),
                "sqlite: journal_mode {mode}"
            );
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(Duration::from_secs(10))?;
            Ok(conn)
        };
        let mut writer = open()?;
        writer.execute(
            "CREATE TABLE usertable(id INTEGER PRIMARY KEY, field0 TEXT NOT NULL)",
            [],
        )?;
        let mut rng = SplitMix64(0x0aed_b007);
        let tx = writer.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO usertable(id, field0) VALUES (?1, ?2)")?;
            for id in 0..records {
                insert.execute(params![id, field(&mut rng)])?;
            }
        }
        tx.commit()?;
        let readers = (0..THREADS)
            .map(|_| open().map(Mutex::new))
            .collect::<Result<_>>()?;
        Ok(SqliteYcsb {
            writer: Mutex::new(writer),
            readers,
        })
    }
}

thread_local! {
    static READER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Ycsb for SqliteYcsb {
    fn read(&self, id: i64) -> Result<()> {
        let reader = READER.with(|r| r.get());
        let conn = self.readers[reader].lock();
        let mut stmt = conn.prepare_cached("SELECT id, field0 FROM usertable WHERE id = ?1")?;
        let len: usize = stmt
            .query_row(params![id], |row| row.get::<_, String>(1))?
            .len();
        anyhow::ensure!(len == FIELD_BYTES, "sqlite: read {id}: {len} bytes");
        Ok(())
    }

    fn update(&self, id: i64, field: String) -> Result<()> {
        let conn = self.writer.lock();
        let mut stmt = conn.prepare_cached("UPDATE usertable SET field0 = ?1 WHERE id = ?2")?;
        let changed = stmt.execute(params![field, id])?;
        anyhow::ensure!(changed == 1, "sqlite: update {id}: {changed} rows");
        Ok(())
    }
}

/// Run one mix for `duration` on `THREADS` threads: ops/s.
fn run_mix(
    engine: &dyn Ycsb,
    zipf: &Zipf,
    read_percent: usize,
    duration: Duration,
    seed: u64,
) -> Result<f64> {
    let ops = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let ops = &ops;
                scope.spawn(move || -> Result<()> {
                    READER.with(|r| r.set(thread));
                    let mut rng = SplitMix64(seed ^ ((thread as u64 + 1) * 0x9e37_79b9));
                    let mut done = 0u64;
                    while start.elapsed() < duration {
                        let id = zipf.next(&mut rng);
                        if rng.below(100) < read_percent as u64 {
                            engine.read(id)?;
                        } else {
                            engine.update(id, field(&mut rng))?;
                        }
                        done += 1;
                    }
                    ops.fetch_add(done, Ordering::Relaxed);
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("client thread panicked")?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ops.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

pub fn run_w7(ctx: &RunConfig) -> Result<Table> {
    let (records, seconds) = if ctx.quick {
        (10_000, 0.5)
    } else {
        (100_000, 3.0)
    };
    let duration = Duration::from_secs_f64(seconds);
    let zipf = Zipf::new(records as u64);
    let labels = ["aedb", "sqlite"];
    let mut table = Table::new(
        format!(
            "W7 YCSB: {} records of one 100-byte field, Zipfian 0.99, {THREADS} threads, {seconds} s per workload, ops/s",
            count(records as usize)
        ),
        labels.iter().map(|l| l.to_string()).collect(),
    );
    let mixes = [
        ("A: 50% reads, 50% updates", 50),
        ("B: 95% reads, 5% updates", 95),
        ("C: 100% reads", 100),
    ];
    let rows: Vec<usize> = mixes
        .iter()
        .map(|(label, _)| table.add_row(*label, Unit::PerSecond, Better::Higher))
        .collect();
    for round in 0..ctx.rounds {
        for engine in round_order(labels.len(), round) {
            let label = &labels[engine];
            let dir = ctx.root.join("W7").join(format!("{label}-r{round}"));
            remove_dir(&dir)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let started = Instant::now();
            let db: Box<dyn Ycsb> = match engine {
                0 => Box::new(AedbYcsb::open(&dir, records)?),
                _ => Box::new(SqliteYcsb::open(&dir, records)?),
            };
            progress(format_args!(
                "W7: {label} loaded {records} records in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            for ((_, read_percent), row) in mixes.iter().zip(&rows) {
                let seed = 0x0aed_b007 + round as u64 * 16 + *read_percent as u64;
                let ops = run_mix(db.as_ref(), &zipf, *read_percent, duration, seed)?;
                table.record(*row, engine, ops);
            }
            drop(db);
            remove_dir(&dir)?;
        }
    }
    table.note("Updates are durable per commit on both engines (aedb `Full`, SQLite `synchronous=FULL` in WAL mode); reads are point reads of the whole record by primary key.");
    Ok(table)
}
