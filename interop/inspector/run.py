#!/usr/bin/env python3
"""Call-inspector test: the inspector page in headless Chromium and the Prometheus metrics, while real GramJS
and Telethon clients make a call through a real mtcall server.

It starts `mtcall serve` with an admin address (a free port below 32768 for both: GramJS keeps ports as
int16), scrapes /metrics, and opens the inspector page FIRST (page_check.js: Debian's Chromium driven by
playwright-core), so that what the page shows arrives over its live event stream. Then, with the agents of
interop/calls (gramjs_agent.js, telethon_agent.py, driven by JSON lines):
  GramJS user A calls Telethon user B; B acknowledges with phone.receivedCall (A gets phoneCallWaiting with
  receive_date); Telethon user C calls the busy B and is refused (Waiting, then phoneCallDiscarded(busy));
  the page is checked live and photographed; B's receivedCall with a wrong access_hash gets
  CALL_PEER_INVALID; B accepts, A confirms, A hangs up.
The page must then show the call, the events in order (requestCall, receivedCall, the receive_date push,
the busy refusal), the sequence diagram and the decoded TL of the receivedCall; screenshots go to
--artefacts (inspector-live.png, inspector.png) and the final one also to docs/inspector.png. The admin API
is checked directly too, /metrics again with exact deltas, and a second server with --admin-token checks
the token (API and page).

Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (lines starting with `#` are information), then
`N passed, M failed`; exit status 1 if any check failed.

Usage (see README.md):
    run.py --mtcall target/debug/mtcall --node node --node-path CALLS/node_modules \\
           --playwright-path INSPECTOR/node_modules --python VENV/bin/python \\
           --chromium /usr/bin/chromium --artefacts target/artefacts [--docs docs/inspector.png] [--keep]
Python 3.11 standard library only.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CALLS = HERE.parent / "calls"
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Server, free_port, client_env

OP_TIMEOUT = 15.0
UPDATE_TIMEOUT = 5.0
PAGE_TIMEOUT = 60.0  # one page_check command
BUSY = "phoneCallDiscardReasonBusy"
TOKEN = "inspector-test-token"


CheckFailed, expect, Steps = harness.CheckFailed, harness.expect, harness.Steps


# ------------------------------------------------------------------ JSON-lines child processes
AgentError = harness.AgentError


class Child(harness.JsonLines):
    """A child speaking JSON lines on stdin/stdout (the call agents, page_check.js); stderr to a log."""

    def request(self, op, op_timeout=OP_TIMEOUT, **args):
        """An agent request: {"id", "op", ...} answered by {"id", "ok", "result"|"error"}."""
        return self.do(op, op_timeout, **args)


class User:
    """One logged-in session of an agent."""

    def __init__(self, agent, key, phone, first, last):
        self.agent, self.key, self.phone, self.first, self.last = agent, key, phone, first, last
        self.name = f"{first} {last}"
        self.id = None

    def do(self, op, op_timeout=OP_TIMEOUT, **args):
        return self.agent.request(op, op_timeout, client=self.key, **args)

    def wait(self, type_, call_id):
        return self.do("wait", UPDATE_TIMEOUT + OP_TIMEOUT, type=type_, call_id=call_id, timeout=UPDATE_TIMEOUT)

    def brief(self):
        return {"id": int(self.id), "name": self.name}


# ------------------------------------------------------------------ admin HTTP
def http_get(base, path, token=None, bearer=None, timeout=10):
    """(status, content type, body text) of GET base+path."""
    url = base + path
    if token is not None:
        url += ("&" if "?" in path else "?") + "token=" + token
    req = urllib.request.Request(url)
    if bearer is not None:
        req.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def get_json(base, path, **kw):
    status, _, body = http_get(base, path, **kw)
    expect(status == 200, f"GET {path}: HTTP {status} {body[:200]}")
    try:
        return json.loads(body)
    except ValueError:
        raise CheckFailed(f"GET {path}: not JSON: {body[:200]}") from None


LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Prometheus text format -> {(name, ((label, value), ...)): float}; # lines skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$", line)
        if not m:
            raise CheckFailed(f"unparsable metrics line {line!r}")
        labels, rest = [], m.group(3) or ""
        while rest.strip():
            lm = LABEL.match(rest)
            if not lm:
                raise CheckFailed(f"unparsable labels in {line!r}")
            value = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            labels.append((lm.group(1), value))
            rest = rest[lm.end():]
        out[(m.group(1), tuple(sorted(labels)))] = float(m.group(4))
    return out


class Metrics:
    def __init__(self, samples):
        self.s = samples

    def sum(self, name, **labels):
        """The sum of `name`'s samples whose labels include `labels`."""
        return sum(v for (n, ls), v in self.s.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))

    def has(self, name):
        return any(n == name for n, _ in self.s)

    def label_values(self, name, label):
        return {dict(ls).get(label) for (n, ls) in self.s if n == name} - {None}


