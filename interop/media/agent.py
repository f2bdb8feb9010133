#!/usr/bin/env python3
"""Media-call agent: one Telethon userbot with py-tgcalls/ntgcalls, driven in JSON lines by run.py, that
places or answers a real private (one-to-one) WebRTC call through mtcall, sends a generated sine tone
as its microphone and records the audio frames the other side sends.

Usage: VENV/bin/python agent.py --server ADDR --port PORT --key DATA_DIR/server.pub --work DIR

Protocol (as interop/calls/telethon_agent.py and interop/common/harness.py's JsonLines): one JSON object
per line.
  stdout: {"ready": true, ...} once, then {"id": N, "ok": true, "result": ...} or
          {"id": N, "ok": false, "error": {"rpc": NAME|null, "code": N|null, "class": str, "text": str}}
  stdin : {"id": N, "op": OP, ...}; requests run concurrently. Ops:
    login {phone, first}         sign in (or up) with the test code; starts PyTgCalls
    resolve {phone}              contacts.resolvePhone: the user id (and Telethon caches the entity)
    call {user_id, freq, seconds, timeout}
                                 places the call playing a FREQ Hz tone; returns once WebRTC connected
    wait_incoming {timeout}      the next incoming call (py-tgcalls' INCOMING_CALL): the caller's id
    answer {user_id, freq, seconds, timeout, short_g_b}
                                 answers it playing a FREQ Hz tone; returns once connected. With
                                 short_g_b, g_b is one whose first byte is zero, which ntgcalls sends as
                                 255 bytes (see ShortGB)
    count {user_id}              the number of frames received from that call so far
    frames {user_id}             what was received from that call so far: frame count, sizes, rate,
                                 dominant frequency, power at given frequencies ({freqs: [..]})
    state {}                     connection changes, signalling counts, emojis, discards seen, and the
                                 relays and p2p_allowed each call was connected with
    hangup {user_id}             py-tgcalls leave_call (phone.discardCall, reason hangup)
    wait_discarded {user_id, timeout}
                                 waits until the other side's phoneCallDiscarded was seen
    exit
The tone is 16-bit little-endian mono PCM at 48 kHz in a file that ntgcalls reads directly
(MediaSource.FILE, no ffmpeg); the received audio comes as raw frames (MediaSource.EXTERNAL playback,
py-tgcalls' StreamFrames updates). The protocol loop is ../common/agent_loop.py's.
"""

import argparse
import asyncio
import contextlib
import faulthandler
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import agent_loop  # noqa: E402 - interop/common/agent_loop.py: the protocol

agent_loop.take_stdout()  # before ntgcalls is loaded: what it (and WebRTC) writes to fd 1 goes to stderr

from ntgcalls import ConnectionState, MediaSource  # noqa: E402
from pytgcalls import PyTgCalls  # noqa: E402
from pytgcalls import pytgcalls_session  # noqa: E402
from pytgcalls.exceptions import NotInCallError  # noqa: E402
from pytgcalls.types import CallConfig, ChatUpdate, StreamFrames, UpdatedEmojis  # noqa: E402
from pytgcalls.types.raw import AudioParameters, AudioStream, Stream  # noqa: E402
from telethon import TelegramClient, connection, events  # noqa: E402
from telethon.crypto import rsa as trsa  # noqa: E402
from telethon.sessions import StringSession  # noqa: E402
from telethon.tl import alltlobjects, functions, types  # noqa: E402

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
RATE = 48000  # Hz, both the tone file and the recorded frames
CHANNELS = 1

# py-tgcalls' start() fetches its latest version number from GitHub; nothing may leave this machine
# (and the namespaces have no route out anyway): mark the notice as shown, which skips the fetch.
pytgcalls_session.PyTgCallsSession.notice_displayed = True


# ------------------------------------------------------------------------------------------ audio
def write_tone(path, freq, seconds, rate=RATE, amplitude=0.5):
    """A sine of freq Hz, s16le mono, with 20 ms fades so it starts and ends without a click."""
    n = int(seconds * rate)
    fade = int(0.02 * rate)
    w = 2 * math.pi * freq / rate
    peak = amplitude * 32767
    out = bytearray(2 * n)
    for i in range(n):
        g = min(1.0, i / fade, (n - 1 - i) / fade)
        struct.pack_into("<h", out, 2 * i, int(peak * g * math.sin(w * i)))
    with open(path, "wb") as f:
        f.write(out)
    return n


