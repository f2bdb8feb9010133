//! The data directory: created on first start with the server's RSA key (`server.key`, PKCS#1
//! private PEM; `server.pub`, PKCS#1 public PEM), a random server secret (`server.secret`, from
//! which salts and access hashes derive) and the database (`mtcall.db`).
//!
//! Keys rotate: `keys/N.key` and `keys/N.pub` (N = 2, 3, …) are further keys ([`add_key`]),
//! and the server accepts key exchanges with every key it holds, so clients that pinned an
//! older key keep connecting while new ones are given the newer. [`retire_key`] moves a key
//! to `keys/retired/`, where no server loads it; the last key is never retired. A directory
//! with only retired keys is refused rather than given a fresh key that no client knows.
//!
//! Servers hold the directory's [`DirLock`] shared while they run; restoring a backup takes
//! it exclusively.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mtproto::crypto::rsa_key::ServerKey;
use mtproto::crypto::{Entropy, OsEntropy};

/// What the data directory provides.
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// The RSA keys, `server.key` first, then `keys/N.key` by N.
    pub keys: Vec<KeyFile>,
    /// The server secret.
    pub secret: [u8; 32],
    /// Whether the first key was created by this call.
    pub created_key: bool,
}

/// One RSA key of the directory.
pub struct KeyFile {
    /// The key.
    pub key: ServerKey,
    /// Its public PEM's file, for clients.
    pub public_path: PathBuf,
    /// Its private PEM's file.
    pub private_path: PathBuf,
}

impl KeyFile {
    /// The fingerprint clients know it by.
    pub fn fingerprint(&self) -> i64 {
        self.key.fingerprint()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// Reads a key's private PEM and writes its public PEM beside it when that is missing or stale.
fn load_key(private_path: &Path, public_path: &Path) -> Result<KeyFile, String> {
    let pem = fs::read_to_string(private_path)
        .map_err(|e| format!("reading {}: {e}", private_path.display()))?;
    let key =
        ServerKey::from_pkcs1_pem(&pem).map_err(|e| format!("{}: {e}", private_path.display()))?;
    let public = key.public().to_pkcs1_pem().map_err(|e| e.to_string())?;
    if fs::read_to_string(public_path).ok().as_deref() != Some(public.as_str()) {
        fs::write(public_path, &public)
            .map_err(|e| format!("writing {}: {e}", public_path.display()))?;
    }
    Ok(KeyFile {
        key,
        public_path: public_path.to_path_buf(),
        private_path: private_path.to_path_buf(),
    })
}

/// Generates a key into `private_path` (never over an existing file) and its public PEM.
fn create_key(private_path: &Path, public_path: &Path) -> Result<KeyFile, String> {
    let key = ServerKey::generate().map_err(|e| e.to_string())?;
    let pem = key.to_pkcs1_pem().map_err(|e| e.to_string())?;
    write_private(private_path, pem.as_bytes())
        .map_err(|e| format!("writing {}: {e}", private_path.display()))?;
    load_key(private_path, public_path)
}

/// The numbers N of the `N.key` files in `dir`, ascending.
fn numbered(dir: &Path) -> Vec<u32> {
    let mut found: Vec<u32> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".key")?.parse().ok()
        })
        .collect();
    found.sort_unstable();
    found
}

/// The active keys of the data directory `path`, `server.key` first.
pub fn load_keys(path: &Path) -> Result<Vec<KeyFile>, String> {
    let mut keys = Vec::new();
    let first = path.join("server.key");
    if first.exists() {
        keys.push(load_key(&first, &path.join("server.pub"))?);
    }
    let dir = path.join("keys");
    for n in numbered(&dir) {
        keys.push(load_key(
            &dir.join(format!("{n}.key")),
            &dir.join(format!("{n}.pub")),
        )?);
    }
    Ok(keys)
}

