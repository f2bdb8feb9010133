//! The data directory: created on first start with the server's RSA key (`server.key`, PKCS#1
//! private PEM; `server.pub`, PKCS#1 public PEM), a random server secret (`server.secret`, from
//! which salts and access hashes derive) and the database (`mtcall.db`).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mtproto::crypto::rsa_key::ServerKey;
use mtproto::crypto::{Entropy, OsEntropy};

/// What the data directory provides.
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// The RSA key.
    pub rsa: ServerKey,
    /// The server secret.
    pub secret: [u8; 32],
    /// Whether the key was created by this call.
    pub created_key: bool,
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

impl DataDir {
    /// Opens `path`, creating it and its key and secret when missing.
    pub fn open(path: &Path) -> Result<Self, String> {
        fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let key_path = path.join("server.key");
        let pub_path = path.join("server.pub");
        let (rsa, created_key) = if key_path.exists() {
            let pem = fs::read_to_string(&key_path)
                .map_err(|e| format!("reading {}: {e}", key_path.display()))?;
            (
                ServerKey::from_pkcs1_pem(&pem)
                    .map_err(|e| format!("{}: {e}", key_path.display()))?,
                false,
            )
        } else {
            let key = ServerKey::generate().map_err(|e| e.to_string())?;
            let pem = key.to_pkcs1_pem().map_err(|e| e.to_string())?;
            write_private(&key_path, pem.as_bytes())
                .map_err(|e| format!("writing {}: {e}", key_path.display()))?;
            (key, true)
        };
        let public = rsa.public().to_pkcs1_pem().map_err(|e| e.to_string())?;
        if fs::read_to_string(&pub_path).ok().as_deref() != Some(public.as_str()) {
            fs::write(&pub_path, &public)
                .map_err(|e| format!("writing {}: {e}", pub_path.display()))?;
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
            rsa,
            secret,
            created_key,
        })
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.path.join("mtcall.db")
    }
}
