//! What an envelope reads on its caller's behalf — its assertions and its read set — needs the
//! read permissions a query of the same data would: an assertion that fails reports what it
//! found, so an unchecked one would read anything. Rows of a table under a read policy the
//! caller does not bypass cannot be asserted on at all (the policy would have to apply to
//! counts, sums and versions alike). Judged on the commit's own state.

use aedb_catalog::permission::{kv_read_reach, permits, KvReach, Permission};
use aedb_pager::ReadTrees;

use super::envelope::ReadAssertion;
use super::policies::bypass;
use super::read_set::{ReadKey, ReadRange, ReadSet};
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::{grants, read_policies};

struct Reads<'a, R> {
    reader: &'a R,
    caller: &'a CallerContext,
    held: Vec<Permission>,
}

impl<R: ReadTrees> Reads<'_, R> {
    fn denied(&self, what: impl std::fmt::Display) -> AedbError {
        AedbError::PermissionDenied(format!(
            "caller={} may not read {what}",
            self.caller.caller_id
        ))
    }

    fn kv(&self, project: &str, scope: &str, key: &[u8]) -> Result<()> {
        if kv_read_reach(self.held.iter(), project, scope).covers(key) {
            return Ok(());
        }
        Err(self.denied(format!("a key of {project}.{scope}")))
    }

    fn kv_everything(&self, project: &str, scope: &str) -> Result<()> {
        match kv_read_reach(self.held.iter(), project, scope) {
            KvReach::Everything => Ok(()),
            _ => Err(self.denied(format!("every key of {project}.{scope} (a range)"))),
        }
    }

    fn table(&self, project: &str, scope: &str, table: &str) -> Result<()> {
        let need = Permission::TableRead {
            project_id: project.into(),
            scope_id: scope.into(),
            table_name: table.into(),
        };
        if !permits(self.held.iter(), &need) {
            return Err(self.denied(format!("{project}.{scope}.{table}")));
        }
        let policed = read_policies::get(self.reader, project, scope, table)?.is_some();
        if policed && !permits(self.held.iter(), &bypass(project, table)) {
            return Err(self.denied(format!(
                "{project}.{scope}.{table} in an assertion or read set: its read policy applies"
            )));
        }
        Ok(())
    }

    fn assertion(&self, assertion: &ReadAssertion) -> Result<()> {
        use ReadAssertion as A;
        match assertion {
            A::KeyEquals {
                project_id,
                scope_id,
                key,
                ..
            }
            | A::KeyCompare {
                project_id,
                scope_id,
                key,
                ..
            }
            | A::KeyExists {
                project_id,
                scope_id,
                key,
                ..
            }
            | A::KeyVersion {
                project_id,
                scope_id,
                key,
                ..
            } => self.kv(project_id, scope_id, key),
            A::RowVersion {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | A::RowExists {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | A::RowColumnCompare {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | A::CountCompare {
                project_id,
                scope_id,
                table_name,
                ..
            }
            | A::SumCompare {
                project_id,
                scope_id,
                table_name,
                ..
            } => self.table(project_id, scope_id, table_name),
            A::All(all) | A::Any(all) => all.iter().try_for_each(|a| self.assertion(a)),
            A::Not(inner) => self.assertion(inner),
            A::AccumulatorAvailableAtLeast {
                project_id,
                scope_id,
                accumulator_name,
                ..
            }
            | A::AccumulatorExposureWithinMargin {
                project_id,
                scope_id,
                accumulator_name,
                ..
            } => self.kv(project_id, scope_id, accumulator_name.as_bytes()),
        }
    }

    fn read_set(&self, read_set: &ReadSet) -> Result<()> {
        for point in &read_set.points {
            match &point.key {
                ReadKey::TableRow {
                    project_id,
                    scope_id,
                    table_name,
                    ..
                } => self.table(project_id, scope_id, table_name)?,
                ReadKey::KvKey {
                    project_id,
                    scope_id,
                    key,
                } => self.kv(project_id, scope_id, key)?,
            }
        }
        for range in &read_set.ranges {
            match &range.range {
                ReadRange::TableRange {
                    project_id,
                    scope_id,
                    table_name,
                    ..
                } => self.table(project_id, scope_id, table_name)?,
                ReadRange::KvRange {
                    project_id,
                    scope_id,
                    ..
                } => self.kv_everything(project_id, scope_id)?,
            }
        }
        Ok(())
    }
}

/// Refused unless `caller` may read everything `assertions` and `read_set` look at.
pub fn authorize_envelope_reads(
    reader: &impl ReadTrees,
    caller: &CallerContext,
    assertions: &[ReadAssertion],
    read_set: &ReadSet,
) -> Result<()> {
    if caller.is_internal_system() || (assertions.is_empty() && read_set.is_empty()) {
        return Ok(());
    }
    let held = grants::grants_of(reader, &caller.caller_id)?
        .into_iter()
        .map(|g| g.permission)
        .collect();
    let reads = Reads {
        reader,
        caller,
        held,
    };
    assertions.iter().try_for_each(|a| reads.assertion(a))?;
    reads.read_set(read_set)
}
