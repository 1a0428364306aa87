//! The DDL operations: schema changes, grants and revokes, drops.

use aedb::catalog::expr::col;
use aedb::catalog::schema::{ColumnDef, IndexType, TableAlteration};
use aedb::catalog::types::ColumnType;
use aedb::catalog::{DdlOperation, ResourceType};
use aedb::commit::validation::Mutation;
use aedb::Permission;

use super::kinds::ddl_kind;
use super::model::Need;
use super::ops::*;

/// The permissions the delegation operations grant (to `bob`) and revoke (from `carol`): one
/// of each kind, in places near and far from the home place.
pub fn delegated() -> Vec<Permission> {
    use Permission as P;
    let kv = |project: &str, scope: Option<&str>, prefix: Option<&[u8]>| P::KvWrite {
        project_id: project.into(),
        scope_id: scope.map(Into::into),
        prefix: prefix.map(<[u8]>::to_vec),
    };
    vec![
        P::GlobalAdmin,
        P::ProjectAdmin {
            project_id: "p0".into(),
        },
        P::ProjectAdmin {
            project_id: "p1".into(),
        },
        P::ScopeAdmin {
            project_id: "p0".into(),
            scope_id: "s0".into(),
        },
        P::TableDdl {
            project_id: "p0".into(),
        },
        P::TableRead {
            project_id: "p0".into(),
            scope_id: "s0".into(),
            table_name: "t0".into(),
        },
        P::TableWrite {
            project_id: "p0".into(),
            scope_id: "s1".into(),
            table_name: "t1".into(),
        },
        P::IndexRead {
            project_id: "p0".into(),
            scope_id: "s0".into(),
            table_name: "t0".into(),
            index_name: "ix_n".into(),
        },
        kv("p0", Some("s0"), Some(b"ab")),
        P::KvRead {
            project_id: "p0".into(),
            scope_id: None,
            prefix: None,
        },
        kv("p1", Some("s1"), None),
        P::PolicyBypass {
            project_id: "p0".into(),
            table_name: None,
        },
        P::PolicyBypass {
            project_id: "p1".into(),
            table_name: Some("t0".into()),
        },
    ]
}

fn ddl(b: &mut Builder, label: String, needs: Vec<Need>, op: DdlOperation) {
    b.commit(label, needs, Mutation::Ddl(op));
}

/// Schema DDL that leaves the tables of the other operations alone (they use `tx`, `td`).
pub(super) fn schema_ops(b: &mut Builder) {
    let needs = vec![Need::GlobalAdmin];
    let op = DdlOperation::CreateProject {
        project_id: "pnew".into(),
        owner_id: None,
        if_not_exists: false,
    };
    ddl(b, "CreateProject pnew".into(), needs, op);
    for p in PROJECTS {
        let needs = vec![Need::ProjectAdmin { project: p.into() }];
        let op = DdlOperation::CreateScope {
            project_id: p.into(),
            scope_id: "snew".into(),
            owner_id: None,
            if_not_exists: false,
        };
        ddl(b, format!("CreateScope {p}.snew"), needs, op);
    }
    for (p, s) in SCOPE_PLACES {
        let needs = vec![Need::TableDdl { project: p.into() }];
        let (pid, sid) = (p.to_string(), s.to_string());
        let ops = vec![
            DdlOperation::CreateTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tnew".into(),
                owner_id: None,
                columns: table_columns(),
                primary_key: vec!["id".into()],
            },
            DdlOperation::CreateTableIfNotExists {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tnew2".into(),
                owner_id: None,
                columns: table_columns(),
                primary_key: vec!["id".into()],
            },
            DdlOperation::AlterTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                alteration: TableAlteration::AddColumn(ColumnDef {
                    name: "extra".into(),
                    col_type: ColumnType::Integer,
                    nullable: true,
                }),
            },
            DdlOperation::DropTable {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "td".into(),
                if_exists: false,
            },
            DdlOperation::CreateIndex {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                index_name: "ix_new".into(),
                if_not_exists: false,
                columns: vec!["n".into()],
                index_type: IndexType::BTree,
                partial_filter: None,
            },
            DdlOperation::DropIndex {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: "tx".into(),
                index_name: "ix_drop".into(),
                if_exists: false,
            },
            DdlOperation::CreateAccumulator {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                accumulator_name: "accnew".into(),
                if_not_exists: false,
                value_type: Default::default(),
                dedupe_retain_commits: None,
                snapshot_every: 8,
                exposure_margin_bps: 0,
                exposure_ttl_commits: None,
            },
            DdlOperation::DropAccumulator {
                project_id: pid,
                scope_id: sid,
                accumulator_name: "accdrop".into(),
                if_exists: false,
            },
        ];
        for op in ops {
            let label = format!("{} in {p}.{s}", ddl_kind(&op));
            ddl(b, label, needs.clone(), op);
        }
        // The preparation gave `tx` a policy: set another, then clear it.
        let policy = [
            DdlOperation::SetReadPolicy {
                project_id: p.into(),
                scope_id: s.into(),
                table_name: "tx".into(),
                predicate: col("id").gte(1i64),
                actor_id: None,
            },
            DdlOperation::ClearReadPolicy {
                project_id: p.into(),
                scope_id: s.into(),
                table_name: "tx".into(),
                actor_id: None,
            },
        ];
        for op in policy {
            let label = format!("{} on {p}.{s}.tx", ddl_kind(&op));
            ddl(b, label, needs.clone(), op);
        }
        let action = Action::CreateAccumulatorAs {
            place: place(p, s),
            name: "accnew_as".into(),
        };
        let label = format!("create_accumulator_as in {p}.{s}");
        b.push("CreateAccumulator", label, needs, action);
    }
}

