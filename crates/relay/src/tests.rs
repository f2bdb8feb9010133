//! The relay against datagrams laid out as the clients' reflector ports write them, and
//! against hostile ones.

use std::net::SocketAddr;

use crate::packet::{self, Datagram, Malformed, data, hello};
use crate::{Dropped, Grant, GrantError, Relay, Settings, Verdict};

const CALLER_TAG: [u8; 16] = [1; 16];
const CALLEE_TAG: [u8; 16] = [2; 16];
const A_END: [u8; 4] = [0xA1, 0xA2, 0xA3, 0xA4];
const B_END: [u8; 4] = [0xB1, 0xB2, 0xB3, 0xB4];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A relay with one call granted and both parties' ends bound by a hello each.
fn live() -> Relay {
    live_with(Settings::default())
}

/// [`live`] with `settings`.
fn live_with(settings: Settings) -> Relay {
    let mut r = Relay::new(settings);
    r.grant(
        Grant {
            call_id: 7,
            caller: CALLER_TAG,
            callee: CALLEE_TAG,
        },
        0,
    )
    .unwrap();
    assert_eq!(
        r.handle(0, addr("10.0.0.1:5000"), &mut hello(&CALLER_TAG, A_END)),
        Verdict::Reply
    );
    assert_eq!(
        r.handle(0, addr("10.0.0.2:6000"), &mut hello(&CALLEE_TAG, B_END)),
        Verdict::Reply
    );
    r
}

#[test]
fn parses_hello_and_data() {
    assert_eq!(
        packet::parse(&hello(&CALLER_TAG, A_END)),
        Ok(Datagram::Hello {
            tag: CALLER_TAG[..12].try_into().unwrap(),
            end: A_END
        })
    );
    assert_eq!(
        packet::parse(&data(&CALLER_TAG, B_END, A_END, b"abcde")),
        Ok(Datagram::Data {
            tag: CALLER_TAG[..12].try_into().unwrap(),
            to: B_END,
            from: A_END,
            len: 5
        })
    );
    assert_eq!(packet::parse(&[0; 23]), Err(Malformed::Short));
    let mut long = data(&CALLER_TAG, B_END, A_END, b"abcd");
    long[23] = 5;
    assert_eq!(packet::parse(&long), Err(Malformed::Length));
}

#[test]
fn forwards_both_ways_with_the_recipients_tag() {
    let mut r = live();
    let mut p = data(&CALLER_TAG, B_END, A_END, b"to the callee");
    assert_eq!(
        r.handle(1, addr("10.0.0.1:5000"), &mut p),
        Verdict::Forward {
            to: addr("10.0.0.2:6000")
        }
    );
    assert_eq!(&p[..12], &CALLEE_TAG[..12], "the callee sees its own tag");
    assert_eq!(
        &p[12..],
        &data(&CALLER_TAG, B_END, A_END, b"to the callee")[12..]
    );
    let mut back = data(&CALLEE_TAG, A_END, B_END, b"to the caller");
    assert_eq!(
        r.handle(2, addr("10.0.0.2:6000"), &mut back),
        Verdict::Forward {
            to: addr("10.0.0.1:5000")
        }
    );
    assert_eq!(&back[..12], &CALLER_TAG[..12]);
    let t = r.traffic(7).unwrap();
    assert_eq!((t.packets, t.bytes), (2, (p.len() + back.len()) as u64));
    assert_eq!(r.totals().forwarded_packets, 2);
    assert_eq!(r.totals().replies, 2);
    assert_eq!(r.relaying(), 1);
}

#[test]
fn unknown_tags_and_junk_get_nothing() {
    let mut r = live();
    let mut junk = vec![0x5A; 100];
    assert_eq!(
        r.handle(1, addr("10.9.9.9:1"), &mut junk),
        Verdict::Drop(Dropped::Malformed)
    );
    assert_eq!(
        r.handle(
            1,
            addr("10.9.9.9:1"),
            &mut data(&[0x5A; 16], B_END, A_END, &[0; 40])
        ),
        Verdict::Drop(Dropped::UnknownTag)
    );
    assert_eq!(
        r.handle(1, addr("10.9.9.9:1"), &mut [1, 2, 3]),
        Verdict::Drop(Dropped::Malformed)
    );
    assert_eq!(
        r.handle(1, addr("10.9.9.9:1"), &mut hello(&[9; 16], A_END)),
        Verdict::Drop(Dropped::UnknownTag)
    );
    assert_eq!(r.totals().dropped(Dropped::UnknownTag), 2);
    assert_eq!(r.totals().dropped(Dropped::Malformed), 2);
}

