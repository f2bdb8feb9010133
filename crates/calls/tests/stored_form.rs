//! The stored form of a call: bytes written before calls carried their stage as typed data
//! still read as the same call, and are written back byte for byte (no stored call is lost on
//! an upgrade).

use calls::{Call, Phase, Reason, Stage, State};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Calls as the previous release stored them: requested; confirmed; confirmed then hung up by
/// the callee; requested then missed.
const REQUESTED: &str = concat!(
    "0100636d05000000000000000600000064000000b57572990a00000000000000140000000000000001000000",
    "0000000002000000000000000000000020030303030303030303030303030303030303030303030303030303",
    "0303030303000000379779bc379779bc379779bcb5757299b5757299410000005c0000000100000005322e34",
    "2e340000379779bc379779bc0a000000000000000b00000000000000379779bc379779bc379779bc379779bc",
    "379779bc"
);
const CONFIRMED: &str = concat!(
    "0100636d05000000000000000600000064000000b57572990a00000000000000140000000000000001000000",
    "0000000002000000000000000300000020030303030303030303030303030303030303030303030303030303",
    "0303030303000000b575729903040404b575729903050505b57572994d00000000000000b5757299b5757299",
    "410000005c0000000100000005322e342e340000b5757299b5757299b5757299410000005c00000001000000",
    "05322e342e340000b5757299b5757299b5757299410000005c0000000100000005322e342e3400000a000000",
    "000000000b00000000000000b575729914000000000000001500000000000000b575729965000000b5757299",
    "66000000b575729967000000379779bc"
);
const ENDED: &str = concat!(
    "0100636d05000000000000000600000064000000b57572990a00000000000000140000000000000001000000",
    "0000000002000000000000000400000020030303030303030303030303030303030303030303030303030303",
    "0303030303000000b575729903040404b575729903050505b57572994d00000000000000b5757299b5757299",
    "410000005c0000000100000005322e342e340000b5757299b5757299b5757299410000005c00000001000000",
    "05322e342e340000b5757299b5757299b5757299410000005c0000000100000005322e342e3400000a000000",
    "000000000b00000000000000b575729914000000000000001500000000000000b575729965000000b5757299",
    "66000000b575729967000000b5757299b575729902000000b57572991e000000b57572991400000000000000",
    "85000000379779bc379779bc"
);
const MISSED: &str = concat!(
    "0100636d05000000000000000600000064000000b57572990a00000000000000140000000000000001000000",
    "0000000002000000000000000400000020030303030303030303030303030303030303030303030303030303",
    "0303030303000000379779bc379779bc379779bcb5757299b5757299410000005c0000000100000005322e34",
    "2e340000379779bc379779bc0a000000000000000b00000000000000379779bc379779bc379779bc379779bc",
    "b5757299b575729900000000379779bc379779bc7d000000379779bc379779bc"
);

#[test]
fn calls_stored_before_read_back_as_the_same_call() {
    for hex in [REQUESTED, CONFIRMED, ENDED, MISSED] {
        let bytes = unhex(hex);
        let call = Call::from_bytes(&bytes).unwrap();
        assert_eq!(call.to_bytes(), bytes, "written back as it was");
    }
    let requested = Call::from_bytes(&unhex(REQUESTED)).unwrap();
    assert_eq!(requested.phase, Phase::Live(Stage::Requested));
    let confirmed = Call::from_bytes(&unhex(CONFIRMED)).unwrap();
    assert_eq!(confirmed.state(), State::Confirmed);
    assert_eq!(confirmed.receive_date(), Some(101));
    assert_eq!(confirmed.accept_date(), Some(102));
    assert_eq!(confirmed.start_date(), Some(103));
    assert_eq!(confirmed.keys().unwrap().fingerprint, 77);
    assert_eq!(confirmed.answer().unwrap().g_b, vec![4; 3]);
    assert_eq!(confirmed.answer().unwrap().session.user_id, 20);
    let ended = Call::from_bytes(&unhex(ENDED)).unwrap();
    assert_eq!(ended.state(), State::Discarded);
    assert!(matches!(ended.stage(), Stage::Confirmed { .. }));
    let d = ended.discard().unwrap();
    assert_eq!(
        (d.reason.clone(), d.duration, d.by),
        (Some(Reason::Hangup), Some(30), Some(20))
    );
    let missed = Call::from_bytes(&unhex(MISSED)).unwrap();
    assert!(
        matches!(&missed.phase, Phase::Ended(Stage::Requested, d) if d.reason == Some(Reason::Missed))
    );
}

#[test]
fn a_state_its_data_does_not_bear_out_is_refused() {
    // The confirmed call with its state byte set to "accepted" (code 2): it has keys.
    let mut bytes = unhex(CONFIRMED);
    let at = 4 + 8 + 4 + 4 + 4 + 8 * 4;
    assert_eq!(bytes[at], 3, "the state code of a confirmed call");
    bytes[at] = 2;
    assert!(Call::from_bytes(&bytes).is_err());
    // A requested call stored as received, with no receive date.
    let mut bytes = unhex(REQUESTED);
    bytes[at] = 1;
    assert!(Call::from_bytes(&bytes).is_err());
}
