//! The two meta pages (page 0 and page 1) that name the newest durable checkpoint.
//!
//! Checkpoint generation `g` is written to page `g % 2`, so the previous checkpoint's meta page
//! stays intact while the new one is written; open picks the valid one with the higher
//! generation. Layout after the common page header (little-endian):
//!
//! | offset | size | field                                                             |
//! |-------:|-----:|-------------------------------------------------------------------|
//! | 24     | 8    | magic `AEDBDATA`                                                  |
//! | 32     | 4    | format version (1)                                                |
//! | 36     | 4    | page size in bytes                                                |
//! | 40     | 8    | checkpoint generation (1 for the meta written at creation)        |
//! | 48     | 8    | commit sequence of the checkpointed version                       |
//! | 56     | 8    | root page of the tree of trees (0: no trees)                      |
//! | 64     | 8    | first free-list page (0: empty free list)                         |
//! | 72     | 8    | number of page ids in the free list                               |
//! | 80     | 8    | page count: pages in use or free; the file holds at least this many |
//! | 88     | 8    | WAL position the checkpoint covers (redo starts after it)          |
//! | 96     | 8    | number of named trees                                              |
//!
//! The header's commit-sequence field (16..24) repeats the checkpoint's sequence.

use std::path::Path;

use crate::error::{PagerError, Result};
use crate::page::{self, try_read_u32, try_read_u64, write_u32, write_u64, PageId, PageType};

pub const MAGIC: &[u8; 8] = b"AEDBDATA";
pub const FORMAT_VERSION: u32 = 1;

// Where each field of the table above sits: written once, for the encoder and both decoders.
const MAGIC_AT: usize = 24;
const VERSION_AT: usize = 32;
const PAGE_SIZE_AT: usize = 36;
const GENERATION_AT: usize = 40;
const SEQ_AT: usize = 48;
const ROOT_AT: usize = 56;
const FREELIST_ROOT_AT: usize = 64;
const FREELIST_LEN_AT: usize = 72;
const PAGE_COUNT_AT: usize = 80;
const WAL_POSITION_AT: usize = 88;
const TREE_COUNT_AT: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    pub page_size: u32,
    pub generation: u64,
    pub seq: u64,
    pub root: PageId,
    pub freelist_root: PageId,
    pub freelist_len: u64,
    pub page_count: u64,
    pub wal_position: u64,
    pub tree_count: u64,
}

impl Meta {
    /// Which of the two meta pages this generation goes to.
    pub fn slot(&self) -> PageId {
        self.generation % 2
    }

    pub fn encode(&self, page: &mut [u8]) {
        page.fill(0);
        page::init_header(page, PageType::Meta, self.slot(), self.seq);
        page[MAGIC_AT..MAGIC_AT + MAGIC.len()].copy_from_slice(MAGIC);
        write_u32(page, VERSION_AT, FORMAT_VERSION);
        write_u32(page, PAGE_SIZE_AT, self.page_size);
        write_u64(page, GENERATION_AT, self.generation);
        write_u64(page, SEQ_AT, self.seq);
        write_u64(page, ROOT_AT, self.root);
        write_u64(page, FREELIST_ROOT_AT, self.freelist_root);
        write_u64(page, FREELIST_LEN_AT, self.freelist_len);
        write_u64(page, PAGE_COUNT_AT, self.page_count);
        write_u64(page, WAL_POSITION_AT, self.wal_position);
        write_u64(page, TREE_COUNT_AT, self.tree_count);
        page::seal(page);
    }

    /// Decode and check the meta page stored in slot `slot`.
    pub fn decode(page: &[u8], slot: PageId) -> Result<Meta> {
        let kind = page::verify(page, slot)?;
        if kind != PageType::Meta {
            return Err(PagerError::WrongPageType {
                page: slot,
                expected: PageType::Meta,
                found: kind as u8,
            });
        }
        // A verified page is at least PAGE_SIZE_MIN bytes: the fields are all there.
        let raw = RawMeta::parse(page)
            .ok_or_else(|| PagerError::corrupt(slot, "meta page shorter than its fields"))?;
        if !raw.magic_ok() {
            return Err(PagerError::corrupt(slot, "bad magic"));
        }
        if raw.version != FORMAT_VERSION {
            return Err(PagerError::corrupt(
                slot,
                format!("unsupported format version {}", raw.version),
            ));
        }
        let meta = raw.fields();
        meta.check(slot)?;
        Ok(meta)
    }

    fn check(&self, slot: PageId) -> Result<()> {
        let bad = |reason: String| Err(PagerError::corrupt(slot, reason));
        if !page::valid_page_size(self.page_size) {
            return bad(format!("invalid page size {}", self.page_size));
        }
        if self.generation % 2 != slot {
            return bad(format!(
                "generation {} stored in slot {slot}",
                self.generation
            ));
        }
        if self.page_count < 2 {
            return bad(format!(
                "page count {} leaves no room for the meta pages",
                self.page_count
            ));
        }
        for (name, id) in [("root", self.root), ("free-list root", self.freelist_root)] {
            if id != 0 && (id < 2 || id >= self.page_count) {
                return bad(format!("{name} {id} outside 2..{}", self.page_count));
            }
        }
        if self.freelist_len > self.page_count {
            return bad(format!(
                "free list of {} pages in a file of {}",
                self.freelist_len, self.page_count
            ));
        }
        Ok(())
    }
}

/// The fields after the common header of a meta page as stored, unchecked: no checksum, type,
/// magic, version or range check. For tools that show a damaged meta page field by field;
/// [`Meta::decode`] reads through it too, then checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawMeta {
    pub magic: [u8; 8],
    pub version: u32,
    pub page_size: u32,
    pub generation: u64,
    pub seq: u64,
    pub root: PageId,
    pub freelist_root: PageId,
    pub freelist_len: u64,
    pub page_count: u64,
    pub wal_position: u64,
    pub tree_count: u64,
}

