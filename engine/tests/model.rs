//! A model test: random mutations and queries against the engine and an in-memory reference,
//! compared after every step and after reopening.

use std::collections::BTreeMap;

use aedb::catalog::expr::col;
use aedb::catalog::schema::ColumnDef;
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;
use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::{ConsistencyMode, Order, Query};
use aedb::AedbInstance;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(i64, i64),
    Upsert(i64, i64),
    Delete(i64),
    AddWhereBelow(i64, i64),
    KvSet(u8, u8),
    KvDel(u8),
    QueryRange(i64, i64, bool, Option<usize>),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i64..60, -50i64..50).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0i64..60, -50i64..50).prop_map(|(k, v)| Op::Upsert(k, v)),
        3 => (0i64..60).prop_map(Op::Delete),
        2 => (-50i64..50, -5i64..5).prop_map(|(t, d)| Op::AddWhereBelow(t, d)),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::KvSet(k % 40, v)),
        2 => any::<u8>().prop_map(|k| Op::KvDel(k % 40)),
        4 => (0i64..60, 0i64..60, any::<bool>(), proptest::option::of(1usize..20)).prop_map(|(a, b, d, l)| Op::QueryRange(a, b, d, l)),
        1 => Just(Op::Reopen),
    ]
}

fn config() -> AedbConfig {
    AedbConfig {
        durability_mode: DurabilityMode::OsBuffered,
        ..AedbConfig::default()
    }
}

fn row(k: i64, v: i64) -> Row {
    Row::from_values(vec![Value::Integer(k), Value::Integer(v)])
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = AedbInstance::open(config(), dir.path()).expect("open");
    db.create_project("m").await.expect("project");
    db.commit(Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "m".into(),
        scope_id: "app".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![
            ColumnDef {
                name: "k".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
            ColumnDef {
                name: "v".into(),
                col_type: ColumnType::Integer,
                nullable: false,
            },
        ],
        primary_key: vec!["k".into()],
    }))
    .await
    .expect("table");
    let mut table: BTreeMap<i64, i64> = BTreeMap::new();
    let mut kv: BTreeMap<u8, u8> = BTreeMap::new();
    let ids = |k: i64| vec![Value::Integer(k)];
    for op in ops {
        match op {
            Op::Insert(k, v) => {
                let result = db
                    .commit(Mutation::Insert {
                        project_id: "m".into(),
                        scope_id: "app".into(),
                        table_name: "t".into(),
                        primary_key: ids(k),
                        row: row(k, v),
                    })
                    .await;
                assert_eq!(
                    result.is_ok(),
                    !table.contains_key(&k),
                    "insert {k}: {result:?}"
                );
                table.entry(k).or_insert(v);
            }
            Op::Upsert(k, v) => {
                db.commit(Mutation::Upsert {
                    project_id: "m".into(),
                    scope_id: "app".into(),
                    table_name: "t".into(),
                    primary_key: ids(k),
                    row: row(k, v),
                })
                .await
                .expect("upsert");
                table.insert(k, v);
            }
            Op::Delete(k) => {
                db.commit(Mutation::Delete {
                    project_id: "m".into(),
                    scope_id: "app".into(),
                    table_name: "t".into(),
                    primary_key: ids(k),
                })
                .await
                .expect("delete");
                table.remove(&k);
            }
            Op::AddWhereBelow(threshold, delta) => {
                db.commit(Mutation::UpdateWhereExpr {
                    project_id: "m".into(),
                    scope_id: "app".into(),
                    table_name: "t".into(),
                    predicate: col("v").lt(Value::Integer(threshold)),
                    updates: vec![(
                        "v".into(),
                        aedb::commit::validation::TableUpdateExpr::AddI64(delta),
                    )],
                    limit: None,
                })
                .await
                .expect("update");
                for v in table.values_mut() {
                    if *v < threshold {
                        *v += delta;
                    }
                }
            }
            Op::KvSet(k, v) => {
                db.kv_set("m", "app", vec![k], vec![v])
                    .await
                    .expect("kv set");
                kv.insert(k, v);
            }
            Op::KvDel(k) => {
                db.kv_del("m", "app", vec![k]).await.expect("kv del");
                kv.remove(&k);
            }
            Op::QueryRange(a, b, desc, limit) => {
                let (lo, hi) = (a.min(b), a.max(b));
                let mut query = Query::select(&["k", "v"])
                    .from("t")
                    .where_(col("k").between(Value::Integer(lo), Value::Integer(hi)));
                if desc {
                    query = query.order_by("v", Order::Desc);
                }
                if let Some(limit) = limit {
                    query = query.limit(limit);
                }
                let got = db.query("m", "app", query).await.expect("query").rows;
                let mut want: Vec<(i64, i64)> =
                    table.range(lo..=hi).map(|(k, v)| (*k, *v)).collect();
                if desc {
                    want.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
                }
                want.truncate(limit.unwrap_or(100));
                let want: Vec<Row> = want.into_iter().map(|(k, v)| row(k, v)).collect();
                assert_eq!(got, want, "range {lo}..={hi} desc={desc} limit={limit:?}");
            }
            Op::Reopen => {
                db.shutdown().await.expect("shutdown");
                db = AedbInstance::open(config(), dir.path()).expect("reopen");
            }
        }
        // After every step: the whole table and KV space agree with the reference.
        let all = db
            .query("m", "app", Query::select(&["*"]).from("t").limit(1000))
            .await
            .expect("scan")
            .rows;
        assert_eq!(
            all,
            table.iter().map(|(k, v)| row(*k, *v)).collect::<Vec<_>>()
        );
        let entries = db
            .kv_scan_prefix_no_auth("m", "app", b"", 1000, ConsistencyMode::AtLatest)
            .await
            .expect("kv scan");
        assert_eq!(
            entries
                .iter()
                .map(|(k, e)| (k[0], e.value[0]))
                .collect::<Vec<_>>(),
            kv.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()
        );
    }
    db.shutdown().await.expect("shutdown");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn engine_matches_reference(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(run(ops));
    }
}
