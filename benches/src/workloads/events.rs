//! W13: accumulators and reactive event processors through the public `AedbInstance` API, ours
//! against the original aedb 0.1.9 (`seed`) in the same run (issue #12).
//!
//! Both engines run their default configuration, so `DurabilityMode::Full` (every commit fsynced
//! before it is answered), on a tokio multi-thread runtime with one worker per core. Each
//! round, per engine (in W11's rotating order), three phases, each in a fresh directory:
//!
//! 1. **Ingest**: exactly-once deltas through `accumulate(project, scope, name, delta,
//!    dedupe_key, order_key)`, one commit per delta, by 1 writer (1,000 deltas) and then by 64
//!    concurrent writers (tokio tasks, 100 deltas each); deltas per second from the first spawn
//!    to the last writer's end. Order keys must rise strictly per accumulator, so **each writer
//!    has an accumulator of its own** (order keys 1, 2, … of its own: no "order key must be
//!    strictly increasing" refusal can occur, none is retried); the single writer has its own
//!    too. Checked: every call succeeds, each strong value equals the sum of its writer's
//!    deltas, and re-sending every writer's last delta (same dedupe key and payload) is accepted
//!    and changes nothing.
//! 2. **Strong read over many deltas**: one accumulator (`snapshot_every` 10,000, dedupe kept
//!    for 86,400 commits, as the README) loaded with 1,000,000 deltas (`--w13-deltas`; 50,000
//!    with `--quick`) as `commit_many_atomic` commits of 10,000 `Mutation::Accumulate` each,
//!    still at `Full`. Then `accumulator_value_strong(.., AtLatest)` is timed call by call (p50,
//!    p99, each result checked) twice: right after the load, and after the instance is dropped
//!    without `shutdown` (as a crash leaves it) and opened again. The original folds deltas into
//!    the value in a background projector after each commit, but its recovery replays the log's
//!    deltas without folding them, so after the reopen they all stay unapplied until the next
//!    commit; its `shutdown` would write a checkpoint of the folded value instead. Ours folds
//!    each delta inside its own commit (`commit/accumulators/upkeep.rs`, `fold`): it never has
//!    unapplied deltas. The `accumulator_lag(..).unapplied_deltas` each engine reports just
//!    before each measurement is a row of the table. This phase opens with
//!    `RecoveryMode::Permissive` (both engines): the original's default Strict recovery refuses
//!    a directory dropped before its first checkpoint ("manifest unavailable and reconstruction
//!    disabled"), and after a checkpoint it replays the log only up to that checkpoint (the
//!    deltas after it are lost on a crash, even at `Full`); Permissive replays the whole log.
//! 3. **Emit → handler**: a reactive processor (`start_reactive_processor`, topic filter set,
//!    the other options at their defaults, which are the README's) whose handler notes
//!    `Instant::now()` for each event it is handed; events are emitted one at a time
//!    (`emit_event`, one commit each, the time taken before the call) with a 2 ms pause between.
//!    Latency = the handler's first sight of an event − the start of its emit; later deliveries
//!    of the same event (the original redelivers) are counted, not timed. Two run-loop settings,
//!    the same for both engines, each in a fresh instance: the README's (`run_interval_ms` 20,
//!    `idle_backoff_ms` 50) and low (1 and 1). Checked: every event is delivered within 60 s,
//!    and no unknown event is.

mod adapter;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::flush::{latency, Latency};
use super::{progress, remove_dir, round_order, RunConfig};
use crate::report::{count, median, Better, Table, Unit};
use adapter::{original, ours, sum_of, AccDb, Lag, PollOptions, DEDUPE_RETAIN_COMMITS, EMIT_PAUSE};

const INGEST_WRITERS: usize = 64;
/// Deltas per `commit_many_atomic` while loading the read phase's accumulator.
const LOAD_PER_COMMIT: usize = 10_000;
/// The README's `snapshot_every`.
const SNAPSHOT_EVERY: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    Original,
}

/// Open with the default configuration; `permissive`: with `RecoveryMode::Permissive`.
fn open(which: Which, dir: &Path, permissive: bool) -> Result<Box<dyn AccDb>> {
    Ok(match which {
        Which::Ours => Box::new(ours::Db::open(dir, permissive)?),
        Which::Original => Box::new(original::Db::open(dir, permissive)?),
    })
}

/// Deltas, reads and events per round.
struct Counts {
    /// Deltas the single writer adds.
    solo_deltas: u64,
    /// Deltas each of the 64 writers adds.
    writer_deltas: u64,
    /// Deltas loaded before the strong reads.
    loaded: u64,
    strong_reads: usize,
    events: usize,
}

