#!/usr/bin/env python3
"""Interop driver: the real GramJS, Telethon and grammers clients against the real mtcall server.

For each client: a fresh data dir and a free port below 32768 (GramJS keeps ports as int16),
`mtcall serve` (RUST_LOG=info,server=debug, stderr to a log file), a bot token from
`mtcall bot create`, the suite's `fresh` phase, a clean server stop (SIGTERM), a restart on the same
data dir and port, the suite's `resume` phase, and a check that the restarted server's log has no
`auth key created` line (the saved session resumed with its old key). Each suite line is printed
prefixed by the client's name; the last line is `N passed, M failed`; exit status 1 if any failed.

Usage (see README.md):
    run.py --mtcall target/debug/mtcall \\
           --node node --node-path DIR/node_modules \\
           --python VENV/bin/python \\
           --grammers GRAMMERS_TARGET/debug/grammers_suite \\
           [--only gramjs,telethon,grammers] [--keep]
Python 3.11 standard library only.
"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENTS = ["gramjs", "telethon", "grammers"]
# Every check each suite must report (a missing one counts as failed).
FRESH_CHECKS = {
    "gramjs": ["50 fresh connects", "sign up", "sign in existing account", "transport full",
               "transport abridged", "transport obfuscated", "bot login", "resolve username",
               "resolve phone", "access hash usable", "pushed updateUserName", "save session"],
    "telethon": ["50 fresh connects", "sign up", "sign in existing account", "transport full",
                 "transport intermediate", "transport abridged", "transport obfuscated", "bot login",
                 "resolve username", "resolve phone", "access hash usable", "pushed updateUserName",
                 "save session"],
    "grammers": ["50 fresh connects", "sign up", "sign in existing account", "transport full",
                 "bot login", "resolve username", "resolve phone", "access hash usable",
                 "pushed updateUserName", "save session"],
}
RESUME_CHECKS = ["resume session"]
PHASE_TIMEOUT = 150  # seconds; a hung client (e.g. a busy loop in GramJS) is killed
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def line(self, client, text):
        print(f"[{client}] {text}", flush=True)

    def ok(self, client, name, detail=""):
        self.passed += 1
        self.line(client, f"ok {name}" + (f" ({detail})" if detail else ""))

    def fail(self, client, name, reason):
        self.failed += 1
        self.line(client, f"FAIL {name}: {reason}")


def free_port():
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


class Server:
    def __init__(self, mtcall, data, port, log):
        self.mtcall, self.data, self.port, self.log = mtcall, data, port, log
        self.proc = None

    def start(self, attempts=5):
        env = dict(os.environ, RUST_LOG="info,server=debug")
        for attempt in range(attempts):
            out = self.log.with_suffix(".stdout")
            with open(self.log, "ab") as err, open(out, "wb") as stdout:
                self.proc = subprocess.Popen(
                    [self.mtcall, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
                    stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, env=env)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "listening on" in out.read_text(errors="replace"):
                    return out.read_text(errors="replace").strip()
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                self.stop()
                raise RuntimeError("server did not report listening within 30 s")
            # exited early (e.g. the port is still held): retry shortly
            time.sleep(1 + attempt)
        raise RuntimeError(f"server failed to start (exit {self.proc.returncode}); see {self.log}")

    def stop(self):
        """SIGTERM and wait; returns None if it stopped cleanly, else a reason."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            self.proc = None
            return None if rc in (None, 0) else f"server had already exited with {rc}"
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return "server did not stop within 15 s of SIGTERM (killed)"
        self.proc = None
        return None if rc == 0 else f"server exited with {rc} after SIGTERM"


def log_tail(path, n=40):
    try:
        lines = ANSI.sub("", Path(path).read_text(errors="replace")).splitlines()
    except OSError:
        return []
    return lines[-n:]


def run_phase(tally, client, cmd, phase, args, expected, env):
    started = time.monotonic()
    try:
        p = subprocess.run(cmd + [phase] + args, capture_output=True, text=True, timeout=PHASE_TIMEOUT,
                           env=env, stdin=subprocess.DEVNULL)
        stdout, stderr, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc = f"killed after {PHASE_TIMEOUT}s"
    elapsed = time.monotonic() - started
    seen, failed_before = set(), tally.failed
    for line in stdout.splitlines():
        if line.startswith("ok "):
            name, _, detail = line[3:].partition(" (")
            seen.add(name)
            tally.ok(client, name, detail[:-1] if detail.endswith(")") else detail)
        elif line.startswith("FAIL "):
            name, _, reason = line[5:].partition(": ")
            seen.add(name)
            tally.fail(client, name, reason)
        elif line.strip():
            tally.line(client, f"  | {line}")
    for name in expected:
        if name not in seen:
            tally.fail(client, name, f"not reported ({phase} phase exit status {rc})")
    if rc != 0 and tally.failed == failed_before:
        tally.fail(client, f"{phase} phase", f"exit status {rc} without a failed check")
    tally.line(client, f"{phase} phase took {elapsed:.1f}s (exit status {rc})")
    ok = tally.failed == failed_before
    if not ok and stderr.strip():
        tally.line(client, f"--- {phase} stderr (last 30 lines) ---")
        for line in stderr.splitlines()[-30:]:
            tally.line(client, f"  ! {line}")
    return ok


