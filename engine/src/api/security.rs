//! Who may call: the open modes that demand a caller on every call (`open_secure`,
//! `open_production`), the gate every anonymous call passes, and the checks of the read path
//! (grants from the instance's cache). Writes are authorized inside their commit
//! (`commit::authz`), against the commit's own state.

use std::path::Path;
use std::sync::Arc;

use aedb_catalog::expr::Expr;
use aedb_catalog::permission::{permits, KvReach, Permission};
use aedb_catalog::DdlOperation;
use aedb_pager::io::{os_vfs, Vfs};
use aedb_query::plan::Query;

use crate::commit::{policies, Mutation};
use crate::config::AedbConfig;
use crate::durable::Engine;
use crate::error::{AedbError, Result};
use crate::permission::cache::{self, CallerView, TableRead};
use crate::permission::CallerContext;
use crate::stored::grants;
use crate::trust_marker;
use crate::CommitFinality;

use super::AedbInstance;

/// Whether an instance accepts calls without a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallerPolicy {
    /// `open`: anonymous calls run unchecked; `_as` calls are checked.
    Optional,
    /// `open_secure` / `open_production`: every call names its caller.
    Required,
}

/// Reading (or writing) one of the engine's own tables in `_system.app`: the event outbox,
/// processor checkpoints, the audit tables.
pub(crate) fn system_table(table: &str, write: bool) -> Permission {
    let (project_id, scope_id, table_name) = (
        aedb_catalog::namespace::SYSTEM_PROJECT_ID.to_string(),
        aedb_catalog::namespace::DEFAULT_SCOPE_ID.to_string(),
        table.to_string(),
    );
    if write {
        Permission::TableWrite {
            project_id,
            scope_id,
            table_name,
        }
    } else {
        Permission::TableRead {
            project_id,
            scope_id,
            table_name,
        }
    }
}

fn invalid(message: String) -> AedbError {
    AedbError::InvalidConfig { message }
}

fn denied(caller: &CallerContext, need: impl std::fmt::Debug) -> AedbError {
    AedbError::PermissionDenied(format!("caller={} missing {need:?}", caller.caller_id))
}

impl AedbInstance {
    /// Open for production: as [`Self::open_secure`].
    pub fn open_production(config: AedbConfig, dir: &Path) -> Result<Self> {
        Self::open_authenticated(config, dir, "production mode")
    }

    /// Open demanding a caller on every call. The configuration must authenticate and chain
    /// every log frame (`hmac_key`, `hash_chain_required`), make every commit durable when it
    /// returns (`DurabilityMode::Full`) and refuse to skip damage (`RecoveryMode::Strict`);
    /// anything less is `InvalidConfig`. A directory once opened with weaker settings is
    /// refused. On a database without grants, `config.bootstrap_admin` is granted
    /// `GlobalAdmin`.
    pub fn open_secure(config: AedbConfig, dir: &Path) -> Result<Self> {
        Self::open_authenticated(config, dir, "secure mode")
    }

    fn open_authenticated(config: AedbConfig, dir: &Path, mode: &str) -> Result<Self> {
        config.validate().map_err(invalid)?;
        config.validate_secure(mode).map_err(invalid)?;
        let vfs: Arc<dyn Vfs> =
            os_vfs(config.io_backend).map_err(|e| AedbError::Io(e.to_string()))?;
        // Before the lock, so a refused directory is not even locked; and again once locked
        // (inside the open, before recovery), since a weak open that held the lock while this
        // call waited for it has written the marker since.
        trust_marker::check_strict_open(&*vfs, dir, &config)?;
        let engine = Engine::open_strict_with_vfs(config.clone(), dir, vfs)?;
        let mut instance = Self::over(engine, config, dir)?;
        instance.caller_policy = CallerPolicy::Required;
        instance.bootstrap_admin()?;
        Ok(instance)
    }

