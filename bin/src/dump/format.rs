//! The dump file (docs/CLI.md, "Dump format, version 1"):
//!
//! ```text
//! "AEDBDUMP" ‖ version u32 LE (1) ‖ reserved u32 (0)
//! record*    : kind u8 ‖ length u32 LE ‖ payload ‖ CRC32(kind ‖ length ‖ payload) u32 LE
//! trailer    : "AEDBDEND" ‖ SHA-256 of every byte before the trailer
//! ```
//!
//! Records, in this order: one header; per project (by id) its project record, then per scope
//! its scope record, per table (by name) its table record followed by its rows (by primary key),
//! then the scope's KV-space record followed by its entries (by key); one end record.
//! [`DumpWriter`] writes each kind's payload, [`ItemReader`] reads it back and refuses any
//! other order.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aedb::catalog::namespace::{decode_entry, encode_entry, ProjectEntry, ScopeEntry};
use aedb::catalog::rows::decode_row;
use aedb::catalog::schema::TableSchema;
use aedb::catalog::types::Row;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::util::{CliError, Res};

pub const MAGIC: &[u8; 8] = b"AEDBDUMP";
pub const TRAILER_MAGIC: &[u8; 8] = b"AEDBDEND";
pub const VERSION: u32 = 1;
/// The largest record accepted when reading (a row or KV value is at most a few MiB).
const MAX_RECORD_BYTES: u32 = 256 << 20;

pub const KIND_HEADER: u8 = 1;
pub const KIND_PROJECT: u8 = 2;
pub const KIND_SCOPE: u8 = 3;
pub const KIND_TABLE: u8 = 4;
pub const KIND_ROW: u8 = 5;
pub const KIND_KV_SPACE: u8 = 6;
pub const KIND_KV_ENTRY: u8 = 7;
pub const KIND_END: u8 = 0x7f;

/// Writes a dump record by record, hashing every byte.
pub struct DumpWriter {
    path: PathBuf,
    out: BufWriter<File>,
    sha: Sha256,
    bytes: u64,
    records: u64,
}

impl DumpWriter {
    /// A dump written to `file` (at `path`, for errors): the preamble first.
    pub fn new(path: PathBuf, file: File) -> Res<Self> {
        let mut writer = DumpWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            bytes: 0,
            records: 0,
        };
        let mut preamble = Vec::new();
        preamble.extend_from_slice(MAGIC);
        preamble.extend_from_slice(&VERSION.to_le_bytes());
        preamble.extend_from_slice(&0u32.to_le_bytes());
        writer.write(&preamble)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Res<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| CliError::at(&self.path, e))?;
        self.sha.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn record(&mut self, kind: u8, payload: &[u8]) -> Res<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD_BYTES)
            .ok_or_else(|| {
                CliError::at(&self.path, format!("a record of {} bytes", payload.len()))
            })?;
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&len.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(payload);
        self.write(&head)?;
        self.write(payload)?;
        self.write(&crc.finalize().to_le_bytes())?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn header(&mut self, header: &Json) -> Res<()> {
        self.record(KIND_HEADER, header.to_string().as_bytes())
    }

    pub fn project(&mut self, entry: &ProjectEntry) -> Res<()> {
        self.record(KIND_PROJECT, &encode_entry(entry))
    }

    pub fn scope(&mut self, entry: &ScopeEntry) -> Res<()> {
        self.record(KIND_SCOPE, &encode_entry(entry))
    }

    pub fn table(&mut self, schema: &TableSchema) -> Res<()> {
        self.record(KIND_TABLE, &encode_entry(schema))
    }

    /// A row: its encoded primary key and the row encoded in column order.
    pub fn row(&mut self, key: &[u8], encoded_row: &[u8]) -> Res<()> {
        let mut payload = Vec::with_capacity(4 + key.len() + encoded_row.len());
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(encoded_row);
        self.record(KIND_ROW, &payload)
    }

    pub fn kv_space(&mut self, project: &str, scope: &str) -> Res<()> {
        let mut payload = Vec::new();
        for part in [project, scope] {
            payload.extend_from_slice(&(part.len() as u16).to_le_bytes());
            payload.extend_from_slice(part.as_bytes());
        }
        self.record(KIND_KV_SPACE, &payload)
    }

    pub fn kv(&mut self, key: &[u8], version: u64, created_at: u64, value: &[u8]) -> Res<()> {
        let mut payload = Vec::with_capacity(20 + key.len() + value.len());
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(&version.to_le_bytes());
        payload.extend_from_slice(&created_at.to_le_bytes());
        payload.extend_from_slice(value);
        self.record(KIND_KV_ENTRY, &payload)
    }

    /// The end record and the trailer; the file synced. Its size in bytes.
    pub fn finish(mut self, end: &Json) -> Res<u64> {
        self.record(KIND_END, end.to_string().as_bytes())?;
        let digest: [u8; 32] = self.sha.clone().finalize().into();
        self.write(TRAILER_MAGIC)?;
        self.write(&digest)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| CliError::at(&self.path, e.error()))?;
        file.sync_all().map_err(|e| CliError::at(&self.path, e))?;
        Ok(self.bytes)
    }
}

