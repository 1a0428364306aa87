//! Joins by every probe (primary key, index, hash), checked against nested loops in the test,
//! paged by cursors (also when the scan bound cuts a page short), and after a reopen. Also the
//! schema cache: a query sees a DDL at once and an old snapshot keeps its old schema.

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, IndexType};
use aedb::catalog::types::{ColumnType, Row, Value};
use aedb::catalog::{DdlOperation, TableAlteration};
use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::query::plan::{ConsistencyMode, Order, Query, QueryOptions};
use aedb::AedbInstance;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn column(name: &str, col_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    }
}

fn table(name: &str, columns: Vec<ColumnDef>) -> Mutation {
    let pk = columns[0].name.clone();
    Mutation::Ddl(DdlOperation::CreateTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: name.into(),
        owner_id: None,
        columns,
        primary_key: vec![pk],
    })
}

fn ints(values: &[Option<i64>]) -> Row {
    Row::from_values(
        values
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Integer))
            .collect(),
    )
}

fn batch(table: &str, rows: Vec<Row>) -> Mutation {
    Mutation::InsertBatch {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: table.into(),
        rows,
    }
}

/// people(id, team) — team may be Null; teams(tid, rank); orders(oid, person, amount).
/// orders.person has an index; teams.rank has none.
const PEOPLE: i64 = 40;
const TEAMS: i64 = 6;
const ORDERS: i64 = 90;

fn person(id: i64) -> Vec<Option<i64>> {
    vec![Some(id), (id % 7 != 0).then_some(id % (TEAMS + 2))]
}
fn team(tid: i64) -> Vec<Option<i64>> {
    vec![Some(tid), Some(tid % 3)]
}
fn order(oid: i64) -> Vec<Option<i64>> {
    // Some orders name people that do not exist (ids past PEOPLE).
    vec![Some(oid), Some((oid * 7) % (PEOPLE + 5)), Some(oid % 11)]
}

async fn setup(
    dir: &std::path::Path,
    config: AedbConfig,
) -> Result<AedbInstance, Box<dyn std::error::Error>> {
    let db = AedbInstance::open(config, dir)?;
    db.create_project("p").await?;
    let int = |n: &str, nullable| column(n, ColumnType::Integer, nullable);
    db.commit(table("people", vec![int("id", false), int("team", true)]))
        .await?;
    db.commit(table("teams", vec![int("tid", false), int("rank", false)]))
        .await?;
    db.commit(table(
        "orders",
        vec![
            int("oid", false),
            int("person", false),
            int("amount", false),
        ],
    ))
    .await?;
    db.commit(Mutation::Ddl(DdlOperation::CreateIndex {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "orders".into(),
        index_name: "by_person".into(),
        if_not_exists: false,
        columns: vec!["person".into()],
        index_type: IndexType::BTree,
        partial_filter: None,
    }))
    .await?;
    db.commit(batch(
        "people",
        (1..=PEOPLE).map(|i| ints(&person(i))).collect(),
    ))
    .await?;
    db.commit(batch("teams", (0..TEAMS).map(|i| ints(&team(i))).collect()))
        .await?;
    db.commit(batch(
        "orders",
        (1..=ORDERS).map(|i| ints(&order(i))).collect(),
    ))
    .await?;
    Ok(db)
}

/// Nested loops over the generated rows: the expected join, in combined-key order.
fn expected(
    base: &[Vec<Option<i64>>],
    joined: &[Vec<Option<i64>>],
    left_col: usize,
    right_col: usize,
    outer: bool,
) -> Vec<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for b in base {
        let width = joined.first().map_or(0, Vec::len);
        let mut found = false;
        for j in joined {
            if b[left_col].is_some() && b[left_col] == j[right_col] {
                found = true;
                out.push(b.iter().chain(j).copied().collect());
            }
        }
        if !found && outer {
            out.push(
                b.iter()
                    .copied()
                    .chain(std::iter::repeat_n(None, width))
                    .collect(),
            );
        }
    }
    out
}

