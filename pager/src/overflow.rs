//! Overflow chains: values too large to sit in a leaf cell.
//!
//! Layout after the common header (little-endian):
//!
//! | offset | size | field                                  |
//! |-------:|-----:|----------------------------------------|
//! | 24     | 8    | next page of the chain (0: last)       |
//! | 32     | 4    | bytes of value data in this page       |
//! | 36     | 4    | reserved, zero                         |
//! | 40     | …    | value data                             |

use crate::error::{PagerError, Result};
use crate::page::{self, try_read_u32, try_read_u64, write_u32, write_u64, PageId, PageType};
use crate::pool::BufferPool;

pub const OVERFLOW_HEADER_BYTES: usize = 40;
// Where each field of the table above sits: written once, for the writer and the readers.
const NEXT_AT: usize = 24;
const USED_AT: usize = 32;

/// The fields of an overflow page's header as stored, unchecked (neither the type nor `used`
/// against the page size): for tools that show damaged pages, and the readers here and in the
/// checker, which check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOverflowHeader {
    /// Next page of the chain (0: last).
    pub next: PageId,
    /// Bytes of value data in this page.
    pub used: u32,
}

impl RawOverflowHeader {
    /// None when `page` is shorter than an overflow header.
    pub fn parse(page: &[u8]) -> Option<RawOverflowHeader> {
        if page.len() < OVERFLOW_HEADER_BYTES {
            return None;
        }
        Some(RawOverflowHeader {
            next: try_read_u64(page, NEXT_AT)?,
            used: try_read_u32(page, USED_AT)?,
        })
    }
}

pub fn data_per_page(page_size: usize) -> usize {
    page_size - OVERFLOW_HEADER_BYTES
}

/// Fill freshly allocated pages `ids` (in chain order) with `value`.
pub fn write_chain(pages: &[crate::pool::PageRef], value: &[u8], seq: u64) {
    let mut chunks = value.chunks(pages.first().map_or(1, |p| data_per_page(p.read().len())));
    for (i, page) in pages.iter().enumerate() {
        let mut buf = page.write();
        let chunk = chunks.next().unwrap_or(&[]);
        page::init_header(&mut buf, PageType::Overflow, page.id(), seq);
        write_u64(&mut buf, NEXT_AT, pages.get(i + 1).map_or(0, |p| p.id()));
        write_u32(&mut buf, USED_AT, chunk.len() as u32);
        buf[OVERFLOW_HEADER_BYTES..OVERFLOW_HEADER_BYTES + chunk.len()].copy_from_slice(chunk);
    }
}

/// Pages a value of `len` bytes needs.
pub fn pages_for(len: usize, page_size: usize) -> usize {
    len.div_ceil(data_per_page(page_size)).max(1)
}

/// Read a whole chain of `len` bytes starting at `first`, checking every link.
pub fn read_chain(pool: &BufferPool, first: PageId, len: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len as usize);
    visit_chain(pool, first, len, |_, data| out.extend_from_slice(data))?;
    Ok(out)
}

/// Walk a chain, giving each page id and its data; stops with an error on any inconsistency
/// (wrong type, a chain longer or shorter than `len`), so a loop in a damaged file cannot spin.
pub fn visit_chain(
    pool: &BufferPool,
    first: PageId,
    len: u64,
    mut visit: impl FnMut(PageId, &[u8]),
) -> Result<()> {
    let max_pages = pages_for(len as usize, pool.page_size()) as u64;
    let mut seen = 0u64;
    let mut remaining = len;
    let mut next = first;
    while next != 0 {
        seen += 1;
        if seen > max_pages {
            return Err(PagerError::corrupt(
                first,
                format!("overflow chain longer than {max_pages} pages"),
            ));
        }
        let page = pool.get(next)?;
        let buf = page.read();
        if page::page_type_byte(&buf) != PageType::Overflow as u8 {
            return Err(PagerError::WrongPageType {
                page: next,
                expected: PageType::Overflow,
                found: page::page_type_byte(&buf),
            });
        }
        let header = RawOverflowHeader::parse(&buf)
            .ok_or_else(|| PagerError::corrupt(next, "overflow page shorter than its header"))?;
        let used = header.used as usize;
        if used > data_per_page(buf.len()) || used as u64 > remaining {
            return Err(PagerError::corrupt(
                next,
                format!("overflow page claims {used} bytes"),
            ));
        }
        visit(
            next,
            &buf[OVERFLOW_HEADER_BYTES..OVERFLOW_HEADER_BYTES + used],
        );
        remaining -= used as u64;
        next = header.next;
    }
    if remaining != 0 {
        return Err(PagerError::corrupt(
            first,
            format!("overflow chain ends {remaining} bytes short"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_header_reads_what_write_chain_wrote() {
        let (_dir, _file, pool) = crate::pool::scratch_pool(4096);
        let value = vec![5u8; data_per_page(4096) + 100];
        let pages: Vec<_> = [7u64, 9].iter().map(|id| pool.create(*id)).collect();
        write_chain(&pages, &value, 3);
        let first = pages[0].read().to_vec();
        let last = pages[1].read().to_vec();
        let raw = RawOverflowHeader::parse(&first).unwrap();
        assert_eq!(raw.next, 9);
        assert_eq!(raw.used as usize, data_per_page(4096));
        let raw = RawOverflowHeader::parse(&last).unwrap();
        assert_eq!((raw.next, raw.used), (0, 100));
        assert_eq!(read_chain(&pool, 7, value.len() as u64).unwrap(), value);
        // Short buffers, as a damaged or truncated file gives them: None, never a panic.
        for len in 0..OVERFLOW_HEADER_BYTES {
            assert_eq!(RawOverflowHeader::parse(&first[..len]), None, "{len} bytes");
        }
        assert!(RawOverflowHeader::parse(&first[..OVERFLOW_HEADER_BYTES]).is_some());
    }
}
