//! The process the kill -9 test kills: four threads commit with Durable finality and print each
//! acknowledged key on stdout, until the parent kills the process.
//!
//! Usage: aedb-crash-child <dir> <uring|sync> <first key>

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use aedb::config::{AedbConfig, IoBackendChoice};
use aedb::{CommitFinality, Engine};

const THREADS: u64 = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(backend), Some(start)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: aedb-crash-child <dir> <uring|sync> <first key>");
        std::process::exit(2);
    };
    let io_backend = match backend.as_str() {
        "uring" => IoBackendChoice::IoUring,
        _ => IoBackendChoice::Sync,
    };
    let config = AedbConfig {
        io_backend,
        buffer_pool_bytes: 4 << 20,
        max_segment_bytes: 256 << 10,
        checkpoint_wal_bytes: 512 << 10,
        checkpoint_interval_ms: 40,
        ..AedbConfig::default()
    };
    let engine = match Engine::open(config, &PathBuf::from(dir)) {
        Ok(engine) => Arc::new(engine),
        Err(err) => {
            eprintln!("open failed: {err}");
            std::process::exit(1);
        }
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let mut i = start + t;
                loop {
                    let value = aedb_tests::crash_value(i);
                    let result = engine.commit_blocking(CommitFinality::Durable, move |txn| {
                        txn.insert("kv", &i.to_be_bytes(), &value)?;
                        Ok(())
                    });
                    match result {
                        Ok(_) => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{i}");
                            let _ = out.flush();
                        }
                        Err(err) => {
                            eprintln!("commit {i} failed: {err}");
                            return;
                        }
                    }
                    i += THREADS;
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}