#[test]
fn a_third_address_cannot_take_over_a_live_end_or_receive_its_traffic() {
    let mut r = live();
    // The caller's end tag from another address, while the caller's end is live.
    assert_eq!(
        r.handle(1, addr("10.6.6.6:7"), &mut hello(&CALLER_TAG, A_END)),
        Verdict::Drop(Dropped::NotAnEnd)
    );
    assert_eq!(
        r.handle(
            1,
            addr("10.6.6.6:7"),
            &mut data(&CALLER_TAG, B_END, A_END, b"x")
        ),
        Verdict::Drop(Dropped::NotAnEnd)
    );
    // The callee's traffic still goes to the caller's real address.
    assert_eq!(
        r.handle(
            2,
            addr("10.0.0.2:6000"),
            &mut data(&CALLEE_TAG, A_END, B_END, b"y")
        ),
        Verdict::Forward {
            to: addr("10.0.0.1:5000")
        }
    );
    // A new end tag binds as another caller end, but nothing is sent to it unless the callee
    // addresses it, and the callee's packets for the real end still go there.
    let rogue = [0xEE; 4];
    assert_eq!(
        r.handle(3, addr("10.6.6.6:7"), &mut hello(&CALLER_TAG, rogue)),
        Verdict::Reply
    );
    assert_eq!(
        r.handle(
            4,
            addr("10.0.0.2:6000"),
            &mut data(&CALLEE_TAG, A_END, B_END, b"z")
        ),
        Verdict::Forward {
            to: addr("10.0.0.1:5000")
        }
    );
    // A party's ends are capped.
    for i in 0..10u8 {
        r.handle(
            5,
            addr(&format!("10.6.6.{i}:7")),
            &mut hello(&CALLER_TAG, [i; 4]),
        );
    }
    assert_eq!(r.traffic(7).unwrap().caller_ends.len(), 4);
}

#[test]
fn data_to_an_end_not_bound_is_dropped() {
    let mut r = live();
    assert_eq!(
        r.handle(
            1,
            addr("10.0.0.1:5000"),
            &mut data(&CALLER_TAG, [0; 4], A_END, b"?")
        ),
        Verdict::Drop(Dropped::UnknownDestination)
    );
    // A party cannot address its own ends.
    assert_eq!(
        r.handle(
            1,
            addr("10.0.0.1:5000"),
            &mut data(&CALLER_TAG, A_END, A_END, b"?")
        ),
        Verdict::Drop(Dropped::UnknownDestination)
    );
}

#[test]
fn a_revoked_call_is_unknown() {
    let mut r = live();
    let t = r.revoke(7).unwrap();
    assert_eq!(t.caller_ends, vec![addr("10.0.0.1:5000")]);
    assert_eq!(
        r.handle(
            1,
            addr("10.0.0.1:5000"),
            &mut data(&CALLER_TAG, B_END, A_END, b"x")
        ),
        Verdict::Drop(Dropped::UnknownTag)
    );
    assert!(r.revoke(7).is_none());
    assert_eq!(r.calls().count(), 0);
}

#[test]
fn a_flood_on_one_call_is_capped_and_the_other_call_carries_on() {
    let mut r = live();
    let other = Grant {
        call_id: 8,
        caller: [3; 16],
        callee: [4; 16],
    };
    r.grant(other, 0).unwrap();
    r.handle(0, addr("10.0.1.1:1"), &mut hello(&[3; 16], A_END));
    r.handle(0, addr("10.0.1.2:1"), &mut hello(&[4; 16], B_END));
    let mut forwarded = 0;
    for _ in 0..10_000 {
        let v = r.handle(
            10,
            addr("10.0.0.1:5000"),
            &mut data(&CALLER_TAG, B_END, A_END, &[0; 100]),
        );
        if matches!(v, Verdict::Forward { .. }) {
            forwarded += 1;
        }
    }
    // One second of burst per end, within the same millisecond.
    assert_eq!(forwarded, Settings::default().end_packets_per_sec);
    assert!(r.totals().dropped(Dropped::EndOverLimit) > 7_000);
    assert_eq!(
        r.handle(
            10,
            addr("10.0.1.1:1"),
            &mut data(&[3; 16], B_END, A_END, b"ok")
        ),
        Verdict::Forward {
            to: addr("10.0.1.2:1")
        }
    );
    // The bucket refills with time.
    assert!(matches!(
        r.handle(
            1_010,
            addr("10.0.0.1:5000"),
            &mut data(&CALLER_TAG, B_END, A_END, b"later")
        ),
        Verdict::Forward { .. }
    ));
}