/// The processor option sets, README's first.
const POLLS: [(&str, PollOptions); 2] = [
    (
        "README options (run_interval 20 ms, idle_backoff 50 ms)",
        PollOptions {
            run_interval_ms: 20,
            idle_backoff_ms: 50,
        },
    ),
    (
        "low options (run_interval 1 ms, idle_backoff 1 ms)",
        PollOptions {
            run_interval_ms: 1,
            idle_backoff_ms: 1,
        },
    ),
];

/// The table's rows.
struct Rows {
    ingest_1: usize,
    ingest_64: usize,
    load: usize,
    /// After the load, then after the reopen: (p50, p99, unapplied deltas).
    reads: [(usize, usize, usize); 2],
    /// Per option set: (p50, p99, deliveries per event).
    events: [(usize, usize, usize); 2],
}

impl Rows {
    fn add(table: &mut Table, counts: &Counts) -> Rows {
        let ingest_1 = table.add_row(
            format!(
                "accumulate ingest, 1 writer × {} deltas (deltas/s)",
                count(counts.solo_deltas as usize)
            ),
            Unit::PerSecond,
            Better::Higher,
        );
        let ingest_64 = table.add_row(
            format!(
                "accumulate ingest, {INGEST_WRITERS} writers × {} deltas, an accumulator each (deltas/s; target ≥ 5×)",
                count(counts.writer_deltas as usize)
            ),
            Unit::PerSecond,
            Better::Higher,
        );
        let load = table.add_row(
            format!(
                "load {} deltas, commit_many_atomic of {} (s)",
                count(counts.loaded as usize),
                count(LOAD_PER_COMMIT)
            ),
            Unit::Seconds,
            Better::Lower,
        );
        let mut read_rows = |when: &str| {
            (
                table.add_row(
                    format!("strong read {when}: p50"),
                    Unit::MicrosFine,
                    Better::Lower,
                ),
                table.add_row(
                    format!("strong read {when}: p99"),
                    Unit::MicrosFine,
                    Better::Lower,
                ),
                table.add_row(
                    format!("unapplied deltas {when} (accumulator_lag)"),
                    Unit::Count,
                    Better::Neither,
                ),
            )
        };
        let reads = [
            read_rows("after the load"),
            read_rows("after drop without shutdown + reopen"),
        ];
        let mut event_rows = |options: &str| {
            (
                table.add_row(
                    format!("emit → handler p50, {options}"),
                    Unit::Micros,
                    Better::Lower,
                ),
                table.add_row(
                    format!("emit → handler p99, {options} (target < 10 ms)"),
                    Unit::Micros,
                    Better::Lower,
                ),
                table.add_row(
                    format!("deliveries per event, {options}"),
                    Unit::Plain,
                    Better::Neither,
                ),
            )
        };
        let events = [event_rows(POLLS[0].0), event_rows(POLLS[1].0)];
        Rows {
            ingest_1,
            ingest_64,
            load,
            reads,
            events,
        }
    }
}

