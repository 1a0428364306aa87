//! The permission matrix (#13, behaviour spec 9.1): every mutation kind, every DDL kind, the
//! `_as` write helpers and the caller-bearing reads (queries, KV reads and scans, counter,
//! accumulator and event reads), each at its home place and at places that differ in the
//! table, the scope, the project or the key prefix, run as a caller holding a random set of
//! grants (and owning random resources), and held to a model of the rules written from the
//! spec (`permission_matrix_support::model`): what the model allows must succeed (a write
//! changing something, a scan or query showing exactly the keys or rows the model lets the
//! caller see), what it denies must be `PermissionDenied` with the database unchanged.
//!
//! `AEDB_SOAK=<cases>` runs that many random cases instead of the default.

mod permission_matrix_support;

use aedb::{CallerContext, Permission};
use permission_matrix_support::kinds::{DDL_KINDS, MUTATION_KINDS};
use permission_matrix_support::model::{Model, Need, Owned, Verdict};
use permission_matrix_support::ops::{
    all_ops, delegated, delegation_only, Op, KV_PLACES, PROJECTS, SCOPES, SCOPE_PLACES,
    SEEDED_ROWS, TABLES, TABLE_PLACES,
};
use permission_matrix_support::{
    check_all, describe, difference, prepare, run, Outcome, Tally, ALICE,
};
use proptest::prelude::*;

fn cases() -> u32 {
    match std::env::var("AEDB_SOAK") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("AEDB_SOAK must be a number of cases, not {text:?}")),
        Err(_) => 48,
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn alice() -> CallerContext {
    CallerContext::new(ALICE)
}

fn kv_write(p: &str, s: Option<&str>, prefix: Option<&[u8]>) -> Permission {
    Permission::KvWrite {
        project_id: p.into(),
        scope_id: s.map(Into::into),
        prefix: prefix.map(<[u8]>::to_vec),
    }
}

fn table_read(p: &str, s: &str, t: &str) -> Permission {
    Permission::TableRead {
        project_id: p.into(),
        scope_id: s.into(),
        table_name: t.into(),
    }
}

fn project_admin(p: &str) -> Permission {
    Permission::ProjectAdmin {
        project_id: p.into(),
    }
}

/// The fixed delegation targets and `extra` (the caller's own grants, so that delegable
/// grants meet their own permission).
fn delegate_with(extra: &[Permission]) -> Vec<Permission> {
    let mut delegate = delegated();
    for p in extra {
        if !delegate.contains(p) {
            delegate.push(p.clone());
        }
    }
    delegate
}

fn ops_with(extra: &[Permission]) -> Vec<Op> {
    all_ops(&delegate_with(extra))
}

/// Prepare a database for `model`, run every operation as alice, return the tally.
async fn run_case(model: Model) -> Tally {
    let extra: Vec<Permission> = model.granted.iter().map(|(p, _)| p.clone()).collect();
    let ops = ops_with(&extra);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = prepare(dir.path(), &model, &delegate_with(&extra)).await;
    let tally = check_all(&db, &alice(), &model, &ops, &describe(&model)).await;
    db.shutdown().await.expect("shutdown");
    tally
}

fn id() -> impl Strategy<Value = (String, String, String)> {
    (
        prop::sample::select(PROJECTS.to_vec()),
        prop::sample::select(SCOPES.to_vec()),
        prop::sample::select(TABLES.to_vec()),
    )
        .prop_map(|(p, s, t)| (p.to_string(), s.to_string(), t.to_string()))
}

