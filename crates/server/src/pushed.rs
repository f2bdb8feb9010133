//! Updates on their way to one user's sessions, encoded once per API layer: when several
//! sessions receive a push, the first on a layer encodes it and the others on that layer copy
//! its bytes, where each session once encoded the same updates again. A push to a single
//! session is the bare updates, with nothing shared to allocate.

use std::sync::{Arc, Mutex};

use tl::Layer;

/// The updates of one push, as each receiving session gets them.
#[derive(Clone, Debug)]
pub enum Pushed {
    /// For one session: it encodes for itself.
    One(Arc<tl::enums::Updates>),
    /// For several sessions: their encodings so far, by layer.
    Shared(Arc<Shared>),
}

/// Updates with the encodings made for them so far.
#[derive(Debug)]
pub struct Shared {
    updates: Arc<tl::enums::Updates>,
    encoded: Mutex<Vec<(Layer, Arc<[u8]>)>>,
}

impl Pushed {
    /// A push of `updates` to `sessions` sessions.
    pub fn new(updates: Arc<tl::enums::Updates>, sessions: usize) -> Self {
        if sessions > 1 {
            Pushed::Shared(Arc::new(Shared {
                updates,
                encoded: Mutex::new(Vec::new()),
            }))
        } else {
            Pushed::One(updates)
        }
    }

    /// The updates.
    pub fn updates(&self) -> &Arc<tl::enums::Updates> {
        match self {
            Pushed::One(updates) => updates,
            Pushed::Shared(shared) => &shared.updates,
        }
    }

    /// The TL form for `layer`.
    pub fn encode(&self, layer: Layer) -> Vec<u8> {
        match self {
            Pushed::One(updates) => tl::Encode::to_bytes(updates.as_ref(), layer),
            Pushed::Shared(shared) => shared.encoded(layer).to_vec(),
        }
    }
}

impl Shared {
    fn encoded(&self, layer: Layer) -> Arc<[u8]> {
        let mut encoded = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, bytes)) = encoded.iter().find(|(l, _)| *l == layer) {
            return bytes.clone();
        }
        let bytes: Arc<[u8]> = tl::Encode::to_bytes(self.updates.as_ref(), layer).into();
        encoded.push((layer, bytes.clone()));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::Pushed;
    use std::sync::Arc;
    use tl::{Layer, enums};

    fn updates() -> Arc<enums::Updates> {
        Arc::new(enums::Updates::default())
    }

    #[test]
    fn sessions_on_one_layer_share_one_encoding_and_each_layer_has_its_own() {
        let Pushed::Shared(shared) = Pushed::new(updates(), 3) else {
            panic!("three sessions share a push");
        };
        let latest = shared.encoded(Layer::LATEST);
        assert!(Arc::ptr_eq(&latest, &shared.encoded(Layer::LATEST)));
        let oldest = shared.encoded(Layer::OLDEST);
        assert!(!Arc::ptr_eq(&latest, &oldest), "another layer gets its own");
        assert_eq!(shared.encoded.lock().unwrap().len(), 2);
        let pushed = Pushed::Shared(shared);
        for layer in [Layer::LATEST, Layer::OLDEST] {
            let plain = tl::Encode::to_bytes(pushed.updates().as_ref(), layer);
            assert_eq!(pushed.encode(layer), plain);
        }
    }

    #[test]
    fn a_push_to_one_session_shares_nothing() {
        let pushed = Pushed::new(updates(), 1);
        assert!(matches!(pushed, Pushed::One(_)));
        let plain = tl::Encode::to_bytes(pushed.updates().as_ref(), Layer::OLDEST);
        assert_eq!(pushed.encode(Layer::OLDEST), plain);
    }
}
