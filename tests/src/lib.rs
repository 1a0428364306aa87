//! Cross-crate integration suites (in `tests/`) and their helper programs (in `src/bin/`).

/// The value the crash child writes for key `i`, so the parent can check content, not only
/// presence. Sizes vary from a few bytes to several pages (overflow values).
pub fn crash_value(i: u64) -> Vec<u8> {
    let len = match i % 10 {
        0 => 9000,
        1..=3 => 8,
        _ => 300,
    };
    (0..len)
        .map(|j| (i as usize).wrapping_mul(31).wrapping_add(j) as u8)
        .collect()
}

/// What the crash child does until it is killed (its 4th argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashWorkload {
    /// `Engine::commit_blocking` with Durable finality, checkpoints and log rotations often.
    EngineDurable,
    /// What a new user writes: `AedbInstance` with the default configuration (Full) and plain
    /// `commit` (Visible finality).
    InstancePlain,
    /// As `EngineDurable`, in Batch durability mode.
    BatchDurable,
}

impl CrashWorkload {
    pub fn name(self) -> &'static str {
        match self {
            CrashWorkload::EngineDurable => "engine-durable",
            CrashWorkload::InstancePlain => "instance-plain",
            CrashWorkload::BatchDurable => "batch-durable",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            CrashWorkload::EngineDurable,
            CrashWorkload::InstancePlain,
            CrashWorkload::BatchDurable,
        ]
        .into_iter()
        .find(|w| w.name() == name)
    }

    /// The durability mode the child runs in; the parent reopens in the same one.
    pub fn durability_mode(self) -> aedb::config::DurabilityMode {
        match self {
            CrashWorkload::EngineDurable | CrashWorkload::InstancePlain => {
                aedb::config::DurabilityMode::Full
            }
            CrashWorkload::BatchDurable => aedb::config::DurabilityMode::Batch,
        }
    }
}

/// Where the engine workloads put their keys.
pub const CRASH_TREE: &str = "kv";
/// Where the instance workload puts its keys: this project...
pub const CRASH_PROJECT: &str = "kill9";
/// ...and this scope of it.
pub const CRASH_SCOPE: &str = "acked";

/// The line the child prints once it has opened the database, before any commit: the parent
/// learns from it whether the child itself recovered a log (`recovered <checkpoint seq>
/// <frames replayed>`).
pub const CRASH_RECOVERED_PREFIX: &str = "recovered ";
