//! Namespaces (project → scope → tables and a KV space), identifier rules, and where each thing
//! lives: catalog keys in the system tree and the names of data trees.

use serde::{Deserialize, Serialize};

/// The scope `create_project` also creates.
pub const DEFAULT_SCOPE_ID: &str = "app";
/// Reserved for the engine's own tables.
pub const SYSTEM_PROJECT_ID: &str = "_system";
pub const MAX_IDENTIFIER_BYTES: usize = 128;
/// The B+tree holding the catalog.
pub const CATALOG_TREE: &str = "sys:catalog";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Field order is part of the file format: pinned by catalog/tests/golden.rs.
pub struct ProjectEntry {
    pub project_id: String,
    pub owner_id: Option<String>,
    pub created_at_micros: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Field order is part of the file format: pinned by catalog/tests/golden.rs.
pub struct ScopeEntry {
    pub project_id: String,
    pub scope_id: String,
    pub owner_id: Option<String>,
    pub created_at_micros: u64,
}

/// Check a project, scope, table, index or column name: non-empty, at most 128 bytes, only
/// `[A-Za-z0-9_-]`. Returns the message of the `Validation` error.
pub fn validate_identifier(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "{what} must be at most {MAX_IDENTIFIER_BYTES} bytes"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!("{what} must contain only [A-Za-z0-9_-]: {name:?}"));
    }
    Ok(())
}

/// Prefix of every project key.
pub fn project_prefix() -> Vec<u8> {
    b"P\0".to_vec()
}

pub fn project_key(project: &str) -> Vec<u8> {
    [&project_prefix()[..], project.as_bytes()].concat()
}

pub fn scope_key(project: &str, scope: &str) -> Vec<u8> {
    [b"S\0", project.as_bytes(), b"\0", scope.as_bytes()].concat()
}

/// Prefix of every scope key of a project.
pub fn scope_prefix(project: &str) -> Vec<u8> {
    [b"S\0", project.as_bytes(), b"\0"].concat()
}

pub fn table_key(project: &str, scope: &str, table: &str) -> Vec<u8> {
    [
        b"T\0",
        project.as_bytes(),
        b"\0",
        scope.as_bytes(),
        b"\0",
        table.as_bytes(),
    ]
    .concat()
}

/// Prefix of every table key of a scope.
pub fn table_prefix(project: &str, scope: &str) -> Vec<u8> {
    [b"T\0", project.as_bytes(), b"\0", scope.as_bytes(), b"\0"].concat()
}

/// The catalog key of the table-id counter.
pub const NEXT_TABLE_ID_KEY: &[u8] = b"N\0next_table_id";

/// The tree holding a table's rows, keyed by the encoded primary key.
pub fn table_tree(table_id: u64) -> String {
    table_tree_name(table_id).to_string()
}

/// [`table_tree`] on the stack: read paths name a table's tree on every query.
pub fn table_tree_name(table_id: u64) -> TreeName {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = table_id;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut name = TreeName {
        bytes: [0; 22],
        len: 0,
    };
    name.bytes[..2].copy_from_slice(b"t:");
    let count = digits.len() - at;
    name.bytes[2..2 + count].copy_from_slice(&digits[at..]);
    name.len = (2 + count) as u8;
    name
}

/// A short tree name held inline (`t:` and up to 20 digits).
#[derive(Clone, Copy)]
pub struct TreeName {
    bytes: [u8; 22],
    len: u8,
}

impl std::ops::Deref for TreeName {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII was written (see `table_tree_name`); the fallback never happens.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("t:?")
    }
}

impl std::fmt::Display for TreeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// The tree of a secondary index: keys are encoded index columns then the encoded primary key.
pub fn index_tree(table_id: u64, index: &str) -> String {
    format!("i:{table_id}:{index}")
}

/// The tree of a scope's KV space.
pub fn kv_tree(project: &str, scope: &str) -> String {
    kv_tree_name(project, scope).to_string()
}

/// [`kv_tree`] built without allocating when it fits (every name of valid identifiers does):
/// a KV read looks its tree up by this name, and formatting a `String` for it was a twentieth
/// of a get.
pub fn kv_tree_name(project: &str, scope: &str) -> ComposedName {
    ComposedName::join(&["kv:", project, ":", scope])
}

/// Bytes of a [`ComposedName`] held inline: a KV tree's name with both identifiers at their
/// longest (`kv:` + 128 + `:` + 128).
const COMPOSED_INLINE: usize = 3 + MAX_IDENTIFIER_BYTES + 1 + MAX_IDENTIFIER_BYTES;

/// A tree name joined from parts, inline when it fits and on the heap otherwise (names of
/// identifiers never validated, which name no tree).
pub struct ComposedName {
    inline: [u8; COMPOSED_INLINE],
    len: u16,
    heap: Option<String>,
}

