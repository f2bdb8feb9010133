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
    let e = &mut OsEntropy;
    let keys = [server_key.public()];
    let (mut client, req_pq) = ClientHandshake::start(scheme, 2, temp, e);
    let (res_pq, none) = server
        .handle(&req_pq, server_key, 1_700_000_000, e)
        .unwrap();
    assert!(none.is_none());
    let req_dh = client.on_res_pq(&res_pq, &keys, e).unwrap();
    let (dh_params, none) = server
        .handle(&req_dh, server_key, 1_700_000_000, e)
        .unwrap();
    assert!(none.is_none());
    let set_dh = client.on_dh_params(&dh_params, 1_700_000_003, e).unwrap();
    let (answer, created) = server
        .handle(&set_dh, server_key, 1_700_000_004, e)
        .unwrap();
    let client_key = client.on_dh_answer(&answer).unwrap();
    (client_key, created.unwrap())
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
        server.handle(&bogus, &server_key, 0, e),
        Err(HandshakeError::UnexpectedMessage(_))
    ));
    // A wrong nonce in req_DH_params.
    let (mut client, req_pq) = ClientHandshake::start(RsaScheme::Pad, 2, None, e);
    let (res_pq, _) = server.handle(&req_pq, &server_key, 0, e).unwrap();
    let mut req_dh = client
        .on_res_pq(&res_pq, &[server_key.public()], e)
        .unwrap();
    req_dh[4] ^= 1;
    assert_eq!(
        server.handle(&req_dh, &server_key, 0, e).unwrap_err(),
        HandshakeError::NonceMismatch
    );
    // RSA garbage.
    let (res_pq, _) = server.handle(&req_pq, &server_key, 0, e).unwrap();
    let mut req_dh = client
        .on_res_pq(&res_pq, &[server_key.public()], e)
        .unwrap();
    let n = req_dh.len();
    req_dh[n - 10] ^= 0xff;
    assert_eq!(
        server.handle(&req_dh, &server_key, 0, e).unwrap_err(),
        HandshakeError::BadInnerData
    );
    // Not a handshake message at all.
    assert!(server.handle(&[1, 2, 3, 4], &server_key, 0, e).is_err());
}
