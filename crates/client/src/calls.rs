//! The high-level call API (`docs/calls.md §3`): place a
//! call, receive one (acknowledging it with `phone.receivedCall` on arrival unless told not
//! to), accept, confirm and hang up, with the Diffie–Hellman exchange done as the official
//! clients do — `messages.getDhConfig` cached and checked, `g_a_hash` committed first, `g_a`
//! checked against it, the key fingerprint verified.

use mtproto::crypto::{Entropy, OsEntropy, dh};
use sha1::Digest as _;
use tl::{enums, functions, types};

use crate::{Client, ClientError};

/// The protocol mtcall's client offers (the one official clients use for tgcalls).
pub fn default_protocol() -> enums::PhoneCallProtocol {
    types::PhoneCallProtocol {
        udp_p2p: true,
        udp_reflector: true,
        min_layer: 65,
        max_layer: 92,
        library_versions: vec!["2.4.4".into()],
    }
    .into()
}

/// Checked Diffie–Hellman parameters from `messages.getDhConfig`.
#[derive(Clone, Debug)]
pub struct DhConfig {
    /// Generator.
    pub g: i32,
    /// 2048-bit safe prime, big-endian.
    pub p: [u8; 256],
    /// The server's version of them.
    pub version: i32,
}

/// Why a call could not go on.
#[derive(Debug)]
pub enum CallFailure {
    /// The connection or an RPC failed.
    Client(ClientError),
    /// The server's DH parameters fail the checks.
    BadDhConfig(&'static str),
    /// The other side's `g_a`/`g_b` is outside the safe range, or `g_a` does not match its hash.
    BadKey(&'static str),
    /// The call ended (the other side's `phoneCallDiscarded`).
    Ended(Option<enums::PhoneCallDiscardReason>),
}

impl From<ClientError> for CallFailure {
    fn from(e: ClientError) -> Self {
        CallFailure::Client(e)
    }
}

impl From<tl::DecodeError> for CallFailure {
    fn from(e: tl::DecodeError) -> Self {
        CallFailure::Client(ClientError::Decode(e))
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(e) => write!(f, "{e}"),
            Self::BadDhConfig(why) => write!(f, "unsafe DH parameters: {why}"),
            Self::BadKey(why) => write!(f, "key exchange failed: {why}"),
            Self::Ended(reason) => write!(f, "the call ended ({reason:?})"),
        }
    }
}

impl std::error::Error for CallFailure {}

/// `g` is a quadratic residue that generates the prime-order subgroup (the checks of the
/// secret-chat docs, `docs/calls.md §3`).
fn g_is_good(g: i32, p: &[u8; 256]) -> bool {
    let rem = |m: u64| {
        p.iter()
            .fold(0u64, |acc, b| (acc * 256 + u64::from(*b)) % m)
    };
    match g {
        2 => rem(8) == 7,
        3 => rem(3) == 2,
        4 => true,
        5 => matches!(rem(5), 1 | 4),
        6 => matches!(rem(24), 19 | 23),
        7 => matches!(rem(7), 3 | 5 | 6),
        _ => false,
    }
}

impl Client {
    /// `messages.getDhConfig`, cached: the prime must be Telegram's known safe prime (the one
    /// every server uses) and `g` must pass the checks.
    pub async fn dh_config(&mut self) -> Result<DhConfig, CallFailure> {
        if let Some(cached) = self.dh.clone() {
            let version = cached.version;
            let r = self
                .call(&functions::messages::GetDhConfig {
                    version,
                    random_length: 0,
                })
                .await?;
            if matches!(r, enums::messages::DhConfig::NotModified(_)) {
                return Ok(cached);
            }
        }
        let r = self
            .call(&functions::messages::GetDhConfig {
                version: 0,
                random_length: 0,
            })
            .await?;
        let enums::messages::DhConfig::DhConfig(c) = r else {
            return Err(CallFailure::BadDhConfig("no parameters sent"));
        };
        let p: [u8; 256] =
            c.p.as_slice()
                .try_into()
                .map_err(|_| CallFailure::BadDhConfig("p is not 2048 bits"))?;
        if p != dh::DH_PRIME {
            // A full safe-prime test is ~150 ms; mtcall's client accepts the known prime only.
            return Err(CallFailure::BadDhConfig("p is not the known safe prime"));
        }
        if !g_is_good(c.g, &p) {
            return Err(CallFailure::BadDhConfig(
                "g does not generate the right subgroup",
            ));
        }
        let config = DhConfig {
            g: c.g,
            p,
            version: c.version,
        };
        self.dh = Some(config.clone());
        Ok(config)
    }

