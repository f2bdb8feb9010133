//! The client commands: `login` (creates a key, signs in, saves a session file), `call USER`
//! and `answer`, showing each state change the way `phone.*` reports it; Ctrl-C hangs up.

use std::net::SocketAddr;
use std::path::Path;

use client::Client;
use client::calls::CallFailure;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::transport::Kind;
use tl::{enums, functions, types};
use tokio::io::AsyncBufReadExt;

/// What a session file keeps: where the server is and the logged-in auth key.
struct SessionFile {
    address: SocketAddr,
    auth_key: [u8; 256],
    user_id: i64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

impl SessionFile {
    fn save(&self, path: &Path) -> Result<(), String> {
        let text = format!(
            "address={}\nauth_key={}\nuser_id={}\n",
            self.address,
            hex(&self.auth_key),
            self.user_id
        );
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    fn load(path: &Path) -> Result<SessionFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {} (run `mtcall login` first): {e}", path.display()))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .ok_or_else(|| format!("{}: no {name}", path.display()))
        };
        let auth_key = unhex(field("auth_key")?)
            .and_then(|k| <[u8; 256]>::try_from(k).ok())
            .ok_or("the session's auth_key is not 256 bytes")?;
        Ok(SessionFile {
            address: field("address")?
                .parse()
                .map_err(|e| format!("address: {e}"))?,
            auth_key,
            user_id: field("user_id")?
                .parse()
                .map_err(|e| format!("user_id: {e}"))?,
        })
    }
}

async fn prompt(question: &str) -> Result<String, String> {
    eprint!("{question}");
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    Ok(line.trim().to_owned())
}

/// How `mtcall login` signs in.
pub enum Credentials {
    /// A user: the phone number, the code if already known, and the name for a sign-up.
    User {
        phone: String,
        code: Option<String>,
        name: String,
    },
    /// A bot: its token `ID:SECRET` from `mtcall bot create`.
    Bot { token: String },
}

/// `mtcall login`.
pub async fn login(
    server: SocketAddr,
    key: &Path,
    credentials: Credentials,
    session: &Path,
) -> Result<(), String> {
    let pem =
        std::fs::read_to_string(key).map_err(|e| format!("reading {}: {e}", key.display()))?;
    let key = PublicKey::from_pkcs1_pem(&pem).map_err(|e| e.to_string())?;
    let mut c = Client::connect(server, &key, Kind::Full, false)
        .await
        .map_err(|e| e.to_string())?;
    let user = match credentials {
        Credentials::Bot { token } => c.login_bot(&token).await.map_err(|e| e.to_string())?,
        Credentials::User { phone, code, name } => {
            let hash = c.send_code(&phone).await.map_err(|e| e.to_string())?;
            let code = match code {
                Some(c) => c,
                None => prompt(&format!(
                    "code sent to {phone} (the server logs it; `mtcall code {phone}` prints it): "
                ))
                .await?,
            };
            c.sign_in(&phone, &hash, &code, &name)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let user_id = client::user_id(&user);
    SessionFile {
        address: server,
        auth_key: *c.session.auth_key().bytes(),
        user_id,
    }
    .save(session)?;
    println!(
        "logged in as user {user_id}; session saved to {}",
        session.display()
    );
    Ok(())
}

async fn resume(session: &Path) -> Result<Client, String> {
    let s = SessionFile::load(session)?;
    Client::resume(s.address, s.auth_key)
        .await
        .map_err(|e| e.to_string())
}

async fn resolve(c: &mut Client, who: &str) -> Result<(enums::InputUser, String), String> {
    let found = if let Some(name) = who.strip_prefix('@') {
        c.call(&functions::contacts::ResolveUsername {
            username: name.into(),
            referer: None,
        })
        .await
    } else {
        c.call(&functions::contacts::ResolvePhone { phone: who.into() })
            .await
    }
    .map_err(|e| format!("{who}: {e}"))?;
    let enums::contacts::ResolvedPeer::ResolvedPeer(r) = found;
    let Some(enums::User::User(u)) = r.users.first() else {
        return Err(format!("{who}: no such user"));
    };
    let label = format!("{} ({})", u.first_name.clone().unwrap_or_default(), u.id);
    Ok((
        types::InputUser {
            user_id: u.id,
            access_hash: u.access_hash.unwrap_or_default(),
        }
        .into(),
        label,
    ))
}

fn failure(e: CallFailure) -> String {
    match e {
        CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Busy(_))) => "busy".into(),
        CallFailure::Ended(reason) => format!("the call ended ({})", reason_name(&reason)),
        e => e.to_string(),
    }
}

