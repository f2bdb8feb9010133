#!/usr/bin/env python3
"""mtcute interop driver: the real @mtcute/node 0.30.3 client (API layer 227) logs in, makes everyday calls
and takes part in one-to-one calls through a real mtcall server.

It starts `mtcall serve` on a free port below 32768 with a temporary data dir, creates the accounts with
mtcall's own client (`mtcall login`: mtcute 0.30.3 signs in but cannot sign up) and a bot with
`mtcall bot create`, starts one mtcute agent (agent.js) hosting the mtcute sessions, and drives the
checks through it (JSON lines on stdin/stdout; mtcute itself only talks to the server, pointed at it by
its address and RSA key alone). mtcall's own client also calls mtcute (`mtcall call`) and answers
mtcute's call (`mtcall answer`); their stdout is checked line by line.

After every step the driver reads the agent's trace of what mtcute did on the wire (the requests it sent,
with their bodies, and what came back). The TL requests of each step are listed at the end, and a run
fails if mtcute reset its session, met a constructor it could not parse, or got a bad_msg_notification.

Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (lines starting with `#` are information),
then `N passed, M failed`; exit status 1 if any check failed, with the agent's stderr and the server log.

Usage (see README.md):
    run.py --mtcall /tmp/mtcall-bin/mtcall --node node --node-path DIR/node_modules [--keep]
Python 3.11 standard library only, and ../common/harness.py.
"""

import json
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Steps, Server, JsonLines, Cli, finish

MTCUTE_VERSION = "0.30.3"
MTCUTE_LAYER = 227
UPDATE_TIMEOUT = 5.0  # a push the server owes us
OP_DEADLINE = 8  # the agent gives up on one mtcute call after this long (mtcute retries some failures forever)
OP_TIMEOUT = OP_DEADLINE + 7.0  # the driver gives up on the agent (and kills it)
LOGIN_DEADLINE = 15
CLI_TIMEOUT = 15.0  # one line of mtcall's own client
PROTOCOL = {"udp_p2p": True, "udp_reflector": True, "min_layer": 65, "max_layer": 92, "library_versions": ["2.4.4"]}
REASON_TL = {"missed": "phoneCallDiscardReasonMissed", "disconnect": "phoneCallDiscardReasonDisconnect",
             "hangup": "phoneCallDiscardReasonHangup", "busy": "phoneCallDiscardReasonBusy"}
USERNAME = "mtcute_alice"
BOT_USERNAME = "mtcute_interop_bot"

CheckFailed, AgentError, expect = harness.CheckFailed, harness.AgentError, harness.expect


# ------------------------------------------------------------------------------------------ schemas
class Schemas:
    """Constructor ids -> names: mtcute's own schema (from its package) and mtcall's schema files
    (crates/tl/schema/*.tl and layers/*.tl, read only), to name what mtcute could not parse."""

    def __init__(self, node_path):
        self.mtcute_by_name, self.mtcute_by_id = {}, {}
        core = Path(node_path) / "@mtcute" / "core" / "tl"
        for f in ("api-schema.json", "mtp-schema.json"):
            try:
                data = json.loads((core / f).read_text())
            except (OSError, ValueError):
                continue
            for e in data if isinstance(data, list) else data.get("e", []):
                cid = e["id"] & 0xFFFFFFFF
                self.mtcute_by_name[e["name"]] = cid
                self.mtcute_by_id[cid] = e["name"]
        self.server = {}  # id -> [(name, file)]
        schema = REPO / "crates" / "tl" / "schema"
        for f in sorted(schema.glob("*.tl")) + sorted(schema.glob("layers/*.tl")):
            for line in f.read_text(errors="replace").splitlines():
                m = re.match(r"([\w.]+)#([0-9a-f]{1,8})\s", line)
                if m:
                    self.server.setdefault(int(m.group(2), 16), []).append((m.group(1), str(f.relative_to(REPO))))

    def describe(self, hex_id):
        """'0x020b1422 = user#20b1422 (crates/tl/schema/layers/216.tl; mtcute's layer-227 user is #31774388)'."""
        cid = int(hex_id, 16)
        text = f"0x{cid:08x}"
        where = self.server.get(cid)
        if not where:
            theirs = self.mtcute_by_id.get(cid)
            return text + (f" (mtcute's {theirs}, in none of mtcall's schema files)" if theirs
                           else " (in none of mtcall's schema files, nor in mtcute's)")
        name = where[0][0]
        text += f" = {name}#{cid:x} ({', '.join(f for _, f in where)}"
        ours = self.mtcute_by_name.get(name)
        if ours is None:
            text += f"; mtcute {MTCUTE_VERSION} has no {name})"
        else:
            text += f"; mtcute {MTCUTE_VERSION}'s layer-{MTCUTE_LAYER} {name} is #{ours:x})"
        return text


