//! W3 commit_batch: amortized writes, not durable per commit.
//!
//! - batches: `batch_commits` commits of `batch_keys` random keys each into an empty table;
//! - bulk: one commit of `bulk_keys` keys in key order (aedb's bulk load, redb's sorted inserts,
//!   LMDB's `MDB_APPEND`).
//!
//! Each timing ends with the engine's one sync, so every engine has its data on disk when the
//! clock stops. Fresh directory per engine per round; engines interleaved within a round.

use anyhow::Result;

use super::{progress, remove_dir, round_order, timed, RunConfig};
use crate::data::{Batch, Dataset};
use crate::engines::{self, OpenConfig};
use crate::report::{count, Better, Table, Unit};

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let batch_total = sizes.batch_commits * sizes.batch_keys;
    let data = Dataset::generate(batch_total.max(sizes.bulk_keys));
    let random = data.insertion_order(batch_total);
    let sorted = data.sorted_order(sizes.bulk_keys);
    let config = OpenConfig {
        cache_bytes: sizes.hot_cache_bytes,
    };

    let mut table = Table::new(
        "W3 commit_batch: keys/s, not durable per commit, one sync at the end",
        ctx.labels(),
    );
    let batches = table.add_row(
        format!(
            "{} commits × {} random keys",
            sizes.batch_commits,
            count(sizes.batch_keys)
        ),
        Unit::PerSecond,
        Better::Higher,
    );
    let bulk = table.add_row(
        format!("1 commit of {} sorted keys", count(sizes.bulk_keys)),
        Unit::PerSecond,
        Better::Higher,
    );

    for round in 0..ctx.rounds {
        for index in round_order(ctx.engines.len(), round) {
            let spec = &ctx.engines[index];
            let dir = ctx.fresh_dir("w3-batches", spec, round)?;
            let engine = engines::open(spec, &dir, config)?;
            let seconds = timed(|| {
                for chunk in random.chunks(sizes.batch_keys) {
                    engine.insert_batch(Batch::new(&data, chunk))?;
                }
                engine.sync()
            })?;
            table.record(batches, index, batch_total as f64 / seconds);
            drop(engine);
            remove_dir(&dir)?;

            let dir = ctx.fresh_dir("w3-bulk", spec, round)?;
            let engine = engines::open(spec, &dir, config)?;
            let bulk_seconds = timed(|| {
                engine.load_sorted(Batch::new(&data, &sorted))?;
                engine.sync()
            })?;
            table.record(bulk, index, sorted.len() as f64 / bulk_seconds);
            drop(engine);
            remove_dir(&dir)?;
            progress(format_args!(
                "W3 round {round}: {} batches {seconds:.2} s, bulk {bulk_seconds:.2} s",
                spec.label
            ));
        }
    }
    table.note("Durability off: commits are not synced; the time includes one sync at the end (aedb checkpoint, redb `Durability::Immediate` empty commit, LMDB `mdb_env_sync`).");
    table.note("Sorted commit: aedb `WriteTxn::bulk_load`; redb inserts in key order (no bulk API); LMDB `put` with `MDB_APPEND`.");
    Ok(table)
}
