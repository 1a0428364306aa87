//! The ten permissions and the implication between them (behaviour spec 9.1):
//!
//! - `GlobalAdmin` covers everything.
//! - `ProjectAdmin(p)` covers, in project `p`: itself, `TableDdl`, every `ScopeAdmin`, every
//!   table's read and write, every index read, and all KV reads and writes.
//! - `ScopeAdmin(p, s)` covers, in scope `s` of `p`: itself, every table's read and write,
//!   every index read, and the KV reads and writes of that scope.
//! - A KV grant covers a KV need of the same kind in the same project when its scope is `None`
//!   (every scope) or the same scope, and its prefix is `None` or empty (every key) or a byte
//!   prefix of the needed key or prefix. A need for every key of a scope is covered only by a
//!   grant for every key.
//! - `PolicyBypass(p, None)` covers every table of `p`; with a table, that table only.
//! - Every other permission covers only itself. Grants add up: a need is met when any grant
//!   covers it. Reading does not follow from writing.

use serde::{Deserialize, Serialize};

/// What a caller may be granted. Stored in grants, so its serde form is part of the data
/// (variant and field order as the original declares them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Read KV values: `scope_id` `None` is every scope of the project; `prefix` narrows to
    /// keys starting with it.
    KvRead {
        project_id: String,
        #[serde(default)]
        scope_id: Option<String>,
        #[serde(default)]
        prefix: Option<Vec<u8>>,
    },
    /// Write KV values; matched as `KvRead`.
    KvWrite {
        project_id: String,
        #[serde(default)]
        scope_id: Option<String>,
        #[serde(default)]
        prefix: Option<Vec<u8>>,
    },
    TableRead {
        project_id: String,
        scope_id: String,
        table_name: String,
    },
    TableWrite {
        project_id: String,
        scope_id: String,
        table_name: String,
    },
    IndexRead {
        project_id: String,
        scope_id: String,
        table_name: String,
        index_name: String,
    },
    /// Schema, policy and projection DDL in a project.
    TableDdl {
        project_id: String,
    },
    GlobalAdmin,
    ProjectAdmin {
        project_id: String,
    },
    ScopeAdmin {
        project_id: String,
        scope_id: String,
    },
    /// Read past row-level read policies in a project, or in one table of it.
    PolicyBypass {
        project_id: String,
        #[serde(default)]
        table_name: Option<String>,
    },
}

/// The project and scope a permission is about (`None` scope: project-wide or not scoped).
fn place(p: &Permission) -> Option<(&str, Option<&str>)> {
    use Permission as P;
    Some(match p {
        P::KvRead {
            project_id,
            scope_id,
            ..
        }
        | P::KvWrite {
            project_id,
            scope_id,
            ..
        } => (project_id.as_str(), scope_id.as_deref()),
        P::TableRead {
            project_id,
            scope_id,
            ..
        }
        | P::TableWrite {
            project_id,
            scope_id,
            ..
        }
        | P::IndexRead {
            project_id,
            scope_id,
            ..
        }
        | P::ScopeAdmin {
            project_id,
            scope_id,
        } => (project_id.as_str(), Some(scope_id.as_str())),
        P::TableDdl { project_id }
        | P::ProjectAdmin { project_id }
        | P::PolicyBypass { project_id, .. } => (project_id.as_str(), None),
        P::GlobalAdmin => return None,
    })
}

/// Whether a KV grant's scope and prefix cover a KV need's.
fn kv_covers(
    (g_scope, g_prefix): (&Option<String>, &Option<Vec<u8>>),
    (n_scope, n_prefix): (&Option<String>, &Option<Vec<u8>>),
) -> bool {
    let scope = g_scope.is_none() || g_scope == n_scope;
    let prefix = match g_prefix.as_deref() {
        None | Some([]) => true,
        Some(granted) => n_prefix
            .as_deref()
            .is_some_and(|needed| needed.starts_with(granted)),
    };
    scope && prefix
}

impl Permission {
    /// Whether holding `self` meets the need `need`.
    pub fn implies(&self, need: &Permission) -> bool {
        use Permission as P;
        if self == need {
            return true;
        }
        match self {
            P::GlobalAdmin => true,
            P::ProjectAdmin { project_id } => {
                !matches!(need, P::GlobalAdmin | P::PolicyBypass { .. })
                    && place(need).is_some_and(|(p, _)| p == project_id)
            }
            P::ScopeAdmin {
                project_id,
                scope_id,
            } => {
                matches!(
                    need,
                    P::KvRead { .. }
                        | P::KvWrite { .. }
                        | P::TableRead { .. }
                        | P::TableWrite { .. }
                        | P::IndexRead { .. }
                ) && place(need) == Some((project_id.as_str(), Some(scope_id.as_str())))
            }
            P::KvRead {
                project_id,
                scope_id,
                prefix,
            } => match need {
                P::KvRead {
                    project_id: p,
                    scope_id: s,
                    prefix: k,
                } => p == project_id && kv_covers((scope_id, prefix), (s, k)),
                _ => false,
            },
            P::KvWrite {
                project_id,
                scope_id,
                prefix,
            } => match need {
                P::KvWrite {
                    project_id: p,
                    scope_id: s,
                    prefix: k,
                } => p == project_id && kv_covers((scope_id, prefix), (s, k)),
                _ => false,
            },
            P::PolicyBypass {
                project_id,
                table_name: None,
            } => matches!(need, P::PolicyBypass { project_id: p, .. } if p == project_id),
            _ => false,
        }
    }
}

