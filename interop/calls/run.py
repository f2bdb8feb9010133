#!/usr/bin/env python3
"""Call-signalling interop driver: the real GramJS and Telethon clients place and answer one-to-one calls
through a real mtcall server (docs/calls.md).

It starts `mtcall serve` on a free port below 32768 with a temporary data dir, compiles the TypeScript
seed with the given tsc, starts one GramJS agent (gramjs_agent.js) and one Telethon agent
(telethon_agent.py), each hosting several logged-in sessions, and drives the scenarios through them
(JSON lines on stdin/stdout; the clients themselves only talk to the server, and every cross-client
step waits for the server's push). The seed scripts (seed_received_call.js / .ts) run as their own
processes, as the callee of a call the Telethon agent places. mtcall's own client takes part through the
binary's client commands: `mtcall login`, then `mtcall answer` (called by Telethon) and `mtcall call`
(calling GramJS, hanging up on SIGINT); their stdout is checked line by line.

Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (lines starting with `#` are information),
then `N passed, M failed`; exit status 1 if any check failed, with the tail of the server log.

Usage (see README.md):
    run.py --mtcall /tmp/mtcall-bin-calls --node node --node-path DIR/node_modules \\
           --tsc DIR/node_modules/.bin/tsc --python VENV/bin/python [--keep]
Python 3.11 standard library only, and ../common/harness.py.
"""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import struct
import threading
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Server, JsonLines, Cli, mtcall_login, finish

UPDATE_TIMEOUT = 5.0  # a push the server owes us
SILENCE = 2.0  # "nothing arrives" windows
OP_TIMEOUT = 15.0  # one agent request
LOGIN_TIMEOUT = 15.0
SEED_TIMEOUT = 40.0
CLI_TIMEOUT = 15.0  # one line of mtcall's own client (`mtcall answer` / `mtcall call`)
# Telegram's 2048-bit safe prime (docs/calls.md §5.9), g = 3
TELEGRAM_P = (
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4db"
    "fa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64"
    "2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b41"
    "0dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4"
    "e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf"
    "6f4fadf034b10403119cd8e3b92fcc5b"
)
PROTOCOL = {"udp_p2p": True, "udp_reflector": True, "min_layer": 65, "max_layer": 92, "library_versions": ["2.4.4"]}
BUSY = "phoneCallDiscardReasonBusy"
REASON_TL = {"missed": "phoneCallDiscardReasonMissed", "disconnect": "phoneCallDiscardReasonDisconnect",
             "hangup": "phoneCallDiscardReasonHangup", "busy": BUSY}
CONNECTED = harness.CONNECTED  # what `mtcall call` / `mtcall answer` print once the key is agreed

CheckFailed, expect, expect_connected = harness.CheckFailed, harness.expect, harness.expect_connected


def Scenario(tally, title):  # noqa: N802 - reads as the class it was
    """Steps in order under a title; once one fails, the rest are reported as failed (not run)."""
    return harness.Steps(tally, title, clean=(CheckFailed, AgentError))


# ------------------------------------------------------------------------------------------ handshake
def res_pq(port):
    """One plain req_pq_multi over TCP Full on a new connection; returns resPQ.pq as an int."""
    nonce = os.urandom(16)
    body = struct.pack("<I", 0xBE7E8EF1) + nonce  # req_pq_multi nonce:int128
    payload = struct.pack("<qqi", 0, int(time.time() * 2**32) & ~3, len(body)) + body
    packet = struct.pack("<ii", len(payload) + 12, 0) + payload
    packet += struct.pack("<I", zlib.crc32(packet))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(packet)
        buf = b""
        while len(buf) < 4 or len(buf) < struct.unpack("<i", buf[:4])[0]:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError(f"connection closed after {len(buf)} bytes")
            buf += chunk
    data = buf[8:struct.unpack("<i", buf[:4])[0] - 4]  # skip len+seq, drop crc
    expect(struct.unpack("<I", data[20:24])[0] == 0x05162463 and data[24:40] == nonce, "not a resPQ for our nonce")
    return int.from_bytes(data[57:57 + data[56]], "big")  # pq:string after nonce + server_nonce


# ------------------------------------------------------------------------------------------ agents
AgentError = harness.AgentError


class Agent(harness.JsonLines):
    """One agent process (gramjs_agent.js or telethon_agent.py) and its JSON-lines channel."""

    def __init__(self, lib, cmd, env, log_path):
        super().__init__(lib, cmd, env, log_path, OP_TIMEOUT)


class Session:
    """One logged-in client session hosted by an agent."""

    def __init__(self, agent, name, phone, first):
        self.agent, self.name, self.phone, self.first = agent, name, str(phone), first
        self.lib = agent.lib if agent else "seed script"
        self.user_id = None

    def __repr__(self):
        return f"{self.name}({self.lib})"

    def do(self, op, op_timeout=OP_TIMEOUT, **args):
        return self.agent.do(op, op_timeout=op_timeout, client=self.name, **args)

    def send(self, op, **args):
        return self.agent.send(op, client=self.name, **args)

    def resolve(self, other):
        r = self.do("resolve", phone=other.phone)
        expect(r["user_id"] == other.user_id, f"resolvePhone({other.phone}) gave user {r['user_id']}, want {other.user_id}")
        return r

    def call(self, other):
        self.resolve(other)
        return self.do("request_call", phone=other.phone)

    def wait(self, type_, call_id, timeout=UPDATE_TIMEOUT):
        return self.do("wait", op_timeout=timeout + OP_TIMEOUT, type=type_, call_id=call_id, timeout=timeout)

    def drain(self):
        return self.do("drain")

    def received(self, call_id, **kw):
        return self.do("received", call_id=call_id, **kw)

    def discard(self, call_id, reason="hangup", duration=0):
        return self.do("discard", call_id=call_id, reason=reason, duration=duration)


