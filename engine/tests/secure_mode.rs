//! Secure and production opens (#13 item 3, 6): the configuration they refuse, every family
//! of anonymous call refused with nothing changed, reserved caller ids, the bootstrap admin,
//! the trust-mode marker, owner-only directories, and grants taking effect on reads at once
//! (the read path's grant cache).

use std::sync::Arc;

use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode, RecoveryMode};
use aedb::query::plan::{ConsistencyMode, Query, QueryOptions};
use aedb::{AedbError, AedbInstance, CallerContext, Permission, ReactiveProcessorOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: [u8; 32] = [9; 32];
const LATEST: ConsistencyMode = ConsistencyMode::AtLatest;

fn secure_config() -> AedbConfig {
    AedbConfig {
        bootstrap_admin: Some("root".into()),
        ..AedbConfig::production(KEY)
    }
}

fn root() -> CallerContext {
    CallerContext::new("root")
}

fn is_denied<T: std::fmt::Debug>(result: Result<T, AedbError>) -> bool {
    matches!(result, Err(AedbError::PermissionDenied(_)))
}

fn query_denied<T: std::fmt::Debug>(result: Result<T, aedb::query::QueryError>) -> bool {
    matches!(
        result,
        Err(aedb::query::QueryError::PermissionDenied { .. })
    )
}

#[test]
fn secure_opens_refuse_weak_configurations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flaws: Vec<(&str, AedbConfig)> = vec![
        ("no key", AedbConfig::default()),
        ("low latency", AedbConfig::low_latency(KEY)),
        (
            "os buffered",
            AedbConfig {
                durability_mode: DurabilityMode::OsBuffered,
                ..AedbConfig::production(KEY)
            },
        ),
        (
            "permissive",
            AedbConfig {
                recovery_mode: RecoveryMode::Permissive,
                ..AedbConfig::production(KEY)
            },
        ),
        (
            "no hash chain",
            AedbConfig {
                hash_chain_required: false,
                ..AedbConfig::production(KEY)
            },
        ),
        (
            "reserved admin",
            AedbConfig {
                bootstrap_admin: Some("system".into()),
                ..AedbConfig::production(KEY)
            },
        ),
    ];
    for (what, config) in flaws {
        for open in [AedbInstance::open_secure, AedbInstance::open_production] {
            let path = dir.path().join(what.replace(' ', "_"));
            match open(config.clone(), &path) {
                Err(AedbError::InvalidConfig { message }) => assert!(!message.is_empty(), "{what}"),
                other => panic!("{what}: expected InvalidConfig, got {:?}", other.err()),
            }
            assert!(!path.exists(), "{what}: a refused open creates nothing");
        }
    }
    let low = AedbInstance::open_secure(AedbConfig::low_latency(KEY), dir.path());
    assert!(
        matches!(low, Err(AedbError::InvalidConfig { ref message }) if message.contains("DurabilityMode::Full")),
        "{:?}",
        low.err()
    );
}

