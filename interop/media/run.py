#!/usr/bin/env python3
"""Media-call interop: two Telethon userbots with py-tgcalls/ntgcalls make real one-to-one WebRTC calls
through a real `mtcall serve`, send each other a sine tone, and check the audio that arrives.

WebRTC gathers no ICE candidates on loopback, so the driver makes its own network namespaces: a hub
namespace with a bridge (198.18.0.1/24) where mtcall listens, and one namespace per client (198.18.0.2,
198.18.0.3) joined to the bridge by a veth pair. The clients reach mtcall and each other (p2p) on that
segment and nothing else: the namespaces have no IPv6 and no route off it, the root namespace is not touched, and
every namespace is deleted at the end, also on failure, on Ctrl-C and on SIGTERM (and namespaces left by
an earlier run of this script that was killed are deleted at the start).

Each round: the caller places a call playing tone F1 (py-tgcalls `play`), the callee sees the incoming
call and answers playing tone F2; once WebRTC is connected both record what they receive for a few
seconds (raw frames, no ffmpeg) and the driver checks that the callee got the caller's frames and that
their dominant frequency is F1, not F2 (and the same the other way), then the caller hangs up and the
callee sees the discard. The second round swaps the roles and the frequencies. A last call (unless
--no-short-g-b) is the same with a callee whose g_b has a leading zero byte, which ntgcalls sends as 255
bytes: mtcall has to take it (docs/clients.md §9).

Usage: run.py --mtcall BIN --python VENV/bin/python [--keep] [--rounds N] [--no-short-g-b]
              [--listen-secs S] [--timeout S]
Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (`#` lines are information), then
`N passed, M failed`; exit status 1 if any check failed. Python 3.11 standard library only, and
../common/harness.py.
"""

import argparse
import ctypes
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Steps, Server, JsonLines, finish

NET = "198.18.0"  # 198.18.0.0/15 is for benchmarking: never routed
RANGE = ipaddress.ip_network("198.18.0.0/15")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HUB_IP, A_IP, B_IP = f"{NET}.1", f"{NET}.2", f"{NET}.3"
PORT = 4430
PREFIX = "mtmedia"  # namespace names: mtmedia-PID-hub|a|b
OVERALL_TIMEOUT = 300.0  # the whole run; a watchdog ends it after that
CALL_TIMEOUT = 40  # seconds until WebRTC is connected (py-tgcalls' CallConfig.timeout on each side)
TONE_SECS = 20  # length of each tone file (longer than a round's listening)
TONE_TOLERANCE_HZ = 5
# (caller freq, callee freq) per round; none is a multiple of another
ROUND_FREQS = [(523, 784), (1200, 350), (660, 990), (440, 1560)]
EXPECTED_RPCS = {"messages.getDhConfig", "phone.requestCall", "phone.acceptCall", "phone.confirmCall",
                 "phone.sendSignalingData", "phone.discardCall"}
KNOWN_HINTS = [
    ("DH_G_B_INVALID", "mtcall refuses a g_b whose leading zero byte ntgcalls dropped (255 bytes); the last "
                       "call sends one on purpose, in the others it is chance (~1 in 256)"),
    ("DH_G_A_INVALID", "mtcall refuses a g_a whose leading zero byte ntgcalls dropped (~1 in 256 calls); "
                       "re-run"),
]


def die_with_parent():
    """For a child (preexec_fn): SIGKILL when this driver goes, even if it was SIGKILLed itself."""
    _prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork


