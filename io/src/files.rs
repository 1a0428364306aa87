//! Whole small files through any [`Vfs`]: read one, or replace one durably.

use std::path::Path;

use crate::{all_ok, submit_wait, AlignedBuf, IoError, IoOp, OpKind, OpenOptions, Vfs};

/// The whole content of the file at `path`; a file longer than `max_len` bytes is an error
/// (`EFBIG`), so a damaged or foreign file cannot make the caller allocate its size.
pub fn read_whole_file(vfs: &dyn Vfs, path: &Path, max_len: usize) -> Result<Vec<u8>, IoError> {
    let file = vfs.open(
        path,
        OpenOptions {
            read_only: true,
            ..OpenOptions::default()
        },
    )?;
    let len = file.len()?;
    let len = match usize::try_from(len) {
        Ok(len) if len <= max_len => len,
        _ => return Err(IoError::os(OpKind::Read, 0, libc::EFBIG).with_path(path)),
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let buf = file.read_now(0, AlignedBuf::zeroed(len))?;
    Ok(buf.to_vec())
}

/// Replace `dir/name` with `bytes` so that a crash at any point leaves either the old file
/// whole or the new one whole, and the new one survives a power loss once this returns: write
/// `name.tmp`, sync it, rename it over `name`, sync the directory.
pub fn write_file_durably(
    vfs: &dyn Vfs,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), IoError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    // A crash may have left a longer temporary file, which a write from 0 would not shorten.
    if vfs.exists(&tmp) {
        vfs.remove(&tmp)?;
    }
    let file = vfs.open(
        &tmp,
        OpenOptions {
            create: true,
            ..OpenOptions::default()
        },
    )?;
    let mut ops = Vec::with_capacity(2);
    if !bytes.is_empty() {
        ops.push(IoOp::Write {
            offset: 0,
            buf: AlignedBuf::from_slice(bytes),
        });
    }
    ops.push(IoOp::Sync);
    all_ok(submit_wait(&*file, ops)).map_err(|e| e.with_path(&tmp))?;
    drop(file);
    vfs.rename(&tmp, &path)?;
    vfs.sync_dir(dir)
}
