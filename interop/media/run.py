#!/usr/bin/env python3
"""Media-call interop: two Telethon userbots with py-tgcalls/ntgcalls make real one-to-one WebRTC calls
through a real `mtcall serve`, send each other a sine tone, and check the audio that arrives.

WebRTC gathers no ICE candidates on loopback, so the driver makes its own network namespaces, in one of
two shapes:
- segment (scenario p2p): a hub namespace with a bridge (198.18.0.1/24) where mtcall listens, and one
  namespace per client (198.18.0.2, 198.18.0.3) on that bridge. The clients reach mtcall and each other:
  the audio goes peer to peer.
- isolated (scenarios reflector, turn, defaults): the hub has IP forwarding off, 198.18.0.1/32 on its
  loopback device (mtcall, its reflector and coturn listen there) and one veth per client on a subnet of
  its own (198.18.1.0/24 to a, 198.18.2.0/24 to b). Each client has a route to 198.18.0.1 alone: a and b
  cannot reach each other, so audio only flows through a relay in the hub.
Either way the namespaces have no IPv6 and no route outside 198.18.0.0/15, the root namespace is not
touched, and every namespace is deleted at the end, also on failure, on Ctrl-C and on SIGTERM (and
namespaces left by an earlier run of this script that was killed are deleted at the start).

Scenarios (--scenario, default all = p2p,reflector,turn,defaults):
  p2p        the segment; mtcall without a configuration file. Plain calls in both directions (--rounds)
             and one whose callee sends a 255-byte g_b (unless --no-short-g-b): mtcall has to take it
             (docs/clients.md §9).
  reflector  isolated; `[calls] p2p = "never"`, mtcall's own reflector (on by default). One call, and
             mtcall's /metrics must show the reflector forwarding its packets.
  turn       isolated; coturn in the hub (TURN REST secret), mtcall with --no-relay, p2p never and
             `[relay.turn]` with the same secret. One call through coturn; then mtcall again with a wrong
             secret: that call must not connect.
  defaults   isolated; mtcall without a configuration file. One call, through mtcall's reflector.
  turn-static (not in all) isolated; coturn, and a static `[[calls.webrtc]]` TURN entry whose REST
             credentials the driver computes itself.

Each call: the caller places a call playing tone F1 (py-tgcalls `play`), the callee sees the incoming call
and answers playing tone F2; once WebRTC is connected both record what they receive for a few seconds (raw
frames, no ffmpeg) and the driver checks that the callee got the caller's frames and that their dominant
frequency is F1, not F2 (and the same the other way), then the caller hangs up and the callee sees the
discard.

Usage: run.py --mtcall BIN --python VENV/bin/python [--scenario LIST] [--keep] [--rounds N]
              [--no-short-g-b] [--listen-secs S] [--timeout S] [--turnserver BIN]
Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (`#` lines are information), then
`N passed, M failed`; exit status 1 if any check failed. Python 3.11 standard library only, and
../common/harness.py.
"""

import argparse
import base64
import ctypes
import hashlib
import hmac
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Steps, Server, JsonLines, finish

RANGE = ipaddress.ip_network("198.18.0.0/15")  # for benchmarking: never routed
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HUB_IP = "198.18.0.1"  # mtcall (and its reflector, and coturn) in both shapes
PORT = 4430
RELAY_PORT = PORT + 2  # mtcall's reflector: the MTProto listen address, port + 2
ADMIN = "127.0.0.1:4431"  # mtcall's admin address (/metrics), on the hub's loopback
TURN_PORT = 3478
TURN_REALM = "mtcall.test"
TURN_SECRET = "mtcall-media-turn-secret"
WRONG_SECRET = "not-the-turn-secret"
TURN_TTL = 3600
PREFIX = "mtmedia"  # namespace names: mtmedia-PID-SCENARIO-hub|a|b
OVERALL_TIMEOUT = 300.0  # the whole run; a watchdog ends it after that
CALL_TIMEOUT = 40  # seconds until WebRTC is connected (py-tgcalls' CallConfig.timeout on each side)
FAIL_TIMEOUT = 20  # the same for the call that must not connect
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
    ("exited (status -11)", "ntgcalls crashed (SIGSEGV); seen at the hang-up of calls offered mtcall's "
                            "reflector over TCP (phoneConnection tcp, [relay] tcp = true), never without it"),
]
ALL = ["p2p", "reflector", "turn", "defaults"]
SCENARIOS = ALL + ["turn-static"]
COTURN_SCENARIOS = {"turn", "turn-static"}


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


