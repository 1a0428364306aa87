//! W1 commit_1w and W2 commit_Nw: durable single-row commits, one writer and N concurrent
//! writers, beside the raw 4 KiB pwrite+fdatasync latency measured in the same run.
//!
//! Each round: the raw flush first (in the workload's directory), then every engine, round `r`
//! starting at engine `r mod n` (`round_order`), each in a fresh directory: `durable_preload` keys
//! loaded in durable 1,000-key commits, then the measured commits, each inserting a new key. Every
//! engine checkpoints (flushes, compacts) on its own defaults meanwhile, as in normal operation.

use std::sync::Barrier;
use std::time::Instant;

use anyhow::Result;

use super::flush::{self, cpu_seconds, FlushTarget, Latency};
use super::{progress, remove_dir, round_order, RunConfig};
use crate::data::Dataset;
use crate::durable::{self, DurableConfig};
use crate::report::{count, median, Better, Table, Unit};

const ROTATION_NOTE: &str = "Engines run in a rotating order: the raw flush probe opens each round, then round r starts at engine r mod n (the ratios' reference stays the first column).";
const CHECKPOINT_NOTE: &str = "Checkpoints as in normal operation: aedb `AedbConfig::default()` triggers (every 256 MiB of log, every 60 s, and for space past 5 % of the file and 16 MiB), SQLite auto-checkpoint every 1,000 pages, fjall and RocksDB background memtable flushes (64 MiB) and compaction; redb and LMDB have none. At these sizes few or none fire during the measured commits.";

fn durable_config(ctx: &RunConfig) -> DurableConfig {
    DurableConfig {
        cache_bytes: ctx.sizes.durable_cache_bytes,
        manual_checkpoints: false,
    }
}

/// The raw flush of one round, in `<root>/<workload>`.
fn raw_flush(ctx: &RunConfig, workload: &str) -> Result<(Latency, Latency)> {
    let dir = ctx.root.join(workload);
    let overwrite = flush::measure(&dir, ctx.sizes.flush_samples, FlushTarget::Overwrite)?;
    let fallocated = flush::measure(&dir, ctx.sizes.flush_samples, FlushTarget::Fallocated)?;
    progress(format_args!(
        "{workload}: raw 4 KiB pwrite+fdatasync p50 {:.0} µs p99 {:.0} µs (into fallocated space: p50 {:.0} µs p99 {:.0} µs)",
        overwrite.p50_us, overwrite.p99_us, fallocated.p50_us, fallocated.p99_us
    ));
    Ok((overwrite, fallocated))
}

