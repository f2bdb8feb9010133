"""What the Python agents (interop/calls/telethon_agent.py, interop/pyrogram/agent.py, interop/media/agent.py)
share: the JSON-lines protocol that harness.JsonLines speaks from the driver's side, and for the agents that
do a call's signalling themselves, a client's calls: the DH state of each call, the PhoneCall summaries, and
the buffer of updatePhoneCall pushes handed out by "wait" and "drain". telethon_error reads an exception the
way both Telethon agents report it.

The protocol: one JSON object per line. stdout: {"ready": true, ...} once, then {"id": N, "ok": true,
"result": ...} or {"id": N, "ok": false, "error": {..., "class": ..., "text": ...}}; stdin: {"id": N, "op": OP,
...}, run as the agent's method op_OP(**the other fields), concurrently; {"op": "exit"} ends the loop.

An agent runs in a library's venv, not from a package, so it imports this file by its path:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
    import agent_loop
Python 3.11 standard library only.
"""

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import sys
import time

_out = None  # the protocol's stream (the process's stdout), once take_stdout() ran
_tasks = set()  # the requests running


# ------------------------------------------------------------------ the protocol
def take_stdout():
    """Keeps stdout for the protocol alone: what Python code prints (sys.stdout) and what native code writes
    to file descriptor 1 go to stderr from now on. Call it before importing the library."""
    global _out
    _out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def emit(obj):
    """One line of the protocol."""
    _out.write(json.dumps(obj) + "\n")
    _out.flush()


def reply(req, result):
    """A request's answer: {"id", "ok": true, "result"}."""
    emit({"id": req.get("id"), "ok": True, "result": result})


async def handle(agent, req, error_fields):
    """Runs one request as agent.op_OP(**its other fields) and emits the answer; when it raises, the error
    {**error_fields(e), "class", "text"} (error_fields gives the library's view, such as the RPC error's name
    and code). A cancelled request is answered, then cancelled."""
    try:
        fn = getattr(agent, "op_" + str(req.get("op")), None)
        if fn is None:
            raise RuntimeError(f"unknown op {req.get('op')}")
        reply(req, await fn(**{k: v for k, v in req.items() if k not in ("id", "op")}))
    except BaseException as e:  # noqa: BLE001 - every failure is reported to the driver
        emit({"id": req.get("id"), "ok": False,
              "error": {**error_fields(e), "class": type(e).__name__, "text": str(e) or repr(e)}})
        if not isinstance(e, Exception):
            raise


async def serve(handle_request, ready):
    """Emits the `ready` line, then reads requests from stdin and runs each with handle_request(req) as a task
    of its own; a line that is not JSON is answered with an error. Returns the "exit" request (not answered
    yet), or None at the end of stdin."""
    emit(ready)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return None
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError:
            emit({"id": None, "ok": False, "error": {"text": f"bad json: {line.strip()}"}})
            continue
        if req.get("op") == "exit":
            return req
        t = asyncio.ensure_future(handle_request(req))
        _tasks.add(t)
        t.add_done_callback(_tasks.discard)


def telethon_error(e):
    """handle()'s error_fields for a Telethon agent: the Telegram error name behind the exception (None if it
    is not an RPC error) and its code. Telethon raises a dedicated class for every error name it knows
    (CALL_PEER_INVALID -> errors.CallPeerInvalidError, whose str() is a description without the name), and a
    generic class carrying the name in .message (and str()) for the others."""
    from telethon.errors import RPCError
    from telethon.errors.rpcerrorlist import rpc_errors_dict

    if not isinstance(e, RPCError):
        return {"rpc": None, "code": None}
    name = next((n for n, cls in rpc_errors_dict.items() if type(e) is cls), e.message)
    return {"rpc": name, "code": getattr(e, "code", None)}


def test_code(phone):
    """The login code of a test number: 99966XYYYY takes XXXXX."""
    return str(phone)[5] * 5


def lower_first(s):
    return s[:1].lower() + s[1:] if s else s


# ------------------------------------------------------------------ DH (big-endian 256 bytes)
def to_int(b):
    return int.from_bytes(b, "big")


def to_256(n):
    return n.to_bytes(256, "big")


def sha256(b):
    return hashlib.sha256(b).digest()


def call_fingerprint(key):
    """key_fingerprint: last 8 bytes of SHA1(key) as a signed little-endian int64."""
    return int.from_bytes(hashlib.sha1(key).digest()[-8:], "little", signed=True)


