//! Reading a database directory without the engine: the data file's pages as raw bytes (opened
//! read-only, never locked, never written) and both meta pages decoded field by field.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aedb::{DATA_FILE, WAL_DIR};
use aedb_pager::io::{os_vfs, IoBackendChoice, OpenOptions};
use aedb_pager::meta::{Meta, RawMeta};
use aedb_pager::page::{self, valid_page_size, PageId, RawHeader, PAGE_SIZE_MAX, PAGE_SIZE_MIN};
use aedb_pager::pool::BufferPool;
use aedb_pager::PagerError;

use crate::util::{CliError, Res};

/// Check that `dir` is a database directory; the path of its data file.
pub fn data_file_path(dir: &Path) -> Res<PathBuf> {
    let hint = "pass --data-dir the directory that holds data.aedb and wal/";
    if !dir.exists() {
        return Err(CliError::at(dir, "no such directory").hint(hint));
    }
    if !dir.is_dir() {
        return Err(CliError::at(dir, "not a directory").hint(hint));
    }
    let path = dir.join(DATA_FILE);
    if !path.is_file() {
        return Err(CliError::at(
            &path,
            format!(
                "not found: {} is not an aedb database directory",
                dir.display()
            ),
        )
        .hint(hint));
    }
    Ok(path)
}

pub fn wal_dir(dir: &Path) -> PathBuf {
    dir.join(WAL_DIR)
}

/// The data file, opened read-only.
pub struct DataFile {
    pub path: PathBuf,
    file: File,
    pub len: u64,
}

impl DataFile {
    pub fn open(dir: &Path) -> Res<Self> {
        let path = data_file_path(dir)?;
        let file = File::open(&path).map_err(|e| CliError::at(&path, e))?;
        let len = file.metadata().map_err(|e| CliError::at(&path, e))?.len();
        Ok(DataFile { path, file, len })
    }