#[tokio::test]
async fn every_family_of_anonymous_call_is_refused_and_changes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open_secure(secure_config(), dir.path())?);
    assert!(db.requires_authenticated_calls());
    db.commit_as(root(), create_project("p")).await?;
    db.commit_as(root(), Mutation::Ddl(create_table_op()))
        .await?;
    let head = db.engine().visible_head_seq();

    assert!(is_denied(db.create_project("q").await));
    assert!(is_denied(db.commit(create_project("q")).await));
    assert!(is_denied(db.commit_envelope(Default::default()).await));
    assert!(is_denied(
        db.kv_set("p", "app", b"k".to_vec(), b"v".to_vec()).await
    ));
    assert!(is_denied(db.kv_del("p", "app", b"k".to_vec()).await));
    assert!(is_denied(
        db.create_accumulator("p", "app", "acc", None, 1).await
    ));
    assert!(is_denied(
        db.emit_event("p", "app", "t", "k".into(), "{}".into())
            .await
    ));
    assert!(is_denied(
        db.ack_reactive_processor_checkpoint("proc", 1).await
    ));
    assert!(matches!(
        db.preflight(create_project("q")).await,
        aedb::PreflightResult::Err { ref reason } if reason.contains("without a caller")
    ));
    assert!(!db.preflight_plan(create_project("q")).await.valid);

    let query = || Query::select(&["*"]).from("t");
    assert!(query_denied(db.query("p", "app", query()).await));
    assert!(query_denied(
        db.query_with_options_as(None, "p", "app", query(), QueryOptions::default())
            .await
    ));
    assert!(query_denied(db.explain_query("p", "app", query()).await));
    assert!(query_denied(db.begin_read_tx(LATEST).await.map(|_| ())));
    assert!(query_denied(
        db.kv_get_no_auth("p", "app", b"k", LATEST).await
    ));
    assert!(query_denied(
        db.kv_scan_prefix_no_auth("p", "app", b"", 10, LATEST).await
    ));
    assert!(query_denied(
        db.counter_read_sharded("p", "app", b"c", 4, LATEST).await
    ));
    assert!(is_denied(
        db.accumulator_value("p", "app", "acc", LATEST).await
    ));
    assert!(is_denied(db.read_event_stream(None, 0, 10, LATEST).await));
    assert!(is_denied(db.reactive_processor_lag("proc", LATEST).await));
    assert!(is_denied(db.list_projects().await));
    assert!(is_denied(db.project_exists("p").await));
    assert!(is_denied(db.describe_table("p", "app", "t").await));
    assert!(is_denied(
        db.keyed_state_read(
            "p",
            "app",
            "t",
            aedb::catalog::types::Value::Integer(1),
            LATEST
        )
        .await
    ));
    assert!(is_denied(db.processor_pull("proc", "t", 10).await));
    let no_caller = ReactiveProcessorOptions::default();
    assert!(is_denied(
        db.start_reactive_processor("proc", no_caller, |_, _| async { Ok(()) })
            .await
    ));

    assert_eq!(
        db.engine().visible_head_seq(),
        head,
        "no refused call committed"
    );
    // The reserved and blank ids are refused even for the calls that take a caller.
    for id in ["system", "", " "] {
        let who = CallerContext::new(id);
        assert!(
            is_denied(db.commit_as(who.clone(), create_project("q")).await),
            "{id:?}"
        );
        assert!(
            query_denied(db.kv_get("p", "app", b"k", LATEST, &who).await),
            "{id:?}"
        );
    }
    // The admin's calls work.
    let query = Query::select(&["*"]).from("t");
    db.query_with_options_as(Some(&root()), "p", "app", query, QueryOptions::default())
        .await?;
    Ok(())
}

fn create_project(id: &str) -> Mutation {
    Mutation::Ddl(DdlOperation::CreateProject {
        project_id: id.into(),
        owner_id: None,
        if_not_exists: false,
    })
}

fn create_table_op() -> DdlOperation {
    DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![aedb::catalog::schema::ColumnDef {
            name: "id".into(),
            col_type: aedb::catalog::types::ColumnType::Integer,
            nullable: false,
        }],
        primary_key: vec!["id".into()],
    }
}

fn grant(to: &str, permission: Permission) -> Mutation {
    Mutation::Ddl(DdlOperation::GrantPermission {
        caller_id: to.into(),
        permission,
        actor_id: None,
        delegable: false,
    })
}

fn revoke(to: &str, permission: Permission) -> Mutation {
    Mutation::Ddl(DdlOperation::RevokePermission {
        caller_id: to.into(),
        permission,
        actor_id: None,
    })
}

