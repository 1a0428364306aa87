//! The recent versions kept for `ConsistencyMode::AtSeq` reads.
//!
//! A retained version keeps every page a later commit replaced from being reused, so retention
//! is bounded twice: by a count of versions (`AedbConfig::max_versions`, the original's ring)
//! and by the pages those versions hold (`page_budget`). Without the second bound, 1,024
//! bulk commits of a thousand pages each would hold four gigabytes of garbage, and every page
//! would come back in one burst a thousand commits later, inside some unlucky commit.
//!
//! Invariants:
//! 1. Versions are in increasing sequence order, the newest last.
//! 2. `held_pages` is the sum of `freed_by_commit` over every version but the oldest: the pages
//!    freed by the commits after the oldest version, which only retained versions still reach.
//! 3. After `push`, `versions.len() ≤ max_versions` and `held_pages ≤ page_budget` unless
//!    only one version remains (the head is always retained while any is).

use std::collections::VecDeque;

use aedb_pager::Snapshot;

struct Retained {
    snapshot: Snapshot,
    /// Pages the commit that made this version freed (its predecessors still reach them).
    freed_by_commit: u64,
}

pub(crate) struct RetainedVersions {
    versions: VecDeque<Retained>,
    held_pages: u64,
    max_versions: usize,
    page_budget: u64,
}

impl RetainedVersions {
    pub fn new(max_versions: usize, page_budget: u64) -> Self {
        RetainedVersions {
            versions: VecDeque::new(),
            held_pages: 0,
            max_versions,
            page_budget,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.max_versions > 0
    }

    /// Keep the newly published `snapshot`, whose commit freed `freed_by_commit` pages, and let
    /// the oldest versions go until both bounds hold.
    pub fn push(&mut self, snapshot: Snapshot, freed_by_commit: u64) {
        if !self.is_enabled() {
            return;
        }
        debug_assert!(self
            .versions
            .back()
            .is_none_or(|last| last.snapshot.seq() < snapshot.seq()));
        if !self.versions.is_empty() {
            self.held_pages += freed_by_commit;
        }
        self.versions.push_back(Retained {
            snapshot,
            freed_by_commit,
        });
        while self.versions.len() > self.max_versions
            || (self.held_pages > self.page_budget && self.versions.len() > 1)
        {
            self.versions.pop_front();
            if let Some(new_oldest) = self.versions.front() {
                self.held_pages -= new_oldest.freed_by_commit;
            }
        }
        debug_assert_eq!(
            self.held_pages,
            self.versions
                .iter()
                .skip(1)
                .map(|v| v.freed_by_commit)
                .sum::<u64>()
        );
    }

    /// The retained version `seq`, if it still is.
    pub fn find(&self, seq: u64) -> Option<Snapshot> {
        let at = self
            .versions
            .binary_search_by_key(&seq, |v| v.snapshot.seq())
            .ok()?;
        Some(self.versions[at].snapshot.clone())
    }

    pub fn oldest_seq(&self) -> Option<u64> {
        self.versions.front().map(|v| v.snapshot.seq())
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn held_pages(&self) -> u64 {
        self.held_pages
    }
}