fn as_ints(rows: &[Row]) -> Vec<Vec<Option<i64>>> {
    rows.iter()
        .map(|r| {
            r.values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) => Some(*i),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Every page of `query`, following cursors; the rows in order.
async fn all_pages(
    db: &AedbInstance,
    query: Query,
) -> Result<(Vec<Row>, usize), Box<dyn std::error::Error>> {
    let mut page = db.query("p", "app", query.clone()).await?;
    let mut rows = page.rows.clone();
    let mut pages = 1;
    while let Some(cursor) = page.cursor.clone() {
        page = db
            .query_with_options(
                "p",
                "app",
                query.clone(),
                QueryOptions {
                    cursor: Some(cursor),
                    ..QueryOptions::default()
                },
            )
            .await?;
        rows.extend(page.rows.clone());
        pages += 1;
        assert!(pages < 1000, "paging does not end");
    }
    Ok((rows, pages))
}

async fn check_every_probe(db: &AedbInstance, page: usize) -> TestResult {
    let people: Vec<_> = (1..=PEOPLE).map(person).collect();
    let teams: Vec<_> = (0..TEAMS).map(team).collect();
    let orders: Vec<_> = (1..=ORDERS).map(order).collect();

    // Primary-key probe: orders → people on people.id.
    let (rows, _) = all_pages(
        db,
        Query::select(&["*"])
            .from("orders")
            .inner_join("people", "orders.person", "people.id")
            .limit(page),
    )
    .await?;
    assert_eq!(
        as_ints(&rows),
        expected(&orders, &people, 1, 0, false),
        "PK probe"
    );

    // Index probe: people → orders on orders.person (indexed), left join keeps the lonely.
    let (rows, _) = all_pages(
        db,
        Query::select(&["*"])
            .from("people")
            .left_join("orders", "people.id", "orders.person")
            .limit(page),
    )
    .await?;
    assert_eq!(
        as_ints(&rows),
        expected(&people, &orders, 0, 1, true),
        "index probe"
    );

    // Hash probe: people → teams on teams.rank (no index), with a Null left value.
    let (rows, _) = all_pages(
        db,
        Query::select(&["*"])
            .from("people")
            .inner_join("teams", "people.team", "teams.rank")
            .limit(page),
    )
    .await?;
    assert_eq!(
        as_ints(&rows),
        expected(&people, &teams, 1, 1, false),
        "hash probe"
    );

    // A predicate on the joined rows, paged.
    let (rows, _) = all_pages(
        db,
        Query::select(&["*"])
            .from("people")
            .inner_join("orders", "people.id", "orders.person")
            .where_(col("orders.amount").gt(Value::Integer(5)))
            .limit(page),
    )
    .await?;
    let want: Vec<_> = expected(&people, &orders, 0, 1, false)
        .into_iter()
        .filter(|r| r[4] > Some(5))
        .collect();
    assert_eq!(as_ints(&rows), want, "filtered join");

    // Two joins: orders → people (PK) → teams (PK on tid), projected.
    let (rows, _) = all_pages(
        db,
        Query::select(&["orders.oid", "teams.rank"])
            .from("orders")
            .inner_join("people", "orders.person", "people.id")
            .inner_join("teams", "people.team", "teams.tid")
            .limit(page),
    )
    .await?;
    let mut want = Vec::new();
    for o in &orders {
        for p in people.iter().filter(|p| p[0] == o[1]) {
            for t in teams.iter().filter(|t| p[1].is_some() && t[0] == p[1]) {
                want.push(vec![o[0], t[1]]);
            }
        }
    }
    assert_eq!(as_ints(&rows), want, "two joins");
    Ok(())
}

#[tokio::test]
async fn every_probe_matches_nested_loops_paged_and_after_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path(), AedbConfig::default()).await?;
    for page in [1, 7, 100] {
        check_every_probe(&db, page).await?;
    }
    db.shutdown().await?;
    let db = AedbInstance::open(AedbConfig::default(), dir.path())?;
    check_every_probe(&db, 13).await?;
    Ok(())
}

#[tokio::test]
async fn a_scan_bound_cuts_pages_short_without_losing_rows() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_scan_rows: 30,
        ..AedbConfig::default()
    };
    let db = setup(dir.path(), config).await?;
    let people: Vec<_> = (1..=PEOPLE).map(person).collect();
    let orders: Vec<_> = (1..=ORDERS).map(order).collect();
    // A predicate few rows pass: pages stop at the bound with fewer rows than asked for.
    let (rows, pages) = all_pages(
        &db,
        Query::select(&["*"])
            .from("people")
            .inner_join("orders", "people.id", "orders.person")
            .where_(col("orders.amount").eq(Value::Integer(3)))
            .limit(50),
    )
    .await?;
    let want: Vec<_> = expected(&people, &orders, 0, 1, false)
        .into_iter()
        .filter(|r| r[4] == Some(3))
        .collect();
    assert_eq!(as_ints(&rows), want);
    assert!(pages >= 3, "the bound cut pages short: {pages} pages");
    // Ordered joins see every row at once: over the bound is an error, not a short answer.
    let ordered = db
        .query(
            "p",
            "app",
            Query::select(&["*"])
                .from("orders")
                .inner_join("orders", "orders.amount", "amount")
                .with_last_join_alias("o2")
                .order_by("o2.oid", Order::Desc),
        )
        .await;
    assert!(
        matches!(
            ordered,
            Err(aedb::query::QueryError::ScanBoundExceeded { .. })
        ),
        "{ordered:?}"
    );
    Ok(())
}

