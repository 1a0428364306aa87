//! Callers and permissions (`aedb::permission`): who is calling (`CallerContext`), what may
//! be granted (`Permission`) and which grant covers which need (`Permission::implies`). The
//! checks on each API arrive with secure mode; the caller identity is used already because
//! commits record it (an idempotency key is scoped per caller).

pub use aedb_catalog::permission::{permits, Permission};

/// Who is calling (permissions arrive with the security issue; outside secure mode any caller,
/// or none, may read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerContext {
    pub caller_id: String,
}

impl CallerContext {
    pub fn new(caller_id: impl Into<String>) -> Self {
        CallerContext {
            caller_id: caller_id.into(),
        }
    }
}