/// Whether the directory holds retired keys.
fn has_retired(path: &Path) -> bool {
    fs::read_dir(path.join("keys").join("retired"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Creates the next key of the data directory `path` (`keys/N.key`, N one above the highest
/// active or retired) and returns it.
pub fn add_key(path: &Path) -> Result<KeyFile, String> {
    let dir = path.join("keys");
    let retired = dir.join("retired");
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let next = numbered(&dir)
        .into_iter()
        .chain(numbered(&retired))
        .max()
        .unwrap_or(1)
        + 1;
    create_key(
        &dir.join(format!("{next}.key")),
        &dir.join(format!("{next}.pub")),
    )
}

/// Moves the key with `fingerprint` to `keys/retired/` (both its files); returns where its
/// private file went. Refuses an unknown fingerprint and the last active key.
pub fn retire_key(path: &Path, fingerprint: i64) -> Result<PathBuf, String> {
    let keys = load_keys(path)?;
    let key = keys
        .iter()
        .find(|k| k.fingerprint() == fingerprint)
        .ok_or_else(|| format!("no active key has the fingerprint {fingerprint}"))?;
    if keys.len() == 1 {
        return Err("that is the only active key: add another first (`mtcall key add`)".into());
    }
    let retired = path.join("keys").join("retired");
    fs::create_dir_all(&retired).map_err(|e| format!("creating {}: {e}", retired.display()))?;
    // server.key keeps its number (1) in the retired folder, so numbers are never reused.
    let stem = if key.private_path == path.join("server.key") {
        "1".to_owned()
    } else {
        key.private_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("key")
            .to_owned()
    };
    let private_to = retired.join(format!("{stem}.key"));
    fs::rename(&key.private_path, &private_to)
        .map_err(|e| format!("moving {}: {e}", key.private_path.display()))?;
    let _ = fs::rename(&key.public_path, retired.join(format!("{stem}.pub")));
    Ok(private_to)
}

/// A lock on a data directory (its file `lock`): running servers hold it shared, so several
/// may share one directory, and `mtcall restore` takes it exclusively, so it never replaces a
/// database a server has open. Released when dropped (or when the process ends).
pub struct DirLock {
    _file: fs::File,
}

impl DirLock {
    fn take(path: &Path, exclusive: bool) -> Result<Self, String> {
        fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let lock_path = path.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) if exclusive => Err(format!(
                "a server is running on {}: stop it first",
                path.display()
            )),
            Err(fs::TryLockError::WouldBlock) => Err(format!(
                "{} is being restored: start the server when that is done",
                path.display()
            )),
            Err(fs::TryLockError::Error(e)) => Err(format!("locking {}: {e}", lock_path.display())),
        }
    }

    /// The lock a server holds while it runs.
    pub fn serving(path: &Path) -> Result<Self, String> {
        Self::take(path, false)
    }

    /// The lock that no server holds at the same time.
    pub fn exclusive(path: &Path) -> Result<Self, String> {
        Self::take(path, true)
    }
}

impl DataDir {
    /// Opens `path`, creating it, its first key and its secret when missing.
    pub fn open(path: &Path) -> Result<Self, String> {
        fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut keys = load_keys(path)?;
        let created_key = keys.is_empty();
        if created_key {
            if has_retired(path) {
                return Err(format!(
                    "every RSA key of {} is retired: add one (`mtcall key add`)",
                    path.display()
                ));
            }
            keys.push(create_key(
                &path.join("server.key"),
                &path.join("server.pub"),
            )?);
        }
        let secret_path = path.join("server.secret");
        let secret = match fs::read(&secret_path) {
            Ok(bytes) => bytes
                .try_into()
                .map_err(|_| format!("{} must hold 32 bytes", secret_path.display()))?,
            Err(_) => {
                let secret: [u8; 32] = OsEntropy.array();
                write_private(&secret_path, &secret)
                    .map_err(|e| format!("writing {}: {e}", secret_path.display()))?;
                secret
            }
        };
        Ok(DataDir {
            path: path.to_path_buf(),
            keys,
            secret,
            created_key,
        })
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.path.join("mtcall.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_retired_and_never_all_retired() {
        let dir = std::env::temp_dir().join(format!("mtcall-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = DataDir::open(&dir).unwrap();
        assert!(first.created_key);
        let fp1 = first.keys[0].fingerprint();
        let second = add_key(&dir).unwrap();
        assert_eq!(second.private_path, dir.join("keys/2.key"));
        let fps: Vec<i64> = load_keys(&dir)
            .unwrap()
            .iter()
            .map(|k| k.fingerprint())
            .collect();
        assert_eq!(fps, [fp1, second.fingerprint()]);

        assert!(retire_key(&dir, 12345).is_err(), "unknown fingerprint");
        assert_eq!(
            retire_key(&dir, fp1).unwrap(),
            dir.join("keys/retired/1.key")
        );
        assert!(!dir.join("server.key").exists());
        assert!(
            retire_key(&dir, second.fingerprint()).is_err(),
            "the last key stays"
        );
        let reopened = DataDir::open(&dir).unwrap();
        assert!(!reopened.created_key, "no fresh key while one is active");
        assert_eq!(reopened.keys.len(), 1);
        assert_eq!(add_key(&dir).unwrap().private_path, dir.join("keys/3.key"));

        // Only retired keys left: refused, not silently replaced.
        let lonely = dir.join("only-retired");
        fs::create_dir_all(lonely.join("keys/retired")).unwrap();
        fs::write(lonely.join("keys/retired/1.key"), "x").unwrap();
        assert!(DataDir::open(&lonely).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
