//! Any bytes as a `msg_container`: decoding never panics, and a decoded container re-encodes
//! to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tl::{Decode, Encode, Layer, service::MsgContainer};

fuzz_target!(|data: &[u8]| {
    if let Ok(container) = MsgContainer::from_bytes(data) {
        assert_eq!(container.to_bytes(Layer::LATEST), data);
    }
});