def run_client(tally, client, cmd, env, mtcall, keep):
    work = Path(tempfile.mkdtemp(prefix=f"mtcall-interop-{client}-"))
    data, state = work / "data", work / "state.json"
    port = free_port()
    log1, log2 = work / "server-fresh.log", work / "server-resume.log"
    server = Server(mtcall, data, port, log1)
    ok = True
    started = time.monotonic()

    def dump_log(path):
        tally.line(client, f"--- server log tail ({path}) ---")
        for line in log_tail(path):
            tally.line(client, f"  > {line}")

    try:
        banner = server.start()
        tally.line(client, banner)
        bot = subprocess.run([mtcall, "bot", "create", "--data", str(data), "--username", f"{client}_interop_bot"],
                             capture_output=True, text=True, timeout=30)
        tokens = [t for t in bot.stdout.split() if re.fullmatch(r"\d+:\S+", t)]
        if bot.returncode != 0 or not tokens:
            tally.fail(client, "bot create", f"exit {bot.returncode}: {bot.stdout.strip()} {bot.stderr.strip()}")
            token = "0:none"
            ok = False
        else:
            token = tokens[-1]
        args = [str(port), str(data), token, str(state)]
        if not run_phase(tally, client, cmd, "fresh", args, FRESH_CHECKS[client], env):
            ok = False
            dump_log(log1)

        reason = server.stop()
        if reason:
            tally.fail(client, "server stop", reason)
            ok = False
        else:
            tally.ok(client, "server stop", "SIGTERM")

        server.log = log2
        server.start()
        resumed = run_phase(tally, client, cmd, "resume", args, RESUME_CHECKS, env)
        if not resumed:
            ok = False
            dump_log(log2)
        reason = server.stop()
        if reason:
            tally.fail(client, "server stop after resume", reason)
            ok = False

        created = [l for l in ANSI.sub("", log2.read_text(errors="replace")).splitlines() if "auth key created" in l]
        if created:
            tally.fail(client, "no new auth key on resume", f"{len(created)} created: {created[0].strip()}")
            ok = False
        elif not resumed:
            tally.fail(client, "no new auth key on resume", "not established: the resume phase failed")
        else:
            tally.ok(client, "no new auth key on resume")
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail(client, "driver", f"{type(e).__name__}: {e}")
        ok = False
        dump_log(server.log)
    finally:
        server.stop()
        tally.line(client, f"suite took {time.monotonic() - started:.1f}s")
        if ok and not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            tally.line(client, f"files kept in {work}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mtcall", default=os.environ.get("MTCALL_BIN"), help="mtcall binary (default $MTCALL_BIN)")
    ap.add_argument("--node", default="node", help="node executable")
    ap.add_argument("--node-path", help="node_modules dir holding `telegram` (NODE_PATH)")
    ap.add_argument("--python", help="python with telethon installed")
    ap.add_argument("--grammers", help="grammers_suite binary (built from interop/grammers)")
    ap.add_argument("--only", default=",".join(CLIENTS), help="comma-separated subset of " + ",".join(CLIENTS))
    ap.add_argument("--keep", action="store_true", help="keep temp dirs and logs even when all passed")
    a = ap.parse_args()
    if not a.mtcall:
        ap.error("--mtcall (or $MTCALL_BIN) is required")
    mtcall = str(Path(a.mtcall).resolve())
    chosen = [c for c in a.only.split(",") if c]
    for c in chosen:
        if c not in CLIENTS:
            ap.error(f"unknown client {c}")

    base_env = dict(os.environ)
    base_env.pop("RUST_LOG", None)
    commands = {}
    if "gramjs" in chosen:
        if not a.node_path:
            ap.error("gramjs needs --node-path")
        commands["gramjs"] = ([a.node, str(HERE / "gramjs_suite.js")],
                              dict(base_env, NODE_PATH=str(Path(a.node_path).resolve())))
    if "telethon" in chosen:
        if not a.python:
            ap.error("telethon needs --python")
        commands["telethon"] = ([a.python, str(HERE / "telethon_suite.py")], base_env)
    if "grammers" in chosen:
        if not a.grammers:
            ap.error("grammers needs --grammers")
        commands["grammers"] = ([str(Path(a.grammers).resolve())], base_env)

    tally = Tally()
    for client in chosen:
        cmd, env = commands[client]
        run_client(tally, client, cmd, env, mtcall, a.keep)
    print(f"{tally.passed} passed, {tally.failed} failed", flush=True)
    sys.exit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