#[tokio::test]
async fn queries_see_ddl_at_once_and_old_snapshots_keep_their_schema() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path(), AedbConfig::default()).await?;
    let one = || {
        Query::select(&["*"])
            .from("people")
            .where_(col("id").eq(Value::Integer(3)))
    };
    // Warm the cache.
    let before = db.query("p", "app", one()).await?;
    assert_eq!(before.rows[0].values.len(), 2);
    let old_seq = before.snapshot_seq;
    db.commit(Mutation::Ddl(DdlOperation::AlterTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        alteration: TableAlteration::AddColumn(column("nick", ColumnType::Text, true)),
    }))
    .await?;
    let after = db.query("p", "app", one()).await?;
    assert_eq!(after.columns, vec!["id", "team", "nick"]);
    assert_eq!(after.rows[0].values[2], Value::Null);
    let old = db
        .query_with_options(
            "p",
            "app",
            one(),
            QueryOptions {
                consistency: ConsistencyMode::AtSeq(old_seq),
                ..QueryOptions::default()
            },
        )
        .await?;
    assert_eq!(
        old.columns,
        vec!["id", "team"],
        "the schema of the old snapshot"
    );
    // Drop and re-create under the same name: the new, empty table answers.
    db.commit(Mutation::Ddl(DdlOperation::DropTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        if_exists: false,
    }))
    .await?;
    assert!(db.query("p", "app", one()).await.is_err());
    db.commit(table(
        "people",
        vec![
            column("id", ColumnType::Integer, false),
            column("label", ColumnType::Text, true),
        ],
    ))
    .await?;
    let fresh = db.query("p", "app", one()).await?;
    assert!(fresh.rows.is_empty());
    assert_eq!(fresh.columns, vec!["id", "label"]);
    Ok(())
}

#[tokio::test]
async fn base_rows_without_a_match_count_against_the_scan_bound() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = AedbConfig {
        max_scan_rows: 10,
        ..AedbConfig::default()
    };
    let db = setup(dir.path(), config).await?;
    let people: Vec<_> = (1..=PEOPLE).map(person).collect();
    let teams: Vec<_> = (0..TEAMS).map(team).collect();
    // Only people 1 and 2 match a team rank (0..=2): 40 base rows, a handful of joined rows.
    let sparse = || {
        Query::select(&["*"])
            .from("people")
            .inner_join("teams", "people.id", "teams.rank")
    };
    let (rows, pages) = all_pages(&db, sparse().limit(50)).await?;
    assert_eq!(as_ints(&rows), expected(&people, &teams, 0, 1, false));
    assert!(
        pages >= 4,
        "40 base rows in pages of at most 10 reads: {pages} pages"
    );
    let ordered = db
        .query("p", "app", sparse().order_by("teams.tid", Order::Asc))
        .await;
    assert!(
        matches!(
            ordered,
            Err(aedb::query::QueryError::ScanBoundExceeded { .. })
        ),
        "{ordered:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_probed_row_written_before_an_added_column_reads_its_default() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = setup(dir.path(), AedbConfig::default()).await?;
    db.commit(Mutation::Ddl(DdlOperation::AlterTable {
        project_id: "p".into(),
        scope_id: "app".into(),
        table_name: "people".into(),
        alteration: TableAlteration::AddColumn(column("nick", ColumnType::Text, true)),
    }))
    .await?;
    let result = db
        .query(
            "p",
            "app",
            Query::select(&["orders.oid", "people.id", "people.nick"])
                .from("orders")
                .inner_join("people", "orders.person", "people.id")
                .limit(3),
        )
        .await?;
    assert_eq!(result.rows.len(), 3);
    for row in &result.rows {
        assert_eq!(row.values[2], Value::Null, "{row:?}");
        assert!(matches!(row.values[1], Value::Integer(_)));
    }
    Ok(())
}

#[tokio::test]
async fn the_tiniest_scan_bounds_still_make_progress_and_lose_nothing() -> TestResult {
    let people: Vec<_> = (1..=PEOPLE).map(person).collect();
    let orders: Vec<_> = (1..=ORDERS).map(order).collect();
    for max_scan_rows in [1, 2, 3] {
        let dir = tempfile::tempdir()?;
        let config = AedbConfig {
            max_scan_rows,
            ..AedbConfig::default()
        };
        let db = setup(dir.path(), config).await?;
        // An index probe gathers all of one key's matches at once: its fan-out (at most 2
        // orders per person here) must fit the bound.
        if max_scan_rows >= 2 {
            let (rows, _) = all_pages(
                &db,
                Query::select(&["*"])
                    .from("people")
                    .left_join("orders", "people.id", "orders.person")
                    .limit(4),
            )
            .await?;
            assert_eq!(
                as_ints(&rows),
                expected(&people, &orders, 0, 1, true),
                "max_scan_rows {max_scan_rows}"
            );
        }
        let (rows, _) = all_pages(
            &db,
            Query::select(&["*"])
                .from("orders")
                .inner_join("people", "orders.person", "people.id")
                .limit(5),
        )
        .await?;
        assert_eq!(
            as_ints(&rows),
            expected(&orders, &people, 1, 0, false),
            "max_scan_rows {max_scan_rows}"
        );
    }
    Ok(())
}