def g_range_ok(gx, p):
    lim = 1 << 1984
    return 1 < gx < p - 1 and lim <= gx <= p - lim


# ------------------------------------------------------------------ a client's calls
def summarize_call(pc):
    """A PhoneCall TL object (Telethon's or a Pyrogram-family library's raw type: the same class names and
    fields) as plain JSON, the shape interop/calls/gramjs_agent.js produces too."""
    s = {"type": lower_first(type(pc).__name__), "id": str(pc.id)}
    for k in ("access_hash", "admin_id", "participant_id", "key_fingerprint"):
        if getattr(pc, k, None) is not None:
            s[k] = str(getattr(pc, k))
    for k in ("date", "receive_date", "start_date", "duration"):
        if hasattr(pc, k):
            v = getattr(pc, k)
            s[k] = int(v.timestamp()) if hasattr(v, "timestamp") else v  # Telethon turns *date ints into datetimes
    if type(pc).__name__ == "PhoneCallDiscarded":
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
        s["protocol"] = {"udp_p2p": bool(p.udp_p2p), "udp_reflector": bool(p.udp_reflector),
                         "min_layer": p.min_layer, "max_layer": p.max_layer,
                         "library_versions": list(p.library_versions or [])}
    if getattr(pc, "connections", None) is not None:
        s["connections"] = len(pc.connections)
    return s


