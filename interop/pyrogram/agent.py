#!/usr/bin/env python3
"""Pyrogram-family agent: hosts any number of client sessions of ONE of pyrogram 2.0.106, hydrogram 0.2.0,
pyrofork 2.3.69 or kurigram 2.2.26 (whichever is installed in the running interpreter, told apart by the
installed distribution: hydrogram imports as `hydrogram`, the other three as `pyrogram`) and performs steps
on request, so that run.py can drive them against a real mtcall server.

Usage: VENV/bin/python agent.py PORT DATA_DIR [WORK_DIR]
  DATA_DIR holds the server's server.pub (PKCS#1 RSA public PEM); WORK_DIR (default: a new temporary
  directory) is the working directory: the libraries write unknown_errors.txt there.

How the unmodified library is pointed at mtcall (run-time configuration only):
  - key: pyrogram.crypto.rsa.server_public_keys[fingerprint] = PublicKey(n, e), fingerprint as the libraries
    look it up: the low 64 bits of SHA1(TL bytes n, TL bytes e) read as a signed little-endian int64;
  - address: pyrogram, hydrogram, pyrofork take it from session.internals.DataCenter (its __new__ is replaced
    by one answering 127.0.0.1:PORT); kurigram from the session storage (server_address()/port() of a
    subclass of its in-memory SQLiteStorage answer 127.0.0.1:PORT).
  - sessions are in memory; "reconnect" exports the session string and starts a new client from it.
  - a request gets one attempt of at most REQUEST_TIMEOUT seconds (the libraries retry a timed-out request
    up to 10 times, 15 s each), so a reply the library cannot parse fails in seconds.

Protocol (as interop/calls/telethon_agent.py): one JSON object per line.
  stdin : {"id": N, "op": OP, "client": NAME, ...}
  stdout: {"ready": true, "lib": ..., "version": ..., "layer": N} once, then {"id": N, "ok": true, "result": ...}
          or {"id": N, "ok": false, "error": {"rpc": ERROR_NAME|null, "code": N|null, "class": ..., "text": ...,
          "unparsed": [{"id": constructor, "request": the method whose reply it was, or null for a push,
          "in": ...}: what the library failed to read meanwhile]}}
Ops: login, get_me, get_users, get_chat, get_contacts, import_contact, get_dialogs, set_username, resolve,
invoke_peer, dh_config, request_call, received, accept, confirm, discard, wait, drain, reconnect, sent,
unparsed, close, exit.
Requests run concurrently. Every updatePhoneCall a client receives (through the library's dispatcher, a
RawUpdateHandler; in hydrogram, whose dispatcher drops updates it has no parser for, from
Client.handle_updates) is buffered in arrival order and handed out by "wait" (first unconsumed match) or
"drain".
The client does the call's DH itself (messages.getDhConfig; g_a_hash = SHA256(g_a); the key fingerprint is
computed locally and reported next to the server's value). Every request a client's sessions send is
recorded with the constructors it is made of (op "sent"). The protocol loop, the update buffer and the DH
arithmetic are ../common/agent_loop.py's.
"""

import asyncio
import base64
import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
import time
from importlib import metadata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import agent_loop  # noqa: E402 - interop/common/agent_loop.py: the protocol, CallState, DH
from agent_loop import sha256, test_code  # noqa: E402

agent_loop.take_stdout()

# Which library: told apart by the installed distribution (pyrofork and kurigram install as `pyrogram`).
LIB = None
for _dist in ("hydrogram", "kurigram", "pyrofork", "pyrogram"):
    try:
        metadata.version(_dist)
    except metadata.PackageNotFoundError:
        continue
    LIB = _dist
    break
if LIB is None:
    sys.exit("none of hydrogram, kurigram, pyrofork, pyrogram is installed in this interpreter")
pg = __import__("hydrogram" if LIB == "hydrogram" else "pyrogram")
VERSION = metadata.version(LIB)

from importlib import import_module  # noqa: E402

raw = pg.raw
rsa = import_module(f"{pg.__name__}.crypto.rsa")
session_mod = import_module(f"{pg.__name__}.session")
Session = session_mod.Session
TLObject = import_module(f"{pg.__name__}.raw.core").TLObject
LAYER = import_module(f"{pg.__name__}.raw.all").layer
RawUpdateHandler = pg.handlers.RawUpdateHandler
RPCError = pg.errors.RPCError

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 8.0  # one attempt of one request
LOGIN_TIMEOUT = 25.0  # connect (key creation, ping, initConnection) + sign-in


