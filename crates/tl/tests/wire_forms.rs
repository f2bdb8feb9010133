//! Exact bytes of the seed's lines and of the constructors whose form depends on the layer
//! (`../shared/spec/clients.md` §1.4, `../shared/spec/calls.md` §1.1).

use tl::{Decode, Encode, Identifiable, Layer, enums, functions, types};

fn layer(n: i32) -> Layer {
    Layer::exact(n).expect("supported layer")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn waiting() -> types::PhoneCallWaiting {
    types::PhoneCallWaiting {
        video: true,
        id: 1,
        access_hash: 2,
        date: 3,
        admin_id: 4,
        participant_id: 5,
        protocol: enums::PhoneCallProtocol::PhoneCallProtocol(types::PhoneCallProtocol {
            udp_p2p: true,
            udp_reflector: true,
            min_layer: 65,
            max_layer: 92,
            library_versions: vec!["2.4.4".into()],
        }),
        receive_date: Some(6),
    }
}

#[test]
fn seed_lines_encode_exactly() {
    assert_eq!(hex(&true.to_bytes(Layer::LATEST)), "b5757299");
    assert_eq!(hex(&false.to_bytes(Layer::LATEST)), "379779bc");
    let call = functions::phone::ReceivedCall {
        peer: enums::InputPhoneCall::InputPhoneCall(types::InputPhoneCall {
            id: 0x0102030405060708,
            access_hash: -1,
        }),
    };
    assert_eq!(functions::phone::ReceivedCall::CONSTRUCTOR_ID, 0x17d54f61);
    let bytes = call.to_bytes(layer(198));
    assert_eq!(
        hex(&bytes),
        "614fd517edfd361e0807060504030201ffffffffffffffff"
    );
    assert_eq!(
        bytes,
        call.to_bytes(Layer::LATEST),
        "receivedCall is the same at every layer"
    );
    assert_eq!(
        functions::phone::ReceivedCall::from_bytes(&bytes).unwrap(),
        call
    );
    assert!(matches!(
        functions::Request::from_bytes(&bytes).unwrap(),
        functions::Request::PhoneReceivedCall(c) if c == call
    ));
}

#[test]
fn layer_dependent_ids() {
    type IdAt = fn(Layer) -> u32;
    let cases: [(&str, IdAt, [u32; 4]); 7] = [
        (
            "user",
            types::User::constructor_id_at,
            [0x4b46c37e, 0x020b1422, 0xb1b8cc83, 0xb1b8cc83],
        ),
        (
            "userFull",
            types::UserFull::constructor_id_at,
            [0x4d975bbc, 0xa02bc13e, 0x06cbe645, 0x06cbe645],
        ),
        (
            "phoneCall",
            types::PhoneCall::constructor_id_at,
            [0x3ba5940c, 0x30535af5, 0x30535af5, 0x30535af5],
        ),
        (
            "phoneCallWaiting",
            types::PhoneCallWaiting::constructor_id_at,
            [0xeed42858, 0xc5226f17, 0xc5226f17, 0xc5226f17],
        ),
        (
            "phoneCallRequested",
            types::PhoneCallRequested::constructor_id_at,
            [0x45361c63, 0x14b0ed0c, 0x14b0ed0c, 0x14b0ed0c],
        ),
        (
            "phoneCallDiscarded",
            types::PhoneCallDiscarded::constructor_id_at,
            [0xf9d25503, 0x50ca4de1, 0x50ca4de1, 0x50ca4de1],
        ),
        (
            "phone.requestCall",
            functions::phone::RequestCall::constructor_id_at,
            [0xa6c4600c, 0x42ff96ed, 0x42ff96ed, 0x42ff96ed],
        ),
    ];
    for (name, id_at, ids) in cases {
        for (l, want) in Layer::all().zip(ids) {
            assert_eq!(id_at(l), want, "{name} at layer {l}");
        }
    }
}

#[test]
fn one_call_object_in_each_receivers_form() {
    let value = enums::PhoneCall::from(waiting());
    let at198 = value.to_bytes(layer(198));
    let at229 = value.to_bytes(layer(229));
    assert_eq!(&at198[..4], &0xeed42858u32.to_le_bytes());
    assert_eq!(&at229[..4], &0xc5226f17u32.to_le_bytes());
    assert_eq!(
        at198[4..],
        at229[4..],
        "bodies are identical while conference_call is unset"
    );
    // Both forms decode to the same value.
    assert_eq!(enums::PhoneCall::from_bytes(&at198).unwrap(), value);
    assert_eq!(enums::PhoneCall::from_bytes(&at229).unwrap(), value);
}

#[test]
fn older_forms_drop_newer_optional_fields_and_read_older_ones() {
    // layer 230 `username` has deletable/expired bits that 216 lacks: same id, fewer flags.
    let u = types::Username {
        editable: true,
        active: false,
        deletable: true,
        expired: true,
        username: "alice".into(),
    };
    let at216 = enums::Username::from(u.clone()).to_bytes(layer(216));
    let at230 = enums::Username::from(u.clone()).to_bytes(Layer::LATEST);
    assert_eq!(&at216[..4], &at230[..4]);
    assert_eq!(u32::from_le_bytes(at216[4..8].try_into().unwrap()), 0b0001);
    assert_eq!(u32::from_le_bytes(at230[4..8].try_into().unwrap()), 0b1101);
    // A 198 requestCall carrying the 198-only `conference_call` flag is refused (type outside
    // the subset), not misread.
    let req = functions::phone::RequestCall {
        video: false,
        user_id: enums::InputUser::InputUserSelf(types::InputUserSelf {}),
        random_id: 7,
        g_a_hash: vec![1; 32],
        protocol: enums::PhoneCallProtocol::PhoneCallProtocol(types::PhoneCallProtocol {
            udp_p2p: true,
            udp_reflector: false,
            min_layer: 65,
            max_layer: 92,
            library_versions: vec![],
        }),
    };
    let mut bytes = req.to_bytes(layer(198));
    assert_eq!(
        functions::phone::RequestCall::from_bytes(&bytes).unwrap(),
        req
    );
    bytes[4] |= 0b10; // flags.1: conference_call present
    assert!(matches!(
        functions::phone::RequestCall::from_bytes(&bytes),
        Err(tl::DecodeError::UnexpectedEnd { .. } | tl::DecodeError::Unsupported { .. })
    ));
}

#[test]
fn absent_constructors_are_reported() {
    assert!(!types::PhoneCallDiscardReasonMigrateConferenceCall::exists_at(layer(198)));
    assert!(types::PhoneCallDiscardReasonMigrateConferenceCall::exists_at(layer(216)));
}

#[test]
fn names_for_ids() {
    assert_eq!(
        tl::schema::name_for_id(0xeed42858),
        Some("phoneCallWaiting")
    );
    assert_eq!(
        tl::schema::name_for_id(0x17d54f61),
        Some("phone.receivedCall")
    );
    assert_eq!(tl::schema::name_for_id(0xdeadbeef), None);
}
