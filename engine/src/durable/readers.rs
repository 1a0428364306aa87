//! Readers in other processes, registered with the writer through the file `READERS`.
//!
//! A read-only open (`aedb` inspections, the explorer) reads the newest durable meta page and
//! then that checkpoint's pages, lazily. A live writer reuses the pages a checkpoint reaches
//! once a newer checkpoint is durable, so without registration such a reader could read a
//! reused page (valid checksum, wrong tree). Each reader holds a shared byte-range lock on
//! `READERS` at the byte whose offset is the generation of the meta page it read; after each
//! checkpoint the writer asks for the lowest locked byte and reuses nothing that generation
//! reaches, and deletes no log segment while any reader is registered.
//!
//! The locks are open-file-description locks (`F_OFD_SETLK`, Linux), taken through the I/O
//! layer (`LockFile`; the simulator keeps them in memory): they belong to the open file, not
//! the process, so a reader and a writer in one process still see each other, and
//! the kernel drops them when the reader's process dies. A reader registers at byte 0 (every
//! generation) before it reads the meta page and moves to its generation after, so no
//! checkpoint between the two can miss it. A writer that opens while readers are registered
//! holds back the free list it loaded when they read an older generation. Elsewhere (not Linux,
//! or a database no writer of this version has opened) no registration exists, and a read-only
//! open beside a live writer carries the risk the module describes (see ARCHITECTURE.md).

use std::path::Path;

use aedb_pager::io::{IoError, IoErrorKind, LockFile, OpenOptions, Vfs};
use aedb_pager::ReaderRegistry;

use crate::error::{AedbError, Result};

pub const READERS_FILE: &str = "READERS";

const READ_ONLY: OpenOptions = OpenOptions {
    create: false,
    read_only: true,
    direct: false,
};

/// The writer's side: asks which generation the oldest reader reads.
pub struct ReaderTable {
    file: Box<dyn LockFile>,
}

impl ReaderTable {
    pub fn open_in(vfs: &dyn Vfs, dir: &Path) -> Result<Self> {
        let path = dir.join(READERS_FILE);
        let create = OpenOptions {
            create: true,
            ..OpenOptions::default()
        };
        // Asking needs no write access: a file another user made is opened for reading.
        let file = vfs
            .open_lock(&path, create)
            .or_else(|_| vfs.open_lock(&path, READ_ONLY))
            .map_err(|e| AedbError::Io(e.to_string()))?;
        Ok(ReaderTable { file })
    }
}

impl ReaderRegistry for ReaderTable {
    fn oldest_generation(&self) -> std::io::Result<Option<u64>> {
        self.file.lowest_locked_byte().map_err(to_std)
    }
}

fn to_std(err: IoError) -> std::io::Error {
    match err.kind {
        IoErrorKind::Os(errno) => std::io::Error::from_raw_os_error(errno),
        _ => std::io::Error::other(err),
    }
}

/// A reader's registration; dropping it (or the process dying) ends it.
pub struct ReaderRegistration {
    /// Held for the locks it carries (None: not registered).
    file: Option<Box<dyn LockFile>>,
}

impl ReaderRegistration {
    pub fn begin_in(vfs: &dyn Vfs, dir: &Path) -> Self {
        let path = dir.join(READERS_FILE);
        // Never created here: a read-only open writes nothing. A writer of this version makes
        // the file as it opens; a database no such writer has opened has no writer to tell.
        let registered = vfs.open_lock(&path, READ_ONLY).and_then(|file| {
            file.lock_shared_byte(0)?;
            Ok(file)
        });
        match registered {
            Ok(file) => ReaderRegistration { file: Some(file) },
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "read-only open is not registered with writers");
                ReaderRegistration { file: None }
            }
        }
    }

    /// The meta page read was of `generation`: hold that one only. Should moving the lock
    /// fail, the hold on every generation stays, which only keeps more pages from reuse.
    pub fn settle(&self, generation: u64) {
        let Some(file) = &self.file else {
            return;
        };
        if generation == 0 {
            return;
        }
        match file
            .lock_shared_byte(generation)
            .and_then(|()| file.unlock_byte(0))
        {
            Ok(()) => {}
            Err(err) => {
                tracing::warn!(error = %err, generation, "reader keeps its hold on every generation")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_writer_sees_the_oldest_registered_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let table =
            ReaderTable::open_in(&aedb_pager::io::sync::SyncVfs, dir.path()).expect("table");
        assert_eq!(table.oldest_generation().expect("ask"), None);
        let first = ReaderRegistration::begin_in(&aedb_pager::io::sync::SyncVfs, dir.path());
        assert_eq!(
            table.oldest_generation().expect("ask"),
            Some(0),
            "unsettled: every generation"
        );
        first.settle(7);
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        let second = ReaderRegistration::begin_in(&aedb_pager::io::sync::SyncVfs, dir.path());
        second.settle(12);
        let third = ReaderRegistration::begin_in(&aedb_pager::io::sync::SyncVfs, dir.path());
        third.settle(5);
        assert_eq!(table.oldest_generation().expect("ask"), Some(5));
        drop(third);
        assert_eq!(table.oldest_generation().expect("ask"), Some(7));
        drop(first);
        assert_eq!(table.oldest_generation().expect("ask"), Some(12));
        drop(second);
        assert_eq!(table.oldest_generation().expect("ask"), None);
    }

    #[test]
    fn registration_works_the_same_in_the_simulator() {
        use aedb_pager::io::sim::SimVfs;
        let sim = SimVfs::new();
        let dir = Path::new("/db");
        let unregistered = ReaderRegistration::begin_in(&sim, dir);
        assert!(
            unregistered.file.is_none(),
            "a reader never creates READERS"
        );
        let table = ReaderTable::open_in(&sim, dir).expect("table");
        let reader = ReaderRegistration::begin_in(&sim, dir);
        assert_eq!(table.oldest_generation().expect("ask"), Some(0));
        reader.settle(3);
        assert_eq!(table.oldest_generation().expect("ask"), Some(3));
        drop(reader);
        assert_eq!(table.oldest_generation().expect("ask"), None);
    }
}