def describe(updates):
    return ", ".join(f"{u.get('type')}{'(' + str(u.get('reason')) + ')' if u.get('reason') else ''}"
                     f"#{u.get('id')}" for u in updates) or "none"


def expect_rpc_error(session, fn, name):
    """fn() must fail with the RPC error `name`, as each library reports it."""
    try:
        r = fn()
    except AgentError as e:
        err = e.error
        if session.lib == "gramjs":
            # GramJS: RPCError subclass with .errorMessage = the name, .code = 400
            expect(err.get("rpc") == name and err.get("code") == 400,
                   f"GramJS: want RPCError 400 errorMessage={name}, got {err.get('class')} "
                   f"code={err.get('code')} errorMessage={err.get('rpc')} ({err.get('text')})")
        else:
            # Telethon: the class it maps the name to (errors.CallPeerInvalidError etc., whose str() is a
            # description), or a generic RPCError whose message is the name
            expect((err.get("rpc") == name or name in str(err.get("text"))) and err.get("code") == 400,
                   f"Telethon: want a 400 error for {name}, got {err.get('class')} code={err.get('code')} "
                   f"name={err.get('rpc')} ({err.get('text')})")
        return err
    raise CheckFailed(f"want {name}, got a result: {json.dumps(r)[:300]}")


