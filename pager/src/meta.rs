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
use crate::page::{self, read_u32, read_u64, write_u32, write_u64, PageId, PageType};

pub const MAGIC: &[u8; 8] = b"AEDBDATA";
pub const FORMAT_VERSION: u32 = 1;

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
        page[24..32].copy_from_slice(MAGIC);
        write_u32(page, 32, FORMAT_VERSION);
        write_u32(page, 36, self.page_size);
        write_u64(page, 40, self.generation);
        write_u64(page, 48, self.seq);
        write_u64(page, 56, self.root);
        write_u64(page, 64, self.freelist_root);
        write_u64(page, 72, self.freelist_len);
        write_u64(page, 80, self.page_count);
        write_u64(page, 88, self.wal_position);
        write_u64(page, 96, self.tree_count);
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
        if &page[24..32] != MAGIC {
            return Err(PagerError::corrupt(slot, "bad magic"));
        }
        let version = read_u32(page, 32);
        if version != FORMAT_VERSION {
            return Err(PagerError::corrupt(
                slot,
                format!("unsupported format version {version}"),
            ));
        }
        let meta = Meta {
            page_size: read_u32(page, 36),
            generation: read_u64(page, 40),
            seq: read_u64(page, 48),
            root: read_u64(page, 56),
            freelist_root: read_u64(page, 64),
            freelist_len: read_u64(page, 72),
            page_count: read_u64(page, 80),
            wal_position: read_u64(page, 88),
            tree_count: read_u64(page, 96),
        };
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
}
