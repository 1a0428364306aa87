//! Structural versions: per tree, the sequence of the newest commit that deleted a key from it
//! (or dropped it). A range read whose rows were all unchanged can still have lost a row; read
//! sets compare this version to tell.
//!
//! Kept in memory only: after an open every tree counts as changed at the head the open found
//! (the floor), which can only make a revalidation stricter, never miss a delete. Bounded: past
//! [`MAX_TREES`] tracked trees the map is cleared and the floor raised to the newest sequence.

use std::collections::HashMap;

/// Trees tracked at once before the map folds into its floor.
pub const MAX_TREES: usize = 65_536;

pub(crate) struct StructuralVersions {
    floor: u64,
    trees: HashMap<String, u64>,
}

impl StructuralVersions {
    pub fn new(floor: u64) -> Self {
        StructuralVersions {
            floor,
            trees: HashMap::new(),
        }
    }

    /// Commit `seq` deleted from each of `trees`.
    pub fn note(&mut self, trees: Vec<String>, seq: u64) {
        for tree in trees {
            if self.trees.len() >= MAX_TREES && !self.trees.contains_key(&tree) {
                self.trees.clear();
                self.floor = self.floor.max(seq);
            }
            let entry = self.trees.entry(tree).or_insert(0);
            *entry = (*entry).max(seq);
        }
    }

    pub fn of(&self, tree: &str) -> u64 {
        self.trees
            .get(tree)
            .map_or(self.floor, |seq| (*seq).max(self.floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_then_deletes_then_folding() {
        let mut versions = StructuralVersions::new(7);
        assert_eq!(versions.of("t:1"), 7);
        versions.note(vec!["t:1".into()], 9);
        assert_eq!((versions.of("t:1"), versions.of("t:2")), (9, 7));
        for i in 0..MAX_TREES + 1 {
            versions.note(vec![format!("x:{i}")], 20);
        }
        assert!(versions.trees.len() <= MAX_TREES);
        assert_eq!(versions.of("t:1"), 20, "folded into the floor");
    }
}