#[tokio::test]
async fn the_bootstrap_admin_is_granted_once_on_a_database_without_grants() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let db = AedbInstance::open_secure(secure_config(), dir.path())?;
        db.commit_as(root(), create_project("p")).await?;
        db.commit_as(root(), grant("ops", Permission::GlobalAdmin))
            .await?;
        let ops = CallerContext::new("ops");
        db.commit_as(ops, revoke("root", Permission::GlobalAdmin))
            .await?;
        assert!(is_denied(db.commit_as(root(), create_project("q")).await));
        db.shutdown().await?;
    }
    // Grants exist: reopening does not make root an admin again.
    let db = AedbInstance::open_production(secure_config(), dir.path())?;
    assert!(is_denied(db.commit_as(root(), create_project("q")).await));
    db.commit_as(CallerContext::new("ops"), create_project("q"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_grant_or_revoke_takes_effect_on_the_next_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open_secure(secure_config(), dir.path())?;
    db.commit_as(root(), create_project("p")).await?;
    db.commit_as(
        root(),
        Mutation::KvSet {
            project_id: "p".into(),
            scope_id: "app".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        },
    )
    .await?;
    let reader = CallerContext::new("reader");
    let read = Permission::KvRead {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(b"k".to_vec()),
    };
    for round in 0..3 {
        assert!(
            query_denied(db.kv_get("p", "app", b"k", LATEST, &reader).await),
            "{round}"
        );
        db.commit_as(root(), grant("reader", read.clone())).await?;
        // Read twice: the second answer comes from the cache.
        for _ in 0..2 {
            let entry = db.kv_get("p", "app", b"k", LATEST, &reader).await?;
            assert_eq!(entry.map(|e| e.value), Some(b"v".to_vec()), "{round}");
        }
        db.commit_as(root(), revoke("reader", read.clone())).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_directory_once_opened_weakly_is_refused_by_a_secure_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let weak = AedbConfig {
        hmac_key: Some(KEY),
        ..AedbConfig::development()
    };
    AedbInstance::open(weak, dir.path())?.shutdown().await?;
    let refused = AedbInstance::open_secure(secure_config(), dir.path());
    assert!(
        matches!(refused, Err(AedbError::Validation(ref m)) if m.contains("strict open denied")),
        "{:?}",
        refused.err()
    );
    // An altered marker is an integrity error under the key it was written with.
    let marker = dir.path().join("trust_mode");
    let mut text = std::fs::read(&marker)?;
    text.extend_from_slice(b"edited\n");
    std::fs::write(&marker, text)?;
    let altered = AedbInstance::open_secure(secure_config(), dir.path());
    assert!(
        matches!(altered, Err(AedbError::IntegrityError { .. })),
        "{:?}",
        altered.err()
    );
    // A strict database never opened weakly has no marker and opens.
    let strict = tempfile::tempdir()?;
    AedbInstance::open(AedbConfig::production(KEY), strict.path())?
        .shutdown()
        .await?;
    AedbInstance::open_secure(secure_config(), strict.path())?;
    assert!(!strict.path().join("trust_mode").exists());
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_new_data_directory_is_private_to_its_owner() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("a").join("db");
    let db = AedbInstance::open_secure(secure_config(), &dir)?;
    drop(db);
    for path in [&dir, &parent.path().join("a")] {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
    }
    Ok(())
}

#[tokio::test]
async fn another_key_is_refused_naming_the_segment_and_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open_secure(secure_config(), dir.path())?;
    db.commit_as(root(), create_project("p")).await?;
    db.shutdown().await?;
    let other = AedbConfig {
        hmac_key: Some([7; 32]),
        ..secure_config()
    };
    match AedbInstance::open_secure(other, dir.path()) {
        Err(err @ AedbError::DataCorruption { .. }) => {
            let text = err.to_string();
            assert!(text.contains("wal-") && text.contains("offset"), "{text}");
        }
        other => panic!("expected a corruption error, got {:?}", other.err()),
    }
    // The right key still opens it, with everything.
    let db = AedbInstance::open_secure(secure_config(), dir.path())?;
    let again = db.commit_as(root(), create_project("p")).await;
    assert!(
        matches!(again, Err(AedbError::AlreadyExists { .. })),
        "{again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn numeric_kv_counter_and_cas_calls_check_their_caller() -> TestResult {
    use aedb::commit::validation::{
        KvU256MutatorOp as U256Op, KvU64MissingPolicy as Missing, KvU64MutatorOp as U64Op,
        KvU64OverflowPolicy as Overflow, KvU64UnderflowPolicy as Underflow,
    };
    let dir = tempfile::tempdir()?;
    let db = AedbInstance::open_secure(secure_config(), dir.path())?;
    db.commit_as(root(), create_project("p")).await?;
    let write = Permission::KvWrite {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(b"n".to_vec()),
    };
    db.commit_as(root(), grant("w", write)).await?;
    // A compare-and-set asserts on the key's version: it needs to read the key too.
    let read = Permission::KvRead {
        project_id: "p".into(),
        scope_id: Some("app".into()),
        prefix: Some(b"n".to_vec()),
    };
    db.commit_as(root(), grant("w", read)).await?;
    let w = || CallerContext::new("w");
    let one64 = 1u64.to_be_bytes();
    let mut one256 = [0u8; 32];
    one256[31] = 1;
    for (key, allowed) in [(&b"n1"[..], true), (&b"x1"[..], false)] {
        // One key per kind of value (u64 and u256 do not mix), each under the tested prefix.
        let k = |i: u8| [key, &[i][..]].concat();
        let outcomes = vec![
            db.kv_inc_u256_as(w(), "p", "app", k(0), one256).await,
            db.kv_dec_u256_as(w(), "p", "app", k(0), one256).await,
            db.kv_add_u64_ex_as(
                w(),
                "p",
                "app",
                k(2),
                one64,
                Missing::TreatAsZero,
                Overflow::Reject,
            )
            .await,
            db.kv_sub_u64_ex_as(
                w(),
                "p",
                "app",
                k(2),
                one64,
                Missing::TreatAsZero,
                Underflow::NoOp,
            )
            .await,
            db.kv_mutate_u64_as(w(), "p", "app", k(2), U64Op::Set, one64, None)
                .await,
            db.kv_mutate_u256_as(w(), "p", "app", k(0), U256Op::Set, one256, None)
                .await,
            db.counter_add_sharded_as(w(), "p", "app", k(6), one64, 4, 1)
                .await,
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            assert_eq!(outcome.is_ok(), allowed, "call {i} on {key:?}: {outcome:?}");
            if !allowed {
                assert!(is_denied(outcome), "call {i}");
            }
        }
        let cas = db
            .kv_compare_and_swap_as(w(), "p", "app", [key, b"-cas"].concat(), b"v".to_vec(), 0)
            .await;
        assert_eq!(cas.is_ok(), allowed, "{cas:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_processor_runs_and_acks_as_its_caller_in_secure_mode() -> TestResult {
    use aedb::EventOutboxRecord;
    use parking_lot::Mutex;
    use std::time::Duration;
    let dir = tempfile::tempdir()?;
    let db = Arc::new(AedbInstance::open_secure(secure_config(), dir.path())?);
    db.commit_as(root(), create_project("p")).await?;
    let system = |table: &str, write: bool| {
        let (project_id, scope_id, table_name) = ("_system".into(), "app".into(), table.into());
        if write {
            Permission::TableWrite {
                project_id,
                scope_id,
                table_name,
            }
        } else {
            Permission::TableRead {
                project_id,
                scope_id,
                table_name,
            }
        }
    };
    let options = || ReactiveProcessorOptions {
        caller_id: Some("worker".into()),
        run_interval_ms: 5,
        idle_backoff_ms: 5,
        checkpoint_watermark_commits: 1,
        ..ReactiveProcessorOptions::default()
    };
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let handler = {
        let seen = seen.clone();
        move |_, events: Vec<EventOutboxRecord>| {
            seen.lock().extend(events.into_iter().map(|e| e.event_key));
            std::future::ready(Ok(()))
        }
    };
    // Without its grants the processor's caller is refused at start.
    assert!(is_denied(
        db.start_reactive_processor("proc", options(), handler.clone())
            .await
    ));
    db.commit_as(root(), grant("worker", system("event_outbox", false)))
        .await?;
    db.commit_as(
        root(),
        grant("worker", system("reactive_processor_checkpoints", true)),
    )
    .await?;
    db.commit_as(
        root(),
        grant("worker", system("reactive_processor_checkpoints", false)),
    )
    .await?;
    db.start_reactive_processor("proc", options(), handler)
        .await?;
    let emitted = db
        .emit_event_as(root(), "p", "app", "t", "e1".into(), "{}".into())
        .await;
    // root is GlobalAdmin: its emit is allowed.
    let emitted = emitted?;
    let worker = CallerContext::new("worker");
    let mut acked = 0;
    for _ in 0..1_000 {
        acked = db
            .reactive_processor_lag_as(&worker, "proc", LATEST)
            .await?
            .checkpoint_seq;
        if acked >= emitted.commit_seq {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*seen.lock(), ["e1"]);
    assert!(
        acked >= emitted.commit_seq,
        "the checkpoint was persisted as the worker: {acked}"
    );
    db.stop_reactive_processor("proc").await?;
    Ok(())
}
