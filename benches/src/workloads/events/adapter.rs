//! W13's adapters: one engine (ours or the original) behind the public async API, as the
//! runner (`super`) drives it; the helpers that fix what each writer adds and each event is
//! called, and the recorder the processors' handlers fill.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::Mutex;

/// The README's `dedupe_retain_commits`.
pub const DEDUPE_RETAIN_COMMITS: u64 = 86_400;
/// The pause after each emit.
pub const EMIT_PAUSE: Duration = Duration::from_millis(2);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The delta a writer adds with its `i`-th commit (0-based): small, varied, never zero.
fn delta_of(writer: usize, i: u64) -> i64 {
    ((i + writer as u64) % 7) as i64 + 1
}

/// What writer `writer` has added after `deltas` deltas.
pub fn sum_of(writer: usize, deltas: u64) -> i64 {
    (0..deltas).map(|i| delta_of(writer, i)).sum()
}

fn dedupe_key(writer: usize, i: u64) -> String {
    format!("w{writer}-d{i}")
}

fn event_key(i: usize) -> String {
    format!("e{i:06}")
}

/// The processor's run-loop settings, the same for both engines.
#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    pub run_interval_ms: u64,
    pub idle_backoff_ms: u64,
}

/// What the handler saw: the first sight of each event, and every delivery.
pub struct Recorder {
    first: Mutex<Vec<Option<Instant>>>,
    deliveries: AtomicU64,
    calls: AtomicU64,
    unknown: AtomicU64,
}

impl Recorder {
    fn new(events: usize) -> Self {
        Recorder {
            first: Mutex::new(vec![None; events]),
            deliveries: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
        }
    }

    /// Called by the handler with the keys of the batch it was handed.
    fn saw<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        let now = Instant::now();
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock();
        for key in keys {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
            let index = key.strip_prefix('e').and_then(|n| n.parse::<usize>().ok());
            match index.and_then(|i| first.get_mut(i)) {
                Some(slot) => {
                    slot.get_or_insert(now);
                }
                None => {
                    self.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn seen(&self) -> usize {
        self.first.lock().iter().filter(|t| t.is_some()).count()
    }

    /// Microseconds from each emit's start to the handler's first sight of the event.
    fn latencies(&self, started: &[Instant]) -> Result<Vec<f64>> {
        let first = self.first.lock();
        anyhow::ensure!(first.len() == started.len(), "events and emits differ");
        first
            .iter()
            .zip(started)
            .enumerate()
            .map(|(i, (seen, start))| {
                let seen = seen.with_context(|| format!("event {i} never delivered"))?;
                Ok(seen.saturating_duration_since(*start).as_secs_f64() * 1e6)
            })
            .collect()
    }
}

/// One emit → handler measurement.
pub struct EventRun {
    /// Per event, microseconds.
    pub latencies: Vec<f64>,
    /// Events handed to the handler in all, counting redeliveries, until it was stopped.
    pub deliveries: u64,
    pub handler_calls: u64,
}

/// What `accumulator_lag` reported.
#[derive(Debug, Clone)]
pub struct Lag {
    pub unapplied_deltas: usize,
    pub lag_orders: u64,
    pub projector_error: Option<String>,
}

/// One engine behind its public async API.
pub trait AccDb {
    /// The project and scope every phase uses.
    fn setup(&self) -> Result<()>;
    fn create_accumulator(&self, name: &str, snapshot_every: u64) -> Result<()>;
    /// One writer task per accumulator of `names`, each adding `deltas` deltas, one commit
    /// each; seconds from the first spawn to the last writer's end.
    fn ingest(&self, names: &[String], deltas: u64) -> Result<f64>;
    /// Check each accumulator of `names` holds its writer's sum, then re-send each writer's
    /// last delta (a retry) and check nothing changed.
    fn check_ingest(&self, names: &[String], deltas: u64) -> Result<()>;
    /// `deltas` deltas (writer 0's sequence) in commits of `per_commit`; seconds.
    fn load(&self, name: &str, deltas: u64, per_commit: usize) -> Result<f64>;
    fn lag(&self, name: &str) -> Result<Lag>;
    /// `reads` strong reads, each checked against `expected`; microseconds per read.
    fn strong_reads(&self, name: &str, reads: usize, expected: i64) -> Result<Vec<f64>>;
    /// Run processor `processor` over `events` emitted one by one.
    fn emit_to_handler(
        &self,
        processor: &str,
        options: PollOptions,
        events: usize,
    ) -> Result<EventRun>;
    /// `shutdown`, then drop.
    fn close(self: Box<Self>) -> Result<()>;
}

fn err_of(label: &str, what: &str, e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("{label}: {what}: {e:?}")
}

/// The adapter for one crate: ours (`aedb`) and the original (`seed`) have the same API shape.
macro_rules! acc_adapter {
    ($module:ident, $krate:ident, $label:literal) => {
        pub mod $module {
            use std::path::Path;
            use std::sync::Arc;
            use std::time::Instant;

            use anyhow::{Context, Result};
            use $krate::commit::validation::Mutation;
            use $krate::config::AedbConfig;
            use $krate::query::plan::ConsistencyMode;
            use $krate::{AedbInstance, EventOutboxRecord, ReactiveProcessorOptions};

            use super::{
                dedupe_key, delta_of, event_key, sum_of, AccDb, EventRun, Lag, PollOptions,
                Recorder, DEDUPE_RETAIN_COMMITS, DELIVERY_TIMEOUT, EMIT_PAUSE,
            };

            const P: &str = "bench";
            const S: &str = "app";
            const TOPIC: &str = "w13_events";

            pub struct Db {
                runtime: tokio::runtime::Runtime,
                db: Option<Arc<AedbInstance>>,
            }

            fn err(what: &str, e: impl std::fmt::Debug) -> anyhow::Error {
                super::err_of($label, what, e)
            }

            impl Db {
                /// Open with the default configuration (`DurabilityMode::Full`), but for the
                /// recovery mode when `permissive`.
                pub fn open(dir: &Path, permissive: bool) -> Result<Self> {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .context("tokio runtime")?;
                    let mut config = AedbConfig::default();
                    if permissive {
                        config.recovery_mode = $krate::config::RecoveryMode::Permissive;
                    }
                    let db = {
                        let _entered = runtime.enter();
                        AedbInstance::open(config, dir)
                            .map_err(|e| err("open", e))?
                    };
                    Ok(Db {
                        runtime,
                        db: Some(Arc::new(db)),
                    })
                }

                fn db(&self) -> &Arc<AedbInstance> {
                    self.db.as_ref().expect("open until close")
                }

                async fn strong(db: &AedbInstance, name: &str) -> Result<i64> {
                    db.accumulator_value_strong(P, S, name, ConsistencyMode::AtLatest)
                        .await
                        .map_err(|e| err("strong value", e))
                }
            }

            impl AccDb for Db {
                fn setup(&self) -> Result<()> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        db.create_project(P).await.map_err(|e| err("project", e))?;
                        if !db.scope_exists(P, S).await.map_err(|e| err("scope", e))? {
                            db.create_scope(P, S).await.map_err(|e| err("scope", e))?;
                        }
                        Ok(())
                    })
                }

                fn create_accumulator(&self, name: &str, snapshot_every: u64) -> Result<()> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        db.create_accumulator(
                            P,
                            S,
                            name,
                            Some(DEDUPE_RETAIN_COMMITS),
                            snapshot_every,
                        )
                        .await
                        .map_err(|e| err("create accumulator", e))?;
                        Ok(())
                    })
                }

