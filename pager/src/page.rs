//! The page: the unit of the data file, of the buffer pool and of every I/O.
//!
//! Every page starts with this 24-byte header (little-endian):
//!
//! | offset | size | field                                                              |
//! |-------:|-----:|--------------------------------------------------------------------|
//! | 0      | 4    | CRC32 (crc32fast, IEEE) of bytes 4..page_size                       |
//! | 4      | 1    | page type ([`PageType`])                                           |
//! | 5      | 3    | reserved, zero                                                     |
//! | 8      | 8    | page id: the page's own index in the file (offset = id × page size) |
//! | 16     | 8    | commit sequence of the version that wrote this page (diagnostics)   |
//!
//! The layout of bytes 24.. belongs to the page type: `meta.rs`, `btree/node.rs`,
//! `overflow.rs`, `freelist.rs`. The checksum is verified on every read from disk and written
//! on every write to disk; in memory it may be stale.

use crate::error::{PagerError, Result};

/// Index of a page in the data file. Page 0 and 1 are the meta pages, so 0 doubles as "none".
pub type PageId = u64;

/// The "no page" value inside page references.
pub const NO_PAGE: PageId = 0;

pub const PAGE_HEADER_BYTES: usize = 24;
pub const PAGE_SIZE_MIN: u32 = 4096;
pub const PAGE_SIZE_MAX: u32 = 65536;
/// Chosen by measurement: see docs/BENCHMARKS.md ("page size").
pub const PAGE_SIZE_DEFAULT: u32 = 8192;

const _: () = assert!(PAGE_SIZE_MIN.is_multiple_of(512));
const _: () = assert!(PAGE_SIZE_DEFAULT.is_power_of_two());
const _: () = assert!(PAGE_SIZE_DEFAULT >= PAGE_SIZE_MIN && PAGE_SIZE_DEFAULT <= PAGE_SIZE_MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageType {
    Meta = 1,
    Branch = 2,
    Leaf = 3,
    Overflow = 4,
    FreeList = 5,
}

impl PageType {
    pub fn from_byte(byte: u8) -> Option<PageType> {
        match byte {
            1 => Some(PageType::Meta),
            2 => Some(PageType::Branch),
            3 => Some(PageType::Leaf),
            4 => Some(PageType::Overflow),
            5 => Some(PageType::FreeList),
            _ => None,
        }
    }
}

pub fn valid_page_size(size: u32) -> bool {
    size.is_power_of_two() && (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&size)
}

/// Write a fresh header (and zero the rest of the header).
pub fn init_header(page: &mut [u8], page_type: PageType, id: PageId, seq: u64) {
    page[0..24].fill(0);
    page[4] = page_type as u8;
    page[8..16].copy_from_slice(&id.to_le_bytes());
    page[16..24].copy_from_slice(&seq.to_le_bytes());
}

pub fn page_type_byte(page: &[u8]) -> u8 {
    page[4]
}

pub fn page_id(page: &[u8]) -> PageId {
    read_u64(page, 8)
}

pub fn set_page_id(page: &mut [u8], id: PageId) {
    page[8..16].copy_from_slice(&id.to_le_bytes());
}

pub fn page_seq(page: &[u8]) -> u64 {
    read_u64(page, 16)
}

pub fn set_page_seq(page: &mut [u8], seq: u64) {
    page[16..24].copy_from_slice(&seq.to_le_bytes());
}

fn compute_checksum(page: &[u8]) -> u32 {
    crc32fast::hash(&page[4..])
}

/// Store the checksum; called on the copy about to be written.
pub fn seal(page: &mut [u8]) {
    let crc = compute_checksum(page);
    page[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Check a page read from disk as page `expected`: length, checksum, id and a known type.
pub fn verify(page: &[u8], expected: PageId) -> Result<PageType> {
    if page.len() < PAGE_SIZE_MIN as usize {
        return Err(PagerError::corrupt(
            expected,
            format!("page buffer of {} bytes", page.len()),
        ));
    }
    let stored = read_u32(page, 0);
    let computed = compute_checksum(page);
    if stored != computed {
        return Err(PagerError::Checksum {
            page: expected,
            stored,
            computed,
        });
    }
    let id = page_id(page);
    if id != expected {
        return Err(PagerError::corrupt(
            expected,
            format!("header names page {id} (a misdirected write?)"),
        ));
    }
    PageType::from_byte(page_type_byte(page)).ok_or_else(|| {
        PagerError::corrupt(
            expected,
            format!("unknown page type {}", page_type_byte(page)),
        )
    })
}

pub fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

pub fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

pub fn write_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_verifies_and_any_flip_is_caught() {
        let mut page = vec![0u8; 4096];
        init_header(&mut page, PageType::Leaf, 7, 3);
        page[100] = 42;
        seal(&mut page);
        assert_eq!(verify(&page, 7), Ok(PageType::Leaf));
        assert!(matches!(
            verify(&page, 8),
            Err(PagerError::Corrupt { page: 8, .. })
        ));
        for byte in [0usize, 4, 9, 100, 4095] {
            let mut bad = page.clone();
            bad[byte] ^= 0x10;
            assert!(verify(&bad, 7).is_err(), "flip at {byte} undetected");
        }
        assert!(
            verify(&[0u8; 4096], 5).is_err(),
            "a never-written page must not verify"
        );
    }
}
