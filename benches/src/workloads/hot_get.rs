//! W4 get_hot: point reads of loaded keys with the pool (cache) larger than the data, warmed,
//! at 1 and 2 threads, against a `BTreeMap` behind a lock as the in-memory reference.

use anyhow::Result;

use super::{check_found, open_loaded, progress, remove_dir, round_order, RunConfig};
use crate::data::{random_indices, Dataset};
use crate::engines::{read_value, Engine, EngineKind, EngineSpec, OpenConfig, Reader};
use crate::report::{count, si, Better, Table, Unit};

const THREADS: [usize; 2] = [1, 2];

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let sizes = ctx.sizes;
    let data = Dataset::generate(sizes.hot_keys);
    let sorted = data.sorted_order(sizes.hot_keys);
    let config = OpenConfig {
        cache_bytes: sizes.hot_cache_bytes,
    };
    let mut specs = ctx.engines.clone();
    specs.push(EngineSpec {
        kind: EngineKind::Btreemap,
        page_size: 0,
        direct_io: false,
        label: "BTreeMap+RwLock".into(),
    });

    let mut loaded = Vec::new();
    for spec in &specs {
        let (engine, dir) = open_loaded(ctx, "w4", spec, config, &data, &sorted)?;
        warm(&*engine, &data)?;
        loaded.push((engine, dir));
    }
    // One access order per thread, the same for every engine.
    let orders: Vec<Vec<u32>> = (0..*THREADS.iter().max().unwrap_or(&1))
        .map(|thread| random_indices(data.len(), sizes.hot_gets, 0x4_0000 + thread as u64))
        .collect();

    let labels = specs.iter().map(|spec| spec.label.clone()).collect();
    let mut table = Table::new(
        format!(
            "W4 get_hot: gets/s, {} keys, pool ≥ data, warmed",
            count(data.len())
        ),
        labels,
    );
    let rows: Vec<usize> = THREADS
        .iter()
        .map(|threads| {
            table.add_row(
                format!("gets/s, {threads} thread(s)"),
                Unit::PerSecond,
                Better::Higher,
            )
        })
        .collect();
    let reading_rows: Vec<usize> = THREADS
        .iter()
        .map(|threads| {
            table.add_row(
                format!("gets/s reading the value, {threads} thread(s)"),
                Unit::PerSecond,
                Better::Higher,
            )
        })
        .collect();
    let expected_sums: Vec<u64> = orders
        .iter()
        .map(|order| order.iter().map(|i| read_value(data.pair(*i).1)).sum())
        .collect();
    for round in 0..ctx.rounds {
        for index in round_order(loaded.len(), round) {
            let engine = &loaded[index].0;
            for (row, threads) in rows.iter().zip(THREADS) {
                let rate = gets_per_second(&**engine, &data, &orders[..threads])?;
                table.record(*row, index, rate);
                progress(format_args!(
                    "W4 round {round}: {} {threads} thread(s) {}/s",
                    engine.label(),
                    si(rate)
                ));
            }
            for (row, threads) in reading_rows.iter().zip(THREADS) {
                let rate = reading_gets_per_second(
                    &**engine,
                    &orders[..threads],
                    &expected_sums[..threads],
                    &data,
                )?;
                table.record(*row, index, rate);
                progress(format_args!(
                    "W4 round {round}: {} {threads} thread(s) reading the value {}/s",
                    engine.label(),
                    si(rate)
                ));
            }
        }
    }
    for (engine, dir) in loaded {
        drop(engine);
        remove_dir(&dir)?;
    }
    table.note(format!(
        "{} uniformly random gets of loaded keys per thread per round; one long-lived read transaction (snapshot) per thread.",
        count(sizes.hot_gets)
    ));
    table.note("Every get hands the value to the caller where it lies: redb's guard, LMDB's mmap slice, the BTreeMap's reference, aedb's `TreeView::get_with`. In the plain rows the caller takes only the value's length, so an engine that hands out a pointer never loads the value's bytes, while aedb's lock-free path copies them out of the page (its caller's closure runs after the read section). In the rows \"reading the value\" the caller sums the value's bytes, as a caller that asked for a value does; the sums are checked against the data.");
    Ok(table)
}

/// Read every key once so the pool (or page cache) holds the data.
fn warm(engine: &dyn Engine, data: &Dataset) -> Result<()> {
    let mut reader = engine.reader()?;
    for index in 0..data.len() as u32 {
        check_found(engine.label(), reader.get(data.key(index))?)?;
    }
    Ok(())
}

/// [`gets_per_second`] with a caller that reads every value: each thread sums the bytes of the
/// values it gets, checked after the clock stops against `expected` (computed before).
fn reading_gets_per_second(
    engine: &dyn Engine,
    orders: &[Vec<u32>],
    expected: &[u64],
    data: &Dataset,
) -> Result<f64> {
    let (rate, sums) = timed_gets(engine, data, orders, |reader, key| {
        reader
            .get_read(key)?
            .ok_or_else(|| anyhow::anyhow!("{}: a loaded key was not found", engine.label()))
    })?;
    anyhow::ensure!(
        sums == expected,
        "{}: the values read do not sum to the data's",
        engine.label()
    );
    Ok(rate)
}

/// Gets per second, all threads together, each thread walking its own access order.
pub fn gets_per_second(engine: &dyn Engine, data: &Dataset, orders: &[Vec<u32>]) -> Result<f64> {
    let (rate, _) = timed_gets(engine, data, orders, |reader, key| {
        check_found(engine.label(), reader.get(key)?).map(|()| 0)
    })?;
    Ok(rate)
}

/// `get` on every key of each order, one thread per order with its own reader: gets per
/// second over all threads, and each thread's sum of what `get` returned.
fn timed_gets(
    engine: &dyn Engine,
    data: &Dataset,
    orders: &[Vec<u32>],
    get: impl Fn(&mut dyn Reader, &[u8]) -> Result<u64> + Sync,
) -> Result<(f64, Vec<u64>)> {
    let start = std::time::Instant::now();
    let sums = std::thread::scope(|scope| -> Result<Vec<u64>> {
        let handles: Vec<_> = orders
            .iter()
            .map(|order| {
                let get = &get;
                scope.spawn(move || -> Result<u64> {
                    let mut reader = engine.reader()?;
                    let mut sum = 0u64;
                    for index in order {
                        sum += get(&mut *reader, data.key(*index))?;
                    }
                    Ok(sum)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a reader thread panicked"))?
            })
            .collect()
    })?;
    let gets = orders.iter().map(Vec::len).sum::<usize>();
    Ok((gets as f64 / start.elapsed().as_secs_f64(), sums))
}
