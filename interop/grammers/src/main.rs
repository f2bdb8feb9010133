//! grammers 0.11 (layer 230) interop suite against a running mtcall server.
//!
//! Usage: grammers_suite fresh|resume PORT DATA_DIR BOT_TOKEN STATE_FILE
//!
//! Reads the server's RSA key from DATA_DIR/server.pub and hands it to the patched
//! grammers-mtproto through MTCALL_RSA_FP / MTCALL_RSA_N / MTCALL_RSA_E (see ../patch.py).
//! Prints one line per check, `ok NAME` or `FAIL NAME: REASON`, and exits 0 only if all passed.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grammers_client::sender::{ConnectionParams, NoRetries, UpdatesConfiguration};
use grammers_client::session::storages::MemorySession;
use grammers_client::session::types::DcOption;
use grammers_client::session::updates::UpdatesLike;
use grammers_client::session::{Session, SessionData};
use grammers_client::{tl, Client, InvocationError, SenderPool, SignInError};
use sha1::{Digest, Sha1};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const API_ID: i32 = 12345;
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
/// Login numbers 99966 4 YYYY accept the code 44444 (mtcall's test numbers).
const PHONE_PREFIX: &str = "999664";
const CODE: &str = "44444";
const FRESH_CONNECTS: usize = 50;
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(5);

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------------
// Server key: PKCS#1 PEM -> (n, e) -> MTProto fingerprint.

fn b64decode(text: &str) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' => continue,
            _ => return Err(format!("bad base64 byte {c:#x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Reads one DER element with tag `tag`, returning (contents, rest).
fn der(input: &[u8], tag: u8) -> Res<(&[u8], &[u8])> {
    if input.len() < 2 || input[0] != tag {
        return Err(format!("DER: expected tag {tag:#x}"));
    }
    let (len, hdr) = if input[1] < 0x80 {
        (input[1] as usize, 2)
    } else {
        let k = (input[1] & 0x7f) as usize;
        if k == 0 || k > 4 || input.len() < 2 + k {
            return Err("DER: bad length".into());
        }
        (
            input[2..2 + k]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize),
            2 + k,
        )
    };
    if input.len() < hdr + len {
        return Err("DER: truncated".into());
    }
    Ok((&input[hdr..hdr + len], &input[hdr + len..]))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

fn tl_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() < 254 {
        out.push(b.len() as u8);
    } else {
        out.push(254);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes()[..3]);
    }
    out.extend_from_slice(b);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Returns (fingerprint, n decimal, e decimal) of a "BEGIN RSA PUBLIC KEY" PEM.
fn server_key(pem: &str) -> Res<(i64, String, String)> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der_bytes = b64decode(&body)?;
    let (seq, _) = der(&der_bytes, 0x30)?;
    let (n, rest) = der(seq, 0x02)?;
    let (e, _) = der(rest, 0x02)?;
    let (n, e) = (strip_zeros(n), strip_zeros(e));
    let mut buf = Vec::new();
    tl_bytes(&mut buf, n);
    tl_bytes(&mut buf, e);
    let digest = Sha1::digest(&buf);
    let fp = i64::from_le_bytes(digest[12..20].try_into().unwrap());
    let dec = |b: &[u8]| num_bigint::BigUint::from_bytes_be(b).to_str_radix(10);
    Ok((fp, dec(n), dec(e)))
}

// ---------------------------------------------------------------------------------------------
// Client plumbing.

struct Conn {
    client: Client,
    session: Arc<MemorySession>,
    updates: Option<mpsc::Receiver<UpdatesLike>>,
    runner: JoinHandle<()>,
}

impl Conn {
    /// A client whose session points DC 2 at 127.0.0.1:port, with an optional saved auth key.
    /// Connecting is lazy: the first request dials, handshakes and sends initConnection.
    fn new(port: u16, auth_key: Option<[u8; 256]>) -> Conn {
        let mut data = SessionData {
            home_dc: 2,
            ..Default::default()
        };
        data.dc_options.insert(
            2,
            DcOption {
                id: 2,
                ipv4: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
                ipv6: SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port, 0, 0),
                auth_key,
            },
        );
        let session = Arc::new(MemorySession::from(data));
        let params = ConnectionParams {
            retry_policy: Box::new(NoRetries),
            ..Default::default()
        };
        let pool = SenderPool::with_configuration(Arc::clone(&session), API_ID, params);
        let client = Client::new(pool.handle);
        let runner = tokio::spawn(pool.runner.run());
        Conn {
            client,
            session,
            updates: Some(pool.updates),
            runner,
        }
    }

    fn auth_key(&self) -> Option<[u8; 256]> {
        self.session
            .dc_option(2)
            .ok()
            .flatten()
            .and_then(|d| d.auth_key)
    }

    async fn close(self) {
        self.client.disconnect();
        let mut runner = self.runner;
        if tokio::time::timeout(Duration::from_secs(5), &mut runner)
            .await
            .is_err()
        {
            runner.abort();
        }
    }
}

