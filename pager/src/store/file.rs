//! The data file at open: its meta pages read (and rewritten), its creation, its free list.

use super::*;

/// Read both meta slots at every possible page size; None for a new (empty or all-zero) file.
fn read_meta(file: &dyn IoFile, path: &Path) -> Result<Option<Meta>> {
    let len = file.len()?;
    if len == 0 {
        return Ok(None);
    }
    let mut candidates = Vec::new();
    let mut all_zero = true;
    let mut size = PAGE_SIZE_MIN as u64;
    while size <= PAGE_SIZE_MAX as u64 {
        for slot in 0..2u64 {
            let offset = slot * size;
            if offset + size > len {
                continue;
            }
            let buf = file.read_now(offset, AlignedBuf::zeroed(size as usize))?;
            all_zero &= buf.iter().all(|b| *b == 0);
            let decoded = Meta::decode(&buf, slot).and_then(|m| {
                if m.page_size as u64 == size {
                    Ok(m)
                } else {
                    Err(PagerError::corrupt(
                        slot,
                        format!("page size {} read at size {size}", m.page_size),
                    ))
                }
            });
            if decoded.is_ok() || size == PAGE_SIZE_MIN as u64 {
                candidates.push((slot, decoded));
            }
        }
        size *= 2;
    }
    // Zeros are a new file only while it is as short as one: a grown file whose meta pages
    // read as zeros is damaged, and recreating it would drop its data.
    if all_zero && never_grew(len) {
        return Ok(None);
    }
    meta::choose(path, &candidates).map(Some)
}

/// [`read_meta`], and a file no valid meta page describes but that never grew past the two
/// meta pages is a creation torn by a crash (its write landed in part, its length in full):
/// every meta page ever written to such a file described the empty store at sequence 0, so it
/// is created again rather than refused. A file that grew is refused.
///
/// Why the length tells: a new file is two pages (less, when its creation's length reached the
/// disk only in part); growth adds at least 64 pages of at least `PAGE_SIZE_MIN` bytes, so a
/// file that ever grew is never shorter than 66 of the smallest pages.
pub(super) fn read_meta_or_unfinished(
    file: &dyn IoFile,
    path: &Path,
    read_only: bool,
) -> Result<Option<Meta>> {
    match read_meta(file, path) {
        Err(PagerError::NoValidMeta { .. }) if !read_only && never_grew(file.len()?) => {
            tracing::warn!(path = %path.display(), "data file creation was torn by a crash; creating it again");
            Ok(None)
        }
        other => other,
    }
}

/// Make sure the chosen meta page is on the device, not only in the page cache.
///
/// The sync at open does not prove it: after a failed fsync the kernel marks the pages it could
/// not write clean, and a later fsync (this process's) reports success without writing them. A
/// meta page read from such a cache may exist nowhere else, and its free list hands out pages
/// the previous checkpoint still reaches. So the slot is read past the cache (O_DIRECT) where
/// the file system allows it: when the device holds the chosen meta, nothing is written (the
/// double-buffer rule stays: the newest durable meta is never overwritten in place). Otherwise
/// the chosen meta is written into its slot and synced; the device's copy of that slot is then
/// an older generation, and the other slot holds the device's newest meta, so a torn write
/// there loses nothing. Without O_DIRECT the cached slot is written back (identical bytes when
/// it holds the chosen meta), which dirties it so the sync really writes it.
pub(super) fn make_meta_durable(
    vfs: &dyn Vfs,
    path: &Path,
    file: &dyn IoFile,
    meta: &Meta,
) -> Result<()> {
    let size = meta.page_size as usize;
    let offset = meta.slot() * size as u64;
    let is_chosen = |buf: &AlignedBuf| Meta::decode(buf, meta.slot()).is_ok_and(|m| m == *meta);
    let past_cache = OpenOptions {
        create: false,
        read_only: true,
        direct: true,
    };
    // Only Linux opens with O_DIRECT; elsewhere the "direct" read would come from the cache
    // and prove nothing, so the page is always written.
    if cfg!(target_os = "linux") {
        let on_device = vfs
            .open(path, past_cache)
            .and_then(|direct| direct.read_now(offset, AlignedBuf::zeroed(size)));
        if on_device.as_ref().is_ok_and(is_chosen) {
            return Ok(());
        }
    }
    let cached = file.read_now(offset, AlignedBuf::zeroed(size))?;
    let buf = if is_chosen(&cached) {
        cached
    } else {
        let mut encoded = AlignedBuf::zeroed(size);
        meta.encode(&mut encoded);
        encoded
    };
    all_ok(submit_wait(
        file,
        vec![IoOp::Write { offset, buf }, IoOp::Sync],
    ))?;
    Ok(())
}

fn never_grew(len: u64) -> bool {
    len < MIN_GROWN_PAGES * PAGE_SIZE_MIN as u64
}

/// The fewest pages a file that ever grew holds: the two meta pages and one growth extent.
const MIN_GROWN_PAGES: u64 = 2 + crate::alloc::MIN_GROWTH_PAGES;

/// Write the two meta pages of an empty store and make the file and its directory entry durable.
pub(super) fn create_file(
    vfs: &dyn Vfs,
    file: &dyn IoFile,
    path: &Path,
    page_size: u32,
    existed: bool,
) -> Result<Meta> {
    let mut meta = Meta {
        page_size,
        generation: 0,
        seq: 0,
        root: 0,
        freelist_root: 0,
        freelist_len: 0,
        page_count: 2,
        wal_position: 0,
        tree_count: 0,
    };
    // Both meta pages in one write: a crash leaves both, neither (an empty or all-zero file is
    // created again), or a torn pair whose valid half still describes the empty store.
    let size = page_size as usize;
    let mut buf = AlignedBuf::zeroed(2 * size);
    for generation in [0u64, 1] {
        meta.generation = generation;
        let at = generation as usize * size;
        meta.encode(&mut buf[at..at + size]);
    }
    all_ok(submit_wait(
        file,
        vec![IoOp::Write { offset: 0, buf }, IoOp::Sync],
    ))?;
    if !existed {
        if let Some(dir) = path.parent() {
            vfs.sync_dir(dir)?;
        }
    }
    tracing::info!(path = %path.display(), page_size, "created data file");
    Ok(meta)
}

pub(super) fn load_freelist(pool: &BufferPool, meta: &Meta) -> Result<(Vec<PageId>, Vec<PageId>)> {
    let mut pages = Vec::new();
    let mut ids = Vec::new();
    let mut next = meta.freelist_root;
    while next != 0 {
        if pages.len() as u64 >= meta.page_count {
            return Err(PagerError::corrupt(
                meta.freelist_root,
                "free list has a cycle",
            ));
        }
        let buf = pool.read_from_disk(next)?;
        let (mut chunk, following) = decode_freelist_page(&buf, next, meta.page_count)?;
        pages.push(next);
        ids.append(&mut chunk);
        next = following;
    }
    if ids.len() as u64 != meta.freelist_len {
        return Err(PagerError::corrupt(
            meta.freelist_root,
            format!(
                "free list holds {} ids, the meta page says {}",
                ids.len(),
                meta.freelist_len
            ),
        ));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(PagerError::corrupt(
            w[0],
            "page listed twice in the free list",
        ));
    }
    Ok((pages, ids))
}
