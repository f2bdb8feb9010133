#!/usr/bin/env python3
"""Interop driver: real Telethon and GramJS clients against `mtcall serve` configured as an operator would
run it for real people (the README's "Operating mtcall"), over TCP on 127.0.0.1.

For each client, on a fresh data dir:
  allowlist  the server starts with test numbers off, sign-up by allowlist, a code command (a shell line
             appending "PHONE CODE" to a file: the codes reach the clients only through it), small
             auth.sendCode limits and loopback not exempt from them; `mtcall users add` puts two numbers on
             the allowlist while it runs; the client's `allowlist` phase runs (test number refused, a number
             off the list refused, a wrong code, sign-up and sign-in with the hooked code, both limits).
             Then the server's log must hold none of the codes the command was given.
  closed     the server restarts on the same data with sign-up closed; the `closed` phase: the account
             made before still logs in, a number with no account (on the allowlist too) is refused.
  keys       while that server runs: `mtcall key add`, SIGHUP; a client that pinned the old key and one
             given only the new key both log in (`key_pinned`); `mtcall key retire OLD`, SIGHUP; the
             client with the old key is refused at the key exchange (`key_refused`), the new key still
             logs in; a restart offers only the new key.
  password   on that server: the client's own two-step-verification paths set a cloud password, are
             refused with a wrong one (PASSWORD_HASH_INVALID), log in with the right one, remove it.
Each suite line is printed prefixed by the client's name; the last line is `N passed, M failed`.

Usage:
    run.py --mtcall target/debug/mtcall --node node --node-path DIR/node_modules --python VENV/bin/python
           [--only telethon,gramjs] [--keep]
Python 3.11 standard library only, and ../common/harness.py.
"""

import json
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Server, run_phase, arg_parser

CLIENTS = ["telethon", "gramjs"]
CHECKS = {
    "allowlist": ["test number refused when test numbers are off", "number off the allowlist refused",
                  "wrong code", "allowlisted number signs up with the hooked code", "existing account signs in",
                  "codes per number limited", "codes per address limited"],
    "closed": ["closed sign-up: existing account signs in", "closed sign-up: new number refused"],
    "key_pinned": ["a client that pinned the key logs in"],
    "key_refused": ["a client that pinned only a retired key is refused"],
    "password": ["cloud password set", "wrong cloud password refused", "cloud password logs in",
                 "cloud password removed"],
}
PHASE_TIMEOUT = 120


def config(codes, signup, limited):
    """The server's TOML for a phase."""
    command = f"printf '%s %s\\n' \"$MTCALL_PHONE\" \"$MTCALL_CODE\" >> {shlex.quote(str(codes))}"
    lines = ["[auth]", f"signup = \"{signup}\"", "test_numbers = false", f"code_command = {json.dumps(command)}"]
    if limited:
        lines += ["codes_per_phone_per_hour = 3", "codes_per_address_per_hour = 8", "[limits]",
                  "exempt_loopback = false"]
    return "\n".join(lines) + "\n"


def numbers(client_digit):
    """Fresh numbers for one client's run (random, so reruns on one database do not collide)."""
    r = random.randrange(10**6)
    return {"allowed": f"1555{client_digit}{r:06d}", "allowed_later": f"1556{client_digit}{r:06d}",
            "stranger": f"1557{client_digit}{r:06d}", "test": f"99966{client_digit}{r % 10000:04d}",
            "flood_prefix": f"1558{client_digit}{r % 10000:04d}"}


def mtcall(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=harness.client_env(), timeout=30)
    harness.expect(r.returncode == 0, f"mtcall {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout


def reload_keys(server, count, timeout=10):
    """Sends the running server SIGHUP and waits for its `count`-th `keys reloaded:` line, returned."""
    server.proc.send_signal(signal.SIGHUP)
    out = server.log.with_suffix(".stdout")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in out.read_text().splitlines() if line.startswith("keys reloaded:")]
        if len(lines) >= count:
            return lines[count - 1]
        harness.expect(server.proc.poll() is None, f"the server exited on SIGHUP ({server.proc.returncode})")
        time.sleep(0.1)
    raise harness.CheckFailed(f"no `keys reloaded:` line {count} within {timeout} s of SIGHUP")


def rotate_keys(tally, cmd, env, binary, server, work, args):
    """The `keys` part: add a key, retire the old one, each picked up on SIGHUP; returns whether the client
    phases passed, and the new key's public file."""
    data = server.data
    listed = mtcall(binary, "key", "list", "--data", str(data)).split()
    old_fp = listed[0]
    old_pub = work / "pinned-old.pub"  # server.pub moves to keys/retired/ when retired
    shutil.copy(data / "server.pub", old_pub)
    added = mtcall(binary, "key", "add", "--data", str(data))
    m = re.match(r"added key (-?[0-9]+) \(public key (.+)\)$", added.strip())
    harness.expect(m, f"`mtcall key add` printed {added!r}")
    new_fp, new_pub = m.group(1), Path(m.group(2))
    line = reload_keys(server, 1)
    harness.expect(old_fp in line and new_fp in line, f"after `key add` and SIGHUP: {line!r}")
    tally.ok("mtcall key add, SIGHUP: both keys offered", f"{old_fp}, {new_fp}")
    ok = harness.run_phase(tally, cmd, "key_pinned", args, CHECKS["key_pinned"],
                           dict(env, MTCALL_PINNED_KEY=str(old_pub)), PHASE_TIMEOUT)
    ok &= harness.run_phase(tally, cmd, "key_pinned", args, CHECKS["key_pinned"],
                            dict(env, MTCALL_PINNED_KEY=str(new_pub)), PHASE_TIMEOUT)
    mtcall(binary, "key", "retire", "--data", str(data), old_fp)
    line = reload_keys(server, 2)
    harness.expect(old_fp not in line and new_fp in line, f"after `key retire` and SIGHUP: {line!r}")
    tally.ok("mtcall key retire, SIGHUP: only the new key offered", new_fp)
    ok &= harness.run_phase(tally, cmd, "key_refused", args, CHECKS["key_refused"],
                            dict(env, MTCALL_PINNED_KEY=str(old_pub)), PHASE_TIMEOUT)
    ok &= harness.run_phase(tally, cmd, "key_pinned", args, CHECKS["key_pinned"],
                            dict(env, MTCALL_PINNED_KEY=str(new_pub)), PHASE_TIMEOUT)
    stop = server.stop()
    harness.expect(stop is None, stop)
    banner = server.start()
    harness.expect(new_fp in banner and old_fp not in banner, f"the startup line after a restart: {banner!r}")
    tally.ok("restart: the startup line lists only the new key", new_fp)
    return ok, new_pub