    /// Grant `GlobalAdmin` to the configured bootstrap admin when nobody holds any grant.
    fn bootstrap_admin(&self) -> Result<()> {
        let Some(admin) = self.config.bootstrap_admin.clone() else {
            return Ok(());
        };
        if !grants::is_empty(&self.engine.snapshot())? {
            return Ok(());
        }
        let grant = Mutation::Ddl(DdlOperation::GrantPermission {
            caller_id: admin.clone(),
            permission: Permission::GlobalAdmin,
            actor_id: Some(crate::permission::SYSTEM_CALLER_ID.into()),
            delegable: true,
        });
        let limits = self.limits();
        // On a thread of its own: `open_secure` is a plain function, often called on an async
        // runtime's thread, where a blocking wait is not allowed. The emptiness check is
        // repeated in the commit, which sees every commit before it.
        let engine = &self.engine;
        std::thread::scope(|threads| {
            threads
                .spawn(move || {
                    engine.commit_blocking(CommitFinality::Durable, move |txn| {
                        if grants::is_empty(txn)? {
                            crate::commit::apply::apply(txn, &grant, &limits)?;
                        }
                        Ok(())
                    })
                })
                .join()
                .map_err(|_| AedbError::Failed("bootstrap admin grant panicked".into()))?
        })?;
        tracing::info!(%admin, "bootstrap admin granted GlobalAdmin");
        Ok(())
    }

    /// Whether this instance demands a caller on every call.
    pub fn requires_authenticated_calls(&self) -> bool {
        self.caller_policy == CallerPolicy::Required
    }

    /// The gate of every call without a caller: refused when the instance demands one.
    pub(super) fn anonymous(&self, call: &str) -> Result<()> {
        match self.caller_policy {
            CallerPolicy::Optional => Ok(()),
            CallerPolicy::Required => Err(AedbError::PermissionDenied(format!(
                "{call} without a caller is refused: this database was opened with \
                 open_secure/open_production; use the `_as` form with a CallerContext"
            ))),
        }
    }

    /// What `caller` may read now (cached; the engine itself may read everything: None).
    fn view(&self, caller: &CallerContext) -> Result<Option<Arc<CallerView>>> {
        if caller.is_internal_system() {
            return Ok(None);
        }
        caller.check_external()?;
        Ok(Some(self.authz.caller(&self.engine, &caller.caller_id)?))
    }

    /// Whether `caller` may read `place`, and through which policy (None: the engine itself,
    /// which reads everything).
    fn read_decision(
        &self,
        caller: &CallerContext,
        place: (&str, &str, &str),
    ) -> Result<Option<TableRead>> {
        if caller.is_internal_system() {
            return Ok(None);
        }
        caller.check_external()?;
        let decision = self
            .authz
            .table_read(&self.engine, &caller.caller_id, place, |view| {
                self.table_read(view, place)
            })?;
        Ok(Some(decision))
    }

    /// Whether `view`'s caller may read `table`, and through which policy.
    fn table_read(&self, view: &CallerView, place: (&str, &str, &str)) -> Result<TableRead> {
        view.table(place, |held| {
            let (project, scope, table) = place;
            let need = Permission::TableRead {
                project_id: project.into(),
                scope_id: scope.into(),
                table_name: table.into(),
            };
            if !permits(held.iter(), &need) {
                return Ok(TableRead::Denied);
            }
            let bypass = permits(held.iter(), &policies::bypass(project, table));
            Ok(match cache::policy_now(&self.engine, place)? {
                Some(policy) if !bypass => TableRead::Policed(Arc::new(policy)),
                _ => TableRead::Whole,
            })
        })
    }

    /// Refused unless `caller` may read every one of `tables` of `project`.`scope`.
    pub(super) fn check_table_read(
        &self,
        caller: &CallerContext,
        project: &str,
        scope: &str,
        tables: &[&str],
    ) -> Result<()> {
        for table in tables {
            if let Some(TableRead::Denied) = self.read_decision(caller, (project, scope, table))? {
                return Err(table_denied(caller, (project, scope, table)));
            }
        }
        Ok(())
    }

