//! Writes a seed corpus for the fuzz targets (`fuzz/corpus/<target>/`): valid encodings of
//! random requests at every layer, made by the codec's own random-value generator.
//!
//! `cargo run -p mtcall-tl --example fuzz_corpus --features testgen -- fuzz/corpus`

use std::fmt::Debug;
use std::path::PathBuf;

use tl::testgen::{Gen, Random, Visitor};
use tl::{Decode, Encode, Layer};

struct Seeds {
    dir: PathBuf,
    written: usize,
}

impl Visitor for Seeds {
    fn visit<T>(&mut self, name: &'static str)
    where
        T: Random + Encode + Decode + PartialEq + Debug + Clone,
    {
        let is_function = tl::CONSTRUCTORS
            .iter()
            .any(|c| c.function && c.name == name);
        if !is_function {
            return;
        }
        let mut g = Gen::new(name.len() as u64 * 7919, 2);
        let value = T::random(&mut g);
        for layer in [Layer::OLDEST, Layer::LATEST] {
            let file = self
                .dir
                .join(format!("{}-{}", name.replace('.', "_"), layer.number()));
            std::fs::write(file, value.to_bytes(layer)).expect("write seed");
            self.written += 1;
        }
    }
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let dir = root.join("decode_request");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut seeds = Seeds { dir, written: 0 };
    tl::visit_all(&mut seeds);
    let containers = root.join("decode_container");
    std::fs::create_dir_all(&containers).expect("corpus dir");
    let c = tl::service::MsgContainer {
        messages: vec![
            tl::service::Message {
                msg_id: 1 << 32,
                seqno: 1,
                body: 0x7abe77ecu32.to_le_bytes().repeat(3),
            },
            tl::service::Message {
                msg_id: 2 << 32,
                seqno: 2,
                body: vec![0; 8],
            },
        ],
    };
    std::fs::write(containers.join("two_messages"), c.to_bytes(Layer::LATEST)).expect("write seed");
    println!("{} request seeds written", seeds.written);
}
