//! The client library's high-level call API against the real server: a complete call between
//! two Rust clients with the key fingerprint matching on both sides, busy refusal, decline.

mod support;

use client::calls::CallFailure;
use mtproto::transport::Kind;
use support::*;
use tl::enums;

#[tokio::test]
async fn two_rust_clients_complete_a_call_with_matching_fingerprints() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996630001", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Intermediate, true).await;
    bob.login("9996630002", "Bob").await.unwrap();
    let mut carol = connect(&server, Kind::Abridged, false).await;
    carol.login("9996630003", "Carol").await.unwrap();

    let bob_user = user_of(&mut alice, "9996630002").await;
    let mut outgoing = alice.place_call(bob_user.clone(), false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert!(
        outgoing.ringing(&mut alice).await.unwrap() > 0,
        "receivedCall made the caller ring"
    );

    // Bob acknowledged: Carol's call is refused as busy.
    let bob_for_carol = user_of(&mut carol, "9996630002").await;
    let refused = carol.place_call(bob_for_carol, false).await.unwrap();
    let busy = refused.established(&mut carol).await.unwrap_err();
    assert!(
        matches!(
            busy,
            CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Busy(_)))
        ),
        "{busy:?}"
    );

    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.key, b.key);
    assert_eq!(a.fingerprint, b.fingerprint);
    a.hang_up(&mut alice, 5).await.unwrap();

    // A declined call ends for the caller with the reason the callee gave.
    let again = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    incoming.decline(&mut bob).await.unwrap();
    let ended = again.established(&mut alice).await.unwrap_err();
    assert!(matches!(
        ended,
        CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Busy(_)))
    ));
}