    /// `len` bytes at `offset`, or an error naming the file when they are not all there.
    pub fn read_at(&self, offset: u64, len: usize) -> Res<Vec<u8>> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(CliError::at(
                &self.path,
                format!(
                    "{len} bytes at offset {offset} are beyond the end of the file ({} bytes)",
                    self.len
                ),
            ));
        }
        let mut buf = vec![0u8; len];
        read_exact_at(&self.file, &mut buf, offset).map_err(|e| CliError::at(&self.path, e))?;
        Ok(buf)
    }

    /// Page `id` as raw bytes (not verified).
    pub fn page(&self, id: PageId, page_size: usize) -> Res<Vec<u8>> {
        let offset = id
            .checked_mul(page_size as u64)
            .ok_or_else(|| CliError::at(&self.path, format!("page {id} is beyond any file")))?;
        if offset >= self.len {
            return Err(CliError::at(
                &self.path,
                format!(
                    "page {id} is beyond the end of the file ({} pages of {page_size} bytes)",
                    self.len / page_size as u64
                ),
            ));
        }
        self.read_at(offset, page_size)
    }

    /// Page `id`, verified (checksum, id, known type); the pager's error otherwise.
    pub fn verified_page(&self, id: PageId, page_size: usize) -> Result<Vec<u8>, String> {
        let buf = self.page(id, page_size).map_err(|e| e.message)?;
        page::verify(&buf, id).map_err(|e| e.to_string())?;
        Ok(buf)
    }

    pub fn pages(&self, page_size: usize) -> u64 {
        self.len / page_size as u64
    }

    /// A buffer pool over the file, opened read-only through the pager's I/O layer: for the
    /// pager's own readers (its checker, its B+tree lookups and cursors).
    pub fn pool(&self, page_size: usize) -> Res<Arc<BufferPool>> {
        let at = |e: &dyn std::fmt::Display| CliError::at(&self.path, e);
        let vfs = os_vfs(IoBackendChoice::Sync).map_err(|e| at(&e))?;
        let options = OpenOptions {
            create: false,
            read_only: true,
            direct: false,
        };
        let file = vfs.open(&self.path, options).map_err(|e| at(&e))?;
        let pool = BufferPool::new(file, page_size, 64 * page_size as u64).map_err(|e| at(&e))?;
        Ok(Arc::new(pool.with_read_only(true)))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// A meta page's fields as stored, whether or not they verify (decoded by the pager's raw
/// views: the layout is the pager's alone).
#[derive(Debug, Clone)]
pub struct RawSlot {
    pub header: RawHeader,
    pub meta: RawMeta,
    pub all_zero: bool,
}

impl RawSlot {
    /// None when `bytes` end before the meta page's last field.
    pub fn read(bytes: &[u8]) -> Option<RawSlot> {
        Some(RawSlot {
            header: RawHeader::parse(bytes)?,
            meta: RawMeta::parse(bytes)?,
            all_zero: bytes.iter().all(|b| *b == 0),
        })
    }
}

/// One meta slot as read at the file's page size.
#[derive(Debug, Clone)]
pub struct Slot {
    pub slot: u64,
    /// None when the file is too short to hold it.
    pub raw: Option<RawSlot>,
    pub verdict: Result<Meta, String>,
}

/// Both meta pages, and which one opening the file uses.
#[derive(Debug, Clone)]
pub struct MetaState {
    pub page_size: u32,
    /// Whether the page size comes from a valid meta page (else it is a guess).
    pub page_size_known: bool,
    pub slots: Vec<Slot>,
    pub current: Option<Meta>,
    pub why: String,
}

impl MetaState {
    /// A damage line for each meta slot that does not verify (on a file that has been
    /// checkpointed even once, both slots always hold a valid meta page).
    pub fn damage(&self, path: &Path) -> Vec<String> {
        self.slots
            .iter()
            .filter_map(|s| {
                s.verdict.as_ref().err().map(|reason| {
                    format!(
                        "{}: meta page {} is invalid: {reason}",
                        path.display(),
                        s.slot
                    )
                })
            })
            .collect()
    }

    /// The current meta, or an error naming the file with a hint.
    pub fn require(&self, path: &Path) -> Res<Meta> {
        self.current.ok_or_else(|| {
            CliError::at(path, format!("no valid meta page: {}", self.why))
                .hint("`aedb meta --data-dir DIR` shows both meta pages field by field")
        })
    }
}

fn verdict_at(bytes: &[u8], slot: u64, size: u32) -> Result<Meta, String> {
    let decoded = Meta::decode(bytes, slot).map_err(|e| describe_pager_error(&e, bytes))?;
    if decoded.page_size != size {
        return Err(format!(
            "stores page size {} but was read at page size {size}",
            decoded.page_size
        ));
    }
    Ok(decoded)
}

fn describe_pager_error(err: &PagerError, bytes: &[u8]) -> String {
    let text = err.to_string();
    if bytes.iter().all(|b| *b == 0) {
        format!("{text} (the page is all zeros)")
    } else {
        text
    }
}

/// Read both meta pages the way opening does: at every possible page size, the valid one
/// with the larger generation wins.
pub fn read_metas(df: &DataFile) -> Res<MetaState> {
    let mut best: Option<Meta> = None;
    let mut size = PAGE_SIZE_MIN;
    while size <= PAGE_SIZE_MAX {
        for slot in 0..2u64 {
            let offset = slot * size as u64;
            if offset + size as u64 > df.len {
                continue;
            }
            let bytes = df.read_at(offset, size as usize)?;
            if let Ok(meta) = verdict_at(&bytes, slot, size) {
                if best.is_none_or(|b| meta.generation > b.generation) {
                    best = Some(meta);
                }
            }
        }
        size *= 2;
    }
    let (page_size, known) = match best {
        Some(meta) => (meta.page_size, true),
        None => (guess_page_size(df), false),
    };
    let mut slots = Vec::new();
    for slot in 0..2u64 {
        let offset = slot * page_size as u64;
        if offset + page_size as u64 > df.len {
            slots.push(Slot {
                slot,
                raw: None,
                verdict: Err(format!(
                    "the file ({} bytes) ends before it (page size {page_size})",
                    df.len
                )),
            });
            continue;
        }
        let bytes = df.read_at(offset, page_size as usize)?;
        slots.push(Slot {
            slot,
            raw: RawSlot::read(&bytes),
            verdict: verdict_at(&bytes, slot, page_size),
        });
    }
    let why = match (&slots[0].verdict, &slots[1].verdict) {
        (Ok(a), Ok(b)) => {
            let (newer, older) = if a.generation > b.generation {
                (a, b)
            } else {
                (b, a)
            };
            format!(
                "both meta pages are valid; page {} has the newer checkpoint (generation {} > {})",
                newer.slot(),
                newer.generation,
                older.generation
            )
        }
        (Ok(a), Err(e)) | (Err(e), Ok(a)) => format!(
            "meta page {} is the only valid one (generation {}); the other is invalid: {e}",
            a.slot(),
            a.generation
        ),
        (Err(a), Err(b)) => format!("meta page 0: {a}; meta page 1: {b}"),
    };
    let current = match best {
        Some(meta) if meta.page_size == page_size => Some(meta),
        _ => None,
    };
    Ok(MetaState {
        page_size,
        page_size_known: known,
        slots,
        current,
        why,
    })
}

/// With no valid meta page: the page size field of either slot when it is plausible.
fn guess_page_size(df: &DataFile) -> u32 {
    df.read_at(0, PAGE_SIZE_MIN as usize)
        .ok()
        .and_then(|bytes| RawMeta::page_size(&bytes))
        .filter(|size| valid_page_size(*size))
        .unwrap_or(PAGE_SIZE_MIN)
}
