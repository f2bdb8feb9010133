#!/usr/bin/env python3
"""Telethon call agent: hosts any number of Telethon clients (sessions) and performs call-signalling steps
on request, so that run.py can drive one-to-one calls between Telethon and GramJS.

Usage: VENV/bin/python telethon_agent.py PORT DATA_DIR

Protocol (same as gramjs_agent.js): one JSON object per line.
  stdin : {"id": N, "op": "login"|"resolve"|"dh_config"|"request_call"|"received"|"accept"|"confirm"|
                           "discard"|"wait"|"drain"|"close"|"exit", "client": NAME, ...}
  stdout: {"ready": true, ...} once, then {"id": N, "ok": true, "result": ...} or
          {"id": N, "ok": false, "error": {"rpc": ERROR_NAME|null, "code": N|null, "text": str(exception)}}
Requests run concurrently. Every updatePhoneCall a client receives is buffered (in arrival order) and
handed out by "wait" (first unconsumed match) or "drain" (all). The client does the call's DH itself:
a/b are random, the key fingerprint is computed locally and reported next to the server's value.
"""

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import sys
import time

from telethon import TelegramClient, connection, events
from telethon.crypto import rsa as trsa
from telethon.errors import RPCError
from telethon.errors.rpcerrorlist import rpc_errors_dict
from telethon.sessions import StringSession
from telethon.tl import alltlobjects, functions, types

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
LIB = "telethon"

PROTO_OUT = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol; anything printed goes to stderr
sys.stdout = sys.stderr


def emit(obj):
    PROTO_OUT.write(json.dumps(obj) + "\n")
    PROTO_OUT.flush()


def protocol():
    return types.PhoneCallProtocol(
        min_layer=65, max_layer=92, library_versions=["2.4.4"], udp_p2p=True, udp_reflector=True
    )


REASONS = {
    "missed": types.PhoneCallDiscardReasonMissed,
    "disconnect": types.PhoneCallDiscardReasonDisconnect,
    "hangup": types.PhoneCallDiscardReasonHangup,
    "busy": types.PhoneCallDiscardReasonBusy,
}


# ------------------------------------------------------------------ DH (big-endian 256 bytes)
def to_int(b):
    return int.from_bytes(b, "big")


def to_256(n):
    return n.to_bytes(256, "big")


def sha256(b):
    return hashlib.sha256(b).digest()


def fingerprint(key):
    """key_fingerprint: last 8 bytes of SHA1(key) as a signed little-endian int64."""
    return int.from_bytes(hashlib.sha1(key).digest()[-8:], "little", signed=True)


def g_range_ok(gx, p):
    lim = 1 << 1984
    return 1 < gx < p - 1 and lim <= gx <= p - lim


def rpc_error_name(e):
    """The Telegram error name behind a Telethon exception, or None if it is not an RPC error.

    Telethon raises a dedicated class for every error name it knows (CALL_PEER_INVALID ->
    errors.CallPeerInvalidError, whose str() is a description without the name), and a generic
    class carrying the name in .message (and str()) for the others."""
    if not isinstance(e, RPCError):
        return None
    for name, cls in rpc_errors_dict.items():
        if type(e) is cls:
            return name
    return e.message


def lower_first(s):
    return s[:1].lower() + s[1:] if s else s


def test_code(phone):
    return str(phone)[5] * 5


