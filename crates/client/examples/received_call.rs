//! The seed (`phone.receivedCall`, `docs/calls.md §4`) in
//! Rust, against a running `mtcall serve`: a callee logs in, a caller (a second account of the
//! same program) calls it, and the callee runs the seed's invocation on the incoming call and
//! prints its result — `true`.
//!
//! `cargo run -p mtcall-client --example received_call -- [ADDRESS] [DATA_DIR]`
//! (defaults: 127.0.0.1:4430 and ./mtcall-data, whose server.pub holds the server's key).

use client::Client;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::transport::Kind;
use tl::{enums, functions, types};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .map_or("127.0.0.1:4430", String::as_str)
        .parse()?;
    let data = args.get(2).map_or("mtcall-data", String::as_str);
    let key = PublicKey::from_pkcs1_pem(&std::fs::read_to_string(format!("{data}/server.pub"))?)?;

    let mut callee = Client::connect(addr, &key, Kind::Full, false).await?;
    callee.login("9996600002", "Callee").await?;
    let mut caller = Client::connect(addr, &key, Kind::Full, false).await?;
    caller.login("9996600001", "Caller").await?;

    // The caller places a real call (Diffie–Hellman commitment and all).
    let enums::contacts::ResolvedPeer::ResolvedPeer(found) = caller
        .call(&functions::contacts::ResolvePhone {
            phone: "9996600002".into(),
        })
        .await?;
    let enums::User::User(u) = &found.users[0] else {
        return Err("no such user".into());
    };
    let user: enums::InputUser = types::InputUser {
        user_id: u.id,
        access_hash: u.access_hash.unwrap_or_default(),
    }
    .into();
    let outgoing = caller.place_call(user, false).await?;

    // The callee sees the call arrive (without acknowledging it yet) ...
    let incoming = callee.next_incoming_call(false).await?;

    // ... and does what the seed's example does.
    let result: bool = callee
        .call(&functions::phone::ReceivedCall {
            peer: types::InputPhoneCall {
                id: incoming.id,
                access_hash: incoming.access_hash,
            }
            .into(),
        })
        .await?;
    println!("{result}"); // prints the result

    outgoing.cancel(&mut caller).await?;
    Ok(())
}