impl RawMeta {
    /// The meta fields of `page`, whatever they hold; None when it ends before the last field.
    pub fn parse(page: &[u8]) -> Option<RawMeta> {
        let mut magic = [0u8; 8];
        magic.copy_from_slice(page.get(MAGIC_AT..MAGIC_AT + MAGIC.len())?);
        Some(RawMeta {
            magic,
            version: try_read_u32(page, VERSION_AT)?,
            page_size: try_read_u32(page, PAGE_SIZE_AT)?,
            generation: try_read_u64(page, GENERATION_AT)?,
            seq: try_read_u64(page, SEQ_AT)?,
            root: try_read_u64(page, ROOT_AT)?,
            freelist_root: try_read_u64(page, FREELIST_ROOT_AT)?,
            freelist_len: try_read_u64(page, FREELIST_LEN_AT)?,
            page_count: try_read_u64(page, PAGE_COUNT_AT)?,
            wal_position: try_read_u64(page, WAL_POSITION_AT)?,
            tree_count: try_read_u64(page, TREE_COUNT_AT)?,
        })
    }

    /// Just the page-size field (a file with no valid meta page may still name its page size).
    pub fn page_size(page: &[u8]) -> Option<u32> {
        try_read_u32(page, PAGE_SIZE_AT)
    }

    pub fn magic_ok(&self) -> bool {
        &self.magic == MAGIC
    }

    /// The fields as a [`Meta`], not checked.
    fn fields(&self) -> Meta {
        Meta {
            page_size: self.page_size,
            generation: self.generation,
            seq: self.seq,
            root: self.root,
            freelist_root: self.freelist_root,
            freelist_len: self.freelist_len,
            page_count: self.page_count,
            wal_position: self.wal_position,
            tree_count: self.tree_count,
        }
    }
}

/// The bytes of both meta slots, read at offset 0 and at each possible page size.
/// Choose the newest valid meta; name the file when there is none.
pub fn choose(path: &Path, candidates: &[(PageId, Result<Meta>)]) -> Result<Meta> {
    let mut best: Option<Meta> = None;
    let mut reasons = Vec::new();
    for (slot, candidate) in candidates {
        match candidate {
            Ok(meta) if best.is_none_or(|b| meta.generation > b.generation) => best = Some(*meta),
            Ok(_) => {}
            Err(err) => reasons.push(format!("meta page {slot}: {err}")),
        }
    }
    best.ok_or_else(|| PagerError::NoValidMeta {
        path: path.to_path_buf(),
        reason: reasons.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(generation: u64) -> Meta {
        Meta {
            page_size: 4096,
            generation,
            seq: 9,
            root: 5,
            freelist_root: 0,
            freelist_len: 0,
            page_count: 10,
            wal_position: 77,
            tree_count: 1,
        }
    }

    #[test]
    fn round_trip_and_choice() {
        let mut page = vec![0u8; 4096];
        let meta = sample(3);
        meta.encode(&mut page);
        assert_eq!(Meta::decode(&page, 1), Ok(meta));
        assert!(Meta::decode(&page, 0).is_err());
        let newer = sample(4);
        let chosen = choose(Path::new("x"), &[(0, Ok(newer)), (1, Ok(meta))]).unwrap();
        assert_eq!(chosen.generation, 4);
        let broken = choose(
            Path::new("/d/data.aedb"),
            &[
                (0, Err(PagerError::corrupt(0, "x"))),
                (1, Err(PagerError::corrupt(1, "y"))),
            ],
        );
        match broken {
            Err(PagerError::NoValidMeta { path, .. }) => {
                assert_eq!(path, Path::new("/d/data.aedb"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn raw_meta_reads_every_field_the_encoder_wrote() {
        let mut page = vec![0u8; 8192];
        let meta = Meta {
            page_size: 8192,
            generation: 7,
            seq: 11,
            root: 13,
            freelist_root: 17,
            freelist_len: 19,
            page_count: 23,
            wal_position: 29,
            tree_count: 31,
        };
        meta.encode(&mut page);
        let raw = RawMeta::parse(&page).unwrap();
        assert!(raw.magic_ok());
        assert_eq!(raw.version, FORMAT_VERSION);
        assert_eq!(raw.fields(), meta);
        assert_eq!(RawMeta::page_size(&page), Some(8192));
        // Unchecked: a meta page that fails every check still reads.
        page[MAGIC_AT] = b'X';
        page[VERSION_AT] = 9;
        page[4] = PageType::Leaf as u8;
        assert!(Meta::decode(&page, 1).is_err());
        let raw = RawMeta::parse(&page).unwrap();
        assert!(!raw.magic_ok());
        assert_eq!(raw.version, 9);
        assert_eq!(raw.fields(), meta);
    }

    #[test]
    fn raw_meta_of_a_short_buffer_is_none() {
        let mut page = vec![0u8; 4096];
        sample(2).encode(&mut page);
        for len in 0..TREE_COUNT_AT + 8 {
            assert_eq!(RawMeta::parse(&page[..len]), None, "{len} bytes");
            assert!(Meta::decode(&page[..len], 0).is_err());
        }
        assert_eq!(RawMeta::page_size(&page[..PAGE_SIZE_AT + 3]), None);
        assert_eq!(RawMeta::page_size(&page[..PAGE_SIZE_AT + 4]), Some(4096));
        assert_eq!(
            RawMeta::parse(&page[..TREE_COUNT_AT + 8]).map(|r| r.tree_count),
            Some(1)
        );
    }
}