def log(text):
    print(f"[{LIB} {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the server's key
def der_read(buf, i):
    """One DER TLV at buf[i:]: (tag, value, next index)."""
    tag = buf[i]
    n = buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, buf[i:i + n], i + n


def read_public_key(path):
    """(n, e) of a PKCS#1 `RSA PUBLIC KEY` PEM (or an SPKI `PUBLIC KEY` PEM)."""
    text = open(path).read()
    body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body)
    tag, seq, _ = der_read(der, 0)
    if "BEGIN PUBLIC KEY" in text:  # SubjectPublicKeyInfo: SEQUENCE { algorithm, BIT STRING { RSAPublicKey } }
        _, _, j = der_read(seq, 0)
        _, bits, _ = der_read(seq, j)
        tag, seq, _ = der_read(bits[1:], 0)
    _, n, j = der_read(seq, 0)
    _, e, _ = der_read(seq, j)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


def tl_bytes(b):
    """TL `bytes` serialization."""
    if len(b) <= 253:
        out = bytes([len(b)]) + b
    else:
        out = b"\xfe" + len(b).to_bytes(3, "little") + b
    return out + bytes(-len(out) % 4)


def key_fingerprint(n, e):
    """The RSA key fingerprint as resPQ carries it and the libraries look it up: the low 64 bits of
    SHA1(n as TL bytes + e as TL bytes), a signed little-endian int64."""
    nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
    eb = e.to_bytes((e.bit_length() + 7) // 8, "big")
    return int.from_bytes(hashlib.sha1(tl_bytes(nb) + tl_bytes(eb)).digest()[-8:], "little", signed=True)


# ------------------------------------------------------------------ pointing the library at mtcall
PORT = None


def point_at_server(port):
    global PORT
    PORT = port
    if LIB == "kurigram":
        return  # the address comes from the storage (MtcallStorage below)
    dc = import_module(f"{pg.__name__}.session.internals.data_center").DataCenter

    def new(cls, *args, **kwargs):  # (dc_id, test_mode, ipv6, [alt_port,] media)
        return HOST, PORT

    dc.__new__ = staticmethod(new)


def storage_for(name, session_string=None):
    """Client keyword arguments for an in-memory session (from a session string, if given)."""
    if LIB != "kurigram":
        if session_string:
            return {"session_string": session_string}
        return {"in_memory": True}
    from pyrogram.storage import SQLiteStorage

    class MtcallStorage(SQLiteStorage):
        """kurigram's in-memory storage whose server address is mtcall's, whatever was stored."""

        async def server_address(self, value=object):
            if value is object:
                return HOST
            return await super().server_address(value)

        async def port(self, value=object):
            if value is object:
                return PORT
            return await super().port(value)

    return {"storage_engine": MtcallStorage(name, workdir=os.getcwd(), session_string=session_string,
                                            in_memory=True)}


# ------------------------------------------------------------------ what goes on the wire
def tl_name(obj):
    """The TL name of a raw object: functions.users.GetUsers -> users.getUsers."""
    q = getattr(obj, "QUALNAME", type(obj).__name__).split(".")
    if q[0] in ("functions", "types"):
        q = q[1:]
    q[-1] = q[-1][:1].lower() + q[-1][1:]
    return ".".join(q)


BASE_RE = re.compile(r"raw\.base\.([A-Za-z_.]+)")


def base_of(obj):
    """The TL type a raw constructor belongs to (from its docstring): InputPeerUser -> InputPeer."""
    m = re.search(r"Constructor of :obj:`~[a-z]+\.raw\.base\.([A-Za-z_.]+)`", type(obj).__doc__ or "")
    return m.group(1) if m else None


def expected_type(obj, field):
    """The TL type the schema gives a field of a raw object (from the generated __init__'s annotations)."""
    ann = getattr(type(obj).__init__, "__annotations__", {}).get(field)
    m = BASE_RE.search(str(ann)) if ann is not None else None
    return m.group(1) if m else None


def shape(obj, depth=0, want=None):
    """A request as the constructors it is made of, e.g. users.getUsers#0d91a548(id=[inputPeerUser#dde8a54c
    <InputPeer, schema InputUser>]): a constructor of another type than the schema's is marked <ITS TYPE,
    schema TYPE>."""
    if isinstance(obj, list):
        return "[" + ", ".join(shape(x, depth, want) for x in obj[:4]) + (", …" if len(obj) > 4 else "") + "]"
    if not isinstance(obj, TLObject):
        return None
    ident = getattr(obj, "ID", None)
    s = tl_name(obj) + (f"#{ident:08x}" if isinstance(ident, int) else "")
    have = base_of(obj)
    if want and have and have != want and want not in ("Object", "X"):
        s += f" <{have}, schema {want}>"
    if depth >= 4:
        return s
    parts = []
    for k in getattr(obj, "__slots__", ()):
        v = getattr(obj, k, None)
        if isinstance(v, TLObject) or (isinstance(v, list) and v and isinstance(v[0], TLObject)):
            parts.append(f"{k}={shape(v, depth + 1, expected_type(obj, k))}")
        elif isinstance(v, bool) or (isinstance(v, int) and k not in ("random_id", "ping_id", "api_id")):
            parts.append(f"{k}={v}")
        elif isinstance(v, bytes):
            parts.append(f"{k}=<{len(v)} bytes>")
        elif isinstance(v, str):
            parts.append(f"{k}={v!r}" if len(v) <= 40 else f"{k}=<{len(v)} chars>")
        elif isinstance(v, list) and v:
            parts.append(f"{k}=[{len(v)}]")
    return s + (f"({', '.join(parts)})" if parts else "")


QUIET = ("pingDelayDisconnect", "msgsAck")
WRAPPERS = ("invokeWithLayer", "initConnection", "invokeWithoutUpdates", "invokeWithTakeout")
OWNER = {}  # id(pg.Client) -> State, for the recorder
UNPARSED = []  # {"t", "id", "req_msg_id", "request", "in"}: constructors the library failed to read
PENDING = {}  # id(request object) -> entry, while Session.send of it runs
BY_MSG_ID = {}  # msg_id -> entry (every msg_id a recorded request went out with)
FAILERS = {}  # id(entry) -> (loop, future): fails the request as soon as its reply is found unreadable
MSG_CONTAINER, RPC_RESULT = 0x73F1F8DC, 0xF35C6D01


class UnreadableReply(Exception):
    """The server's reply to a request had a constructor this library's layer does not know."""


def method_of(obj):
    """The TL name of the request inside invokeWithLayer/initConnection/invokeWithoutUpdates."""
    while tl_name(obj) in WRAPPERS and isinstance(getattr(obj, "query", None), TLObject):
        obj = obj.query
    return tl_name(obj)


def constructor_name(cid):
    """updates#74ae4240 for a constructor id this library knows, else 0x74ae4240."""
    cls = import_module(f"{pg.__name__}.raw.all").objects.get(cid)
    return (tl_name(cls) + f"#{cid:08x}") if cls is not None else f"0x{cid:08x}"


def unreadable(body, tl_read):
    """What in a message body this library cannot read: [(req_msg_id or None, constructor id, outer name)].
    Walks msg_container and rpc_result itself (plain bytes), reads each part with the library's reader."""
    cid = int.from_bytes(body[:4], "little")
    if cid == MSG_CONTAINER:
        out, n, i = [], int.from_bytes(body[4:8], "little"), 8
        for _ in range(n):
            length = int.from_bytes(body[i + 12:i + 16], "little")
            out += unreadable(body[i + 16:i + 16 + length], tl_read)
            i += 16 + length
        return out
    req = int.from_bytes(body[4:12], "little", signed=True) if cid == RPC_RESULT else None
    try:
        tl_read(io.BytesIO(body[12:] if cid == RPC_RESULT else body))
    except KeyError as e:
        if e.args and isinstance(e.args[0], int):
            return [(req, e.args[0], "rpc_result" if req is not None else constructor_name(cid))]
    except Exception:  # noqa: BLE001 - something else is wrong with it; not ours to name
        return []
    return []


def record_sends():
    """Wraps Session.send (observes: every request with its result's constructor or error, and the msg_ids
    it went out with), mtproto.pack (msg_id of each request) and the Message reader mtproto.unpack uses
    (when a packet cannot be read: which constructor, in the reply to which request; that request then
    fails at once with UnreadableReply instead of timing out). Caps Session.invoke to one attempt of
    REQUEST_TIMEOUT seconds."""
    orig_send = Session.send
    orig_invoke = Session.invoke
    mtproto = import_module(f"{pg.__name__}.crypto.mtproto")
    orig_pack = mtproto.pack
    orig_message = mtproto.Message
    tl_read = TLObject.read
    # hydrogram and kurigram count attempts, pyrogram and pyrofork count retries after the first
    one_attempt = 1 if LIB in ("hydrogram", "kurigram") else 0

    async def send(self, data, *args, **kwargs):
        st = OWNER.get(id(self.client))
        entry = None
        if st is not None and tl_name(data) not in QUIET:
            entry = {"t": round(time.time(), 3), "method": method_of(data), "request": shape(data)}
            st.sent.append(entry)
            PENDING[id(data)] = entry
        if entry is None:
            return await orig_send(self, data, *args, **kwargs)
        loop = asyncio.get_running_loop()
        failed = loop.create_future()
        FAILERS[id(entry)] = (loop, failed)
        task = asyncio.ensure_future(orig_send(self, data, *args, **kwargs))
        try:
            await asyncio.wait({task, failed}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                entry["error"] = f"UnreadableReply: {failed.result()}"
                raise UnreadableReply(failed.result())
            r = task.result()
        except RPCError as e:
            entry["error"] = error_name(e)
            entry["code"] = getattr(e, "CODE", None)
            raise
        except UnreadableReply:
            raise
        except BaseException as e:
            entry["error"] = f"{type(e).__name__}: {e}"
            if entry.get("unparsed"):
                entry["error"] += f" (reply had unknown constructor {entry['unparsed']})"
            raise
        finally:
            FAILERS.pop(id(entry), None)
            if PENDING.get(id(data)) is entry:
                PENDING.pop(id(data), None)
        entry["result"] = (f"vector[{len(r)}]" if isinstance(r, list) else
                           tl_name(r) if isinstance(r, TLObject) else repr(r))
        return r

    def pack(message, *args, **kwargs):  # runs in the crypto executor
        entry = PENDING.get(id(message.body))
        if entry is not None:
            entry.setdefault("msg_ids", []).append(message.msg_id)
            BY_MSG_ID[message.msg_id] = entry
        return orig_pack(message, *args, **kwargs)

    class Message(orig_message):
        @staticmethod
        def read(data, *args):  # runs in the crypto executor
            pos = data.tell()
            try:
                return orig_message.read(data, *args)
            except KeyError as e:
                buf = data.getvalue()[pos:]
                length = int.from_bytes(buf[12:16], "little")
                found = unreadable(buf[16:16 + length], tl_read) or [
                    (None, e.args[0] if e.args and isinstance(e.args[0], int) else -1, "?")]
                for req, cid, where in found:
                    entry = BY_MSG_ID.get(req) if req is not None else None
                    UNPARSED.append({"t": time.time(), "id": f"0x{cid & 0xFFFFFFFF:08x}", "req_msg_id": req,
                                     "request": entry["method"] if entry else None, "in": where})
                    if entry is not None:
                        entry["unparsed"] = f"0x{cid & 0xFFFFFFFF:08x}"
                        loop, fut = FAILERS.get(id(entry), (None, None))
                        if fut is not None:
                            why = (f"the reply to {entry['method']} has constructor 0x{cid & 0xFFFFFFFF:08x}, "
                                   f"unknown to {LIB} {VERSION} (layer {LAYER})")
                            loop.call_soon_threadsafe(lambda f=fut, w=why: f.done() or f.set_result(w))
                raise

    async def invoke(self, query, retries=None, timeout=None, *args, **kwargs):
        kwargs.pop("retries", None)
        kwargs.pop("timeout", None)
        return await orig_invoke(self, query, one_attempt, min(timeout or REQUEST_TIMEOUT, REQUEST_TIMEOUT),
                                 *args, **kwargs)

    Session.send = send
    Session.invoke = invoke
    mtproto.pack = pack
    mtproto.Message = Message


def on_loop_exception(loop, context):
    """pyrogram and hydrogram let a packet they cannot read kill their handle_packet task (ValueError "The
    server sent an unknown constructor", recorded by record_sends already); pyrofork and kurigram log it
    and restart the session."""
    e = context.get("exception")
    if isinstance(e, (KeyError, ValueError)) and "unknown constructor" in str(e) or isinstance(e, KeyError):
        log(f"{context.get('message')}: {str(e).splitlines()[0] if str(e) else repr(e)}")
        return
    loop.default_exception_handler(context)


# ------------------------------------------------------------------ calls, errors, users
def protocol():
    return raw.types.PhoneCallProtocol(min_layer=65, max_layer=92, library_versions=["2.4.4"],
                                       udp_p2p=True, udp_reflector=True)


REASONS = {
    "missed": raw.types.PhoneCallDiscardReasonMissed,
    "disconnect": raw.types.PhoneCallDiscardReasonDisconnect,
    "hangup": raw.types.PhoneCallDiscardReasonHangup,
    "busy": raw.types.PhoneCallDiscardReasonBusy,
}


def error_name(e):
    """The Telegram error name of a library RPCError: its ID, or the name inside an unknown error's value."""
    if getattr(e, "ID", None):
        return e.ID
    m = re.search(r"\[-?\d+ ([A-Z0-9_]+)\]", str(getattr(e, "value", "")) + " " + str(e))
    return m.group(1) if m else None


def summarize_user(u):
    """A library User (types.User) as plain JSON."""
    if u is None:
        return None
    return {
        "id": str(u.id),
        "first_name": u.first_name,
        "last_name": u.last_name,
        "username": u.username,
        "phone": u.phone_number,
        "is_bot": bool(u.is_bot),
        "is_self": bool(u.is_self),
        "is_contact": bool(u.is_contact),
    }


def enum_name(v):
    return getattr(v, "name", None) or (str(v) if v is not None else None)


class State(agent_loop.CallState):
    """One client (session) and its calls (.peers: phone or @username -> (user_id, access_hash))."""

    InputPhoneCall = raw.types.InputPhoneCall

    def __init__(self, name, client):
        super().__init__()
        self.name = name
        self.client = client
        self.user_id = None
        self.is_bot = False
        self.sent = []  # every request its sessions sent (record_sends)


def input_user(peer):
    """The InputUser for a resolved InputPeer (the call methods take InputUser)."""
    if isinstance(peer, raw.types.InputPeerUser):
        return raw.types.InputUser(user_id=peer.user_id, access_hash=peer.access_hash)
    if isinstance(peer, raw.types.InputUser):
        return peer
    raise RuntimeError(f"not a user peer: {tl_name(peer)}")


class Agent(agent_loop.CallOps):
    def __init__(self, port, data_dir):
        self.port = port
        self.data_dir = data_dir
        self.clients = {}
        self.records = {}  # client name -> every request its sessions sent (State.sent), kept after a close

    def get(self, name):
        st = self.clients.get(name)
        if st is None:
            raise RuntimeError(f"no client {name}")
        return st

    def new_client(self, name, session_string=None):
        c = pg.Client(name, api_id=API_ID, api_hash=API_HASH, workdir=os.getcwd(),
                      **storage_for(name, session_string))
        return c

    def attach(self, name, client):
        """A State for a client, with the raw update handler that buffers updatePhoneCall."""
        st = State(name, client)
        st.sent = self.records.setdefault(name, [])
        OWNER[id(client)] = st

        async def on_raw(_client, update, users, _chats):
            if isinstance(update, raw.types.UpdatePhoneCall):
                s = st.on_phone_call(update.phone_call, "push")
                s["users"] = [str(k) for k in users] if isinstance(users, dict) else None
                st.push(s)

        if LIB != "hydrogram":
            client.add_handler(RawUpdateHandler(on_raw))
            return st
        # hydrogram 0.2.0's dispatcher drops every update it has no parser for before it looks at the
        # handlers (dispatcher.py, _process_packet: `if not parser: return`), so a RawUpdateHandler never sees
        # updatePhoneCall. Take them where the library receives them: Client.handle_updates, which the
        # session calls with every pushed Updates (observed, then handed on unchanged).
        orig = client.handle_updates

        async def handle_updates(updates):
            inner = getattr(updates, "updates", None)
            if inner is None:
                inner = [updates.update] if getattr(updates, "update", None) is not None else []
            users = {u.id: u for u in getattr(updates, "users", None) or []}
            for u in inner:
                await on_raw(client, u, users, {})
            return await orig(updates)

        client.handle_updates = handle_updates
        return st

    async def dh(self, st):
        r = await st.client.invoke(raw.functions.messages.GetDhConfig(version=0, random_length=256))
        if not isinstance(r, raw.types.messages.DhConfig):
            raise RuntimeError(f"getDhConfig returned {tl_name(r)}")
        return r

    async def stop_client(self, c):
        """Stops a client whatever state it reached (initialized or only connected)."""
        with contextlib.suppress(Exception):
            if getattr(c, "is_initialized", False):
                await asyncio.wait_for(c.terminate(), 5)
        with contextlib.suppress(Exception):
            if getattr(c, "is_connected", False):
                await asyncio.wait_for(c.disconnect(), 5)
        with contextlib.suppress(Exception):
            # a session stuck in its (re)connect loop
            if getattr(c, "session", None) is not None:
                await asyncio.wait_for(c.session.stop(), 5)

    # -------------------------------------------------------------- operations
    async def op_login(self, client, phone=None, bot_token=None, first=None, last=None, signup=True, **_):
        if client in self.clients:
            raise RuntimeError(f"client {client} exists")
        c = self.new_client(client)
        st = self.attach(client, c)
        try:
            r = await asyncio.wait_for(self._login(st, phone, bot_token, first, last, signup), LOGIN_TIMEOUT)
        except asyncio.TimeoutError:
            await self.stop_client(c)
            raise RuntimeError(f"login did not finish within {LOGIN_TIMEOUT:.0f}s") from None
        except BaseException:
            await self.stop_client(c)
            raise
        self.clients[client] = st
        return r

    async def _login(self, st, phone, bot_token, first, last, signup):
        c = st.client
        authorized = await c.connect()
        signed_up = False
        if authorized:
            raise RuntimeError("a new in-memory session is already authorized")
        if bot_token:
            me = await c.sign_in_bot(bot_token)
        else:
            phone = str(phone)
            if LIB == "kurigram":
                sent = await c.send_phone_number_code(phone)
            else:
                sent = await c.send_code(phone)
            me = await c.sign_in(phone, sent.phone_code_hash, test_code(phone))
            if me is False or isinstance(me, pg.types.TermsOfService):
                # authorizationSignUpRequired (pyrofork raises PhoneNumberUnoccupied instead)
                if not signup:
                    raise RuntimeError("sign-up required")
                if not hasattr(c, "sign_up"):
                    raise RuntimeError(f"{LIB} has no sign_up")
                me = await c.sign_up(phone, sent.phone_code_hash, first or LIB.capitalize(), last or "User")
                signed_up = True
        await c.initialize()  # starts the dispatcher: raw updates reach on_raw from now on
        st.user_id = str(me.id)
        st.is_bot = bool(me.is_bot)
        return {"user_id": st.user_id, "signed_up": signed_up, "user": summarize_user(me)}

    async def op_get_me(self, client, **_):
        return summarize_user(await self.get(client).client.get_me())

    async def op_get_users(self, client, ids, **_):
        ids = [int(i) if isinstance(i, str) and re.fullmatch(r"-?\d+", i) and not i.startswith("+") else i
               for i in ids]
        r = await self.get(client).client.get_users(ids)
        return [summarize_user(u) for u in r]

    async def op_get_chat(self, client, chat, **_):
        if isinstance(chat, str) and re.fullmatch(r"-?\d+", chat):
            chat = int(chat)
        ch = await self.get(client).client.get_chat(chat)
        return {"id": str(ch.id), "type": enum_name(getattr(ch, "type", None)),
                "first_name": getattr(ch, "first_name", None), "username": getattr(ch, "username", None)}

    async def op_get_contacts(self, client, **_):
        return [summarize_user(u) for u in await self.get(client).client.get_contacts()]

    async def op_import_contact(self, client, phone, first, last="", **_):
        """import_contacts([InputPhoneContact]) (contacts.importContacts): the imported users."""
        r = await self.get(client).client.import_contacts([pg.types.InputPhoneContact(str(phone), first, last)])
        return {"imported": [str(i.user_id) for i in getattr(r, "imported", [])],
                "users": [str(u.id) for u in getattr(r, "users", [])]}

    async def op_invoke_peer(self, client, method, peer, **_):
        """The raw-API idiom: invoke(users.GetUsers(id=[await resolve_peer(X)])) or
        invoke(users.GetFullUser(id=await resolve_peer(X))), passing what resolve_peer returned as it is
        (an inputPeerUser/inputPeerSelf where the schema says InputUser). X: "me", an id, @username."""
        c = self.get(client).client
        if isinstance(peer, str) and re.fullmatch(r"-?\d+", peer):
            peer = int(peer)
        p = await c.resolve_peer(peer)
        if method == "users.getUsers":
            r = await c.invoke(raw.functions.users.GetUsers(id=[p]))
            return {"peer": tl_name(p), "users": [str(u.id) for u in r], "types": [tl_name(u) for u in r]}
        if method == "users.getFullUser":
            r = await c.invoke(raw.functions.users.GetFullUser(id=p))
            return {"peer": tl_name(p), "id": str(r.full_user.id), "type": tl_name(r)}
        raise RuntimeError(f"unknown method {method}")

    async def op_get_dialogs(self, client, limit=10, **_):
        out = []
        async for d in self.get(client).client.get_dialogs(limit=limit):
            out.append({"chat_id": str(d.chat.id), "type": enum_name(d.chat.type)})
        return out

    async def op_set_username(self, client, username, **_):
        return bool(await self.get(client).client.set_username(username))

    async def op_resolve(self, client, phone=None, username=None, **_):
        """The library's resolve_peer for a phone number or @username. pyrogram, hydrogram and pyrofork look a
        phone number up in their storage only: when it is not there, the raw contacts.resolvePhone is sent
        (the library stores the users of every result) and resolve_peer asked again."""
        st = self.get(client)
        c = st.client
        key = str(phone) if phone is not None else "@" + username
        via = "resolve_peer"
        try:
            peer = await c.resolve_peer(("+" + str(phone)) if phone is not None else "@" + username)
        except pg.errors.PeerIdInvalid:
            if phone is None:
                raise
            r = await c.invoke(raw.functions.contacts.ResolvePhone(phone=str(phone)))
            via = "contacts.resolvePhone, then resolve_peer"
            try:
                peer = await c.resolve_peer("+" + str(phone))
            except pg.errors.PeerIdInvalid:
                got = [(u.id, getattr(u, "phone", None)) for u in getattr(r, "users", [])]
                raise RuntimeError(
                    f"resolve_peer('+{phone}') raises PeerIdInvalid (locally: {LIB} looks phone numbers up only in "
                    f"its storage, which keeps each user's `phone` field); contacts.resolvePhone answered "
                    f"{tl_name(r)} with users (id, phone) {got}: without phone={phone} in the user, the number "
                    f"cannot be resolved") from None
        iu = input_user(peer)
        st.peers[key] = (iu.user_id, iu.access_hash)
        return {"user_id": str(iu.user_id), "access_hash": str(iu.access_hash), "peer": tl_name(peer), "via": via}

    async def op_dh_config(self, client, **_):
        r = await self.dh(self.get(client))
        return {"g": r.g, "p": r.p.hex(), "version": r.version, "random_len": len(r.random)}

    async def op_request_call(self, client, phone=None, username=None, **_):
        st = self.get(client)
        key = str(phone) if phone is not None else "@" + str(username)
        if key not in st.peers:
            raise RuntimeError(f"resolve {key} first")
        uid, h = st.peers[key]
        mine = st.caller_dh(await self.dh(st))
        r = await st.client.invoke(raw.functions.phone.RequestCall(
            user_id=raw.types.InputUser(user_id=uid, access_hash=h),
            random_id=int.from_bytes(os.urandom(4), "big", signed=True),
            g_a_hash=sha256(mine["g_a"]),
            protocol=protocol(),
        ))
        st.ctx(r.phone_call.id).update(mine, access_hash=r.phone_call.access_hash)
        return st.on_result(r)

    async def op_received(self, client, call_id, access_hash=None, **_):
        st = self.get(client)
        r = await st.client.invoke(raw.functions.phone.ReceivedCall(peer=st.input_call(call_id, access_hash)))
        return {"value": r if isinstance(r, bool) else repr(r)}

    async def op_accept(self, client, call_id, **_):
        st = self.get(client)
        ctx = st.requested(call_id)
        g_b = st.callee_dh(ctx, await self.dh(st))
        r = await st.client.invoke(raw.functions.phone.AcceptCall(
            peer=st.input_call(call_id), g_b=g_b, protocol=protocol()))
        return st.on_result(r)

    async def op_confirm(self, client, call_id, **_):
        st = self.get(client)
        g_a, fp, report = st.caller_key(call_id)
        r = await st.client.invoke(raw.functions.phone.ConfirmCall(
            peer=st.input_call(call_id), g_a=g_a, key_fingerprint=fp, protocol=protocol()))
        return {"result": st.on_result(r), **report}

    async def op_discard(self, client, call_id, reason="hangup", duration=0, **_):
        st = self.get(client)
        return st.on_updates(await st.client.invoke(raw.functions.phone.DiscardCall(
            peer=st.input_call(call_id), duration=duration or 0, reason=REASONS[reason or "hangup"](),
            connection_id=0)))

    async def op_reconnect(self, client, mode="session_string", **_):
        """mode "session_string": export the session string, stop the client, start a new client from the
        string (the same auth key; a new connection and session); mode "restart": the library's own
        Session.restart() on the live client (a new connection). Then get_me must work."""
        st = self.get(client)
        c = st.client
        if mode == "restart":
            await asyncio.wait_for(c.session.restart(), LOGIN_TIMEOUT)
            me = await c.get_me()
            return {"user_id": str(me.id), "same_client": True}
        s = await c.export_session_string()
        old_key = await c.storage.auth_key()
        await asyncio.wait_for(c.stop(), 10)
        OWNER.pop(id(c), None)
        c2 = self.new_client(client, session_string=s)
        st2 = self.attach(client, c2)
        st2.calls, st2.peers = st.calls, st.peers
        try:
            authorized = await asyncio.wait_for(c2.connect(), LOGIN_TIMEOUT)
            await c2.initialize()
            me = await c2.get_me()
        except BaseException:
            await self.stop_client(c2)
            self.clients.pop(client, None)
            raise
        st2.user_id, st2.is_bot = str(me.id), bool(me.is_bot)
        self.clients[client] = st2
        return {"user_id": str(me.id), "authorized": bool(authorized),
                "same_key": (await c2.storage.auth_key()) == old_key}

    async def op_sent(self, client, clear=True, **_):
        """Every request the client's sessions sent so far (also of a login that failed), oldest first."""
        sent = self.records.setdefault(client, [])
        out = [{k: v for k, v in e.items() if k != "msg_ids"} for e in sent]
        if clear:
            sent.clear()
        return out

    async def op_unparsed(self, clear=True, since=0, **_):
        """Every constructor the library failed to read (at or after `since`, a Unix time)."""
        out = [dict(u, t=round(u["t"], 3)) for u in UNPARSED if u["t"] >= since]
        if clear:
            UNPARSED.clear()
        return out

    async def op_close(self, client, **_):
        st = self.clients.pop(client, None)
        if st:
            await asyncio.wait_for(st.client.stop(), 10)
            OWNER.pop(id(st.client), None)
        return True

    async def shutdown(self):
        for st in list(self.clients.values()):
            await self.stop_client(st.client)

    async def handle(self, req):
        mark = len(UNPARSED)

        def error_fields(e):
            is_rpc = isinstance(e, RPCError)
            return {"rpc": error_name(e) if is_rpc else None, "code": getattr(e, "CODE", None) if is_rpc else None,
                    "unparsed": [{k: v for k, v in u.items() if k != "t"} for u in UNPARSED[mark:]]}

        await agent_loop.handle(self, req, error_fields)

    async def main(self):
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(on_loop_exception)
        n, e = read_public_key(os.path.join(self.data_dir, "server.pub"))
        fp = key_fingerprint(n, e)
        rsa.server_public_keys[fp] = rsa.PublicKey(n, e)
        point_at_server(self.port)
        record_sends()
        req = await agent_loop.serve(self.handle, {"ready": True, "lib": LIB, "version": VERSION, "layer": LAYER,
                                                   "fingerprint": fp, "fingerprint_hex": f"{fp & (2**64 - 1):016x}"})
        await self.shutdown()
        if req is not None:
            agent_loop.reply(req, True)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=os.environ.get("AGENT_LOG", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    work = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="pyro-agent-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    asyncio.run(Agent(int(sys.argv[1]), sys.argv[2]).main())
