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
a/b are random, the key fingerprint is computed locally and reported next to the server's value. The
protocol loop, the update buffer and the DH arithmetic are ../common/agent_loop.py's.
"""

import asyncio
import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import agent_loop  # noqa: E402 - interop/common/agent_loop.py: the protocol, CallState, DH
from agent_loop import sha256, test_code  # noqa: E402

agent_loop.take_stdout()

from telethon import TelegramClient, connection, events  # noqa: E402
from telethon.crypto import rsa as trsa  # noqa: E402
from telethon.sessions import StringSession  # noqa: E402
from telethon.tl import alltlobjects, functions, types  # noqa: E402

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
LIB = "telethon"


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


class State(agent_loop.CallState):
    """One Telethon client and its calls (.peers: phone -> (user id, access hash))."""

    InputPhoneCall = types.InputPhoneCall

    def __init__(self, client):
        super().__init__()
        self.client = client
        self.user_id = None


class Agent(agent_loop.CallOps):
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
        mine = st.caller_dh(await self.dh(st))
        r = await st.client(functions.phone.RequestCallRequest(
            user_id=types.InputUser(uid, h),
            g_a_hash=sha256(mine["g_a"]),
            protocol=protocol(),
            random_id=int.from_bytes(os.urandom(4), "big", signed=True),
        ))
        st.ctx(r.phone_call.id).update(mine, access_hash=r.phone_call.access_hash)
        return st.on_result(r)

    async def op_received(self, client, call_id, access_hash=None, **_):
        st = self.get(client)
        r = await st.client(functions.phone.ReceivedCallRequest(peer=st.input_call(call_id, access_hash)))
        return {"value": r}

    async def op_accept(self, client, call_id, **_):
        st = self.get(client)
        ctx = st.requested(call_id)
        g_b = st.callee_dh(ctx, await self.dh(st))
        r = await st.client(functions.phone.AcceptCallRequest(
            peer=st.input_call(call_id), g_b=g_b, protocol=protocol()))
        return st.on_result(r)

    async def op_confirm(self, client, call_id, **_):
        st = self.get(client)
        g_a, fp, report = st.caller_key(call_id)
        r = await st.client(functions.phone.ConfirmCallRequest(
            peer=st.input_call(call_id), g_a=g_a, key_fingerprint=fp, protocol=protocol()))
        return {"result": st.on_result(r), **report}

    async def op_discard(self, client, call_id, reason="hangup", duration=0, **_):
        st = self.get(client)
        return st.on_updates(await st.client(functions.phone.DiscardCallRequest(
            peer=st.input_call(call_id), duration=duration or 0, reason=REASONS[reason or "hangup"](),
            connection_id=0)))

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
        await agent_loop.handle(self, req, agent_loop.telethon_error)

    async def main(self):
        trsa.add_key(open(os.path.join(self.data_dir, "server.pub")).read(), old=False)
        req = await agent_loop.serve(self.handle, {"ready": True, "lib": LIB, "layer": alltlobjects.LAYER})
        if req is not None:
            agent_loop.reply(req, True)
        await self.shutdown()


if __name__ == "__main__":
    asyncio.run(Agent(int(sys.argv[1]), sys.argv[2]).main())
