#!/usr/bin/env python3
"""Make the patched copy of grammers-mtproto 0.11.0 that Cargo.toml's [patch.crates-io] points at.

grammers hard-codes Telegram's RSA keys in `grammers-mtproto/src/authentication.rs`
(`key_for_fingerprint` is a `match` on two fingerprints), so a grammers client cannot talk to any
other server. This script takes the pristine crate from Cargo's registry cache (fetching it with a
throw-away crate when absent), unpacks it into `patched/grammers-mtproto` beside this file and makes
`key_for_fingerprint` also accept one key given at run time:

    MTCALL_RSA_FP  the key's fingerprint, signed decimal i64 (as mtcall prints it)
    MTCALL_RSA_N   the modulus, decimal
    MTCALL_RSA_E   the public exponent, decimal (default 65537)

Nothing third-party is committed: `patched/` is ignored by git and rebuilt here when missing or stale
(a stamp file records what it was made from, so an up-to-date copy is left alone and Cargo does not
rebuild it). Fails loudly when the anchor text is not found.

Usage: python3 patch.py            (uses $CARGO_HOME or ~/.cargo, and `cargo` from PATH)
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CRATE = "grammers-mtproto"
VERSION = "0.11.0"
HERE = Path(__file__).resolve().parent
DEST = HERE / "patched" / CRATE
STAMP = DEST / ".mtcall-patch-stamp"

ANCHOR = """        _ => return None
    })
}
"""
REPLACEMENT = """        _ => return mtcall_runtime_key(fingerprint),
    })
}

// mtcall interop patch: one extra server key given at run time through the environment.
fn mtcall_runtime_key(fingerprint: i64) -> Option<rsa::Key> {
    let wanted: i64 = std::env::var("MTCALL_RSA_FP").ok()?.trim().parse().ok()?;
    if wanted != fingerprint {
        return None;
    }
    let n = std::env::var("MTCALL_RSA_N").ok()?;
    let e = std::env::var("MTCALL_RSA_E").unwrap_or_else(|_| "65537".to_string());
    rsa::Key::new(n.trim(), e.trim())
}
"""
TARGET_FILE = "src/authentication.rs"


def die(msg: str) -> None:
    print(f"patch.py: {msg}", file=sys.stderr)
    sys.exit(1)


def cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


def find_crate_file() -> Path | None:
    cache = cargo_home() / "registry" / "cache"
    hits = sorted(cache.glob(f"*/{CRATE}-{VERSION}.crate"))
    return hits[0] if hits else None


def fetch_crate() -> None:
    """Let Cargo download the crate (with its checksum check) through a throw-away crate."""
    with tempfile.TemporaryDirectory(prefix="mtcall-grammers-fetch-") as tmp:
        (Path(tmp) / "src").mkdir()
        (Path(tmp) / "src" / "lib.rs").write_text("")
        (Path(tmp) / "Cargo.toml").write_text(
            '[package]\nname = "mtcall-grammers-fetch"\nversion = "0.0.0"\nedition = "2021"\n'
            f'[workspace]\n[dependencies]\n{CRATE} = "={VERSION}"\n'
        )
        subprocess.run(["cargo", "fetch", "--manifest-path", str(Path(tmp) / "Cargo.toml")], check=True)


def main() -> None:
    crate_file = find_crate_file()
    if crate_file is None:
        fetch_crate()
        crate_file = find_crate_file()
        if crate_file is None:
            die(f"{CRATE}-{VERSION}.crate not found in {cargo_home()}/registry/cache after cargo fetch")
    data = crate_file.read_bytes()
    stamp = hashlib.sha256(data + ANCHOR.encode() + REPLACEMENT.encode()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == stamp:
        print(f"patch.py: {DEST} is up to date")
        return

    if DEST.exists():
        shutil.rmtree(DEST)
    DEST.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{CRATE}-{VERSION}/"
    with tempfile.TemporaryDirectory(prefix="mtcall-grammers-unpack-", dir=DEST.parent) as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if not member.name.startswith(prefix) or ".." in Path(member.name).parts:
                    die(f"unexpected entry {member.name!r} in {crate_file}")
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / prefix
        target = src / TARGET_FILE
        text = target.read_text()
        if text.count(ANCHOR) != 1:
            die(f"anchor text not found exactly once in {TARGET_FILE} of {crate_file}; the patch needs updating")
        if "fn key_for_fingerprint(fingerprint: i64) -> Option<rsa::Key>" not in text:
            die(f"key_for_fingerprint signature not found in {TARGET_FILE}; the patch needs updating")
        target.write_text(text.replace(ANCHOR, REPLACEMENT))
        (src / STAMP.name).write_text(stamp + "\n")
        src.rename(DEST)
    print(f"patch.py: wrote {DEST} from {crate_file}")


if __name__ == "__main__":
    main()