# ------------------------------------------------------------------------------------------ the trace
class Wire:
    """Every trace event of every mtcute client, as the agent hands them out (each once), kept per client;
    and the TL requests of each step, for the summary at the end."""

    def __init__(self, agent, schemas):
        self.agent, self.schemas = agent, schemas
        self.events = {}  # client -> [event]
        self.steps = []  # (step label, client, [request shape])

    def take(self, client):
        """The client's events since the last take (also of `client!failed`, a client whose login failed)."""
        try:
            got = self.agent.do("trace", op_timeout=10, client=client) or []
        except AgentError:
            got = []
        self.events.setdefault(client, []).extend(got)
        return got

    def record(self, label, client, events):
        shapes = [e["shape"] for e in events if e.get("kind") == "request"]
        if shapes:
            self.steps.append((label, client, shapes))

    def outcome(self, events):
        """'method -> result | ERROR code NAME | failed (reason)' per request, in order."""
        out = []
        for i, e in enumerate(events):
            if e.get("kind") != "request":
                continue
            m, res = e.get("method"), None
            for f in events[i + 1:]:
                if f.get("method") != m:
                    continue
                if f["kind"] == "result":
                    res = f["result"]
                    break
                if f["kind"] == "error":
                    res = f"ERROR {f['code']} {f['error']}"
                    break
            failed = [f["reason"] for f in events[i + 1:] if f.get("kind") == "rpc_failed" and f.get("method") == m]
            if res is None and failed:
                res = f"no answer (failed: {', '.join(sorted(set(failed)))})"
            elif failed:
                res += f" (after a resend: {', '.join(sorted(set(failed)))})"
            out.append(f"{m} -> {res or 'no answer yet'}")
        return out

    def problems(self, events):
        """What mtcute must not meet, in words: unknown constructors (named, with the requests they broke),
        session resets (with the reason), bad_msg_notifications (with the code)."""
        return {"unknown": self.unknown(events), "reset": self.resets(events), "bad_msg": self.bad_msgs(events)}

    def unknown(self, events):
        found = []
        for i, e in enumerate(events):
            if e.get("kind") != "unknown_object":
                continue
            broke = []
            for f in events[i + 1:]:
                if f.get("kind") == "rpc_failed" and f.get("reason") == "unknown object":
                    broke.append(f["method"])
                elif f.get("kind") not in ("session_reset", "all_failed", "rpc_failed", "msg_failed"):
                    break
            what = f"in the answer to {'/'.join(dict.fromkeys(broke))}" if broke else "outside any pending request (a push?)"
            found.append(f"{self.schemas.describe(e['id'])} {what}")
        return [f"{n}x {t}" if n > 1 else t for t, n in Counter(found).items()]

    @staticmethod
    def resets(events):
        found = [e["reason"] for e in events if e.get("kind") == "all_failed"]
        return [f"{n}x '{r}'" for r, n in Counter(found).items()]

    @staticmethod
    def bad_msgs(events):
        found = []
        for e in events:
            k = e.get("kind")
            if k == "recv" and e.get("type") == "mt_bad_msg_notification":
                found.append("mt_bad_msg_notification received")
            elif k == "bad_msg_notification":
                found.append(f"code {e.get('code')}")
            elif k in ("rpc_failed", "msg_failed") and str(e.get("reason", "")).startswith("bad_msg_notification"):
                found.append(f"{e.get('method') or e.get('what')}: {e['reason']}")
            elif k == "log_warn" and "msg_id too high" in e.get("text", ""):
                found.append("code 17 (msg_id too high)")
        return [f"{n}x {t}" if n > 1 else t for t, n in Counter(found).items()]

    def explain(self, events):
        """One line: the requests and their outcomes, then the problems seen."""
        parts = []
        reqs = self.outcome(events)
        if reqs:
            parts.append("mtcute sent " + "; ".join(reqs))
        p = self.problems(events)
        if p["unknown"]:
            parts.append("mtcute could not parse " + "; ".join(p["unknown"]))
        if p["reset"]:
            parts.append("session reset: " + ", ".join(p["reset"]))
        if p["bad_msg"]:
            parts.append("bad_msg_notification: " + ", ".join(p["bad_msg"]))
        return " | ".join(parts)


class Session:
    """One mtcute client (session) hosted by the agent."""

    def __init__(self, run, name, phone, first):
        self.run, self.name, self.phone, self.first = run, name, phone, first
        self.code = phone[5] * 5 if phone else None  # test numbers 99966XYYYY take the code XXXXX
        self.user_id = None  # from `mtcall login` (the account) and then mtcute's own login
        self.logged_in = False

    def __repr__(self):
        return f"mtcute {self.name}"

    def do(self, op, op_timeout=OP_TIMEOUT, deadline=OP_DEADLINE, **args):
        return self.run.agent.do(op, op_timeout=op_timeout, client=self.name, deadline=deadline, **args)

    def wait(self, type_, call_id, timeout=UPDATE_TIMEOUT):
        return self.run.agent.do("wait", op_timeout=timeout + OP_TIMEOUT, client=self.name, type=type_,
                                 call_id=call_id, timeout=timeout)

    def drain(self):
        return self.do("drain")


