//! The msg_ids a server session has received, kept sorted in one ring buffer to refuse
//! replays: client msg_ids almost always grow, so a new one goes at the back and the oldest
//! leaves from the front, and a lookup is a binary search. An idle session holds room for a
//! few ids rather than a tree node.

use std::collections::VecDeque;

/// At most `limit` of the highest msg_ids seen, in ascending order.
#[derive(Debug, Default)]
pub(crate) struct SeenIds {
    ids: VecDeque<i64>,
}

impl SeenIds {
    /// How many are remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The lowest remembered.
    pub(crate) fn lowest(&self) -> Option<i64> {
        self.ids.front().copied()
    }

    /// The highest remembered.
    pub(crate) fn highest(&self) -> Option<i64> {
        self.ids.back().copied()
    }

    /// Whether `id` is remembered.
    pub(crate) fn contains(&self, id: i64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Remembers `id`, forgetting the lowest past `limit`.
    pub(crate) fn insert(&mut self, id: i64, limit: usize) {
        match self.ids.back() {
            Some(&last) if id <= last => {
                if let Err(at) = self.ids.binary_search(&id) {
                    self.ids.insert(at, id);
                }
            }
            _ => self.ids.push_back(id),
        }
        while self.ids.len() > limit {
            self.ids.pop_front();
        }
    }

    /// Forgets all.
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::SeenIds;

    #[test]
    fn keeps_the_highest_in_order_whatever_the_arrival_order() {
        let mut seen = SeenIds::default();
        for id in [40, 8, 24, 16, 40, 32, 4] {
            seen.insert(id, 4);
        }
        assert_eq!(seen.len(), 4);
        assert_eq!((seen.lowest(), seen.highest()), (Some(16), Some(40)));
        assert!(seen.contains(24) && !seen.contains(8) && !seen.contains(4));
        seen.insert(12, 4);
        assert_eq!(
            seen.lowest(),
            Some(16),
            "a lower id than all kept is forgotten at once"
        );
        seen.clear();
        assert_eq!((seen.len(), seen.highest()), (0, None));
    }
}