impl Permission {
    /// The project a permission is about (`None`: `GlobalAdmin`).
    pub fn project_id(&self) -> Option<&str> {
        use Permission as P;
        match self {
            P::KvRead { project_id, .. }
            | P::KvWrite { project_id, .. }
            | P::TableRead { project_id, .. }
            | P::TableWrite { project_id, .. }
            | P::IndexRead { project_id, .. }
            | P::TableDdl { project_id }
            | P::ProjectAdmin { project_id }
            | P::ScopeAdmin { project_id, .. }
            | P::PolicyBypass { project_id, .. } => Some(project_id),
            P::GlobalAdmin => None,
        }
    }

    /// The scope a permission is about, when it names one.
    pub fn scope_id(&self) -> Option<&str> {
        use Permission as P;
        match self {
            P::KvRead { scope_id, .. } | P::KvWrite { scope_id, .. } => scope_id.as_deref(),
            P::TableRead { scope_id, .. }
            | P::TableWrite { scope_id, .. }
            | P::IndexRead { scope_id, .. }
            | P::ScopeAdmin { scope_id, .. } => Some(scope_id),
            _ => None,
        }
    }

    /// The table a permission is about, when it names one.
    pub fn table_name(&self) -> Option<&str> {
        use Permission as P;
        match self {
            P::TableRead { table_name, .. }
            | P::TableWrite { table_name, .. }
            | P::IndexRead { table_name, .. } => Some(table_name),
            P::PolicyBypass { table_name, .. } => table_name.as_deref(),
            _ => None,
        }
    }
}

/// Which keys of one scope a caller may read, from its grants: a scan skips the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvReach {
    /// Every key of the scope.
    Everything,
    /// Keys starting with one of these (never empty).
    Prefixes(Vec<Vec<u8>>),
    /// No key: a read is refused.
    Nothing,
}

/// The keys of `project`.`scope` that `grants` let a caller read.
pub fn kv_read_reach<'a>(
    grants: impl IntoIterator<Item = &'a Permission> + Clone,
    project: &str,
    scope: &str,
) -> KvReach {
    let everything = Permission::KvRead {
        project_id: project.into(),
        scope_id: Some(scope.into()),
        prefix: None,
    };
    if permits(grants.clone(), &everything) {
        return KvReach::Everything;
    }
    let prefixes: Vec<Vec<u8>> = grants
        .into_iter()
        .filter_map(|g| match g {
            Permission::KvRead {
                project_id,
                scope_id,
                prefix: Some(prefix),
            } if project_id == project
                && scope_id.as_deref().is_none_or(|s| s == scope)
                && !prefix.is_empty() =>
            {
                Some(prefix.clone())
            }
            _ => None,
        })
        .collect();
    if prefixes.is_empty() {
        KvReach::Nothing
    } else {
        KvReach::Prefixes(prefixes)
    }
}

impl KvReach {
    /// Whether a key is within reach.
    pub fn covers(&self, key: &[u8]) -> bool {
        match self {
            KvReach::Everything => true,
            KvReach::Prefixes(prefixes) => prefixes.iter().any(|p| key.starts_with(p)),
            KvReach::Nothing => false,
        }
    }
}

