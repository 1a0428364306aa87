//! The workloads of docs/BENCHMARKS.md — storage core (W3, W4, W5, W6, W12, durability off) and
//! durable (W1, W2, W8, W9), the public API against the original aedb (W11, W13) — and what they
//! share: sizes, fresh directories, timing, and the loop over rounds and engines.

pub mod api;
pub mod batch;
pub mod checkpoint;
pub mod cold_get;
pub mod commit;
pub mod events;
pub mod flush;
pub mod hot_get;
pub mod recovery;
pub mod scan;
pub mod sizes;
pub mod space;
pub mod ycsb;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::data::{Batch, Dataset};
use crate::engines::{self, Engine, EngineSpec, OpenConfig};
use crate::report::Table;
pub use sizes::Sizes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    #[value(name = "W1")]
    W1,
    #[value(name = "W2")]
    W2,
    #[value(name = "W3")]
    W3,
    #[value(name = "W4")]
    W4,
    #[value(name = "W5")]
    W5,
    #[value(name = "W6")]
    W6,
    #[value(name = "W7")]
    W7,
    #[value(name = "W8")]
    W8,
    #[value(name = "W9")]
    W9,
    #[value(name = "W11")]
    W11,
    #[value(name = "W12")]
    W12,
    /// Accumulators and reactive processors, ours against the original aedb 0.1.9.
    #[value(name = "W13")]
    W13,
    /// The storage-core workloads: W3, W4, W5, W6, W12.
    #[value(name = "all")]
    All,
    /// The durable workloads: W1, W2, W8, W9.
    #[value(name = "durable")]
    Durable,
}

impl Workload {
    pub fn expand(self) -> Vec<Workload> {
        match self {
            Workload::All => vec![
                Workload::W3,
                Workload::W4,
                Workload::W5,
                Workload::W6,
                Workload::W12,
            ],
            Workload::Durable => vec![Workload::W1, Workload::W2, Workload::W8, Workload::W9],
            one => vec![one],
        }
    }

    /// Whether it runs on the durable adapters (`RunConfig::durable_engines`).
    pub fn is_durable(self) -> bool {
        matches!(
            self,
            Workload::W1 | Workload::W2 | Workload::W8 | Workload::W9 | Workload::Durable
        )
    }

    pub fn run(self, ctx: &RunConfig) -> Result<Table> {
        match self {
            Workload::W1 => commit::run_w1(ctx),
            Workload::W2 => commit::run_w2(ctx),
            Workload::W8 => recovery::run(ctx),
            Workload::W9 => checkpoint::run(ctx),
            Workload::W3 => batch::run(ctx),
            Workload::W4 => hot_get::run(ctx),
            Workload::W5 => cold_get::run(ctx),
            Workload::W6 => scan::run(ctx),
            Workload::W7 => ycsb::run_w7(ctx),
            Workload::W11 => api::run_w11(ctx),
            Workload::W12 => space::run(ctx),
            Workload::W13 => events::run(ctx),
            Workload::All | Workload::Durable => {
                anyhow::bail!("groups are expanded into their workloads before running")
            }
        }
    }
}

/// What every workload needs: the engines in round order, the rounds, sizes and the data root.
pub struct RunConfig {
    /// The storage-core workloads' engines.
    pub engines: Vec<EngineSpec>,
    /// The durable workloads' engines.
    pub durable_engines: Vec<EngineSpec>,
    pub rounds: usize,
    pub sizes: Sizes,
    pub root: PathBuf,
    /// Drop the OS page cache before cold reads (W5) when /proc/sys/vm/drop_caches is writable.
    pub drop_caches: bool,
    /// Quick sizes (passed on to W8's writer processes).
    pub quick: bool,
}

impl RunConfig {
    pub fn labels(&self) -> Vec<String> {
        self.engines.iter().map(|spec| spec.label.clone()).collect()
    }

    /// An empty directory for one engine in one workload (and round).
    pub fn fresh_dir(&self, workload: &str, spec: &EngineSpec, round: usize) -> Result<PathBuf> {
        let dir = self
            .root
            .join(workload)
            .join(format!("{}-r{round}", spec.label));
        remove_dir(&dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(dir)
    }
}

/// The engine indices `0..engines` in the order round `round` runs them: starting at engine
/// `round mod engines` and wrapping around, so no engine always runs first (right after the raw
/// flush probe, on the coolest machine) or last. Results stay recorded under each engine's own
/// index, so the table's columns and the reference of the ratios (the first engine) do not move.
pub fn round_order(engines: usize, round: usize) -> impl Iterator<Item = usize> {
    let start = if engines == 0 { 0 } else { round % engines };
    (0..engines).map(move |i| (start + i) % engines)
}

pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Seconds taken by `f`.
pub fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

pub fn progress(message: std::fmt::Arguments<'_>) {
    eprintln!("[peer-bench] {message}");
}

/// Open the engine in a fresh directory, load `len` pairs through its sorted path and sync.
pub fn open_loaded(
    ctx: &RunConfig,
    workload: &str,
    spec: &EngineSpec,
    config: OpenConfig,
    data: &Dataset,
    sorted: &[u32],
) -> Result<(Box<dyn Engine>, PathBuf)> {
    let dir = ctx.fresh_dir(workload, spec, 0)?;
    let engine = engines::open(spec, &dir, config)?;
    let seconds = timed(|| {
        engine.load_sorted(Batch::new(data, sorted))?;
        engine.sync()
    })?;
    progress(format_args!(
        "{workload}: {} loaded {} keys in {seconds:.1} s",
        spec.label,
        sorted.len()
    ));
    Ok((engine, dir))
}

/// Every get of `keys` must find a value of the generated length: a wrong engine setup should fail
/// loudly, not run fast.
pub fn check_found(engine: &str, found: Option<usize>) -> Result<()> {
    match found {
        Some(len) if len == crate::data::VALUE_BYTES => Ok(()),
        Some(len) => anyhow::bail!(
            "{engine}: value of {len} bytes, expected {}",
            crate::data::VALUE_BYTES
        ),
        None => anyhow::bail!("{engine}: a loaded key was not found"),
    }
}

/// Bytes a directory takes: (apparent length, allocated blocks).
pub fn dir_bytes(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total.0 += meta.len();
            total.1 += meta.blocks() * 512;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn each_round_starts_one_engine_later() {
        let order = |round| round_order(3, round).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [1, 2, 0]);
        assert_eq!(order(2), [2, 0, 1]);
        assert_eq!(order(3), [0, 1, 2]);
        assert_eq!(round_order(0, 5).count(), 0);
    }
}
