//! Administration against a data directory or database: login codes and bot accounts. These
//! open the database directly (SQLite and PostgreSQL both allow it while servers run).

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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
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