/// A note with the medians of the rounds' raw flush latencies.
fn flush_note(samples: usize, rounds: &[(Latency, Latency)]) -> String {
    let med = |f: &dyn Fn(&(Latency, Latency)) -> f64| {
        median(&rounds.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    format!(
        "Raw disk, same directory, same run (median of the rounds' figures, {samples} samples each): 4 KiB `pwrite` + `fdatasync` over written blocks p50 **{:.0} µs**, p99 {:.0} µs; into `fallocate`d, never-written space (how a fresh preallocated log segment is first written) p50 {:.0} µs, p99 {:.0} µs.",
        med(&|r| r.0.p50_us),
        med(&|r| r.0.p99_us),
        med(&|r| r.1.p50_us),
        med(&|r| r.1.p99_us),
    )
}

pub fn run_w1(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let data = Dataset::generate(sizes.durable_preload + sizes.w1_commits);
    let preload = data.insertion_order(sizes.durable_preload);
    let engines = &ctx.durable_engines;
    let mut table = Table::new(
        format!(
            "W1 commit_1w: durable single-row commits, one writer ({} commits after {} keys)",
            count(sizes.w1_commits),
            count(sizes.durable_preload)
        ),
        engines.iter().map(|spec| spec.label.clone()).collect(),
    );
    let rate_row = table.add_row("commits/s", Unit::PerSecond, Better::Higher);
    let p50_row = table.add_row("commit p50", Unit::Micros, Better::Lower);
    let p99_row = table.add_row("commit p99", Unit::Micros, Better::Lower);
    let flush_row = table.add_row(
        "p50 ÷ raw fdatasync p50 (this round)",
        Unit::Plain,
        Better::Neither,
    );
    let cpu_row = table.add_row(
        "CPU time per commit (all threads)",
        Unit::Micros,
        Better::Lower,
    );
    let mut flushes = Vec::new();
    for round in 0..ctx.rounds {
        let raw = raw_flush(ctx, "w1")?;
        flushes.push(raw);
        for index in round_order(engines.len(), round) {
            let spec = &engines[index];
            let dir = ctx.fresh_dir("w1", spec, round)?;
            let engine = durable::open(spec, &dir, durable_config(ctx))?;
            durable::load(&*engine, &data, &preload, sizes.durable_load_batch)?;
            let mut micros = Vec::with_capacity(sizes.w1_commits);
            let cpu = cpu_seconds();
            let start = Instant::now();
            for i in 0..sizes.w1_commits {
                let (key, value) = data.pair((sizes.durable_preload + i) as u32);
                let begin = Instant::now();
                engine.put(key, value)?;
                micros.push(begin.elapsed().as_secs_f64() * 1e6);
            }
            let seconds = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu;
            let latency = flush::latency(&mut micros);
            table.record(rate_row, index, sizes.w1_commits as f64 / seconds);
            table.record(p50_row, index, latency.p50_us);
            table.record(p99_row, index, latency.p99_us);
            table.record(flush_row, index, latency.p50_us / raw.0.p50_us);
            table.record(cpu_row, index, cpu * 1e6 / sizes.w1_commits as f64);
            progress(format_args!(
                "W1 round {round}: {} {:.0} commits/s, p50 {:.0} µs, p99 {:.0} µs",
                spec.label,
                sizes.w1_commits as f64 / seconds,
                latency.p50_us,
                latency.p99_us
            ));
            engine.close()?;
            remove_dir(&dir)?;
        }
    }
    table.note(flush_note(sizes.flush_samples, &flushes));
    table.note("Each commit inserts one new 24-byte key with a 150-byte value and returns only once durable: aedb `DurabilityMode::Full` + `CommitFinality::Durable`; SQLite WAL + `synchronous=FULL`; redb `Durability::Immediate`; LMDB default flags; fjall `persist(PersistMode::SyncData)`; RocksDB `WriteOptions::set_sync(true)` (WAL on); the original aedb `Full` + `Durable`.");
    table.note(ROTATION_NOTE);
    table.note(CHECKPOINT_NOTE);
    table.note("The ratio row is each engine's p50 over the raw flush p50 of the same round (the target for aedb: ≤ 1.1); it has no aedb-vs-peer ratio. CPU time is the whole process's user+system time during the commits (background threads included) per commit.");
    Ok(table)
}

pub fn run_w2(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let per_writer = sizes.w2_commits_per_writer;
    let total: usize = sizes.w2_writers.iter().map(|n| n * per_writer).sum();
    let data = Dataset::generate(sizes.durable_preload + total);
    let preload = data.insertion_order(sizes.durable_preload);
    let engines = &ctx.durable_engines;
    let mut table = Table::new(
        format!(
            "W2 commit_Nw: durable single-row commits from N concurrent writers ({per_writer} commits each, after {} keys)",
            count(sizes.durable_preload)
        ),
        engines.iter().map(|spec| spec.label.clone()).collect(),
    );
    let rate_rows: Vec<usize> = sizes
        .w2_writers
        .iter()
        .map(|n| {
            table.add_row(
                format!("commits/s, {n} writer(s)"),
                Unit::PerSecond,
                Better::Higher,
            )
        })
        .collect();
    let scaling_rows: Vec<usize> = sizes
        .w2_writers
        .iter()
        .skip(1)
        .map(|n| {
            table.add_row(
                format!("scaling: {n} writers ÷ 1 writer"),
                Unit::Plain,
                Better::Higher,
            )
        })
        .collect();
    let fsync_rows: Vec<usize> = sizes
        .w2_writers
        .iter()
        .map(|n| {
            table.add_row(
                format!("log fsyncs per commit, {n} writer(s)"),
                Unit::Plain,
                Better::Lower,
            )
        })
        .collect();
    let mut flushes = Vec::new();
    for round in 0..ctx.rounds {
        let raw = raw_flush(ctx, "w2")?;
        flushes.push(raw);
        for index in round_order(engines.len(), round) {
            let spec = &engines[index];
            let dir = ctx.fresh_dir("w2", spec, round)?;
            let engine = durable::open(spec, &dir, durable_config(ctx))?;
            durable::load(&*engine, &data, &preload, sizes.durable_load_batch)?;
            let mut next = sizes.durable_preload;
            let mut one_writer_rate = None;
            for (step, &writers) in sizes.w2_writers.iter().enumerate() {
                let fsyncs_before = engine.fsyncs();
                let barrier = Barrier::new(writers + 1);
                let base = next;
                let seconds = std::thread::scope(|scope| -> Result<f64> {
                    let handles: Vec<_> = (0..writers)
                        .map(|writer| {
                            let (engine, data, barrier) = (&*engine, &data, &barrier);
                            scope.spawn(move || -> Result<()> {
                                barrier.wait();
                                let first = base + writer * per_writer;
                                for i in first..first + per_writer {
                                    let (key, value) = data.pair(i as u32);
                                    engine.put(key, value)?;
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    for handle in handles {
                        handle.join().expect("a writer panicked")?;
                    }
                    Ok(start.elapsed().as_secs_f64())
                })?;
                next += writers * per_writer;
                let commits = (writers * per_writer) as f64;
                let rate = commits / seconds;
                table.record(rate_rows[step], index, rate);
                match one_writer_rate {
                    None => one_writer_rate = Some(rate),
                    Some(one) => table.record(scaling_rows[step - 1], index, rate / one),
                }
                if let (Some(before), Some(after)) = (fsyncs_before, engine.fsyncs()) {
                    table.record(fsync_rows[step], index, (after - before) as f64 / commits);
                }
                progress(format_args!(
                    "W2 round {round}: {} {writers} writers {rate:.0} commits/s",
                    spec.label
                ));
            }
            engine.close()?;
            remove_dir(&dir)?;
        }
    }
    if sizes.w2_writers.first() != Some(&1) {
        table.note("The scaling rows divide by the first writer count, not 1.");
    }
    table.note(flush_note(sizes.flush_samples, &flushes));
    table.note("Writers start together at a barrier; each inserts its own new keys, one durable commit each, on one engine handle shared by scoped threads (aedb: one `Engine`; SQLite one connection behind a mutex — SQLite admits one writer at a time, and the mutex avoids its busy-handler sleeps; redb and LMDB serialize write transactions; fjall `insert` + `persist(SyncData)` per commit; RocksDB `put` with `sync = true`, whose concurrent writers join a write group that one leader writes and syncs to the WAL; the original aedb on its own tokio runtime).");
    table.note(ROTATION_NOTE);
    table.note(CHECKPOINT_NOTE);
    table.note("Log fsyncs are counted by the engines that report them: aedb `Engine::group_stats()` (fsyncs), RocksDB its `rocksdb.wal.synced` ticker, the original aedb `metrics().wal_sync_ops`. The others have no counter here; `benches/scripts/fsync_counts.sh` counts every engine's sync syscalls per commit with `strace` (docs/BENCHMARKS.md).");
    Ok(table)
}