# ------------------------------------------------------------------------------------------ checks
class Run:
    def __init__(self, tally, agents, server, args, work, node_env, base_env):
        self.t, self.agents, self.server, self.args, self.work = tally, agents, server, args, work
        self.node_env, self.base_env = node_env, base_env
        self.live_calls = []  # (session, call_id): discarded by cleanup() if a scenario broke off
        self.clis = []  # every mtcall client process started; kill_clis() ends those still running

    # ---------------------------------------------------------------- helpers
    def cleanup(self, *sessions):
        self.kill_clis()
        harness.end_calls(self.live_calls, sessions)

    def kill_clis(self):
        for cli in self.clis:
            cli.kill()
        self.clis.clear()

    def login_all(self, sessions):
        futs = [(s, s.send("login", phone=s.phone, first=s.first, last=s.lib)) for s in sessions]
        failures = []
        for s, f in futs:
            try:
                r = s.agent.result(f, LOGIN_TIMEOUT)
                s.user_id = r["user_id"]
            except Exception as e:  # noqa: BLE001
                failures.append(f"{s}: {e}")
        return failures

    # ---------------------------------------------------------------- dh config
    def dh_config(self, sessions):
        for s in sessions:
            sc = Scenario(self.t, f"dh config {s.lib}")

            @sc.step("messages.getDhConfig gives Telegram's p, g=3 and 256 random bytes")
            def _():
                r = s.do("dh_config")
                expect(r["g"] == 3, f"g = {r['g']}")
                expect(r["p"] == TELEGRAM_P, f"p is not Telegram's safe prime: {r['p'][:32]}... ({len(r['p']) // 2} bytes)")
                expect(r["random_len"] == 256, f"random has {r['random_len']} bytes, asked for 256")

    # ---------------------------------------------------------------- the seed
    def start_tsc(self):
        out = self.work / "ts-out"
        nm = str(Path(self.args.node_path).resolve())
        cfg = {
            "compilerOptions": {
                "strict": True, "target": "es2020", "module": "commonjs", "moduleResolution": "node10",
                "esModuleInterop": True, "outDir": str(out), "baseUrl": nm, "paths": {"*": [f"{nm}/*"]},
                "typeRoots": [f"{nm}/@types"], "types": ["node"],
            },
            "files": [str(HERE / "seed_received_call.ts")],
        }
        (self.work / "tsconfig.seed.json").write_text(json.dumps(cfg, indent=2))
        self.tsc_out = out
        self.tsc_log = self.work / "tsc.log"
        self.tsc, self.tsc_error = None, None
        try:
            with open(self.tsc_log, "wb") as log:
                self.tsc = subprocess.Popen([self.args.tsc, "--project", str(self.work / "tsconfig.seed.json")],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.node_env)
        except OSError as e:
            self.tsc_error = f"cannot run {self.args.tsc}: {e}"

    def seed(self, kind, callee_phone, caller):
        """The seed script logs in as the callee; `caller` places a real call to it."""
        sc = Scenario(self.t, f"seed {kind}")
        st = {}

        if kind == "ts":
            @sc.step("tsc compiles seed_received_call.ts (strict)")
            def _():
                expect(self.tsc is not None, str(self.tsc_error))
                try:
                    rc = self.tsc.wait(120)
                except subprocess.TimeoutExpired:
                    self.tsc.kill()
                    raise CheckFailed("tsc did not finish within 120 s") from None
                log = self.tsc_log.read_text(errors="replace").strip()
                expect(rc == 0, f"tsc exit status {rc}: {log[-800:]}")
                expect((self.tsc_out / "seed_received_call.js").exists(), f"no seed_received_call.js in {self.tsc_out}")
            script = self.tsc_out / "seed_received_call.js"
        else:
            script = HERE / "seed_received_call.js"

        @sc.step("callee logs in and waits")
        def _():
            log = open(self.work / f"seed-{kind}.stderr", "wb")
            p = subprocess.Popen([self.args.node, str(script), str(self.server.port), str(self.server.data), callee_phone],
                                 stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True, env=self.node_env)
            log.close()  # the child keeps its own descriptor
            st["proc"], st["lines"] = p, queue.Queue()

            def read():
                for line in p.stdout:
                    st["lines"].put(line.rstrip("\n"))
                st["lines"].put(None)

            threading.Thread(target=read, daemon=True).start()
            deadline = time.monotonic() + LOGIN_TIMEOUT
            st["out"] = []
            while True:
                try:
                    line = st["lines"].get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    p.kill()
                    raise CheckFailed(f"no 'ready' line within {LOGIN_TIMEOUT:.0f}s; stdout {st['out']}") from None
                if line is None:
                    raise CheckFailed(f"exited with {p.wait()} before 'ready'; stdout {st['out']}; "
                                      f"stderr {self.tail_file(self.work / f'seed-{kind}.stderr')}")
                st["out"].append(line)
                if line.startswith("ready "):
                    st["user_id"] = line.split()[2]
                    return

        @sc.step("a Telethon caller places a real call (phoneCallWaiting)")
        def _():
            callee = Session(None, "seed", callee_phone, "Seed")
            callee.user_id = st["user_id"]
            r = caller.call(callee)
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            st["call"] = r["id"]
            self.live_calls.append((caller, r["id"]))

        @sc.step("the seed's console.log(result) prints true")
        def _():
            p = st["proc"]
            try:
                rc = p.wait(SEED_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = f"killed after {SEED_TIMEOUT:.0f}s"
            while True:
                line = st["lines"].get(timeout=5)
                if line is None:
                    break
                st["out"].append(line)
            out = st["out"]
            expect(f"incoming call {st['call']}" in out, f"the seed did not see call {st['call']}: stdout {out}")
            expect(out and out[-1] == "true", f"want last stdout line 'true'; stdout {out}; stderr "
                                              f"{self.tail_file(self.work / f'seed-{kind}.stderr')}")
            expect(rc == 0, f"exit status {rc}")

        @sc.step("the caller gets phoneCallWaiting with receive_date")
        def _():
            u = caller.wait("phoneCallWaiting", st["call"])
            expect(u.get("receive_date"), f"phoneCallWaiting without receive_date: {u}")

        @sc.step("the caller hangs up (Missed)")
        def _():
            r = caller.discard(st["call"], reason="missed")
            self.live_calls.remove((caller, st["call"]))
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded"]
            expect(d and d[0].get("reason") == REASON_TL["missed"], f"discardCall result: {r}")

        if st.get("proc") and st["proc"].poll() is None:
            st["proc"].kill()
        self.cleanup(caller)

    @staticmethod
    def tail_file(path, n=8):
        try:
            return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- a complete call
    def full_call(self, caller, callee, discarder, reason):
        sc = Scenario(self.t, f"call {caller.lib}->{callee.lib}")
        st = {}
        seen = {"caller": [], "callee": []}  # every PhoneCall each side got (results and pushes)

        @sc.step("requestCall gives phoneCallWaiting without receive_date")
        def _():
            r = caller.call(callee)
            seen["caller"].append(r)
            st["call"] = cid = r["id"]
            self.live_calls.append((caller, cid))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            expect(r.get("receive_date") is None, f"receive_date already set: {r.get('receive_date')}")
            expect(r["admin_id"] == caller.user_id and r["participant_id"] == callee.user_id,
                   f"admin/participant {r['admin_id']}/{r['participant_id']}, want {caller.user_id}/{callee.user_id}")
            expect({caller.user_id, callee.user_id} <= set(r.get("users", [])), f"users {r.get('users')}")
            expect(r.get("protocol") == PROTOCOL, f"protocol {r.get('protocol')}")

        @sc.step("the callee gets phoneCallRequested with g_a_hash and both users")
        def _():
            u = callee.wait("phoneCallRequested", st["call"])
            seen["callee"].append(u)
            expect(u["admin_id"] == caller.user_id and u["participant_id"] == callee.user_id,
                   f"admin/participant {u['admin_id']}/{u['participant_id']}")
            expect({caller.user_id, callee.user_id} <= set(u.get("users") or []),
                   f"the push carries users {u.get('users')}, want caller and callee")
            expect(len(u.get("g_a_hash", "")) == 64, f"g_a_hash {u.get('g_a_hash')}")
            expect(u.get("protocol") == PROTOCOL, f"protocol {u.get('protocol')}")

        @sc.step("receivedCall gives true (twice)")
        def _():
            for i in range(2):
                r = callee.received(st["call"])
                expect(r["value"] is True, f"receivedCall #{i + 1} gave {r['value']!r}")

        @sc.step("the caller gets phoneCallWaiting with receive_date")
        def _():
            u = caller.wait("phoneCallWaiting", st["call"])
            seen["caller"].append(u)
            expect(isinstance(u.get("receive_date"), int) and u["receive_date"] > 0, f"receive_date {u.get('receive_date')}")
            expect(u["receive_date"] >= u["date"], f"receive_date {u['receive_date']} before date {u['date']}")

        @sc.step("acceptCall gives phoneCallWaiting")
        def _():
            r = callee.do("accept", call_id=st["call"])
            seen["callee"].append(r)
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")

        @sc.step("the caller gets phoneCallAccepted with g_b")
        def _():
            u = caller.wait("phoneCallAccepted", st["call"])
            seen["caller"].append(u)
            expect(u.get("g_b_len") == 256, f"g_b has {u.get('g_b_len')} bytes")

        @sc.step("confirmCall gives phoneCall with the caller's fingerprint")
        def _():
            r = caller.do("confirm", call_id=st["call"])
            seen["caller"].append(r["result"])
            st["confirm"] = r
            expect(r["g_range_ok"], "g_b out of range")
            res = r["result"]
            expect(res["type"] == "phoneCall", f"confirmCall gave {res['type']}")
            expect(res.get("key_fingerprint") == r["computed_fingerprint"],
                   f"result key_fingerprint {res.get('key_fingerprint')}, computed {r['computed_fingerprint']}")

        @sc.step("the callee gets phoneCall(g_a) and derives the same key")
        def _():
            u = callee.wait("phoneCall", st["call"])
            seen["callee"].append(u)
            c = st["confirm"]
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("g_range_ok") is True, "g_a out of range")
            expect(u.get("key_fingerprint") == c["computed_fingerprint"],
                   f"relayed key_fingerprint {u.get('key_fingerprint')}, caller computed {c['computed_fingerprint']}")
            expect(u.get("computed_fingerprint") == c["computed_fingerprint"],
                   f"callee computed {u.get('computed_fingerprint')}, caller {c['computed_fingerprint']}")
            expect(u.get("key_sha256") == c["key_sha256"], "keys differ")

        @sc.step("access_hash, admin_id, participant_id and date stay the same for each side")
        def _():
            bad = []
            for side, items in seen.items():
                for k in ("access_hash", "admin_id", "participant_id", "date"):
                    vals = [u.get(k) for u in items]
                    if len(set(map(str, vals))) != 1:
                        bad.append(f"{side} {k}: " + ", ".join(f"{u['type']}={u.get(k)}" for u in items))
            expect(not bad, "; ".join(bad))

        other = callee if discarder is caller else caller

        @sc.step(f"discardCall by the {'caller' if discarder is caller else 'callee'} gives phoneCallDiscarded")
        def _():
            r = discarder.discard(st["call"], reason=reason, duration=7)
            self.live_calls.remove((caller, st["call"]))
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded" and u["id"] == st["call"]]
            expect(d, f"discardCall result has no phoneCallDiscarded: {r}")
            expect(d[0].get("reason") == REASON_TL[reason], f"result reason {d[0].get('reason')}")

        @sc.step(f"the {'callee' if other is callee else 'caller'} gets phoneCallDiscarded with the reason")
        def _():
            u = other.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == REASON_TL[reason], f"reason {u.get('reason')}, want {REASON_TL[reason]}")

        @sc.step("no further updates (one receive_date push)")
        def _():
            time.sleep(0.3)
            extra = {s.name: s.drain() for s in (caller, callee)}
            expect(not any(extra.values()), "; ".join(f"{n} got {describe(u)}" for n, u in extra.items() if u))

        self.cleanup(caller, callee)

    # ---------------------------------------------------------------- busy
    def busy(self, caller, devices, thirds, title):
        """devices: the callee's sessions (one account); devices[0] acknowledges the call."""
        callee = devices[0]
        sc = Scenario(self.t, f"busy {title}")
        st = {}

        def ring_all(call_id):
            missing = []
            for d in devices:
                try:
                    d.wait("phoneCallRequested", call_id)
                except AgentError as e:
                    missing.append(f"{d}: {e}")
            expect(not missing, "; ".join(missing))

        @sc.step(f"the callee acknowledges a call with receivedCall on {callee.lib}")
        def _():
            r = caller.call(callee)
            st["call"] = r["id"]
            self.live_calls.append((caller, r["id"]))
            ring_all(st["call"])
            expect(callee.received(st["call"])["value"] is True, "receivedCall did not give true")
            caller.wait("phoneCallWaiting", st["call"])

        for third in thirds:
            @sc.step(f"a {third.lib} caller gets phoneCallWaiting then phoneCallDiscarded(Busy)")
            def _(third=third):
                r = third.call(callee)
                cid = r["id"]
                st.setdefault("busy_calls", []).append(cid)
                expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']} (want phoneCallWaiting)")
                u = third.wait("phoneCallDiscarded", cid)
                expect(u.get("reason") == BUSY, f"reason {u.get('reason')}, want {BUSY}")
                expect(u.get("duration") in (None, 0), f"duration {u.get('duration')}")

        @sc.step(f"the busy callee's {len(devices)} session(s) get nothing for {SILENCE:.0f}s")
        def _():
            time.sleep(SILENCE)
            got = {d.name: d.drain() for d in devices}
            expect(not any(got.values()), "; ".join(f"{n} got {describe(u)}" for n, u in got.items() if u)
                   + f" (busy calls {st.get('busy_calls')})")

        @sc.step("the caller hangs up, every callee session gets phoneCallDiscarded")
        def _():
            caller.discard(st["call"], reason="missed")
            self.live_calls.remove((caller, st["call"]))
            bad = []
            for d in devices:
                try:
                    u = d.wait("phoneCallDiscarded", st["call"])
                    if u.get("reason") != REASON_TL["missed"]:
                        bad.append(f"{d}: reason {u.get('reason')}")
                except AgentError as e:
                    bad.append(f"{d}: {e}")
            expect(not bad, "; ".join(bad))

        @sc.step("busy is released, the callee rings again")
        def _():
            third = thirds[0]
            r = third.call(callee)
            st["after"] = r["id"]
            self.live_calls.append((third, r["id"]))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            ring_all(st["after"])

        @sc.step("the callee declines with Busy, which the caller sees")
        def _():
            third = thirds[0]
            callee.discard(st["after"], reason="busy")
            self.live_calls.remove((third, st["after"]))
            u = third.wait("phoneCallDiscarded", st["after"])
            expect(u.get("reason") == BUSY, f"reason {u.get('reason')}")

        self.cleanup(caller, *devices, *thirds)

    # ---------------------------------------------------------------- errors
    def errors(self, caller, callee):
        sc = Scenario(self.t, f"errors {caller.lib} caller {callee.lib} callee")
        st = {}

        @sc.step("setup (call placed, callee rings)")
        def _():
            r = caller.call(callee)
            st["call"] = r["id"]
            st["caller_hash"] = r["access_hash"]
            self.live_calls.append((caller, r["id"]))
            u = callee.wait("phoneCallRequested", st["call"])
            st["callee_hash"] = u["access_hash"]

        @sc.step(f"{callee.lib} callee, wrong access_hash gives CALL_PEER_INVALID")
        def _():
            wrong = str((int(st["callee_hash"]) ^ 0x5A5A5A) if int(st["callee_hash"]) != 0 else 1)
            expect_rpc_error(callee, lambda: callee.received(st["call"], access_hash=wrong), "CALL_PEER_INVALID")

        @sc.step(f"{callee.lib} callee, unknown call id gives CALL_PEER_INVALID")
        def _():
            expect_rpc_error(callee, lambda: callee.received(str(int(st["call"]) ^ 0x1234567), access_hash=st["callee_hash"]),
                             "CALL_PEER_INVALID")

        @sc.step(f"{caller.lib} caller invoking receivedCall gives CALL_PEER_INVALID")
        def _():
            expect_rpc_error(caller, lambda: caller.received(st["call"]), "CALL_PEER_INVALID")

        @sc.step("the refused receivedCalls did not mark the call received")
        def _():
            time.sleep(0.3)
            got = caller.drain()
            expect(not got, f"the caller got {describe(got)}")

        @sc.step(f"{callee.lib} callee, receivedCall after the caller hung up gives CALL_ALREADY_DECLINED")
        def _():
            caller.discard(st["call"], reason="missed")
            self.live_calls.remove((caller, st["call"]))
            u = callee.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == REASON_TL["missed"], f"callee saw reason {u.get('reason')}")
            expect_rpc_error(callee, lambda: callee.received(st["call"]), "CALL_ALREADY_DECLINED")

        self.cleanup(caller, callee)

    # ---------------------------------------------------------------- several devices
    def multi_device(self, caller, devices, acceptor):
        others = [d for d in devices if d is not acceptor]
        sc = Scenario(self.t, f"multi-device callee ({'+'.join(d.lib for d in devices)}) accepts on {acceptor.lib}")
        st = {}

        @sc.step(f"all {len(devices)} sessions ring")
        def _():
            r = caller.call(devices[0])
            st["call"] = r["id"]
            self.live_calls.append((caller, r["id"]))
            missing = []
            for d in devices:
                try:
                    d.wait("phoneCallRequested", st["call"])
                except AgentError as e:
                    missing.append(f"{d}: {e}")
            expect(not missing, "; ".join(missing))

        @sc.step("every session's receivedCall gives true, the caller gets one receive_date")
        def _():
            for d in devices:
                expect(d.received(st["call"])["value"] is True, f"{d}: receivedCall did not give true")
            u = caller.wait("phoneCallWaiting", st["call"])
            expect(u.get("receive_date"), f"no receive_date: {u}")
            time.sleep(0.3)
            extra = caller.drain()
            expect(not extra, f"the caller also got {describe(extra)}")

        @sc.step(f"accept on the {acceptor.lib} session")
        def _():
            r = acceptor.do("accept", call_id=st["call"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")
            caller.wait("phoneCallAccepted", st["call"])

        @sc.step("the other sessions get phoneCallDiscarded without reason")
        def _():
            bad = []
            for d in others:
                try:
                    u = d.wait("phoneCallDiscarded", st["call"])
                except AgentError as e:
                    bad.append(f"{d}: {e}")
                    continue
                if u.get("reason") is not None:
                    bad.append(f"{d}: reason {u.get('reason')}")
            expect(not bad, "; ".join(bad))

        @sc.step("confirm reaches only the accepting session, with matching keys")
        def _():
            c = caller.do("confirm", call_id=st["call"])
            u = acceptor.wait("phoneCall", st["call"])
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("key_fingerprint") == c["computed_fingerprint"] == u.get("computed_fingerprint"),
                   f"fingerprints: relayed {u.get('key_fingerprint')}, caller {c['computed_fingerprint']}, "
                   f"callee {u.get('computed_fingerprint')}")
            time.sleep(0.3)
            extra = {d.name: d.drain() for d in others}
            expect(not any(extra.values()), "; ".join(f"{n} got {describe(x)}" for n, x in extra.items() if x))

        @sc.step("hang-up by the accepting session reaches the caller")
        def _():
            acceptor.discard(st["call"], reason="hangup", duration=3)
            self.live_calls.remove((caller, st["call"]))
            u = caller.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == REASON_TL["hangup"], f"reason {u.get('reason')}")

        self.cleanup(caller, *devices)

    # ---------------------------------------------------------------- mtcall's own client (the CLI)
    def cli_login(self, sc, me, st):
        """A step: `mtcall login` signs `me` (a Session without agent) up; st["session"] is its session file."""

        @sc.step(f"mtcall login signs up {me.phone} as {me.first}")
        def _():
            path = self.work / f"mtcall-{me.phone}.session"
            me.user_id = harness.mtcall_login(self.args.mtcall, self.server.port, self.server.data, me.phone,
                                              me.first, path, LOGIN_TIMEOUT)
            st["session"] = str(path)

    def start_cli(self, name, *args):
        cli = harness.Cli(self.args.mtcall, args, self.base_env, self.work / f"{name}.stderr", CLI_TIMEOUT)
        self.clis.append(cli)
        return cli

    def cli_answers(self, caller, phone):
        """`mtcall answer` is the callee of a call `caller` places, confirms and hangs up."""
        me = Session(None, "mtcall-answer", phone, "Rusty")
        me.lib = "mtcall cli"
        sc = Scenario(self.t, f"call {caller.lib}->mtcall cli")
        st = {}
        self.cli_login(sc, me, st)

        @sc.step("mtcall answer waits for a call")
        def _():
            st["cli"] = self.start_cli("mtcall-answer", "answer", "--session", st["session"])
            st["cli"].expect_line(r"waiting for a call; Ctrl-C stops")

        @sc.step("requestCall to the mtcall user gives phoneCallWaiting without receive_date")
        def _():
            r = caller.call(me)
            st["call"] = r["id"]
            self.live_calls.append((caller, r["id"]))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            expect(r.get("receive_date") is None, f"receive_date already set: {r.get('receive_date')}")
            expect(r["admin_id"] == caller.user_id and r["participant_id"] == me.user_id,
                   f"admin/participant {r['admin_id']}/{r['participant_id']}, want {caller.user_id}/{me.user_id}")

        @sc.step("mtcall answer reports the incoming call and acknowledges it")
        def _():
            st["cli"].expect_line(rf"incoming call {st['call']} from user {caller.user_id}: "
                                  r"acknowledged \(the caller hears it ring\), accepting")

        @sc.step("the caller gets phoneCallWaiting with receive_date (mtcall's receivedCall)")
        def _():
            u = caller.wait("phoneCallWaiting", st["call"])
            expect(isinstance(u.get("receive_date"), int) and u["receive_date"] > 0, f"receive_date {u.get('receive_date')}")

        @sc.step("the caller gets phoneCallAccepted with g_b (mtcall's acceptCall)")
        def _():
            u = caller.wait("phoneCallAccepted", st["call"])
            expect(u.get("g_b_len") == 256, f"g_b has {u.get('g_b_len')} bytes")

        @sc.step("confirmCall gives phoneCall with the caller's fingerprint")
        def _():
            r = caller.do("confirm", call_id=st["call"])
            st["confirm"] = r
            expect(r["g_range_ok"], "g_b out of range")
            expect(r["result"]["type"] == "phoneCall", f"confirmCall gave {r['result']['type']}")
            expect(r["result"].get("key_fingerprint") == r["computed_fingerprint"],
                   f"result key_fingerprint {r['result'].get('key_fingerprint')}, computed {r['computed_fingerprint']}")

        @sc.step(f"mtcall prints 'connected' with {caller.lib}'s fingerprint and 4 emojis")
        def _():
            m = st["cli"].expect_line(CONNECTED)
            expect_connected(m, st["confirm"]["computed_fingerprint"], caller.lib)

        @sc.step("discardCall by the caller gives phoneCallDiscarded(hangup)")
        def _():
            r = caller.discard(st["call"], reason="hangup", duration=2)
            self.live_calls.remove((caller, st["call"]))
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded" and u["id"] == st["call"]]
            expect(d and d[0].get("reason") == REASON_TL["hangup"], f"discardCall result: {r}")

        @sc.step("mtcall prints 'the other side ended the call (hung up)' and exits 0")
        def _():
            st["cli"].expect_line(r"the other side ended the call \(hung up\)")
            rc = st["cli"].expect_exit()
            expect(rc == 0, f"exit status {rc}; {st['cli'].describe()}")

        @sc.step("no further updates for the caller")
        def _():
            time.sleep(0.3)
            extra = caller.drain()
            expect(not extra, f"the caller got {describe(extra)}")

        self.cleanup(caller)

    def cli_calls(self, callee, phone):
        """`mtcall call` calls `callee`, which acknowledges and accepts; SIGINT makes mtcall hang up."""
        me = Session(None, "mtcall-call", phone, "Rusty")
        me.lib = "mtcall cli"
        sc = Scenario(self.t, f"call mtcall cli->{callee.lib}")
        st = {}
        self.cli_login(sc, me, st)

        @sc.step(f"mtcall call PHONE prints 'calling {callee.first} (USER_ID) (call CALL_ID)'")
        def _():
            st["cli"] = self.start_cli("mtcall-call", "call", "--session", st["session"], callee.phone)
            m = st["cli"].expect_line(r"calling (.*) \((-?[0-9]+)\) \(call (-?[0-9]+)\); Ctrl-C cancels")
            expect(m.group(1) == callee.first and m.group(2) == callee.user_id,
                   f"calling {m.group(1)} ({m.group(2)}), want {callee.first} ({callee.user_id})")
            st["call"] = m.group(3)

        @sc.step(f"the {callee.lib} callee gets phoneCallRequested from the mtcall user")
        def _():
            u = callee.wait("phoneCallRequested", st["call"])
            self.live_calls.append((callee, st["call"]))
            expect(u["admin_id"] == me.user_id and u["participant_id"] == callee.user_id,
                   f"admin/participant {u['admin_id']}/{u['participant_id']}, want {me.user_id}/{callee.user_id}")
            expect(len(u.get("g_a_hash", "")) == 64, f"g_a_hash {u.get('g_a_hash')}")
            expect(u.get("protocol") == PROTOCOL, f"protocol {u.get('protocol')}")
            expect(u.get("video") is False, f"video {u.get('video')}")

        @sc.step("mtcall prints 'ringing' after receivedCall, not before")
        def _():
            st["cli"].expect_quiet(0.5)
            expect(callee.received(st["call"])["value"] is True, "receivedCall did not give true")
            st["cli"].expect_line(r"ringing")

        @sc.step("acceptCall gives phoneCallWaiting")
        def _():
            r = callee.do("accept", call_id=st["call"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")

        @sc.step("the callee gets phoneCall(g_a) and derives the key (mtcall's confirmCall)")
        def _():
            u = callee.wait("phoneCall", st["call"])
            st["phone_call"] = u
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("g_range_ok") is True, "g_a out of range")
            expect(u.get("key_fingerprint") == u.get("computed_fingerprint"),
                   f"relayed key_fingerprint {u.get('key_fingerprint')}, callee computed {u.get('computed_fingerprint')}")

        @sc.step(f"mtcall prints 'connected' with {callee.lib}'s fingerprint and 4 emojis")
        def _():
            m = st["cli"].expect_line(CONNECTED)
            expect_connected(m, st["phone_call"]["computed_fingerprint"], callee.lib)

        @sc.step("SIGINT: mtcall prints 'hung up after N s' and exits 0")
        def _():
            st["cli"].proc.send_signal(signal.SIGINT)
            st["cli"].expect_line(r"hung up after [0-9]+ s")
            rc = st["cli"].expect_exit()
            expect(rc == 0, f"exit status {rc}; {st['cli'].describe()}")

        @sc.step("the callee gets phoneCallDiscarded(hangup)")
        def _():
            u = callee.wait("phoneCallDiscarded", st["call"])
            self.live_calls.remove((callee, st["call"]))
            expect(u.get("reason") == REASON_TL["hangup"], f"reason {u.get('reason')}, want {REASON_TL['hangup']}")

        @sc.step("no further updates for the callee")
        def _():
            time.sleep(0.3)
            extra = callee.drain()
            expect(not extra, f"the callee got {describe(extra)}")

        self.cleanup(callee)


def pq_check(tally, port, samples=64):
    """Both clients read res_pq.pq as a SIGNED int64: Telethon (`get_int(res_pq.pq)`) then fails with
    "ValueError: empty range for randrange()", GramJS (`readBigIntFromBuffer(pq, false, true)`) loops
    forever in its Factorizator. Telegram's pq is always below 2^63; check the server's the same way."""
    name = f"handshake res_pq.pq below 2^63 ({samples} samples)"
    try:
        values = [res_pq(port) for _ in range(samples)]
    except Exception as e:  # noqa: BLE001
        tally.fail(name, f"req_pq_multi: {type(e).__name__}: {e}")
        return
    big = [v for v in values if v >= 1 << 63]
    if not big:
        tally.ok(name)
        return
    tally.fail(name, f"{len(big)} of {samples} pq values are >= 2^63, e.g. {big[0]:#018x}; GramJS and Telethon read "
                     "pq as a signed int64 (Telegram's pq is < 2^63), so about that share of their handshakes fail")
    why = f"likely the pq bug: {len(big)}/{samples} handshakes had pq >= 2^63"
    tally.hints += [("empty range for randrange", f"Telethon read a pq >= 2^63 as negative; {why}"),
                    ("'login' hung", f"GramJS spins in its Factorizator on a pq >= 2^63; {why}"),
                    ("login: no answer", f"GramJS spins in its Factorizator on a pq >= 2^63; {why}"),
                    ("no 'ready' line", f"GramJS spins in its Factorizator on a pq >= 2^63; {why}")]


# ------------------------------------------------------------------------------------------ main
def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--node", default="node", help="node command")
    ap.add_argument("--node-path", required=True, help="node_modules dir with telegram, typescript, @types/node")
    ap.add_argument("--tsc", help="tsc of the pinned typescript (default NODE_PATH/.bin/tsc)")
    ap.add_argument("--python", required=True, help="python of a venv with telethon")
    a = harness.parse_args(ap)
    a.tsc = a.tsc or str(Path(a.node_path) / ".bin" / "tsc")

    started = time.monotonic()
    tally = harness.Tally()
    work = Path(tempfile.mkdtemp(prefix="mtcall-calls-"))
    server = harness.Server(a.mtcall, work / "data", work / "server.log")
    base_env = harness.client_env()
    node_env = dict(base_env, NODE_PATH=str(Path(a.node_path).resolve()))
    agents = []
    run = None
    try:
        server.start()
        tally.info(server.banner)
        pq_check(tally, server.port)
        run = Run(tally, agents, server, a, work, node_env, base_env)
        run.start_tsc()  # compiles while the agents log in
        port, data = str(server.port), str(server.data)
        gj = Agent("gramjs", [a.node, str(HERE / "gramjs_agent.js"), port, data], node_env, work / "gramjs_agent.log")
        tt = Agent("telethon", [a.python, str(HERE / "telethon_agent.py"), port, data], base_env, work / "telethon_agent.log")
        agents += [gj, tt]
        for ag in agents:
            r = ag.wait_ready()
            tally.info(f"{ag.lib} agent ready (layer {r.get('layer')})")

        # Test numbers 99966XYYYY log in with code XXXXX; each run has a fresh data dir.
        g1 = Session(gj, "g1", "9996641001", "Alice")
        g2 = Session(gj, "g2", "9996641002", "Gina")
        t1 = Session(tt, "t1", "9996651001", "Bob")
        t2 = Session(tt, "t2", "9996651002", "Tom")
        m_phone = "9996671001"  # one account, three sessions
        m_g = Session(gj, "m_g", m_phone, "Multi")
        sessions = [g1, g2, t1, t2, m_g]
        t0 = time.monotonic()
        failures = run.login_all(sessions)
        # the other sessions of the multi-device account log in once it exists
        m_t = Session(tt, "m_t", m_phone, "Multi")
        m_t2 = Session(tt, "m_t2", m_phone, "Multi")
        failures += run.login_all([m_t, m_t2])
        if failures:
            tally.fail("log in 7 sessions (5 accounts)", "; ".join(failures))
        else:
            expect_same = m_g.user_id == m_t.user_id == m_t2.user_id
            if expect_same:
                tally.ok("log in 7 sessions (5 accounts)")
            else:
                tally.fail("log in 7 sessions (5 accounts)",
                           f"one account, different user ids {m_g.user_id}/{m_t.user_id}/{m_t2.user_id}")
        tally.info(f"logins took {time.monotonic() - t0:.1f}s")

        timed = tally.timed
        timed("dh config", run.dh_config, [g1, t1])
        timed("seed js", run.seed, "js", "9996681001", t1)
        timed("seed ts", run.seed, "ts", "9996681002", t2)
        timed("call gramjs->telethon", run.full_call, g1, t1, t1, "hangup")
        timed("call telethon->gramjs", run.full_call, t1, g1, g1, "disconnect")
        timed("busy telethon callee", run.busy, g1, [t1], [g2, t2], "telethon callee")
        timed("busy gramjs callee", run.busy, t1, [g1], [t2, g2], "gramjs callee")
        timed("busy 3-session callee", run.busy, g2, [m_g, m_t, m_t2], [t2, g1],
              "callee with 3 sessions (acknowledged on gramjs)")
        timed("errors gramjs->telethon", run.errors, g1, t1)
        timed("errors telethon->gramjs", run.errors, t1, g1)
        timed("multi-device telethon accepts", run.multi_device, g1, [m_t, m_g, m_t2], m_t)
        timed("multi-device gramjs accepts", run.multi_device, t1, [m_t, m_g, m_t2], m_g)
        timed("call telethon->mtcall cli", run.cli_answers, t1, "9996691001")
        timed("call mtcall cli->gramjs", run.cli_calls, g1, "9996691002")
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail("driver", f"{type(e).__name__}: {e}")
    finally:
        if run is not None:
            run.kill_clis()
        for ag in agents:
            ag.close()
        server.stop()
    harness.finish(tally, work, a.keep, started, server, agents)


if __name__ == "__main__":
    main()
