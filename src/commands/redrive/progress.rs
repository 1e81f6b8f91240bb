//! Up to where progress may be committed, per partition of the source.

use std::collections::{BTreeMap, HashMap};

/// Per partition, which records are finished, and so up to where progress
/// may be committed: the offset after the last of an unbroken run of
/// finished records. A failed record stops the run for good.
pub(super) struct Progress {
    /// partition → (next offset to commit, finished offsets beyond it,
    /// a failed offset).
    parts: HashMap<i32, (i64, std::collections::BTreeSet<i64>, Option<i64>)>,
}

impl Progress {
    pub(super) fn new(ends: &BTreeMap<i32, (i64, i64)>) -> Progress {
        Progress {
            parts: ends
                .iter()
                .map(|(p, (start, _))| (*p, (*start, Default::default(), None)))
                .collect(),
        }
    }

    pub(super) fn finished(&mut self, partition: i32, offset: i64) {
        if let Some((next, done, failed)) = self.parts.get_mut(&partition) {
            done.insert(offset);
            while failed.is_none_or(|f| *next < f) && done.remove(next) {
                *next += 1;
            }
        }
    }

    pub(super) fn failed(&mut self, partition: i32, offset: i64) {
        if let Some((_, _, failed)) = self.parts.get_mut(&partition) {
            *failed = Some(failed.map_or(offset, |f| f.min(offset)));
        }
    }

    /// partition → next offset, for the partitions with progress.
    pub(super) fn committable(&self) -> HashMap<i32, i64> {
        self.parts
            .iter()
            .map(|(p, (next, _, _))| (*p, *next))
            .collect()
    }
}

#[cfg(test)]
mod tests;