def samples_of(pcm):
    n = len(pcm) // 2
    return struct.unpack(f"<{n}h", pcm[: 2 * n])


def goertzel_power(x, freq, rate=RATE):
    """Normalised power of x at freq (a full-scale sine there gives about 0.25)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    p = s1 * s1 + s2 * s2 - k * s1 * s2
    return p / (len(x) ** 2 * 32768.0 ** 2) if x else 0.0


def peak(x, lo, hi, step):
    """The frequency in [lo, hi] (step apart) where x has the most power."""
    n = int(round((hi - lo) / step))
    return max((lo + i * step for i in range(n + 1)), key=lambda f: goertzel_power(x, f))


def analyse(pcm, freqs=()):
    """Level and spectrum of received s16le mono PCM, on 1 s from the middle: the dominant frequency
    between 100 and 4000 Hz, the power at each of freqs, the share of the signal's energy at the dominant
    frequency, and the zero-crossing estimate. The dominant frequency is found in three passes whose
    window is short enough that a tone between two probes is not missed (a window of T seconds has its
    main lobe 1/T Hz either side): 10 Hz steps on 25 ms, then 1 Hz steps on 0.2 s, then 0.1 Hz on 1 s."""
    x = samples_of(pcm)
    res = {"samples": len(x)}
    if len(x) < RATE:
        res["error"] = f"only {len(x)} samples"
        return res
    mid = len(x) // 2
    win = x[mid - RATE // 2: mid + RATE // 2]
    energy = sum(v * v for v in win) / len(win)
    res["rms"] = round(math.sqrt(energy), 1)
    f = peak(win[: RATE // 40], 100, 4000, 10)
    f = peak(win[: RATE // 5], f - 12, f + 12, 1)
    f = round(peak(win, f - 1.5, f + 1.5, 0.1), 1)
    p = goertzel_power(win, f)
    res["dominant_hz"] = f
    res["dominant_power"] = p
    # a pure sine of amplitude A has mean square A^2/2 and (normalised) Goertzel power A^2/4/32768^2
    res["tone_share"] = round(2 * p * 32768.0 ** 2 / energy, 3) if energy else 0.0
    res["power_at"] = {str(f): goertzel_power(win, f) for f in freqs}
    crossings = sum(1 for a, b in zip(win, win[1:]) if (a < 0) != (b < 0))
    res["zero_crossing_hz"] = round(crossings / 2 / (len(win) / RATE), 1)
    res["nonsilent_share"] = round(sum(1 for v in x if abs(v) > 300) / len(x), 3)
    return res


class Received:
    """The frames of one call as they arrive."""

    def __init__(self):
        self.count = 0
        self.bytes = 0
        self.sizes = {}
        self.ssrcs = set()
        self.first = self.last = None
        self.pcm = bytearray()
        self.devices = set()

    def add(self, update):
        now = time.monotonic()
        for fr in update.frames:
            data = fr.frame
            self.count += 1
            self.bytes += len(data)
            self.sizes[len(data)] = self.sizes.get(len(data), 0) + 1
            self.ssrcs.add(fr.ssrc)
            if len(self.pcm) < 60 * RATE * 2:  # keep at most a minute
                self.pcm += data
        self.devices.add(str(update.device))
        self.first = self.first or now
        self.last = now

    def summary(self):
        span = (self.last - self.first) if self.first else 0.0
        samples = self.bytes // 2 // CHANNELS
        return {
            "frames": self.count,
            "bytes": self.bytes,
            "frame_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
            "samples_per_frame": (self.bytes // self.count // 2 // CHANNELS) if self.count else 0,
            "ssrcs": len(self.ssrcs),
            "devices": sorted(self.devices),
            "seconds": round(span, 2),
            "frames_per_second": round(self.count / span, 1) if span > 0 else 0,
            "measured_rate": round(samples / span) if span > 0 else 0,
        }


def describe_server(s):
    """An ntgcalls RTCServer as JSON: a Telegram reflector (peer_tag set) or a TURN/STUN server. The TURN
    password is kept (test credentials only): the driver checks it against the shared secret."""
    d = {"id": s.id, "ip": s.ipv4, "ipv6": s.ipv6, "port": s.port, "turn": bool(s.turn), "stun": bool(s.stun),
         "tcp": bool(s.tcp)}
    if s.peer_tag:
        d.update(kind="reflector", peer_tag=bytes(s.peer_tag).hex())
    else:
        d.update(kind="webrtc", username=s.username, password=s.password)
    return d


# ------------------------------------------------------------------------------------------ short g_b
class ShortGB:
    """The NTgCalls binding, except that for an incoming call in .want, init_exchange is redone (a fresh
    random b each time: ntgcalls mixes its own entropy in) until ntgcalls' g_b is shorter than 256
    bytes: a value whose first byte is zero, which ntgcalls sends without it (about 1 in 256, so a few
    hundred tries, well under a second). This is the one case of the known leading-zero gap that a test
    can bring about on purpose; the caller's g_a is only known after the exchange, so a short g_a stays
    a matter of chance (also about 1 in 256). It also notes what each call was connected with
    (connect_p2p)."""

    def __init__(self, binding):
        self._b = binding
        self.want = set()
        self.media = {}
        self.tries = {}
        self.servers = {}  # chat id -> what ntgcalls was handed for the call: p2p_allowed and the servers

    def __getattr__(self, name):
        return getattr(self._b, name)

    async def connect_p2p(self, chat_id, servers, versions, p2p_allowed, *rest):
        """Notes the relays (RTCServer: reflectors and TURN/STUN) and p2p_allowed that py-tgcalls took from
        this side's phoneCall (the callee's push or the caller's phone.confirmCall result), then connects."""
        self.servers[int(chat_id)] = {"p2p_allowed": bool(p2p_allowed), "versions": list(versions),
                                      "servers": [describe_server(s) for s in servers]}
        return await self._b.connect_p2p(chat_id, servers, versions, p2p_allowed, *rest)

    async def set_stream_sources(self, chat_id, mode, media):
        from ntgcalls import StreamMode
        if mode == StreamMode.CAPTURE:
            self.media[chat_id] = media
        return await self._b.set_stream_sources(chat_id, mode, media)

    async def init_exchange(self, chat_id, dh, g_a_hash):
        from ntgcalls import StreamMode
        r = await self._b.init_exchange(chat_id, dh, g_a_hash)
        if chat_id not in self.want or g_a_hash is None:
            return r
        self.want.discard(chat_id)
        tries = 1
        while len(r) >= 256:
            if tries >= 20000:
                raise RuntimeError(f"no g_b shorter than 256 bytes in {tries} tries")
            await self._b.stop(chat_id)
            await self._b.create_p2p_call(chat_id)
            r = await self._b.init_exchange(chat_id, dh, g_a_hash)
            tries += 1
        if tries > 1 and chat_id in self.media:
            await self._b.set_stream_sources(chat_id, StreamMode.CAPTURE, self.media[chat_id])
        self.tries[chat_id] = (tries, len(r))
        return r