    /// For a call with an optional caller: refused unless `caller` holds `need`, or, without a
    /// caller, unless the instance accepts anonymous calls.
    pub(super) fn check_caller(
        &self,
        caller: Option<&CallerContext>,
        need: Permission,
        call: &str,
    ) -> Result<()> {
        match caller {
            Some(caller) => self.check_permission(caller, need),
            None => self.anonymous(call),
        }
    }

    /// Refused unless `caller` may read the query's tables; then narrowed to the rows the
    /// read policy of its table lets the caller see (unless it holds `PolicyBypass`). A join
    /// over a table whose policy applies to the caller is refused: the policy's column names
    /// are the table's own, and would be ambiguous in the joined rows.
    pub(super) fn check_query(
        &self,
        caller: &CallerContext,
        project: &str,
        scope: &str,
        query: &mut Query,
    ) -> Result<()> {
        let tables = std::iter::once(query.table.as_str())
            .chain(query.joins.iter().map(|j| j.table.as_str()));
        let mut policy = None;
        for table in tables {
            let Some(decision) = self.read_decision(caller, (project, scope, table))? else {
                return Ok(());
            };
            match decision {
                TableRead::Denied => return Err(table_denied(caller, (project, scope, table))),
                TableRead::Whole => {}
                TableRead::Policed(_) if !query.joins.is_empty() => {
                    return Err(AedbError::PermissionDenied(format!(
                        "caller={} may read {project}.{scope}.{table} only through its read \
                         policy, which a join cannot apply; query the table on its own",
                        caller.caller_id
                    )))
                }
                TableRead::Policed(expr) => policy = Some(expr),
            }
        }
        if let Some(policy) = policy {
            let policy = Expr::clone(&policy);
            query.predicate = Some(match query.predicate.take() {
                Some(predicate) => predicate.and(policy),
                None => policy,
            });
        }
        Ok(())
    }

    /// Refused unless `caller` holds `need` (or a permission implying it).
    pub(super) fn check_permission(&self, caller: &CallerContext, need: Permission) -> Result<()> {
        match self.view(caller)? {
            Some(view) if !permits(view.permissions.iter(), &need) => Err(denied(caller, need)),
            _ => Ok(()),
        }
    }

    /// Which keys of `project`.`scope` `caller` may read; refused when none.
    pub(super) fn kv_reach(
        &self,
        caller: &CallerContext,
        project: &str,
        scope: &str,
    ) -> Result<Arc<KvReach>> {
        let Some(view) = self.view(caller)? else {
            return Ok(Arc::new(KvReach::Everything));
        };
        let reach = view.kv_reach(project, scope);
        match *reach {
            KvReach::Nothing => Err(denied(
                caller,
                format!("KvRead({project}.{scope})").as_str(),
            )),
            _ => Ok(reach),
        }
    }

    /// Refused unless `caller` may read `key` of `project`.`scope`.
    pub(super) fn check_kv_read(
        &self,
        caller: &CallerContext,
        project: &str,
        scope: &str,
        key: &[u8],
    ) -> Result<()> {
        let covered = if caller.is_internal_system() {
            true
        } else {
            caller.check_external()?;
            let place = (caller.caller_id.as_str(), project, scope);
            self.authz
                .with_kv_reach(&self.engine, place, |reach| reach.covers(key))?
        };
        if covered {
            return Ok(());
        }
        Err(denied(
            caller,
            format!("KvRead({project}.{scope}) of this key").as_str(),
        ))
    }
}

fn table_denied(caller: &CallerContext, (project, scope, table): (&str, &str, &str)) -> AedbError {
    denied(
        caller,
        Permission::TableRead {
            project_id: project.into(),
            scope_id: scope.into(),
            table_name: table.into(),
        },
    )
}
