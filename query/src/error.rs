//! `QueryError`: what a read can fail with.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("table '{table}' not found in {project_id}")]
    TableNotFound { project_id: String, table: String },
    #[error("column '{column}' not found in table '{table}'")]
    ColumnNotFound { table: String, column: String },
    #[error("type mismatch on column '{column}': expected {expected}, got {got}")]
    TypeMismatch {
        column: String,
        expected: String,
        got: String,
    },
    #[error("scan of about {estimated_rows} rows exceeds max_scan_rows ({max_scan_rows})")]
    ScanBoundExceeded {
        estimated_rows: u64,
        max_scan_rows: u64,
    },
    #[error("invalid query: {reason}")]
    InvalidQuery { reason: String },
    #[error("requested seq {requested} is not yet visible (latest visible seq: {current})")]
    SeqNotYetVisible { requested: u64, current: u64 },
    #[error(
        "requested seq {requested} is no longer retained (oldest available: {oldest_available})"
    )]
    SeqGarbageCollected {
        requested: u64,
        oldest_available: u64,
    },
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("internal error: {0}")]
    InternalError(String),
}

impl QueryError {
    pub fn invalid(reason: impl Into<String>) -> Self {
        QueryError::InvalidQuery {
            reason: reason.into(),
        }
    }

    /// A stable identifier for each kind.
    pub fn code_str(&self) -> &'static str {
        match self {
            QueryError::TableNotFound { .. } => "table_not_found",
            QueryError::ColumnNotFound { .. } => "column_not_found",
            QueryError::TypeMismatch { .. } => "type_mismatch",
            QueryError::ScanBoundExceeded { .. } => "scan_bound_exceeded",
            QueryError::InvalidQuery { .. } => "invalid_query",
            QueryError::SeqNotYetVisible { .. } => "seq_not_yet_visible",
            QueryError::SeqGarbageCollected { .. } => "snapshot_released",
            QueryError::PermissionDenied(_) => "permission_denied",
            QueryError::InternalError(_) => "internal",
        }
    }
}

impl From<aedb_pager::PagerError> for QueryError {
    fn from(err: aedb_pager::PagerError) -> Self {
        QueryError::InternalError(err.to_string())
    }
}