#[test]
fn the_byte_rate_is_per_call() {
    let mut r = live_with(Settings {
        call_bytes_per_sec: 1_000,
        ..Settings::default()
    });
    let big = data(&CALLER_TAG, B_END, A_END, &[0; 476]); // 500 bytes
    assert!(matches!(
        r.handle(0, addr("10.0.0.1:5000"), &mut big.clone()),
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        r.handle(0, addr("10.0.0.1:5000"), &mut big.clone()),
        Verdict::Forward { .. }
    ));
    assert_eq!(
        r.handle(0, addr("10.0.0.1:5000"), &mut big.clone()),
        Verdict::Drop(Dropped::CallOverLimit)
    );
}

#[test]
fn an_idle_end_can_be_rebound_from_a_new_address() {
    let mut r = live();
    let idle = Settings::default().end_idle_ms;
    assert_eq!(
        r.handle(
            idle / 2,
            addr("10.0.0.1:5001"),
            &mut hello(&CALLER_TAG, A_END)
        ),
        Verdict::Drop(Dropped::NotAnEnd)
    );
    // The callee keeps talking, the caller's old address goes silent.
    r.handle(idle, addr("10.0.0.2:6000"), &mut hello(&CALLEE_TAG, B_END));
    assert_eq!(
        r.handle(
            idle + 1,
            addr("10.0.0.1:5001"),
            &mut hello(&CALLER_TAG, A_END)
        ),
        Verdict::Reply
    );
    assert_eq!(
        r.handle(
            idle + 2,
            addr("10.0.0.2:6000"),
            &mut data(&CALLEE_TAG, A_END, B_END, b"x")
        ),
        Verdict::Forward {
            to: addr("10.0.0.1:5001")
        }
    );
    r.sweep(10 * idle);
    let t = r.traffic(7).unwrap();
    assert!(t.caller_ends.is_empty() && t.callee_ends.is_empty());
}

#[test]
fn grants_are_capped_and_tags_unique() {
    let mut r: Relay = Relay::new(Settings {
        max_calls: 1,
        ..Settings::default()
    });
    let g = |id, a, b| Grant {
        call_id: id,
        caller: [a; 16],
        callee: [b; 16],
    };
    assert_eq!(r.grant(g(1, 1, 1), 0), Err(GrantError::TagInUse));
    r.grant(g(1, 1, 2), 0).unwrap();
    r.grant(g(1, 1, 2), 0).unwrap();
    assert_eq!(r.grant(g(2, 3, 4), 0), Err(GrantError::Full));
    r.revoke(1);
    assert_eq!(r.grant(g(2, 1, 4), 0), Ok(()));
    assert_eq!(
        Relay::<u64>::new(Settings::default()).grant(g(3, 5, 6), 0),
        Ok(())
    );
}

#[test]
fn the_tcp_hello_binds_an_end() {
    let mut tcp_hello = CALLER_TAG[..12].to_vec();
    tcp_hello.extend(A_END);
    tcp_hello.extend([0; 4]);
    assert_eq!(
        packet::parse(&tcp_hello),
        Ok(Datagram::Hello {
            tag: CALLER_TAG[..12].try_into().unwrap(),
            end: A_END
        })
    );
    // Any address type: here, stream connection numbers.
    let mut r: Relay<u64> = Relay::new(Settings::default());
    r.grant(
        Grant {
            call_id: 1,
            caller: CALLER_TAG,
            callee: CALLEE_TAG,
        },
        0,
    )
    .unwrap();
    assert_eq!(r.handle(0, 10, &mut tcp_hello), Verdict::Reply);
    assert_eq!(
        r.handle(0, 11, &mut hello(&CALLEE_TAG, B_END)),
        Verdict::Reply
    );
    assert_eq!(
        r.handle(1, 11, &mut data(&CALLEE_TAG, A_END, B_END, b"over tcp")),
        Verdict::Forward { to: 10 }
    );
}

#[test]
fn the_byte_rate_is_per_end_too() {
    let mut r = live_with(Settings {
        end_bytes_per_sec: 600,
        ..Settings::default()
    });
    let big = data(&CALLER_TAG, B_END, A_END, &[0; 476]); // 500 bytes
    assert!(matches!(
        r.handle(0, addr("10.0.0.1:5000"), &mut big.clone()),
        Verdict::Forward { .. }
    ));
    assert_eq!(
        r.handle(0, addr("10.0.0.1:5000"), &mut big.clone()),
        Verdict::Drop(Dropped::EndOverLimit)
    );
    // The other end's allowance is its own.
    assert!(matches!(
        r.handle(
            0,
            addr("10.0.0.2:6000"),
            &mut data(&CALLEE_TAG, A_END, B_END, &[0; 476])
        ),
        Verdict::Forward { .. }
    ));
}
