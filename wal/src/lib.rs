//! aedb's write-ahead log: frames (`frame.rs`), commit records (`record.rs`), segment files
//! (`segment.rs`), the group-commit writer (`writer.rs`) and the redo reader (`reader.rs`).
//! It reaches files only through the I/O layer (`aedb-io`), so the simulator covers it too.

pub mod error;
pub mod frame;
pub mod inspect;
pub mod reader;
pub mod record;
pub mod segment;
pub mod writer;

pub use error::{Result, WalError};
pub use frame::Integrity;
pub use reader::{scan, RecoveryMode, ScanOutcome};
pub use record::{decode_record, decode_record_ref, RecordBuilder, WalOp, WalOpRef};
pub use writer::{WalConfig, WalWriter};