/// One of the ten permissions over the small universe; `GlobalAdmin` rarely, since it
/// makes every other grant moot.
fn permission() -> impl Strategy<Value = Permission> {
    use Permission as P;
    let kv = || {
        let prefix = prop::sample::select(vec![
            None,
            Some(Vec::new()),
            Some(b"a".to_vec()),
            Some(b"ab".to_vec()),
            Some(b"b".to_vec()),
        ]);
        (id(), any::<bool>(), prefix)
    };
    prop_oneof![
        4 => kv().prop_map(|((p, s, _), all, prefix)| P::KvWrite {
            project_id: p,
            scope_id: (!all).then_some(s),
            prefix,
        }),
        3 => kv().prop_map(|((p, s, _), all, prefix)| P::KvRead {
            project_id: p,
            scope_id: (!all).then_some(s),
            prefix,
        }),
        3 => id().prop_map(|(p, s, t)| P::TableWrite { project_id: p, scope_id: s, table_name: t }),
        2 => id().prop_map(|(p, s, t)| P::TableRead { project_id: p, scope_id: s, table_name: t }),
        1 => id().prop_map(|(p, s, t)| P::IndexRead {
            project_id: p,
            scope_id: s,
            table_name: t,
            index_name: "ix_n".into(),
        }),
        2 => id().prop_map(|(p, _, _)| P::TableDdl { project_id: p }),
        1 => Just(P::GlobalAdmin),
        2 => id().prop_map(|(p, _, _)| P::ProjectAdmin { project_id: p }),
        3 => id().prop_map(|(p, s, _)| P::ScopeAdmin { project_id: p, scope_id: s }),
        1 => (id(), any::<bool>()).prop_map(|((p, _, t), all)| P::PolicyBypass {
            project_id: p,
            table_name: (!all).then_some(t),
        }),
    ]
}

/// The items whose flag is set.
fn pick<T>(flags: &[bool], items: Vec<T>) -> Vec<T> {
    items
        .into_iter()
        .zip(flags)
        .filter(|(_, f)| **f)
        .map(|(item, _)| item)
        .collect()
}