    async fn next_call_state(&mut self, call_id: i64) -> Result<enums::PhoneCall, ClientError> {
        loop {
            if let enums::Update::PhoneCall(p) = self.next_update().await?
                && p.phone_call.id() == call_id
            {
                return Ok(p.phone_call);
            }
        }
    }

    /// Places a call to `user`. Returns once the server created it (`phoneCallWaiting`).
    pub async fn place_call(
        &mut self,
        user: enums::InputUser,
        video: bool,
    ) -> Result<OutgoingCall, CallFailure> {
        let config = self.dh_config().await?;
        let (a, g_a) = secret(&config);
        let random_id = OsEntropy.i64() as i32;
        let g_a_hash = sha2::Sha256::digest(g_a).to_vec();
        let r = self
            .call(&functions::phone::RequestCall {
                video,
                user_id: user,
                random_id,
                g_a_hash,
                protocol: default_protocol(),
            })
            .await?;
        let enums::phone::PhoneCall::PhoneCall(r) = r;
        match r.phone_call {
            enums::PhoneCall::Waiting(w) => Ok(OutgoingCall {
                id: w.id,
                access_hash: w.access_hash,
                a,
                g_a,
                config,
                receive_date: None,
            }),
            enums::PhoneCall::Discarded(d) => Err(CallFailure::Ended(d.reason)),
            _ => Err(CallFailure::BadKey(
                "requestCall did not answer phoneCallWaiting",
            )),
        }
    }

