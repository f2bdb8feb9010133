//! The msg_ids a server session has received, kept sorted in one ring buffer to refuse
//! replays: client msg_ids almost always grow, so a new one goes at the back and the oldest
//! leaves from the front, and a lookup compares the last few before it searches. An idle
//! session holds room for a few ids rather than a tree node.

use std::cmp::Ordering;
use std::collections::VecDeque;

/// How many of the highest ids [`SeenIds`] compares one by one before it searches.
const LOOK_BACK: usize = 8;

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
        self.locate(id).is_ok()
    }

    /// Remembers `id`, forgetting the lowest past `limit`.
    pub(crate) fn insert(&mut self, id: i64, limit: usize) {
        if let Err(at) = self.locate(id) {
            self.ids.insert(at, id);
        }
        while self.ids.len() > limit {
            self.ids.pop_front();
        }
    }

    /// Where `id` is (`Ok`) or would go (`Err`). Looked for from the back: a new id goes last
    /// (one comparison), and a container's messages, numbered before the container the session
    /// remembered first, go a place or two before it; only an id further back is searched for.
    fn locate(&self, id: i64) -> Result<usize, usize> {
        let len = self.ids.len();
        let near = len.saturating_sub(LOOK_BACK);
        for at in (near..len).rev() {
            match self.ids[at].cmp(&id) {
                Ordering::Equal => return Ok(at),
                Ordering::Less => return Err(at + 1),
                Ordering::Greater => {}
            }
        }
        if near == 0 {
            return Err(0);
        }
        self.ids.binary_search(&id)
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
        assert!(seen.contains(24) && seen.contains(40) && !seen.contains(8) && !seen.contains(41));
        seen.insert(12, 4);
        assert_eq!(
            seen.lowest(),
            Some(16),
            "a lower id than all kept is forgotten at once"
        );
        seen.clear();
        assert_eq!((seen.len(), seen.highest()), (0, None));
    }

    #[test]
    fn answers_as_a_sorted_set_of_the_highest_would_near_the_end_and_far_from_it() {
        let limit = 64;
        let (mut seen, mut model) = (SeenIds::default(), std::collections::BTreeSet::new());
        // Mostly growing, with ids from a little and from far behind (a container's messages,
        // a resend), and repeats.
        let mut x: u64 = 7;
        for i in 0..2_000i64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = match x >> 61 {
                0 => i * 4 - 4 * (x >> 40 & 127) as i64,
                1 => i * 4 - 8,
                _ => i * 4,
            };
            assert_eq!(seen.contains(id), model.contains(&id), "id {id}");
            seen.insert(id, limit);
            model.insert(id);
            while model.len() > limit {
                model.pop_first();
            }
            assert_eq!(
                seen.ids.iter().copied().collect::<Vec<_>>(),
                Vec::from_iter(model.iter().copied())
            );
        }
    }
}