def summarize(pc):
    """A PhoneCall object as plain JSON (the same shape gramjs_agent.js produces)."""
    s = {"type": lower_first(type(pc).__name__), "id": str(pc.id)}
    for k in ("access_hash", "admin_id", "participant_id", "key_fingerprint"):
        if hasattr(pc, k):
            s[k] = str(getattr(pc, k))
    for k in ("date", "receive_date", "start_date", "duration"):
        if hasattr(pc, k):
            v = getattr(pc, k)
            s[k] = int(v.timestamp()) if hasattr(v, "timestamp") else v  # Telethon turns *date ints into datetimes
    if isinstance(pc, types.PhoneCallDiscarded):
        s["reason"] = lower_first(type(pc.reason).__name__) if pc.reason is not None else None
        s["need_rating"] = bool(pc.need_rating)
        s["need_debug"] = bool(pc.need_debug)
    if getattr(pc, "g_a_hash", None) is not None:
        s["g_a_hash"] = pc.g_a_hash.hex()
    if getattr(pc, "g_b", None) is not None:
        s["g_b_len"] = len(pc.g_b)
    if getattr(pc, "g_a_or_b", None) is not None:
        s["g_a_or_b_len"] = len(pc.g_a_or_b)
    if hasattr(pc, "video"):
        s["video"] = bool(pc.video)
    p = getattr(pc, "protocol", None)
    if p is not None:
        s["protocol"] = {
            "udp_p2p": bool(p.udp_p2p),
            "udp_reflector": bool(p.udp_reflector),
            "min_layer": p.min_layer,
            "max_layer": p.max_layer,
            "library_versions": list(p.library_versions),
        }
    if getattr(pc, "connections", None) is not None:
        s["connections"] = len(pc.connections)
    return s


class State:
    def __init__(self, client):
        self.client = client
        self.user_id = None
        self.updates = []
        self.waiters = []  # (match, future)
        self.calls = {}  # id str -> ctx dict
        self.peers = {}  # phone -> (id, hash)

    def ctx(self, call_id):
        return self.calls.setdefault(str(call_id), {"id": str(call_id)})

    def on_phone_call(self, pc, via):
        """Records a PhoneCall; does the callee's key check on phoneCall."""
        s = summarize(pc)
        ctx = self.ctx(pc.id)
        if getattr(pc, "access_hash", None) is not None and "access_hash" not in ctx:
            ctx["access_hash"] = pc.access_hash
        if isinstance(pc, types.PhoneCallRequested):
            ctx.setdefault("role", "callee")
            ctx["g_a_hash"] = pc.g_a_hash
        elif isinstance(pc, types.PhoneCallAccepted):
            ctx["g_b"] = pc.g_b
        elif isinstance(pc, types.PhoneCall) and ctx.get("role") == "callee" and "b" in ctx:
            # callee: key = g_a^b mod p, after checking SHA256(g_a) == g_a_hash
            g_a = pc.g_a_or_b
            key = to_256(pow(to_int(g_a), ctx["b"], ctx["p"]))
            s["g_a_hash_ok"] = ctx.get("g_a_hash") == sha256(g_a)
            s["g_range_ok"] = g_range_ok(to_int(g_a), ctx["p"])
            s["computed_fingerprint"] = str(fingerprint(key))
            s["key_sha256"] = sha256(key).hex()
        s["via"] = via
        s["t"] = int(time.time() * 1000)
        return s

    def push(self, s):
        self.updates.append(s)
        for w in list(self.waiters):
            match, fut = w
            for u in self.updates:
                if not u.get("taken") and match(u) and not fut.done():
                    u["taken"] = True
                    self.waiters.remove(w)
                    fut.set_result(u)
                    break

    def input_call(self, call_id, access_hash=None):
        ctx = self.calls.get(str(call_id), {})
        h = access_hash if access_hash is not None else ctx.get("access_hash")
        if h is None:
            raise RuntimeError(f"no access_hash known for call {call_id}")
        return types.InputPhoneCall(id=int(call_id), access_hash=int(h))


