//! W9 checkpoint: making the data file current after a long log, and what it does to commits.
//!
//! Per round and engine with a checkpoint step (aedb, SQLite, RocksDB, the original aedb), in a fresh
//! directory with checkpoints only on demand: load `durable_preload` keys and checkpoint; write
//! `w9_update_mib` of new key+value payload in durable 1,000-key commits; time
//! `w9_probe_commits` durable single-row commits (the latency without a checkpoint); then start
//! the checkpoint on another thread and keep making single-row durable commits until it ends (the
//! latency during a checkpoint).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::flush;
use super::{progress, remove_dir, round_order, RunConfig};
use crate::data::{Dataset, KEY_BYTES, VALUE_BYTES};
use crate::durable::{self, has_checkpoint, DurableConfig};
use crate::engines::EngineKind;
use crate::report::{count, Better, Table, Unit};

const MIB: u64 = 1 << 20;
/// Commits made while one checkpoint runs, at most.
const MAX_DURING: usize = 200_000;

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let rows = (sizes.w9_update_mib * MIB / (KEY_BYTES + VALUE_BYTES) as u64) as usize;
    let data = Dataset::generate(sizes.durable_preload + rows);
    let preload = data.insertion_order(sizes.durable_preload);
    let updates: Vec<u32> =
        (sizes.durable_preload as u32..(sizes.durable_preload + rows) as u32).collect();
    let engines: Vec<_> = ctx
        .durable_engines
        .iter()
        .filter(|spec| has_checkpoint(spec.kind))
        .cloned()
        .collect();
    anyhow::ensure!(
        !engines.is_empty(),
        "W9: none of the engines has a checkpoint step"
    );
    let config = DurableConfig {
        cache_bytes: sizes.durable_cache_bytes,
        manual_checkpoints: true,
    };
    let mut table = Table::new(
        format!(
            "W9 checkpoint: after {} MiB of new key+value payload ({} keys, durable 1,000-key commits) on {} keys",
            sizes.w9_update_mib,
            count(rows),
            count(sizes.durable_preload)
        ),
        engines.iter().map(|spec| spec.label.clone()).collect(),
    );
    let seconds_row = table.add_row("checkpoint time", Unit::Seconds, Better::Lower);
    let payload_row = table.add_row(
        "key+value MB made current per second",
        Unit::MegabytesPerSecond,
        Better::Higher,
    );
    let written_row = table.add_row(
        "checkpoint bytes written per second",
        Unit::MegabytesPerSecond,
        Better::Neither,
    );
    let written_total_row = table.add_row("checkpoint bytes written", Unit::Bytes, Better::Lower);
    let p50_without_row = table.add_row(
        "commit p50 without a checkpoint",
        Unit::Micros,
        Better::Lower,
    );
    let p99_without_row = table.add_row(
        "commit p99 without a checkpoint",
        Unit::Micros,
        Better::Lower,
    );
    let p50_during_row = table.add_row(
        "commit p50 during the checkpoint",
        Unit::Micros,
        Better::Lower,
    );
    let p99_during_row = table.add_row(
        "commit p99 during the checkpoint",
        Unit::Micros,
        Better::Lower,
    );
    let ratio_row = table.add_row("p99 during ÷ p99 without", Unit::Plain, Better::Lower);
    let during_row = table.add_row(
        "commits made during the checkpoint",
        Unit::Plain,
        Better::Neither,
    );

    for round in 0..ctx.rounds {
        for index in round_order(engines.len(), round) {
            let spec = &engines[index];
            if spec.kind == EngineKind::Seed && round > 0 {
                // Its 100 MiB load alone takes about 100 s here: one round keeps the run short.
                continue;
            }
            let dir = ctx.fresh_dir("w9", spec, round)?;
            let engine = durable::open(spec, &dir, config)?;
            durable::load(&*engine, &data, &preload, sizes.durable_load_batch)?;
            engine.checkpoint()?;
            durable::load(&*engine, &data, &updates, sizes.durable_load_batch)?;

            // Single-row commits overwrite preloaded keys with values of other pairs.
            let probe = |i: usize| {
                let key = data.key((i % sizes.durable_preload) as u32);
                let value = data.pair(((i * 7 + 3) % data.len()) as u32).1;
                (key, value)
            };
            let mut without = Vec::with_capacity(sizes.w9_probe_commits);
            for i in 0..sizes.w9_probe_commits {
                let (key, value) = probe(i);
                let begin = Instant::now();
                engine.put(key, value)?;
                without.push(begin.elapsed().as_secs_f64() * 1e6);
            }

            let done = AtomicBool::new(false);
            let mut during = Vec::new();
            let (seconds, stats) = std::thread::scope(|scope| -> Result<_> {
                let checkpointer = scope.spawn(|| {
                    let start = Instant::now();
                    let stats = engine.checkpoint();
                    let seconds = start.elapsed().as_secs_f64();
                    done.store(true, Ordering::Release);
                    stats.map(|stats| (seconds, stats))
                });
                let mut i = sizes.w9_probe_commits;
                while !done.load(Ordering::Acquire) && during.len() < MAX_DURING {
                    let (key, value) = probe(i);
                    let begin = Instant::now();
                    engine.put(key, value)?;
                    during.push(begin.elapsed().as_secs_f64() * 1e6);
                    i += 1;
                }
                checkpointer.join().expect("the checkpoint thread panicked")
            })?;
            let without = flush::latency(&mut without);
            let during_count = during.len();
            let during = flush::latency(&mut during);
            table.record(seconds_row, index, seconds);
            table.record(
                payload_row,
                index,
                (rows * (KEY_BYTES + VALUE_BYTES)) as f64 / 1e6 / seconds,
            );
            if let Some(bytes) = stats.and_then(|stats| stats.bytes_written) {
                table.record(written_row, index, bytes as f64 / 1e6 / seconds);
                table.record(written_total_row, index, bytes as f64);
            }
            table.record(p50_without_row, index, without.p50_us);
            table.record(p99_without_row, index, without.p99_us);
            table.record(during_row, index, during_count as f64);
            if during_count > 0 {
                table.record(p50_during_row, index, during.p50_us);
                table.record(p99_during_row, index, during.p99_us);
                table.record(ratio_row, index, during.p99_us / without.p99_us);
            }
            progress(format_args!(
                "W9 round {round}: {} checkpoint {seconds:.2} s; p99 {:.0} µs without, {:.0} µs during ({during_count} commits)",
                spec.label, without.p99_us, during.p99_us
            ));
            engine.close()?;
            remove_dir(&dir)?;
        }
    }
    let skipped: Vec<&str> = ctx
        .durable_engines
        .iter()
        .filter(|spec| !has_checkpoint(spec.kind))
        .map(|spec| spec.label.as_str())
        .collect();
    table.note("Checkpoint: aedb `Engine::checkpoint_now()` (dirty pages to the data file, then the meta page; commits go on); SQLite `PRAGMA wal_checkpoint(PASSIVE)` on a second connection (what its auto-checkpoint runs; the writer connection goes on); RocksDB `DB::flush()` (the memtable written out as an L0 SST file, with a 2 GiB `write_buffer_size` so that nothing was flushed before; writers go on into a new memtable); the original aedb `checkpoint_now()` (a full zstd snapshot of its in-memory keyspace). Bytes written: aedb pages written × page size, RocksDB the growth of its live SST bytes (`rocksdb.total-sst-files-size`), the original aedb its checkpoint file; SQLite reports log frames, not pages written (none given).");
    table.note("Engines run in a rotating order: round r starts at engine r mod n.");
    table.note("Commit latency: durable single-row commits overwriting preloaded keys, one writer; \"during\" counts the commits that started before the checkpoint returned. The ratio row's target for aedb is ≤ 2.");
    if engines.iter().any(|spec| spec.kind == EngineKind::Seed) && ctx.rounds > 1 {
        table.note("The original aedb runs one round only (loading its 100 MiB takes about 100 s on this machine).");
    }
    if !skipped.is_empty() {
        table.note(format!(
            "Not run on {}: no checkpoint step (redb and LMDB write their B-tree in place at every commit; fjall flushes memtables and compacts in the background).",
            skipped.join(", ")
        ));
    }
    Ok(table)
}
