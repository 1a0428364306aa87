//! W5 get_cold_4x: uniform random point reads with the data about four times the pool (cache).
//!
//! Each round reopens the engine (empty pool/cache), drops the OS page cache when allowed, times
//! the first gets (device reads), warms up, then times steady-state gets. No memory cgroup is
//! applied: the OS page cache is not capped, so in the steady state the pool misses of aedb and
//! redb are served from the page cache, and LMDB (which reads through its mmap) is all in memory.

use anyhow::{Context, Result};

use super::{check_found, dir_bytes, open_loaded, progress, remove_dir, round_order, RunConfig};
use crate::data::{random_indices, Dataset};
use crate::engines::{self, Engine, OpenConfig};
use crate::report::{count, si, Better, Table, Unit};

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let data = Dataset::generate(sizes.cold_keys);
    let sorted = data.sorted_order(sizes.cold_keys);
    let config = OpenConfig {
        cache_bytes: sizes.cold_cache_bytes,
    };
    let mut dirs = Vec::new();
    let mut table = Table::new(
        format!(
            "W5 get_cold_4x: uniform gets/s, {} keys, pool/cache {} MiB",
            count(data.len()),
            sizes.cold_cache_bytes >> 20
        ),
        ctx.labels(),
    );
    let size_row = table.add_row("data files", Unit::Bytes, Better::Neither);
    let ratio_row = table.add_row("data ÷ pool", Unit::Plain, Better::Neither);
    for (index, spec) in ctx.engines.iter().enumerate() {
        let (engine, dir) = open_loaded(ctx, "w5", spec, config, &data, &sorted)?;
        drop(engine);
        let (bytes, _) = dir_bytes(&dir)?;
        table.record(size_row, index, bytes as f64);
        table.record(
            ratio_row,
            index,
            bytes as f64 / sizes.cold_cache_bytes as f64,
        );
        dirs.push(dir);
    }

    let can_drop = ctx.drop_caches && drop_page_cache().is_ok();
    let first_row = can_drop.then(|| {
        table.add_row(
            format!(
                "first {} gets after dropping the page cache",
                count(sizes.cold_first_gets)
            ),
            Unit::PerSecond,
            Better::Higher,
        )
    });
    let steady_row = table.add_row(
        format!(
            "steady state ({} gets after as many to warm up)",
            count(sizes.cold_gets)
        ),
        Unit::PerSecond,
        Better::Higher,
    );
    let first_order = random_indices(data.len(), sizes.cold_first_gets, 0x5_0001);
    let warm_order = random_indices(data.len(), sizes.cold_gets, 0x5_0002);
    let steady_order = random_indices(data.len(), sizes.cold_gets, 0x5_0003);
    for round in 0..ctx.rounds {
        for index in round_order(ctx.engines.len(), round) {
            let (spec, dir) = (&ctx.engines[index], &dirs[index]);
            let engine = engines::open(spec, dir, config)?;
            if let Some(row) = first_row {
                drop_page_cache()?;
                table.record(row, index, gets_per_second(&*engine, &data, &first_order)?);
            }
            gets_per_second(&*engine, &data, &warm_order)?;
            let rate = gets_per_second(&*engine, &data, &steady_order)?;
            table.record(steady_row, index, rate);
            progress(format_args!(
                "W5 round {round}: {} steady {}/s",
                spec.label,
                si(rate)
            ));
        }
    }
    for dir in dirs {
        remove_dir(&dir)?;
    }
    table.note("No memory cgroup is applied (this benchmark does not touch the session's cgroups): the OS page cache is uncapped, so steady-state pool misses of aedb and redb are served by the page cache, and LMDB, which has no cache of its own, reads its whole file from memory through the mmap.");
    if can_drop {
        table.note("The first-gets row is measured right after `echo 1 > /proc/sys/vm/drop_caches` on a freshly reopened engine: device reads plus filling the pool (or page cache).");
    } else {
        table.note("The page cache could not be dropped (not root, or --no-drop-caches): no first-gets row.");
    }
    Ok(table)
}

fn gets_per_second(engine: &dyn Engine, data: &Dataset, order: &[u32]) -> Result<f64> {
    let mut reader = engine.reader()?;
    let start = std::time::Instant::now();
    for index in order {
        check_found(engine.label(), reader.get(data.key(*index))?)?;
    }
    Ok(order.len() as f64 / start.elapsed().as_secs_f64())
}

/// Drop the clean part of the OS page cache (needs root). Every engine synced its file after
/// loading, so none of their pages are dirty.
pub fn drop_page_cache() -> Result<()> {
    std::fs::write(DROP_CACHES, "1").with_context(|| format!("write {DROP_CACHES}"))
}
