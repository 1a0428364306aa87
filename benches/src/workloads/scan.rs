//! W6 scan: short range scans from random loaded keys, and one full ordered scan, hot (pool ≥ data).

use anyhow::Result;

use super::{open_loaded, progress, remove_dir, round_order, timed, RunConfig};
use crate::data::{random_indices, Dataset};
use crate::engines::{Engine, OpenConfig};
use crate::report::{count, Better, Table, Unit};

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let data = Dataset::generate(sizes.hot_keys);
    let sorted = data.sorted_order(sizes.hot_keys);
    let config = OpenConfig {
        cache_bytes: sizes.hot_cache_bytes,
    };
    let mut loaded = Vec::new();
    for spec in &ctx.engines {
        let (engine, dir) = open_loaded(ctx, "w6", spec, config, &data, &sorted)?;
        full_scan(&*engine, data.len())?;
        loaded.push((engine, dir));
    }
    let starts = random_indices(data.len(), sizes.scans, 0x6_0001);

    let mut table = Table::new(
        format!("W6 scan: {} keys, pool ≥ data, warmed", count(data.len())),
        ctx.labels(),
    );
    let short_row = table.add_row(
        format!("scans of {} from a random key", sizes.scan_len),
        Unit::PerSecond,
        Better::Higher,
    );
    let entries_row = table.add_row(
        "full ordered scan: entries",
        Unit::PerSecond,
        Better::Higher,
    );
    let bytes_row = table.add_row(
        "full ordered scan: key+value bytes",
        Unit::MegabytesPerSecond,
        Better::Higher,
    );
    for round in 0..ctx.rounds {
        for index in round_order(loaded.len(), round) {
            let engine = &loaded[index].0;
            let seconds = timed(|| short_scans(&**engine, &data, &starts, sizes.scan_len))?;
            table.record(short_row, index, starts.len() as f64 / seconds);
            let mut bytes = 0;
            let full_seconds = timed(|| {
                bytes = full_scan(&**engine, data.len())?;
                Ok(())
            })?;
            table.record(entries_row, index, data.len() as f64 / full_seconds);
            table.record(bytes_row, index, bytes as f64 / full_seconds / 1e6);
            progress(format_args!(
                "W6 round {round}: {} short {seconds:.2} s, full {full_seconds:.2} s",
                engine.label()
            ));
        }
    }
    for (engine, dir) in loaded {
        drop(engine);
        remove_dir(&dir)?;
    }
    table.note(format!(
        "{} scans per round, each from a uniformly random loaded key (inclusive), one read transaction for all of them; entries come back as owned `Vec`s in aedb, borrowed slices in redb and LMDB.",
        count(sizes.scans)
    ));
    Ok(table)
}

fn short_scans(engine: &dyn Engine, data: &Dataset, starts: &[u32], len: usize) -> Result<()> {
    let mut reader = engine.reader()?;
    for start in starts {
        let totals = reader.scan(Some(data.key(*start)), len)?;
        anyhow::ensure!(
            totals.entries >= 1,
            "{}: a scan from a loaded key found nothing",
            engine.label()
        );
    }
    Ok(())
}

/// Scan every entry in order; returns the key+value bytes seen.
fn full_scan(engine: &dyn Engine, expected: usize) -> Result<u64> {
    let totals = engine.reader()?.scan(None, usize::MAX)?;
    anyhow::ensure!(
        totals.entries == expected as u64,
        "{}: full scan saw {} entries, expected {expected}",
        engine.label(),
        totals.entries
    );
    Ok(totals.bytes)
}
