//! The query builder and options (`aedb::query::plan`).

pub use aedb_catalog::expr::{col, lit, Col, Expr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    Sum(String),
    Min(String),
    Max(String),
    Avg(String),
}

impl Aggregate {
    /// The output column: `count_star`, `sum_<c>`, `min_<c>`, `max_<c>`, `avg_<c>`.
    pub fn output_name(&self) -> String {
        match self {
            Aggregate::Count => "count_star".into(),
            Aggregate::Sum(c) => format!("sum_{c}"),
            Aggregate::Min(c) => format!("min_{c}"),
            Aggregate::Max(c) => format!("max_{c}"),
            Aggregate::Avg(c) => format!("avg_{c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub table: String,
    pub alias: Option<String>,
    pub join_type: JoinType,
    pub left_column: String,
    pub right_column: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub select: Vec<String>,
    pub table: String,
    pub table_alias: Option<String>,
    pub joins: Vec<JoinSpec>,
    pub predicate: Option<Expr>,
    pub order_by: Vec<(String, Order)>,
    pub limit: Option<usize>,
    pub group_by: Vec<String>,
    pub aggregates: Vec<Aggregate>,
    pub having: Option<Expr>,
}

impl Query {
    /// `select(&["*"])` selects every column.
    pub fn select(columns: &[&str]) -> Self {
        Query {
            select: columns.iter().map(|c| c.to_string()).collect(),
            ..Query::default()
        }
    }

    pub fn from(mut self, table: &str) -> Self {
        self.table = table.to_string();
        self
    }

    pub fn alias(mut self, alias: &str) -> Self {
        self.table_alias = Some(alias.to_string());
        self
    }

    /// Replaces any previous predicate.
    pub fn where_(mut self, predicate: Expr) -> Self {
        self.predicate = Some(predicate);
        self
    }

    /// Appends an ordering column.
    pub fn order_by(mut self, column: &str, order: Order) -> Self {
        self.order_by.push((column.to_string(), order));
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn inner_join(self, table: &str, left_column: &str, right_column: &str) -> Self {
        self.join(JoinType::Inner, table, left_column, right_column)
    }

    pub fn left_join(self, table: &str, left_column: &str, right_column: &str) -> Self {
        self.join(JoinType::Left, table, left_column, right_column)
    }

    fn join(
        mut self,
        join_type: JoinType,
        table: &str,
        left_column: &str,
        right_column: &str,
    ) -> Self {
        self.joins.push(JoinSpec {
            table: table.to_string(),
            alias: None,
            join_type,
            left_column: left_column.to_string(),
            right_column: right_column.to_string(),
        });
        self
    }

    /// Alias of the join added last.
    pub fn with_last_join_alias(mut self, alias: &str) -> Self {
        if let Some(join) = self.joins.last_mut() {
            join.alias = Some(alias.to_string());
        }
        self
    }

    pub fn group_by(mut self, columns: &[&str]) -> Self {
        self.group_by = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn aggregate(mut self, aggregate: Aggregate) -> Self {
        self.aggregates.push(aggregate);
        self
    }

    pub fn having(mut self, predicate: Expr) -> Self {
        self.having = Some(predicate);
        self
    }
}

/// Which version a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsistencyMode {
    /// The newest visible commit.
    #[default]
    AtLatest,
    /// Exactly commit `n` (recent versions are retained; older ones are a typed error).
    AtSeq(u64),
    /// The newest durable checkpoint (a new database has one from its creation).
    AtCheckpoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    pub consistency: ConsistencyMode,
    /// Continue after a previous page (the cursor pins its snapshot).
    pub cursor: Option<String>,
    /// Let a query without a limit or predicate examine the whole table (it is still paged).
    pub allow_full_scan: bool,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            consistency: ConsistencyMode::AtLatest,
            cursor: None,
            allow_full_scan: false,
        }
    }
}

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub rows: Vec<aedb_catalog::types::Row>,
    /// Names of the columns of `rows`.
    pub columns: Vec<String>,
    pub rows_examined: usize,
    /// Pass in `QueryOptions::cursor` to get the next page (None on the last page).
    pub cursor: Option<String>,
    /// More rows follow.
    pub truncated: bool,
    /// The commit sequence of the version read.
    pub snapshot_seq: u64,
    pub materialized_seq: Option<u64>,
}
