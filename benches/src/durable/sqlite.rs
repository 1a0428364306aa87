//! SQLite (rusqlite, bundled): `journal_mode=WAL`, `synchronous=FULL`, table
//! `kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`, cached statements, `cache_size` = the pool.
//!
//! Checkpoints as in normal operation (W1, W2): SQLite's default auto-checkpoint
//! (`wal_autocheckpoint` = 1,000 pages), a PASSIVE checkpoint run by the committing connection at
//! the end of the commit that takes the WAL past it (so inside that commit's time). Manual
//! checkpoints (W8, W9): `wal_autocheckpoint=0`; W9's checkpoints run PASSIVE on a second
//! connection, as SQLite's auto-checkpoint would.
//!
//! One connection behind a mutex serves every writer thread: SQLite admits one writer at a time
//! anyway, and a mutex hands the lock over without its busy-handler sleeps (the friendlier setup
//! for SQLite in W2).

use std::path::Path;

use anyhow::{Context, Result};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::{CheckpointStats, Durable, DurableConfig};
use crate::data::Batch;

const DATA_FILE: &str = "data.sqlite";
const PUT: &str = "INSERT OR REPLACE INTO kv(k, v) VALUES (?1, ?2)";
const GET: &str = "SELECT v FROM kv WHERE k = ?1";

pub struct SqliteDurable {
    label: String,
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
}

impl SqliteDurable {
    pub fn open(label: String, dir: &Path, config: DurableConfig) -> Result<Self> {
        let path = dir.join(DATA_FILE);
        let conn = Connection::open(&path).context("sqlite: open")?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "sqlite: journal_mode is {mode}"
        );
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A negative cache_size is in KiB.
        conn.pragma_update(None, "cache_size", -((config.cache_bytes / 1024) as i64))?;
        if config.manual_checkpoints {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID",
            [],
        )?;
        Ok(SqliteDurable {
            label,
            conn: Mutex::new(conn),
            path,
        })
    }
}

impl Durable for SqliteDurable {
    fn label(&self) -> &str {
        &self.label
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let conn = self.conn.lock();
        conn.prepare_cached(PUT)?.execute(params![key, value])?;
        Ok(())
    }

    fn put_batch(&self, batch: Batch<'_>) -> Result<()> {
        let mut conn = self.conn.lock();
        let txn = conn.transaction()?;
        {
            let mut statement = txn.prepare_cached(PUT)?;
            for (key, value) in batch.pairs() {
                statement.execute(params![key, value])?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let conn = self.conn.lock();
        let value = conn
            .prepare_cached(GET)?
            .query_row(params![key], |row| row.get::<_, Vec<u8>>(0))
            .optional()?;
        Ok(value)
    }

    /// A PASSIVE checkpoint on a connection of its own, as SQLite's auto-checkpoint runs it:
    /// writers on the main connection go on meanwhile (W9 measures them). SQLite reports log
    /// frames backfilled, not pages written (a page logged by many commits is written once), so
    /// no byte count is given.
    fn checkpoint(&self) -> Result<Option<CheckpointStats>> {
        let conn = Connection::open(&self.path).context("sqlite: open a checkpoint connection")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // (busy, frames in the log, frames checkpointed)
        let (busy, log, checkpointed): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        anyhow::ensure!(
            busy == 0,
            "sqlite: checkpoint busy ({checkpointed} of {log} frames)"
        );
        Ok(Some(CheckpointStats {
            bytes_written: None,
        }))
    }

    fn fsyncs(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> Result<()> {
        let conn = self.conn.into_inner();
        conn.close()
            .map_err(|(_, err)| err)
            .context("sqlite: close")?;
        Ok(())
    }
}
