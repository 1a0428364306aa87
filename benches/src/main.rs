//! `peer-bench`: aedb against its peers on the benchmark guide's workloads: the storage core
//! (`aedb-pager`) against redb and LMDB with durability off (W3, W4, W5, W6, W12), and the durable
//! engine (`aedb::Engine`) against SQLite, redb, LMDB, fjall, RocksDB and the original aedb 0.1.9
//! with every commit durable (W1, W2, W8, W9), and the public `AedbInstance` API against the
//! original aedb's (W11; accumulators and reactive event processors: W13) and, through YCSB
//! A/B/C, against SQLite (W7).
//!
//! Prints markdown: the machine and command, then one table per workload with the median of the
//! rounds per engine and ratios oriented so that > 1 means aedb is better.

mod data;
mod durable;
mod engines;
mod machine;
mod report;
mod workloads;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use engines::{EngineKind, EngineSpec};
use workloads::{progress, RunConfig, Sizes, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "peer-bench",
    about = "aedb against its peers: storage core (durability off) and durable engine"
)]
struct Args {
    /// Workload to run: one, `all` (the storage-core workloads W3, W4, W5, W6, W12) or `durable`
    /// (W1, W2, W8, W9). W7 (YCSB against SQLite), W11 (API calls against aedb 0.1.9) and W13
    /// (accumulator ingest, strong reads over many deltas, emit → handler latency against aedb
    /// 0.1.9) run only when named.
    #[arg(long, value_enum, ignore_case = true, default_value = "all")]
    workload: Workload,
    /// Small sizes for a smoke run (well under a minute).
    #[arg(long)]
    quick: bool,
    /// Where the engines' directories go (a fresh one per engine per workload, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rounds; the median is reported. Engines are interleaved within each round, in a rotating
    /// order: round r starts at engine r mod n.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Engines; the first is the reference for ratios (and starts round 0; each later round
    /// starts one engine later). Default: aedb,redb,lmdb for the storage-core workloads,
    /// aedb,sqlite,redb,lmdb,fjall,rocksdb,seed for the durable ones (seed: the original aedb
    /// 0.1.9).
    #[arg(long, value_enum, value_delimiter = ',')]
    engines: Option<Vec<EngineKind>>,
    /// aedb page size(s); several give one aedb column per size (e.g. 4096,8192,16384). The
    /// default is the engine's own (`aedb_pager::PAGE_SIZE_DEFAULT`), as a user gets it.
    #[arg(long, value_delimiter = ',', default_value = "8192")]
    page_size: Vec<u32>,
    /// aedb O_DIRECT setting(s); `false,true` gives one aedb column per setting.
    #[arg(long, value_delimiter = ',', default_value = "false")]
    direct_io: Vec<bool>,
    /// W1's measured commits (default 2,000; 200 with --quick), e.g. for a short run under strace
    /// (benches/scripts/fsync_counts.sh).
    #[arg(long)]
    w1_commits: Option<usize>,
    /// W9's commits without a checkpoint, the baseline of its p99 ratio (default 2,000; 200
    /// with --quick): more make that p99 stable (with 2,000 it is the 20th-worst commit).
    #[arg(long)]
    w9_probe_commits: Option<usize>,
    /// W8's log sizes in MiB (default 64,256; 8 with --quick), e.g. `--w8-log-mib 64`.
    #[arg(long, value_delimiter = ',')]
    w8_log_mib: Option<Vec<u64>>,
    /// W13's deltas loaded before the strong reads (default 1,000,000; 50,000 with --quick).
    #[arg(long)]
    w13_deltas: Option<u64>,
    /// Do not drop the OS page cache before W5's first gets.
    #[arg(long)]
    no_drop_caches: bool,
    /// Internal (W8): run as the writer process that builds a log and waits to be killed.
    #[arg(long, hide = true)]
    writer_child: bool,
    /// Internal (W8): MiB of log the writer process builds.
    #[arg(long, hide = true, default_value_t = 0)]
    log_mib: u64,
}

