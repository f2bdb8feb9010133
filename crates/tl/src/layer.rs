//! API layers (<https://core.telegram.org/api/layers>): which constructor ids and flag layouts a
//! client understands. The supported set comes from `schema/layers/` and the canonical
//! `schema/api.tl`.

use std::fmt;

use crate::SUPPORTED_LAYERS;

/// One supported API layer. Obtain it with [`Layer::serving`] from the number a client announces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layer {
    index: u8,
}

impl Layer {
    /// The newest supported layer: the canonical schema's.
    pub const LATEST: Layer = Layer {
        index: (SUPPORTED_LAYERS.len() - 1) as u8,
    };
    /// The oldest supported layer.
    pub const OLDEST: Layer = Layer { index: 0 };

    /// The layer to serve a client announcing `announced` (in `invokeWithLayer`): the nearest
    /// supported layer at or below it. A client older than every supported layer is served the
    /// oldest one.
    pub fn serving(announced: i32) -> Layer {
        let below = SUPPORTED_LAYERS.iter().rposition(|&n| n <= announced);
        Layer {
            index: below.unwrap_or(0) as u8,
        }
    }

    /// The layer numbered exactly `number`, if supported.
    pub fn exact(number: i32) -> Option<Layer> {
        SUPPORTED_LAYERS
            .iter()
            .position(|&n| n == number)
            .map(|i| Layer { index: i as u8 })
    }

    /// Every supported layer, oldest first.
    pub fn all() -> impl Iterator<Item = Layer> {
        (0..SUPPORTED_LAYERS.len()).map(|i| Layer { index: i as u8 })
    }

    /// The layer number (`230`).
    pub fn number(self) -> i32 {
        SUPPORTED_LAYERS[self.index()]
    }

    /// Position in [`SUPPORTED_LAYERS`]; generated tables are indexed by it.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Layer({})", self.number())
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_nearest_lower_layer() {
        assert_eq!(Layer::serving(198).number(), 198);
        assert_eq!(Layer::serving(215).number(), 198);
        assert_eq!(Layer::serving(216).number(), 216);
        assert_eq!(Layer::serving(229).number(), 229);
        assert_eq!(Layer::serving(230), Layer::LATEST);
        assert_eq!(Layer::serving(999), Layer::LATEST);
        assert_eq!(Layer::serving(1), Layer::OLDEST);
        assert_eq!(Layer::exact(217), None);
        assert_eq!(Layer::all().count(), SUPPORTED_LAYERS.len());
    }
}