def turn_password(secret, username):
    """The TURN REST API password (coturn's use-auth-secret): base64 of HMAC-SHA1(secret, username)."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


# ------------------------------------------------------------------------------------------ namespaces
class Namespaces:
    """The hub namespace and the two client namespaces; the subclasses join them."""

    hub_ip = HUB_IP
    shape = ""

    def __init__(self, tag):
        base = f"{PREFIX}-{os.getpid()}-{tag}"
        self.hub, self.a, self.b = f"{base}-hub", f"{base}-a", f"{base}-b"
        self.made = []
        self.lock = threading.RLock()

    def all(self):
        return (self.hub, self.a, self.b)

    @staticmethod
    def short(ns):
        return ns.rsplit("-", 1)[1]

    @staticmethod
    def existing():
        out = run(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    @staticmethod
    def remove_stale():
        """Namespaces of earlier runs whose driver is gone (killed with SIGKILL)."""
        gone = []
        for name in Namespaces.existing():
            m = re.fullmatch(rf"{PREFIX}-(\d+)-(?:[a-z0-9-]+-)?(hub|a|b)", name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                Namespaces.kill_inside(name)
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

    def sh(self, ns, script):
        return run(["ip", "netns", "exec", ns, "sh", "-c", script])

    def add(self):
        """The three namespaces, each with lo up and no IPv6."""
        for ns in self.all():
            run(["ip", "netns", "add", ns])
            with self.lock:
                self.made.append(ns)
            # no IPv6 (not even link-local): every packet the test sends is IPv4 within 198.18.0.0/15
            # (or loopback); set before the veths exist, so they never get an IPv6 address
            self.sh(ns, "[ ! -d /proc/sys/net/ipv6 ] || for c in all default; do "
                        "echo 1 > /proc/sys/net/ipv6/conf/$c/disable_ipv6 || exit 1; done")
            self.ip(ns, "link", "set", "lo", "up")

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


class Segment(Namespaces):
    """One segment: a bridge in the hub (198.18.0.1/24), the clients on it (198.18.0.2, .3)."""

    shape = "segment"
    a_ip, b_ip = "198.18.0.2", "198.18.0.3"

    def up(self):
        self.add()
        self.ip(self.hub, "link", "add", "br0", "type", "bridge")
        self.ip(self.hub, "addr", "add", f"{HUB_IP}/24", "dev", "br0")
        self.ip(self.hub, "link", "set", "br0", "up")
        for ns, addr, port in ((self.a, self.a_ip, "pa"), (self.b, self.b_ip, "pb")):
            # the pair is made inside the hub, its far end moved straight into the client's namespace
            self.ip(self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip(self.hub, "link", "set", port, "master", "br0")
            self.ip(self.hub, "link", "set", port, "up")
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
        return f"segment: hub {HUB_IP} (mtcall), a {self.a_ip}, b {self.b_ip}"


class Isolated(Namespaces):
    """The clients on links of their own to the hub, which does not forward: 198.18.0.1/32 on the hub's lo,
    hub va 198.18.1.1/24 - a eth0 198.18.1.2/24, hub vb 198.18.2.1/24 - b eth0 198.18.2.2/24; each client's
    one route beyond its link is 198.18.0.1/32 via the hub's end."""

    shape = "isolated"
    a_ip, b_ip = "198.18.1.2", "198.18.2.2"
    a_gw, b_gw = "198.18.1.1", "198.18.2.1"

    def up(self):
        self.add()
        # no forwarding between the two links (a new namespace starts without it; said anyway)
        self.sh(self.hub, "echo 0 > /proc/sys/net/ipv4/ip_forward")
        self.ip(self.hub, "addr", "add", f"{HUB_IP}/32", "dev", "lo")
        for ns, addr, gw, port in ((self.a, self.a_ip, self.a_gw, "va"), (self.b, self.b_ip, self.b_gw, "vb")):
            self.ip(self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip(self.hub, "addr", "add", f"{gw}/24", "dev", port)
            self.ip(self.hub, "link", "set", port, "up")
            self.ip(ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
            self.ip(ns, "route", "add", f"{HUB_IP}/32", "via", gw, "dev", "eth0")
        return (f"isolated: hub {HUB_IP}/32 on lo (mtcall, reflector, coturn), va {self.a_gw}/24 - a "
                f"{self.a_ip}, vb {self.b_gw}/24 - b {self.b_ip}")

    def isolation(self):
        """CheckFailed unless the hub does not forward, neither client has a route to the other (or to the
        other's link) and both route 198.18.0.1 through their link to the hub."""
        fwd = run(["ip", "netns", "exec", self.hub, "cat", "/proc/sys/net/ipv4/ip_forward"]).strip()
        harness.expect(fwd == "0", f"the hub forwards IPv4 (ip_forward={fwd})")
        out = []
        for ns, others in ((self.a, (self.b_ip, self.b_gw)), (self.b, (self.a_ip, self.a_gw))):
            for dest in others:
                p = subprocess.run(["ip", "-n", ns, "route", "get", dest], capture_output=True, text=True,
                                   timeout=10)
                harness.expect(p.returncode != 0, f"{self.short(ns)} has a route to {dest}: {p.stdout.strip()}")
                out.append(f"{self.short(ns)}->{dest}: {p.stderr.strip().removeprefix('RTNETLINK answers: ')}")
        for ns, gw in ((self.a, self.a_gw), (self.b, self.b_gw)):
            r = self.ip(ns, "route", "get", HUB_IP).split()
            harness.expect("via" in r and r[r.index("via") + 1] == gw,
                           f"{self.short(ns)} routes {HUB_IP} otherwise: {' '.join(r)}")
        return "; ".join(out) + f"; both route {HUB_IP} via their link; hub ip_forward=0"

    def reach(self):
        """A TCP connection from each client to mtcall (and closed at once): the hub is reachable."""
        code = (f"import socket; s = socket.create_connection(('{HUB_IP}', {PORT}), 5); "
                f"print(s.getsockname()[0]); s.close()")
        out = []
        for ns in (self.a, self.b):
            src = run(["ip", "netns", "exec", ns, sys.executable, "-c", code]).strip()
            out.append(f"{self.short(ns)} ({src})")
        return f"{' and '.join(out)} connect to {HUB_IP}:{PORT}"


# ------------------------------------------------------------------------------------------ server
class NsServer(harness.Server):
    """`ip netns exec HUB mtcall serve --data DIR --listen 198.18.0.1:PORT --admin-listen 127.0.0.1:4431
    --test-numbers true [ARGS]`, RPC lines logged; it dies with the driver. (Test numbers are off by
    default on an address other than loopback; the clients here log in with them.)"""

    rust_log = "info,mtcall::rpc=debug"
    preexec = staticmethod(die_with_parent)

    def __init__(self, binary, ns, data, log, extra_args=()):
        super().__init__(binary, data, log, port=PORT, host=HUB_IP,
                         extra_args=["--admin-listen", ADMIN, "--test-numbers", "true", *extra_args])
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

    def metrics(self):
        """mtcall's /metrics, fetched inside the hub namespace: {name: the sum of its samples, and
        name{labels}: each sample}."""
        code = (f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                f"'http://{ADMIN}/metrics', timeout=5).read().decode())")
        text = run(["ip", "netns", "exec", self.ns, sys.executable, "-c", code])
        vals = {}
        for line in text.splitlines():
            m = re.fullmatch(r"([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?", line.strip())
            if m and not line.startswith("#"):
                try:
                    v = float(m.group(3))
                except ValueError:
                    continue
                vals[m.group(1)] = vals.get(m.group(1), 0.0) + v
                if m.group(2):
                    vals[m.group(1) + m.group(2)] = v
        return vals


class Coturn:
    """coturn's turnserver in the hub namespace: UDP/TCP on 198.18.0.1:3478, relaying from 198.18.0.1, TURN
    REST credentials (use-auth-secret), no configuration file, no TLS/DTLS, no CLI, its log on stdout. It
    dies with the driver."""

    def __init__(self, binary, ns, secret, work):
        self.binary, self.ns, self.secret, self.work = binary, ns, secret, work
        self.log = work / "coturn.log"
        self.proc = None

    def command(self):
        return ["ip", "netns", "exec", self.ns, self.binary, "-n", "-v",
                f"--listening-ip={HUB_IP}", f"--relay-ip={HUB_IP}", f"--listening-port={TURN_PORT}",
                "--use-auth-secret", f"--static-auth-secret={self.secret}", f"--realm={TURN_REALM}",
                # both clients' relayed addresses are 198.18.0.1: allow peers in the test range only
                "--allowed-peer-ip=198.18.0.0-198.19.255.255", "--denied-peer-ip=0.0.0.0-255.255.255.255",
                "--no-cli", "--no-tls", "--no-dtls", "--no-multicast-peers",
                "--log-file=stdout", "--simple-log", f"--pidfile={self.work / 'turnserver.pid'}",
                f"--db={self.work / 'turndb'}"]

    def start(self, timeout=15):
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        want = f"UDP listener opened on: {HUB_IP}:{TURN_PORT}"
        while time.monotonic() < deadline:
            text = self.text()
            if want in text and "SQLite DB connection success" in text:
                return next(line for line in text.splitlines() if "Version Coturn" in line)
            if self.proc.poll() is not None:
                raise harness.CheckFailed(f"turnserver exited {self.proc.returncode}: {' | '.join(self.tail())}")
            time.sleep(0.1)
        raise harness.CheckFailed(f"turnserver: no '{want}' within {timeout} s: {' | '.join(self.tail())}")

    def text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=8):
        return [line for line in self.text().splitlines() if line.strip(" 0:")][-n:]

    def sessions(self):
        """coturn's TURN sessions, from its log: {session id: {"user", "allocated", "refused" (401 answers
        to requests with this username), "rp", "sp" (packets the client sent and was sent, from the usage
        line logged when the allocation ends)}}."""
        out = {}
        for line in self.text().splitlines():
            m = re.search(r"session (\d+): (.*)", line)
            if not m:
                continue
            sid, rest = m.groups()
            um = re.search(r"user(?:name=)? ?<([^>]*)>", rest)
            if not um or not um.group(1):
                continue
            ses = out.setdefault(sid, {"user": um.group(1), "allocated": False, "refused": 0, "rp": 0, "sp": 0})
            if "ALLOCATE processed, success" in rest:
                ses["allocated"] = True
            elif "error 401" in rest:
                ses["refused"] += 1
            u = re.match(r"usage: .*rp=(\d+), rb=\d+, sp=(\d+)", rest)
            if u:
                ses["rp"], ses["sp"] = int(u.group(1)), int(u.group(2))
        return out

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "turnserver did not stop within 10 s of SIGTERM (killed)"
        return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


# ------------------------------------------------------------------------------------------ scenarios
@dataclass
class Expect:
    """What a phase's calls must show. p2p_allowed: the flag in each side's phoneCall. reflector: True, the
    clients are offered mtcall's reflector (198.18.0.1:4432 with a peer tag); False, no reflector at all;
    None, not checked. reflector_traffic: True, /metrics shows the reflector forwarding the call's packets;
    False, it forwarded none; None, reported only. turn_secret: the clients are offered TURN on
    198.18.0.1:3478 with REST credentials made with this secret, for usernames `EXPIRY:USER_ID`.
    turn_user: the username of a static TURN entry instead. via_turn: coturn must have relayed the call
    (allocations and usage for each side's username)."""

    p2p_allowed: bool = True
    reflector: bool | None = None
    reflector_traffic: bool | None = None
    turn_secret: str | None = None
    turn_user: str | None = None
    stun: bool = False
    via_turn: bool = False


@dataclass
class Phase:
    """One mtcall serve (a new data dir: two new users) and its calls: (caller, callee, short_g_b)."""

    name: str
    config: str | None
    args: list
    calls: list
    expect: Expect
    connects: bool = True  # False: the calls must not connect
    reach: bool = False  # check first that both clients reach the hub (isolated shape)


@dataclass
class Scenario:
    name: str
    shape: type
    phases: list = field(default_factory=list)
    coturn: bool = False


P2P_NEVER = '[calls]\np2p = "never"\n'


def turn_config(secret):
    return (P2P_NEVER + f'\n[relay.turn]\nsecret = "{secret}"\nservers = ["{HUB_IP}:{TURN_PORT}"]\n'
            f'stun = true\ncredential_ttl_secs = {TURN_TTL}\n')


def scenarios(args, relay_build):
    """The scenarios by name. relay_build: the binary knows --no-relay (it has the built-in reflector)."""
    plain = [(("a", "b"), ("b", "a"))[i % 2] + (False,) for i in range(args.rounds)]
    if not args.no_short_g_b:
        plain.append(("a", "b", True))
    static_user = f"{int(time.time()) + TURN_TTL}:mtcall-media"
    static = (f'[[calls.webrtc]]\nid = 1\nip = "{HUB_IP}"\nport = {TURN_PORT}\nturn = true\nstun = false\n'
              f'username = "{static_user}"\npassword = "{turn_password(TURN_SECRET, static_user)}"\n')
    return {
        "p2p": Scenario("p2p", Segment, [Phase("", None, [], plain, Expect(p2p_allowed=True))]),
        "reflector": Scenario("reflector", Isolated, [
            Phase("", P2P_NEVER, [], [("a", "b", False)], reach=True,
                  expect=Expect(p2p_allowed=False, reflector=True, reflector_traffic=True))]),
        "turn": Scenario("turn", Isolated, coturn=True, phases=[
            Phase("", turn_config(TURN_SECRET), ["--no-relay"], [("a", "b", False)], reach=True,
                  expect=Expect(p2p_allowed=False, reflector=False, reflector_traffic=False,
                                turn_secret=TURN_SECRET, stun=True, via_turn=True)),
            Phase("wrong secret", turn_config(WRONG_SECRET), ["--no-relay"], [("b", "a", False)], connects=False,
                  expect=Expect(p2p_allowed=False, reflector=False, turn_secret=WRONG_SECRET, stun=True))]),
        "defaults": Scenario("defaults", Isolated, [
            Phase("", None, [], [("a", "b", False)], reach=True,
                  expect=Expect(p2p_allowed=True, reflector=True, reflector_traffic=True))]),
        "turn-static": Scenario("turn-static", Isolated, coturn=True, phases=[
            Phase("", static, ["--no-relay"] if relay_build else [], [("b", "a", False)], reach=True,
                  expect=Expect(p2p_allowed=True, reflector=False if relay_build else None,
                                reflector_traffic=False if relay_build else None, turn_user=static_user,
                                via_turn=True))]),
    }


# ------------------------------------------------------------------------------------------ the test
class Run:
    def __init__(self, args):
        self.args = args
        self.tally = harness.Tally(hints=KNOWN_HINTS)
        self.tmp = Path(tempfile.mkdtemp(prefix="mtcall-media-"))
        self.t0 = time.monotonic()
        self.net = None  # the scenario's namespaces, server, coturn and agents (for the watchdog)
        self.server = None
        self.coturn = None
        self.agents = {}
        self.users = {}  # name -> {"phone", "user_id"}
        self.shown = []  # (server, agents) of the phases with a failed check: their logs' tails at the end
        self.dh_lengths = []  # (len g_a, len g_b) of each confirmed call
        self.timings = []
        self.call_no = 0
        self.dying = False
        self.relay_build = False

    def agent(self, name, ns, work):
        wd = work / f"work-{name}"
        wd.mkdir()
        cmd = ["ip", "netns", "exec", ns, self.args.python, "-u", self.args.agent,
               "--server", HUB_IP, "--port", str(PORT), "--key", str(work / "data" / "server.pub"),
               "--work", str(wd)]
        env = harness.client_env()
        env["PYTHONUNBUFFERED"] = "1"
        return harness.JsonLines(f"agent {name}", cmd, env, work / f"agent-{name}.log", op_timeout=20)

    def main(self):
        s = harness.Steps(self.tally)
        wanted = self.args.scenarios

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
            if any(n in COTURN_SCENARIOS for n in wanted):
                harness.expect(self.args.turnserver and os.access(self.args.turnserver, os.X_OK),
                               "turnserver not found (Debian's coturn package; scripts/test installs it)")
            serve_help = run([self.args.mtcall, "serve", "--help"], check=False)
            self.relay_build = "--no-relay" in serve_help
            stale = Namespaces.remove_stale()
            return (f"mtcall binary {harness.describe_binary(self.args.mtcall)}"
                    f"{'' if self.relay_build else ' (without --no-relay: no built-in reflector)'}; "
                    f"scenarios {', '.join(wanted)}" + (f"; removed stale namespaces {stale}" if stale else ""))

        specs = scenarios(self.args, self.relay_build)
        for name in wanted:
            if s.broken:
                self.tally.fail(name, f"not run ({s.broken})")
                continue
            t, f0, p0 = time.monotonic(), self.tally.failed, self.tally.passed
            self.scenario(specs[name])
            self.timings.append(f"{name} {time.monotonic() - t:.1f}s ({self.tally.passed - p0} passed, "
                                f"{self.tally.failed - f0} failed)")
        self.tally.info("scenarios: " + "; ".join(self.timings))
        short = [x for x in self.dh_lengths if any(v is not None and v < 256 for v in x)]
        if self.dh_lengths:
            self.tally.info(f"{len(self.dh_lengths)} calls confirmed; with a g_a/g_b shorter than 256 bytes "
                            f"(ntgcalls drops leading zero bytes): {len(short)} {short if short else ''}")

    def scenario(self, sc):
        net = self.net = sc.shape(sc.name)
        s = harness.Steps(self.tally, title=sc.name)
        work = self.tmp / sc.name
        work.mkdir()
        try:
            @s("network namespaces")
            def _():
                shape = net.up()
                # nothing else: no namespace has an address or a route outside 198.18.0.0/15
                for ns in net.all():
                    net.confined(ns)
                return f"{shape}; no IPv6, no default route, every address and route loopback or in {RANGE}"

            if sc.shape is Isolated:
                @s("a and b cannot reach each other")
                def _():
                    return net.isolation()

            if sc.coturn:
                @s("coturn in the hub namespace")
                def _():
                    self.coturn = Coturn(self.args.turnserver, net.hub, TURN_SECRET, work)
                    version = self.coturn.start()
                    return (f"{version.strip(' 0:')}, on {HUB_IP}:{TURN_PORT} (UDP and TCP), relaying from {HUB_IP}, "
                            f"use-auth-secret, realm {TURN_REALM}")

            for ph in sc.phases:
                title = f"{sc.name} / {ph.name}" if ph.name else sc.name
                if s.broken:
                    self.tally.fail(title, f"not run ({s.broken})")
                    continue
                self.phase(title, ph, net, work / (re.sub(r"\W+", "-", ph.name) or "main"))
        finally:
            if self.coturn is not None:
                why = self.coturn.stop()
                if why:
                    self.tally.fail(f"{sc.name} / coturn stops", why)
                self.coturn = None
            if net.made and len(net.made) == 3:
                # still nothing but 198.18.0.0/15 (no route or address was added during the run), so every
                # packet sent went there or to loopback. "no route" counts sends the kernel refused for want
                # of a route: WebRTC's UDP connect() to a public DNS address, which only asks the kernel
                # for the default source address and sends nothing, fails that way (3 per call)
                try:
                    for ns in net.all():
                        net.confined(ns)
                    c = {net.short(ns): net.counters(ns) for ns in net.all()}
                    self.tally.ok(f"{sc.name} / traffic stayed in {RANGE}", "IPv4 packets sent: " + ", ".join(
                        f"{n} {v['out']} (no route: {v['no_route']})" for n, v in c.items()))
                except (harness.CheckFailed, subprocess.SubprocessError, KeyError, IndexError, ValueError) as e:
                    self.tally.fail(f"{sc.name} / traffic stayed in {RANGE}", e)
            left = net.down()
            if left:
                self.tally.fail(f"{sc.name} / namespaces removed", ", ".join(left))
            else:
                self.tally.ok(f"{sc.name} / namespaces removed")
            self.net = None

    def phase(self, title, ph, net, work):
        work.mkdir()
        s = harness.Steps(self.tally, title=title)
        failed0 = self.tally.failed
        server = None
        try:
            @s("mtcall serve in the hub namespace")
            def _():
                nonlocal server
                (work / "data").mkdir()
                extra = list(ph.args)
                if ph.config is not None:
                    (work / "mtcall.toml").write_text(ph.config)
                    extra += ["--config", str(work / "mtcall.toml")]
                server = self.server = NsServer(self.args.mtcall, net.hub, work / "data", work / "server.log",
                                                extra)
                banner = server.start()
                harness.expect((work / "data" / "server.pub").exists(), "no server.pub")
                conf = (" ".join(f"{k}={v}" for k, v in re.findall(r'^(\w+) = (.*)$', ph.config, re.M)
                                 if k not in ("password",)) if ph.config else "no configuration file")
                return (" | ".join(line.strip() for line in banner.splitlines() if line.strip())
                        + f"; {conf}" + (f"; {' '.join(ph.args)}" if ph.args else ""))

            if ph.reach:
                @s("a and b reach the hub")
                def _():
                    return net.reach()

            @s("agents ready")
            def _():
                self.agents["a"] = self.agent("a", net.a, work)
                self.agents["b"] = self.agent("b", net.b, work)
                layers = {n: ag.wait_ready(60).get("layer") for n, ag in self.agents.items()}
                return f"Telethon layer {layers['a']}"

            @s("login")
            def _():
                phones = {"a": "9996621001", "b": "9996631002"}  # codes 22222, 33333
                futs = {n: self.agents[n].send("login", phone=p, first=f"Tone{n.upper()}")
                        for n, p in phones.items()}
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

            for i, (caller, callee, short_g_b) in enumerate(ph.calls):
                n = i + 1
                name = f"{title} / call {n}"
                if s.broken:
                    self.tally.fail(name, f"not run ({s.broken})")
                    continue
                f_caller, f_callee = ROUND_FREQS[self.call_no % len(ROUND_FREQS)]
                self.call_no += 1
                if ph.connects:
                    self.round(title, n, caller, callee, f_caller, f_callee, ph.expect, short_g_b=short_g_b)
                else:
                    self.failed_round(title, n, caller, callee, f_caller, f_callee, ph.expect)

            @s("RPCs the media clients used")
            def _():
                rpcs = server.rpcs()
                methods = {}
                for m, r in rpcs:
                    methods.setdefault(m, {}).setdefault(r, 0)
                    methods[m][r] += 1
                self.tally.info(f"{title}: server RPCs: " + ", ".join(
                    f"{m} {' '.join(f'{r}x{c}' for r, c in sorted(rs.items()))}" for m, rs in sorted(methods.items())))
                missing = EXPECTED_RPCS - set(methods)
                harness.expect(not missing, f"never called: {sorted(missing)}")
                # (Telethon's connect() probes users.getUsers before login: 401 AUTH_KEY_UNREGISTERED is normal)
                errors = [f"{m} {r}x{c}" for m, rs in methods.items() for r, c in rs.items()
                          if r != "ok" and (m, r) != ("users.getUsers", "AUTH_KEY_UNREGISTERED")]
                harness.expect(not errors, f"RPC errors: {errors}")
                return f"{len(rpcs)} RPC lines; {', '.join(sorted(EXPECTED_RPCS))} all called; no errors"
        finally:
            agents = dict(self.agents)
            for name, ag in self.agents.items():
                try:
                    ag.close()
                except Exception as e:  # noqa: BLE001
                    self.tally.info(f"agent {name} close: {e}")
            self.agents = {}
            if server is not None:
                stopped = server.stop()
                if stopped:
                    self.tally.fail(f"{title} / server stops cleanly", stopped)
                else:
                    self.tally.ok(f"{title} / server stops cleanly")
            self.server = None
            if self.tally.failed > failed0:
                self.shown.append((title, server, agents))

    # ---------------------------------------------------------------------------------------- one call
    def offers(self, exp, caller, callee, sa, sb):
        """Checks what each side's ntgcalls was connected with (its phoneCall's p2p_allowed and connections,
        as py-tgcalls handed them over) against exp; a description."""
        ids = {caller: self.users[caller]["user_id"], callee: self.users[callee]["user_id"]}
        out, tags = [], []
        for who, st, peer in ((caller, sa, ids[callee]), (callee, sb, ids[caller])):
            got = st["servers"].get(peer)
            harness.expect(got is not None, f"{who}: ntgcalls' connect_p2p was not seen")
            harness.expect(got["p2p_allowed"] == exp.p2p_allowed,
                           f"{who}'s call has p2p_allowed={got['p2p_allowed']}, want {exp.p2p_allowed}")
            refl = [x for x in got["servers"] if x["kind"] == "reflector"]
            web = [x for x in got["servers"] if x["kind"] == "webrtc"]
            if exp.reflector:
                ours = [x for x in refl if x["ip"] == HUB_IP and x["port"] == RELAY_PORT and x["peer_tag"]]
                harness.expect(ours, f"{who} was not offered the reflector {HUB_IP}:{RELAY_PORT}: {got['servers']}")
                tags.append(ours[0]["peer_tag"])
            elif exp.reflector is False:
                harness.expect(not refl, f"{who} was offered reflectors: {refl}")
            desc = [f"reflector {x['ip']}:{x['port']} tag {len(x['peer_tag']) // 2} bytes"
                    + (" tcp" if x["tcp"] else "") for x in refl]
            turn = [x for x in web if x["turn"]]
            if exp.turn_secret or exp.turn_user:
                harness.expect(any(x["ip"] == HUB_IP and x["port"] == TURN_PORT for x in turn),
                               f"{who} was not offered TURN on {HUB_IP}:{TURN_PORT}: {got['servers']}")
                for x in turn:
                    if exp.turn_user:
                        harness.expect(x["username"] == exp.turn_user, f"{who}'s TURN username {x['username']!r}")
                        continue
                    m = re.fullmatch(r"(\d+):(\d+)", x["username"] or "")
                    harness.expect(m and m.group(2) == ids[who],
                                   f"{who}'s TURN username {x['username']!r} is not EXPIRY:{ids[who]}")
                    left = int(m.group(1)) - time.time()
                    harness.expect(0 < left <= TURN_TTL + 120, f"{who}'s TURN credentials expire in {left:.0f} s")
                    harness.expect(x["password"] == turn_password(exp.turn_secret, x["username"]),
                                   f"{who}'s TURN password is not base64 HMAC-SHA1(secret, {x['username']!r})")
            if exp.stun:
                harness.expect(any(x["stun"] and x["ip"] == HUB_IP and x["port"] == TURN_PORT for x in web),
                               f"{who} was not offered STUN on {HUB_IP}:{TURN_PORT}: {got['servers']}")
            desc += [("TURN" if x["turn"] else "") + ("+" if x["turn"] and x["stun"] else "")
                     + ("STUN" if x["stun"] else "") + f" {x['ip']}:{x['port']}"
                     + (f" user {x['username']}" if x["username"] else "") for x in web]
            out.append(f"{who}: p2p_allowed={got['p2p_allowed']}, " + (", ".join(desc) or "no relays"))
        if len(tags) == 2:
            out.append("the two peer tags " + ("differ" if tags[0] != tags[1] else "are the same"))
        return "; ".join(out)

    def metrics_or_error(self):
        """mtcall's /metrics, or why they could not be read (a failure of the reflector check, not of the
        step that reads them)."""
        try:
            return self.server.metrics()
        except (harness.CheckFailed, subprocess.SubprocessError, OSError) as e:
            return f"/metrics: {e}"

    def relay_metrics(self, exp, before, after, listen):
        """Checks the reflector's counters over a call against exp.reflector_traffic; a description."""
        for m in (before, after):
            harness.expect(not isinstance(m, str), m)
        def d(name):
            return after.get(name, 0.0) - before.get(name, 0.0)

        pk, by = d("mtcall_relay_forwarded_packets_total"), d("mtcall_relay_forwarded_bytes_total")
        dropped = [f"{k.removeprefix('mtcall_relay_dropped_total')} +{d(k):.0f}" for k in sorted(after)
                   if k.startswith("mtcall_relay_dropped_total{") and d(k)]
        desc = (f"mtcall_relay_forwarded_packets_total +{pk:.0f}, _bytes_total +{by:.0f}, "
                f"mtcall_relay_calls {after.get('mtcall_relay_calls', 0):.0f} during the call, "
                f"mtcall_relay_dropped_total +{d('mtcall_relay_dropped_total'):.0f}"
                + (f" ({', '.join(dropped)})" if dropped else ""))
        if exp.reflector_traffic:
            present = "mtcall_relay_forwarded_packets_total" in after
            harness.expect(present, "no mtcall_relay_forwarded_packets_total in /metrics")
            # ntgcalls sends about 30 packets a second each way (audio and RTCP): 2 x 20 a second at least
            need = int(listen * 40)
            harness.expect(pk >= need, f"the reflector forwarded {pk:.0f} packets (want >= {need}): {desc}")
        elif exp.reflector_traffic is False:
            harness.expect(pk == 0, f"the reflector forwarded packets: {desc}")
        return desc

    def round(self, title, n, caller, callee, f_caller, f_callee, exp, short_g_b=False):
        s = harness.Steps(self.tally, title=f"{title} / call {n} {caller}->{callee}"
                                            + (", 255-byte g_b" if short_g_b else ""))
        A, B = self.agents[caller], self.agents[callee]
        a_id, b_id = self.users[caller]["user_id"], self.users[callee]["user_id"]
        freqs = [f_caller, f_callee]
        ctx = {}
        listen = self.args.listen_secs

        @s("connected")
        def _():
            # what the agents saw before this call: the checks below look only at what came after
            ctx["mark"] = {caller: len(A.do("state")["phone_calls"]), callee: len(B.do("state")["phone_calls"])}
            ctx["metrics"] = self.metrics_or_error()
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
            ctx["metrics_after"] = self.metrics_or_error()
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
            harness.expect(pc["p2p_allowed"] == exp.p2p_allowed,
                           f"phoneCall with p2p_allowed={pc['p2p_allowed']}, want {exp.p2p_allowed}: {pc}")
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
            kinds = {}
            for k in pc.get("connection_kinds", []):
                kinds[k] = kinds.get(k, 0) + 1
            return (f"signalling {caller}->{callee} {sa['sig_out']}, {callee}->{caller} {sb['sig_out']} messages; "
                    f"phoneCall {'' if pc['p2p_allowed'] else 'without '}p2p_allowed, {pc['connections']} "
                    f"connections{' (' + ', '.join(f'{c} {k}' for k, c in kinds.items()) + ')' if kinds else ''}, "
                    f"versions {pc['library_versions']}; g_a {pc['g_a_or_b_len']} bytes, g_b {g_b_len} bytes"
                    + (f"; emojis {ea}" if ea else ""))

        @s("relays offered")
        def _():
            return self.offers(exp, caller, callee, *ctx["state"])

        @s("mtcall's reflector" + (" carried the call" if exp.reflector_traffic
                                   else " idle" if exp.reflector_traffic is False else " (/metrics)"))
        def _():
            return self.relay_metrics(exp, ctx["metrics"], ctx["metrics_after"], listen)

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

        if exp.via_turn:
            @s("coturn relayed the call")
            def _():
                return self.turn_used(exp, caller, callee, ctx["state"])

        if s.broken:  # leave no call up for the next round: both hang up, errors ignored
            self.hang_up_quietly(A, B, a_id, b_id)

    def turn_used(self, exp, caller, callee, states):
        """coturn's log shows an allocation for each side's TURN username, and that the call's packets went
        through them; what ntgcalls was offered is in states (the agents' state after connecting)."""
        users = self.turn_users(caller, callee, states)
        deadline = time.monotonic() + 5  # the usage lines come when the clients release the allocations
        while True:
            seen = self.coturn.sessions()
            per = {who: {sid: v for sid, v in seen.items() if v["user"] in us} for who, us in users.items()}
            if all(any(v["allocated"] and v["rp"] for v in ses.values()) for ses in per.values()) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        out = []
        for who, ses in per.items():
            harness.expect(any(v["allocated"] for v in ses.values()),
                           f"coturn has no allocation for {who}'s {users[who]}: {seen}")
            out.append(f"{who} ({', '.join(users[who])}): sessions " + ", ".join(
                f"{v['user'] if len(set(users[who])) > 1 else ''}{'allocated' if v['allocated'] else 'refused'} "
                f"{v['rp']} packets in, {v['sp']} out" for v in ses.values()))
        relayed = {sid: v for ses in per.values() for sid, v in ses.items()}
        total = sum(v["rp"] for v in relayed.values())
        need = int(self.args.listen_secs * 40)
        harness.expect(total >= need, f"coturn relayed {total} packets (want >= {need}): {'; '.join(out)}")
        return f"{total} packets relayed; " + "; ".join(out)

    def turn_users(self, caller, callee, states):
        """The TURN usernames each side was offered."""
        ids = {caller: self.users[caller]["user_id"], callee: self.users[callee]["user_id"]}
        users = {}
        for who, other, st in ((caller, callee, states[0]), (callee, caller, states[1])):
            got = st["servers"].get(ids[other]) or {"servers": []}
            users[who] = [x["username"] for x in got["servers"] if x["kind"] == "webrtc" and x["turn"]]
        return users

    def failed_round(self, title, n, caller, callee, f_caller, f_callee, exp):
        """A call that must not connect (the TURN credentials are wrong): both plays give up, nothing is
        heard, coturn answered the clients' allocations with 401 and allocated nothing for them."""
        s = harness.Steps(self.tally, title=f"{title} / call {n} {caller}->{callee}")
        A, B = self.agents[caller], self.agents[callee]
        a_id, b_id = self.users[caller]["user_id"], self.users[callee]["user_id"]
        ctx = {}

        @s("does not connect")
        def _():
            t0 = time.monotonic()
            call = A.send("call", user_id=b_id, freq=f_caller, seconds=TONE_SECS, timeout=FAIL_TIMEOUT)
            inc = B.do("wait_incoming", timeout=20, op_timeout=25)
            harness.expect(inc["user_id"] == a_id, f"incoming call from {inc['user_id']}, not {a_id}")
            ans = B.send("answer", user_id=a_id, freq=f_callee, seconds=TONE_SECS, timeout=FAIL_TIMEOUT)
            out = []
            for who, ag, fut in ((callee, B, ans), (caller, A, call)):
                try:
                    r = ag.result(fut, FAIL_TIMEOUT + 15)
                except harness.AgentError as e:
                    out.append(f"{who} gave up after {time.monotonic() - t0:.1f} s: "
                               f"{e.error.get('class')} {e.error.get('text')}")
                    continue
                raise harness.CheckFailed(f"{who} connected: {r}")
            ctx["state"] = (A.do("state"), B.do("state"))
            return "; ".join(out)

        @s("no audio arrives")
        def _():
            out = []
            for who, ag, peer, st in ((caller, A, b_id, ctx["state"][0]), (callee, B, a_id, ctx["state"][1])):
                frames = ag.do("count", user_id=peer)["frames"]
                states = st["conn"].get(peer, [])
                harness.expect(frames == 0 and "CONNECTED" not in states,
                               f"{who}: {frames} frames, connection states {states}")
                out.append(f"{who}: 0 frames, states {states}")
            return "; ".join(out)

        @s("relays offered")
        def _():
            return self.offers(exp, caller, callee, *ctx["state"])

        @s("coturn refused the credentials")
        def _():
            users = self.turn_users(caller, callee, ctx["state"])
            seen = self.coturn.sessions()
            out = []
            for who, us in users.items():
                ses = [v for v in seen.values() if v["user"] in us]
                refused = sum(v["refused"] for v in ses)
                harness.expect(not any(v["allocated"] for v in ses), f"coturn allocated for {who}'s {us}: {seen}")
                harness.expect(refused > 0, f"coturn did not refuse {who}'s {us}: {seen}")
                out.append(f"{who} ({', '.join(us)}): 401 Unauthorized x{refused}, {len(ses)} session(s), "
                           f"no allocation")
            return "; ".join(out)

        self.hang_up_quietly(A, B, a_id, b_id)

    @staticmethod
    def hang_up_quietly(A, B, a_id, b_id):
        for ag, peer in ((A, b_id), (B, a_id)):
            try:
                ag.do("hangup", user_id=peer, op_timeout=10)
            except harness.CheckFailed:
                pass

    # ---------------------------------------------------------------------------------------- the end
    def report(self):
        """After a failure: the tails of the logs of the phases that had one."""
        for title, server, agents in self.shown:
            for ag in agents.values():
                tail = ag.stderr_tail()
                self.tally.block(f"{title}: {ag.lib} stderr ({ag.log_path}, last {len(tail)} lines)", tail, "!")
            if server is not None:
                self.tally.block(f"{title}: server log tail ({server.log})", server.tail(40), ">")

    def emergency(self, why):
        """The watchdog or a signal: kill the children, delete the namespaces, exit 1."""
        if self.dying:
            return
        self.dying = True
        self.tally.fail("run", why)
        for ag in self.agents.values():
            ag.kill(why)
        for p in (self.server, self.coturn):
            if p is not None:
                p.kill()
        if self.net is not None:
            left = self.net.down()
            if left:
                self.tally.fail("namespaces removed", ", ".join(left))
        self.tally.info(f"files kept in {self.tmp}")
        self.tally.summary()
        os._exit(1)


def main():
    ap = harness.arg_parser(__doc__)
    ap.add_argument("--python", required=True, help="python of a venv with requirements.txt installed")
    ap.add_argument("--scenario", default="all",
                    help=f"comma-separated, of {', '.join(SCENARIOS)} or all (= {','.join(ALL)}; the default)")
    ap.add_argument("--rounds", type=int, default=2, help="p2p: plain calls, alternating direction (default 2)")
    ap.add_argument("--no-short-g-b", action="store_true",
                    help="p2p: skip the last call, whose callee sends a g_b with its leading zero byte dropped")
    ap.add_argument("--listen-secs", type=float, default=4.0, help="audio recorded per call (default 4)")
    ap.add_argument("--timeout", type=float, default=OVERALL_TIMEOUT, help="the whole run, seconds")
    ap.add_argument("--turnserver", default=shutil.which("turnserver") or "/usr/bin/turnserver",
                    help="coturn's turnserver (default: on PATH)")
    ap.add_argument("--agent", default=str(HERE / "agent.py"), help=argparse.SUPPRESS)  # a wrapped agent
    args = harness.parse_args(ap)
    args.python = os.path.abspath(args.python)
    names = []
    for n in args.scenario.split(","):
        n = n.strip()
        for m in (ALL if n == "all" else [n]):
            if m not in SCENARIOS:
                ap.error(f"unknown scenario {m!r}: {', '.join(SCENARIOS)} or all")
            if m not in names:
                names.append(m)
    args.scenarios = names
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
        if r.net is not None:
            r.net.down()
    finally:
        timer.cancel()
    if r.tally.failed:
        r.report()
    harness.finish(r.tally, r.tmp, args.keep, r.t0)


if __name__ == "__main__":
    main()
