//! Any bytes a client may send as a request body: decoding never panics; whatever decodes
//! re-encodes, at every layer, to bytes that decode again, and at the canonical layer to a
//! fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tl::{Decode, Encode, Layer, functions::Request};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = Request::from_bytes(data) else {
        return;
    };
    for layer in Layer::all() {
        let bytes = request.to_bytes(layer);
        let again = Request::from_bytes(&bytes).expect("our own encoding decodes");
        if layer == Layer::LATEST {
            assert_eq!(
                again.to_bytes(layer),
                bytes,
                "canonical encoding is a fixed point"
            );
        }
    }
    // Wrapped queries (invokeWithLayer, initConnection, ...) decode on their own as well.
    if let Request::InvokeWithLayer(w) = &request {
        let _ = Request::from_bytes(&w.query.0);
    }
    if let Request::InitConnection(w) = &request {
        let _ = Request::from_bytes(&w.query.0);
    }
});