const CORE_ENGINES: [EngineKind; 3] = [EngineKind::Aedb, EngineKind::Redb, EngineKind::Lmdb];
const DURABLE_ENGINES: [EngineKind; 7] = [
    EngineKind::Aedb,
    EngineKind::Sqlite,
    EngineKind::Redb,
    EngineKind::Lmdb,
    EngineKind::Fjall,
    EngineKind::Rocksdb,
    EngineKind::Seed,
];

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(commits) = args.w1_commits {
        anyhow::ensure!(commits > 0, "--w1-commits must be at least 1");
        sizes.w1_commits = commits;
    }
    if let Some(commits) = args.w9_probe_commits {
        anyhow::ensure!(commits > 0, "--w9-probe-commits must be at least 1");
        sizes.w9_probe_commits = commits;
    }
    if let Some(deltas) = args.w13_deltas {
        anyhow::ensure!(deltas > 0, "--w13-deltas must be at least 1");
        sizes.w13_deltas = deltas;
    }
    if let Some(sizes_mib) = &args.w8_log_mib {
        // Sizes are static tables; one leaked list per run is fine.
        sizes.w8_log_mib = Box::leak(sizes_mib.clone().into_boxed_slice());
    }
    let core_kinds = args.engines.clone().unwrap_or(CORE_ENGINES.to_vec());
    let durable_kinds = args.engines.clone().unwrap_or_else(|| {
        DURABLE_ENGINES
            .into_iter()
            .filter(|kind| cfg!(feature = "rocksdb") || *kind != EngineKind::Rocksdb)
            .collect()
    });
    if args.writer_child {
        let dir = args.dir.as_deref().context("--writer-child needs --dir")?;
        let specs = engine_specs(&durable_kinds, &args.page_size, &args.direct_io)?;
        anyhow::ensure!(specs.len() == 1, "--writer-child takes exactly one engine");
        return workloads::recovery::writer_child(&specs[0], dir, &sizes, args.log_mib);
    }
    let workloads = args.workload.expand();
    if workloads.iter().any(|w| !w.is_durable()) {
        if let Some(kind) = core_kinds.iter().find(|kind| !kind.in_core_workloads()) {
            anyhow::bail!(
                "{kind:?} runs in the durable workloads only (--workload W1|W2|W8|W9|durable)"
            );
        }
    }
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("aedb-peer-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let config = RunConfig {
        engines: engine_specs(&core_kinds, &args.page_size, &args.direct_io)?,
        durable_engines: engine_specs(&durable_kinds, &args.page_size, &args.direct_io)?,
        rounds: args.rounds,
        sizes,
        root: root.clone(),
        drop_caches: !args.no_drop_caches,
        quick: args.quick,
    };

    println!(
        "## peer-bench{}\n",
        if args.quick { " (quick sizes)" } else { "" }
    );
    println!("{}", machine::describe(&root));
    let page_sizes: Vec<String> = args.page_size.iter().map(u32::to_string).collect();
    println!(
        "- aedb page size: {} bytes (storage-core and durable workloads; the API ones open \
         `AedbConfig::default()`)",
        page_sizes.join(", ")
    );
    println!(
        "- rounds: {} (median reported; ± is half the min–max spread)\n",
        config.rounds
    );
    let started = std::time::Instant::now();
    for workload in workloads {
        let workload_started = std::time::Instant::now();
        let table = workload.run(&config)?;
        println!("{}", table.to_markdown());
        progress(format_args!(
            "{} took {:.0} s",
            table.title,
            workload_started.elapsed().as_secs_f64()
        ));
    }
    println!("Total time: {:.0} s", started.elapsed().as_secs_f64());
    if args.dir.is_none() {
        workloads::remove_dir(&root)?;
    }
    Ok(())
}

/// The engines in round order; aedb once per page size and O_DIRECT setting, labelled with them
/// when they vary (or when O_DIRECT is on).
fn engine_specs(
    kinds: &[EngineKind],
    page_sizes: &[u32],
    direct_io: &[bool],
) -> Result<Vec<EngineSpec>> {
    anyhow::ensure!(!kinds.is_empty(), "--engines is empty");
    anyhow::ensure!(!page_sizes.is_empty(), "--page-size is empty");
    anyhow::ensure!(!direct_io.is_empty(), "--direct-io is empty");
    let mut specs = Vec::new();
    for kind in kinds {
        match kind {
            EngineKind::Aedb => {
                for page_size in page_sizes {
                    for direct in direct_io {
                        let mut label = "aedb".to_string();
                        if page_sizes.len() > 1 {
                            label.push_str(&format!("-{page_size}"));
                        }
                        if *direct {
                            label.push_str("-odirect");
                        }
                        specs.push(EngineSpec {
                            kind: *kind,
                            page_size: *page_size,
                            direct_io: *direct,
                            label,
                        });
                    }
                }
            }
            EngineKind::Btreemap => {
                anyhow::bail!("the BTreeMap reference runs in W4 only, added by W4 itself")
            }
            EngineKind::Seed => specs.push(EngineSpec {
                kind: *kind,
                page_size: 0,
                direct_io: false,
                label: "aedb-0.1.9".into(),
            }),
            other => specs.push(EngineSpec {
                kind: *other,
                page_size: 0,
                direct_io: false,
                label: format!("{other:?}").to_lowercase(),
            }),
        }
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_page_size_is_the_engines() {
        let args = Args::parse_from(["peer-bench"]);
        assert_eq!(args.page_size, vec![aedb_pager::PAGE_SIZE_DEFAULT]);
    }
}
