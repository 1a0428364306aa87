//! The names of every mutation and DDL kind. `kind_of` has no catch-all arm, so a variant added
//! to the engine does not compile here until it is named, and then the coverage test asks the
//! matrix for an operation of that kind.

use aedb::catalog::DdlOperation;
use aedb::commit::validation::Mutation;

pub const MUTATION_KINDS: [&str; 33] = [
    "Insert",
    "InsertBatch",
    "Upsert",
    "UpsertBatch",
    "UpsertOnConflict",
    "UpsertBatchOnConflict",
    "Delete",
    "DeleteWhere",
    "UpdateWhere",
    "UpdateWhereExpr",
    "KvSet",
    "KvDel",
    "KvIncU256",
    "KvDecU256",
    "KvAddU256Ex",
    "KvSubU256Ex",
    "KvMaxU256",
    "KvMinU256",
    "KvMutateU256",
    "KvAddU64Ex",
    "KvSubU64Ex",
    "KvMaxU64",
    "KvMinU64",
    "KvMutateU64",
    "KvSubIntEx",
    "CounterAdd",
    "TableIncU256",
    "TableDecU256",
    "Accumulate",
    "ExposeAccumulator",
    "ExposeAccumulatorBatch",
    "ReleaseAccumulatorExposure",
    "EmitEvent",
];

pub const DDL_KINDS: [&str; 14] = [
    "CreateProject",
    "DropProject",
    "CreateScope",
    "DropScope",
    "CreateTable",
    "CreateTableIfNotExists",
    "AlterTable",
    "DropTable",
    "CreateIndex",
    "DropIndex",
    "CreateAccumulator",
    "DropAccumulator",
    "GrantPermission",
    "RevokePermission",
];

pub fn ddl_kind(op: &DdlOperation) -> &'static str {
    use DdlOperation as D;
    match op {
        D::CreateProject { .. } => "CreateProject",
        D::DropProject { .. } => "DropProject",
        D::CreateScope { .. } => "CreateScope",
        D::DropScope { .. } => "DropScope",
        D::CreateTable { .. } => "CreateTable",
        D::CreateTableIfNotExists { .. } => "CreateTableIfNotExists",
        D::AlterTable { .. } => "AlterTable",
        D::DropTable { .. } => "DropTable",
        D::CreateIndex { .. } => "CreateIndex",
        D::DropIndex { .. } => "DropIndex",
        D::CreateAccumulator { .. } => "CreateAccumulator",
        D::DropAccumulator { .. } => "DropAccumulator",
        D::GrantPermission { .. } => "GrantPermission",
        D::RevokePermission { .. } => "RevokePermission",
    }
}

pub fn kind_of(m: &Mutation) -> &'static str {
    use Mutation as M;
    match m {
        M::Ddl(op) => ddl_kind(op),
        M::Insert { .. } => "Insert",
        M::InsertBatch { .. } => "InsertBatch",
        M::Upsert { .. } => "Upsert",
        M::UpsertBatch { .. } => "UpsertBatch",
        M::UpsertOnConflict { .. } => "UpsertOnConflict",
        M::UpsertBatchOnConflict { .. } => "UpsertBatchOnConflict",
        M::Delete { .. } => "Delete",
        M::DeleteWhere { .. } => "DeleteWhere",
        M::UpdateWhere { .. } => "UpdateWhere",
        M::UpdateWhereExpr { .. } => "UpdateWhereExpr",
        M::KvSet { .. } => "KvSet",
        M::KvDel { .. } => "KvDel",
        M::KvIncU256 { .. } => "KvIncU256",
        M::KvDecU256 { .. } => "KvDecU256",
        M::KvAddU256Ex { .. } => "KvAddU256Ex",
        M::KvSubU256Ex { .. } => "KvSubU256Ex",
        M::KvMaxU256 { .. } => "KvMaxU256",
        M::KvMinU256 { .. } => "KvMinU256",
        M::KvMutateU256 { .. } => "KvMutateU256",
        M::KvAddU64Ex { .. } => "KvAddU64Ex",
        M::KvSubU64Ex { .. } => "KvSubU64Ex",
        M::KvMaxU64 { .. } => "KvMaxU64",
        M::KvMinU64 { .. } => "KvMinU64",
        M::KvMutateU64 { .. } => "KvMutateU64",
        M::KvSubIntEx { .. } => "KvSubIntEx",
        M::CounterAdd { .. } => "CounterAdd",
        M::TableIncU256 { .. } => "TableIncU256",
        M::TableDecU256 { .. } => "TableDecU256",
        M::Accumulate { .. } => "Accumulate",
        M::ExposeAccumulator { .. } => "ExposeAccumulator",
        M::ExposeAccumulatorBatch { .. } => "ExposeAccumulatorBatch",
        M::ReleaseAccumulatorExposure { .. } => "ReleaseAccumulatorExposure",
        M::EmitEvent { .. } => "EmitEvent",
    }
}
