//! The process the kill -9 test kills: commits in a loop from several threads or tasks and
//! prints each acknowledged key on stdout, until the parent kills the process. Before the first
//! commit it prints what its own recovery did (`recovered <checkpoint seq> <frames replayed>`).
//!
//! Usage: aedb-crash-child <dir> <uring|sync> <first key> <workload> [deliveries file]
//! with workload one of `engine-durable`, `instance-plain`, `batch-durable`,
//! `instance-accumulator` (which also prints `exposed <key>` and `releasing <key> <key>` lines),
//! `instance-processor` (which prints `processor resumed|started` and appends its processor's
//! deliveries to the deliveries file).
//!
//! Anything wrong is reported on stderr with the word "failed", which fails the parent's round.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aedb::commit::Mutation;
use aedb::config::{AedbConfig, DurabilityMode, IoBackendChoice};
use aedb::{AedbError, AedbInstance, CommitFinality, Engine, RecoveryReport};
use aedb_tests::{
    crash_accumulator, crash_dedupe_key, crash_delivery_line, crash_delta, crash_event_key,
    crash_exposure_id, crash_value, CrashWorkload, CRASH_ACCUMULATORS, CRASH_EXPOSED_PREFIX,
    CRASH_PROCESSOR, CRASH_PROCESSOR_PREFIX, CRASH_PROJECT, CRASH_RECOVERED_PREFIX,
    CRASH_RELEASING_PREFIX, CRASH_SCOPE, CRASH_TOPIC, CRASH_TREE,
};

