//! The planner: which B+tree range a query reads. The predicate is always re-applied to every
//! row read, so an access path only has to cover the matching rows, never to be exact.
//!
//! Preference: a primary-key point lookup (every key column by `Eq`), then a secondary index
//! equality, then a primary-key range on the first key column, then an index range, then a scan.

use std::ops::Bound;

use aedb_catalog::expr::Expr;
use aedb_catalog::keys::encode_key;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::Value;
use aedb_pager::store::prefix_end;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    PkPoint(Vec<u8>),
    PkRange {
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    },
    IndexRange {
        index: String,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    },
    FullScan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub access: Access,
    /// Why this path (for `explain`).
    pub reason: String,
}

fn conjuncts<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other),
    }
}

/// Byte bounds on the first value of a key, from the conjuncts on one column. Only literals of
/// the column's own type are used (their encoding orders like the column's values).
#[derive(Default)]
struct KeyBounds {
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    equal: Option<Value>,
    any: bool,
}

impl KeyBounds {
    fn raise(&mut self, bytes: Vec<u8>) {
        if self.lower.as_ref().is_none_or(|l| &bytes > l) {
            self.lower = Some(bytes);
        }
        self.any = true;
    }

    fn cap(&mut self, bytes: Option<Vec<u8>>) {
        // None: no finite cap exists (all 0xFF); nothing to tighten.
        if let Some(bytes) = bytes {
            if self.upper.as_ref().is_none_or(|u| &bytes < u) {
                self.upper = Some(bytes);
            }
        }
        self.any = true;
    }

    fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (
            self.lower.clone().map_or(Bound::Unbounded, Bound::Included),
            self.upper.clone().map_or(Bound::Unbounded, Bound::Excluded),
        )
    }
}

fn bounds_for(
    column: &str,
    ty: Option<aedb_catalog::types::ColumnType>,
    parts: &[&Expr],
) -> KeyBounds {
    let mut b = KeyBounds::default();
    let usable = |v: &Value| !v.is_null() && v.column_type() == ty;
    let enc = |v: &Value| encode_key(std::slice::from_ref(v));
    for part in parts {
        match part {
            Expr::Eq(c, v) if c == column && usable(v) => {
                b.raise(enc(v));
                b.cap(prefix_end(&enc(v)));
                b.equal = Some(v.clone());
            }
            Expr::Gt(c, v) if c == column && usable(v) => match prefix_end(&enc(v)) {
                Some(end) => b.raise(end),
                None => b.cap(Some(Vec::new())),
            },
            Expr::Gte(c, v) if c == column && usable(v) => b.raise(enc(v)),
            Expr::Lt(c, v) if c == column && usable(v) => b.cap(Some(enc(v))),
            Expr::Lte(c, v) if c == column && usable(v) => b.cap(prefix_end(&enc(v))),
            Expr::Between(c, lo, hi) if c == column && usable(lo) && usable(hi) => {
                b.raise(enc(lo));
                b.cap(prefix_end(&enc(hi)));
            }
            _ => {}
        }
    }
    b
}

/// Why an access path was chosen (turned into `Plan::reason` only when someone asks).
enum Why<'a> {
    PkPoint,
    IndexEquality(&'a str, &'a [String]),
    PkRange,
    IndexRange(&'a str, &'a str),
    Scan,
}

/// The plan and its reason in words (`explain_query`).
pub fn plan(schema: &TableSchema, predicate: Option<&Expr>) -> Plan {
    let (access, why) = choose(schema, predicate);
    let reason = match why {
        Why::PkPoint => format!(
            "primary key point lookup on ({})",
            schema.primary_key.join(", ")
        ),
        Why::IndexEquality(index, columns) => {
            format!("index {index} equality on ({})", columns.join(", "))
        }
        Why::PkRange => format!("primary key range on {}", schema.primary_key[0]),
        Why::IndexRange(index, column) => format!("index {index} range on {column}"),
        Why::Scan => "table scan (no key or index covers the predicate)".into(),
    };
    Plan { access, reason }
}

/// The access path alone (what execution needs).
pub fn access_path(schema: &TableSchema, predicate: Option<&Expr>) -> Access {
    choose(schema, predicate).0
}

/// Every primary-key column compared by `Eq` with a literal of its type: the encoded key.
fn point_key(schema: &TableSchema, parts: &[&Expr]) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(16 * schema.primary_key.len());
    for column in &schema.primary_key {
        let ty = schema
            .column_index(column)
            .map(|i| schema.columns[i].col_type);
        let value = parts.iter().find_map(|part| match part {
            Expr::Eq(c, v) if c == column && !v.is_null() && v.column_type() == ty => Some(v),
            _ => None,
        })?;
        aedb_catalog::keys::encode_value(&mut key, value);
    }
    (!schema.primary_key.is_empty()).then_some(key)
}

fn choose<'s>(schema: &'s TableSchema, predicate: Option<&Expr>) -> (Access, Why<'s>) {
    let mut parts = Vec::new();
    if let Some(p) = predicate {
        conjuncts(p, &mut parts);
    }
    if let Some(key) = point_key(schema, &parts) {
        return (Access::PkPoint(key), Why::PkPoint);
    }
    let ty = |c: &str| schema.column_index(c).map(|i| schema.columns[i].col_type);
    for index in schema.indexes.iter().filter(|i| i.partial_filter.is_none()) {
        let bounds: Vec<KeyBounds> = index
            .columns
            .iter()
            .map(|c| bounds_for(c, ty(c), &parts))
            .collect();
        if bounds.iter().all(|b| b.equal.is_some()) {
            let prefix = encode_key(
                &bounds
                    .iter()
                    .filter_map(|b| b.equal.clone())
                    .collect::<Vec<_>>(),
            );
            let upper = prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
            return (
                Access::IndexRange {
                    index: index.index_name.clone(),
                    lower: Bound::Included(prefix),
                    upper,
                },
                Why::IndexEquality(&index.index_name, &index.columns),
            );
        }
    }
    if let Some(first) = schema.primary_key.first() {
        let b = bounds_for(first, ty(first), &parts);
        if b.any {
            let (lower, upper) = b.bounds();
            return (Access::PkRange { lower, upper }, Why::PkRange);
        }
    }
    for index in schema
        .indexes
        .iter()
        .filter(|i| i.partial_filter.is_none() && i.index_type.supports_ranges())
    {
        let Some(column) = index.columns.first() else {
            continue;
        };
        let b = bounds_for(column, ty(column), &parts);
        if b.any {
            let (lower, upper) = b.bounds();
            return (
                Access::IndexRange {
                    index: index.index_name.clone(),
                    lower,
                    upper,
                },
                Why::IndexRange(&index.index_name, column),
            );
        }
    }
    (Access::FullScan, Why::Scan)
}
