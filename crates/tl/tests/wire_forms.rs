//! Exact bytes of the seed's lines and of the constructors whose form depends on the layer
//! (`docs/clients.md` §1.4, `docs/calls.md` §1.1).

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
    // Each library's own schema gives these (Pyrogram 158, Hydrogram 181, GramJS 198,
    // grammers 216, Pyrofork 220, mtcute 227, Telethon and kurigram 229).
    type IdAt = fn(Layer) -> u32;
    type IdsByLayer = [(i32, u32); 8];
    let cases: [(&str, IdAt, IdsByLayer); 10] = [
        (
            "user",
            types::User::constructor_id_at,
            [
                (158, 0x8f97c628),
                (181, 0x215c4438),
                (198, 0x4b46c37e),
                (216, 0x020b1422),
                (220, 0x31774388),
                (227, 0x31774388),
                (229, 0xb1b8cc83),
                (230, 0xb1b8cc83),
            ],
        ),
        (
            "userFull",
            types::UserFull::constructor_id_at,
            [
                (158, 0x93eadb53),
                (181, 0xcc997720),
                (198, 0x4d975bbc),
                (216, 0xa02bc13e),
                (220, 0xa02bc13e),
                (227, 0x06cbe645),
                (229, 0x06cbe645),
                (230, 0x06cbe645),
            ],
        ),
        (
            "phoneCall",
            types::PhoneCall::constructor_id_at,
            [
                (158, 0x967f7c67),
                (181, 0x30535af5),
                (198, 0x3ba5940c),
                (216, 0x30535af5),
                (220, 0x30535af5),
                (227, 0x30535af5),
                (229, 0x30535af5),
                (230, 0x30535af5),
            ],
        ),
        (
            "phoneCallWaiting",
            types::PhoneCallWaiting::constructor_id_at,
            [
                (158, 0xc5226f17),
                (181, 0xc5226f17),
                (198, 0xeed42858),
                (216, 0xc5226f17),
                (220, 0xc5226f17),
                (227, 0xc5226f17),
                (229, 0xc5226f17),
                (230, 0xc5226f17),
            ],
        ),
        (
            "phoneCallRequested",
            types::PhoneCallRequested::constructor_id_at,
            [
                (158, 0x14b0ed0c),
                (181, 0x14b0ed0c),
                (198, 0x45361c63),
                (216, 0x14b0ed0c),
                (220, 0x14b0ed0c),
                (227, 0x14b0ed0c),
                (229, 0x14b0ed0c),
                (230, 0x14b0ed0c),
            ],
        ),
        (
            "phoneCallDiscarded",
            types::PhoneCallDiscarded::constructor_id_at,
            [
                (158, 0x50ca4de1),
                (181, 0x50ca4de1),
                (198, 0xf9d25503),
                (216, 0x50ca4de1),
                (220, 0x50ca4de1),
                (227, 0x50ca4de1),
                (229, 0x50ca4de1),
                (230, 0x50ca4de1),
            ],
        ),
        (
            "phone.requestCall",
            functions::phone::RequestCall::constructor_id_at,
            [
                (158, 0x42ff96ed),
                (181, 0x42ff96ed),
                (198, 0xa6c4600c),
                (216, 0x42ff96ed),
                (220, 0x42ff96ed),
                (227, 0x42ff96ed),
                (229, 0x42ff96ed),
                (230, 0x42ff96ed),
            ],
        ),
        (
            "userStatusRecently",
            types::UserStatusRecently::constructor_id_at,
            [
                (158, 0xe26f42f1),
                (181, 0x7b197dc8),
                (198, 0x7b197dc8),
                (216, 0x7b197dc8),
                (220, 0x7b197dc8),
                (227, 0x7b197dc8),
                (229, 0x7b197dc8),
                (230, 0x7b197dc8),
            ],
        ),
        (
            "auth.signUp",
            functions::auth::SignUp::constructor_id_at,
            [
                (158, 0x80eee427),
                (181, 0xaac7b717),
                (198, 0xaac7b717),
                (216, 0xaac7b717),
                (220, 0xaac7b717),
                (227, 0xaac7b717),
                (229, 0xaac7b717),
                (230, 0xaac7b717),
            ],
        ),
        (
            "contacts.resolveUsername",
            functions::contacts::ResolveUsername::constructor_id_at,
            [
                (158, 0xf93ccba3),
                (181, 0xf93ccba3),
                (198, 0x725afbbc),
                (216, 0x725afbbc),
                (220, 0x725afbbc),
                (227, 0x725afbbc),
                (229, 0x725afbbc),
                (230, 0x725afbbc),
            ],
        ),
    ];
    assert_eq!(Layer::all().count(), 8);
    for (name, id_at, ids) in cases {
        for (number, want) in ids {
            let l = Layer::exact(number).expect("a supported layer");
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

#[test]
fn a_peer_is_read_where_a_user_is_expected_and_the_reverse() {
    let peer = enums::InputPeer::from(types::InputPeerUser {
        user_id: 7,
        access_hash: -9,
    })
    .to_bytes(Layer::LATEST);
    assert_eq!(
        enums::InputUser::from_bytes(&peer).unwrap(),
        enums::InputUser::from(types::InputUser {
            user_id: 7,
            access_hash: -9
        })
    );
    let user_self =
        enums::InputUser::InputUserSelf(types::InputUserSelf {}).to_bytes(Layer::LATEST);
    assert_eq!(
        enums::InputPeer::from_bytes(&user_self).unwrap(),
        enums::InputPeer::InputPeerSelf(types::InputPeerSelf {})
    );
    let empty = enums::InputPeer::Empty(types::InputPeerEmpty {}).to_bytes(Layer::LATEST);
    assert_eq!(
        enums::InputUser::from_bytes(&empty).unwrap(),
        enums::InputUser::Empty(types::InputUserEmpty {})
    );
    // Inside a request, as kurigram sends `users.getUsers` after `resolve_peer()`.
    let request = functions::Request::from_bytes(
        &[
            &functions::users::GetUsers { id: Vec::new() }.to_bytes(Layer::LATEST)[..4],
            &0x1cb5c415u32.to_le_bytes()[..],
            &1u32.to_le_bytes()[..],
            &peer[..],
        ]
        .concat(),
    )
    .unwrap();
    assert!(matches!(
        request,
        functions::Request::UsersGetUsers(r) if r.id == [enums::InputUser::from(types::InputUser { user_id: 7, access_hash: -9 })]
    ));
    // A chat is no user: that stays an unexpected constructor.
    let chat = enums::InputPeer::from(types::InputPeerChat { chat_id: 1 }).to_bytes(Layer::LATEST);
    assert!(enums::InputUser::from_bytes(&chat).is_err());
}
