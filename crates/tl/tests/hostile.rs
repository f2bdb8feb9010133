//! Hostile input to the decoder (`docs/design.md` §7): a 56 KB `initConnection` whose
//! `params` nest `jsonArray` thousands deep is refused with [`DecodeError::TooDeep`] — on a
//! thread with a 256 KiB stack, far below the 2 MiB a tokio worker has — and lengths that
//! claim more than the input are refused before anything is allocated.

use tl::{Decode, DecodeError, Encode, Layer, Writer, functions};

const JSON_ARRAY: u32 = 0xf7444763;
const JSON_NULL: u32 = 0x3f6d7b68;
const VECTOR: u32 = 0x1cb5c415;

fn nested_init_connection(depth: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut w = Writer::new(&mut body, Layer::LATEST);
    w.put_u32(0xda9b0d0d); // invokeWithLayer
    w.put_i32(230);
    w.put_u32(0xc1cd5ea9); // initConnection
    w.put_u32(1 << 1); // flags: params present
    w.put_i32(12345);
    for s in ["device", "os", "1.0", "en", "", "en"] {
        w.put_string(s);
    }
    for _ in 0..depth {
        w.put_u32(JSON_ARRAY);
        w.put_u32(VECTOR);
        w.put_i32(1);
    }
    w.put_u32(JSON_NULL);
    functions::help::GetConfig {}.encode(&mut w);
    body
}

#[test]
fn deeply_nested_json_params_are_refused_not_a_stack_overflow() {
    let bytes = nested_init_connection(4_670);
    assert!(bytes.len() > 56_000, "{} bytes", bytes.len());
    let outcome = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let outer =
                functions::InvokeWithLayer::from_bytes(&bytes).expect("the wrapper itself is fine");
            assert_eq!(outer.layer, 230);
            functions::InitConnection::from_bytes(&outer.query.0).map(|_| ())
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert_eq!(outcome, Err(DecodeError::TooDeep));
}

#[test]
fn shallow_json_params_are_accepted() {
    let bytes = nested_init_connection(5);
    let outer = functions::InvokeWithLayer::from_bytes(&bytes).unwrap();
    let init = functions::InitConnection::from_bytes(&outer.query.0).unwrap();
    assert!(init.params.is_some());
    assert_eq!(
        init.query.0,
        functions::help::GetConfig {}.to_bytes(Layer::LATEST)
    );
}

#[test]
fn request_decoding_reports_typed_errors() {
    // Unknown constructor.
    assert_eq!(
        functions::Request::from_bytes(&0xdeadbeefu32.to_le_bytes()),
        Err(DecodeError::UnexpectedConstructor {
            id: 0xdeadbeef,
            expected: "a function"
        })
    );
    // importContacts with a vector claiming 2^31-1 contacts in 12 bytes.
    let mut b = 0x2c800be5u32.to_le_bytes().to_vec();
    b.extend_from_slice(&VECTOR.to_le_bytes());
    b.extend_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(
        functions::Request::from_bytes(&b),
        Err(DecodeError::LengthExceedsInput { .. })
    ));
    // A string that is not UTF-8 (resolveUsername).
    let mut b = 0x725afbbcu32.to_le_bytes().to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[3, 0xc3, 0x28, 0x41]);
    assert_eq!(
        functions::Request::from_bytes(&b),
        Err(DecodeError::InvalidUtf8)
    );
    // Trailing garbage after a complete request.
    let mut b = functions::help::GetConfig {}.to_bytes(Layer::LATEST);
    b.extend_from_slice(&[0; 4]);
    assert_eq!(
        functions::Request::from_bytes(&b),
        Err(DecodeError::TrailingBytes { count: 4 })
    );
}
