//! What every command shares: errors with a path and a hint, the output context (human or
//! `--json`), aligned tables, progress bars, and the rendering of values and keys.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use aedb::catalog::keys::decode_key;
use aedb::catalog::namespace::{parse_tree_name, TreeKind};
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Value;
use aedb::stored::idempotency::{IDEMPOTENCY_BY_SEQ_TREE, IDEMPOTENCY_TREE};
use serde_json::{json, Value as Json};

/// A failure that ends a command: what went wrong (naming the path involved) and, when there
/// is one, what to try next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    /// The reader of our output went away (`| head`): stop without a word.
    pub quiet: bool,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
            quiet: false,
        }
    }

    /// An error about `path`.
    pub fn at(path: &Path, message: impl std::fmt::Display) -> Self {
        CliError::new(format!("{}: {message}", path.display()))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for CliError {
    /// Only for writing the command's own output (stdout, stderr).
    fn from(err: std::io::Error) -> Self {
        let mut e = CliError::new(format!("cannot write the output: {err}"));
        e.quiet = err.kind() == std::io::ErrorKind::BrokenPipe;
        e
    }
}

pub type Res<T> = Result<T, CliError>;

/// Exit status of a command that ran to the end: 0, or 1 when it found damage, violations or
/// a mismatch (and reported them).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FOUND: i32 = 1;
/// A command that could not run (bad arguments are clap's 2).
pub const EXIT_ERROR: i32 = 1;

/// Where a command writes, and how.
pub struct Ctx<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// `--json`: one JSON document on stdout instead of the human form.
    pub json: bool,
    /// Draw progress bars (stdout is a terminal and not `--json`).
    pub progress: bool,
    /// Stdout is a terminal (colours are welcome).
    pub tty: bool,
    /// Damage noticed along the way (reported on stderr at the end; the exit status becomes 1).
    pub damage: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// `terminal`: stdout is a terminal (progress bars, colours).
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write, json: bool, terminal: bool) -> Self {
        Ctx {
            out,
            err,
            json,
            progress: terminal && !json,
            tty: terminal && !json,
            damage: Vec::new(),
        }
    }

    pub fn print_json(&mut self, value: &Json) -> Res<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::new(format!("cannot render JSON: {e}")))?;
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    pub fn line(&mut self, text: impl std::fmt::Display) -> Res<()> {
        writeln!(self.out, "{text}")?;
        Ok(())
    }

    pub fn damage(&mut self, what: impl Into<String>) {
        self.damage.push(what.into());
    }

    pub fn progress(&self, len: u64, what: &str) -> Progress {
        Progress::new(self.progress, len, what)
    }
}

/// A progress bar on stderr, or nothing (not a terminal, `--json`, tests).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool, len: u64, what: &str) -> Self {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = if len == 0 {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::new(len)
        };
        let style =
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
                .map(|s| s.progress_chars("=> "));
        if let (Ok(style), true) = (style, len > 0) {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        Progress { bar: Some(bar) }
    }

    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn set_length(&self, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A table printed with aligned columns; numbers (cells that parse as such) align right.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
    text_columns: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            text_columns: Vec::new(),
        }
    }

    /// Align this column left even when its cells look like numbers (hex digits).
    pub fn text_column(mut self, column: usize) -> Self {
        self.text_columns.push(column);
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push((cells, Vec::new()));
    }

    /// Lines printed under the last row (indented, outside the columns).
    pub fn note(&mut self, line: String) {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.push(line);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        let mut numeric: Vec<bool> = (0..columns)
            .map(|i| !self.text_columns.contains(&i))
            .collect();
        for (cells, _) in &self.rows {
            for (i, cell) in cells.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
                if !cell.is_empty() && !looks_numeric(cell) {
                    numeric[i] = false;
                }
            }
        }
        let mut out = String::new();
        let render_line = |out: &mut String, cells: &[String], header: bool| {
            let mut line = String::new();
            for i in 0..columns {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if numeric[i] && (!header || !self.rows.is_empty()) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < columns {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        render_line(&mut out, &self.headers, true);
        for (cells, notes) in &self.rows {
            render_line(&mut out, cells, false);
            for note in notes {
                let _ = writeln!(out, "    {note}");
            }
        }
        out
    }
}

fn looks_numeric(cell: &str) -> bool {
    let cell = cell.trim_end_matches('%');
    !cell.is_empty()
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && cell.chars().any(|c| c.is_ascii_digit())
}

/// `key  value` lines, keys padded to one width (no newline after the last).
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let lines: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}").trim_end().to_string())
        .collect();
    lines.join("\n")
}

/// What the engine says went wrong, without its category: a damaged page or entry in the
/// pager's or the decoder's own words (`page 56: checksum mismatch …`).
pub fn engine_detail(err: &aedb::AedbError) -> String {
    match err {
        aedb::AedbError::Corruption(message) | aedb::AedbError::DataCorruption { message, .. } => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// Bytes given in hexadecimal (an optional `0x` first), e.g. a key or a key prefix.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not hexadecimal ({c:?} is not a hex digit)"
        ));
    }
    hex::decode(digits).map_err(|_| format!("{text:?} has an odd number of hex digits"))
}

/// A 32-byte key given as 64 hex digits.
pub fn parse_key32(text: &str) -> Result<[u8; 32], String> {
    let bytes = parse_hex(text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "a key is 32 bytes (64 hex digits), this one has {}",
            bytes.len()
        )
    })
}

/// Bytes as text when they are printable ASCII, else as hex.
pub fn printable(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!("0x{}", hex::encode(bytes))
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "-".into();
    }
    format!("{:.0}%", 100.0 * part / whole)
}