/// Whether any of `grants` meets `need` (grants add up).
pub fn permits<'a>(grants: impl IntoIterator<Item = &'a Permission>, need: &Permission) -> bool {
    grants.into_iter().any(|g| g.implies(need))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    fn kv_read(p: &str, s: Option<&str>, prefix: Option<&[u8]>) -> Permission {
        P::KvRead {
            project_id: p.into(),
            scope_id: s.map(Into::into),
            prefix: prefix.map(<[u8]>::to_vec),
        }
    }

    fn table_read(p: &str, s: &str, t: &str) -> Permission {
        P::TableRead {
            project_id: p.into(),
            scope_id: s.into(),
            table_name: t.into(),
        }
    }

    #[test]
    fn admins_cover_their_project_or_scope() {
        let project = P::ProjectAdmin {
            project_id: "p".into(),
        };
        let scope = P::ScopeAdmin {
            project_id: "p".into(),
            scope_id: "s".into(),
        };
        assert!(P::GlobalAdmin.implies(&project));
        assert!(project.implies(&scope));
        assert!(project.implies(&table_read("p", "x", "t")));
        assert!(project.implies(&kv_read("p", None, None)));
        assert!(project.implies(&P::TableDdl {
            project_id: "p".into()
        }));
        assert!(
            !project.implies(&table_read("q", "s", "t")),
            "other project"
        );
        assert!(!project.implies(&P::GlobalAdmin));
        assert!(!project.implies(&P::PolicyBypass {
            project_id: "p".into(),
            table_name: None
        }));
        assert!(scope.implies(&table_read("p", "s", "t")));
        assert!(scope.implies(&kv_read("p", Some("s"), Some(b"k"))));
        assert!(
            !scope.implies(&table_read("p", "other", "t")),
            "other scope"
        );
        assert!(!scope.implies(&kv_read("p", None, None)), "project-wide KV");
        assert!(!scope.implies(&P::TableDdl {
            project_id: "p".into()
        }));
        assert!(!scope.implies(&project));
    }

    #[test]
    fn kv_grants_match_scope_and_prefix() {
        let prefixed = kv_read("p", Some("s"), Some(b"user:"));
        assert!(prefixed.implies(&kv_read("p", Some("s"), Some(b"user:42"))));
        assert!(!prefixed.implies(&kv_read("p", Some("s"), Some(b"order:1"))));
        assert!(
            !prefixed.implies(&kv_read("p", Some("s"), None)),
            "every key"
        );
        assert!(!prefixed.implies(&kv_read("p", Some("t"), Some(b"user:42"))));
        let everywhere = kv_read("p", None, Some(b""));
        assert!(everywhere.implies(&kv_read("p", Some("t"), None)));
        assert!(!everywhere.implies(&kv_read("q", Some("t"), None)));
        let write = P::KvWrite {
            project_id: "p".into(),
            scope_id: None,
            prefix: None,
        };
        assert!(
            !write.implies(&kv_read("p", None, None)),
            "writing is not reading"
        );
        assert!(permits(
            [&prefixed, &write],
            &kv_read("p", Some("s"), Some(b"user:1"))
        ));
        assert!(!permits(
            [&write],
            &kv_read("p", Some("s"), Some(b"user:1"))
        ));
    }

    #[test]
    fn other_permissions_cover_only_themselves() {
        let read = table_read("p", "s", "t");
        assert!(read.implies(&read.clone()));
        assert!(!read.implies(&table_read("p", "s", "u")));
        assert!(!read.implies(&P::TableWrite {
            project_id: "p".into(),
            scope_id: "s".into(),
            table_name: "t".into()
        }));
        let bypass_all = P::PolicyBypass {
            project_id: "p".into(),
            table_name: None,
        };
        let bypass_t = P::PolicyBypass {
            project_id: "p".into(),
            table_name: Some("t".into()),
        };
        assert!(bypass_all.implies(&bypass_t));
        assert!(!bypass_t.implies(&bypass_all));
    }

    /// Grants are stored (postcard, as catalog entries): the encoding is pinned.
    #[test]
    fn the_stored_form_is_pinned() {
        let all = vec![
            kv_read("p", Some("s"), Some(b"k")),
            P::GlobalAdmin,
            P::PolicyBypass {
                project_id: "p".into(),
                table_name: None,
            },
        ];
        let bytes = postcard::to_allocvec(&all).expect("encode");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // 3 items; KvRead (0) "p" Some("s") Some([107]); GlobalAdmin (6); PolicyBypass (9) "p" None.
        assert_eq!(hex, "0300017001017301016b0609017000");
        let back: Vec<Permission> = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, all);
    }

    #[test]
    fn kv_reach_is_every_key_a_prefix_list_or_nothing() {
        let admin = P::ScopeAdmin {
            project_id: "p".into(),
            scope_id: "s".into(),
        };
        assert_eq!(kv_read_reach([&admin], "p", "s"), KvReach::Everything);
        assert_eq!(kv_read_reach([&admin], "p", "t"), KvReach::Nothing);
        let all_scopes = kv_read_reach([&kv_read("p", None, None)], "p", "t");
        assert_eq!(all_scopes, KvReach::Everything);
        let narrow = [
            kv_read("p", Some("s"), Some(b"ab")),
            kv_read("p", None, Some(b"x")),
            kv_read("q", Some("s"), Some(b"y")),
            kv_read("p", Some("t"), Some(b"z")),
        ];
        let reach = kv_read_reach(narrow.iter(), "p", "s");
        assert_eq!(
            reach,
            KvReach::Prefixes(vec![b"ab".to_vec(), b"x".to_vec()])
        );
        assert!(reach.covers(b"abc") && reach.covers(b"x1"));
        assert!(!reach.covers(b"a") && !reach.covers(b"y") && !reach.covers(b"z"));
        // Writing does not let a caller read.
        let write = P::KvWrite {
            project_id: "p".into(),
            scope_id: None,
            prefix: None,
        };
        assert_eq!(kv_read_reach([&write], "p", "s"), KvReach::Nothing);
    }
}