async fn step<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Res<T> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: timed out after {}s",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

fn raw_user(u: &tl::enums::User) -> Res<&tl::types::User> {
    match u {
        tl::enums::User::User(u) => Ok(u),
        tl::enums::User::Empty(_) => Err("got userEmpty".into()),
    }
}

/// Sign up a new account with raw auth.sendCode / auth.signIn / auth.signUp (grammers has no
/// sign-up helper). Returns the new user.
async fn sign_up(conn: &Conn, phone: &str, first: &str) -> Res<tl::types::User> {
    let c = &conn.client;
    let sent = step(
        "auth.sendCode",
        c.invoke(&tl::functions::auth::SendCode {
            phone_number: phone.into(),
            api_id: API_ID,
            api_hash: API_HASH.into(),
            settings: tl::types::CodeSettings {
                allow_flashcall: false,
                current_number: false,
                allow_app_hash: false,
                allow_missed_call: false,
                allow_firebase: false,
                unknown_number: false,
                logout_tokens: None,
                token: None,
                app_sandbox: None,
            }
            .into(),
        }),
    )
    .await?;
    let hash = match sent {
        tl::enums::auth::SentCode::Code(c) => c.phone_code_hash,
        other => return Err(format!("auth.sendCode: unexpected {other:?}")),
    };
    let signed = step(
        "auth.signIn",
        c.invoke(&tl::functions::auth::SignIn {
            phone_number: phone.into(),
            phone_code_hash: hash.clone(),
            phone_code: Some(CODE.into()),
            email_verification: None,
        }),
    )
    .await?;
    if !matches!(signed, tl::enums::auth::Authorization::SignUpRequired(_)) {
        return Err(format!(
            "auth.signIn of a new number: expected authorizationSignUpRequired, got {signed:?}"
        ));
    }
    let auth = step(
        "auth.signUp",
        c.invoke(&tl::functions::auth::SignUp {
            no_joined_notifications: false,
            phone_number: phone.into(),
            phone_code_hash: hash,
            first_name: first.into(),
            last_name: "Grammers".into(),
        }),
    )
    .await?;
    match auth {
        tl::enums::auth::Authorization::Authorization(a) => Ok(raw_user(&a.user)?.clone()),
        other => Err(format!("auth.signUp: unexpected {other:?}")),
    }
}

/// Sign in an existing account through grammers' own request_login_code + sign_in.
async fn sign_in(conn: &Conn, phone: &str) -> Res<grammers_client::peer::User> {
    let token = step(
        "request_login_code",
        conn.client.request_login_code(phone, API_HASH),
    )
    .await?;
    match tokio::time::timeout(STEP_TIMEOUT, conn.client.sign_in(&token, CODE)).await {
        Ok(Ok(user)) => Ok(user),
        Ok(Err(SignInError::SignUpRequired)) => {
            Err("sign_in: sign-up required for an existing account".into())
        }
        Ok(Err(e)) => Err(format!("sign_in: {e}")),
        Err(_) => Err("sign_in: timed out".into()),
    }
}

fn rpc_name(e: &InvocationError) -> String {
    match e {
        InvocationError::Rpc(r) => format!("{} {}", r.code, r.name),
        other => other.to_string(),
    }
}