/// A value as a table cell.
pub fn fmt_value(value: &Value) -> String {
    match value {
        Value::Text(s) | Value::Json(s) => escape_controls(s),
        Value::U8(v) => v.to_string(),
        Value::U64(v) => v.to_string(),
        Value::Integer(v) | Value::Timestamp(v) => v.to_string(),
        Value::Float(v) => format!("{v:?}"),
        Value::Boolean(v) => v.to_string(),
        Value::U256(v) | Value::I256(v) => format!("0x{}", hex::encode(v)),
        Value::Blob(v) => format!("0x{}", hex::encode(v)),
        Value::Null => "NULL".into(),
    }
}

/// Text with control characters escaped (`\0`, `\n`, …), so that a cell stays one cell.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value inside a key tuple: text quoted, the kind named where it is not obvious.
pub fn fmt_key_value(value: &Value) -> String {
    match value {
        Value::Text(s) => format!("{s:?}"),
        Value::Json(s) => format!("json {s:?}"),
        Value::U8(v) => format!("u8 {v}"),
        Value::U64(v) => format!("u64 {v}"),
        Value::Timestamp(v) => format!("ts {v}"),
        Value::U256(_) => format!("u256 {}", fmt_value(value)),
        Value::I256(_) => format!("i256 {}", fmt_value(value)),
        Value::Blob(_) => format!("blob {}", fmt_value(value)),
        other => fmt_value(other),
    }
}

/// A value in `--json` output: numbers as numbers, wide integers and bytes as hex strings.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Text(s) | Value::Json(s) => json!(s),
        Value::U8(v) => json!(v),
        Value::U64(v) => json!(v),
        Value::Integer(v) | Value::Timestamp(v) => json!(v),
        Value::Float(v) if v.is_finite() => json!(v),
        Value::Float(v) => json!(format!("{v:?}")),
        Value::Boolean(v) => json!(v),
        Value::U256(_) | Value::I256(_) | Value::Blob(_) => json!(fmt_value(value)),
        Value::Null => Json::Null,
    }
}

/// A key of the named tree, decoded the way that tree encodes its keys.
pub fn fmt_tree_key(tree: &str, key: &[u8]) -> String {
    if tree == TREE_OF_TREES {
        return format!("{:?}", String::from_utf8_lossy(key));
    }
    match parse_tree_name(tree) {
        TreeKind::Table { .. } | TreeKind::Index { .. } => fmt_encoded_key(key),
        TreeKind::Catalog => printable_catalog_key(key),
        _ => printable(key),
    }
}

/// An encoded key tuple (a primary key, an index entry) as `(v1, v2, …)`, else as hex.
pub fn fmt_encoded_key(key: &[u8]) -> String {
    if key.is_empty() {
        return "()".into();
    }
    match decode_key(key) {
        Ok(values) => {
            let parts: Vec<String> = values.iter().map(fmt_key_value).collect();
            format!("({})", parts.join(", "))
        }
        Err(_) => format!("0x{}", hex::encode(key)),
    }
}

/// What a named tree holds, in words, from its name and the catalog's `tables` (by id).
pub fn describe_tree(tree: &str, tables: &HashMap<u64, TableSchema>) -> String {
    if tree == TREE_OF_TREES {
        return "names every other tree".into();
    }
    let table = |id: u64| {
        tables
            .get(&id)
            .map(|s| format!("{}/{}/{}", s.project_id, s.scope_id, s.table_name))
    };
    match parse_tree_name(tree) {
        TreeKind::Catalog => "catalog".into(),
        TreeKind::System(IDEMPOTENCY_TREE) => "idempotency records".into(),
        TreeKind::System(IDEMPOTENCY_BY_SEQ_TREE) => "idempotency records by age".into(),
        TreeKind::Table { table_id } => match table(table_id) {
            Some(name) => format!("table {name}"),
            None => format!("table id {table_id} (not in the catalog)"),
        },
        TreeKind::Index { table_id, index } => match table(table_id) {
            Some(name) => format!("index {index} of {name}"),
            None => format!("index {index} of table id {table_id} (not in the catalog)"),
        },
        TreeKind::Kv { project, scope } => format!("KV space {project}/{scope}"),
        TreeKind::Accumulator {
            project,
            scope,
            name,
        } => format!("accumulator {project}/{scope}/{name}"),
        TreeKind::System(_) | TreeKind::Other(_) => String::new(),
    }
}

/// The name under which the tree of trees appears in the debugging commands.
pub const TREE_OF_TREES: &str = "(tree of trees)";

/// Catalog keys are `P\0project`, `S\0project\0scope`, … : show the NULs as `/`.
pub fn printable_catalog_key(key: &[u8]) -> String {
    let text: String = key
        .iter()
        .map(|&b| match b {
            0 => '/',
            0x20..=0x7e => b as char,
            _ => '?',
        })
        .collect();
    format!("{text:?}")
}

/// Shorten long renderings (keys in listings).
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["long".into(), "100".into()]);
        assert_eq!(t.render(), "NAME    N\na       1\nlong  100\n");
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(parse_hex("0x00ff10"), Ok(vec![0, 255, 16]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(parse_hex(""), Ok(vec![]));
        for text in ["aé0", "é", "0xé1", "ab\u{1F600}"] {
            let err = parse_hex(text).expect_err(text);
            assert!(err.contains("is not a hex digit"), "{text:?}: {err}");
        }
        assert_eq!(hex::encode([1, 0xab]), "01ab");
    }
}
