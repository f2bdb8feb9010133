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
Python 3.11 standard library only, and ../common/harness.py.
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Server, free_port, bot_create, arg_parser

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


def run_phase(tally, cmd, phase, args, expected, env):
    return harness.run_phase(tally, cmd, phase, args, expected, env, PHASE_TIMEOUT)


def run_client(tally, client, cmd, env, mtcall, keep):
    work = Path(tempfile.mkdtemp(prefix=f"mtcall-interop-{client}-"))
    data, state = work / "data", work / "state.json"
    log1, log2 = work / "server-fresh.log", work / "server-resume.log"
    server = harness.Server(mtcall, data, log1, port=harness.free_port())  # a restart keeps the port
    ok = True
    started = time.monotonic()

    def dump_log(path):
        tally.line(f"--- server log tail ({path}) ---")
        for line in harness.log_tail(path):
            tally.line(f"  > {line}")

    try:
        banner = server.start()
        tally.line(banner)
        try:
            token = harness.bot_create(mtcall, data, f"{client}_interop_bot")
        except harness.CheckFailed as e:
            tally.fail("bot create", e)
            token = "0:none"
            ok = False
        args = [str(server.port), str(data), token, str(state)]
        if not run_phase(tally, cmd, "fresh", args, FRESH_CHECKS[client], env):
            ok = False
            dump_log(log1)

        reason = server.stop()
        if reason:
            tally.fail("server stop", reason)
            ok = False
        else:
            tally.ok("server stop", "SIGTERM")

        server.log = log2
        server.start()
        resumed = run_phase(tally, cmd, "resume", args, RESUME_CHECKS, env)
        if not resumed:
            ok = False
            dump_log(log2)
        reason = server.stop()
        if reason:
            tally.fail("server stop after resume", reason)
            ok = False

        created = [l for l in harness.log_lines(log2) if "auth key created" in l]
        if created:
            tally.fail("no new auth key on resume", f"{len(created)} created: {created[0].strip()}")
            ok = False
        elif not resumed:
            tally.fail("no new auth key on resume", "not established: the resume phase failed")
        else:
            tally.ok("no new auth key on resume")
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail("driver", f"{type(e).__name__}: {e}")
        ok = False
        dump_log(server.log)
    finally:
        server.stop()
        tally.line(f"suite took {time.monotonic() - started:.1f}s")
        if ok and not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            tally.line(f"files kept in {work}")
    return ok


def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--node", default="node", help="node executable")
    ap.add_argument("--node-path", help="node_modules dir holding `telegram` (NODE_PATH)")
    ap.add_argument("--python", help="python with telethon installed")
    ap.add_argument("--grammers", help="grammers_suite binary (built from interop/grammers)")
    ap.add_argument("--only", default=",".join(CLIENTS), help="comma-separated subset of " + ",".join(CLIENTS))
    a = harness.parse_args(ap)
    mtcall = a.mtcall
    chosen = [c for c in a.only.split(",") if c]
    for c in chosen:
        if c not in CLIENTS:
            ap.error(f"unknown client {c}")

    base_env = harness.client_env()
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

    tally = harness.Tally()
    for client in chosen:
        cmd, env = commands[client]
        tally.prefix = f"[{client}] "  # every line of this client's checks
        run_client(tally, client, cmd, env, mtcall, a.keep)
    sys.exit(tally.summary())


if __name__ == "__main__":
    main()