def describe(updates):
    return ", ".join(f"{u.get('type')}{'(' + str(u.get('reason')) + ')' if u.get('reason') else ''}"
                     f"#{u.get('id')}" for u in updates) or "none"


# ------------------------------------------------------------------------------------------ checks
class Run:
    def __init__(self, tally, server, agent, wire, args, work, env):
        self.t, self.server, self.agent, self.wire = tally, server, agent, wire
        self.args, self.work, self.env = args, work, env
        self.live_calls = []  # (session, call_id) to discard if a scenario broke off
        self.clis = []
        self.clients = []  # names of the mtcute clients logged in, whose traces are read after each step

    # ---------------------------------------------------------------- helpers
    def step(self, steps, name, session, fn, label=None, show=False):
        """One check that runs mtcute calls (`session`'s and maybe others'): the trace of every client is read
        after it and its requests kept for the summary; a failure's reason gets what mtcute sent and met on
        the wire, and a constructor mtcute could not parse fails the check even if the call returned.
        With `show` the detail of a passed check lists the requests and their results."""

        @steps(name)
        def _():
            if session is not None and not session.logged_in:
                raise CheckFailed(f"not run ({session} is not logged in)")
            err = None
            try:
                detail = fn()
            except Exception as e:  # noqa: BLE001 - reported with the wire trace
                detail, err = None, str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
            ev = self.take_all(label or name)
            why = self.explain_all(ev)
            if err is not None:
                raise CheckFailed(err + (f" || {why}" if why else ""))
            unknown = [u for evs in ev.values() for u in self.wire.unknown(evs)]
            if unknown:  # an answer it could not parse, and the call still returned (after a retry)
                raise CheckFailed(f"mtcute could not parse {'; '.join(unknown)} || {why}")
            if detail is not None and not isinstance(detail, str):
                detail = json.dumps(detail)[:300]
            if show:
                sent = [o for evs in ev.values() for o in self.wire.outcome(evs)]
                detail = "; ".join(x for x in (detail, "; ".join(sent)) if x)
            return detail

    def take_all(self, label):
        """Every client's new trace events (client -> events), recorded under `label`."""
        got = {}
        for c in self.clients:
            ev = self.wire.take(c)
            self.wire.record(label, c, ev)
            got[c] = ev
        return got

    def explain_all(self, got):
        parts = []
        for c, ev in got.items():
            why = self.wire.explain(ev)
            if why:
                parts.append(f"[{c}] {why}")
        return " || ".join(parts)

    def cleanup(self, *sessions):
        for cli in self.clis:
            cli.kill()
        self.clis.clear()
        harness.end_calls(self.live_calls, sessions)

    def mtcall_login(self, phone, first):
        """`mtcall login` signs `phone` up (mtcall's own client); returns (user id, session file)."""
        path = self.work / f"mtcall-{phone}.session"
        return harness.mtcall_login(self.args.mtcall, self.server.port, self.server.data, phone, first, path), str(path)

    def start_cli(self, name, *args):
        cli = harness.Cli(self.args.mtcall, args, self.env, self.work / f"{name}.stderr", CLI_TIMEOUT)
        self.clis.append(cli)
        return cli

    # ---------------------------------------------------------------- key, accounts, logins
    def rsa_key(self, ready):
        """mtcute indexes added keys by the 16-digit hex fingerprint but looks up resPQ's fingerprints by
        Long.toString(16), which drops a leading 0: a key whose fingerprint starts with 0 is never found."""
        name = "server RSA key usable by mtcute"
        fp = str(ready.get("key_fingerprint") or "")
        m = re.search(r"RSA key fingerprint (-?[0-9]+)", self.server.banner)
        if m:
            banner_fp = f"{int(m.group(1)) & 0xFFFFFFFFFFFFFFFF:016x}"
            if banner_fp != fp:
                self.t.fail(name, f"mtcute computes fingerprint {fp} for server.pub, mtcall announces {banner_fp}")
                return
        if fp.startswith("0"):
            self.t.fail(name, f"fingerprint {fp} starts with a 0 hex digit: mtcute {MTCUTE_VERSION} looks the "
                              "resPQ fingerprint up without leading zeros and fails with 'public key not found' "
                              "('Could not find server public key with any of these fingerprints')")
        else:
            self.t.ok(name, f"fingerprint {fp}")

    def accounts(self, sessions):
        steps = harness.Steps(self.t, "accounts", soft=True)
        for s in sessions:
            @steps(f"mtcall login signs up {s.phone} ({s.first}) for {s}")
            def _(s=s):
                s.user_id, _path = self.mtcall_login(s.phone, s.first)
                return f"user {s.user_id}"

    def sign_in(self, s, label, op, **args):
        """The agent's `op` (login, bot_login) for session s: its result and the trace it left, recorded under
        `label`; a failure's reason gets what mtcute did on the wire (also a failed client's trace)."""
        try:
            r = s.do(op, op_timeout=LOGIN_DEADLINE + 10, deadline=LOGIN_DEADLINE, **args)
        except AgentError as e:
            ev = self.wire.take(f"{s.name}!failed") + self.wire.take(s.name)
            self.wire.record(label, s.name, ev)
            raise CheckFailed(f"{e} || {self.wire.explain(ev)}") from None
        ev = self.wire.take(s.name)
        self.wire.record(label, s.name, ev)
        return r, ev

    def login(self, s):
        steps = harness.Steps(self.t, "login", soft=True)

        @steps(f"{s} signs in with phone {s.phone} and code {s.code}")
        def _():
            expect(s.user_id, "not run (the account was not created)")
            r, ev = self.sign_in(s, f"login {s.name}", "login", phone=s.phone, code=s.code)
            u = r["user"]
            expect(u["id"] == s.user_id, f"signed in as user {u['id']}, the account is {s.user_id}")
            expect(u["is_self"] and not u["is_bot"], f"user {u}")
            s.logged_in = True
            self.clients.append(s.name)
            return f"user {u['id']}, code sent as {r.get('sent_code')}; {'; '.join(self.wire.outcome(ev))}"

    def bot_login(self, bot):
        steps = harness.Steps(self.t, "login")

        @steps(f"mtcall bot create --username {BOT_USERNAME}")
        def _():
            bot.token = harness.bot_create(self.args.mtcall, self.server.data, BOT_USERNAME)
            bot.user_id = bot.token.split(":")[0]
            return f"bot user {bot.user_id}"

        @steps(f"{bot} signs in with the bot token (auth.importBotAuthorization)")
        def _():
            r, ev = self.sign_in(bot, f"bot login {bot.name}", "bot_login", token=bot.token)
            u = r["user"]
            expect(u["id"] == bot.user_id, f"signed in as user {u['id']}, the token is for {bot.user_id}")
            expect(u["is_bot"], f"not a bot: {u}")
            bot.logged_in = True
            self.clients.append(bot.name)
            return f"user {u['id']}; {'; '.join(self.wire.outcome(ev))}"

    # ---------------------------------------------------------------- everyday calls
    def everyday(self, a, b, bot):
        steps = harness.Steps(self.t, "everyday", soft=True)
        st = {}
        time.sleep(0.3)
        self.take_all("after the logins (mtcute's own, in the background)")

        def get_me():
            u = a.do("get_me")
            expect(u["id"] == a.user_id, f"id {u['id']}, want {a.user_id}")
            expect(u["first_name"] == a.first, f"first_name {u['first_name']!r}, want {a.first!r}")
            expect(u["phone"] == a.phone, f"phone {u['phone']!r}, want {a.phone}")
            expect(u["is_self"], "is_self not set (user.self)")
            return f"user {u['id']} {u['first_name']}"
        self.step(steps, "getMe", a, get_me, show=True)

        def bot_me():
            u = bot.do("get_me")
            expect(u["id"] == bot.user_id and u["is_bot"], f"user {u}")
            expect(u["username"] == BOT_USERNAME, f"username {u['username']!r}, want {BOT_USERNAME}")
            return f"bot {u['id']} @{u['username']}"
        self.step(steps, "getMe (bot)", bot, bot_me, show=True)

        def set_username():
            u = a.do("set_username", username=USERNAME)
            expect(u["username"] == USERNAME, f"username {u['username']!r}")
            return f"@{USERNAME}"
        self.step(steps, "setMyUsername", a, set_username, show=True)

        def resolve_username():
            r = b.do("resolve_username", username=USERNAME)
            expect(r["type"] == "inputPeerUser" and r["user_id"] == a.user_id, f"resolved to {r}, want user {a.user_id}")
            st["hash"] = r["access_hash"]
            return f"user {r['user_id']}"
        self.step(steps, f"resolvePeer('@{USERNAME}')", b, resolve_username, show=True)

        def resolve_phone():
            r = b.do("resolve_phone", phone=a.phone)
            expect(r["type"] == "inputPeerUser" and r["user_id"] == a.user_id, f"resolved to {r}, want user {a.user_id}")
            expect(st.get("hash") in (None, r["access_hash"]),
                   f"access_hash {r['access_hash']} differs from the username's {st.get('hash')}")
            return f"user {r['user_id']}"
        self.step(steps, "resolvePhoneNumber", b, resolve_phone, show=True)

        def get_users():
            r = b.do("get_users", ids=[a.user_id])
            expect(len(r) == 1 and r[0] and r[0]["id"] == a.user_id, f"got {r}")
            expect(r[0]["first_name"] == a.first, f"first_name {r[0]['first_name']!r}")
            return f"user {r[0]['id']} {r[0]['first_name']} @{r[0]['username']}"
        self.step(steps, "getUsers", b, get_users, show=True)

        def get_chat():
            r = b.do("get_chat", peer=a.user_id)
            expect(r["id"] == a.user_id and r["type"] == "user", f"got {r}")
            return f"{r['via']}: {r['type']} {r['id']}"
        self.step(steps, "getChat (a user: mtcute's getChat refuses users locally, then getPeer)", b, get_chat,
                  label="getChat/getPeer", show=True)

        def get_full_user():
            r = b.do("get_full_user", peer=a.user_id)
            expect(r["user"]["id"] == a.user_id, f"got {r}")
            expect(r["phone_calls_available"] is True, f"{r['full_type']}.phone_calls_available {r['phone_calls_available']}")
            return f"user {r['user']['id']}, {r['full_type']} with phone_calls_available"
        self.step(steps, "getFullUser", b, get_full_user, show=True)

        def import_contacts():
            r = b.do("import_contacts", contacts=[{"phone": a.phone, "first_name": "Alice contact"}])
            expect(a.user_id in r["imported"] and a.user_id in r["users"], f"got {r}")
            return f"imported {r['imported']}"
        self.step(steps, "importContacts", b, import_contacts, show=True)

        def get_contacts():
            r = b.do("get_contacts")
            ids = [u["id"] for u in r]
            expect(a.user_id in ids, f"contacts {ids}, want {a.user_id} (imported)")
            return f"contacts {ids}"
        self.step(steps, "getContacts", b, get_contacts, show=True)

        def get_dialogs():
            r = b.do("get_dialogs", limit=20)
            return f"{len(r)} dialogs" + (f": {[(d['peer_type'], d['peer_id']) for d in r]}" if r else "")
        self.step(steps, "iterDialogs", b, get_dialogs, show=True)

    # ---------------------------------------------------------------- calls between mtcute sessions
    def resolve_for_call(self, caller, phone, user_id):
        r = caller.do("resolve_phone", phone=phone)
        expect(r["user_id"] == user_id, f"resolvePhoneNumber({phone}) gave user {r['user_id']}, want {user_id}")

    def waiting_step(self, sc, caller, st):
        """The step after the callee's receivedCall: the caller gets phoneCallWaiting with receive_date."""

        def waiting():
            u = caller.wait("phoneCallWaiting", st["call"])
            expect(isinstance(u.get("receive_date"), int) and u["receive_date"] > 0, f"receive_date {u.get('receive_date')}")
            return f"receive_date {u['receive_date']}"
        self.step(sc, "the caller gets phoneCallWaiting with receive_date", caller, waiting)

    def confirm_steps(self, sc, caller, st):
        """The steps after the callee's acceptCall: the caller gets phoneCallAccepted with a 256-byte g_b, and
        its confirmCall gives phoneCall with the key fingerprint it computed (its answer in st["confirm"])."""

        def accepted():
            u = caller.wait("phoneCallAccepted", st["call"])
            expect(u.get("g_b_len") == 256, f"g_b has {u.get('g_b_len')} bytes")
        self.step(sc, "the caller gets phoneCallAccepted with g_b", caller, accepted)

        def confirm():
            r = caller.do("confirm", call_id=st["call"])
            st["confirm"] = r
            expect(r["g_range_ok"], "g_b out of range")
            expect(r["result"]["type"] == "phoneCall", f"confirmCall gave {r['result']['type']}")
            expect(r["result"].get("key_fingerprint") == r["computed_fingerprint"],
                   f"result key_fingerprint {r['result'].get('key_fingerprint')}, computed {r['computed_fingerprint']}")
            return f"key fingerprint {r['computed_fingerprint']}"
        self.step(sc, "confirmCall gives phoneCall with the caller's fingerprint", caller, confirm, label="call: confirmCall")

    def full_call(self, caller, callee, discarder, reason):
        sc = harness.Steps(self.t, f"call {caller.name}->{callee.name}")
        st = {}
        other = callee if discarder is caller else caller

        def request():
            self.resolve_for_call(caller, callee.phone, callee.user_id)
            r = caller.do("request_call", peer=callee.phone)
            st["call"] = cid = r["id"]
            self.live_calls.append((caller, cid))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            expect(r.get("receive_date") is None, f"receive_date already set: {r.get('receive_date')}")
            expect(r["admin_id"] == caller.user_id and r["participant_id"] == callee.user_id,
                   f"admin/participant {r['admin_id']}/{r['participant_id']}, want {caller.user_id}/{callee.user_id}")
            expect(r.get("protocol") == PROTOCOL, f"protocol {r.get('protocol')}")
            return f"call {cid}"
        self.step(sc, "requestCall gives phoneCallWaiting without receive_date", caller, request,
                  label="call: resolvePhoneNumber + getDhConfig + requestCall")

        def requested():
            u = callee.wait("phoneCallRequested", st["call"])
            expect(u["admin_id"] == caller.user_id and u["participant_id"] == callee.user_id,
                   f"admin/participant {u['admin_id']}/{u['participant_id']}")
            expect(len(u.get("g_a_hash", "")) == 64, f"g_a_hash {u.get('g_a_hash')}")
            expect(u.get("protocol") == PROTOCOL, f"protocol {u.get('protocol')}")
            expect({caller.user_id, callee.user_id} <= set(u.get("users") or []), f"the push carries users {u.get('users')}")
        self.step(sc, "the callee gets updatePhoneCall(phoneCallRequested)", callee, requested)

        def received():
            r = callee.do("received", call_id=st["call"])
            expect(r["value"] is True, f"phone.receivedCall gave {r['value']!r}, want true")
        self.step(sc, "phone.receivedCall gives true", callee, received, label="call: receivedCall")
        self.waiting_step(sc, caller, st)

        def accept():
            r = callee.do("accept", call_id=st["call"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")
        self.step(sc, "acceptCall gives phoneCallWaiting", callee, accept, label="call: getDhConfig + acceptCall")
        self.confirm_steps(sc, caller, st)

        def phone_call():
            u = callee.wait("phoneCall", st["call"])
            c = st["confirm"]
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("g_range_ok") is True, "g_a out of range")
            expect(u.get("key_fingerprint") == c["computed_fingerprint"] == u.get("computed_fingerprint"),
                   f"fingerprints: relayed {u.get('key_fingerprint')}, caller {c['computed_fingerprint']}, "
                   f"callee {u.get('computed_fingerprint')}")
            expect(u.get("key_sha256") == c["key_sha256"], "keys differ")
            return "same key on both sides"
        self.step(sc, "the callee gets phoneCall(g_a) with the same key fingerprint", callee, phone_call)

        def discard():
            r = discarder.do("discard", call_id=st["call"], reason=reason, duration=5)
            self.live_calls.remove((caller, st["call"]))
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded" and u["id"] == st["call"]]
            expect(d, f"discardCall result has no phoneCallDiscarded: {r}")
            expect(d[0].get("reason") == REASON_TL[reason], f"result reason {d[0].get('reason')}")
        self.step(sc, f"discardCall by the {'caller' if discarder is caller else 'callee'} gives phoneCallDiscarded",
                  discarder, discard, label="call: discardCall")

        def discarded():
            u = other.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == REASON_TL[reason], f"reason {u.get('reason')}, want {REASON_TL[reason]}")
        self.step(sc, f"the {'callee' if other is callee else 'caller'} gets phoneCallDiscarded({reason})", other, discarded)

        def quiet():
            time.sleep(0.3)
            extra = {s.name: s.drain() for s in (caller, callee)}
            expect(not any(extra.values()), "; ".join(f"{n} got {describe(u)}" for n, u in extra.items() if u))
        self.step(sc, "no further updates", None, quiet)
        self.cleanup(caller, callee)

    # ---------------------------------------------------------------- calls with mtcall's own client
    def cli_calls(self, callee, phone):
        """`mtcall call` calls the mtcute callee, which acknowledges and accepts; SIGINT hangs up."""
        sc = harness.Steps(self.t, f"call mtcall cli->{callee.name}")
        st = {}

        @sc(f"mtcall login signs up {phone}")
        def _():
            expect(callee.logged_in, f"not run ({callee} is not logged in)")
            st["user_id"], st["session"] = self.mtcall_login(phone, "Carol")

        @sc(f"mtcall call {callee.phone} prints 'calling {callee.first} (ID) (call CALL_ID)'")
        def _():
            st["cli"] = self.start_cli("mtcall-call", "call", "--session", st["session"], callee.phone)
            m = st["cli"].expect_line(r"calling (.*) \((-?[0-9]+)\) \(call (-?[0-9]+)\); Ctrl-C cancels")
            expect(m.group(2) == callee.user_id, f"calling user {m.group(2)}, want {callee.user_id}")
            st["call"] = m.group(3)

        def requested():
            u = callee.wait("phoneCallRequested", st["call"])
            self.live_calls.append((callee, st["call"]))
            expect(u["admin_id"] == st["user_id"] and u["participant_id"] == callee.user_id,
                   f"admin/participant {u['admin_id']}/{u['participant_id']}, want {st['user_id']}/{callee.user_id}")
            expect(len(u.get("g_a_hash", "")) == 64, f"g_a_hash {u.get('g_a_hash')}")
        self.step(sc, "the callee gets updatePhoneCall(phoneCallRequested)", callee, requested)

        def received():
            r = callee.do("received", call_id=st["call"])
            expect(r["value"] is True, f"phone.receivedCall gave {r['value']!r}, want true")
            st["cli"].expect_line(r"ringing")
        self.step(sc, "phone.receivedCall gives true, mtcall prints 'ringing'", callee, received, label="call: receivedCall")

        def accept():
            r = callee.do("accept", call_id=st["call"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")
        self.step(sc, "acceptCall gives phoneCallWaiting", callee, accept, label="call: getDhConfig + acceptCall")

        def phone_call():
            u = callee.wait("phoneCall", st["call"])
            st["pc"] = u
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("g_range_ok") is True, "g_a out of range")
            expect(u.get("key_fingerprint") == u.get("computed_fingerprint"),
                   f"relayed key_fingerprint {u.get('key_fingerprint')}, callee computed {u.get('computed_fingerprint')}")
        self.step(sc, "the callee gets phoneCall(g_a) and derives the key", callee, phone_call)

        @sc("mtcall prints 'connected' with mtcute's key fingerprint")
        def _():
            harness.expect_connected(st["cli"].expect_line(harness.CONNECTED), st["pc"]["computed_fingerprint"], "mtcute")

        @sc("SIGINT: mtcall prints 'hung up after N s' and exits 0")
        def _():
            st["cli"].proc.send_signal(signal.SIGINT)
            st["cli"].expect_line(r"hung up after [0-9]+ s")
            rc = st["cli"].expect_exit()
            expect(rc == 0, f"exit status {rc}; {st['cli'].describe()}")

        def discarded():
            u = callee.wait("phoneCallDiscarded", st["call"])
            self.live_calls.remove((callee, st["call"]))
            expect(u.get("reason") == REASON_TL["hangup"], f"reason {u.get('reason')}")
        self.step(sc, "the callee gets phoneCallDiscarded(hangup)", callee, discarded)
        self.cleanup(callee)

    def cli_answers(self, caller, phone):
        """The mtcute caller calls `mtcall answer`, confirms and hangs up."""
        sc = harness.Steps(self.t, f"call {caller.name}->mtcall cli")
        st = {}

        @sc(f"mtcall login signs up {phone}, mtcall answer waits")
        def _():
            expect(caller.logged_in, f"not run ({caller} is not logged in)")
            st["user_id"], session = self.mtcall_login(phone, "Dave")
            st["cli"] = self.start_cli("mtcall-answer", "answer", "--session", session)
            st["cli"].expect_line(r"waiting for a call; Ctrl-C stops")

        def request():
            self.resolve_for_call(caller, phone, st["user_id"])
            r = caller.do("request_call", peer=phone)
            st["call"] = r["id"]
            self.live_calls.append((caller, r["id"]))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
        self.step(sc, "requestCall gives phoneCallWaiting", caller, request,
                  label="call: resolvePhoneNumber + getDhConfig + requestCall")

        @sc("mtcall answer acknowledges the incoming call")
        def _():
            st["cli"].expect_line(rf"incoming call {st['call']} from user {caller.user_id}: "
                                  r"acknowledged \(the caller hears it ring\), accepting")
        self.waiting_step(sc, caller, st)
        self.confirm_steps(sc, caller, st)

        @sc("mtcall prints 'connected' with mtcute's key fingerprint")
        def _():
            harness.expect_connected(st["cli"].expect_line(harness.CONNECTED), st["confirm"]["computed_fingerprint"],
                                     "mtcute")

        def discard():
            r = caller.do("discard", call_id=st["call"], reason="hangup", duration=2)
            self.live_calls.remove((caller, st["call"]))
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded"]
            expect(d and d[0].get("reason") == REASON_TL["hangup"], f"discardCall result: {r}")
        self.step(sc, "discardCall gives phoneCallDiscarded(hangup)", caller, discard, label="call: discardCall")

        @sc("mtcall prints 'the other side ended the call (hung up)' and exits 0")
        def _():
            st["cli"].expect_line(r"the other side ended the call \(hung up\)")
            rc = st["cli"].expect_exit()
            expect(rc == 0, f"exit status {rc}; {st['cli'].describe()}")
        self.cleanup(caller)

    # ---------------------------------------------------------------- reconnects
    def reconnect(self, s, peer, fresh):
        how = "a new TelegramClient on the same storage" if fresh else "disconnect() + connect()"
        sc = harness.Steps(self.t, f"reconnect {s.name} ({how})")
        st = {}

        def again():
            u = s.do("reconnect", fresh=fresh, deadline=LOGIN_DEADLINE, op_timeout=LOGIN_DEADLINE + 10)
            expect(u["id"] == s.user_id, f"getMe gave user {u['id']}, want {s.user_id}")
            return f"user {u['id']}"
        self.step(sc, "getMe after the reconnect", s, again, label=f"reconnect ({'fresh' if fresh else 'same'} client)")

        def push():
            self.resolve_for_call(peer, s.phone, s.user_id)
            r = peer.do("request_call", peer=s.phone)
            st["call"] = r["id"]
            self.live_calls.append((peer, r["id"]))
            u = s.wait("phoneCallRequested", st["call"])
            expect(u["admin_id"] == peer.user_id, f"admin_id {u['admin_id']}")
            expect(s.do("received", call_id=st["call"])["value"] is True, "phone.receivedCall did not give true")
        self.step(sc, "updates still arrive: an incoming call rings, receivedCall gives true", s, push)

        def decline():
            peer.wait("phoneCallWaiting", st["call"])
            s.do("discard", call_id=st["call"], reason="busy")
            self.live_calls.remove((peer, st["call"]))
            u = peer.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == REASON_TL["busy"], f"reason {u.get('reason')}")
        self.step(sc, "declining with Busy reaches the caller", s, decline)
        self.cleanup(s, peer)

    # ---------------------------------------------------------------- the trace over the whole run
    def trace_checks(self, clients):
        for c in clients:
            self.wire.take(c)
            self.wire.take(f"{c}!failed")
        per = {c: self.wire.problems(ev) for c, ev in self.wire.events.items()}
        for key, name in (("reset", "mtcute never reset its session"),
                          ("unknown", "mtcute met no unknown constructor"),
                          ("bad_msg", "mtcute got no bad_msg_notification")):
            bad = [f"{c}: {', '.join(p[key])}" for c, p in per.items() if p[key]]
            if bad:
                self.t.fail(f"trace / {name}", "; ".join(bad))
            else:
                n = sum(len(ev) for ev in self.wire.events.values())
                self.t.ok(f"trace / {name}", f"{n} events of {len(clients)} clients")
        # information: mtcute's warnings and errors, and every RPC error it got
        warn, errs, rpc_errors = Counter(), Counter(), Counter()
        for c, evs in self.wire.events.items():
            for e in evs:
                k = e.get("kind")
                if k == "log_warn":
                    warn[re.sub(r"-?\d{6,}", "N", e["text"])] += 1
                elif k in ("log_error", "client_error", "decrypt_failed"):
                    errs[f"{k}: {e['text']}"] += 1
                elif k == "error":
                    rpc_errors[f"{e['method']} -> {e['code']} {e['error']}"] += 1
        for text, n in errs.items():
            self.t.info(f"mtcute error ({n}x): {text}")
        for text, n in warn.items():
            self.t.info(f"mtcute warning ({n}x): {text}")
        for text, n in rpc_errors.items():
            self.t.info(f"RPC error mtcute received ({n}x): {text}")

    def summary(self):
        self.t.info("--- TL requests mtcute sent, per step (wrappers such as invokeWithLayer/initConnection left out) ---")
        for label, client, shapes in self.wire.steps:
            for shape in dict.fromkeys(shapes):
                self.t.info(f"  {label} [{client}]: {shape}")


