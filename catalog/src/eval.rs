//! Checking predicates against a schema, and evaluating them on rows: the one evaluator used
//! by queries, by the write path (check constraints, `DeleteWhere`), and by partial indexes.

use std::cmp::Ordering;

use crate::expr::{
    like_matches, Expr, MAX_EXPR_DEPTH, MAX_EXPR_IN_LIST_VALUES, MAX_LIKE_PATTERN_BYTES,
};
use crate::schema::TableSchema;
use crate::types::{ColumnType, Row, Value};

/// Why an expression cannot be evaluated against a schema. The query layer reports these as
/// its own errors of the same names; the write path as validation errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    #[error("invalid expression: {0}")]
    Invalid(String),
    #[error("table '{table}' has no column '{column}'")]
    ColumnNotFound { table: String, column: String },
    #[error("column '{column}' is {expected}, compared with {got}")]
    TypeMismatch {
        column: String,
        expected: String,
        got: String,
    },
}

impl ExprError {
    fn invalid(reason: impl Into<String>) -> Self {
        ExprError::Invalid(reason.into())
    }
}

/// Is a literal of this kind comparable with a column of this type?
pub fn literal_fits(column: ColumnType, literal: &Value) -> bool {
    match literal.column_type() {
        None => true,
        Some(kind) if kind == column => true,
        Some(kind) if kind.is_numeric() && column.is_numeric() => true,
        Some(ColumnType::Text) => column == ColumnType::Json,
        _ => false,
    }
}

/// Refuse what cannot be evaluated: unknown columns, literals of the wrong type, limits.
pub fn check_expr(expr: &Expr, schema: &TableSchema) -> Result<(), ExprError> {
    if expr.depth() > MAX_EXPR_DEPTH {
        return Err(ExprError::invalid(format!(
            "expression deeper than {MAX_EXPR_DEPTH}"
        )));
    }
    check_node(expr, schema)
}

fn column_type(schema: &TableSchema, column: &str) -> Result<ColumnType, ExprError> {
    schema
        .column_index(column)
        .map(|i| schema.columns[i].col_type)
        .ok_or_else(|| ExprError::ColumnNotFound {
            table: schema.table_name.clone(),
            column: column.to_string(),
        })
}

fn check_literal(schema: &TableSchema, column: &str, value: &Value) -> Result<(), ExprError> {
    let ty = column_type(schema, column)?;
    if let Value::Float(f) = value {
        if f.is_nan() {
            return Err(ExprError::invalid("NaN is not comparable"));
        }
    }
    if literal_fits(ty, value) {
        Ok(())
    } else {
        Err(ExprError::TypeMismatch {
            column: column.to_string(),
            expected: ty.name().to_string(),
            got: value.kind_name().to_string(),
        })
    }
}

fn check_node(expr: &Expr, schema: &TableSchema) -> Result<(), ExprError> {
    match expr {
        Expr::Eq(c, v)
        | Expr::Ne(c, v)
        | Expr::Lt(c, v)
        | Expr::Lte(c, v)
        | Expr::Gt(c, v)
        | Expr::Gte(c, v) => check_literal(schema, c, v),
        Expr::In(c, values) => {
            if values.len() > MAX_EXPR_IN_LIST_VALUES {
                return Err(ExprError::invalid(format!(
                    "IN list longer than {MAX_EXPR_IN_LIST_VALUES}"
                )));
            }
            values.iter().try_for_each(|v| check_literal(schema, c, v))
        }
        Expr::Between(c, lo, hi) => {
            check_literal(schema, c, lo)?;
            check_literal(schema, c, hi)
        }
        Expr::IsNull(c) | Expr::IsNotNull(c) => column_type(schema, c).map(|_| ()),
        Expr::Like(c, pattern) => {
            if pattern.len() > MAX_LIKE_PATTERN_BYTES {
                return Err(ExprError::invalid(format!(
                    "LIKE pattern longer than {MAX_LIKE_PATTERN_BYTES} bytes"
                )));
            }
            match column_type(schema, c)? {
                ColumnType::Text | ColumnType::Json => Ok(()),
                other => Err(ExprError::TypeMismatch {
                    column: c.clone(),
                    expected: "Text".into(),
                    got: other.name().into(),
                }),
            }
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_node(a, schema)?;
            check_node(b, schema)
        }
        Expr::Not(a) => check_node(a, schema),
    }
}

/// Compare a row value with a literal; None when either is Null or they are not comparable.
pub fn compare(value: &Value, literal: &Value) -> Option<Ordering> {
    if value.is_null() || literal.is_null() {
        return None;
    }
    if value.kind_rank() == literal.kind_rank() {
        return Some(value.cmp(literal));
    }
    if let (Some(a), Some(b)) = (value.as_i128(), literal.as_i128()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (value.as_f64(), literal.as_f64()) {
        return a.partial_cmp(&b);
    }
    match (value, literal) {
        (Value::Json(a), Value::Text(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

/// Evaluate on a row in column order; `index_of` maps names to positions (checked before).
pub fn eval(expr: &Expr, row: &Row, index_of: &dyn Fn(&str) -> Option<usize>) -> bool {
    let get = |c: &str| {
        index_of(c)
            .and_then(|i| row.values.get(i))
            .unwrap_or(&Value::Null)
    };
    let cmp = |c: &str, v: &Value| compare(get(c), v);
    match expr {
        Expr::Eq(c, v) => cmp(c, v) == Some(Ordering::Equal),
        Expr::Ne(c, v) => matches!(cmp(c, v), Some(o) if o != Ordering::Equal),
        Expr::Lt(c, v) => cmp(c, v) == Some(Ordering::Less),
        Expr::Lte(c, v) => matches!(cmp(c, v), Some(Ordering::Less | Ordering::Equal)),
        Expr::Gt(c, v) => cmp(c, v) == Some(Ordering::Greater),
        Expr::Gte(c, v) => matches!(cmp(c, v), Some(Ordering::Greater | Ordering::Equal)),
        Expr::In(c, values) => values.iter().any(|v| cmp(c, v) == Some(Ordering::Equal)),
        Expr::Between(c, lo, hi) => {
            matches!(cmp(c, lo), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp(c, hi), Some(Ordering::Less | Ordering::Equal))
        }
        Expr::IsNull(c) => get(c).is_null(),
        Expr::IsNotNull(c) => !get(c).is_null(),
        Expr::Like(c, pattern) => match get(c) {
            Value::Text(s) | Value::Json(s) => like_matches(s.as_bytes(), pattern.as_bytes()),
            _ => false,
        },
        Expr::And(a, b) => eval(a, row, index_of) && eval(b, row, index_of),
        Expr::Or(a, b) => eval(a, row, index_of) || eval(b, row, index_of),
        Expr::Not(a) => !eval(a, row, index_of),
    }
}
