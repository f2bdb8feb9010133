//! How stored records look to a given viewer, as pure functions: users with per-viewer
//! access hashes (`docs/clients.md §5`), and the rules for phone numbers and usernames.

use tl::{enums, types};

/// The access hash `viewer` uses for `target`: a keyed hash, so it needs no storage, differs per
/// viewer and cannot be guessed.
pub fn access_hash(secret: &[u8; 32], kind: &str, viewer: i64, target: i64) -> i64 {
    let h = mtproto::crypto::sha256(&[
        kind.as_bytes(),
        secret,
        &viewer.to_le_bytes(),
        &target.to_le_bytes(),
    ]);
    i64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// `u` as `viewer` sees it at `now` (Unix seconds): phone shown to itself and its contacts,
/// online while it has a session here, an access hash keyed to the viewer.
pub fn user_view(
    secret: &[u8; 32],
    viewer: i64,
    u: &store::User,
    contact: bool,
    online: bool,
    now: i64,
) -> enums::User {
    let is_self = viewer == u.id;
    let show_phone = is_self || contact;
    let status = if online || is_self {
        enums::UserStatus::from(types::UserStatusOnline {
            expires: (now + 300) as i32,
        })
    } else {
        enums::UserStatus::from(types::UserStatusRecently { by_me: false })
    };
    types::User {
        is_self,
        contact,
        bot: u.bot,
        bot_nochats: u.bot,
        bot_info_version: u.bot.then_some(1),
        id: u.id,
        access_hash: Some(access_hash(secret, "user", viewer, u.id)),
        first_name: Some(u.first_name.clone()),
        last_name: (!u.last_name.is_empty()).then(|| u.last_name.clone()),
        username: u.username.clone(),
        phone: if show_phone { u.phone.clone() } else { None },
        status: (!u.bot).then_some(status),
        ..Default::default()
    }
    .into()
}

/// A phone number as stored: digits only; `None` if it cannot be one.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    let clean = raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
    (clean && (5..=15).contains(&digits.len())).then_some(digits)
}

/// Whether a username follows Telegram's rules: 5–32 of `a-z 0-9 _`, starting with a letter,
/// not ending with `_`, no `__`.
pub fn valid_username(name: &str) -> bool {
    (5..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_usernames() {
        assert_eq!(normalize_phone("+1 555-0001"), Some("15550001".into()));
        assert_eq!(normalize_phone("9996621234"), Some("9996621234".into()));
        assert_eq!(normalize_phone("12ab45"), None);
        assert_eq!(normalize_phone("+1"), None);
        assert!(valid_username("alice_1"));
        assert!(!valid_username("1alice"));
        assert!(!valid_username("abc"));
        assert!(!valid_username("alice_"));
        assert!(!valid_username("al__ice"));
        assert!(!valid_username("alice-1"));
    }

    #[test]
    fn access_hashes_differ_per_viewer() {
        let s = [1u8; 32];
        assert_ne!(access_hash(&s, "user", 1, 3), access_hash(&s, "user", 2, 3));
        assert_eq!(access_hash(&s, "user", 1, 3), access_hash(&s, "user", 1, 3));
    }
}
