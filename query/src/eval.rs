//! The expression evaluator lives in the catalog crate (`aedb_catalog::eval`), so the write
//! path uses it without the query layer; this is its public path `aedb::query::eval`.

pub use aedb_catalog::eval::*;

use crate::error::QueryError;

impl From<ExprError> for QueryError {
    fn from(err: ExprError) -> Self {
        match err {
            ExprError::ColumnNotFound { table, column } => {
                QueryError::ColumnNotFound { table, column }
            }
            ExprError::TypeMismatch {
                column,
                expected,
                got,
            } => QueryError::TypeMismatch {
                column,
                expected,
                got,
            },
            ExprError::Invalid(reason) => QueryError::InvalidQuery { reason },
            other => QueryError::InvalidQuery {
                reason: other.to_string(),
            },
        }
    }
}