pub(super) fn delegation_ops(b: &mut Builder, permissions: &[Permission]) {
    for permission in permissions {
        let needs = vec![Need::Delegate(permission.clone())];
        let grant = DdlOperation::GrantPermission {
            caller_id: "bob".into(),
            permission: permission.clone(),
            actor_id: None,
            delegable: false,
        };
        ddl(b, format!("grant {permission:?}"), needs.clone(), grant);
        let revoke = DdlOperation::RevokePermission {
            caller_id: "carol".into(),
            permission: permission.clone(),
            actor_id: None,
        };
        ddl(b, format!("revoke {permission:?}"), needs, revoke);
    }
}

/// Each transfer to bob, tables before their scopes before their projects, so that no
/// transfer takes away an ownership a later one is judged by.
pub(super) fn transfer_ops(b: &mut Builder) {
    let some = |x: &str| Some(x.to_string());
    let targets = [
        (ResourceType::Table, "p0", some("s0"), some("t0")),
        (ResourceType::Table, "p0", some("s1"), some("t1")),
        (ResourceType::Table, "p1", some("s0"), some("t0")),
        (ResourceType::Scope, "p0", some("s0"), None),
        (ResourceType::Scope, "p0", some("s1"), None),
        (ResourceType::Scope, "p1", some("s1"), None),
        (ResourceType::Project, "p0", None, None),
        (ResourceType::Project, "p1", None, None),
    ];
    for (resource_type, p, scope, table) in targets {
        let needs = vec![Need::Ownership {
            project: p.into(),
            scope: scope.clone(),
            table: table.clone(),
        }];
        let label = format!("TransferOwnership of {resource_type} {p}.{scope:?}.{table:?}");
        let op = DdlOperation::TransferOwnership {
            resource_type,
            project_id: p.into(),
            scope_id: scope,
            table_name: table,
            new_owner_id: "bob".into(),
            actor_id: None,
        };
        ddl(b, label, needs, op);
    }
}

/// Last: they remove what the others use.
pub(super) fn drop_ops(b: &mut Builder) {
    for (p, s) in SCOPE_PLACES {
        let needs = vec![Need::ScopeAdmin {
            project: p.into(),
            scope: s.into(),
        }];
        let op = DdlOperation::DropScope {
            project_id: p.into(),
            scope_id: s.into(),
            if_exists: false,
        };
        ddl(b, format!("DropScope {p}.{s}"), needs, op);
    }
    for p in PROJECTS {
        let needs = vec![Need::ProjectAdmin { project: p.into() }];
        let op = DdlOperation::DropProject {
            project_id: p.into(),
            if_exists: false,
        };
        ddl(b, format!("DropProject {p}"), needs, op);
    }
}
