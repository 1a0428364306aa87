//! W8 recovery: restart after `kill -9` with a long log after the last checkpoint.
//!
//! Per engine and log size, a child process (this binary in its hidden writer mode) opens the
//! engine in a fresh directory with checkpoints only on demand, loads `durable_preload` keys,
//! checkpoints, then writes `log MiB` of new key+value payload in durable 1,000-key commits and
//! reports ready; the parent kills it with SIGKILL, drops the OS page cache when it can (a restart
//! after a machine crash reads from the device), and times opening the engine plus reading back
//! the last key written. One round per size (the log is rebuilt for every engine).

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::{flush, progress, remove_dir, round_order, RunConfig, Sizes};
use crate::data::{Dataset, KEY_BYTES, VALUE_BYTES};
use crate::durable::{self, DurableConfig};
use crate::engines::EngineSpec;
use crate::report::{count, Better, Table, Unit};

const MIB: u64 = 1 << 20;

fn log_rows(log_mib: u64) -> usize {
    (log_mib * MIB / (KEY_BYTES + VALUE_BYTES) as u64) as usize
}

fn config(sizes: &Sizes) -> DurableConfig {
    DurableConfig {
        cache_bytes: sizes.durable_cache_bytes,
        manual_checkpoints: true,
    }
}

/// The child's side: load, checkpoint, build the log, say `ready <last index> <seconds>`, wait
/// to be killed.
pub fn writer_child(spec: &EngineSpec, dir: &Path, sizes: &Sizes, log_mib: u64) -> Result<()> {
    let rows = log_rows(log_mib);
    let data = Dataset::generate(sizes.durable_preload + rows);
    let engine = durable::open(spec, dir, config(sizes))?;
    let preload = data.insertion_order(sizes.durable_preload);
    durable::load(&*engine, &data, &preload, sizes.durable_load_batch)?;
    engine.checkpoint()?;
    let log: Vec<u32> =
        (sizes.durable_preload as u32..(sizes.durable_preload + rows) as u32).collect();
    let start = Instant::now();
    durable::load(&*engine, &data, &log, sizes.durable_load_batch)?;
    let seconds = start.elapsed().as_secs_f64();
    let last = log.last().copied().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {last} {seconds}")?;
    out.flush()?;
    drop(out);
    // Keep the engine open (no shutdown, no checkpoint) until the parent kills this process.
    let _engine = engine;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Spawn the writer child for `spec` in `dir`; returns (last index written, seconds to build
/// the log) once it is ready, after killing it with SIGKILL.
fn build_log_and_kill(
    ctx: &RunConfig,
    spec: &EngineSpec,
    dir: &Path,
    log_mib: u64,
) -> Result<(u32, f64)> {
    let exe = std::env::current_exe().context("the path of this binary")?;
    let kind = spec
        .kind
        .to_possible_value()
        .context("engine name")?
        .get_name()
        .to_string();
    let mut command = Command::new(exe);
    command
        .arg("--writer-child")
        .arg("--log-mib")
        .arg(log_mib.to_string())
        .arg("--engines")
        .arg(kind)
        .arg("--page-size")
        .arg(spec.page_size.max(4096).to_string())
        .arg("--direct-io")
        .arg(spec.direct_io.to_string())
        .arg("--dir")
        .arg(dir);
    if ctx.quick {
        command.arg("--quick");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("spawn the writer child")?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    // SIGKILL, whether or not the child got as far as ready.
    let _ = child.kill();
    let status = child.wait()?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ready"), Some(last), Some(seconds)) => Ok((last.parse()?, seconds.parse()?)),
        _ => anyhow::bail!(
            "{}: the writer child did not get ready ({status}); its stderr is above",
            spec.label
        ),
    }
}

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let max_rows = sizes
        .w8_log_mib
        .iter()
        .map(|mib| log_rows(*mib))
        .max()
        .unwrap_or(0);
    let data = Dataset::generate(sizes.durable_preload + max_rows);
    let engines = &ctx.durable_engines;
    let mut table = Table::new(
        format!(
            "W8 recovery: open after kill -9 to the first read, log after the last checkpoint ({} keys checkpointed first)",
            count(sizes.durable_preload)
        ),
        engines.iter().map(|spec| spec.label.clone()).collect(),
    );
    let can_drop = ctx.drop_caches && super::cold_get::drop_page_cache().is_ok();
    let mut notes = Vec::new();
    // One round per log size: each size starts one engine later (see `round_order`).
    for (size_round, &log_mib) in sizes.w8_log_mib.iter().enumerate() {
        let rows = log_rows(log_mib);
        let payload = (rows * (KEY_BYTES + VALUE_BYTES)) as f64;
        let open_row = table.add_row(
            format!(
                "{log_mib} MiB log ({} keys): open to first read",
                count(rows)
            ),
            Unit::Seconds,
            Better::Lower,
        );
        let rate_row = table.add_row(
            format!("{log_mib} MiB log: key+value MB recovered per second"),
            Unit::MegabytesPerSecond,
            Better::Higher,
        );
        let commit_row = table.add_row(
            format!("{log_mib} MiB log: open to the first durable commit after that read"),
            Unit::Seconds,
            Better::Lower,
        );
        let wal_row = table.add_row(
            format!("{log_mib} MiB log: aedb WAL bytes replayed per second"),
            Unit::MegabytesPerSecond,
            Better::Neither,
        );
        let cpu_row = table.add_row(
            format!("{log_mib} MiB log: CPU time of the open and read (all threads)"),
            Unit::Seconds,
            Better::Lower,
        );
        let build_row = table.add_row(
            format!("{log_mib} MiB log: time to write it (1,000-key durable commits)"),
            Unit::Seconds,
            Better::Neither,
        );
        for index in round_order(engines.len(), size_round) {
            let spec = &engines[index];
            let dir = ctx.fresh_dir(&format!("w8-{log_mib}"), spec, 0)?;
            let (last, build_seconds) = build_log_and_kill(ctx, spec, &dir, log_mib)?;
            table.record(build_row, index, build_seconds);
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
            if can_drop {
                super::cold_get::drop_page_cache()?;
            }
            let (expected_key, expected_value) = data.pair(last);
            let cpu = flush::cpu_seconds();
            let start = Instant::now();
            let opened = durable::open(spec, &dir, config(&sizes)).and_then(|engine| {
                let value = engine.get(expected_key)?;
                Ok((engine, value))
            });
            let seconds = start.elapsed().as_secs_f64();
            let cpu = flush::cpu_seconds() - cpu;
            // A checkpoint an engine defers past the open (aedb's after redo) is paid here.
            let opened = opened.and_then(|(engine, value)| {
                engine.put(b"w8-first-commit-after-open", b"1")?;
                Ok((engine, value, start.elapsed().as_secs_f64()))
            });
            match opened {
                Ok((engine, value, to_commit)) if value.as_deref() == Some(expected_value) => {
                    table.record(open_row, index, seconds);
                    table.record(commit_row, index, to_commit);
                    table.record(rate_row, index, payload / 1e6 / seconds);
                    table.record(cpu_row, index, cpu);
                    if let Some(replay) = engine.log_replay() {
                        table.record(wal_row, index, replay.bytes as f64 / 1e6 / seconds);
                        notes.push(format!(
                            "{} at {log_mib} MiB: replayed {} frames, {:.1} MB of WAL{}",
                            spec.label,
                            count(replay.frames as usize),
                            replay.bytes as f64 / 1e6,
                            if replay.checkpointed_after_redo {
                                ", then checkpointed what it replayed after the open returned (reads do not wait for it; the first commit does)"
                            } else {
                                ""
                            }
                        ));
                    }
                    progress(format_args!(
                        "W8 {log_mib} MiB: {} open to first read {seconds:.2} s (log written in {build_seconds:.1} s)",
                        spec.label
                    ));
                    engine.close()?;
                }
                Ok((engine, value, _)) => {
                    notes.push(format!(
                        "**{} at {log_mib} MiB lost acknowledged durable commits**: after kill -9 the last key written read back as {} (open + read took {seconds:.2} s, not recorded).",
                        spec.label,
                        if value.is_some() { "a different value" } else { "missing" }
                    ));
                    progress(format_args!(
                        "W8 {log_mib} MiB: {} lost commits",
                        spec.label
                    ));
                    drop(engine);
                }
                Err(err) => {
                    notes.push(format!(
                        "**{} at {log_mib} MiB did not reopen** after kill -9: {err:#}",
                        spec.label
                    ));
                    progress(format_args!(
                        "W8 {log_mib} MiB: {} failed to reopen: {err:#}",
                        spec.label
                    ));
                }
            }
            remove_dir(&dir)?;
        }
    }
    table.note(format!(
        "One round per size. The log is written as durable commits of 1,000 new keys (24 + 150 bytes each) after a checkpoint of the {} preloaded keys, with automatic checkpoints off (aedb `checkpoint_wal_bytes` 2^50, `checkpoint_interval_ms` 0; SQLite `wal_autocheckpoint=0`; RocksDB `write_buffer_size` 2 GiB, so the whole log stays in its WAL and memtable; fjall cannot defer its background flushes and runs on its defaults); then the writer process is killed with SIGKILL. Each size starts one engine later than the one before.",
        count(sizes.durable_preload)
    ));
    table.note(if can_drop {
        "The page cache was dropped (`sync; echo 1 > /proc/sys/vm/drop_caches`) before each open: recovery reads from the device."
    } else {
        "The page cache could not be dropped (not root, or --no-drop-caches): recovery read the log from memory."
    });
    table.note("Timed: opening the engine (its recovery) plus one read of the last key written, which must return the value written. redb repairs its file after an unclean shutdown; LMDB has no log (its last commit is already in place); fjall replays its journal (what its background flushes had not yet written out); RocksDB replays its WAL into a memtable and, by default (`avoid_flush_during_recovery` = false), flushes it to an L0 file before `open` returns; SQLite rebuilds its WAL index; aedb replays its WAL into the B+trees; the original aedb loads its checkpoint and replays its WAL.");
    for note in notes {
        table.note(note);
    }
    Ok(table)
}
