//! What reading as a caller costs: `kv_get` by a caller granted `KvRead` against
//! `kv_get_no_auth`, over 10,000 keys, the two alternating so the machine's drift falls on
//! both (W11's "KV get as ÷ anonymous" row, without the rest of W11).
//!
//! Run: `cargo run --release -p aedb --example kv_as_probe [ROUNDS]` (default 10; a round reads
//! every key once each way).
use std::time::Instant;

use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::permission::{CallerContext, Permission};
use aedb::query::plan::ConsistencyMode;
use aedb::AedbInstance;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let db = AedbInstance::open(AedbConfig::default(), tmp.path())?;
    db.create_project("p").await?;
    db.create_scope("p", "s").await?;
    let keys: Vec<Vec<u8>> = (0..10_000)
        .map(|i| format!("k{i:06}").into_bytes())
        .collect();
    for chunk in keys.chunks(1000) {
        let pairs = chunk
            .iter()
            .map(|k| Mutation::KvSet {
                project_id: "p".into(),
                scope_id: "s".into(),
                key: k.clone(),
                value: vec![7; 64],
            })
            .collect();
        db.commit_many_atomic(pairs).await?;
    }
    db.commit(Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: "reader".into(),
        permission: Permission::KvRead {
            project_id: "p".into(),
            scope_id: None,
            prefix: None,
        },
        actor_id: None,
        delegable: false,
    }))
    .await?;
    let caller = CallerContext::new("reader");
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (mut anon, mut asc) = (0.0, 0.0);
    for r in 0..rounds {
        for pass in 0..2 {
            let start = Instant::now();
            let mut n = 0;
            for key in &keys {
                let got = if (pass + r) % 2 == 0 {
                    db.kv_get_no_auth("p", "s", key, ConsistencyMode::AtLatest)
                        .await?
                } else {
                    db.kv_get("p", "s", key, ConsistencyMode::AtLatest, &caller)
                        .await?
                };
                n += got.map_or(0, |e| e.value.len());
            }
            assert_eq!(n, 64 * keys.len());
            let t = start.elapsed().as_secs_f64();
            if (pass + r) % 2 == 0 {
                anon += t
            } else {
                asc += t
            }
        }
    }
    let per = (rounds * keys.len()) as f64;
    println!(
        "anon {:.3} us  as {:.3} us  ratio {:.3}",
        anon / per * 1e6,
        asc / per * 1e6,
        asc / anon
    );
    Ok(())
}