def run(cmd, timeout=15, check=True):
    """A short command; its output, or CalledProcessError with stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise harness.CheckFailed(f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


# ------------------------------------------------------------------------------------------ namespaces
class Netns:
    """The hub namespace with a bridge and the two client namespaces with veths onto it."""

    def __init__(self):
        tag = f"{PREFIX}-{os.getpid()}"
        self.hub, self.a, self.b = f"{tag}-hub", f"{tag}-a", f"{tag}-b"
        self.made = []
        self.lock = threading.RLock()

    @staticmethod
    def existing():
        out = run(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    @staticmethod
    def remove_stale():
        """Namespaces of earlier runs whose driver is gone (killed with SIGKILL)."""
        gone = []
        for name in Netns.existing():
            m = re.fullmatch(rf"{PREFIX}-(\d+)-(hub|a|b)", name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                Netns.kill_inside(name)
                run(["ip", "netns", "del", name], check=False)
                gone.append(name)
        return gone

    @staticmethod
    def kill_inside(name):
        """SIGKILL to processes still running in a namespace of ours (only ours: found by its name)."""
        out = run(["ip", "netns", "pids", name], check=False)
        for pid in out.split():
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass

    def ip(self, ns, *args):
        return run(["ip", "-n", ns, *args])

    def up(self):
        for ns in (self.hub, self.a, self.b):
            run(["ip", "netns", "add", ns])
            with self.lock:
                self.made.append(ns)
            # no IPv6 (not even link-local): every packet the test sends is IPv4 within 198.18.0.0/15
            # (or loopback); set before the veths exist, so they never get an IPv6 address
            run(["ip", "netns", "exec", ns, "sh", "-c",
                 "[ ! -d /proc/sys/net/ipv6 ] || for c in all default; do "
                 "echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6 || exit 1; done"])
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(self.hub, "link", "add", "br0", "type", "bridge")
        self.ip(self.hub, "addr", "add", f"{HUB_IP}/24", "dev", "br0")
        self.ip(self.hub, "link", "set", "br0", "up")
        for ns, addr, port in ((self.a, A_IP, "pa"), (self.b, B_IP, "pb")):
            # the pair is made inside the hub, its far end moved straight into the client's namespace
            self.ip(self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip(self.hub, "link", "set", port, "master", "br0")
            self.ip(self.hub, "link", "set", port, "up")
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")

    def confined(self, ns):
        """Raises CheckFailed unless every address and route of ns is loopback or in 198.18.0.0/15."""
        addrs = run(["ip", "-n", ns, "-o", "addr", "show"])
        for line in addrs.splitlines():
            f = line.split()
            fam, net = f[2], f[3]
            harness.expect(fam == "inet", f"{ns} has a non-IPv4 address: {line.strip()}")
            a = ipaddress.ip_interface(net).ip
            harness.expect(a in RANGE or (a in LOOPBACK and f[1] == "lo"), f"{ns} has address {net} on {f[1]}")
        for fam in ("-4", "-6"):
            # (a kernel booted without IPv6 refuses the -6 listing: then there are no IPv6 routes)
            routes = run(["ip", "-n", ns, fam, "route", "show", "table", "all"], check=fam == "-4")
            for line in routes.splitlines():
                f = line.split()
                if not f:
                    continue
                dest = f[1] if f[0] in ("local", "broadcast", "unicast", "anycast", "multicast") else f[0]
                harness.expect(fam == "-4" and dest != "default", f"{ns} has route {line.strip()}")
                d = ipaddress.ip_network(dest, strict=False)
                harness.expect(d.subnet_of(RANGE) or d.subnet_of(LOOPBACK), f"{ns} has route {line.strip()}")

    def counters(self, ns):
        """IPv4 packets sent and packets that found no route (kernel counters of ns, /proc/net/snmp)."""
        text = run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])
        rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Ip:")]
        ip = dict(zip(rows[0], (int(v) for v in rows[1])))
        return {"out": ip["OutRequests"], "no_route": ip["OutNoRoutes"]}

    def down(self):
        """Deletes our namespaces (their veths and the bridge go with them); the names it could not."""
        left = []
        # held throughout: the watchdog's teardown waits for one already under way instead of exiting
        # in the middle of it (re-entrant for a signal that arrives while the main thread is in here)
        with self.lock:
            while self.made:
                ns = self.made.pop()
                self.kill_inside(ns)
                try:
                    p = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True, timeout=15)
                    if p.returncode != 0:
                        left.append(f"{ns} ({p.stderr.strip()})")
                except subprocess.TimeoutExpired:
                    left.append(f"{ns} (ip netns del hung)")
        return left


# ------------------------------------------------------------------------------------------ server
class NsServer(harness.Server):
    """`ip netns exec HUB mtcall serve --data DIR --listen HUB_IP:PORT --no-admin`, RPC lines logged; it dies
    with the driver."""

    rust_log = "info,mtcall::rpc=debug"
    preexec = staticmethod(die_with_parent)

    def __init__(self, binary, ns, data, log):
        super().__init__(binary, data, log, port=PORT, extra_args=["--no-admin"], host=HUB_IP)
        self.ns = ns

    def command(self):
        return ["ip", "netns", "exec", self.ns, *super().command()]

    def start(self):
        return super().start(attempts=1)  # nothing else can hold the port in a new namespace

    def rpcs(self):
        """(method, result) of every RPC line in the log."""
        out = []
        for line in harness.log_lines(self.log):
            if "mtcall::rpc" not in line:
                continue
            m = re.search(r'method="?([\w.]+)"?', line)
            r = re.search(r'result="?([^" ]+)"?', line)
            if m:
                out.append((m.group(1), r.group(1) if r else "?"))
        return out


# ------------------------------------------------------------------------------------------ the test
class Run:
    def __init__(self, args):
        self.args = args
        self.tally = harness.Tally(hints=KNOWN_HINTS)
        self.steps = harness.Steps(self.tally)
        self.net = Netns()
        self.server = None
        self.agents = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="mtcall-media-"))
        self.users = {}  # name -> {"phone", "user_id"}
        self.t0 = time.monotonic()
        self.dh_lengths = []  # (len g_a, len g_b) of each confirmed call
        self.dying = False

    def agent(self, name, ns):
        work = self.tmp / f"work-{name}"
        work.mkdir()
        cmd = ["ip", "netns", "exec", ns, self.args.python, "-u", self.args.agent,
               "--server", HUB_IP, "--port", str(PORT), "--key", str(self.tmp / "data" / "server.pub"),
               "--work", str(work)]
        env = harness.client_env()
        env["PYTHONUNBUFFERED"] = "1"
        return harness.JsonLines(f"agent {name}", cmd, env, self.tmp / f"agent-{name}.log", op_timeout=20)

    def main(self):
        s = self.steps

        @s("environment")
        def _():
            if os.geteuid() != 0:
                raise harness.CheckFailed("needs root (network namespaces)")
            if shutil.which("ip") is None:
                self.tally.info("`ip` missing: apt-get install iproute2")
                run(["apt-get", "update", "-q"], timeout=300)
                run(["apt-get", "install", "-y", "-q", "iproute2"], timeout=300)
            for f in (self.args.mtcall, self.args.python):
                if not os.access(f, os.X_OK):
                    raise harness.CheckFailed(f"{f} is not executable")
            stale = Netns.remove_stale()
            return (f"mtcall binary {harness.describe_binary(self.args.mtcall)}"
                    + (f"; removed stale namespaces {stale}" if stale else ""))

        @s("network namespaces")
        def _():
            self.net.up()
            # the segment is all there is: no namespace has an address or a route outside it
            for ns in (self.net.a, self.net.b, self.net.hub):
                self.net.confined(ns)
            return (f"hub {HUB_IP} (mtcall), a {A_IP}, b {B_IP}; no IPv6, no default route, every address "
                    f"and route loopback or in {RANGE}")

        @s("mtcall serve in the hub namespace")
        def _():
            (self.tmp / "data").mkdir()
            self.server = NsServer(self.args.mtcall, self.net.hub, self.tmp / "data", self.tmp / "server.log")
            banner = self.server.start()
            harness.expect((self.tmp / "data" / "server.pub").exists(), "no server.pub")
            return banner.splitlines()[0]

        @s("agents ready")
        def _():
            self.agents["a"] = self.agent("a", self.net.a)
            self.agents["b"] = self.agent("b", self.net.b)
            layers = {n: ag.wait_ready(60).get("layer") for n, ag in self.agents.items()}
            return f"Telethon layer {layers['a']}"

        @s("login")
        def _():
            phones = {"a": "9996621001", "b": "9996631002"}  # codes 22222, 33333
            futs = {n: self.agents[n].send("login", phone=p, first=f"Tone{n.upper()}") for n, p in phones.items()}
            out = []
            for n, fut in futs.items():
                r = self.agents[n].result(fut, 40)
                self.users[n] = {"phone": phones[n], "user_id": r["user_id"]}
                out.append(f"{n}={r['user_id']}{' (signed up)' if r['signed_up'] else ''}")
            return ", ".join(out)

        @s("resolve")
        def _():
            for n, other in (("a", "b"), ("b", "a")):
                r = self.agents[n].do("resolve", phone=self.users[other]["phone"])
                harness.expect(r["user_id"] == self.users[other]["user_id"],
                               f"{n} resolved {self.users[other]['phone']} to {r['user_id']}")
            return "each resolves the other's number"

        pairs = [("a", "b"), ("b", "a")]
        for i in range(self.args.rounds):
            if s.broken:
                self.tally.fail(f"call {i + 1}", f"not run ({s.broken})")
                continue
            caller, callee = pairs[i % 2]
            f_caller, f_callee = ROUND_FREQS[i % len(ROUND_FREQS)]
            self.round(i + 1, caller, callee, f_caller, f_callee)
        if not self.args.no_short_g_b:
            n = self.args.rounds + 1
            if s.broken:
                self.tally.fail(f"call {n}", f"not run ({s.broken})")
            else:
                f_caller, f_callee = ROUND_FREQS[(n - 1) % len(ROUND_FREQS)]
                self.round(n, "a", "b", f_caller, f_callee, short_g_b=True)

        @s("server / RPCs the media clients used")
        def _():
            rpcs = self.server.rpcs()
            methods = {}
            for m, r in rpcs:
                methods.setdefault(m, {}).setdefault(r, 0)
                methods[m][r] += 1
            self.tally.info("server RPCs: " + ", ".join(
                f"{m} {' '.join(f'{r}x{c}' for r, c in sorted(rs.items()))}" for m, rs in sorted(methods.items())))
            missing = EXPECTED_RPCS - set(methods)
            harness.expect(not missing, f"never called: {sorted(missing)}")
            # (Telethon's connect() probes users.getUsers before login: 401 AUTH_KEY_UNREGISTERED is normal)
            errors = [f"{m} {r}x{c}" for m, rs in methods.items() for r, c in rs.items()
                      if r != "ok" and (m, r) != ("users.getUsers", "AUTH_KEY_UNREGISTERED")]
            harness.expect(not errors, f"RPC errors: {errors}")
            return f"{len(rpcs)} RPC lines; {', '.join(sorted(EXPECTED_RPCS))} all called; no errors"

    def round(self, n, caller, callee, f_caller, f_callee, short_g_b=False):
        s = harness.Steps(self.tally, title=f"call {n} {caller}->{callee}" + (", 255-byte g_b" if short_g_b else ""))
        A, B = self.agents[caller], self.agents[callee]
        a_id, b_id = self.users[caller]["user_id"], self.users[callee]["user_id"]
        freqs = [f_caller, f_callee]
        ctx = {}
        listen = self.args.listen_secs

        @s("connected")
        def _():
            # what the agents saw before this call: the checks below look only at what came after
            ctx["mark"] = {caller: len(A.do("state")["phone_calls"]), callee: len(B.do("state")["phone_calls"])}
            t0 = time.monotonic()
            call = A.send("call", user_id=b_id, freq=f_caller, seconds=TONE_SECS, timeout=CALL_TIMEOUT)
            inc = B.do("wait_incoming", timeout=20, op_timeout=25)
            harness.expect(inc["user_id"] == a_id, f"incoming call from {inc['user_id']}, not {a_id}")
            ans = B.send("answer", user_id=a_id, freq=f_callee, seconds=TONE_SECS, timeout=CALL_TIMEOUT,
                         short_g_b=short_g_b)
            # the callee's answer first: if the server refuses phone.acceptCall, the caller would wait
            # out its whole timeout; the round's clean-up hangs up instead
            rb = B.result(ans, CALL_TIMEOUT + 10)
            ra = A.result(call, CALL_TIMEOUT + 10)
            ctx["connected_at"] = time.monotonic()
            if short_g_b:
                harness.expect(rb.get("g_b_len") is not None and rb["g_b_len"] < 256,
                               f"{callee} did not send a short g_b: {rb}")
            forced = (f"{callee}'s g_b has a leading zero byte, sent as {rb['g_b_len']} bytes "
                      f"(ntgcalls exchange {rb['g_b_tries']} times); " if short_g_b else "")
            return (forced + f"WebRTC connected {time.monotonic() - t0:.1f} s after requestCall; "
                    f"{caller} states {ra['states']}, {callee} states {rb['states']}")

        @s("both sides receive audio frames")
        def _():
            time.sleep(max(0.0, listen - (time.monotonic() - ctx["connected_at"])))
            fa = A.send("frames", user_id=b_id, freqs=freqs)
            fb = B.send("frames", user_id=a_id, freqs=freqs)
            ctx[callee] = B.result(fb, 30)
            ctx[caller] = A.result(fa, 30)
            out = []
            for who, frm in ((callee, caller), (caller, callee)):
                r = ctx[who]
                need = int(listen * 100 * 0.5)  # 10 ms frames: 100 a second; at least half of them
                harness.expect(r["frames"] >= need, f"{who} got {r['frames']} frames from {frm} in ~{listen} s "
                                                    f"(want >= {need}): {r}")
                out.append(f"{who} got {r['frames']} frames ({r['samples_per_frame']} samples each, "
                           f"{r['frames_per_second']}/s, {r['measured_rate']} samples/s)")
            return "; ".join(out)

        for who, frm, want, other in ((callee, caller, f_caller, f_callee), (caller, callee, f_callee, f_caller)):
            @s(f"{who} hears {frm}'s {want} Hz tone")
            def _(who=who, frm=frm, want=want, other=other):
                an = ctx[who]["analysis"]
                harness.expect("error" not in an, f"{who}: {an}")
                dom = an["dominant_hz"]
                p_want, p_other = an["power_at"][str(want)], an["power_at"][str(other)]
                harness.expect(abs(dom - want) <= TONE_TOLERANCE_HZ,
                               f"dominant {dom} Hz, want {want} Hz ({frm}'s tone); {an}")
                harness.expect(p_want > 100 * max(p_other, 1e-12),
                               f"power at {want} Hz {p_want:.3g} not far above {other} Hz (own tone) {p_other:.3g}")
                harness.expect(an["tone_share"] > 0.5, f"tone is only {an['tone_share']} of the energy: {an}")
                return (f"dominant {dom} Hz, zero crossings {an['zero_crossing_hz']} Hz, rms {an['rms']}, "
                        f"{an['tone_share']:.0%} of the energy; own {other} Hz {p_other / max(p_want, 1e-30):.1e} of it")

        @s("signalling relayed and key agreed")
        def _():
            sa, sb = A.do("state"), B.do("state")
            ctx["state"] = (sa, sb)
            new_a, new_b = sa["phone_calls"][ctx["mark"][caller]:], sb["phone_calls"][ctx["mark"][callee]:]
            # both ntgcalls calls are up (the hang-up check below looks for them gone)
            for who, st, peer in ((caller, sa, b_id), (callee, sb, a_id)):
                harness.expect(st["calls_error"] is None and peer in st["calls"],
                               f"{who}'s py-tgcalls does not list the call with {peer}: {st['calls']} "
                               f"{st['calls_error'] or ''}")
            harness.expect(sa["sig_out"] > 0 and sb["sig_out"] > 0, f"signalling sent: {sa['sig_out']}, {sb['sig_out']}")
            harness.expect(sa["sig_in"] > 0 and sb["sig_in"] > 0,
                           f"updatePhoneCallSignalingData received: {caller} {sa['sig_in']}, {callee} {sb['sig_in']}")
            pcs = [p for p in new_b if p["type"] == "PhoneCall"]
            harness.expect(len(pcs) == 1, f"{callee} saw {len(pcs)} phoneCall pushes for this call: {new_b}")
            pc = pcs[0]
            ctx["call_id"] = pc["id"]
            harness.expect(pc["p2p_allowed"], f"phoneCall without p2p_allowed: {pc}")
            acc = [p for p in new_a if p["type"] == "PhoneCallAccepted"]
            harness.expect(len(acc) == 1 and acc[0]["id"] == pc["id"],
                           f"{caller}'s phoneCallAccepted pushes {acc} do not match {callee}'s phoneCall {pc['id']}")
            g_b_len = acc[0]["g_b_len"]
            self.dh_lengths.append((pc["g_a_or_b_len"], g_b_len))
            harness.expect(pc["g_a_or_b_len"] <= 256 and g_b_len <= 256, f"g_a/g_b lengths {self.dh_lengths[-1]}")
            if short_g_b:
                harness.expect(g_b_len < 256, f"{caller}'s phoneCallAccepted g_b: {g_b_len} bytes, not the short "
                                              f"g_b {callee} sent")
            ea, eb = sa["emojis"].get(b_id), sb["emojis"].get(a_id)
            harness.expect(ea and ea == eb, f"key emojis missing or different: {ea!r} / {eb!r}")
            return (f"signalling {caller}->{callee} {sa['sig_out']}, {callee}->{caller} {sb['sig_out']} messages; "
                    f"phoneCall p2p_allowed, {pc['connections']} connections, versions {pc['library_versions']}; "
                    f"g_a {pc['g_a_or_b_len']} bytes, g_b {g_b_len} bytes"
                    + (f"; emojis {ea}" if ea else ""))

        @s("hang up")
        def _():
            A.do("hangup", user_id=b_id)
            B.do("wait_discarded", user_id=a_id, timeout=10, op_timeout=15)
            # both ntgcalls calls are gone, and no more audio arrives at the callee
            deadline = time.monotonic() + 5
            while True:
                sts = {n: ag.do("state") for n, ag in ((caller, A), (callee, B))}
                errs = {n: st["calls_error"] for n, st in sts.items() if st["calls_error"]}
                harness.expect(not errs, f"py-tgcalls' call list: {errs}")
                left = {n: st["calls"] for n, st in sts.items()}
                if not any(left.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            harness.expect(not any(left.values()), f"calls still up 5 s after the hang-up: {left}")
            discards = [p for p in B.do("state")["phone_calls"][ctx["mark"][callee]:]
                        if p["type"] == "PhoneCallDiscarded" and p["id"] == ctx.get("call_id")]
            harness.expect(discards and discards[0]["reason"] == "PhoneCallDiscardReasonHangup",
                           f"{callee}'s phoneCallDiscarded for call {ctx.get('call_id')}: {discards}")
            n1 = B.do("count", user_id=a_id)["frames"]
            time.sleep(1.0)
            n2 = B.do("count", user_id=a_id)["frames"]
            harness.expect(n1 == n2, f"{callee} still receives frames after the hang-up ({n1} -> {n2})")
            return f"{caller} hung up; {callee} saw phoneCallDiscarded; both calls ended, audio stopped at {n2} frames"

        if s.broken:  # leave no call up for the next round: both hang up, errors ignored
            for ag, peer in ((A, b_id), (B, a_id)):
                try:
                    ag.do("hangup", user_id=peer, op_timeout=10)
                except harness.CheckFailed:
                    pass

    def finish(self):
        stopped = None
        for name, ag in self.agents.items():
            try:
                ag.close()
            except Exception as e:  # noqa: BLE001
                self.tally.info(f"agent {name} close: {e}")
        if self.server is not None:
            stopped = self.server.stop()
            if stopped:
                self.tally.fail("server stops cleanly", stopped)
            else:
                self.tally.ok("server stops cleanly")
        if self.server is not None:
            # still nothing but the segment (no route or address was added during the run), so every
            # packet sent went to 198.18.0.0/24 or loopback. "no route" counts sends the kernel refused
            # for want of a route: WebRTC's UDP connect() to a public DNS address, which only asks the
            # kernel for the default source address and sends nothing, fails that way (3 per call)
            try:
                for ns in (self.net.hub, self.net.a, self.net.b):
                    self.net.confined(ns)
                c = {ns.rsplit("-", 1)[1]: self.net.counters(ns) for ns in (self.net.hub, self.net.a, self.net.b)}
                self.tally.ok("traffic stayed on the segment", "IPv4 packets sent: " + ", ".join(
                    f"{n} {v['out']} (no route: {v['no_route']})" for n, v in c.items()))
            except (harness.CheckFailed, subprocess.SubprocessError, KeyError, IndexError, ValueError) as e:
                self.tally.fail("traffic stayed on the segment", e)
        left = self.net.down()
        if left:
            self.tally.fail("namespaces removed", ", ".join(left))
        elif self.server is not None:
            self.tally.ok("namespaces removed")
        short = [x for x in self.dh_lengths if any(v is not None and v < 256 for v in x)]
        if self.dh_lengths:
            self.tally.info(f"{len(self.dh_lengths)} calls confirmed; with a g_a/g_b shorter than 256 bytes "
                            f"(ntgcalls drops leading zero bytes): {len(short)} {short if short else ''}")

    def emergency(self, why):
        """The watchdog or a signal: kill the children, delete the namespaces, exit 1."""
        if self.dying:
            return
        self.dying = True
        self.tally.fail("run", why)
        for ag in self.agents.values():
            ag.kill(why)
        if self.server is not None:
            self.server.kill()
        left = self.net.down()
        if left:
            self.tally.fail("namespaces removed", ", ".join(left))
        self.tally.info(f"files kept in {self.tmp}")
        self.tally.summary()
        os._exit(1)


def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--python", required=True, help="python of a venv with requirements.txt installed")
    ap.add_argument("--rounds", type=int, default=2, help="calls, alternating direction (default 2)")
    ap.add_argument("--no-short-g-b", action="store_true",
                    help="skip the last call, whose callee sends a g_b with its leading zero byte dropped")
    ap.add_argument("--listen-secs", type=float, default=4.0, help="audio recorded per call (default 4)")
    ap.add_argument("--timeout", type=float, default=OVERALL_TIMEOUT, help="the whole run, seconds")
    ap.add_argument("--agent", default=str(HERE / "agent.py"), help=argparse.SUPPRESS)  # a wrapped agent
    args = harness.parse_args(ap)
    args.python = os.path.abspath(args.python)
    r = Run(args)
    timer = threading.Timer(args.timeout, r.emergency, [f"timed out after {args.timeout:.0f} s"])
    timer.daemon = True
    timer.start()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda num, _f: r.emergency(f"stopped by signal {num}"))
    try:
        r.main()
    except Exception as e:  # noqa: BLE001 - a bug in the driver is one failed check, then clean up
        r.tally.fail("driver", f"{type(e).__name__}: {e}")
    finally:
        r.finish()
        timer.cancel()
    harness.finish(r.tally, r.tmp, args.keep, r.t0, r.server, r.agents.values())


if __name__ == "__main__":
    main()
