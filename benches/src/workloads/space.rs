//! W12 space: bytes on disk after W3's writes, after deleting half of the keys, after putting
//! them back, and after ten random updates per key (in `batch_keys`-key commits), beside the
//! live key+value bytes, with one thread reading during the updates. One round: sizes are
//! deterministic. aedb has no compaction yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::{dir_bytes, progress, remove_dir, RunConfig};
use crate::data::{random_indices, Batch, Dataset};
use crate::engines::{self, Engine, OpenConfig};
use crate::report::{count, Better, Table, Unit};

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let batch_total = sizes.batch_commits * sizes.batch_keys;
    let data = Dataset::generate(batch_total.max(sizes.bulk_keys));
    let random = data.insertion_order(batch_total);
    let sorted = data.sorted_order(sizes.bulk_keys);
    // Every other key in insertion (random) order: half the keys, spread over the whole tree.
    let half: Vec<u32> = data
        .insertion_order(sizes.bulk_keys)
        .into_iter()
        .step_by(2)
        .collect();
    let config = OpenConfig {
        cache_bytes: sizes.hot_cache_bytes,
    };

    let mut table = Table::new(
        "W12 space: bytes on disk (apparent file length)",
        ctx.labels(),
    );
    let batches_row = table.add_row(
        format!(
            "after {} commits × {} random keys",
            sizes.batch_commits,
            count(sizes.batch_keys)
        ),
        Unit::Bytes,
        Better::Lower,
    );
    let bulk_row = table.add_row(
        format!("after 1 sorted commit of {} keys", count(sizes.bulk_keys)),
        Unit::Bytes,
        Better::Lower,
    );
    let delete_row = table.add_row(
        format!(
            "then after deleting half ({} keys, {}-key commits)",
            count(half.len()),
            count(sizes.delete_batch_keys)
        ),
        Unit::Bytes,
        Better::Lower,
    );
    let reinsert_row = table.add_row(
        "then after inserting that half again",
        Unit::Bytes,
        Better::Lower,
    );
    let updates = random_indices(sizes.bulk_keys, sizes.w12_updates, 0x5eed_0012);
    let live: usize = (0..sizes.bulk_keys as u32)
        .map(|i| {
            let (key, value) = data.pair(i);
            key.len() + value.len()
        })
        .sum();
    let update_row = table.add_row(
        format!(
            "then after {} random updates of those keys ({}-key commits)",
            count(updates.len()),
            count(sizes.batch_keys)
        ),
        Unit::Bytes,
        Better::Lower,
    );
    let live_ratio_row = table.add_row(
        format!(
            "file ÷ live key+value bytes ({}) after the updates",
            count(live)
        ),
        Unit::Plain,
        Better::Lower,
    );
    let allocated_row = table.add_row("allocated blocks at the end", Unit::Bytes, Better::Lower);
    let reads_row = table.add_row(
        "gets during the updates (one reader thread, a new read transaction per 1,000 gets)",
        Unit::PerSecond,
        Better::Higher,
    );
    let updates_row = table.add_row(
        "updates per second meanwhile",
        Unit::PerSecond,
        Better::Higher,
    );

    for (index, spec) in ctx.engines.iter().enumerate() {
        let dir = ctx.fresh_dir("w12-batches", spec, 0)?;
        let engine = engines::open(spec, &dir, config)?;
        for chunk in random.chunks(sizes.batch_keys) {
            engine.insert_batch(Batch::new(&data, chunk))?;
        }
        engine.sync()?;
        table.record(batches_row, index, dir_bytes(&dir)?.0 as f64);
        drop(engine);
        remove_dir(&dir)?;

        let dir = ctx.fresh_dir("w12-bulk", spec, 0)?;
        let engine = engines::open(spec, &dir, config)?;
        engine.load_sorted(Batch::new(&data, &sorted))?;
        engine.sync()?;
        table.record(bulk_row, index, dir_bytes(&dir)?.0 as f64);
        in_commits(&*engine, &half, sizes.delete_batch_keys, |engine, batch| {
            engine.remove_batch(Batch::new(&data, batch))
        })?;
        table.record(delete_row, index, dir_bytes(&dir)?.0 as f64);
        in_commits(&*engine, &half, sizes.delete_batch_keys, |engine, batch| {
            engine.insert_batch(Batch::new(&data, batch))
        })?;
        table.record(reinsert_row, index, dir_bytes(&dir)?.0 as f64);
        let reads = updates_with_reads(&*engine, &data, &updates, sizes.batch_keys)?;
        table.record(reads_row, index, reads.gets_per_sec);
        table.record(updates_row, index, reads.updates_per_sec);
        let (apparent, allocated) = dir_bytes(&dir)?;
        table.record(update_row, index, apparent as f64);
        table.record(live_ratio_row, index, apparent as f64 / live as f64);
        table.record(allocated_row, index, allocated as f64);
        drop(engine);
        remove_dir(&dir)?;
        progress(format_args!("W12: {} done", spec.label));
    }
    table.note("Ratios here are peer bytes ÷ aedb bytes (> 1: aedb is smaller). Every phase ends with one sync (checkpoint) before the size is read; files are measured with the engine still open.");
    table.note("aedb has no compaction and never shrinks its file yet: space freed by deletes is reused by later writes but not returned. Peers' own compaction (redb `Database::compact`, LMDB `mdb_env_copy2` with `MDB_CP_COMPACT`) is not run.");
    Ok(table)
}

struct ReadsMeanwhile {
    gets_per_sec: f64,
    updates_per_sec: f64,
}

/// The update phase, with one thread reading loaded keys until the updates and their sync are
/// done: readers pin versions, which is what keeps replaced pages from reuse in every engine.
fn updates_with_reads(
    engine: &dyn Engine,
    data: &Dataset,
    updates: &[u32],
    per_commit: usize,
) -> Result<ReadsMeanwhile> {
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (gets, elapsed) = std::thread::scope(|scope| -> Result<(u64, f64)> {
        let reader = scope.spawn(|| -> Result<u64> {
            let mut gets = 0u64;
            let mut at = 0usize;
            while !done.load(Ordering::Relaxed) {
                let mut reader = engine.reader()?;
                for _ in 0..1_000 {
                    let index = updates[at % updates.len()];
                    at += 7;
                    anyhow::ensure!(
                        reader.get(data.key(index))?.is_some(),
                        "{}: a loaded key read as missing during the updates",
                        engine.label()
                    );
                    gets += 1;
                }
            }
            Ok(gets)
        });
        let written = in_commits(engine, updates, per_commit, |engine, batch| {
            engine.insert_batch(Batch::new(data, batch))
        });
        let elapsed = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let gets = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the W12 reader panicked"))??;
        written?;
        Ok((gets, elapsed))
    })?;
    Ok(ReadsMeanwhile {
        gets_per_sec: gets as f64 / elapsed,
        updates_per_sec: updates.len() as f64 / elapsed,
    })
}

/// Apply `op` to `indices` in commits of `per_commit`, then sync once.
fn in_commits(
    engine: &dyn Engine,
    indices: &[u32],
    per_commit: usize,
    op: impl Fn(&dyn Engine, &[u32]) -> Result<()>,
) -> Result<()> {
    for chunk in indices.chunks(per_commit) {
        op(engine, chunk)?;
    }
    engine.sync()
}
