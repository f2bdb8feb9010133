//! Administration against a data directory or database: login codes, bot accounts and the
//! sign-up allowlist. These open the database directly (SQLite and PostgreSQL both allow it
//! while servers run).

use mtproto::crypto::{Entropy, OsEntropy};
use server::Config;
use store::{NewUser, Store};

/// The store of a data directory (or the configured database), which must exist already.
pub async fn open(config: &Config) -> Result<std::sync::Arc<dyn Store>, String> {
    let path = config.data_dir.join("mtcall.db");
    if config.database.is_none() && !path.exists() {
        return Err(format!(
            "no database at {} (run `mtcall serve` first, or pass --data)",
            path.display()
        ));
    }
    Ok(config.open_store(&path).await?.0)
}

pub async fn print_code(config: &Config, phone: &str) -> Result<(), String> {
    let phone = server::render::normalize_phone(phone).ok_or("not a phone number")?;
    let store = open(config).await?;
    match store
        .latest_login_code(&phone)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(code) => {
            println!("{}", code.code);
            Ok(())
        }
        None => Err(format!("no login code was sent to +{phone}")),
    }
}

/// Adds phone numbers to the sign-up allowlist (`add`) or takes them off; each number is
/// normalised as the server normalises logins, and one that is not a number refuses them all.
pub async fn allow(config: &Config, phones: &[String], add: bool) -> Result<(), String> {
    let phones = phones
        .iter()
        .map(|p| server::render::normalize_phone(p).ok_or(format!("not a phone number: {p}")))
        .collect::<Result<Vec<_>, _>>()?;
    let store = open(config).await?;
    for phone in &phones {
        if add {
            store.allow_phone(phone, unix_now()).await
        } else {
            store.disallow_phone(phone).await
        }
        .map_err(|e| e.to_string())?;
        println!("{} +{phone}", if add { "allowed" } else { "removed" });
    }
    if config.auth.signup != server::services::Signup::Allowlist {
        eprintln!(
            "note: the configuration's [auth] signup is \"{}\", so the allowlist is not consulted",
            config.auth.signup.name()
        );
    }
    Ok(())
}

/// Prints the sign-up allowlist, one number a line.
pub async fn print_allowed(config: &Config) -> Result<(), String> {
    let store = open(config).await?;
    for phone in store.allowed_phones().await.map_err(|e| e.to_string())? {
        println!("+{phone}");
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn create_bot(config: &Config, username: &str, name: Option<&str>) -> Result<(), String> {
    if !server::render::valid_username(username) || !username.to_lowercase().ends_with("bot") {
        return Err("a bot username has 5-32 letters, digits or underscores, starts with a letter and ends in \"bot\"".into());
    }
    let store = open(config).await?;
    let secret: [u8; 24] = OsEntropy.array();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let secret: String = secret
        .iter()
        .map(|b| ALPHABET[(*b & 63) as usize] as char)
        .collect();
    let now = unix_now();
    let bot = store
        .create_user(
            NewUser {
                phone: None,
                first_name: name.unwrap_or(username).to_owned(),
                last_name: String::new(),
                username: Some(username.to_owned()),
                bot_secret: Some(secret.clone()),
            },
            now,
        )
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => format!("the username {username} is taken"),
            e => e.to_string(),
        })?;
    println!("{}:{}", bot.id, secret);
    Ok(())
}