# ------------------------------------------------------------------ the run
class Run:
    def __init__(self, tally, args, work):
        self.t, self.a, self.work = tally, args, work
        self.base_env = harness.client_env()
        self.node_env = dict(self.base_env, NODE_PATH=str(Path(args.node_path).resolve()))
        self.page = None
        self.agents = []

    def page_cmd(self, op, **args):
        """Sends one command to page_check.js and reports its checks."""
        if self.page is None:
            self.t.fail(f"page {op}", "page_check.js is not running")
            return False
        ok = True
        try:
            self.page.write(dict(args, op=op))
            deadline = time.monotonic() + PAGE_TIMEOUT
            while True:
                msg = self.page.next(max(0.1, deadline - time.monotonic()))
                if msg.get("done") == op:
                    return ok
                if "check" in msg:
                    if msg["ok"]:
                        self.t.ok(f"page: {msg['check']}", str(msg.get("detail") or ""))
                    else:
                        ok = False
                        self.t.fail(f"page: {msg['check']}", msg.get("reason"))
                elif "fatal" in msg:
                    raise CheckFailed(msg["fatal"])
        except CheckFailed as e:
            self.t.fail(f"page {op}", str(e))
            return False

    def start_server(self, name, extra=()):
        admin_port = harness.free_port()
        server = harness.Server(self.a.mtcall, self.work / f"{name}-data", self.work / f"{name}.log",
                                extra_args=["--admin-listen", f"127.0.0.1:{admin_port}", *extra])
        server.start()
        self.t.info(server.banner.splitlines()[0] if server.banner else "server started")
        deadline = time.monotonic() + 10
        want = f"inspector on http://127.0.0.1:{admin_port}/"
        while time.monotonic() < deadline:
            text = server.log.with_suffix(".stdout").read_text(errors="replace")
            if "inspector on" in text:
                break
            time.sleep(0.05)
        lines = [x for x in text.splitlines() if "inspector on" in x]
        if lines and lines[0].strip() == want:
            self.t.ok(f"{name}: mtcall serve prints '{want}'")
        else:
            self.t.fail(f"{name}: mtcall serve prints '{want}'", f"stdout {text.strip()!r}")
        return server, f"http://127.0.0.1:{admin_port}"

    def main(self):
        t = self.t
        for name in ("inspector.png", "inspector-live.png"):  # no stale screenshot from an earlier run
            (Path(self.a.artefacts) / name).unlink(missing_ok=True)
        server, base = self.start_server("server")
        self.server = server
        try:
            self.scenario(server, base)
        finally:
            for ag in self.agents:
                ag.close()
            reason = server.stop()
            if reason:
                t.fail("server stops cleanly", reason)
        self.token_server()
        if self.page is not None:
            self.page.write({"op": "exit"})
            try:
                self.page.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.page.proc.kill()

    # ---------------------------------------------------------------- the scenario
    def scenario(self, server, base):
        t, a = self.t, self.a
        st = {}
        step = Steps(t)  # the scenario: each step needs the ones before
        check = Steps(t, soft=True)  # what the server reports about it: each check stands alone

        @step("metrics: /metrics answers in the OpenMetrics text format before the scenario")
        def _():
            status, ctype, body = http_get(base, "/metrics")
            expect(status == 200, f"HTTP {status}")
            expect(ctype.startswith("application/openmetrics-text"), f"content type {ctype!r}")
            expect(body.rstrip().endswith("# EOF"), "the exposition ends with # EOF")
            st["before"] = Metrics(parse_metrics(body))

        # the page first, so that what it shows of the call comes over its live stream
        self.page = Child("page_check", [a.node, str(HERE / "page_check.js"), "--chromium", a.chromium,
                                         "--artefacts", str(Path(a.artefacts).resolve())],
                          dict(self.base_env, NODE_PATH=str(Path(a.playwright_path).resolve())), self.work / "page_check.log")
        try:
            r = self.page.next(30)
            expect(r.get("ready"), f"page_check: {r}")
            t.info(f"chromium {r.get('browser')} via playwright-core")
        except CheckFailed as e:
            t.fail("headless Chromium starts", str(e))
            self.page.close(False)
            self.page = None
        self.page_cmd("open", url=f"{base}/", address=f"127.0.0.1:{server.port}")

        port, data = str(server.port), str(server.data)
        gj = Child("gramjs", [a.node, str(CALLS / "gramjs_agent.js"), port, data], self.node_env, self.work / "gramjs_agent.log")
        tt = Child("telethon", [a.python, str(CALLS / "telethon_agent.py"), port, data], self.base_env, self.work / "telethon_agent.log")
        self.agents += [gj, tt]
        layers = {}
        for ag in (gj, tt):
            r = ag.next(30)
            layers[ag.lib] = r.get("layer")
        A = User(gj, "a", "9996641001", "Alice", "A")
        B = User(tt, "b", "9996651001", "Bob", "B")
        C = User(tt, "c", "9996651002", "Carol", "C")
        users = (A, B, C)

        @step("GramJS user A, Telethon users B and C log in")
        def _():
            t0 = time.monotonic()
            futs = []
            for u in users:
                futs.append((u, threading.Thread(target=lambda u=u: setattr(u, "res", self.login(u)))))
            for _, th in futs:
                th.start()
            for _, th in futs:
                th.join(40)
            bad = [f"{u.name}: {getattr(u, 'res', 'no answer')}" for u in users if not isinstance(getattr(u, "res", None), dict)]
            expect(not bad, "; ".join(bad))
            for u in users:
                u.id = u.res["user_id"]
            return f"{time.monotonic() - t0:.1f}s"

        @step("A (GramJS) calls B (Telethon): phoneCallWaiting without receive_date")
        def _():
            r = A.do("resolve", phone=B.phone)
            expect(r["user_id"] == B.id, f"resolvePhone gave {r['user_id']}")
            r = A.do("request_call", phone=B.phone)
            expect(r["type"] == "phoneCallWaiting" and r.get("receive_date") is None, f"requestCall gave {r}")
            st["call"] = r["id"]

        @step("B rings (phoneCallRequested) and acknowledges with phone.receivedCall: true")
        def _():
            u = B.wait("phoneCallRequested", st["call"])
            st["callee_hash"] = u["access_hash"]
            r = B.do("received", call_id=st["call"])
            expect(r["value"] is True, f"receivedCall gave {r}")

        @step("A gets phoneCallWaiting with receive_date")
        def _():
            u = A.wait("phoneCallWaiting", st["call"])
            expect(u.get("receive_date"), f"no receive_date: {u}")

        @step("C (Telethon) calls the busy B: phoneCallWaiting, then phoneCallDiscarded(busy)")
        def _():
            C.do("resolve", phone=B.phone)
            r = C.do("request_call", phone=B.phone)
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            st["busy_call"] = r["id"]
            u = C.wait("phoneCallDiscarded", st["busy_call"])
            expect(u.get("reason") == BUSY, f"reason {u.get('reason')}")

        if step.broken:
            self.page_cmd("final", **self.page_args(users, st, "inspector.png"))
            return

        # ---- while the call rings: A (its caller) and B (acknowledged) are busy, C is not
        @check("api/overview: the 3 sessions with layer, transport and initConnection's client; A and B busy")
        def _():
            o = get_json(base, "/api/overview")
            st["overview"] = o
            by_user = {}
            for s in o["sessions"]:
                if s.get("user"):
                    by_user.setdefault(str(s["user"]["id"]), []).append(s)
            for u, lib in ((A, "gramjs"), (B, "telethon"), (C, "telethon")):
                ss = by_user.get(u.id, [])
                expect(len(ss) == 1, f"{u.name}: {len(ss)} sessions")
                s = ss[0]
                expect(s["user"]["name"] == u.name, f"name {s['user']['name']!r}, want {u.name!r}")
                expect(s["layer"] == layers[lib], f"{u.name}: layer {s['layer']}, {lib} uses {layers[lib]}")
                expect(s["transport"] == "full" and s["obfuscated"] is False, f"{u.name}: transport {s['transport']} obf {s['obfuscated']}")
                expect(s["client"] and s["client"]["api_id"] == 12345, f"{u.name}: client {s['client']}")
                u.client = s["client"]
                expect(re.fullmatch(r"[0-9a-f]{8}", s["auth_key"] or ""), f"{u.name}: auth_key {s['auth_key']!r}")
                expect(s["busy"] is (u is not C), f"{u.name}: busy {s['busy']}")
            busy = sorted(b["id"] for b in o["busy_users"])
            expect(busy == sorted([int(A.id), int(B.id)]), f"busy_users {o['busy_users']}")
            live = [c["id"] for c in o["calls"]["live"]]
            expect(live == [st["call"]], f"live calls {live}, want [{st['call']}]")

        @check("metrics while the call rings: mtcall_busy_users 2, mtcall_calls_live 1, mtcall_users_online 3")
        def _():
            m = Metrics(parse_metrics(http_get(base, "/metrics")[2]))
            got = (m.sum("mtcall_busy_users"), m.sum("mtcall_calls_live"), m.sum("mtcall_users_online"))
            expect(got == (2, 1, 3), f"busy_users, calls_live, users_online = {got}")

        live_args = self.page_args(users, st, "inspector-live.png")
        live_args["layers"] = {u.id: layers[lib] for u, lib in ((A, "gramjs"), (B, "telethon"), (C, "telethon"))}
        for u, key in zip(users, ("a", "b", "c")):
            live_args[key].update({k: (getattr(u, "client", None) or {}).get(k) for k in ("device_model", "app_version", "system_version")})
        self.page_cmd("live", **live_args)

        @step("B's receivedCall with a wrong access_hash gets CALL_PEER_INVALID")
        def _():
            wrong = str(int(st["callee_hash"]) ^ 0x5A5A5A)
            try:
                r = B.do("received", call_id=st["call"], access_hash=wrong)
            except AgentError as e:
                err = e.error
                expect((err.get("rpc") == "CALL_PEER_INVALID" or "CALL_PEER_INVALID" in str(err.get("text"))) and err.get("code") == 400,
                       f"got {err}")
                return
            raise CheckFailed(f"got a result: {r}")

        @step("B accepts (A gets phoneCallAccepted), A confirms (B gets phoneCall)")
        def _():
            r = B.do("accept", call_id=st["call"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")
            A.wait("phoneCallAccepted", st["call"])
            c = A.do("confirm", call_id=st["call"])
            u = B.wait("phoneCall", st["call"])
            expect(u.get("key_fingerprint") == c["computed_fingerprint"] == u.get("computed_fingerprint"), "fingerprints differ")

        @step("A hangs up, B gets phoneCallDiscarded(hangup)")
        def _():
            A.do("discard", call_id=st["call"], reason="hangup", duration=1)
            u = B.wait("phoneCallDiscarded", st["call"])
            expect(u.get("reason") == "phoneCallDiscardReasonHangup", f"reason {u.get('reason')}")

        self.api_checks(base, st, users, check)
        page_ok = self.page_cmd("final", **self.page_args(users, st, "inspector.png"))
        shot = Path(a.artefacts) / "inspector.png"
        if a.docs and page_ok and shot.is_file():  # only a page that passed every check goes to the docs
            Path(a.docs).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, a.docs)
            t.info(f"screenshot copied to {a.docs}")
        self.metrics_checks(base, st, Steps(t))

    def login(self, u):
        try:
            return u.do("login", op_timeout=30, phone=u.phone, first=u.first, last=u.last)
        except CheckFailed as e:
            return str(e)

    def page_args(self, users, st, shot):
        A, B, C = users
        return {"a": A.brief() if A.id else {}, "b": B.brief() if B.id else {}, "c": C.brief() if C.id else {},
                "call": st.get("call"), "busy_call": st.get("busy_call"), "screenshot": shot}

    # ---------------------------------------------------------------- the admin API itself
    def api_checks(self, base, st, users, step):
        A, B, C = users

        @step("api/calls/{id}: A -> B discarded, outcome answered, reason hangup, its events in order")
        def _():
            c = get_json(base, f"/api/calls/{st['call']}")
            expect((c["admin"]["id"], c["participant"]["id"]) == (int(A.id), int(B.id)), f"admin/participant {c['admin']}/{c['participant']}")
            got = (c["state"], c["live"], c["outcome"], c["reason"])
            expect(got == ("discarded", False, "answered", "hangup"), f"state/live/outcome/reason {got}")
            expect(isinstance(c["events"], list), f"events is not a list: {c['events']!r}")
            evs = c["events"]
            seqs = [e["seq"] for e in evs]
            expect(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"seqs {seqs}")
            rpcs = [(e["name"], e["error"]["message"] if e["error"] else None) for e in evs if e["kind"] == "rpc"]
            want = [("phone.requestCall", None), ("phone.receivedCall", None), ("phone.receivedCall", "CALL_PEER_INVALID"),
                    ("phone.acceptCall", None), ("phone.confirmCall", None), ("phone.discardCall", None)]
            expect(rpcs == want, f"rpcs {rpcs}")
            push = [e for e in evs if e["kind"] == "push" and e["user"] and str(e["user"]["id"]) == A.id and "receive_date" in (e["detail"] or "")]
            expect(len(push) == 1, f"receive_date pushes to A: {push}")
            st["received_seq"] = next(e["seq"] for e in evs if e["name"] == "phone.receivedCall" and not e["error"])
            st["call_events"] = len(evs)

        @step("api/calls: the busy call C -> B is recent with outcome busy_refused, reason busy")
        def _():
            calls = get_json(base, "/api/calls")
            expect(calls["live"] == [], f"live {calls['live']}")
            recent = {c["id"]: c for c in calls["recent"]}
            expect(st["call"] in recent, "A -> B not in recent")
            expect(recent[st["call"]]["events"] == st["call_events"], f"events {recent[st['call']]['events']} != {st['call_events']}")
            c = recent.get(st["busy_call"])
            expect(c, f"{st['busy_call']} not in recent")
            expect((c["outcome"], c["reason"], c["state"]) == ("busy_refused", "busy", "discarded"), f"{c}")

        @step("api/events/{seq}: the receivedCall's decoded request (exact 64-bit ids) and result true")
        def _():
            status, ctype, body = http_get(base, f"/api/events/{st['received_seq']}")
            expect(status == 200, f"HTTP {status}")
            e = json.loads(body)
            expect(e["name"] == "phone.receivedCall" and e["request"]["_"] == "phone.receivedCall", f"{body[:300]}")
            expect(e["result"] is True or e["result"] == {"_": "boolTrue"}, f"result {e['result']}")
            expect(e["request"]["peer"]["id"] == int(st["call"]), f"request peer {e['request']['peer']}")
            expect(re.search(rf'"id":\s*"?{st["call"]}"?', body), f"call id {st['call']} not written exactly in {body[:400]}")
            expect("\n" in body.strip(), "not pretty-printed")

        @step("api/calls/{id}/text is a text/plain timeline; unknown call and event give 404")
        def _():
            status, ctype, body = http_get(base, f"/api/calls/{st['call']}/text")
            expect(status == 200 and ctype.startswith("text/plain"), f"HTTP {status} {ctype}")
            for name in ("phone.requestCall", "phone.receivedCall", "CALL_PEER_INVALID", "phone.discardCall"):
                expect(name in body, f"no {name} in {body[:300]!r}")
            expect(http_get(base, "/api/calls/123456789")[0] == 404, "unknown call is not 404")
            expect(http_get(base, "/api/events/999999999")[0] == 404, "unknown event is not 404")

        @step("api/users: A, B, C with one session each, nobody busy")
        def _():
            us = {str(u["id"]): u for u in get_json(base, "/api/users")["users"]}
            for u in users:
                x = us.get(u.id)
                expect(x and x["name"] == u.name and x["sessions"] == 1 and x["busy"] is False and x["bot"] is False, f"{u.name}: {x}")
            o = get_json(base, "/api/overview")
            expect(o["busy_users"] == [] and o["calls"]["live"] == [], f"busy {o['busy_users']} live {o['calls']['live']}")

    # ---------------------------------------------------------------- /metrics after the scenario
    def metrics_checks(self, base, st, step):
        @step("metrics: scraped after the scenario")
        def _():
            expect("before" in st, "no scrape before")
            status, _, body = http_get(base, "/metrics")
            expect(status == 200, f"HTTP {status}")
            st["after"] = Metrics(parse_metrics(body))

        if "after" not in st:
            return
        b, a = st["before"], st["after"]

        def delta(name, **labels):
            return a.sum(name, **labels) - b.sum(name, **labels)

        def exact(name, want, **labels):
            lbl = ",".join(f'{k}="{v}"' for k, v in labels.items())

            @step(f"metrics: {name}{{{lbl}}} +{want}")
            def _():
                expect(a.has(name), f"no {name} in /metrics")
                got = delta(name, **labels)
                expect(got == want, f"moved by {got:g}")

        exact("mtcall_call_setups_total", 2)
        exact("mtcall_call_outcomes_total", 1, outcome="answered")
        exact("mtcall_call_outcomes_total", 1, outcome="busy_refused")
        for outcome in ("missed", "declined", "cancelled"):
            exact("mtcall_call_outcomes_total", 0, outcome=outcome)
        exact("mtcall_rpc_total", 2, method="phone.requestCall", result="ok")
        exact("mtcall_rpc_total", 1, method="phone.receivedCall", result="ok")
        exact("mtcall_rpc_total", 1, method="phone.receivedCall", result="CALL_PEER_INVALID")
        exact("mtcall_rpc_total", 1, method="phone.acceptCall", result="ok")
        exact("mtcall_rpc_total", 1, method="phone.confirmCall", result="ok")
        exact("mtcall_rpc_total", 1, method="phone.discardCall", result="ok")
        exact("mtcall_updates_pushed_total", 6, update="updatePhoneCall")

        @step("metrics: mtcall_rpc_duration_seconds_count moved like mtcall_rpc_total, per method")
        def _():
            bad = []
            methods = a.label_values("mtcall_rpc_total", "method")
            expect({"phone.requestCall", "phone.receivedCall", "messages.getDhConfig"} <= methods, f"methods {sorted(methods)}")
            for m in sorted(methods):
                total, count = delta("mtcall_rpc_total", method=m), delta("mtcall_rpc_duration_seconds_count", method=m)
                if total != count:
                    bad.append(f"{m}: rpc_total +{total:g}, duration _count +{count:g}")
                inf = delta("mtcall_rpc_duration_seconds_bucket", method=m, le="+Inf")
                if inf != count:
                    bad.append(f"{m}: le=+Inf bucket +{inf:g}, _count +{count:g}")
            expect(not bad, "; ".join(bad))
            return f"{len(methods)} methods"

        @step("metrics: mtcall_auth_keys_created_total moved by >= 3, connections accepted >= 3")
        def _():
            keys, conns = delta("mtcall_auth_keys_created_total"), delta("mtcall_connections_accepted_total")
            expect(keys >= 3 and conns >= 3, f"auth keys +{keys:g}, connections accepted +{conns:g}")
            expect(a.sum("mtcall_connections", transport="full") >= 3, f"full connections {a.sum('mtcall_connections', transport='full'):g}")
            return f"keys +{keys:g}"

        @step("metrics: mtcall_busy_users 0, mtcall_calls_live 0, mtcall_users_online 3 at the end")
        def _():
            got = (a.sum("mtcall_busy_users"), a.sum("mtcall_calls_live"), a.sum("mtcall_users_online"))
            expect(got == (0, 0, 3), f"busy_users, calls_live, users_online = {got}")

        @step("metrics: mtcall_store_commit_seconds histogram moved")
        def _():
            expect(delta("mtcall_store_commit_seconds_count") > 0, "no store commit counted")

    # ---------------------------------------------------------------- the admin token
    def token_server(self):
        t = self.t
        try:
            server, base = self.start_server("token-server", ["--admin-token", TOKEN])
        except RuntimeError as e:
            t.fail("token server starts", str(e))
            return
        try:
            checks = [
                ("api/overview without the token is 401", lambda: http_get(base, "/api/overview")[0], 401),
                ("api/overview with a wrong token is 401", lambda: http_get(base, "/api/overview", token="wrong")[0], 401),
                ("api/overview with ?token= is 200", lambda: http_get(base, "/api/overview", token=TOKEN)[0], 200),
                ("api/overview with Authorization: Bearer is 200", lambda: http_get(base, "/api/overview", bearer=TOKEN)[0], 200),
                ("/metrics without the token is 401", lambda: http_get(base, "/metrics")[0], 401),
                ("/metrics with the token is 200", lambda: http_get(base, "/metrics", bearer=TOKEN)[0], 200),
            ]
            for name, fn, want in checks:
                try:
                    got = fn()
                except OSError as e:
                    got = f"{type(e).__name__}: {e}"
                if got == want:
                    t.ok(f"token: {name}")
                else:
                    t.fail(f"token: {name}", f"got {got}")
            self.page_cmd("token", **{"with": f"{base}/?token={TOKEN}", "without": f"{base}/"})
        finally:
            reason = server.stop()
            if reason:
                t.fail("token server stops cleanly", reason)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mtcall", default=os.environ.get("MTCALL_BIN"), help="mtcall binary (default $MTCALL_BIN)")
    ap.add_argument("--node", default="node", help="node command")
    ap.add_argument("--node-path", required=True, help="node_modules of interop/calls (telegram)")
    ap.add_argument("--playwright-path", required=True, help="node_modules of interop/inspector (playwright-core)")
    ap.add_argument("--python", required=True, help="python of a venv with telethon")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    ap.add_argument("--artefacts", default=str(ROOT / "target" / "artefacts"), help="where the screenshots go")
    ap.add_argument("--docs", default="",
                    help="also copy the final screenshot here, e.g. docs/inspector.png for the README")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) even when all passed")
    a = ap.parse_args()
    if not a.mtcall:
        ap.error("--mtcall (or $MTCALL_BIN) is required")
    a.mtcall = str(Path(a.mtcall).resolve())

    started = time.monotonic()
    tally = harness.Tally()
    work = Path(tempfile.mkdtemp(prefix="mtcall-inspector-"))
    run = Run(tally, a, work)
    try:
        run.main()
    except Exception as e:  # noqa: BLE001 - reported as one failure, with the logs kept
        tally.fail("inspector run", f"{type(e).__name__}: {e}")
    finally:
        for ag in run.agents:
            if ag.proc.poll() is None:
                ag.proc.kill()
        if run.page is not None and run.page.proc.poll() is None:
            run.page.proc.kill()
    tally.info(f"took {time.monotonic() - started:.1f}s")
    if tally.failed:
        for name in ("server.log", "page_check.log", "gramjs_agent.log", "telethon_agent.log"):
            lines = harness.log_tail(work / name, 15)
            if lines:
                tally.info(f"--- {name} (tail)")
                for line in lines:
                    tally.info(line)
    if tally.failed or a.keep:
        tally.info(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(tally.summary())


if __name__ == "__main__":
    main()
