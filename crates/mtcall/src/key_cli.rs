//! `mtcall key add|retire|list`: the RSA keys of a data directory. A server offers every
//! active key in key exchanges, so a new key is added while clients that pinned an older one
//! keep connecting; a retired key is moved to `keys/retired/` and no longer accepted. Running
//! servers read the keys again on SIGHUP. Clients learn keys only from their operator (no
//! `help.getConfig` field carries them, in any layer), so these commands print what to hand out.

use std::path::Path;

use server::data_dir;

/// Creates the next key and prints its fingerprint and public file.
pub fn add(data: &Path) -> Result<(), String> {
    existing(data)?;
    let key = data_dir::add_key(data)?;
    println!(
        "added key {} (public key {})",
        key.fingerprint(),
        key.public_path.display()
    );
    eprintln!("running servers offer it once they read their keys again: `kill -HUP <pid>`");
    Ok(())
}

/// Retires the key with `fingerprint` (decimal, as the startup line prints it, or `0x` hex).
pub fn retire(data: &Path, fingerprint: &str) -> Result<(), String> {
    existing(data)?;
    let fingerprint = parse_fingerprint(fingerprint)?;
    let moved = data_dir::retire_key(data, fingerprint)?;
    println!("retired key {fingerprint} (now {})", moved.display());
    eprintln!(
        "running servers stop accepting it once they read their keys again: `kill -HUP <pid>`"
    );
    Ok(())
}

/// Prints the active keys, one a line: fingerprint, its hex form, the public file.
pub fn list(data: &Path) -> Result<(), String> {
    existing(data)?;
    for key in data_dir::load_keys(data)? {
        println!(
            "{}\t{:#018x}\t{}",
            key.fingerprint(),
            key.fingerprint() as u64,
            key.public_path.display()
        );
    }
    Ok(())
}

/// The key commands work on a data directory a server has created.
fn existing(data: &Path) -> Result<(), String> {
    if data.join("server.secret").exists() {
        Ok(())
    } else {
        Err(format!(
            "{} is not a data directory (run `mtcall serve` first, or pass --data)",
            data.display()
        ))
    }
}

/// A fingerprint as an operator writes it: signed decimal or `0x` hex of its 64 bits.
fn parse_fingerprint(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|v| v as i64).ok(),
        None => text.parse::<i64>().ok(),
    };
    parsed.ok_or_else(|| format!("not a key fingerprint: {text} (decimal or 0x hex)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_in_decimal_and_hex() {
        assert_eq!(parse_fingerprint("-42").unwrap(), -42);
        assert_eq!(parse_fingerprint("0xffffffffffffffd6").unwrap(), -42);
        assert_eq!(parse_fingerprint(" 0X10 ").unwrap(), 16);
        assert!(parse_fingerprint("0xg").is_err());
        assert!(parse_fingerprint("twelve").is_err());
    }
}
