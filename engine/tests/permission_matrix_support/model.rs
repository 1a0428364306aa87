//! Who may do what, written from the behaviour spec (section 9.1) and not from the engine's
//! code, so that the matrix compares two readings of the spec rather than the engine with
//! itself. The one deliberate deviation of this port is taken as the rule: implication
//! applies uniformly, so every KV need (counters, `KvSubIntEx`, exposure releases too) is met
//! by any `KvWrite` covering the key, and by `ProjectAdmin`/`ScopeAdmin` of its place.

use aedb::Permission;

/// One thing an operation needs. A query needs one `TableRead` per table it reads. Read
/// policies are not a need: they narrow what an allowed query shows (`Model::bypasses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    GlobalAdmin,
    ProjectAdmin {
        project: String,
    },
    ScopeAdmin {
        project: String,
        scope: String,
    },
    TableDdl {
        project: String,
    },
    TableWrite {
        project: String,
        scope: String,
        table: String,
    },
    TableRead {
        project: String,
        scope: String,
        table: String,
    },
    KvWrite {
        project: String,
        scope: String,
        key: Vec<u8>,
    },
    KvRead {
        project: String,
        scope: String,
        key: Vec<u8>,
    },
    /// A scan of a scope's keys: refused only when the caller may read no key of the scope
    /// (as the original); it shows the keys the caller may read (`Model::may_read`).
    KvScan {
        project: String,
        scope: String,
    },
    /// The right to grant or revoke this permission.
    Delegate(Permission),
    /// The right to transfer what this names (a project, a scope of it, a table of that).
    Ownership {
        project: String,
        scope: Option<String>,
        table: Option<String>,
    },
}

impl Need {
    fn project(&self) -> Option<&str> {
        match self {
            Need::GlobalAdmin | Need::Delegate(_) | Need::Ownership { .. } => None,
            Need::ProjectAdmin { project }
            | Need::ScopeAdmin { project, .. }
            | Need::TableDdl { project }
            | Need::TableWrite { project, .. }
            | Need::TableRead { project, .. }
            | Need::KvWrite { project, .. }
            | Need::KvRead { project, .. }
            | Need::KvScan { project, .. } => Some(project),
        }
    }

