//! Table access: which B+tree range a predicate needs (`planner`), and the reading of a table's
//! rows along it (`rows`, `scan`).
//!
//! This layer sits between the pager and catalog below and both the query executor and the
//! commit path above: `DeleteWhere`/`UpdateWhere` find their rows with the same planner as a
//! query, without the write path depending on the query layer.

pub mod error;
pub mod planner;
pub mod rows;
pub mod scan;

pub use error::{AccessError, CorruptionKind};
