//! The RSA keys a running server offers in key exchanges: every active key of its data
//! directory ([`crate::data_dir`]), read at start and again on [`KeyRing::reload`] (`mtcall
//! serve` reloads on SIGHUP), so keys are added and retired without a restart. A handshake
//! uses the set it started with.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use mtproto::crypto::rsa_key::ServerKey;

use crate::data_dir::{self, KeyFile};

/// A key's fingerprint and the file clients get it from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The fingerprint.
    pub fingerprint: i64,
    /// Its public PEM.
    pub public_path: PathBuf,
}

/// The keys on offer.
pub struct KeyRing {
    data_dir: PathBuf,
    keys: RwLock<(Arc<Vec<ServerKey>>, Vec<KeyInfo>)>,
}

fn split(files: Vec<KeyFile>) -> (Arc<Vec<ServerKey>>, Vec<KeyInfo>) {
    let info = files
        .iter()
        .map(|k| KeyInfo {
            fingerprint: k.fingerprint(),
            public_path: k.public_path.clone(),
        })
        .collect();
    (Arc::new(files.into_iter().map(|k| k.key).collect()), info)
}

impl KeyRing {
    /// The keys `files` of the data directory `data_dir`.
    pub fn new(data_dir: PathBuf, files: Vec<KeyFile>) -> Self {
        KeyRing {
            data_dir,
            keys: RwLock::new(split(files)),
        }
    }

    /// The keys a handshake starting now offers.
    pub fn current(&self) -> Arc<Vec<ServerKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Each key's fingerprint and public file, in the order offered.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Reads the data directory's active keys again; on an error (or none left) the keys on
    /// offer stay as they were. Returns the new list.
    pub fn reload(&self) -> Result<Vec<KeyInfo>, String> {
        let files = data_dir::load_keys(&self.data_dir)?;
        if files.is_empty() {
            return Err(format!(
                "{} has no active RSA key: keeping the keys loaded",
                self.data_dir.display()
            ));
        }
        let fresh = split(files);
        let list = fresh.1.clone();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(list)
    }
}