    /// Waits for the next incoming call; acknowledges it with `phone.receivedCall` (so the
    /// caller rings and this user is busy) when `acknowledge` is set.
    pub async fn next_incoming_call(
        &mut self,
        acknowledge: bool,
    ) -> Result<IncomingCall, CallFailure> {
        loop {
            if let enums::Update::PhoneCall(p) = self.next_update().await?
                && let enums::PhoneCall::Requested(r) = p.phone_call
            {
                let call = IncomingCall {
                    id: r.id,
                    access_hash: r.access_hash,
                    admin_id: r.admin_id,
                    g_a_hash: r.g_a_hash,
                    video: r.video,
                };
                if acknowledge {
                    self.call(&functions::phone::ReceivedCall { peer: call.peer() })
                        .await?;
                }
                return Ok(call);
            }
        }
    }
}

fn secret(config: &DhConfig) -> ([u8; 256], [u8; 256]) {
    loop {
        let a: [u8; 256] = OsEntropy.array();
        let g_a = dh::mod_pow(&[config.g as u8], &a);
        if dh::is_safe_public_value(&g_a) {
            return (a, g_a);
        }
    }
}

/// A key's fingerprint: the low 64 bits of its SHA-1, little-endian.
pub fn key_fingerprint(key: &[u8; 256]) -> i64 {
    let h = sha1::Sha1::digest(key);
    i64::from_le_bytes(h[12..20].try_into().expect("8 bytes"))
}

/// The 333 emojis the official clients draw a call's key with, in their order (the table is
/// protocol data: both sides must index the same list to show the same four pictures).
const EMOJI_TABLE: &str = include_str!("emoji_table.txt");

/// The four emojis both parties see for a call's key, as the official clients compute them:
/// `SHA256(key ‖ g_a)` read as four big-endian 64-bit numbers, each with its top bit cleared,
/// modulo the table's length. `g_a` is always the caller's public value.
pub fn emoji_fingerprint(key: &[u8; 256], g_a: &[u8]) -> [&'static str; 4] {
    let table: Vec<&'static str> = EMOJI_TABLE.split_whitespace().collect();
    let digest = sha2::Sha256::new()
        .chain_update(key)
        .chain_update(g_a)
        .finalize();
    std::array::from_fn(|i| {
        let word = u64::from_be_bytes(digest[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        table[((word & (u64::MAX >> 1)) % table.len() as u64) as usize]
    })
}

/// A call this client placed.
#[derive(Debug)]
pub struct OutgoingCall {
    /// Call id.
    pub id: i64,
    /// This client's access hash for it.
    pub access_hash: i64,
    a: [u8; 256],
    g_a: [u8; 256],
    config: DhConfig,
    /// When the callee's device acknowledged (the call is ringing).
    pub receive_date: Option<i32>,
}

/// A call to this client.
#[derive(Clone, Debug)]
pub struct IncomingCall {
    /// Call id.
    pub id: i64,
    /// This client's access hash for it.
    pub access_hash: i64,
    /// The caller.
    pub admin_id: i64,
    /// The caller's committed `SHA256(g_a)`.
    pub g_a_hash: Vec<u8>,
    /// A video call.
    pub video: bool,
}

/// A call with its key agreed.
#[derive(Clone, Debug)]
pub struct EstablishedCall {
    /// Call id.
    pub id: i64,
    /// This client's access hash for it.
    pub access_hash: i64,
    /// The shared key.
    pub key: [u8; 256],
    /// Its fingerprint, as both sides see it.
    pub fingerprint: i64,
    /// The four emojis both sides show for the key ([`emoji_fingerprint`]).
    pub emojis: [&'static str; 4],
    /// The relays the server offered.
    pub connections: Vec<enums::PhoneConnection>,
    /// Whether the server lets the two sides send media to each other directly.
    pub p2p_allowed: bool,
}

fn peer(id: i64, access_hash: i64) -> enums::InputPhoneCall {
    types::InputPhoneCall { id, access_hash }.into()
}

impl IncomingCall {
    /// The call as `InputPhoneCall`.
    pub fn peer(&self) -> enums::InputPhoneCall {
        peer(self.id, self.access_hash)
    }

    /// Accepts and waits for the caller's confirmation; checks `g_a` against its hash and the
    /// key fingerprint.
    pub async fn accept(self, client: &mut Client) -> Result<EstablishedCall, CallFailure> {
        let config = client.dh_config().await?;
        let (b, g_b) = secret(&config);
        client
            .call(&functions::phone::AcceptCall {
                peer: self.peer(),
                g_b: g_b.to_vec(),
                protocol: default_protocol(),
            })
            .await?;
        loop {
            match client.next_call_state(self.id).await? {
                enums::PhoneCall::PhoneCall(c) => {
                    if sha2::Sha256::digest(&c.g_a_or_b).as_slice() != self.g_a_hash.as_slice() {
                        return Err(CallFailure::BadKey("g_a does not match the committed hash"));
                    }
                    if !dh::is_safe_public_value(&c.g_a_or_b) {
                        return Err(CallFailure::BadKey("g_a outside the safe range"));
                    }
                    let key = dh::mod_pow(&c.g_a_or_b, &b);
                    let fingerprint = key_fingerprint(&key);
                    if fingerprint != c.key_fingerprint {
                        return Err(CallFailure::BadKey("key fingerprint mismatch"));
                    }
                    return Ok(EstablishedCall {
                        id: self.id,
                        access_hash: self.access_hash,
                        emojis: emoji_fingerprint(&key, &c.g_a_or_b),
                        key,
                        fingerprint,
                        connections: c.connections,
                        p2p_allowed: c.p2p_allowed,
                    });
                }
                enums::PhoneCall::Discarded(d) => return Err(CallFailure::Ended(d.reason)),
                _ => {}
            }
        }
    }

    /// Declines (as the official clients do: reason busy).
    pub async fn decline(self, client: &mut Client) -> Result<(), CallFailure> {
        discard(
            client,
            self.id,
            self.access_hash,
            0,
            types::PhoneCallDiscardReasonBusy {}.into(),
        )
        .await
    }
}

impl OutgoingCall {
    /// Waits until the callee accepts (noting when it starts ringing), then confirms with `g_a`.
    pub async fn established(
        mut self,
        client: &mut Client,
    ) -> Result<EstablishedCall, CallFailure> {
        loop {
            match client.next_call_state(self.id).await? {
                enums::PhoneCall::Waiting(w) => {
                    self.receive_date = w.receive_date.or(self.receive_date)
                }
                enums::PhoneCall::Accepted(acc) => {
                    if !dh::is_safe_public_value(&acc.g_b) {
                        return Err(CallFailure::BadKey("g_b outside the safe range"));
                    }
                    let key = dh::mod_pow(&acc.g_b, &self.a);
                    let fingerprint = key_fingerprint(&key);
                    let r = client
                        .call(&functions::phone::ConfirmCall {
                            peer: peer(self.id, self.access_hash),
                            g_a: self.g_a.to_vec(),
                            key_fingerprint: fingerprint,
                            protocol: default_protocol(),
                        })
                        .await?;
                    let enums::phone::PhoneCall::PhoneCall(r) = r;
                    let enums::PhoneCall::PhoneCall(c) = r.phone_call else {
                        return Err(CallFailure::BadKey("confirmCall did not answer phoneCall"));
                    };
                    let _ = &self.config;
                    return Ok(EstablishedCall {
                        id: self.id,
                        access_hash: self.access_hash,
                        emojis: emoji_fingerprint(&key, &self.g_a),
                        key,
                        fingerprint,
                        connections: c.connections,
                        p2p_allowed: c.p2p_allowed,
                    });
                }
                enums::PhoneCall::Discarded(d) => return Err(CallFailure::Ended(d.reason)),
                _ => {}
            }
        }
    }

    /// Waits for the callee's device to acknowledge (`receive_date`): the call is ringing.
    pub async fn ringing(&mut self, client: &mut Client) -> Result<i32, CallFailure> {
        if let Some(d) = self.receive_date {
            return Ok(d);
        }
        loop {
            match client.next_call_state(self.id).await? {
                enums::PhoneCall::Waiting(w) if w.receive_date.is_some() => {
                    self.receive_date = w.receive_date;
                    return Ok(w.receive_date.unwrap_or_default());
                }
                enums::PhoneCall::Discarded(d) => return Err(CallFailure::Ended(d.reason)),
                _ => {}
            }
        }
    }

    /// Gives up before the call was answered (reason missed).
    pub async fn cancel(self, client: &mut Client) -> Result<(), CallFailure> {
        discard(
            client,
            self.id,
            self.access_hash,
            0,
            types::PhoneCallDiscardReasonMissed {}.into(),
        )
        .await
    }
}

impl EstablishedCall {
    /// Waits until the other side (or the server) ends the call; returns the reason given.
    pub async fn ended(
        &self,
        client: &mut Client,
    ) -> Result<Option<enums::PhoneCallDiscardReason>, ClientError> {
        loop {
            if let enums::PhoneCall::Discarded(d) = client.next_call_state(self.id).await? {
                return Ok(d.reason);
            }
        }
    }

    /// Hangs up after `duration` seconds.
    pub async fn hang_up(self, client: &mut Client, duration: i32) -> Result<(), CallFailure> {
        discard(
            client,
            self.id,
            self.access_hash,
            duration,
            types::PhoneCallDiscardReasonHangup {}.into(),
        )
        .await
    }
}

/// `phone.discardCall` for the call `id` with `reason` (what [`OutgoingCall::cancel`],
/// [`IncomingCall::decline`] and [`EstablishedCall::hang_up`] send), the result's updates taken
/// into the client's stream.
pub async fn discard(
    client: &mut Client,
    id: i64,
    access_hash: i64,
    duration: i32,
    reason: enums::PhoneCallDiscardReason,
) -> Result<(), CallFailure> {
    let updates = client
        .call(&functions::phone::DiscardCall {
            video: false,
            peer: peer(id, access_hash),
            duration,
            reason,
            connection_id: 0,
        })
        .await?;
    client.absorb_updates(updates);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_fingerprint_reads_four_big_endian_words_of_sha256_key_g_a() {
        assert_eq!(EMOJI_TABLE.split_whitespace().count(), 333);
        let key: [u8; 256] = std::array::from_fn(|i| i as u8);
        // Computed independently (Python's hashlib) over the same table.
        assert_eq!(
            emoji_fingerprint(&key, &[7; 256]),
            ["\u{1f434}", "\u{1f4a5}", "9\u{20e3}", "\u{1f431}"]
        );
    }

    #[test]
    fn generator_checks() {
        assert!(g_is_good(3, &dh::DH_PRIME));
        assert!(!g_is_good(2, &dh::DH_PRIME), "the prime is 3 mod 8");
        assert!(!g_is_good(9, &dh::DH_PRIME));
    }
}
