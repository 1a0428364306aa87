//! `QueryError`: what a read can fail with.

use aedb_pager::io::{IoErrorKind, OpKind};
use aedb_pager::PagerError;

pub use aedb_access::{AccessError, CorruptionKind};

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
    #[error("permission denied: {permission} on {scope}")]
    PermissionDenied { permission: String, scope: String },
    /// A cursor whose snapshot is no longer retained.
    #[error("cursor expired: its snapshot {original_seq} is no longer retained")]
    CursorExpired { original_seq: u64 },
    #[error("the snapshot expired")]
    SnapshotExpired,
    #[error("too many snapshots are held open")]
    SnapshotLimitReached,
    #[error("internal error: {0}")]
    InternalError(String),
    /// Stored data is damaged. `page` names the data-file page when a page check found it;
    /// `message` is the description of the layer that found it (it names the page too).
    #[error("data corruption: {message}")]
    Corruption {
        page: Option<u64>,
        kind: CorruptionKind,
        message: String,
    },
    /// An I/O failure. `op` and `kind` are set when the storage layer reported them (a read of
    /// the data file); an I/O error that came through the engine's `AedbError::Io` has only its
    /// message.
    #[error("I/O error: {message}")]
    Io {
        op: Option<OpKind>,
        kind: Option<IoErrorKind>,
        message: String,
    },
}

impl QueryError {
    pub fn invalid(reason: impl Into<String>) -> Self {
        QueryError::InvalidQuery {
            reason: reason.into(),
        }
    }

    /// Damage reported only as text (a stored record that does not decode): corruption of
    /// kind `Other`, no page.
    pub fn corruption(message: impl Into<String>) -> Self {
        QueryError::Corruption {
            page: None,
            kind: CorruptionKind::Other,
            message: message.into(),
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
            QueryError::PermissionDenied { .. } => "permission_denied",
            QueryError::CursorExpired { .. } => "cursor_expired",
            QueryError::SnapshotExpired => "snapshot_expired",
            QueryError::SnapshotLimitReached => "snapshot_limit_reached",
            QueryError::InternalError(_) => "internal",
            QueryError::Corruption { .. } => "corruption",
            QueryError::Io { .. } => "io",
        }
    }

    /// The damaged data-file page, when the error is corruption a page check found.
    pub fn corrupt_page(&self) -> Option<u64> {
        match self {
            QueryError::Corruption { page, .. } => *page,
            _ => None,
        }
    }
}

/// Damage to a page is [`QueryError::Corruption`] naming it, an I/O failure
/// [`QueryError::Io`] with its op and kind. Neither valid meta page is corruption of kind
/// `Other`, as the engine reports it (`AedbError::Corruption`). The rest is
/// `InternalError`: on a read it is a bug, not a property of the data.
impl From<PagerError> for QueryError {
    fn from(err: PagerError) -> Self {
        if let Some((page, kind)) = CorruptionKind::of_page(&err) {
            return QueryError::Corruption {
                page: Some(page),
                kind,
                message: err.to_string(),
            };
        }
        match err {
            PagerError::Io(io) => QueryError::Io {
                op: Some(io.op),
                kind: Some(io.kind),
                message: io.to_string(),
            },
            other @ PagerError::NoValidMeta { .. } => QueryError::corruption(other.to_string()),
            other => QueryError::InternalError(other.to_string()),
        }
    }
}

/// Each access failure as the query layer reports it: a predicate's fault as the query's,
/// the scan bound, page damage and I/O typed as from the pager, an undecodable record as
/// corruption of kind `Other`.
impl From<AccessError> for QueryError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::Expr(e) => e.into(),
            AccessError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            } => QueryError::ScanBoundExceeded {
                estimated_rows,
                max_scan_rows,
            },
            AccessError::Pager(e) => e.into(),
            AccessError::Corrupt(message) => QueryError::corruption(message),
            AccessError::Internal(message) => QueryError::InternalError(message),
            other => QueryError::InternalError(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use aedb_pager::io::IoError;
    use aedb_pager::page::PageType;

    use super::*;

    #[test]
    fn page_damage_is_corruption_naming_the_page() {
        let cases = [
            (
                PagerError::Checksum {
                    page: 7,
                    stored: 1,
                    computed: 2,
                },
                CorruptionKind::Checksum,
            ),
            (
                PagerError::WrongPageType {
                    page: 7,
                    expected: PageType::Leaf,
                    found: 9,
                },
                CorruptionKind::WrongPageType,
            ),
            (
                PagerError::corrupt(7, "bad slot"),
                CorruptionKind::Malformed,
            ),
        ];
        for (err, kind) in cases {
            let text = err.to_string();
            let q = QueryError::from(err);
            assert_eq!(
                q,
                QueryError::Corruption {
                    page: Some(7),
                    kind,
                    message: text.clone(),
                }
            );
            assert_eq!(q.code_str(), "corruption");
            assert_eq!(q.corrupt_page(), Some(7));
            assert_eq!(q.to_string(), format!("data corruption: {text}"));
            assert!(q.to_string().contains("page 7"), "{q}");
        }
    }

    #[test]
    fn io_keeps_its_op_and_kind() {
        let io = IoError::os(OpKind::Read, 8192, libc_eio());
        let q = QueryError::from(PagerError::Io(io.clone()));
        assert_eq!(
            q,
            QueryError::Io {
                op: Some(OpKind::Read),
                kind: Some(IoErrorKind::Os(libc_eio())),
                message: io.to_string(),
            }
        );
        assert_eq!(q.code_str(), "io");
    }

    #[test]
    fn no_valid_meta_is_corruption_and_misuse_is_internal() {
        let q = QueryError::from(PagerError::NoValidMeta {
            path: "data.aedb".into(),
            reason: "zeros".into(),
        });
        assert!(matches!(
            q,
            QueryError::Corruption {
                page: None,
                kind: CorruptionKind::Other,
                ..
            }
        ));
        let q = QueryError::from(PagerError::Misuse("x".into()));
        assert_eq!(q.code_str(), "internal");
    }

    #[test]
    fn access_failures_keep_their_kind() {
        let bound = QueryError::from(AccessError::ScanBoundExceeded {
            estimated_rows: 10,
            max_scan_rows: 5,
        });
        assert_eq!(
            bound,
            QueryError::ScanBoundExceeded {
                estimated_rows: 10,
                max_scan_rows: 5
            }
        );
        let page = QueryError::from(AccessError::Pager(PagerError::corrupt(3, "bad slot")));
        assert_eq!(page.corrupt_page(), Some(3));
        let record = QueryError::from(AccessError::Corrupt("row tag 99".into()));
        assert!(matches!(
            record,
            QueryError::Corruption {
                page: None,
                kind: CorruptionKind::Other,
                ..
            }
        ));
        let expr = QueryError::from(AccessError::Expr(
            aedb_catalog::eval::ExprError::ColumnNotFound {
                table: "t".into(),
                column: "c".into(),
            },
        ));
        assert_eq!(expr.code_str(), "column_not_found");
        let internal = QueryError::from(AccessError::Internal("index x vanished".into()));
        assert_eq!(internal.code_str(), "internal");
        assert_eq!(internal.to_string(), "internal error: index x vanished");
    }

    fn libc_eio() -> i32 {
        5
    }
}
