//! Callers and permissions (`aedb::permission`). Permissions themselves arrive with the
//! security issue; the caller identity is here already because commits record it (an
//! idempotency key is scoped per caller).

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
