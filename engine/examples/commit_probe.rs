//! A quick W1-style probe for working on the commit path without building the peer suite:
//! the raw 4 KiB `pwrite` + `fdatasync` latency of this disk, then one-row durable commits
//! (`DurabilityMode::Full`) against an engine preloaded with `PRELOAD` keys, in the same run.
//! Reports p50/p99 of both, their ratio, and process CPU per commit. `benches/` (peer-bench W1)
//! is the measurement of record; this is a development aid.
//!
//! `cargo run --release -p aedb --example commit_probe -- [dir] [commits] [writers] [os]`:
//! with more than one writer, `commits` are split among that many threads committing at once
//! (W2); `os` opens with `DurabilityMode::OsBuffered` (no fsync: the commit path's CPU alone).
//! `AEDB_PROBE_VERSIONS=N` sets `max_versions` (what retaining recent versions costs);
//! `AEDB_PROBE_DUMP=FILE` writes each commit's start and latency. `AEDB_PROBE_PAGE_SIZE=N`
//! sets the page size (default: the engine's). `AEDB_PROBE_PRELOAD=N` loads
//! N keys instead of 100,000; `AEDB_PROBE_NO_CHECKPOINTS=1` turns every automatic checkpoint
//! off (W9's state before its checkpoint).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::{CommitFinality, Engine};

const PRELOAD: u64 = 100_000;
const BATCH: u64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/aedb-probe".into()));
    let commits: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    let writers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    // `os`: OsBuffered, no fsync, so the commit path's CPU is measured without the disk.
    let durability_mode = match args.next().as_deref() {
        Some("os") => DurabilityMode::OsBuffered,
        _ => DurabilityMode::Full,
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    let raw_cpu0 = cpu_seconds();
    let raw = raw_flush(&dir, commits)?;
    let raw_cpu = (cpu_seconds() - raw_cpu0) * 1e6 / commits as f64;
    let engine = Engine::open(
        AedbConfig {
            durability_mode,
            max_versions: std::env::var("AEDB_PROBE_VERSIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(AedbConfig::default().max_versions),
            page_size: std::env::var("AEDB_PROBE_PAGE_SIZE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(AedbConfig::default().page_size),
            ..if std::env::var_os("AEDB_PROBE_NO_CHECKPOINTS").is_some() {
                // W9's setting before its checkpoint: nothing checkpoints on its own.
                AedbConfig {
                    checkpoint_interval_ms: 0,
                    checkpoint_wal_bytes: 1 << 50,
                    checkpoint_space_percent: 0,
                    ..AedbConfig::default()
                }
            } else {
                AedbConfig::default()
            }
        },
        &dir.join("db"),
    )?;
    let preload: u64 = std::env::var("AEDB_PROBE_PRELOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PRELOAD);
    for batch in 0..preload / BATCH {
        engine.commit_blocking(CommitFinality::Durable, move |txn| {
            for i in 0..BATCH {
                let n = mix(batch * BATCH + i);
                txn.insert("kv", &n.to_be_bytes(), &[7u8; 100])?;
            }
            Ok(())
        })?;
    }
    eprintln!("preloaded {preload} keys; measuring {commits} commits");
    let (groups0, syncs0) = engine.group_stats();
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let per_writer = commits / writers;
    let engine = std::sync::Arc::new(engine);
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = std::sync::Arc::clone(&engine);
            std::thread::spawn(move || -> Result<(Vec<f64>, Vec<u64>), aedb::AedbError> {
                let mut micros = Vec::with_capacity(per_writer);
                let mut starts = Vec::with_capacity(per_writer);
                for i in 0..per_writer as u64 {
                    let key = mix(preload + (w * per_writer) as u64 + i).to_be_bytes();
                    let start = Instant::now();
                    starts.push(monotonic_ns());
                    engine.commit_blocking(CommitFinality::Visible, move |txn| {
                        txn.insert("kv", &key, &[9u8; 100])?;
                        Ok(())
                    })?;
                    micros.push(start.elapsed().as_secs_f64() * 1e6);
                }
                Ok((micros, starts))
            })
        })
        .collect();
    let mut micros = Vec::with_capacity(commits);
    let mut starts = Vec::with_capacity(commits);
    for thread in threads {
        let (m, s) = thread.join().map_err(|_| "writer thread panicked")??;
        micros.extend(m);
        starts.extend(s);
    }
    // Each commit's start (CLOCK_MONOTONIC ns, perf's `-k CLOCK_MONOTONIC` clock) and latency,
    // to line slow commits up with a profile.
    if let Some(path) = std::env::var_os("AEDB_PROBE_DUMP") {
        let lines: Vec<String> = micros
            .iter()
            .zip(&starts)
            .map(|(m, s)| format!("{s} {m:.1}"))
            .collect();
        std::fs::write(path, lines.join("\n"))?;
    }
    let commits = micros.len();
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (p50, p99) = percentiles(&mut micros);
    let (groups, syncs) = engine.group_stats();
    let (groups, syncs) = (groups - groups0, syncs - syncs0);
    println!(
        "raw pwrite+fdatasync p50 {:.1} µs p99 {:.1} µs  CPU {raw_cpu:.1} µs/flush (incl. writing the file)",
        raw.0, raw.1
    );
    println!(
        "aedb commit p50 {p50:.1} µs p99 {p99:.1} µs  ratio p50 {:.2}  p99/p50 {:.2}  CPU {:.1} µs/commit  {:.0} commits/s",
        p50 / raw.0,
        p99 / p50,
        cpu * 1e6 / commits as f64,
        commits as f64 / wall
    );
    println!(
        "groups {groups} ({:.1} commits each, {:.1} µs apart), syncs {syncs}",
        commits as f64 / groups.max(1) as f64,
        wall * 1e6 / groups.max(1) as f64
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes into the zeroed struct it is given.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn mix(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn raw_flush(dir: &std::path::Path, samples: usize) -> std::io::Result<(f64, f64)> {
    let path = dir.join("flush-probe");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    file.write_all_at(&vec![0u8; samples * 4096], 0)?;
    file.sync_all()?;
    let block = [0x5au8; 4096];
    let mut micros = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        file.write_all_at(&block, (i * 4096) as u64)?;
        file.sync_data()?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    std::fs::remove_file(&path)?;
    Ok(percentiles(&mut micros))
}

fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99))
}

/// User plus system CPU seconds of the whole process (background threads too).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