def run_client(tally, client, cmd, env, binary, keep):
    work = Path(tempfile.mkdtemp(prefix=f"mtcall-operating-{client}-"))
    data, codes, toml = work / "data", work / "codes.txt", work / "mtcall.toml"
    codes.touch()
    nums = numbers(CLIENTS.index(client) + 2)
    server = harness.Server(binary, data, work / "server-allowlist.log", port=harness.free_port(),
                            extra_args=["--config", str(toml), "--no-admin", "--no-relay"])
    started, ok = time.monotonic(), True
    try:
        toml.write_text(config(codes, "allowlist", limited=True))
        banner = server.start()
        tally.line(banner.replace("\n", " | "))
        harness.expect("test numbers off, sign-up allowlist, codes to the code command" in banner,
                       f"the startup line does not state the logins: {banner!r}")
        tally.ok("startup line states the logins")
        added = mtcall(binary, "users", "add", "--data", str(data), "--config", str(toml),
                       nums["allowed"], "+" + nums["allowed_later"])
        listed = mtcall(binary, "users", "allowed", "--data", str(data))
        harness.expect(set(listed.split()) >= {"+" + nums["allowed"], "+" + nums["allowed_later"]},
                       f"`mtcall users allowed` printed {listed!r} after `users add` printed {added!r}")
        tally.ok("mtcall users add / allowed", f"{len(listed.split())} numbers")
        args = [str(server.port), str(data), str(codes), json.dumps(nums)]
        ok &= harness.run_phase(tally, cmd, "allowlist", args, CHECKS["allowlist"], env, PHASE_TIMEOUT)
        stop = server.stop()
        harness.expect(stop is None, stop)

        given = [line.split() for line in codes.read_text().splitlines() if line.strip()]
        log = harness.log_lines(server.log)
        leaked = [line for line in log for _, code in given if re.search(rf"\bcode[=:]\s*\"?{code}\b", line)]
        harness.expect(given, "the code command was never run")
        harness.expect(not leaked, f"the log shows a code: {leaked[:1]}")
        handed = sum("login code handed to the code command" in line for line in log)
        harness.expect(handed == len(given), f"{handed} deliveries logged, the command got {len(given)}")
        tally.ok("codes only through the code command", f"{len(given)} codes, none in the log")

        toml.write_text(config(codes, "closed", limited=False))
        server.log = work / "server-closed.log"
        banner = server.start()
        harness.expect("sign-up closed" in banner, f"the startup line: {banner!r}")
        ok &= harness.run_phase(tally, cmd, "closed", args, CHECKS["closed"], env, PHASE_TIMEOUT)
        rotated, new_pub = rotate_keys(tally, cmd, env, binary, server, work, args)
        ok &= rotated
        ok &= harness.run_phase(tally, cmd, "password", args, CHECKS["password"],
                                dict(env, MTCALL_PINNED_KEY=str(new_pub)), PHASE_TIMEOUT)
        stop = server.stop()
        harness.expect(stop is None, stop)
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail("driver", f"{type(e).__name__}: {e}")
        ok = False
    finally:
        server.stop()
        if not ok:
            tally.block(f"server log tail ({server.log})", server.tail(40), ">")
        tally.line(f"suite took {time.monotonic() - started:.1f}s")
        if ok and not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            tally.line(f"files kept in {work}")


def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--node", default="node", help="node executable")
    ap.add_argument("--node-path", help="node_modules dir holding `telegram` (NODE_PATH)")
    ap.add_argument("--python", help="python with telethon installed")
    ap.add_argument("--only", default=",".join(CLIENTS), help="comma-separated subset of " + ",".join(CLIENTS))
    a = harness.parse_args(ap)
    chosen = [c for c in a.only.split(",") if c]
    base_env = harness.client_env()
    commands = {}
    for c in chosen:
        if c == "telethon":
            if not a.python:
                ap.error("telethon needs --python")
            commands[c] = ([a.python, str(HERE / "telethon_operating.py")], base_env)
        elif c == "gramjs":
            if not a.node_path:
                ap.error("gramjs needs --node-path")
            commands[c] = ([a.node, str(HERE / "gramjs_operating.js")],
                           dict(base_env, NODE_PATH=str(Path(a.node_path).resolve())))
        else:
            ap.error(f"unknown client {c}")
    tally = harness.Tally()
    for client in chosen:
        tally.prefix = f"[{client}] "
        run_client(tally, client, *commands[client], a.mtcall, a.keep)
    sys.exit(tally.summary())


if __name__ == "__main__":
    main()