fn reason_name(r: &Option<enums::PhoneCallDiscardReason>) -> &'static str {
    match r {
        None => "no reason",
        Some(enums::PhoneCallDiscardReason::Missed(_)) => "missed",
        Some(enums::PhoneCallDiscardReason::Disconnect(_)) => "disconnected",
        Some(enums::PhoneCallDiscardReason::Hangup(_)) => "hung up",
        Some(enums::PhoneCallDiscardReason::Busy(_)) => "busy",
        Some(enums::PhoneCallDiscardReason::MigrateConferenceCall(_)) => "moved to a conference",
    }
}

/// Ctrl-C, listened for from the moment this is made, so a prompt printed after it holds.
struct Interrupt(tokio::signal::unix::Signal);

impl Interrupt {
    fn new() -> Result<Self, String> {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map(Interrupt)
            .map_err(|e| format!("listening for Ctrl-C: {e}"))
    }

    async fn wait(&mut self) {
        self.0.recv().await;
    }
}

fn hangup() -> enums::PhoneCallDiscardReason {
    types::PhoneCallDiscardReasonHangup {}.into()
}

async fn talk(
    c: &mut Client,
    call: client::calls::EstablishedCall,
    interrupt: &mut Interrupt,
) -> Result<(), String> {
    println!(
        "connected; key fingerprint {:016x} ({}); emoji {}; Ctrl-C hangs up",
        call.fingerprint as u64,
        call.fingerprint,
        call.emojis.join(" ")
    );
    let started = std::time::Instant::now();
    tokio::select! {
        ended = call.ended(c) => {
            let reason = ended.map_err(|e| e.to_string())?;
            println!("the other side ended the call ({})", reason_name(&reason));
            return Ok(());
        }
        _ = interrupt.wait() => {}
    }
    call.hang_up(c, started.elapsed().as_secs() as i32)
        .await
        .map_err(failure)?;
    println!("hung up after {} s", started.elapsed().as_secs());
    Ok(())
}

/// `mtcall call USER`.
pub async fn call(session: &Path, who: &str, video: bool) -> Result<(), String> {
    let mut interrupt = Interrupt::new()?;
    let mut c = resume(session).await?;
    let (user, label) = resolve(&mut c, who).await?;
    let mut outgoing = c.place_call(user, video).await.map_err(failure)?;
    let (id, access_hash) = (outgoing.id, outgoing.access_hash);
    println!("calling {label} (call {id}); Ctrl-C cancels");
    tokio::select! {
        rang = outgoing.ringing(&mut c) => { rang.map_err(failure)?; println!("ringing"); }
        _ = interrupt.wait() => {
            outgoing.cancel(&mut c).await.map_err(failure)?;
            println!("cancelled");
            return Ok(());
        }
    }
    let established = tokio::select! {
        e = outgoing.established(&mut c) => e.map_err(failure)?,
        _ = interrupt.wait() => {
            let missed = types::PhoneCallDiscardReasonMissed {}.into();
            client::calls::discard(&mut c, id, access_hash, 0, missed).await.map_err(failure)?;
            println!("cancelled");
            return Ok(());
        }
    };
    talk(&mut c, established, &mut interrupt).await
}

/// `mtcall answer`.
pub async fn answer(session: &Path) -> Result<(), String> {
    let mut interrupt = Interrupt::new()?;
    let mut c = resume(session).await?;
    // Start from the server's update state; a call already ringing comes with it.
    c.catch_up().await.map_err(|e| e.to_string())?;
    println!("waiting for a call; Ctrl-C stops");
    let incoming = tokio::select! {
        i = c.next_incoming_call(true) => i.map_err(failure)?,
        _ = interrupt.wait() => return Ok(()),
    };
    let (id, access_hash) = (incoming.id, incoming.access_hash);
    println!(
        "incoming call {id} from user {}: acknowledged (the caller hears it ring), accepting",
        incoming.admin_id
    );
    let established = tokio::select! {
        e = incoming.accept(&mut c) => e.map_err(failure)?,
        _ = interrupt.wait() => {
            client::calls::discard(&mut c, id, access_hash, 0, hangup()).await.map_err(failure)?;
            println!("hung up before the call connected");
            return Ok(());
        }
    };
    talk(&mut c, established, &mut interrupt).await
}

/// `mtcall invoke JSON`: any request of the schema, written as JSON, answered as JSON.
pub async fn invoke(session: &Path, request: &str) -> Result<(), String> {
    let request: functions::Request = serde_json::from_str(request)
        .map_err(|e| format!("not a request of mtcall's schema: {e}"))?;
    let mut c = resume(session).await?;
    let body = tl::Encode::to_bytes(&request, c.layer);
    match c.call_raw(body).await {
        Ok(bytes) => {
            let value = request.result_json(&bytes)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Err(client::ClientError::Rpc { code, message }) => {
            Err(format!("rpc_error {code} {message}"))
        }
        Err(e) => Err(e.to_string()),
    }
}
