//! The `instance-processor` workload of `kill9.rs`: each child emits events while the reactive
//! processor runs, its handler appending every delivery (commit, key) to the round's file and
//! syncing it before returning `Ok`. After each kill the parent checks:
//!
//! - the killed child got no event at or before the checkpoint the database held when it
//!   started (the one the previous kill left), and no event twice;
//! - the recovered checkpoint did not go back, and every event at or before it was delivered
//!   before the kill (a checkpoint never passes an event not handled); nothing is
//!   dead-lettered (the handler never fails);
//! - every acknowledged event is in the outbox.
//!
//! At the end the parent itself resumes the processor and lets it drain: every event of the
//! outbox, so every acknowledged one, was delivered at least once over all the runs, and the
//! last run got none at or before the last recovered checkpoint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aedb::config::AedbConfig;
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::{AedbInstance, EventOutboxRecord, ReactiveProcessorOptions};
use aedb_tests::{
    crash_deliveries, crash_event_index, crash_event_key, CRASH_PROCESSOR, CRASH_TOPIC,
};

use super::{found, Verified};

/// An event by what names it: (commit, key).
type Ev = (u64, String);

/// What the processor rounds have seen so far.
pub struct Rounds {
    files: PathBuf,
    /// The checkpoint the last verifying open found: the next child starts from it.
    checkpoint: u64,
    /// Every delivery a child made (and synced) before it was killed.
    delivered: BTreeSet<Ev>,
    /// Rounds whose deliveries were read.
    read: BTreeSet<u32>,
    /// Deliveries of an event some earlier child had delivered already.
    pub redelivered: u64,
    /// Deliveries of an event the recovered outbox does not hold (handled while visible,
    /// before it was durable).
    pub vanished: u64,
}

fn open(dir: &Path, config: AedbConfig, writable: bool, label: &str) -> AedbInstance {
    if writable {
        AedbInstance::open(config, dir)
    } else {
        AedbInstance::open_read_only(config, dir)
    }
    .unwrap_or_else(|e| panic!("{label}: reopen (writable: {writable}): {e}"))
}

async fn outbox(db: &AedbInstance) -> BTreeSet<Ev> {
    let page = db
        .read_event_stream(Some(CRASH_TOPIC), 0, usize::MAX, AtLatest)
        .await
        .expect("events");
    page.events
        .into_iter()
        .map(|e| (e.commit_seq, e.event_key))
        .collect()
}

async fn checkpoint(db: &AedbInstance) -> u64 {
    db.reactive_processor_lag(CRASH_PROCESSOR, AtLatest)
        .await
        .expect("lag")
        .checkpoint_seq
}

/// Every acknowledged event is in the outbox.
fn all_acked_held(events: &BTreeSet<Ev>, acked: &BTreeSet<u64>, label: &str) {
    let held: BTreeSet<&str> = events.iter().map(|(_, key)| key.as_str()).collect();
    for key in acked {
        assert!(
            held.contains(crash_event_key(*key).as_str()),
            "{label}: acknowledged event {key} lost"
        );
    }
}

/// The largest key of the outbox.
fn max_key(events: &BTreeSet<Ev>) -> Option<u64> {
    events
        .iter()
        .filter_map(|(_, k)| crash_event_index(k))
        .max()
}

impl Rounds {
    pub fn new(files: &Path) -> Self {
        Rounds {
            files: files.to_path_buf(),
            checkpoint: 0,
            delivered: BTreeSet::new(),
            read: BTreeSet::new(),
            redelivered: 0,
            vanished: 0,
        }
    }

    /// The file the child of `round` appends its deliveries to.
    pub fn deliveries_file(&self, round: u32) -> PathBuf {
        self.files.join(format!("deliveries-{round}.log"))
    }

    /// The deliveries of the child of `round`, checked against the checkpoint it started
    /// from (once per round).
    fn read_round(&mut self, round: u32, label: &str) {
        if !self.read.insert(round) {
            return;
        }
        let text = std::fs::read_to_string(self.deliveries_file(round)).unwrap_or_default();
        let mut this_run = BTreeSet::new();
        for ev in crash_deliveries(&text) {
            assert!(
                ev.0 > self.checkpoint,
                "{label}: {ev:?} delivered again after the kill, at or before the checkpoint \
                 {} persisted before it",
                self.checkpoint
            );
            assert!(
                this_run.insert(ev.clone()),
                "{label}: {ev:?} delivered twice"
            );
            if self.delivered.contains(&ev) {
                self.redelivered += 1;
            }
        }
        self.delivered.extend(this_run);
    }

