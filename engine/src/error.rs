//! The public error type (`aedb::error::AedbError`). Each lower crate has its own error enum;
//! they are converted here, at the boundary.

use std::path::PathBuf;

use aedb_pager::PagerError;
use aedb_wal::WalError;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AedbError {
    #[error("I/O error: {0}")]
    Io(String),

    #[error("data corruption: {0}")]
    Corruption(String),

    #[error("{path} is locked by another process")]
    Locked { path: PathBuf },

    #[error("the commit queue is full ({capacity} commits waiting); retry later")]
    QueueFull { capacity: usize },

    #[error("the instance stopped accepting durable work after an I/O failure ({0}); reopen it to recover")]
    Failed(String),

    #[error("invalid configuration: {message}")]
    InvalidConfig { message: String },

    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLarge { len: usize, max: usize },

    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge { len: usize, max: usize },

    #[error("transaction of {len} bytes exceeds max_transaction_bytes ({max})")]
    TransactionTooLarge { len: usize, max: usize },

    #[error("the instance is shut down")]
    Closed,

    #[error("validation failed: {0}")]
    Validation(String),
}

impl AedbError {
    /// A stable identifier for each kind, for logs and clients.
    pub fn code_str(&self) -> &'static str {
        match self {
            AedbError::Io(_) => "io",
            AedbError::Corruption(_) => "corruption",
            AedbError::Locked { .. } => "locked",
            AedbError::QueueFull { .. } => "queue_full",
            AedbError::Failed(_) => "failed",
            AedbError::InvalidConfig { .. } => "invalid_config",
            AedbError::KeyTooLarge { .. } => "key_too_large",
            AedbError::ValueTooLarge { .. } => "value_too_large",
            AedbError::TransactionTooLarge { .. } => "transaction_too_large",
            AedbError::Closed => "closed",
            AedbError::Validation(_) => "validation",
        }
    }
}

impl From<PagerError> for AedbError {
    fn from(err: PagerError) -> Self {
        match err {
            PagerError::Io(io) => AedbError::Io(io.to_string()),
            PagerError::KeyTooLarge { len, max } => AedbError::KeyTooLarge { len, max },
            PagerError::ValueTooLarge { len, max } => AedbError::ValueTooLarge { len, max },
            PagerError::InvalidConfig(message) => AedbError::InvalidConfig { message },
            PagerError::Failed(reason) => AedbError::Failed(reason),
            other @ (PagerError::Checksum { .. }
            | PagerError::Corrupt { .. }
            | PagerError::WrongPageType { .. }
            | PagerError::NoValidMeta { .. }) => AedbError::Corruption(other.to_string()),
            other => AedbError::Validation(other.to_string()),
        }
    }
}

impl From<WalError> for AedbError {
    fn from(err: WalError) -> Self {
        match err {
            WalError::Io(io) => AedbError::Io(io.to_string()),
            WalError::FrameTooLarge { len, max } => AedbError::TransactionTooLarge { len, max },
            other => AedbError::Corruption(other.to_string()),
        }
    }
}

pub type Result<T, E = AedbError> = std::result::Result<T, E>;