/// Alice owns some of: each project, a scope in each, a table in two scopes.
fn owned() -> impl Strategy<Value = Owned> {
    (
        prop::collection::vec(any::<bool>(), 2),
        prop::collection::vec(any::<bool>(), 2),
        prop::collection::vec(any::<bool>(), 2),
    )
        .prop_map(|(projects, scopes, tables)| {
            let s = |p: &str, s: &str| (p.to_string(), s.to_string());
            let t = |p: &str, s: &str, t: &str| (p.to_string(), s.to_string(), t.to_string());
            Owned {
                projects: pick(&projects, vec!["p0".to_string(), "p1".to_string()]),
                scopes: pick(&scopes, vec![s("p0", "s0"), s("p1", "s1")]),
                tables: pick(&tables, vec![t("p0", "s0", "t0"), t("p0", "s1", "t1")]),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn the_engine_allows_exactly_what_the_model_allows(
        grants in prop::collection::vec((permission(), any::<bool>()), 0..5),
        owned in owned(),
    ) {
        block_on(run_case(Model::new(grants, owned)));
    }
}

/// The model on the spec's own statements, so that the matrix rests on a model that says
/// what section 9.1 says.
#[test]
fn the_model_follows_the_spec() {
    let need_kv = |p: &str, s: &str, key: &[u8]| Need::KvWrite {
        project: p.into(),
        scope: s.into(),
        key: key.to_vec(),
    };
    let need_read = |t: &str| Need::TableRead {
        project: "p0".into(),
        scope: "s0".into(),
        table: t.into(),
    };
    let holds = |grants: Vec<Permission>, need: Need| {
        let model = Model::new(
            grants.into_iter().map(|g| (g, false)).collect(),
            Owned::default(),
        );
        model.verdict(&[need]) == Verdict::Allowed
    };
    let scope_admin = Permission::ScopeAdmin {
        project_id: "p0".into(),
        scope_id: "s0".into(),
    };
    let table_ddl = Need::TableDdl {
        project: "p0".into(),
    };
    // Admins: ProjectAdmin covers its project, KV included; ScopeAdmin its scope, no DDL.
    assert!(holds(vec![project_admin("p0")], need_kv("p0", "s1", b"zz")));
    assert!(holds(vec![project_admin("p0")], table_ddl.clone()));
    assert!(!holds(
        vec![project_admin("p0")],
        need_kv("p1", "s0", b"zz")
    ));
    assert!(!holds(vec![project_admin("p0")], Need::GlobalAdmin));
    assert!(holds(vec![scope_admin.clone()], need_kv("p0", "s0", b"zz")));
    assert!(holds(vec![scope_admin.clone()], need_read("t1")));
    assert!(!holds(
        vec![scope_admin.clone()],
        need_kv("p0", "s1", b"zz")
    ));
    assert!(!holds(vec![scope_admin], table_ddl));
    // KV: scope None is every scope, prefix None or empty every key, else a byte prefix.
    assert!(holds(
        vec![kv_write("p0", None, None)],
        need_kv("p0", "s1", b"x")
    ));
    assert!(holds(
        vec![kv_write("p0", Some("s0"), Some(b""))],
        need_kv("p0", "s0", b"x")
    ));
    assert!(holds(
        vec![kv_write("p0", Some("s0"), Some(b"a"))],
        need_kv("p0", "s0", b"ab.k")
    ));
    assert!(!holds(
        vec![kv_write("p0", Some("s0"), Some(b"ab"))],
        need_kv("p0", "s0", b"a_.k")
    ));
    assert!(!holds(
        vec![kv_write("p0", Some("s1"), None)],
        need_kv("p0", "s0", b"x")
    ));
    // Grants add up; reading does not follow from writing; a join needs every table.
    let read_t0 = table_read("p0", "s0", "t0");
    let model = Model::new(vec![(read_t0.clone(), false)], Owned::default());
    assert_eq!(
        model.verdict(&[need_read("t0"), need_read("t1")]),
        Verdict::Denied
    );
    let both = vec![(read_t0, false), (table_read("p0", "s0", "t1"), false)];
    let model = Model::new(both, Owned::default());
    assert_eq!(
        model.verdict(&[need_read("t0"), need_read("t1")]),
        Verdict::Allowed
    );
    let write_only = Permission::TableWrite {
        project_id: "p0".into(),
        scope_id: "s0".into(),
        table_name: "t0".into(),
    };
    assert!(!holds(vec![write_only], need_read("t0")));
    let kv_read = |p: &str, s: Option<&str>, prefix: Option<&[u8]>| Permission::KvRead {
        project_id: p.into(),
        scope_id: s.map(Into::into),
        prefix: prefix.map(<[u8]>::to_vec),
    };
    let need_kv_read = Need::KvRead {
        project: "p0".into(),
        scope: "s0".into(),
        key: b"ab.k".to_vec(),
    };
    assert!(holds(
        vec![kv_read("p0", None, Some(b"a"))],
        need_kv_read.clone()
    ));
    assert!(!holds(
        vec![kv_write("p0", None, None)],
        need_kv_read.clone()
    ));
    assert!(!holds(vec![kv_read("p0", None, Some(b"b"))], need_kv_read));
    // A scan runs with any read grant of the scope (and shows only what it covers).
    let scan = |s: &str| Need::KvScan {
        project: "p0".into(),
        scope: s.into(),
    };
    assert!(holds(vec![kv_read("p0", None, Some(b"b"))], scan("s0")));
    assert!(!holds(vec![kv_read("p0", Some("s1"), None)], scan("s0")));
    assert!(!holds(vec![kv_write("p0", None, None)], scan("s0")));
    assert!(holds(vec![project_admin("p0")], scan("s1")));
    assert!(!holds(
        vec![kv_write("p0", None, None)],
        Need::KvWrite {
            project: "p1".into(),
            scope: "s0".into(),
            key: b"x".to_vec(),
        }
    ));
}

/// Ownership and delegation in the model, where the spec names who may act.
#[test]
fn the_model_follows_the_spec_on_owners_and_delegation() {
    let owner = |projects: &[&str], scopes: &[(&str, &str)]| Owned {
        projects: projects.iter().map(|p| p.to_string()).collect(),
        scopes: scopes
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect(),
        tables: Vec::new(),
    };
    let transfer = |scope: Option<&str>, table: Option<&str>| Need::Ownership {
        project: "p0".into(),
        scope: scope.map(Into::into),
        table: table.map(Into::into),
    };
    // "GlobalAdmin or owner of the resource (or project owner)": no admin right.
    let admin = Model::new(vec![(project_admin("p0"), true)], Owned::default());
    assert_eq!(admin.verdict(&[transfer(None, None)]), Verdict::Denied);
    assert_eq!(
        admin.verdict(&[transfer(Some("s0"), None)]),
        Verdict::Denied
    );
    let project_owner = Model::new(Vec::new(), owner(&["p0"], &[]));
    let table = transfer(Some("s1"), Some("t1"));
    assert_eq!(project_owner.verdict(&[table]), Verdict::Allowed);
    let scope_owner = Model::new(Vec::new(), owner(&[], &[("p0", "s0")]));
    assert_eq!(
        scope_owner.verdict(&[transfer(Some("s0"), None)]),
        Verdict::Allowed
    );
    assert_eq!(
        scope_owner.verdict(&[transfer(None, None)]),
        Verdict::Denied
    );
    // "The matching admin" of a scoped permission includes the scope's admin.
    let scope_admin = Permission::ScopeAdmin {
        project_id: "p0".into(),
        scope_id: "s0".into(),
    };
    let model = Model::new(vec![(scope_admin, false)], Owned::default());
    let in_scope = Need::Delegate(table_read("p0", "s0", "t1"));
    assert_eq!(model.verdict(&[in_scope]), Verdict::Allowed);
    let elsewhere = Need::Delegate(table_read("p0", "s1", "t1"));
    assert_eq!(model.verdict(&[elsewhere]), Verdict::Denied);
}

/// Every mutation kind and every DDL kind is in the matrix, at each place its need can
/// differ in.
#[test]
fn the_matrix_covers_every_kind() {
    let ops = ops_with(&[]);
    let places = |kind: &str| ops.iter().filter(|op| op.kind == kind).count();
    for (i, kind) in MUTATION_KINDS.iter().enumerate() {
        // The first ten and the last two table kinds write tables; the rest are KV-like.
        let table = i < 10 || kind.starts_with("Table");
        let want = if table {
            TABLE_PLACES.len()
        } else {
            KV_PLACES.len()
        };
        assert!(places(kind) >= want, "{kind}: {} places", places(kind));
    }
    for kind in DDL_KINDS {
        let want = match kind {
            "CreateProject" => 1,
            "CreateScope" | "DropProject" => PROJECTS.len(),
            "GrantPermission" | "RevokePermission" => delegated().len(),
            _ => SCOPE_PLACES.len(),
        };
        assert!(places(kind) >= want, "{kind}: {} places", places(kind));
    }
    // Reads: each table place and two joins, by each path (no explain of a join); each KV
    // place; scans of each KV place and of two wider prefixes in each scope.
    assert_eq!(places("query"), TABLE_PLACES.len() + 2);
    assert_eq!(places("query in read tx"), TABLE_PLACES.len() + 2);
    assert_eq!(places("explain"), TABLE_PLACES.len());
    for kind in [
        "kv_get",
        "kv_get in read tx",
        "counter read",
        "accumulator read",
    ] {
        assert_eq!(places(kind), KV_PLACES.len(), "{kind}");
    }
    assert_eq!(places("kv_scan"), KV_PLACES.len() + 2 * SCOPE_PLACES.len());
    assert_eq!(places("event stream"), 1);
}

#[test]
fn without_grants_everything_is_refused_and_nothing_changes() {
    let model = Model::default();
    let ops = ops_with(&[]);
    for op in &ops {
        assert_eq!(model.verdict(&op.needs), Verdict::Denied, "{}", op.label);
    }
    let tally = block_on(run_case(model));
    assert_eq!((tally.allowed, tally.denied), (0, ops.len()));
}

#[test]
fn global_admin_may_do_everything() {
    let model = Model::new(vec![(Permission::GlobalAdmin, false)], Owned::default());
    let ops = ops_with(&[Permission::GlobalAdmin]);
    for op in &ops {
        assert_eq!(model.verdict(&op.needs), Verdict::Allowed, "{}", op.label);
    }
    let tally = block_on(run_case(model));
    assert_eq!((tally.allowed, tally.denied), (ops.len(), 0));
}

/// Run the grant and revoke of each permission as alice under `model`; `expect` says which
/// the spec allows. Both the model and the engine are held to it.
async fn delegation_case(model: Model, expect: &[(Permission, bool)]) {
    let permissions: Vec<Permission> = expect.iter().map(|(p, _)| p.clone()).collect();
    let ops = delegation_only(&permissions);
    for ((permission, allowed), pair) in expect.iter().zip(ops.chunks(2)) {
        for op in pair {
            let want = if *allowed {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
            let context = format!("{permission:?} under {}", describe(&model));
            assert_eq!(model.verdict(&op.needs), want, "{}: {context}", op.label);
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = prepare(dir.path(), &model, &permissions).await;
    let tally = check_all(&db, &alice(), &model, &ops, &describe(&model)).await;
    let allowed = expect.iter().filter(|(_, a)| *a).count();
    assert_eq!(tally.allowed, 2 * allowed);
    db.shutdown().await.expect("shutdown");
}

#[test]
fn delegation_follows_the_delegable_flag_the_project_admin_and_the_owners() {
    let t0 = table_read("p0", "s0", "t0");
    let t1 = table_read("p0", "s0", "t1");
    let write_t0 = Permission::TableWrite {
        project_id: "p0".into(),
        scope_id: "s0".into(),
        table_name: "t0".into(),
    };
    let lone = |grants: Vec<(Permission, bool)>| Model::new(grants, Owned::default());
    block_on(async {
        // The same permission, granted delegable: that one only, not its neighbours.
        let expect = [
            (t0.clone(), true),
            (t1.clone(), false),
            (write_t0.clone(), false),
        ];
        delegation_case(lone(vec![(t0.clone(), true)]), &expect).await;
        // Not delegable: nothing.
        delegation_case(lone(vec![(t0.clone(), false)]), &[(t0.clone(), false)]).await;
        // Granted again: the later grant's flag counts.
        let regranted = vec![(t0.clone(), true), (t0.clone(), false)];
        delegation_case(lone(regranted), &[(t0.clone(), false)]).await;
        let regranted = vec![(t0.clone(), false), (t0.clone(), true)];
        delegation_case(lone(regranted), &[(t0.clone(), true)]).await;
        // A wider delegable grant does not pass on a narrower one ("the same permission").
        let wide = kv_write("p0", None, None);
        let narrow = kv_write("p0", Some("s0"), Some(b"ab"));
        let expect = [(wide.clone(), true), (narrow, false)];
        delegation_case(lone(vec![(wide, true)]), &expect).await;
        // The project's admin and its owner: anything in the project, nothing elsewhere,
        // never GlobalAdmin.
        let in_p0 = [
            t0.clone(),
            write_t0.clone(),
            kv_write("p0", Some("s1"), Some(b"b")),
            Permission::TableDdl {
                project_id: "p0".into(),
            },
            Permission::ScopeAdmin {
                project_id: "p0".into(),
                scope_id: "s1".into(),
            },
            project_admin("p0"),
            Permission::PolicyBypass {
                project_id: "p0".into(),
                table_name: None,
            },
        ];
        let mut expect: Vec<(Permission, bool)> = in_p0.iter().map(|p| (p.clone(), true)).collect();
        expect.push((table_read("p1", "s0", "t0"), false));
        expect.push((project_admin("p1"), false));
        expect.push((Permission::GlobalAdmin, false));
        delegation_case(lone(vec![(project_admin("p0"), false)]), &expect).await;
        let owner = Owned {
            projects: vec!["p0".into()],
            ..Owned::default()
        };
        delegation_case(Model::new(Vec::new(), owner), &expect).await;
        // The owner of a scope or of a table: what names it, not the project or other places.
        let scope_owner = Owned {
            scopes: vec![("p0".into(), "s0".into())],
            ..Owned::default()
        };
        let expect = [
            (t0.clone(), true),
            (kv_write("p0", Some("s0"), None), true),
            (
                Permission::ScopeAdmin {
                    project_id: "p0".into(),
                    scope_id: "s0".into(),
                },
                true,
            ),
            (kv_write("p0", None, None), false),
            (table_read("p0", "s1", "t0"), false),
            (project_admin("p0"), false),
        ];
        delegation_case(Model::new(Vec::new(), scope_owner), &expect).await;
        let table_owner = Owned {
            tables: vec![("p0".into(), "s0".into(), "t0".into())],
            ..Owned::default()
        };
        let expect = [
            (t0.clone(), true),
            (write_t0.clone(), true),
            (t1.clone(), false),
        ];
        delegation_case(Model::new(Vec::new(), table_owner), &expect).await;
        // A scope's admin is not the project's: project-wide rights stay out of reach.
        let scope_admin = Permission::ScopeAdmin {
            project_id: "p0".into(),
            scope_id: "s0".into(),
        };
        let expect = [
            (project_admin("p0"), false),
            (
                Permission::TableDdl {
                    project_id: "p0".into(),
                },
                false,
            ),
            (kv_write("p0", None, None), false),
            (table_read("p0", "s1", "t0"), false),
        ];
        delegation_case(lone(vec![(scope_admin, false)]), &expect).await;
    });
}

/// A delegated grant lets its grantee do what it names, not pass it on (granted plain), and
/// its revoke takes it back on the next call.
#[test]
fn a_delegated_grant_works_and_its_revoke_takes_it_back() {
    use aedb::catalog::DdlOperation;
    use aedb::commit::validation::Mutation;
    use aedb::query::error::QueryError;
    use aedb::query::plan::{Query, QueryOptions};
    use aedb::AedbError;
    let t0 = table_read("p0", "s0", "t0");
    let model = Model::new(vec![(t0.clone(), true)], Owned::default());
    let grant = |to: &str| {
        Mutation::Ddl(DdlOperation::GrantPermission {
            caller_id: to.into(),
            permission: t0.clone(),
            actor_id: None,
            delegable: false,
        })
    };
    block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = prepare(dir.path(), &model, &[]).await;
        let bob = CallerContext::new("bob");
        let bob_reads = || {
            let query = Query::select(&["*"]).from("t0").limit(100);
            db.query_with_options_as(Some(&bob), "p0", "s0", query, QueryOptions::default())
        };
        let refused =
            |r: &Result<_, QueryError>| matches!(r, Err(QueryError::PermissionDenied { .. }));
        assert!(refused(&bob_reads().await), "before the grant");
        db.commit_as(alice(), grant("bob"))
            .await
            .expect("alice delegates");
        let rows = bob_reads().await.expect("bob reads").rows.len();
        assert_eq!(rows, SEEDED_ROWS as usize);
        assert!(matches!(
            db.commit_as(bob.clone(), grant("dave")).await,
            Err(AedbError::PermissionDenied(_))
        ));
        let revoke = Mutation::Ddl(DdlOperation::RevokePermission {
            caller_id: "bob".into(),
            permission: t0.clone(),
            actor_id: None,
        });
        db.commit_as(alice(), revoke).await.expect("alice revokes");
        assert!(refused(&bob_reads().await), "after the revoke");
        db.shutdown().await.expect("shutdown");
    });
}

#[test]
fn blank_and_reserved_callers_are_refused_everything() {
    let ops = ops_with(&[]);
    block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        // Alice may do everything; the callers below are not alice.
        let model = Model::new(vec![(Permission::GlobalAdmin, true)], Owned::default());
        let db = prepare(dir.path(), &model, &delegated()).await;
        for (id, reason) in [("", "blank"), ("   ", "blank"), ("system", "reserved")] {
            let caller = CallerContext::new(id);
            for op in &ops {
                let before = db.engine().snapshot();
                let got = run(&db, &caller, &op.action).await;
                let label = format!("{} as {id:?}", op.label);
                match &got {
                    Outcome::Denied(why) => assert!(why.contains(reason), "{label}: {why}"),
                    other => panic!("{label}: {other:?}"),
                }
                assert_eq!(
                    difference(&before, &db.engine().snapshot()),
                    None,
                    "{label}"
                );
            }
        }
        db.shutdown().await.expect("shutdown");
    });
}