    /// After the child of `round` (if any since the last call) was killed: its deliveries,
    /// then the recovered database.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        dir: &Path,
        config: AedbConfig,
        writable: bool,
        acked: &BTreeSet<u64>,
        round: Option<u32>,
        label: &str,
    ) -> Verified {
        if let Some(round) = round {
            self.read_round(round, label);
        }
        let db = open(dir, config, writable, label);
        let (events, recovered, letters) = runtime.block_on(async {
            let letters = db
                .reactive_processor_dead_letters(CRASH_PROCESSOR, AtLatest)
                .await
                .expect("dead letters");
            (outbox(&db).await, checkpoint(&db).await, letters)
        });
        assert!(
            recovered >= self.checkpoint,
            "{label}: the checkpoint went back from {} to {recovered}",
            self.checkpoint
        );
        assert!(letters.is_empty(), "{label}: dead letters {letters:?}");
        all_acked_held(&events, acked, label);
        for ev in events.iter().filter(|ev| ev.0 <= recovered) {
            assert!(
                self.delivered.contains(ev),
                "{label}: the checkpoint {recovered} passed {ev:?}, never delivered"
            );
        }
        self.vanished = self
            .delivered
            .iter()
            .filter(|ev| !events.contains(ev))
            .count() as u64;
        self.checkpoint = recovered;
        let check = db.engine().store().check();
        assert!(check.is_ok(), "{label}: invariants: {:?}", check.violations);
        let verified = found(db.engine().recovery_report(), max_key(&events));
        if writable {
            runtime
                .block_on(db.shutdown())
                .unwrap_or_else(|e| panic!("{label}: shutdown: {e}"));
        }
        verified
    }

    /// Resume the processor in this process and let it drain: every event of the outbox (so
    /// every acknowledged one) delivered at least once over all the runs, none of this run at
    /// or before the last recovered checkpoint, none twice.
    pub fn drain(&mut self, dir: &Path, config: AedbConfig, acked: &BTreeSet<u64>, label: &str) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let got: Arc<Mutex<Vec<Ev>>> = Arc::default();
        let record = Arc::clone(&got);
        let handler = move |_db, events: Vec<EventOutboxRecord>| {
            record
                .lock()
                .expect("record")
                .extend(events.into_iter().map(|e| (e.commit_seq, e.event_key)));
            std::future::ready(Ok(()))
        };
        runtime.block_on(async {
            let db = Arc::new(open(dir, config, true, label));
            let resumed = db
                .register_reactive_processor_handler(CRASH_PROCESSOR, handler.clone())
                .await
                .expect("register");
            if !resumed {
                // No child lived to start it.
                let options = ReactiveProcessorOptions {
                    topic_filter: Some(CRASH_TOPIC.into()),
                    ..ReactiveProcessorOptions::default()
                };
                db.start_reactive_processor(CRASH_PROCESSOR, options, handler)
                    .await
                    .expect("start");
            }
            let events = outbox(&db).await;
            let last = events.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
            for _ in 0..6_000 {
                if checkpoint(&db).await >= last {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(
                checkpoint(&db).await >= last,
                "{label}: the processor did not drain within 30 s"
            );
            let mut this_run = BTreeSet::new();
            for ev in got.lock().expect("record").iter() {
                assert!(
                    ev.0 > self.checkpoint,
                    "{label}: {ev:?} delivered again at or before the checkpoint {}",
                    self.checkpoint
                );
                assert!(this_run.insert(ev.clone()), "{label}: {ev:?} twice");
            }
            for ev in &events {
                assert!(
                    self.delivered.contains(ev) || this_run.contains(ev),
                    "{label}: {ev:?} never delivered"
                );
            }
            all_acked_held(&events, acked, label);
            self.delivered.extend(this_run);
            drop(db);
        });
    }
}