/// A fresh directory for one phase of one engine in one round.
fn fresh(ctx: &RunConfig, label: &str, round: usize, phase: &str) -> Result<std::path::PathBuf> {
    let dir = ctx
        .root
        .join("W13")
        .join(format!("{label}-r{round}-{phase}"));
    remove_dir(&dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Phase 1: 1 writer, then 64 writers, each on an accumulator of its own. Returns the
/// 64-writer rate.
fn ingest_phase(
    which: Which,
    dir: &Path,
    counts: &Counts,
    rows: &Rows,
    table: &mut Table,
    engine: usize,
) -> Result<f64> {
    let db = open(which, dir, false)?;
    db.setup()?;
    let solo = vec!["solo".to_string()];
    let many: Vec<String> = (0..INGEST_WRITERS)
        .map(|w| format!("writer_{w:02}"))
        .collect();
    for name in solo.iter().chain(&many) {
        // Far above the deltas written: no compaction inside the measurement.
        db.create_accumulator(name, SNAPSHOT_EVERY)?;
    }
    let seconds = db.ingest(&solo, counts.solo_deltas)?;
    db.check_ingest(&solo, counts.solo_deltas)?;
    table.record(rows.ingest_1, engine, counts.solo_deltas as f64 / seconds);
    let seconds = db.ingest(&many, counts.writer_deltas)?;
    db.check_ingest(&many, counts.writer_deltas)?;
    let rate = (INGEST_WRITERS as u64 * counts.writer_deltas) as f64 / seconds;
    table.record(rows.ingest_64, engine, rate);
    db.close()?;
    Ok(rate)
}

/// Phase 2: load, read; drop without shutdown, reopen, read. Every open is `Permissive`: the
/// original's default (Strict) recovery refuses a directory dropped before its first checkpoint
/// ("manifest unavailable and reconstruction disabled"), and after a checkpoint it replays only
/// the log up to it (the deltas after it are lost); without any checkpoint, Permissive replays
/// the whole log.
fn read_phase(
    which: Which,
    dir: &Path,
    counts: &Counts,
    rows: &Rows,
    table: &mut Table,
    engine: usize,
) -> Result<()> {
    const NAME: &str = "loaded";
    let expected = sum_of(0, counts.loaded);
    let db = open(which, dir, true)?;
    db.setup()?;
    db.create_accumulator(NAME, SNAPSHOT_EVERY)?;
    let seconds = db.load(NAME, counts.loaded, LOAD_PER_COMMIT)?;
    table.record(rows.load, engine, seconds);
    let (read, reads) = (rows.reads[0], counts.strong_reads);
    let after_load = measure_reads(db.as_ref(), NAME, reads, expected, read, table, engine)?;
    // As a crash leaves it: the original's shutdown would write a checkpoint of the folded
    // value.
    let started = Instant::now();
    drop(db);
    let dropped = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let db = open(which, dir, true)?;
    let reopened = started.elapsed().as_secs_f64();
    let read = rows.reads[1];
    let after_reopen = measure_reads(db.as_ref(), NAME, reads, expected, read, table, engine)?;
    let started = Instant::now();
    db.close()?;
    progress(format_args!(
        "W13: load {seconds:.1} s, drop {dropped:.1} s, reopen {reopened:.1} s, shutdown {:.1} s; unapplied deltas (lag in order keys) after the load {} ({}), after the reopen {} ({})",
        started.elapsed().as_secs_f64(),
        after_load.unapplied_deltas,
        after_load.lag_orders,
        after_reopen.unapplied_deltas,
        after_reopen.lag_orders
    ));
    Ok(())
}

/// The lag, then a few warm-up reads and the timed strong reads.
fn measure_reads(
    db: &dyn AccDb,
    name: &str,
    reads: usize,
    expected: i64,
    (p50, p99, unapplied): (usize, usize, usize),
    table: &mut Table,
    engine: usize,
) -> Result<Lag> {
    let lag = db.lag(name)?;
    anyhow::ensure!(
        lag.projector_error.is_none(),
        "projector error: {:?}",
        lag.projector_error
    );
    table.record(unapplied, engine, lag.unapplied_deltas as f64);
    db.strong_reads(name, 10, expected)?;
    let latency = latency(&mut db.strong_reads(name, reads, expected)?);
    table.record(p50, engine, latency.p50_us);
    table.record(p99, engine, latency.p99_us);
    let after = db.lag(name)?;
    if after.unapplied_deltas != lag.unapplied_deltas {
        progress(format_args!(
            "W13: unapplied deltas changed during the reads: {} before, {} after",
            lag.unapplied_deltas, after.unapplied_deltas
        ));
    }
    Ok(lag)
}

/// Phase 3: one processor per option set, each in a fresh instance. Returns p99 per set.
fn event_phase(
    which: Which,
    ctx: &RunConfig,
    (label, round): (&str, usize),
    counts: &Counts,
    rows: &Rows,
    table: &mut Table,
    engine: usize,
) -> Result<[f64; 2]> {
    let mut p99s = [0.0; 2];
    for (set, (name, poll)) in POLLS.iter().enumerate() {
        let dir = fresh(ctx, label, round, &format!("events{set}"))?;
        let db = open(which, &dir, false)?;
        db.setup()?;
        let run = db.emit_to_handler(&format!("w13_processor_{set}"), *poll, counts.events)?;
        db.close()?;
        remove_dir(&dir)?;
        let (p50_row, p99_row, deliveries_row) = rows.events[set];
        let mut micros = run.latencies;
        let Latency { p50_us, p99_us } = latency(&mut micros);
        table.record(p50_row, engine, p50_us);
        table.record(p99_row, engine, p99_us);
        table.record(
            deliveries_row,
            engine,
            run.deliveries as f64 / counts.events as f64,
        );
        progress(format_args!(
            "W13: {label} {name}: p50 {p50_us:.0} µs, p99 {p99_us:.0} µs, {} deliveries of {} events in {} handler calls",
            run.deliveries,
            counts.events,
            run.handler_calls
        ));
        p99s[set] = p99_us;
    }
    Ok(p99s)
}

pub fn run(ctx: &RunConfig) -> Result<Table> {
    let counts = if ctx.quick {
        Counts {
            solo_deltas: 100,
            writer_deltas: 10,
            loaded: ctx.sizes.w13_deltas,
            strong_reads: 200,
            events: 200,
        }
    } else {
        Counts {
            solo_deltas: 1_000,
            writer_deltas: 100,
            loaded: ctx.sizes.w13_deltas,
            strong_reads: 1_000,
            events: 1_000,
        }
    };
    anyhow::ensure!(counts.loaded > 0, "--w13-deltas must be at least 1");
    let engines = [(Which::Ours, "aedb"), (Which::Original, "aedb-0.1.9")];
    let mut table = Table::new(
        "W13 accumulators and event processors (DurabilityMode::Full, public API)",
        engines.iter().map(|(_, label)| label.to_string()).collect(),
    );
    let rows = Rows::add(&mut table, &counts);
    // Per engine, per round: the 64-writer rate and the handler p99 per option set.
    let mut ingest_64 = [Vec::new(), Vec::new()];
    let mut p99s = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..ctx.rounds {
        for engine in round_order(engines.len(), round) {
            let (which, label) = engines[engine];
            let started = Instant::now();
            let dir = fresh(ctx, label, round, "ingest")?;
            ingest_64[engine].push(ingest_phase(
                which, &dir, &counts, &rows, &mut table, engine,
            )?);
            remove_dir(&dir)?;
            progress(format_args!(
                "W13: round {round} {label} ingest done in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            let dir = fresh(ctx, label, round, "reads")?;
            read_phase(which, &dir, &counts, &rows, &mut table, engine)?;
            remove_dir(&dir)?;
            progress(format_args!(
                "W13: round {round} {label} strong reads done in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            let event_p99 = event_phase(
                which,
                ctx,
                (label, round),
                &counts,
                &rows,
                &mut table,
                engine,
            )?;
            for (set, p99) in event_p99.into_iter().enumerate() {
                p99s[engine][set].push(p99);
            }
            progress(format_args!(
                "W13: round {round} {label} done in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    add_notes(&mut table, &counts, &ingest_64, &p99s);
    Ok(table)
}

fn add_notes(
    table: &mut Table,
    counts: &Counts,
    ingest_64: &[Vec<f64>; 2],
    p99s: &[[Vec<f64>; 2]; 2],
) {
    table.note(
        "Ingest: one `accumulate` commit per delta at `Full`, writers as tokio tasks on a multi-thread runtime (a worker per core); each writer owns its accumulator (order keys 1, 2, … of its own: no `order key must be strictly increasing` refusal can occur, and none is retried). Checked: every call succeeds, every value equals its writer's sum, a re-sent last delta is accepted and not added again."
    );
    table.note(format!(
        "Strong reads: {} `accumulator_value_strong(.., AtLatest)` calls per measurement (after 10 unmeasured), each result checked, on an accumulator loaded with {} deltas as `commit_many_atomic` commits of {} `Mutation::Accumulate` at `Full` (snapshot_every {}, dedupe_retain_commits {}); the unapplied deltas are `accumulator_lag(..).unapplied_deltas` just before the reads. The reopen follows a drop without `shutdown`, as after a crash: the original's recovery replays the log's deltas without folding them, so they stay unapplied until its next commit (its shutdown would checkpoint the folded value). Our engine folds each delta inside its own commit, so it never has unapplied deltas. The original's strong read adds a cached sum of its unapplied deltas (kept by each delta and by replay) rather than walking them, so its latency does not grow with them either. This phase opens both engines with `RecoveryMode::Permissive`: the original's default Strict recovery refuses a directory dropped before its first checkpoint (\"manifest unavailable and reconstruction disabled\") and, after one, loses the deltas committed after it.",
        count(counts.strong_reads),
        count(counts.loaded as usize),
        count(LOAD_PER_COMMIT),
        count(SNAPSHOT_EVERY as usize),
        count(DEDUPE_RETAIN_COMMITS as usize)
    ));
    table.note(format!(
        "Emit → handler: {} events emitted one at a time (one `emit_event` commit each, {} ms pause between), latency from before the emit call to the handler's first sight of the event; a processor with `topic_filter` set and the other options at their (README) defaults: max_events_per_run 256, checkpoint_watermark_commits 64, max_run_duration_ms 250. Deliveries per event count every hand-over to the handler until the processor is stopped, right after the last event's first delivery.",
        count(counts.events),
        EMIT_PAUSE.as_millis()
    ));
    let med = |samples: &[f64]| median(samples).unwrap_or(0.0);
    let ratio = match (med(&ingest_64[0]), med(&ingest_64[1])) {
        (ours, seed) if seed > 0.0 => ours / seed,
        _ => 0.0,
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let p99_verdict = |set: usize| {
        let p99 = med(&p99s[0][set]);
        format!("{:.1} ms, {}", p99 / 1e3, verdict(p99 < 10_000.0))
    };
    table.note(format!(
        "Targets (issue #12), our medians: ingest with {INGEST_WRITERS} writers ≥ 5× the original: {ratio:.2}×, {}; handler p99 < 10 ms: README options {}, low options {}.",
        verdict(ratio >= 5.0),
        p99_verdict(0),
        p99_verdict(1),
    ));
}