# ------------------------------------------------------------------------------------------ main
def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--node", default="node", help="node command (v20)")
    ap.add_argument("--node-path", required=True, help="node_modules dir with @mtcute/node 0.30.3 (npm ci of this dir)")
    a = harness.parse_args(ap)
    node_path = str(Path(a.node_path).resolve())

    started = time.monotonic()
    tally = harness.Tally()
    work = Path(tempfile.mkdtemp(prefix="mtcall-mtcute-"))
    server = harness.Server(a.mtcall, work / "data", work / "server.log", extra_args=["--no-admin"])
    env = harness.client_env()
    node_env = dict(env, NODE_PATH=node_path)
    node_env.setdefault("MTCUTE_AGENT_LOG", "2")  # mtcute's warnings and errors to the agent's stderr
    agent = None
    run = None
    try:
        tally.info(f"mtcall binary {harness.describe_binary(a.mtcall)}")
        server.start()
        tally.info(server.banner)
        agent = harness.JsonLines("mtcute", [a.node, str(HERE / "agent.js"), str(server.port), str(server.data)],
                                  node_env, work / "mtcute_agent.log", OP_TIMEOUT)
        ready = agent.wait_ready()
        if ready.get("version") == MTCUTE_VERSION and ready.get("layer") == MTCUTE_LAYER:
            tally.ok("mtcute agent ready", f"@mtcute/node {ready['version']}, layer {ready['layer']}")
        else:
            tally.fail("mtcute agent ready", f"want @mtcute/node {MTCUTE_VERSION} layer {MTCUTE_LAYER}, got {ready}")
        wire = Wire(agent, Schemas(node_path))
        run = Run(tally, server, agent, wire, a, work, env)
        run.rsa_key(ready)

        # Test numbers 99966XYYYY log in with code XXXXX; each run has a fresh data dir.
        alice = Session(run, "a", "9996621001", "Alice")
        bob = Session(run, "b", "9996631001", "Bob")
        bot = Session(run, "bot", None, "bot")

        def logins():
            run.accounts([alice, bob])
            run.login(alice)
            run.login(bob)
            run.bot_login(bot)

        timed = tally.timed
        timed("logins", logins)
        timed("everyday calls", run.everyday, alice, bob, bot)
        timed("call b->a", run.full_call, bob, alice, alice, "hangup")
        timed("call a->b", run.full_call, alice, bob, alice, "disconnect")
        timed("call mtcall cli->a", run.cli_calls, alice, "9996641001")
        timed("call b->mtcall cli", run.cli_answers, bob, "9996651001")
        timed("reconnect a", run.reconnect, alice, bob, False)
        timed("reconnect b", run.reconnect, bob, alice, True)
        run.trace_checks(["a", "b", "bot"])
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail("driver", f"{type(e).__name__}: {e}")
    finally:
        if run is not None:
            for cli in run.clis:
                cli.kill()
        if agent is not None:
            agent.close()
        server.stop()
    if run is not None:
        run.summary()
    harness.finish(tally, work, a.keep, started, server, [agent] if agent is not None else [])


if __name__ == "__main__":
    main()