impl ComposedName {
    fn join(parts: &[&str]) -> ComposedName {
        let total: usize = parts.iter().map(|part| part.len()).sum();
        let mut name = ComposedName {
            inline: [0u8; COMPOSED_INLINE],
            len: 0,
            heap: None,
        };
        if total > COMPOSED_INLINE {
            name.heap = Some(parts.concat());
            return name;
        }
        let mut at = 0;
        for part in parts {
            name.inline[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        name.len = total as u16;
        name
    }

    #[cfg(test)]
    fn is_inline(&self) -> bool {
        self.heap.is_none()
    }
}

impl std::ops::Deref for ComposedName {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.heap {
            Some(name) => name,
            // Whole `str`s joined end to end are UTF-8; the fallback never happens.
            None => std::str::from_utf8(&self.inline[..self.len as usize]).unwrap_or(""),
        }
    }
}

impl std::fmt::Display for ComposedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// The registry of accumulators: one definition per accumulator, keyed by project, scope and
/// name (`engine/src/stored/accumulators.rs` owns it and [`accumulator_tree`]).
pub const ACCUMULATOR_REGISTRY_TREE: &str = "sys:accumulators";

/// The tree of one accumulator's state, delta log, dedupe records and open exposures.
pub fn accumulator_tree(project: &str, scope: &str, name: &str) -> String {
    format!("acc:{project}:{scope}:{name}")
}

/// What a tree holds, read back from its name: the inverse of [`CATALOG_TREE`],
/// [`table_tree`], [`index_tree`] and [`kv_tree`], for tools that meet trees by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind<'a> {
    /// [`CATALOG_TREE`].
    Catalog,
    /// A table's rows ([`table_tree`]).
    Table { table_id: u64 },
    /// A secondary index ([`index_tree`]).
    Index { table_id: u64, index: &'a str },
    /// A scope's KV space ([`kv_tree`]).
    Kv { project: &'a str, scope: &'a str },
    /// An accumulator's state ([`accumulator_tree`]).
    Accumulator {
        project: &'a str,
        scope: &'a str,
        name: &'a str,
    },
    /// Another engine tree, `sys:…` (the idempotency records): its whole name.
    System(&'a str),
    /// A name the engine does not give: as it is.
    Other(&'a str),
}

/// The kind of the tree named `name` (see [`TreeKind`]).
pub fn parse_tree_name(name: &str) -> TreeKind<'_> {
    if name == CATALOG_TREE {
        return TreeKind::Catalog;
    }
    if name.starts_with("sys:") {
        return TreeKind::System(name);
    }
    if let Some(table_id) = name.strip_prefix("t:").and_then(parse_table_id) {
        return TreeKind::Table { table_id };
    }
    if let Some((id, index)) = name
        .strip_prefix("i:")
        .and_then(|rest| rest.split_once(':'))
    {
        if let Some(table_id) = parse_table_id(id) {
            return TreeKind::Index { table_id, index };
        }
    }
    if let Some((project, scope)) = name
        .strip_prefix("kv:")
        .and_then(|rest| rest.split_once(':'))
    {
        return TreeKind::Kv { project, scope };
    }
    if let Some((project, rest)) = name
        .strip_prefix("acc:")
        .and_then(|rest| rest.split_once(':'))
    {
        if let Some((scope, name)) = rest.split_once(':') {
            return TreeKind::Accumulator {
                project,
                scope,
                name,
            };
        }
    }
    TreeKind::Other(name)
}

/// A table id as [`table_tree`] writes it: decimal digits, no sign, no leading zero.
fn parse_table_id(digits: &str) -> Option<u64> {
    let canonical = digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'));
    digits.parse().ok().filter(|_| canonical)
}

/// What a key of [`CATALOG_TREE`] names: the inverse of [`project_key`], [`scope_key`],
/// [`table_key`] and [`NEXT_TABLE_ID_KEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogKey<'a> {
    Project {
        project: &'a str,
    },
    Scope {
        project: &'a str,
        scope: &'a str,
    },
    Table {
        project: &'a str,
        scope: &'a str,
        table: &'a str,
    },
    NextTableId,
    /// A key no catalog entry has (or not UTF-8).
    Other,
}

/// The entry a catalog key names (see [`CatalogKey`]).
pub fn parse_catalog_key(key: &[u8]) -> CatalogKey<'_> {
    if key == NEXT_TABLE_ID_KEY {
        return CatalogKey::NextTableId;
    }
    let Ok(text) = std::str::from_utf8(key) else {
        return CatalogKey::Other;
    };
    let parts: Vec<&str> = text.split('\0').collect();
    match parts.as_slice() {
        ["P", project] => CatalogKey::Project { project },
        ["S", project, scope] => CatalogKey::Scope { project, scope },
        ["T", project, scope, table] => CatalogKey::Table {
            project,
            scope,
            table,
        },
        _ => CatalogKey::Other,
    }
}

