//! Callers and permissions (`aedb::permission`): who is calling (`CallerContext`), what may
//! be granted (`Permission`) and which grant covers which need (`Permission::implies`). The
//! checks on each API arrive with secure mode; the caller identity is used already because
//! commits record it (an idempotency key is scoped per caller).

pub use aedb_catalog::permission::{permits, Permission};

use crate::error::{AedbError, Result};

pub(crate) mod cache;

/// The caller id only the engine itself may act as.
pub const SYSTEM_CALLER_ID: &str = "system";

/// Who is calling. Outside secure mode any caller, or none, may call; a caller's id must not
/// be blank and must not be the engine's own (`system`), which only the engine can construct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerContext {
    pub caller_id: String,
    internal_system: bool,
}

impl CallerContext {
    pub fn new(caller_id: impl Into<String>) -> Self {
        CallerContext {
            caller_id: caller_id.into(),
            internal_system: false,
        }
    }

    /// The engine acting on its own behalf (never from outside the crate).
    #[allow(dead_code)]
    pub(crate) fn system() -> Self {
        CallerContext {
            caller_id: SYSTEM_CALLER_ID.into(),
            internal_system: true,
        }
    }

    /// Whether this is the engine itself.
    pub fn is_internal_system(&self) -> bool {
        self.internal_system
    }

    /// Refuse a caller from outside that is blank or claims the reserved id.
    pub fn check_external(&self) -> Result<()> {
        if self.internal_system {
            return Ok(());
        }
        if self.caller_id.trim().is_empty() {
            return Err(AedbError::PermissionDenied(
                "caller_id must not be blank".into(),
            ));
        }
        // Grants are keyed by the id and a NUL: an id holding one would read another caller's
        // grants shifted by a byte.
        if self.caller_id.chars().any(char::is_control) {
            return Err(AedbError::PermissionDenied(
                "caller_id must not contain control characters (NUL included)".into(),
            ));
        }
        if self.caller_id == SYSTEM_CALLER_ID {
            return Err(AedbError::PermissionDenied(format!(
                "caller_id '{SYSTEM_CALLER_ID}' is reserved for internal use"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_reserved_callers_are_refused() {
        assert!(CallerContext::new("alice").check_external().is_ok());
        for id in ["", "  ", "system", "mallory\0", "a\nb"] {
            assert!(
                matches!(
                    CallerContext::new(id).check_external(),
                    Err(AedbError::PermissionDenied(_))
                ),
                "{id:?}"
            );
        }
        let engine = CallerContext::system();
        assert!(engine.is_internal_system() && engine.check_external().is_ok());
        assert!(!CallerContext::new("system").is_internal_system());
    }
}