                fn ingest(&self, names: &[String], deltas: u64) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let start = Instant::now();
                        let writers: Vec<_> = names
                            .iter()
                            .enumerate()
                            .map(|(writer, name)| {
                                let db = Arc::clone(db);
                                let name = name.clone();
                                tokio::spawn(async move {
                                    for i in 0..deltas {
                                        db.accumulate(
                                            P,
                                            S,
                                            &name,
                                            delta_of(writer, i),
                                            dedupe_key(writer, i),
                                            i + 1,
                                        )
                                        .await
                                        .map_err(|e| err("accumulate", e))?;
                                    }
                                    anyhow::Ok(())
                                })
                            })
                            .collect();
                        for writer in writers {
                            writer.await.context("writer task")??;
                        }
                        Ok(start.elapsed().as_secs_f64())
                    })
                }

                fn check_ingest(&self, names: &[String], deltas: u64) -> Result<()> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        for (writer, name) in names.iter().enumerate() {
                            let expected = sum_of(writer, deltas);
                            let strong = Self::strong(db, name).await?;
                            anyhow::ensure!(
                                strong == expected,
                                "{}: {name}: strong value {strong}, expected {expected}",
                                $label
                            );
                            // A retry of the last delta: accepted, not added again.
                            let last = deltas - 1;
                            db.accumulate(
                                P,
                                S,
                                name,
                                delta_of(writer, last),
                                dedupe_key(writer, last),
                                deltas,
                            )
                            .await
                            .map_err(|e| err("retried accumulate", e))?;
                            let again = Self::strong(db, name).await?;
                            anyhow::ensure!(
                                again == expected,
                                "{}: {name}: a retried delta changed the value to {again}",
                                $label
                            );
                        }
                        Ok(())
                    })
                }

                fn load(&self, name: &str, deltas: u64, per_commit: usize) -> Result<f64> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let start = Instant::now();
                        let mut next = 0u64;
                        while next < deltas {
                            let end = (next + per_commit as u64).min(deltas);
                            let batch = (next..end)
                                .map(|i| Mutation::Accumulate {
                                    project_id: P.into(),
                                    scope_id: S.into(),
                                    accumulator_name: name.into(),
                                    delta: delta_of(0, i),
                                    dedupe_key: dedupe_key(0, i),
                                    order_key: i + 1,
                                    release_exposure_id: None,
                                })
                                .collect();
                            db.commit_many_atomic(batch)
                                .await
                                .map_err(|e| err("load deltas", e))?;
                            next = end;
                        }
                        Ok(start.elapsed().as_secs_f64())
                    })
                }

                fn lag(&self, name: &str) -> Result<Lag> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let lag = db
                            .accumulator_lag(P, S, name, ConsistencyMode::AtLatest)
                            .await
                            .map_err(|e| err("lag", e))?;
                        Ok(Lag {
                            unapplied_deltas: lag.unapplied_deltas,
                            lag_orders: lag.lag_orders,
                            projector_error: lag.projector_error,
                        })
                    })
                }

                fn strong_reads(&self, name: &str, reads: usize, expected: i64) -> Result<Vec<f64>> {
                    let db = self.db();
                    self.runtime.block_on(async {
                        let mut micros = Vec::with_capacity(reads);
                        for _ in 0..reads {
                            let start = Instant::now();
                            let value = Self::strong(db, name).await?;
                            micros.push(start.elapsed().as_secs_f64() * 1e6);
                            anyhow::ensure!(
                                value == expected,
                                "{}: strong value {value}, expected {expected}",
                                $label
                            );
                        }
                        Ok(micros)
                    })
                }

                fn emit_to_handler(
                    &self,
                    processor: &str,
                    poll: PollOptions,
                    events: usize,
                ) -> Result<EventRun> {
                    let db = self.db();
                    let recorder = Arc::new(Recorder::new(events));
                    let options = ReactiveProcessorOptions {
                        topic_filter: Some(TOPIC.into()),
                        run_interval_ms: poll.run_interval_ms,
                        idle_backoff_ms: poll.idle_backoff_ms,
                        ..ReactiveProcessorOptions::default()
                    };
                    let seen = Arc::clone(&recorder);
                    let handler = move |_db: Arc<AedbInstance>, batch: Vec<EventOutboxRecord>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            seen.saw(batch.iter().map(|e| e.event_key.as_str()));
                            Ok(())
                        }
                    };
                    let started = self.runtime.block_on(async {
                        db.start_reactive_processor(processor, options, handler)
                            .await
                            .map_err(|e| err("start processor", e))?;
                        let mut started = Vec::with_capacity(events);
                        for i in 0..events {
                            started.push(Instant::now());
                            db.emit_event(P, S, TOPIC, event_key(i), format!("{{\"i\":{i}}}"))
                                .await
                                .map_err(|e| err("emit", e))?;
                            tokio::time::sleep(EMIT_PAUSE).await;
                        }
                        let deadline = Instant::now() + DELIVERY_TIMEOUT;
                        while recorder.seen() < events {
                            anyhow::ensure!(
                                Instant::now() < deadline,
                                "{}: {} of {events} events delivered after {DELIVERY_TIMEOUT:?}",
                                $label,
                                recorder.seen()
                            );
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                        db.stop_reactive_processor(processor)
                            .await
                            .map_err(|e| err("stop processor", e))?;
                        anyhow::Ok(started)
                    })?;
                    let unknown = recorder.unknown.load(std::sync::atomic::Ordering::Relaxed);
                    anyhow::ensure!(unknown == 0, "{}: {unknown} unknown events", $label);
                    Ok(EventRun {
                        latencies: recorder.latencies(&started)?,
                        deliveries: recorder.deliveries.load(std::sync::atomic::Ordering::Relaxed),
                        handler_calls: recorder.calls.load(std::sync::atomic::Ordering::Relaxed),
                    })
                }

                fn close(mut self: Box<Self>) -> Result<()> {
                    let Some(mut db) = self.db.take() else {
                        return Ok(());
                    };
                    // Ours shuts down by value: wait for a stopped processor's last reference.
                    let deadline = Instant::now() + std::time::Duration::from_secs(10);
                    let db = loop {
                        match Arc::try_unwrap(db) {
                            Ok(db) => break db,
                            Err(shared) if Instant::now() < deadline => {
                                db = shared;
                                std::thread::sleep(std::time::Duration::from_millis(10));
                            }
                            Err(shared) => {
                                self.db = Some(shared);
                                anyhow::bail!("{}: the instance is still shared at close", $label);
                            }
                        }
                    };
                    self.runtime
                        .block_on(db.shutdown())
                        .map_err(|e| err("shutdown", e))
                }
            }

            impl Drop for Db {
                fn drop(&mut self) {
                    // The engines' tasks live on this runtime: drop the instance inside it.
                    if let Some(db) = self.db.take() {
                        let _entered = self.runtime.enter();
                        drop(db);
                    }
                }
            }
        }
    };
}

acc_adapter!(ours, aedb, "aedb");
acc_adapter!(original, seed, "aedb-0.1.9");