    /// The scope of a need that lives in one scope.
    fn scope(&self) -> Option<(&str, &str)> {
        match self {
            Need::ScopeAdmin { project, scope }
            | Need::TableWrite { project, scope, .. }
            | Need::TableRead { project, scope, .. }
            | Need::KvWrite { project, scope, .. }
            | Need::KvRead { project, scope, .. }
            | Need::KvScan { project, scope } => Some((project, scope)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
}

/// What the caller owns (set at creation with `owner_id`).
#[derive(Debug, Clone, Default)]
pub struct Owned {
    pub projects: Vec<String>,
    pub scopes: Vec<(String, String)>,
    pub tables: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The grants with their `delegable` flags, in the order they are committed.
    pub granted: Vec<(Permission, bool)>,
    /// What that leaves the caller holding.
    held: Vec<(Permission, bool)>,
    pub owned: Owned,
}

/// Whether holding `grant` meets `need` (section 9.1, "Implication").
fn covers(grant: &Permission, need: &Need) -> bool {
    use Permission as P;
    match (grant, need) {
        (P::GlobalAdmin, _) => true,
        // Every need placed in the project. Global rights, delegation and ownership are not
        // placed (`Need::project`), and policy bypass is not a need (`Model::bypasses`).
        (P::ProjectAdmin { project_id }, need) => need.project() == Some(project_id.as_str()),
        (
            P::ScopeAdmin {
                project_id,
                scope_id,
            },
            need,
        ) => need.scope() == Some((project_id.as_str(), scope_id.as_str())),
        (P::TableDdl { project_id }, Need::TableDdl { project }) => project_id == project,
        (
            P::TableWrite {
                project_id,
                scope_id,
                table_name,
            },
            Need::TableWrite {
                project,
                scope,
                table,
            },
        )
        | (
            P::TableRead {
                project_id,
                scope_id,
                table_name,
            },
            Need::TableRead {
                project,
                scope,
                table,
            },
        ) => project_id == project && scope_id == scope && table_name == table,
        // Scope None: every scope; prefix None or empty: every key; else a byte prefix.
        (
            P::KvWrite {
                project_id,
                scope_id,
                prefix,
            },
            Need::KvWrite {
                project,
                scope,
                key,
            },
        )
        | (
            P::KvRead {
                project_id,
                scope_id,
                prefix,
            },
            Need::KvRead {
                project,
                scope,
                key,
            },
        ) => {
            project_id == project
                && scope_id.as_ref().is_none_or(|s| s == scope)
                && prefix.as_ref().is_none_or(|p| key.starts_with(p))
        }
        // Any read grant in the scope lets a scan run (it then skips the keys it does not
        // cover).
        (
            P::KvRead {
                project_id,
                scope_id,
                ..
            },
            Need::KvScan { project, scope },
        ) => project_id == project && scope_id.as_ref().is_none_or(|s| s == scope),
        _ => false,
    }
}

/// The project, scope and table a permission is about, as far as it names them.
fn place(permission: &Permission) -> (Option<&str>, Option<&str>, Option<&str>) {
    use Permission as P;
    match permission {
        P::GlobalAdmin => (None, None, None),
        P::ProjectAdmin { project_id } | P::TableDdl { project_id } => {
            (Some(project_id), None, None)
        }
        P::PolicyBypass { project_id, .. } => (Some(project_id), None, None),
        P::ScopeAdmin {
            project_id,
            scope_id,
        } => (Some(project_id), Some(scope_id), None),
        P::KvRead {
            project_id,
            scope_id,
            ..
        }
        | P::KvWrite {
            project_id,
            scope_id,
            ..
        } => (Some(project_id), scope_id.as_deref(), None),
        P::TableRead {
            project_id,
            scope_id,
            table_name,
        }
        | P::TableWrite {
            project_id,
            scope_id,
            table_name,
        }
        | P::IndexRead {
            project_id,
            scope_id,
            table_name,
            ..
        } => (Some(project_id), Some(scope_id), Some(table_name)),
    }
}

impl Model {
    /// `granted` in the order they are committed. A caller holds a permission once: granting
    /// it again replaces its `delegable` flag (the original keeps one grant record per caller
    /// and permission, so the last grant's flag is the one that counts).
    pub fn new(granted: Vec<(Permission, bool)>, owned: Owned) -> Self {
        let mut held: Vec<(Permission, bool)> = Vec::new();
        for (permission, delegable) in &granted {
            match held.iter_mut().find(|(p, _)| p == permission) {
                Some(earlier) => earlier.1 = *delegable,
                None => held.push((permission.clone(), *delegable)),
            }
        }
        Model {
            granted,
            held,
            owned,
        }
    }

    fn holds(&self, need: &Need) -> bool {
        self.held.iter().any(|(g, _)| covers(g, need))
    }

    /// Whether a point read of `key` would be allowed: what a scan shows.
    pub fn may_read(&self, project: &str, scope: &str, key: &[u8]) -> bool {
        self.holds(&Need::KvRead {
            project: project.into(),
            scope: scope.into(),
            key: key.to_vec(),
        })
    }

    /// An operation is allowed when every one of its needs is.
    pub fn verdict(&self, needs: &[Need]) -> Verdict {
        if needs.iter().all(|need| self.one(need) == Verdict::Allowed) {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    fn one(&self, need: &Need) -> Verdict {
        match need {
            Need::Delegate(permission) => self.delegation(permission),
            // "GlobalAdmin or owner of the resource (or project owner)"; no admin right.
            Need::Ownership {
                project,
                scope,
                table,
            } => {
                let owner = self.owns(project, scope.as_deref(), table.as_deref());
                if owner || self.holds(&Need::GlobalAdmin) {
                    Verdict::Allowed
                } else {
                    Verdict::Denied
                }
            }
            need if self.holds(need) => Verdict::Allowed,
            _ => Verdict::Denied,
        }
    }

    /// Whether the caller owns what a (project, scope, table) names: the project, or the
    /// scope when one is named, or the table when one is named (the owner of a project owns
    /// what is in it).
    fn owns(&self, project: &str, scope: Option<&str>, table: Option<&str>) -> bool {
        if self.owned.projects.iter().any(|p| p == project) {
            return true;
        }
        let Some(scope) = scope else {
            return false;
        };
        let scopes = &self.owned.scopes;
        if scopes.iter().any(|(p, s)| p == project && s == scope) {
            return true;
        }
        table.is_some_and(|table| {
            let tables = &self.owned.tables;
            tables
                .iter()
                .any(|(p, s, t)| p == project && s == scope && t == table)
        })
    }

    /// Grant/Revoke: "GlobalAdmin, or owner of the project/scope/table, or a holder of the
    /// same permission granted with `delegable=true`, or the matching admin".
    fn delegation(&self, permission: &Permission) -> Verdict {
        if self.holds(&Need::GlobalAdmin) {
            return Verdict::Allowed;
        }
        // "The same permission": that grant exactly, not a wider one that covers it.
        if self.held.iter().any(|(g, d)| *d && g == permission) {
            return Verdict::Allowed;
        }
        let (Some(project), scope, table) = place(permission) else {
            return Verdict::Denied;
        };
        let project_admin = Need::ProjectAdmin {
            project: project.into(),
        };
        if self.holds(&project_admin) || self.owns(project, scope, table) {
            return Verdict::Allowed;
        }
        let scope_admin = scope.map(|scope| Need::ScopeAdmin {
            project: project.into(),
            scope: scope.into(),
        });
        if scope_admin.is_some_and(|need| self.holds(&need)) {
            return Verdict::Allowed;
        }
        Verdict::Denied
    }

    /// Whether the caller reads a table past its read policy: `GlobalAdmin`, or
    /// `PolicyBypass` of the project or of that table (no admin right implies it).
    pub fn bypasses(&self, project: &str, table: &str) -> bool {
        self.held.iter().any(|(g, _)| match g {
            Permission::GlobalAdmin => true,
            Permission::PolicyBypass {
                project_id,
                table_name,
            } => project_id == project && table_name.as_deref().is_none_or(|t| t == table),
            _ => false,
        })
    }
}