# ------------------------------------------------------------------------------------------ agent
class Agent:
    def __init__(self, args):
        self.args = args
        self.client = None
        self.calls = None
        self.user_id = None
        self.incoming = asyncio.Queue()
        self.received = {}  # peer user id -> Received
        self.discarded = {}  # peer user id -> asyncio.Event
        self.events = []  # what happened, in order, for "state"
        self.conn = {}  # peer -> [state names]
        self.emojis = {}
        self.sig_out = 0
        self.sig_in = 0
        self.phone_calls = []  # PhoneCall constructors seen, with the fields py-tgcalls uses
        self.connecting = {}  # peer -> the task of a call or answer that is not connected yet

    def note(self, what, **kw):
        self.events.append(dict(kw, what=what, t=round(time.time(), 3)))

    def ev(self, peer):
        return self.discarded.setdefault(int(peer), asyncio.Event())

    async def op_login(self, phone, first="Media", **_):
        s = StringSession()
        s.set_dc(2, self.args.server, self.args.port)
        c = TelegramClient(s, API_ID, API_HASH, connection=connection.ConnectionTcpFull,
                           connection_retries=2, retry_delay=1, request_retries=1, timeout=10,
                           auto_reconnect=False)
        await c.connect()
        phone = str(phone)
        sent = await c(functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings()))
        r = await c(functions.auth.SignInRequest(phone, sent.phone_code_hash, agent_loop.test_code(phone)))
        signed_up = False
        if isinstance(r, types.auth.AuthorizationSignUpRequired):
            # Telethon 1.45's start()/sign_up cannot do this step: send auth.signUp ourselves
            r = await c(functions.auth.SignUpRequest(phone, sent.phone_code_hash, first, "Tone"))
            signed_up = True
        if not isinstance(r, types.auth.Authorization):
            raise RuntimeError(f"login: got {type(r).__name__}")
        me = await c.get_me()
        self.client, self.user_id = c, me.id

        @c.on(events.Raw)
        async def on_raw(update):
            if isinstance(update, types.UpdatePhoneCallSignalingData):
                self.sig_in += 1
            elif isinstance(update, types.UpdatePhoneCall):
                pc = update.phone_call
                rec = {"type": type(pc).__name__, "id": str(pc.id)}
                if isinstance(pc, types.PhoneCall):
                    rec.update(p2p_allowed=bool(pc.p2p_allowed), connections=len(pc.connections),
                               connection_kinds=[type(x).__name__ for x in pc.connections],
                               library_versions=list(pc.protocol.library_versions),
                               g_a_or_b_len=len(pc.g_a_or_b))
                if isinstance(pc, types.PhoneCallAccepted):
                    rec["g_b_len"] = len(pc.g_b)
                if isinstance(pc, types.PhoneCallDiscarded):
                    rec["reason"] = type(pc.reason).__name__ if pc.reason else None
                self.phone_calls.append(rec)

        calls = PyTgCalls(c)

        @calls.on_update()
        async def on_update(_, update):
            if isinstance(update, StreamFrames):
                if "INCOMING" in str(update.direction):
                    self.received.setdefault(int(update.chat_id), Received()).add(update)
            elif isinstance(update, ChatUpdate):
                st = update.status
                self.note("chat_update", peer=update.chat_id, status=str(st))
                if st & ChatUpdate.Status.INCOMING_CALL:
                    self.incoming.put_nowait(int(update.chat_id))
                if st & ChatUpdate.Status.DISCARDED_CALL:
                    self.ev(update.chat_id).set()
            elif isinstance(update, UpdatedEmojis):
                self.emojis[int(update.chat_id)] = update.emojis
            else:
                self.note(type(update).__name__, peer=getattr(update, "chat_id", None))

        await calls.start()
        # spies: ntgcalls' connection states and the signalling it sends (the originals still run)
        orig_conn = calls._handle_connection_changed

        async def conn_spy(chat_id, info):
            self.conn.setdefault(int(chat_id), []).append(ConnectionState(info.state).name)
            return await orig_conn(chat_id, info)

        calls._handle_connection_changed = conn_spy
        orig_send = calls._app.send_signaling

        async def send_spy(chat_id, data):
            self.sig_out += 1
            return await orig_send(chat_id, data)

        calls._app.send_signaling = send_spy
        calls._binding = self.binding = ShortGB(calls._binding)  # a plain proxy until "answer" asks
        self.calls = calls
        return {"user_id": str(me.id), "signed_up": signed_up}

    async def op_resolve(self, phone, **_):
        r = await self.client(functions.contacts.ResolvePhoneRequest(str(phone)))
        return {"user_id": str(r.peer.user_id)}

    def tone_stream(self, freq, seconds):
        path = os.path.join(self.args.work, f"tone-{self.user_id}-{freq}.pcm")
        write_tone(path, freq, seconds)
        params = AudioParameters(bitrate=RATE, channels=CHANNELS)
        return Stream(microphone=AudioStream(MediaSource.FILE, path, params))

    async def record(self, peer):
        """Incoming audio as raw frames (no ffmpeg, no file): EXTERNAL playback."""
        self.received.setdefault(peer, Received())
        await self.calls.record(peer, Stream(microphone=AudioStream(
            MediaSource.EXTERNAL, "", AudioParameters(bitrate=RATE, channels=CHANNELS))))

    async def connect(self, user_id, freq, seconds, timeout):
        peer = int(user_id)
        self.ev(peer).clear()
        self.received.pop(peer, None)
        self.conn.pop(peer, None)
        self.emojis.pop(peer, None)  # a previous call's emojis must not stand in for this one's
        self.binding.servers.pop(peer, None)
        self.sig_out = self.sig_in = 0  # per call (one call at a time)
        t0 = time.monotonic()
        self.connecting[peer] = asyncio.current_task()
        try:
            await self.calls.play(peer, self.tone_stream(freq, seconds), CallConfig(timeout=int(timeout)))
        finally:
            self.connecting.pop(peer, None)
        took = time.monotonic() - t0
        await self.record(peer)
        return {"connected_after": round(took, 2), "states": self.conn.get(peer, [])}

    async def op_call(self, user_id, freq, seconds=12, timeout=30, **_):
        return await self.connect(user_id, freq, seconds, timeout)

    async def op_wait_incoming(self, timeout=15, **_):
        peer = await asyncio.wait_for(self.incoming.get(), timeout)
        return {"user_id": str(peer)}

    async def op_answer(self, user_id, freq, seconds=12, timeout=30, short_g_b=False, **_):
        peer = int(user_id)
        if short_g_b:
            self.binding.want.add(peer)
        res = await self.connect(user_id, freq, seconds, timeout)
        if short_g_b:
            tries, length = self.binding.tries.pop(peer, (0, None))
            res.update(g_b_tries=tries, g_b_len=length)
        return res

    async def op_frames(self, user_id, freqs=(), **_):
        rec = self.received.get(int(user_id))
        if rec is None:
            return {"frames": 0}
        res = rec.summary()
        # the analysis is CPU-heavy pure Python: off the event loop, so frames keep coming in
        res["analysis"] = await asyncio.get_running_loop().run_in_executor(
            None, analyse, bytes(rec.pcm), tuple(freqs))
        return res

    async def op_count(self, user_id, **_):
        rec = self.received.get(int(user_id))
        return {"frames": rec.count if rec else 0}

    async def op_state(self, **_):
        calls, calls_error = {}, None
        try:
            calls = {str(k): str(v) for k, v in (await self.calls.calls).items()}
        except Exception as e:  # noqa: BLE001 - reported: an empty list must not pass for "no calls"
            calls_error = f"{type(e).__name__}: {e}"
        return {"conn": {str(k): v for k, v in self.conn.items()}, "sig_out": self.sig_out,
                "sig_in": self.sig_in, "emojis": {str(k): v for k, v in self.emojis.items()},
                "phone_calls": self.phone_calls, "events": self.events[-20:], "calls": calls,
                "calls_error": calls_error, "servers": {str(k): v for k, v in self.binding.servers.items()}}

    async def op_hangup(self, user_id, **_):
        peer = int(user_id)
        task = self.connecting.get(peer)
        if task is not None and not task.done():
            # a call that never connected (the other side's acceptCall was refused, say): py-tgcalls'
            # leave_call would wait for the per-chat lock that play holds until its timeout, so discard
            # the call ourselves (phone.discardCall, hangup) and end the play
            with contextlib.suppress(Exception):
                await self.calls._app.discard_call(peer, False)
            task.cancel()
            await asyncio.wait([task], timeout=5)
            with contextlib.suppress(Exception):
                await self.calls._binding.stop(peer)
            self.calls._p2p_configs.pop(peer, None)
            return {"while_connecting": True}
        try:
            await self.calls.leave_call(peer)
        except NotInCallError:
            # ntgcalls gave up on the connection (FAILED/TIMEOUT): py-tgcalls then drops its call
            # without telling the server, whose call stays confirmed; end it there too
            await self.calls._app.discard_call(peer, False)
            return {"while_connecting": False, "not_in_call": True}
        finally:
            # py-tgcalls leaves the call's DH state behind when its acceptCall was refused; the next
            # call with this peer would take it for an incoming one
            self.calls._p2p_configs.pop(peer, None)
        return {"while_connecting": False}

    async def op_wait_discarded(self, user_id, timeout=10, **_):
        await asyncio.wait_for(self.ev(user_id).wait(), timeout)
        return True

    async def shutdown(self):
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.disconnect(), 5)

    async def handle(self, req):
        await agent_loop.handle(self, req, agent_loop.telethon_error)

    async def main(self):
        trsa.add_key(open(self.args.key).read(), old=False)
        req = await agent_loop.serve(self.handle, {"ready": True, "layer": alltlobjects.LAYER, "pid": os.getpid()})
        if req is not None:
            agent_loop.reply(req, True)
        await self.shutdown()


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True, help="the server's PKCS#1 public PEM")
    ap.add_argument("--work", required=True, help="where the tone files go")
    return ap.parse_args()


def die_with_parent():
    """SIGKILL when the driver goes, even if it was SIGKILLed itself (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes
    parent = os.getppid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent:  # it went before the prctl took effect
        os._exit(1)


if __name__ == "__main__":
    die_with_parent()
    # a crash in ntgcalls' native code (SIGSEGV, SIGABRT) leaves the Python stacks of every thread in the log
    faulthandler.enable(all_threads=True)
    asyncio.run(Agent(parse_args()).main())
    # ntgcalls' threads can keep the interpreter from exiting: the protocol is done, go
    os._exit(0)