class Agent:
    def __init__(self, port, data_dir):
        self.port = port
        self.data_dir = data_dir
        self.clients = {}

    def get(self, name):
        st = self.clients.get(name)
        if st is None:
            raise RuntimeError(f"no client {name}")
        return st

    async def dh(self, st):
        r = await st.client(functions.messages.GetDhConfigRequest(version=0, random_length=256))
        if not isinstance(r, types.messages.DhConfig):
            raise RuntimeError(f"getDhConfig returned {type(r).__name__}")
        return r

    # -------------------------------------------------------------- operations
    async def op_login(self, client, phone, first=None, last=None, **_):
        s = StringSession()
        s.set_dc(2, "127.0.0.1", self.port)
        c = TelegramClient(
            s, API_ID, API_HASH, connection=connection.ConnectionTcpFull,
            connection_retries=2, retry_delay=1, request_retries=1, timeout=10, auto_reconnect=False,
        )
        st = State(c)

        async def on_raw(update):
            if isinstance(update, types.UpdatePhoneCall):
                s = st.on_phone_call(update.phone_call, "push")
                # the users of the carrying updates{} container (Telethon attaches them as _entities)
                ents = getattr(update, "_entities", None)
                s["users"] = None if ents is None else [str(x.id) for x in ents.values() if isinstance(x, types.User)]
                st.push(s)

        c.add_event_handler(on_raw, events.Raw)
        try:
            await c.connect()
            phone = str(phone)
            sent = await c(functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings()))
            r = await c(functions.auth.SignInRequest(phone, sent.phone_code_hash, test_code(phone)))
            signed_up = False
            if isinstance(r, types.auth.AuthorizationSignUpRequired):
                # Telethon 1.45's start()/sign_up cannot do this step: send auth.signUp ourselves
                r = await c(functions.auth.SignUpRequest(phone, sent.phone_code_hash, first or "Telethon", last or "User"))
                signed_up = True
            if not isinstance(r, types.auth.Authorization):
                raise RuntimeError(f"login: got {type(r).__name__}")
            me = await c.get_me()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.disconnect(), 5)
            raise
        st.user_id = str(me.id)
        self.clients[client] = st
        return {"user_id": st.user_id, "signed_up": signed_up, "phone": me.phone}

    async def op_resolve(self, client, phone, **_):
        st = self.get(client)
        r = await st.client(functions.contacts.ResolvePhoneRequest(str(phone)))
        uid = r.peer.user_id
        u = next((x for x in r.users if x.id == uid), None)
        if u is None:
            raise RuntimeError(f"resolvePhone: user {uid} not in users")
        st.peers[str(phone)] = (uid, u.access_hash)
        return {"user_id": str(uid), "access_hash": str(u.access_hash)}

    async def op_dh_config(self, client, **_):
        r = await self.dh(self.get(client))
        return {"g": r.g, "p": r.p.hex(), "version": r.version, "random_len": len(r.random)}

    async def op_request_call(self, client, phone, **_):
        st = self.get(client)
        if str(phone) not in st.peers:
            raise RuntimeError(f"resolve {phone} first")
        uid, h = st.peers[str(phone)]
        dh = await self.dh(st)
        p = to_int(dh.p)
        a = to_int(secrets.token_bytes(256))
        g_a = to_256(pow(dh.g, a, p))
        r = await st.client(functions.phone.RequestCallRequest(
            user_id=types.InputUser(uid, h),
            g_a_hash=sha256(g_a),
            protocol=protocol(),
            random_id=int.from_bytes(os.urandom(4), "big", signed=True),
        ))
        pc = r.phone_call
        ctx = st.ctx(pc.id)
        ctx.update(role="caller", a=a, g_a=g_a, p=p, access_hash=pc.access_hash)
        s = st.on_phone_call(pc, "result")
        s["users"] = [str(u.id) for u in r.users]
        return s

    async def op_received(self, client, call_id, access_hash=None, **_):
        st = self.get(client)
        r = await st.client(functions.phone.ReceivedCallRequest(peer=st.input_call(call_id, access_hash)))
        return {"value": r}

    async def op_accept(self, client, call_id, **_):
        st = self.get(client)
        ctx = st.calls.get(str(call_id))
        if not ctx or "g_a_hash" not in ctx:
            raise RuntimeError(f"no phoneCallRequested seen for call {call_id}")
        dh = await self.dh(st)
        ctx["p"] = to_int(dh.p)
        ctx["b"] = to_int(secrets.token_bytes(256))
        ctx["role"] = "callee"
        g_b = to_256(pow(dh.g, ctx["b"], ctx["p"]))
        r = await st.client(functions.phone.AcceptCallRequest(
            peer=st.input_call(call_id), g_b=g_b, protocol=protocol()))
        s = st.on_phone_call(r.phone_call, "result")
        s["users"] = [str(u.id) for u in r.users]
        return s

    async def op_confirm(self, client, call_id, **_):
        st = self.get(client)
        ctx = st.calls.get(str(call_id))
        if not ctx or ctx.get("role") != "caller":
            raise RuntimeError(f"not the caller of {call_id}")
        if "g_b" not in ctx:
            raise RuntimeError(f"no phoneCallAccepted seen for call {call_id}")
        g_b = to_int(ctx["g_b"])
        key = to_256(pow(g_b, ctx["a"], ctx["p"]))
        fp = fingerprint(key)
        r = await st.client(functions.phone.ConfirmCallRequest(
            peer=st.input_call(call_id), g_a=ctx["g_a"], key_fingerprint=fp, protocol=protocol()))
        s = st.on_phone_call(r.phone_call, "result")
        s["users"] = [str(u.id) for u in r.users]
        return {"result": s, "computed_fingerprint": str(fp), "key_sha256": sha256(key).hex(),
                "g_range_ok": g_range_ok(g_b, ctx["p"])}

    async def op_discard(self, client, call_id, reason="hangup", duration=0, **_):
        st = self.get(client)
        r = await st.client(functions.phone.DiscardCallRequest(
            peer=st.input_call(call_id), duration=duration or 0, reason=REASONS[reason or "hangup"](),
            connection_id=0))
        inner = getattr(r, "updates", None)
        if inner is None:
            inner = [r.update] if getattr(r, "update", None) is not None else []
        return {
            "container": lower_first(type(r).__name__),
            "updates": [st.on_phone_call(u.phone_call, "result") if isinstance(u, types.UpdatePhoneCall)
                        else {"update": lower_first(type(u).__name__)} for u in inner],
        }

    async def op_wait(self, client, type=None, call_id=None, timeout=5, **_):  # noqa: A002
        st = self.get(client)

        def match(u):
            return (not type or u["type"] == type) and (call_id is None or u["id"] == str(call_id))

        for u in st.updates:
            if not u.get("taken") and match(u):
                u["taken"] = True
                return u
        fut = asyncio.get_running_loop().create_future()
        w = (match, fut)
        st.waiters.append(w)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ValueError):
                st.waiters.remove(w)
            seen = [f"{u['type']}{'(' + u['reason'] + ')' if u.get('reason') else ''}#{u['id']}{'*' if u.get('taken') else ''}"
                    for u in st.updates]
            raise RuntimeError(f"no {type or 'update'} for call {call_id} within {timeout}s; buffered: [{', '.join(seen)}]") from None

    async def op_drain(self, client, **_):
        st = self.get(client)
        left = [u for u in st.updates if not u.get("taken")]
        st.updates = []
        return left

    async def op_close(self, client, **_):
        st = self.clients.pop(client, None)
        if st:
            await st.client.disconnect()
        return True

    async def shutdown(self):
        for st in list(self.clients.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(st.client.disconnect(), 5)

    async def handle(self, req):
        rid = req.get("id")
        try:
            fn = getattr(self, "op_" + str(req.get("op")), None)
            if fn is None:
                raise RuntimeError(f"unknown op {req.get('op')}")
            args = {k: v for k, v in req.items() if k not in ("id", "op")}
            emit({"id": rid, "ok": True, "result": await fn(**args)})
        except Exception as e:  # noqa: BLE001 - every failure is reported to the driver
            emit({"id": rid, "ok": False, "error": {
                "rpc": rpc_error_name(e),
                "code": getattr(e, "code", None) if isinstance(e, RPCError) else None,
                "class": type(e).__name__,
                "text": str(e),
            }})

    async def main(self):
        trsa.add_key(open(os.path.join(self.data_dir, "server.pub")).read(), old=False)
        emit({"ready": True, "lib": LIB, "layer": alltlobjects.LAYER})
        loop = asyncio.get_running_loop()
        tasks = set()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            try:
                req = json.loads(line)
            except ValueError:
                emit({"id": None, "ok": False, "error": {"text": f"bad json: {line.strip()}"}})
                continue
            if req.get("op") == "exit":
                emit({"id": req.get("id"), "ok": True, "result": True})
                break
            t = asyncio.ensure_future(self.handle(req))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        await self.shutdown()


if __name__ == "__main__":
    asyncio.run(Agent(int(sys.argv[1]), sys.argv[2]).main())
