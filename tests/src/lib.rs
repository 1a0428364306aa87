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
    /// `AedbInstance` with the default configuration: deltas (once per dedupe key, some
    /// releasing an exposure) and exposures on [`CRASH_ACCUMULATORS`] accumulators.
    InstanceAccumulator,
    /// `AedbInstance` with the default configuration: events (key `i` as
    /// [`crash_event_key`]`(i)`, one per commit) and the reactive processor
    /// [`CRASH_PROCESSOR`], whose handler appends each delivery to a file (the child's 5th
    /// argument) and syncs it before returning `Ok`.
    InstanceProcessor,
}

impl CrashWorkload {
    pub fn name(self) -> &'static str {
        match self {
            CrashWorkload::EngineDurable => "engine-durable",
            CrashWorkload::InstancePlain => "instance-plain",
            CrashWorkload::BatchDurable => "batch-durable",
            CrashWorkload::InstanceAccumulator => "instance-accumulator",
            CrashWorkload::InstanceProcessor => "instance-processor",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            CrashWorkload::EngineDurable,
            CrashWorkload::InstancePlain,
            CrashWorkload::BatchDurable,
            CrashWorkload::InstanceAccumulator,
            CrashWorkload::InstanceProcessor,
        ]
        .into_iter()
        .find(|w| w.name() == name)
    }

    /// The durability mode the child runs in; the parent reopens in the same one.
    pub fn durability_mode(self) -> aedb::config::DurabilityMode {
        match self {
            CrashWorkload::EngineDurable
            | CrashWorkload::InstancePlain
            | CrashWorkload::InstanceAccumulator
            | CrashWorkload::InstanceProcessor => aedb::config::DurabilityMode::Full,
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

/// How many accumulators the accumulator workload writes: key `i` goes to
/// [`crash_accumulator`]`(i)`, with order key `i`, so each one's order keys increase.
pub const CRASH_ACCUMULATORS: u64 = 4;

/// The accumulator key `i` goes to (in [`CRASH_PROJECT`], [`CRASH_SCOPE`]).
pub fn crash_accumulator(i: u64) -> String {
    format!("acc{}", i % CRASH_ACCUMULATORS)
}

/// The delta of key `i` (dedupe key [`crash_dedupe_key`]`(i)`, order key `i`).
pub fn crash_delta(i: u64) -> i64 {
    10 + (i % 7) as i64
}

pub fn crash_dedupe_key(i: u64) -> String {
    format!("d{i}")
}

/// The id of the exposure opened at key `i` (amount 1).
pub fn crash_exposure_id(i: u64) -> String {
    format!("x{i}")
}

/// The line the accumulator workload prints for an acknowledged exposure (`exposed <key>`)...
pub const CRASH_EXPOSED_PREFIX: &str = "exposed ";
/// ...and before sending a delta that releases one (`releasing <delta key> <exposure key>`):
/// the exposure is released exactly when that delta is there.
pub const CRASH_RELEASING_PREFIX: &str = "releasing ";

/// The reactive processor of the processor workload (its events: topic [`CRASH_TOPIC`] in
/// [`CRASH_PROJECT`], [`CRASH_SCOPE`]).
pub const CRASH_PROCESSOR: &str = "kill9-processor";
pub const CRASH_TOPIC: &str = "kill9";

/// The event key of key `i`.
pub fn crash_event_key(i: u64) -> String {
    format!("k{i}")
}

/// The key `i` of an event key, if it is one.
pub fn crash_event_index(key: &str) -> Option<u64> {
    key.strip_prefix('k')?.parse().ok()
}

/// The line the processor workload prints once its processor runs: `processor resumed` (its
/// registration survived the kill and `register_reactive_processor_handler` restarted it) or
/// `processor started`.
pub const CRASH_PROCESSOR_PREFIX: &str = "processor ";

/// A delivery as the handler appends it to its file: `<commit seq> <event key>`.
pub fn crash_delivery_line(commit_seq: u64, event_key: &str) -> String {
    format!("{commit_seq} {event_key}\n")
}

/// The deliveries of a file written by [`crash_delivery_line`]s; a last line cut short (a
/// kill in the middle of its write) is left out.
pub fn crash_deliveries(text: &str) -> Vec<(u64, String)> {
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| {
            let (seq, key) = line.trim_end().split_once(' ')?;
            Some((seq.parse().ok()?, key.to_string()))
        })
        .collect()
}