/// Committers of the engine workloads (threads) and of the instance workload (tasks); more
/// than one, so commits share log groups and fsyncs.
const WRITERS: u64 = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(backend), Some(start), Some(workload)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|s| s.parse::<u64>().ok()),
        args.get(4).and_then(|s| CrashWorkload::parse(s)),
    ) else {
        eprintln!(
            "usage: aedb-crash-child <dir> <uring|sync> <first key> \
             <engine-durable|instance-plain|batch-durable|instance-accumulator|\
             instance-processor> [deliveries file]"
        );
        std::process::exit(2);
    };
    let io_backend = match backend.as_str() {
        "uring" => IoBackendChoice::IoUring,
        _ => IoBackendChoice::Sync,
    };
    let dir = PathBuf::from(dir);
    match workload {
        CrashWorkload::EngineDurable | CrashWorkload::BatchDurable => {
            run_engine(&dir, io_backend, workload.durability_mode(), start)
        }
        CrashWorkload::InstancePlain => run_instance(&dir, io_backend, start),
        CrashWorkload::InstanceAccumulator => run_accumulators(&dir, io_backend, start),
        CrashWorkload::InstanceProcessor => match args.get(5) {
            Some(deliveries) => run_processor(&dir, io_backend, start, Path::new(deliveries)),
            None => {
                eprintln!("instance-processor needs a deliveries file");
                std::process::exit(2);
            }
        },
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn print_recovery(report: &RecoveryReport) {
    print_line(&format!(
        "{CRASH_RECOVERED_PREFIX}{} {}",
        report.checkpoint_seq, report.frames_replayed
    ));
}

fn run_engine(dir: &Path, io_backend: IoBackendChoice, mode: DurabilityMode, start: u64) {
    // Small segments and frequent checkpoints, so kills land during rotations and checkpoints.
    let config = AedbConfig {
        io_backend,
        durability_mode: mode,
        buffer_pool_bytes: 4 << 20,
        max_segment_bytes: 256 << 10,
        checkpoint_wal_bytes: 512 << 10,
        checkpoint_interval_ms: 40,
        ..AedbConfig::default()
    };
    let engine = match Engine::open(config, dir) {
        Ok(engine) => Arc::new(engine),
        Err(err) => {
            eprintln!("open failed: {err}");
            std::process::exit(1);
        }
    };
    print_recovery(engine.recovery_report());
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut i = start + t;
                loop {
                    let value = crash_value(i);
                    let result = engine.commit_blocking(CommitFinality::Durable, move |txn| {
                        txn.insert(CRASH_TREE, &i.to_be_bytes(), &value)?;
                        Ok(())
                    });
                    if let Err(err) = result {
                        eprintln!("commit {i} failed: {err}");
                        return;
                    }
                    print_line(&i.to_string());
                    i += WRITERS;
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

fn run_instance(dir: &Path, io_backend: IoBackendChoice, start: u64) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tokio runtime failed: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        // Deliberately the default configuration: what a new user gets is what must hold.
        let config = AedbConfig {
            io_backend,
            ..AedbConfig::default()
        };
        let db = match AedbInstance::open(config, dir) {
            Ok(db) => Arc::new(db),
            Err(err) => {
                eprintln!("open failed: {err}");
                std::process::exit(1);
            }
        };
        print_recovery(db.engine().recovery_report());
        if let Err(err) = db.create_project(CRASH_PROJECT).await {
            eprintln!("create_project failed: {err}");
            std::process::exit(1);
        }
        if let Err(err) = db.create_scope(CRASH_PROJECT, CRASH_SCOPE).await {
            eprintln!("create_scope failed: {err}");
            std::process::exit(1);
        }
        let tasks: Vec<_> = (0..WRITERS)
            .map(|t| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let mut i = start + t;
                    loop {
                        let mutation = Mutation::KvSet {
                            project_id: CRASH_PROJECT.into(),
                            scope_id: CRASH_SCOPE.into(),
                            key: i.to_be_bytes().to_vec(),
                            value: crash_value(i),
                        };
                        let result = match db.commit(mutation).await {
                            Ok(result) => result,
                            Err(err) => {
                                eprintln!("commit {i} failed: {err}");
                                return;
                            }
                        };
                        // Full durability promises that a plain commit is durable when it
                        // returns; an answer that says otherwise is a broken promise even if
                        // the data happens to survive.
                        if result.durable_head_seq < result.commit_seq {
                            eprintln!(
                                "commit {i} failed: acknowledged under Full with durable head {} \
                                 below its commit {}",
                                result.durable_head_seq, result.commit_seq
                            );
                            return;
                        }
                        print_line(&i.to_string());
                        i += WRITERS;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}

fn run_accumulators(dir: &Path, io_backend: IoBackendChoice, start: u64) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tokio runtime failed: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let config = AedbConfig {
            io_backend,
            ..AedbConfig::default()
        };
        let db = match AedbInstance::open(config, dir) {
            Ok(db) => Arc::new(db),
            Err(err) => {
                eprintln!("open failed: {err}");
                std::process::exit(1);
            }
        };
        print_recovery(db.engine().recovery_report());
        if let Err(err) = db.create_project(CRASH_PROJECT).await {
            eprintln!("create_project failed: {err}");
            std::process::exit(1);
        }
        if let Err(err) = db.create_scope(CRASH_PROJECT, CRASH_SCOPE).await {
            eprintln!("create_scope failed: {err}");
            std::process::exit(1);
        }
        for n in 0..CRASH_ACCUMULATORS {
            // Created by the first child; a small compaction period, so the delta log is
            // compacted often.
            match db
                .create_accumulator(CRASH_PROJECT, CRASH_SCOPE, &crash_accumulator(n), None, 8)
                .await
            {
                Ok(_) | Err(aedb::AedbError::AlreadyExists { .. }) => {}
                Err(err) => {
                    eprintln!("create_accumulator failed: {err}");
                    std::process::exit(1);
                }
            }
        }
        // One task per accumulator (keys `i ≡ start + t`): its order keys increase.
        let tasks: Vec<_> = (0..CRASH_ACCUMULATORS)
            .map(|t| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let mut i = start + t;
                    let name = crash_accumulator(i);
                    // Exposures this process opened and has not released, oldest first.
                    let mut open = std::collections::VecDeque::new();
                    loop {
                        // Each task's keys step by CRASH_ACCUMULATORS: count its own steps.
                        let step = i / CRASH_ACCUMULATORS;
                        let release = if step.is_multiple_of(3) && open.len() > 1 {
                            open.pop_front()
                        } else {
                            None
                        };
                        if let Some(j) = release {
                            print_line(&format!("{CRASH_RELEASING_PREFIX}{i} {j}"));
                        }
                        let result = db
                            .accumulate_with_release(
                                CRASH_PROJECT,
                                CRASH_SCOPE,
                                &name,
                                crash_delta(i),
                                crash_dedupe_key(i),
                                i,
                                release.map(crash_exposure_id),
                            )
                            .await;
                        match result {
                            Ok(r) if r.durable_head_seq >= r.commit_seq => {}
                            Ok(r) => {
                                eprintln!(
                                    "accumulate {i} failed: acknowledged under Full with durable \
                                     head {} below its commit {}",
                                    r.durable_head_seq, r.commit_seq
                                );
                                return;
                            }
                            Err(err) => {
                                eprintln!("accumulate {i} failed: {err}");
                                return;
                            }
                        }
                        print_line(&i.to_string());
                        if step % 2 == 1 {
                            let exposed = db
                                .expose_accumulator(
                                    CRASH_PROJECT,
                                    CRASH_SCOPE,
                                    &name,
                                    1,
                                    crash_exposure_id(i),
                                )
                                .await;
                            if let Err(err) = exposed {
                                eprintln!("expose {i} failed: {err}");
                                return;
                            }
                            print_line(&format!("{CRASH_EXPOSED_PREFIX}{i}"));
                            open.push_back(i);
                        }
                        i += CRASH_ACCUMULATORS;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// Fail the child: print the reason (with "failed") and exit.
fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("{what} failed: {err}");
    std::process::exit(1);
}

fn run_processor(dir: &Path, io_backend: IoBackendChoice, start: u64, deliveries: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| fail("tokio runtime", err));
    // Each delivery reaches the file (synced) before the handler returns Ok, so before the
    // processor may persist a checkpoint past it.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(deliveries)
        .unwrap_or_else(|err| fail("opening the deliveries file", err));
    let file = Arc::new(std::sync::Mutex::new(file));
    runtime.block_on(async move {
        let config = AedbConfig {
            io_backend,
            ..AedbConfig::default()
        };
        let db = AedbInstance::open(config, dir).unwrap_or_else(|err| fail("open", err));
        let db = Arc::new(db);
        print_recovery(db.engine().recovery_report());
        if let Err(err) = db.create_project(CRASH_PROJECT).await {
            fail("create_project", err);
        }
        if let Err(err) = db.create_scope(CRASH_PROJECT, CRASH_SCOPE).await {
            fail("create_scope", err);
        }
        let handler = move |_db, events: Vec<aedb::EventOutboxRecord>| {
            let file = Arc::clone(&file);
            async move {
                let text: String = events
                    .iter()
                    .map(|e| crash_delivery_line(e.commit_seq, &e.event_key))
                    .collect();
                let mut file = file.lock().map_err(|_| AedbError::Closed)?;
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_data())
                    .map_err(|err| AedbError::Io(err.to_string()))
            }
        };
        let resumed = db
            .register_reactive_processor_handler(CRASH_PROCESSOR, handler.clone())
            .await
            .unwrap_or_else(|err| fail("register_reactive_processor_handler", err));
        if !resumed {
            let options = aedb::ReactiveProcessorOptions {
                topic_filter: Some(CRASH_TOPIC.into()),
                max_events_per_run: 16,
                checkpoint_watermark_commits: 8,
                run_interval_ms: 1,
                idle_backoff_ms: 5,
                retry_backoff_ms: 5,
                ..aedb::ReactiveProcessorOptions::default()
            };
            db.start_reactive_processor(CRASH_PROCESSOR, options, handler)
                .await
                .unwrap_or_else(|err| fail("start_reactive_processor", err));
        }
        let how = if resumed { "resumed" } else { "started" };
        print_line(&format!("{CRASH_PROCESSOR_PREFIX}{how}"));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|t| {
                let db = Arc::clone(&db);
                tokio::spawn(async move {
                    let mut i = start + t;
                    loop {
                        let payload = format!("{{\"i\":{i}}}");
                        let result = db
                            .emit_event(
                                CRASH_PROJECT,
                                CRASH_SCOPE,
                                CRASH_TOPIC,
                                crash_event_key(i),
                                payload,
                            )
                            .await;
                        match result {
                            Ok(r) if r.durable_head_seq >= r.commit_seq => {}
                            Ok(r) => fail(
                                &format!("emit {i}"),
                                format!(
                                    "acknowledged under Full with durable head {} below its \
                                     commit {}",
                                    r.durable_head_seq, r.commit_seq
                                ),
                            ),
                            Err(err) => fail(&format!("emit {i}"), err),
                        }
                        print_line(&i.to_string());
                        i += WRITERS;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}
