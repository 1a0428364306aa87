//! Projects, scopes and tables: create, drop, exist, list, describe.

use aedb_catalog::schema::TableSchema;
use aedb_catalog::DdlOperation;

use crate::error::{AedbError, ResourceType, Result};
use crate::stored;
use crate::stored::catalog;

use super::AedbInstance;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub table_name: String,
    pub column_count: u32,
    pub index_count: u32,
    pub row_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    pub scope_id: String,
    pub table_count: u32,
    pub kv_key_count: u64,
    pub created_at_micros: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    pub project_id: String,
    pub scope_count: u32,
    pub created_at_micros: u64,
}

impl AedbInstance {
    // ---- namespaces ----

    /// Create a project (a no-op if it exists) and its default scope `app`.
    pub async fn create_project(&self, project_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::CreateProject {
            project_id: project_id.into(),
            owner_id: None,
            if_not_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn drop_project(&self, project_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::DropProject {
            project_id: project_id.into(),
            if_exists: true,
        })
        .await
        .map(|_| ())
    }

    /// Create a scope (a no-op if it exists); the project must exist.
    pub async fn create_scope(&self, project_id: &str, scope_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::CreateScope {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            owner_id: None,
            if_not_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn drop_scope(&self, project_id: &str, scope_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::DropScope {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            if_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn project_exists(&self, project_id: &str) -> Result<bool> {
        self.anonymous("project_exists")?;
        Ok(catalog::get_project(&self.engine.snapshot(), project_id)?.is_some())
    }

    pub async fn scope_exists(&self, project_id: &str, scope_id: &str) -> Result<bool> {
        self.anonymous("scope_exists")?;
        Ok(catalog::get_scope(&self.engine.snapshot(), project_id, scope_id)?.is_some())
    }

    pub async fn table_exists(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<bool> {
        self.anonymous("table_exists")?;
        Ok(catalog::find_table(&self.engine.snapshot(), project_id, scope_id, table)?.is_some())
    }

    pub async fn index_exists(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
        index: &str,
    ) -> Result<bool> {
        self.anonymous("index_exists")?;
        match self.describe_table(project_id, scope_id, table).await {
            Ok(schema) => Ok(schema.index(index).is_some()),
            Err(AedbError::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectInfo>> {
        self.anonymous("list_projects")?;
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for entry in catalog::projects(&snapshot)? {
            let scope_count = catalog::scope_count(&snapshot, &entry.project_id)? as u32;
            out.push(ProjectInfo {
                project_id: entry.project_id,
                scope_count,
                created_at_micros: entry.created_at_micros,
            });
        }
        Ok(out)
    }

    pub async fn list_scopes(&self, project_id: &str) -> Result<Vec<String>> {
        self.anonymous("list_scopes")?;
        let snapshot = self.engine.snapshot();
        if catalog::get_project(&snapshot, project_id)?.is_none() {
            return Err(AedbError::NotFound {
                resource_type: ResourceType::Project,
                resource_id: project_id.into(),
            });
        }
        Ok(catalog::scopes(&snapshot, project_id)?
            .into_iter()
            .map(|s| s.scope_id)
            .collect())
    }

    pub async fn list_tables(&self, project_id: &str, scope_id: &str) -> Result<Vec<TableSchema>> {
        self.anonymous("list_tables")?;
        catalog::tables(&self.engine.snapshot(), project_id, scope_id)
    }

    /// Each table of a scope with its column, index and row counts (rows counted in O(height)).
    pub async fn list_tables_info(
        &self,
        project_id: &str,
        scope_id: &str,
    ) -> Result<Vec<TableInfo>> {
        self.anonymous("list_tables_info")?;
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for schema in catalog::tables(&snapshot, project_id, scope_id)? {
            let rows = snapshot
                .tree(&aedb_catalog::namespace::table_tree(schema.table_id))?
                .map_or(0, |t| t.len());
            out.push(TableInfo {
                table_name: schema.table_name.clone(),
                column_count: schema.columns.len() as u32,
                index_count: schema.indexes.len() as u32,
                row_count: rows,
            });
        }
        Ok(out)
    }

    /// Each scope of a project with its table and KV key counts.
    pub async fn list_scopes_info(&self, project_id: &str) -> Result<Vec<ScopeInfo>> {
        self.anonymous("list_scopes_info")?;
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for scope in catalog::scopes(&snapshot, project_id)? {
            let tables = catalog::table_count(&snapshot, project_id, &scope.scope_id)? as u32;
            let kv = stored::kv::len(&snapshot, project_id, &scope.scope_id)?;
            out.push(ScopeInfo {
                scope_id: scope.scope_id,
                table_count: tables,
                kv_key_count: kv,
                created_at_micros: scope.created_at_micros,
            });
        }
        Ok(out)
    }

    pub async fn list_indexes(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<Vec<aedb_catalog::schema::IndexDef>> {
        self.anonymous("list_indexes")?;
        Ok(self
            .describe_table(project_id, scope_id, table)
            .await?
            .indexes)
    }

    pub async fn describe_index(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
        index: &str,
    ) -> Result<aedb_catalog::schema::IndexDef> {
        self.anonymous("describe_index")?;
        let schema = self.describe_table(project_id, scope_id, table).await?;
        schema
            .index(index)
            .cloned()
            .ok_or_else(|| AedbError::NotFound {
                resource_type: ResourceType::Index,
                resource_id: index.into(),
            })
    }

    pub async fn describe_table(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<TableSchema> {
        self.anonymous("describe_table")?;
        catalog::load_table(&self.engine.snapshot(), project_id, scope_id, table)
    }
}
