//! aedb queries: the builder (`plan`), predicate checks and evaluation (`eval`), the planner
//! (`planner`) and the executor over B+tree snapshots (`exec`).

pub mod error;
pub mod eval;
pub mod exec;
pub mod index;
pub mod join;
pub mod plan;
pub mod planner;

pub use error::QueryError;
