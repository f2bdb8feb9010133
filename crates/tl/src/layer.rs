//! API layers (`docs/clients.md §1.4`): which constructor ids and flag layouts a
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
    /// supported layer at or below it. `None` for a client older than every supported layer:
    /// nothing mtcall can write is sure to parse there.
    pub fn serving(announced: i32) -> Option<Layer> {
        SUPPORTED_LAYERS
            .iter()
            .rposition(|&n| n <= announced)
            .map(|i| Layer { index: i as u8 })
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
        let serving = |n| Layer::serving(n).map(Layer::number);
        assert_eq!(serving(158), Some(158));
        assert_eq!(serving(170), Some(158));
        assert_eq!(serving(181), Some(181));
        assert_eq!(serving(197), Some(181));
        assert_eq!(serving(198), Some(198));
        assert_eq!(serving(215), Some(198));
        assert_eq!(serving(216), Some(216));
        assert_eq!(serving(219), Some(216));
        assert_eq!(serving(220), Some(220));
        assert_eq!(serving(227), Some(227));
        assert_eq!(serving(228), Some(227));
        assert_eq!(serving(229), Some(229));
        assert_eq!(Layer::serving(230), Some(Layer::LATEST));
        assert_eq!(Layer::serving(999), Some(Layer::LATEST));
        assert_eq!(Layer::serving(157), None);
        assert_eq!(Layer::serving(1), None);
        assert_eq!(Layer::OLDEST.number(), 158);
        assert_eq!(Layer::exact(217), None);
        assert_eq!(Layer::all().count(), SUPPORTED_LAYERS.len());
    }
}