/// Encode a catalog entry (postcard: a frozen, documented format; see docs/FORMAT.md).
pub fn encode_entry<T: Serialize>(entry: &T) -> Vec<u8> {
    match postcard::to_stdvec(entry) {
        Ok(bytes) => bytes,
        Err(err) => unreachable!("catalog entries always serialize: {err}"),
    }
}

pub fn decode_entry<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("catalog entry does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(validate_identifier("project_id", "demo-1_x").is_ok());
        assert!(validate_identifier("project_id", "").is_err());
        assert!(validate_identifier("project_id", "a::b").is_err());
        assert!(validate_identifier("project_id", &"x".repeat(129)).is_err());
        assert!(table_key("p", "s", "t").starts_with(&table_prefix("p", "s")));
        for id in [0, 7, 10, 12_345, u64::MAX] {
            assert_eq!(table_tree(id), format!("t:{id}"));
        }
    }

    #[test]
    fn kv_tree_names_inline_or_on_the_heap_spell_the_same_name() {
        let longest = "x".repeat(MAX_IDENTIFIER_BYTES);
        let over = "y".repeat(COMPOSED_INLINE);
        for (project, scope) in [
            ("p1", "s1"),
            ("", ""),
            ("démo", "app"),
            (longest.as_str(), longest.as_str()),
            (over.as_str(), "s"),
        ] {
            let name = kv_tree_name(project, scope);
            assert_eq!(&*name, format!("kv:{project}:{scope}"));
            assert_eq!(kv_tree(project, scope), &*name);
            assert_eq!(
                name.is_inline(),
                project.len() + scope.len() + 4 <= COMPOSED_INLINE
            );
        }
        assert!(kv_tree_name(&longest, &longest).is_inline());
    }

    #[test]
    fn tree_names_parse_back_to_what_built_them() {
        assert_eq!(parse_tree_name(CATALOG_TREE), TreeKind::Catalog);
        for table_id in [0, 7, 10, 12_345, u64::MAX] {
            assert_eq!(
                parse_tree_name(&table_tree(table_id)),
                TreeKind::Table { table_id }
            );
            assert_eq!(
                parse_tree_name(&table_tree_name(table_id)),
                TreeKind::Table { table_id }
            );
            for index in ["by_name", "a-b", "x"] {
                assert_eq!(
                    parse_tree_name(&index_tree(table_id, index)),
                    TreeKind::Index { table_id, index }
                );
            }
        }
        for (project, scope) in [("demo", "app"), ("_system", "x-y"), ("p", "s")] {
            assert_eq!(
                parse_tree_name(&kv_tree(project, scope)),
                TreeKind::Kv { project, scope }
            );
        }
        assert_eq!(
            parse_tree_name(&accumulator_tree("casino", "app", "house_balance-2")),
            TreeKind::Accumulator {
                project: "casino",
                scope: "app",
                name: "house_balance-2"
            }
        );
        assert_eq!(
            parse_tree_name(ACCUMULATOR_REGISTRY_TREE),
            TreeKind::System(ACCUMULATOR_REGISTRY_TREE)
        );
        assert_eq!(
            parse_tree_name("sys:idempotency"),
            TreeKind::System("sys:idempotency")
        );
        for other in [
            "acc:p",
            "acc:p:s",
            "t:",
            "t:x",
            "t:07",
            "t:+7",
            "t:-1",
            "t:18446744073709551616",
            "i:1",
            "i:x:y",
            "kv:p",
            "(tree of trees)",
            "",
        ] {
            assert_eq!(parse_tree_name(other), TreeKind::Other(other), "{other:?}");
        }
    }

    #[test]
    fn catalog_keys_parse_back_to_what_built_them() {
        assert_eq!(
            parse_catalog_key(&project_key("demo")),
            CatalogKey::Project { project: "demo" }
        );
        assert_eq!(
            parse_catalog_key(&scope_key("demo", "app")),
            CatalogKey::Scope {
                project: "demo",
                scope: "app"
            }
        );
        assert_eq!(
            parse_catalog_key(&table_key("demo", "app", "users")),
            CatalogKey::Table {
                project: "demo",
                scope: "app",
                table: "users"
            }
        );
        assert_eq!(
            parse_catalog_key(NEXT_TABLE_ID_KEY),
            CatalogKey::NextTableId
        );
        for other in [
            &b"P"[..],
            b"P\0a\0b",
            b"S\0a",
            b"T\0a\0b",
            b"X\0a",
            b"P\0\xff",
            b"",
        ] {
            assert_eq!(parse_catalog_key(other), CatalogKey::Other, "{other:?}");
        }
    }
}
