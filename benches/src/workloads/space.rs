//! W12 space: bytes on disk after W3's writes, after deleting half of the keys, after putting
//! them back, and after ten random updates per key (in `batch_keys`-key commits), beside the
//! live key+value bytes. One round: sizes are deterministic. aedb has no compaction yet.

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
        in_commits(&*engine, &updates, sizes.batch_keys, |engine, batch| {
            engine.insert_batch(Batch::new(&data, batch))
        })?;
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