/// One record read back, with where it was.
pub struct Record {
    pub kind: u8,
    pub payload: Vec<u8>,
    pub index: u64,
    pub offset: u64,
}

/// Reads a dump record by record, checking every CRC, and the trailer's SHA-256 at the end.
pub struct DumpReader {
    path: PathBuf,
    input: BufReader<File>,
    sha: Sha256,
    offset: u64,
    records: u64,
    done: bool,
}

impl DumpReader {
    pub fn open(path: &Path) -> Res<Self> {
        let file = File::open(path).map_err(|e| {
            CliError::at(path, e).hint("--dump names a file written by `aedb dump export`")
        })?;
        let mut reader = DumpReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
            sha: Sha256::new(),
            offset: 0,
            records: 0,
            done: false,
        };
        let mut preamble = [0u8; 16];
        reader.read_exact(&mut preamble, "the file header")?;
        if &preamble[..8] != MAGIC {
            return Err(CliError::at(path, "not an aedb dump (bad magic)")
                .hint("--dump names a file written by `aedb dump export`"));
        }
        let version = u32::from_le_bytes([preamble[8], preamble[9], preamble[10], preamble[11]]);
        if version != VERSION {
            return Err(CliError::at(
                path,
                format!("dump format version {version}; this tool reads version {VERSION}"),
            ));
        }
        Ok(reader)
    }

    fn bad(&self, what: impl std::fmt::Display) -> CliError {
        CliError::at(&self.path, format!("damaged dump: {what}"))
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Res<()> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.bad(format!(
                    "the file ends inside {what} at offset {} (truncated?)",
                    self.offset
                ))
            } else {
                CliError::at(&self.path, e)
            }
        })?;
        self.sha.update(&*buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next record; None after the end record and a verified trailer.
    pub fn next_record(&mut self) -> Res<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let offset = self.offset;
        let index = self.records;
        let mut head = [0u8; 5];
        self.read_exact(&mut head, &format!("record {index}"))?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_RECORD_BYTES {
            return Err(self.bad(format!(
                "record {index} at offset {offset} claims {len} bytes"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        self.read_exact(&mut payload, &format!("record {index}"))?;
        let mut crc = [0u8; 4];
        self.read_exact(&mut crc, &format!("record {index}"))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        if u32::from_le_bytes(crc) != hasher.finalize() {
            return Err(self.bad(format!(
                "record {index} (kind {}) at offset {offset}: checksum mismatch",
                head[0]
            )));
        }
        self.records += 1;
        if head[0] == KIND_END {
            let expected: [u8; 32] = self.sha.clone().finalize().into();
            let mut trailer = [0u8; 40];
            self.read_exact(&mut trailer, "the trailer")?;
            if &trailer[..8] != TRAILER_MAGIC {
                return Err(self.bad("the trailer's magic is wrong"));
            }
            if trailer[8..] != expected {
                return Err(self.bad("the SHA-256 of the file does not match its trailer"));
            }
            let mut rest = [0u8; 1];
            if self
                .input
                .read(&mut rest)
                .map_err(|e| CliError::at(&self.path, e))?
                != 0
            {
                return Err(self.bad("bytes after the trailer"));
            }
            self.done = true;
        }
        Ok(Some(Record {
            kind: head[0],
            payload,
            index,
            offset,
        }))
    }
}

/// A decoded dump record.
pub enum Item {
    Header(Json),
    Project(ProjectEntry),
    Scope(ScopeEntry),
    Table(TableSchema),
    Row {
        key: Vec<u8>,
        row: Row,
        encoded: Vec<u8>,
    },
    KvSpace {
        project: String,
        scope: String,
    },
    Kv {
        key: Vec<u8>,
        version: u64,
        created_at: u64,
        value: Vec<u8>,
    },
    End(Json),
}

fn split_u32(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let key = bytes.get(4..4 + len)?;
    Some((key, &bytes[4 + len..]))
}

fn split_u16(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
    let text = String::from_utf8(bytes.get(2..2 + len)?.to_vec()).ok()?;
    Some((text, &bytes[2 + len..]))
}

/// Reads items and checks their order: the grammar of the format.
pub struct ItemReader {
    reader: DumpReader,
    state: Grammar,
}

#[derive(Default)]
struct Grammar {
    header: bool,
    project: Option<String>,
    scope: Option<(String, String)>,
    table: Option<TableSchema>,
    kv: bool,
    end: bool,
}

impl ItemReader {
    pub fn open(path: &Path) -> Res<Self> {
        Ok(ItemReader {
            reader: DumpReader::open(path)?,
            state: Grammar::default(),
        })
    }

    pub fn next_item(&mut self) -> Res<Option<Item>> {
        let Some(record) = self.reader.next_record()? else {
            if !self.state.end {
                return Err(self.reader.bad("no end record"));
            }
            return Ok(None);
        };
        let at = format!(
            "record {} (kind {}) at offset {}",
            record.index, record.kind, record.offset
        );
        let bad = |what: &str| self_bad(&self.reader.path, &at, what);
        let g = &mut self.state;
        if g.end {
            return Err(bad("a record after the end record"));
        }
        if !g.header && record.kind != KIND_HEADER {
            return Err(bad("the first record is not a header"));
        }
        let item = match record.kind {
            KIND_HEADER => {
                if g.header {
                    return Err(bad("a second header"));
                }
                g.header = true;
                Item::Header(
                    serde_json::from_slice(&record.payload).map_err(|e| bad(&e.to_string()))?,
                )
            }
            KIND_PROJECT => {
                let p: ProjectEntry = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                g.project = Some(p.project_id.clone());
                g.scope = None;
                g.table = None;
                g.kv = false;
                Item::Project(p)
            }
            KIND_SCOPE => {
                let s: ScopeEntry = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                if g.project.as_deref() != Some(s.project_id.as_str()) {
                    return Err(bad("a scope outside its project"));
                }
                g.scope = Some((s.project_id.clone(), s.scope_id.clone()));
                g.table = None;
                g.kv = false;
                Item::Scope(s)
            }
            KIND_TABLE => {
                let t: TableSchema = decode_entry(&record.payload).map_err(|e| bad(&e))?;
                if g.scope.as_ref() != Some(&(t.project_id.clone(), t.scope_id.clone())) || g.kv {
                    return Err(bad("a table outside its scope"));
                }
                g.table = Some(t.clone());
                Item::Table(t)
            }
            KIND_ROW => {
                if g.table.is_none() || g.kv {
                    return Err(bad("a row outside a table"));
                }
                let (key, encoded) =
                    split_u32(&record.payload).ok_or_else(|| bad("short row record"))?;
                let row = decode_row(encoded).map_err(|e| bad(&e.to_string()))?;
                Item::Row {
                    key: key.to_vec(),
                    row,
                    encoded: encoded.to_vec(),
                }
            }
            KIND_KV_SPACE => {
                let (project, rest) =
                    split_u16(&record.payload).ok_or_else(|| bad("short KV space record"))?;
                let (scope, _) = split_u16(rest).ok_or_else(|| bad("short KV space record"))?;
                if g.scope.as_ref() != Some(&(project.clone(), scope.clone())) || g.kv {
                    return Err(bad("a KV space outside its scope"));
                }
                g.table = None;
                g.kv = true;
                Item::KvSpace { project, scope }
            }
            KIND_KV_ENTRY => {
                if !g.kv {
                    return Err(bad("a KV entry outside a KV space"));
                }
                let (key, rest) =
                    split_u32(&record.payload).ok_or_else(|| bad("short KV record"))?;
                if rest.len() < 16 {
                    return Err(bad("short KV record"));
                }
                let mut v = [0u8; 8];
                v.copy_from_slice(&rest[..8]);
                let mut c = [0u8; 8];
                c.copy_from_slice(&rest[8..16]);
                Item::Kv {
                    key: key.to_vec(),
                    version: u64::from_le_bytes(v),
                    created_at: u64::from_le_bytes(c),
                    value: rest[16..].to_vec(),
                }
            }
            KIND_END => {
                g.end = true;
                Item::End(serde_json::from_slice(&record.payload).map_err(|e| bad(&e.to_string()))?)
            }
            other => return Err(bad(&format!("unknown record kind {other}"))),
        };
        Ok(Some(item))
    }
}

fn self_bad(path: &Path, at: &str, what: &str) -> CliError {
    CliError::at(path, format!("damaged dump: {at}: {what}"))
}
