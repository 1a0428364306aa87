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
//! `overflow.rs`, `alloc.rs` (free-list pages). The checksum is verified on every read from
//! disk and written on every write to disk; in memory it may be stale.

use crate::error::{PagerError, Result};

/// Index of a page in the data file. Page 0 and 1 are the meta pages, so 0 doubles as "none".
pub type PageId = u64;

/// Hashes page ids for the maps and sets keyed by them (the pool's page table, the
/// allocator's private and fresh sets). Page ids are already well-spread integers: one
/// multiply hashes them (SipHash was a fifth of a hot get, and showed in every commit).
pub(crate) type PageIdHash = std::hash::BuildHasherDefault<PageIdHasher>;

#[derive(Default)]
pub(crate) struct PageIdHasher(u64);

impl std::hash::Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | *b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The "no page" value inside page references.
pub const NO_PAGE: PageId = 0;

pub const PAGE_HEADER_BYTES: usize = 24;
// Where each header field sits: written once here, for the encoder, the verifier and the raw
// view alike.
const CRC_AT: usize = 0;
pub(crate) const TYPE_AT: usize = 4;
const RESERVED: std::ops::Range<usize> = 5..8;
const ID_AT: usize = 8;
const SEQ_AT: usize = 16;
/// The checksum covers every byte after its own field.
const CHECKSUMMED_FROM: usize = CRC_AT + 4;
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
    page[..PAGE_HEADER_BYTES].fill(0);
    page[TYPE_AT] = page_type as u8;
    write_u64(page, ID_AT, id);
    write_u64(page, SEQ_AT, seq);
}

pub fn page_type_byte(page: &[u8]) -> u8 {
    page[TYPE_AT]
}

pub fn page_id(page: &[u8]) -> PageId {
    read_u64(page, ID_AT)
}

pub fn set_page_id(page: &mut [u8], id: PageId) {
    write_u64(page, ID_AT, id);
}

pub fn page_seq(page: &[u8]) -> u64 {
    read_u64(page, SEQ_AT)
}

pub fn set_page_seq(page: &mut [u8], seq: u64) {
    write_u64(page, SEQ_AT, seq);
}

/// The checksum the page's bytes call for (what a sealed page stores). Of a buffer too short
/// to hold a checksum, the checksum of nothing.
pub fn checksum(page: &[u8]) -> u32 {
    crc32fast::hash(page.get(CHECKSUMMED_FROM..).unwrap_or(&[]))
}

/// Store the checksum; called on the copy about to be written.
pub fn seal(page: &mut [u8]) {
    let crc = checksum(page);
    write_u32(page, CRC_AT, crc);
}

/// The common header as stored, unchecked: for tools that show a damaged page field by field
/// (and for [`verify`], which judges these same fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub stored_crc: u32,
    /// The checksum of the bytes as they are ([`checksum`]).
    pub computed_crc: u32,
    pub type_byte: u8,
    pub reserved: [u8; 3],
    pub page_id: PageId,
    pub seq: u64,
}

impl RawHeader {
    /// The header fields of `page`, whatever they hold; None when it is shorter than a header.
    pub fn parse(page: &[u8]) -> Option<RawHeader> {
        let header = page.get(..PAGE_HEADER_BYTES)?;
        let mut reserved = [0u8; 3];
        reserved.copy_from_slice(header.get(RESERVED)?);
        Some(RawHeader {
            stored_crc: try_read_u32(header, CRC_AT)?,
            computed_crc: checksum(page),
            type_byte: *header.get(TYPE_AT)?,
            reserved,
            page_id: try_read_u64(header, ID_AT)?,
            seq: try_read_u64(header, SEQ_AT)?,
        })
    }

    pub fn checksum_ok(&self) -> bool {
        self.stored_crc == self.computed_crc
    }

    /// The page type, when the type byte names one.
    pub fn page_type(&self) -> Option<PageType> {
        PageType::from_byte(self.type_byte)
    }
}

/// Check a page read from disk as page `expected`: length, checksum, id and a known type.
pub fn verify(page: &[u8], expected: PageId) -> Result<PageType> {
    let header = RawHeader::parse(page).filter(|_| page.len() >= PAGE_SIZE_MIN as usize);
    let Some(header) = header else {
        return Err(PagerError::corrupt(
            expected,
            format!("page buffer of {} bytes", page.len()),
        ));
    };
    if !header.checksum_ok() {
        return Err(PagerError::Checksum {
            page: expected,
            stored: header.stored_crc,
            computed: header.computed_crc,
        });
    }
    if header.page_id != expected {
        return Err(PagerError::corrupt(
            expected,
            format!(
                "header names page {} (a misdirected write?)",
                header.page_id
            ),
        ));
    }
    header.page_type().ok_or_else(|| {
        PagerError::corrupt(expected, format!("unknown page type {}", header.type_byte))
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

/// [`read_u16`] for bytes that may be short (a damaged or truncated page): None past the end.
pub fn try_read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let raw = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(raw.try_into().ok()?))
}

/// [`read_u32`] for bytes that may be short: None past the end.
pub fn try_read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// [`read_u64`] for bytes that may be short: None past the end.
pub fn try_read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
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

    #[test]
    fn raw_header_reads_what_the_encoder_wrote() {
        let mut page = vec![0u8; 4096];
        init_header(&mut page, PageType::Overflow, 12, 34);
        seal(&mut page);
        let raw = RawHeader::parse(&page).unwrap();
        assert_eq!(raw.type_byte, PageType::Overflow as u8);
        assert_eq!(raw.page_type(), Some(PageType::Overflow));
        assert_eq!(raw.page_id, page_id(&page));
        assert_eq!((raw.page_id, raw.seq), (12, 34));
        assert_eq!(raw.reserved, [0; 3]);
        assert!(raw.checksum_ok());
        // Unchecked: a damaged page still shows its fields, and what its checksum should be.
        page[6] = 0xab;
        page[4] = 99;
        let raw = RawHeader::parse(&page).unwrap();
        assert_eq!((raw.reserved, raw.type_byte), ([0, 0xab, 0], 99));
        assert_eq!(raw.page_type(), None);
        assert!(!raw.checksum_ok());
        assert_eq!(raw.computed_crc, checksum(&page));
    }

    #[test]
    fn raw_header_of_a_short_buffer_is_none() {
        let mut page = vec![0u8; 4096];
        init_header(&mut page, PageType::Leaf, 3, 4);
        for len in 0..PAGE_HEADER_BYTES {
            assert_eq!(RawHeader::parse(&page[..len]), None, "{len} bytes");
            assert!(verify(&page[..len], 3).is_err());
        }
        assert!(RawHeader::parse(&page[..PAGE_HEADER_BYTES]).is_some());
        assert_eq!(try_read_u64(&page, 4090), None);
        assert_eq!(try_read_u32(&page, usize::MAX), None);
        assert_eq!(try_read_u16(&page, 8), Some(3));
    }
}
