//! Both sides of the handshake against each other, in memory.

use super::*;
use crate::crypto::OsEntropy;
use crate::crypto::rsa_key::ServerKey;

fn run(
    scheme: RsaScheme,
    temp: Option<i32>,
    server_key: &ServerKey,
    server: &mut ServerHandshake,
) -> (ClientKey, CreatedKey) {
    run_with(
        scheme,
        temp,
        std::slice::from_ref(server_key),
        &[server_key.public()],
        server,
    )
    .unwrap()
}

/// A handshake between a server holding `server_keys` and a client that knows `known`.
fn run_with(
    scheme: RsaScheme,
    temp: Option<i32>,
    server_keys: &[ServerKey],
    known: &[crate::crypto::rsa_key::PublicKey],
    server: &mut ServerHandshake,
) -> Result<(ClientKey, CreatedKey), HandshakeError> {
    let e = &mut OsEntropy;
    let (mut client, req_pq) = ClientHandshake::start(scheme, 2, temp, e);
    let (res_pq, none) = server.handle(&req_pq, server_keys, 1_700_000_000, e)?;
    assert!(none.is_none());
    let req_dh = client.on_res_pq(&res_pq, known, e)?;
    let (dh_params, none) = server.handle(&req_dh, server_keys, 1_700_000_000, e)?;
    assert!(none.is_none());
    let set_dh = client.on_dh_params(&dh_params, 1_700_000_003, e)?;
    let (answer, created) = server.handle(&set_dh, server_keys, 1_700_000_004, e)?;
    let client_key = client.on_dh_answer(&answer)?;
    Ok((client_key, created.expect("a key once the answer is sent")))
}

#[test]
fn a_server_with_several_keys_accepts_a_client_that_knows_any_one() {
    let keys = [
        ServerKey::generate().unwrap(),
        ServerKey::generate().unwrap(),
    ];
    let mut server = ServerHandshake::new();
    for known in &keys {
        let (client, created) =
            run_with(RsaScheme::Pad, None, &keys, &[known.public()], &mut server).unwrap();
        assert_eq!(client.auth_key, created.auth_key);
    }
    // A client that pinned a key the server no longer holds finds none it knows.
    let retired = run_with(
        RsaScheme::Pad,
        None,
        &keys[1..],
        &[keys[0].public()],
        &mut server,
    );
    assert!(retired.is_err());
    // One whose key is known but not offered (a forged fingerprint) is refused by the server.
    assert!(run_with(RsaScheme::Pad, None, &[], &[keys[0].public()], &mut server).is_err());
}

#[test]
fn both_rsa_schemes_and_temporary_keys() {
    let server_key = ServerKey::generate().unwrap();
    let mut server = ServerHandshake::new();
    for (scheme, temp) in [
        (RsaScheme::Pad, None),
        (RsaScheme::Legacy, None),
        (RsaScheme::Pad, Some(3600)),
    ] {
        // Several keys on one handshake object: as on one connection.
        let (client, created) = run(scheme, temp, &server_key, &mut server);
        assert_eq!(client.auth_key, created.auth_key);
        assert_eq!(client.first_salt, created.first_salt);
        assert_eq!(client.time_offset, -3);
        assert_eq!(created.expires_in, temp);
        assert!(!server.in_progress());
    }
}

#[test]
fn out_of_order_and_forged_steps_fail() {
    let server_key = ServerKey::generate().unwrap();
    let e = &mut OsEntropy;
    let mut server = ServerHandshake::new();
    // set_client_DH_params before anything.
    let bogus = tl::Encode::to_bytes(
        &tl::functions::SetClientDHParams {
            nonce: [0; 16],
            server_nonce: [0; 16],
            encrypted_data: vec![0; 32],
        },
        tl::Layer::LATEST,
    );
    assert!(matches!(
        server.handle(&bogus, std::slice::from_ref(&server_key), 0, e),
        Err(HandshakeError::UnexpectedMessage(_))
    ));
    // A wrong nonce in req_DH_params.
    let (mut client, req_pq) = ClientHandshake::start(RsaScheme::Pad, 2, None, e);
    let (res_pq, _) = server
        .handle(&req_pq, std::slice::from_ref(&server_key), 0, e)
        .unwrap();
    let mut req_dh = client
        .on_res_pq(&res_pq, &[server_key.public()], e)
        .unwrap();
    req_dh[4] ^= 1;
    assert_eq!(
        server
            .handle(&req_dh, std::slice::from_ref(&server_key), 0, e)
            .unwrap_err(),
        HandshakeError::NonceMismatch
    );
    // RSA garbage.
    let (res_pq, _) = server
        .handle(&req_pq, std::slice::from_ref(&server_key), 0, e)
        .unwrap();
    let mut req_dh = client
        .on_res_pq(&res_pq, &[server_key.public()], e)
        .unwrap();
    let n = req_dh.len();
    req_dh[n - 10] ^= 0xff;
    assert_eq!(
        server
            .handle(&req_dh, std::slice::from_ref(&server_key), 0, e)
            .unwrap_err(),
        HandshakeError::BadInnerData
    );
    // Not a handshake message at all.
    assert!(
        server
            .handle(&[1, 2, 3, 4], std::slice::from_ref(&server_key), 0, e)
            .is_err()
    );
}