fn rand_digits() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.subsec_nanos() ^ std::process::id().wrapping_mul(2654435761)) % 10000
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Res<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Minimal reader for the flat JSON object this suite writes: `"key": "string"` or `"key": number`.
fn json_field(text: &str, key: &str) -> Res<String> {
    let pat = format!("\"{key}\":");
    let at = text
        .find(&pat)
        .ok_or_else(|| format!("state file has no {key}"))?
        + pat.len();
    let rest = text[at..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        Ok(s[..s.find('"').ok_or("unterminated string")?].to_string())
    } else {
        let end = rest
            .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
            .unwrap_or(rest.len());
        Ok(rest[..end].to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

struct Report {
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Res<String>) {
        match result {
            Ok(detail) if detail.is_empty() => println!("ok {name}"),
            Ok(detail) => println!("ok {name} ({detail})"),
            Err(reason) => {
                self.failed += 1;
                println!("FAIL {name}: {}", reason.replace('\n', " "));
            }
        }
    }
}

async fn fresh_connects(port: u16) -> Res<String> {
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut tried = FRESH_CONNECTS;
    for i in 0..FRESH_CONNECTS {
        let conn = Conn::new(port, None);
        // is_authorized = connect (handshake, get_future_salts, initConnection(help.getConfig))
        // + updates.getState, which must answer 401 on a brand-new key.
        match step("is_authorized", conn.client.is_authorized()).await {
            Ok(false) if conn.auth_key().is_some() => {}
            Ok(false) => failures.push(format!("#{i}: no auth key saved")),
            Ok(true) => failures.push(format!("#{i}: fresh key claims to be authorized")),
            Err(e) => failures.push(format!("#{i}: {e}")),
        }
        conn.close().await;
        if failures.len() >= 3 && failures.len() == i + 1 {
            failures[i].push_str(" (aborting: the first 3 attempts all failed)");
            tried = i + 1;
            break;
        }
    }
    if failures.is_empty() {
        Ok(format!(
            "{FRESH_CONNECTS}/{FRESH_CONNECTS} in {:.1}s",
            started.elapsed().as_secs_f64()
        ))
    } else {
        Err(format!(
            "{} of {tried} tried failed: {}",
            failures.len(),
            failures.join("; ")
        ))
    }
}

async fn bot_login(port: u16, token: &str) -> Res<String> {
    let conn = Conn::new(port, None);
    let r = async {
        let user = step("bot_sign_in", conn.client.bot_sign_in(token, API_HASH)).await?;
        if !user.is_bot() {
            return Err("bot_sign_in returned a user without the bot flag".into());
        }
        let me = step("get_me", conn.client.get_me()).await?;
        if !me.is_bot() || me.id() != user.id() {
            return Err(format!(
                "get_me after bot login: bot={} id={:?}",
                me.is_bot(),
                me.id()
            ));
        }
        let want_id = token.split(':').next().unwrap_or("");
        if me.raw.id().to_string() != want_id {
            return Err(format!(
                "bot id {} does not match the token's {want_id}",
                me.raw.id()
            ));
        }
        Ok(format!("bot id {}", me.raw.id()))
    }
    .await;
    conn.close().await;
    r
}

/// Resolve `target` by username and by phone from `conn`, then check the access hash works and a
/// wrong one is refused.
async fn resolve_checks(
    rep: &mut Report,
    conn: &Conn,
    target: &tl::types::User,
    username: &str,
    phone: &str,
) {
    let c = &conn.client;
    let check_resolved = |what: &str, r: tl::enums::contacts::ResolvedPeer| -> Res<i64> {
        let tl::enums::contacts::ResolvedPeer::Peer(r) = r;
        match r.peer {
            tl::enums::Peer::User(p) if p.user_id == target.id => {}
            other => return Err(format!("{what}: peer {other:?}, want user {}", target.id)),
        }
        let u = r
            .users
            .iter()
            .filter_map(|u| raw_user(u).ok())
            .find(|u| u.id == target.id)
            .ok_or_else(|| format!("{what}: user {} missing from users", target.id))?;
        u.access_hash
            .ok_or_else(|| format!("{what}: no access_hash"))
    };

    let by_name = async {
        let r = step(
            "contacts.resolveUsername",
            c.invoke(&tl::functions::contacts::ResolveUsername {
                username: username.into(),
                referer: None,
            }),
        )
        .await?;
        let hash = check_resolved("resolveUsername", r)?;
        // grammers' own helper too
        match step("resolve_username", c.resolve_username(username)).await? {
            Some(grammers_client::peer::Peer::User(u)) if u.raw.id() == target.id => {}
            other => return Err(format!("resolve_username: {:?}", other.map(|p| p.id()))),
        }
        Ok::<i64, String>(hash)
    }
    .await;
    let hash_name = by_name.clone().ok();
    rep.check(
        "resolve username",
        by_name.map(|h| format!("id {} hash {h}", target.id)),
    );

    let by_phone = async {
        let r = step(
            "contacts.resolvePhone",
            c.invoke(&tl::functions::contacts::ResolvePhone {
                phone: phone.into(),
            }),
        )
        .await?;
        check_resolved("resolvePhone", r)
    }
    .await;
    let hash_phone = by_phone.clone().ok();
    rep.check(
        "resolve phone",
        by_phone.map(|h| format!("id {} hash {h}", target.id)),
    );

    let usable = async {
        let hash = hash_name.or(hash_phone).ok_or("nothing resolved")?;
        let input = |access_hash| {
            tl::enums::InputUser::User(tl::types::InputUser {
                user_id: target.id,
                access_hash,
            })
        };
        let got = step(
            "users.getUsers",
            c.invoke(&tl::functions::users::GetUsers {
                id: vec![input(hash)],
            }),
        )
        .await?;
        match got.first().map(raw_user) {
            Some(Ok(u)) if u.id == target.id => {}
            _ => return Err(format!("users.getUsers with the resolved hash: {got:?}")),
        }
        match tokio::time::timeout(
            STEP_TIMEOUT,
            c.invoke(&tl::functions::users::GetUsers {
                id: vec![input(hash ^ 0x5a5a)],
            }),
        )
        .await
        {
            Ok(Err(InvocationError::Rpc(e))) if e.name == "USER_ID_INVALID" => Ok(String::new()),
            Ok(Err(e)) => Err(format!(
                "wrong access hash: want USER_ID_INVALID, got {}",
                rpc_name(&e)
            )),
            Ok(Ok(v)) => Err(format!("wrong access hash accepted: {v:?}")),
            Err(_) => Err("wrong access hash: timed out".into()),
        }
    }
    .await;
    rep.check("access hash usable", usable);
}

async fn wait_user_name(
    stream: &mut grammers_client::client::UpdateStream,
    user_id: i64,
    username: &str,
) -> Res<String> {
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = match tokio::time::timeout(left, stream.next_raw()).await {
            Err(_) => {
                return Err(format!(
                    "no updateUserName within {}s (saw: {seen:?})",
                    UPDATE_TIMEOUT.as_secs()
                ))
            }
            Ok(Err(e)) => return Err(format!("update stream: {e}")),
            Ok(Ok((u, _, _))) => u,
        };
        if let tl::enums::Update::UserName(u) = &got {
            let names: Vec<&str> = u
                .usernames
                .iter()
                .map(|tl::enums::Username::Username(n)| n.username.as_str())
                .collect();
            if u.user_id == user_id && names.contains(&username) {
                return Ok(String::new());
            }
            seen.push(format!("updateUserName({}, {names:?})", u.user_id));
        } else {
            seen.push(format!("{got:?}").chars().take(80).collect());
        }
    }
}

async fn update_username(conn: &Conn, username: &str) -> Res<()> {
    let u = step(
        "account.updateUsername",
        conn.client.invoke(&tl::functions::account::UpdateUsername {
            username: username.into(),
        }),
    )
    .await?;
    let u = raw_user(&u)?;
    if u.username.as_deref() != Some(username) {
        return Err(format!(
            "account.updateUsername returned username {:?}",
            u.username
        ));
    }
    Ok(())
}

async fn fresh(port: u16, token: &str, state_file: &str) -> usize {
    let mut rep = Report { failed: 0 };
    rep.check("50 fresh connects", fresh_connects(port).await);

    let suffix = rand_digits();
    let phone_a = format!("{PHONE_PREFIX}{suffix:04}");
    let phone_b = format!("{PHONE_PREFIX}{:04}", (suffix + 5000) % 10000);
    let name_a = format!("gr_a{suffix:04}");
    let name_b = format!("gr_b{suffix:04}");

    // c. sign-up (new number) on session A0, then sign-in on new sessions A1 and A2.
    let a0 = Conn::new(port, None);
    let signup = sign_up(&a0, &phone_a, "Alice").await;
    a0.close().await;
    let user_a = signup.as_ref().ok().cloned();
    rep.check("sign up", signup.map(|u| format!("user {}", u.id)));

    let a1 = Conn::new(port, None);
    let a2 = Conn::new(port, None);
    let signin = async {
        let want = user_a.as_ref().ok_or("no account from sign up")?;
        for (n, conn) in [(1, &a1), (2, &a2)] {
            let u = sign_in(conn, &phone_a).await?;
            if u.raw.id() != want.id {
                return Err(format!(
                    "session {n}: signed in as {}, want {}",
                    u.raw.id(),
                    want.id
                ));
            }
        }
        let me = step("get_me", a1.client.get_me()).await?;
        if me.raw.id() != want.id || me.phone() != Some(phone_a.as_str()) {
            return Err(format!("get_me: id {} phone {:?}", me.raw.id(), me.phone()));
        }
        Ok(String::new())
    }
    .await;
    let signed_in = signin.is_ok();
    rep.check("sign in existing account", signin);

    // b. the only transport grammers has: Full, with an authorized call.
    let full = async {
        if !signed_in {
            return Err("not signed in".to_string());
        }
        if !step("is_authorized", a1.client.is_authorized()).await? {
            return Err("is_authorized false after sign in".into());
        }
        Ok("transport::Full, updates.getState authorized".to_string())
    }
    .await;
    rep.check("transport full", full);

    // d. bot login
    rep.check("bot login", bot_login(port, token).await);

    // e. resolve user B by username and phone, from A.
    let b = Conn::new(port, None);
    let user_b = async {
        let u = sign_up(&b, &phone_b, "Bob").await?;
        update_username(&b, &name_b).await?;
        Ok::<_, String>(u)
    }
    .await;
    match &user_b {
        Ok(u) => resolve_checks(&mut rep, &a1, u, &name_b, &phone_b).await,
        Err(e) => {
            for name in ["resolve username", "resolve phone", "access hash usable"] {
                rep.check(name, Err(format!("setting up user B: {e}")));
            }
        }
    }
    b.close().await;

    // f. pushed update: A1 listens, A2 changes the username.
    let pushed = async {
        let want = user_a.as_ref().ok_or("no account")?;
        if !signed_in {
            return Err("not signed in".to_string());
        }
        let mut a1 = a1;
        let rx = a1.updates.take().unwrap();
        let mut stream = step(
            "stream_updates",
            a1.client
                .stream_updates(rx, UpdatesConfiguration { catch_up: false }),
        )
        .await?;
        let result = async {
            update_username(&a2, &name_a).await?;
            wait_user_name(&mut stream, want.id, &name_a).await
        }
        .await;
        drop(stream);
        Ok::<_, String>((a1, result))
    }
    .await;
    let a1 = match pushed {
        Ok((a1, r)) => {
            rep.check("pushed updateUserName", r);
            Some(a1)
        }
        Err(e) => {
            rep.check("pushed updateUserName", Err(e));
            None
        }
    };

    // g. save the logged-in session A2.
    let save = async {
        let want = user_a.as_ref().ok_or("no account")?;
        if !signed_in {
            return Err("not signed in".to_string());
        }
        let key = a2.auth_key().ok_or("session has no auth key")?;
        let json = format!(
            "{{\"client\": \"grammers\", \"home_dc\": 2, \"auth_key\": \"{}\", \"user_id\": {}, \"phone\": \"{phone_a}\"}}\n",
            hex(&key),
            want.id
        );
        std::fs::write(state_file, json).map_err(|e| format!("writing {state_file}: {e}"))?;
        Ok(String::new())
    }
    .await;
    rep.check("save session", save);

    if let Some(a1) = a1 {
        a1.close().await;
    }
    a2.close().await;
    rep.failed
}

async fn resume(port: u16, state_file: &str) -> usize {
    let mut rep = Report { failed: 0 };
    let r = async {
        let text = std::fs::read_to_string(state_file)
            .map_err(|e| format!("reading {state_file}: {e}"))?;
        let key: [u8; 256] = unhex(&json_field(&text, "auth_key")?)?
            .try_into()
            .map_err(|_| "auth_key is not 256 bytes".to_string())?;
        let user_id: i64 = json_field(&text, "user_id")?
            .parse()
            .map_err(|e| format!("user_id: {e}"))?;
        let conn = Conn::new(port, Some(key));
        let r = async {
            let me = step("get_me", conn.client.get_me()).await?;
            if me.raw.id() != user_id {
                return Err(format!("get_me: id {}, want {user_id}", me.raw.id()));
            }
            if conn.auth_key() != Some(key) {
                return Err("the client replaced the saved auth key".into());
            }
            Ok(format!("user {user_id}"))
        }
        .await;
        conn.close().await;
        r
    }
    .await;
    rep.check("resume session", r);
    rep.failed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 || !matches!(args[1].as_str(), "fresh" | "resume") {
        eprintln!(
            "usage: {} fresh|resume PORT DATA_DIR BOT_TOKEN STATE_FILE",
            args[0]
        );
        std::process::exit(2);
    }
    let port: u16 = args[2].parse().expect("PORT");
    let pem_path = format!("{}/server.pub", args[3]);
    let pem =
        std::fs::read_to_string(&pem_path).unwrap_or_else(|e| panic!("reading {pem_path}: {e}"));
    let (fp, n, e) = server_key(&pem).unwrap_or_else(|e| panic!("parsing {pem_path}: {e}"));
    // Read by the patched grammers-mtproto's key_for_fingerprint (set before any thread starts).
    std::env::set_var("MTCALL_RSA_FP", fp.to_string());
    std::env::set_var("MTCALL_RSA_N", n);
    std::env::set_var("MTCALL_RSA_E", e);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let failed = rt.block_on(async {
        match args[1].as_str() {
            "fresh" => fresh(port, &args[4], &args[5]).await,
            _ => resume(port, &args[5]).await,
        }
    });
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