class CallState:
    """One client's calls: per call id a context (role, the DH values a/b, p, g_a, g_a_hash, g_b, the access
    hash), the peers resolved for calling (key -> (user id, access hash)), and its updatePhoneCall pushes in
    arrival order, handed out by wait() (the first one not taken yet that matches) and drain() (all not
    taken). The client does the call's DH itself (caller_dh, callee_dh, caller_key; the library sends the
    requests). A subclass sets InputPhoneCall, the library's class of that name."""

    InputPhoneCall = None

    def __init__(self):
        self.updates = []
        self.waiters = []  # (match, future)
        self.calls = {}  # id str -> ctx dict
        self.peers = {}

    def ctx(self, call_id):
        return self.calls.setdefault(str(call_id), {"id": str(call_id)})

    def on_phone_call(self, pc, via):
        """Records a PhoneCall (pushed, or in a result); does the callee's key check on phoneCall. Returns its
        summary."""
        s = summarize_call(pc)
        ctx = self.ctx(pc.id)
        kind = type(pc).__name__
        if getattr(pc, "access_hash", None) is not None and "access_hash" not in ctx:
            ctx["access_hash"] = pc.access_hash
        if kind == "PhoneCallRequested":
            ctx.setdefault("role", "callee")
            ctx["g_a_hash"] = pc.g_a_hash
        elif kind == "PhoneCallAccepted":
            ctx["g_b"] = pc.g_b
        elif kind == "PhoneCall" and ctx.get("role") == "callee" and "b" in ctx:
            # callee: key = g_a^b mod p, after checking SHA256(g_a) == g_a_hash
            g_a = pc.g_a_or_b
            key = to_256(pow(to_int(g_a), ctx["b"], ctx["p"]))
            s["g_a_hash_ok"] = ctx.get("g_a_hash") == sha256(g_a)
            s["g_range_ok"] = g_range_ok(to_int(g_a), ctx["p"])
            s["computed_fingerprint"] = str(call_fingerprint(key))
            s["key_sha256"] = sha256(key).hex()
        s["via"] = via
        s["t"] = int(time.time() * 1000)
        return s

    def on_result(self, r):
        """The result of phone.requestCall, acceptCall or confirmCall (a phone.PhoneCall): its PhoneCall
        recorded, and its summary with the ids of the users it carries."""
        s = self.on_phone_call(r.phone_call, "result")
        s["users"] = [str(u.id) for u in r.users]
        return s

    def on_updates(self, r):
        """An Updates result (of phone.discardCall): the container's type, and each update it carries, an
        updatePhoneCall's PhoneCall recorded and summarized."""
        inner = getattr(r, "updates", None)
        if inner is None:
            inner = [r.update] if getattr(r, "update", None) is not None else []
        return {"container": lower_first(type(r).__name__),
                "updates": [self.on_phone_call(u.phone_call, "result") if type(u).__name__ == "UpdatePhoneCall"
                            else {"update": lower_first(type(u).__name__)} for u in inner]}

    @staticmethod
    def caller_dh(dh):
        """For phone.requestCall (dh: the messages.DhConfig): a random a and g_a = g^a mod p, as the call's
        context to be, {"role": "caller", "a", "g_a", "p"}. The request carries SHA256(g_a)."""
        p = to_int(dh.p)
        a = to_int(secrets.token_bytes(256))
        return {"role": "caller", "a": a, "g_a": to_256(pow(dh.g, a, p)), "p": p}

    def requested(self, call_id):
        """The context of a call whose phoneCallRequested was seen (RuntimeError if none was)."""
        ctx = self.calls.get(str(call_id))
        if not ctx or "g_a_hash" not in ctx:
            raise RuntimeError(f"no phoneCallRequested seen for call {call_id}")
        return ctx

    @staticmethod
    def callee_dh(ctx, dh):
        """For phone.acceptCall (ctx: requested(); dh: the messages.DhConfig): a random b kept in ctx; g_b."""
        ctx["p"] = to_int(dh.p)
        ctx["b"] = to_int(secrets.token_bytes(256))
        ctx["role"] = "callee"
        return to_256(pow(dh.g, ctx["b"], ctx["p"]))

    def caller_key(self, call_id):
        """For phone.confirmCall, by the caller of a call whose phoneCallAccepted was seen: the key
        g_b^a mod p. Returns (g_a, the key fingerprint, what the answer reports: computed_fingerprint,
        key_sha256, g_range_ok)."""
        ctx = self.calls.get(str(call_id))
        if not ctx or ctx.get("role") != "caller":
            raise RuntimeError(f"not the caller of {call_id}")
        if "g_b" not in ctx:
            raise RuntimeError(f"no phoneCallAccepted seen for call {call_id}")
        g_b = to_int(ctx["g_b"])
        key = to_256(pow(g_b, ctx["a"], ctx["p"]))
        fp = call_fingerprint(key)
        return ctx["g_a"], fp, {"computed_fingerprint": str(fp), "key_sha256": sha256(key).hex(),
                                "g_range_ok": g_range_ok(g_b, ctx["p"])}

    def input_call(self, call_id, access_hash=None):
        """The InputPhoneCall of a call (with the access hash given, or the one seen)."""
        ctx = self.calls.get(str(call_id), {})
        h = access_hash if access_hash is not None else ctx.get("access_hash")
        if h is None:
            raise RuntimeError(f"no access_hash known for call {call_id}")
        return self.InputPhoneCall(id=int(call_id), access_hash=int(h))

    def push(self, s):
        """A pushed PhoneCall's summary: buffered, and handed to a wait() that wants it."""
        self.updates.append(s)
        for w in list(self.waiters):
            match, fut = w
            for u in self.updates:
                if not u.get("taken") and match(u) and not fut.done():
                    u["taken"] = True
                    self.waiters.remove(w)
                    fut.set_result(u)
                    break

    async def wait(self, type_=None, call_id=None, timeout=5):
        """The first push not taken yet of that type (any, if None) for that call (any, if None), waiting up to
        `timeout` seconds for it; on a time-out the error lists what is buffered (* = taken)."""
        def match(u):
            return (not type_ or u["type"] == type_) and (call_id is None or u["id"] == str(call_id))

        for u in self.updates:
            if not u.get("taken") and match(u):
                u["taken"] = True
                return u
        fut = asyncio.get_running_loop().create_future()
        w = (match, fut)
        self.waiters.append(w)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ValueError):
                self.waiters.remove(w)
            seen = [f"{u['type']}{'(' + u['reason'] + ')' if u.get('reason') else ''}#{u['id']}"
                    f"{'*' if u.get('taken') else ''}" for u in self.updates]
            raise RuntimeError(f"no {type_ or 'update'} for call {call_id} within {timeout}s; "
                               f"buffered: [{', '.join(seen)}]") from None

    def drain(self):
        """Every push not taken yet; the buffer is emptied."""
        left = [u for u in self.updates if not u.get("taken")]
        self.updates = []
        return left


class CallOps:
    """The ops "wait" and "drain" of an agent whose clients are CallStates, found by self.get(name)."""

    async def op_wait(self, client, type=None, call_id=None, timeout=5, **_):  # noqa: A002
        return await self.get(client).wait(type, call_id, timeout)

    async def op_drain(self, client, **_):
        return self.get(client).drain()
