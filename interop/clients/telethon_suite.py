#!/usr/bin/env python3
"""Telethon 1.45 (layer 229) interop suite against a running mtcall server.

Usage: telethon_suite.py fresh|resume PORT DATA_DIR BOT_TOKEN STATE_FILE

`fresh` runs every check on new sessions and saves one logged-in StringSession to STATE_FILE;
`resume` (after the server restarted on the same data dir) loads it and calls get_me.
Prints one line per check, `ok NAME` or `FAIL NAME: REASON`; exits 0 only if all passed.
Test numbers 99966 3 YYYY (login code 33333); YYYY is random, so reruns don't collide.
"""

import asyncio
import contextlib
import json
import logging
import random
import sys
import time

from telethon import TelegramClient, connection, errors, events
from telethon.crypto import rsa as trsa
from telethon.errors import RPCError
from telethon.sessions import StringSession
from telethon.tl import functions, types

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
PHONE_PREFIX = "999663"
CODE = "33333"
FRESH_CONNECTS = 50
STEP_TIMEOUT = 20
UPDATE_TIMEOUT = 5
TRANSPORTS = [
    ("full", connection.ConnectionTcpFull),
    ("intermediate", connection.ConnectionTcpIntermediate),
    ("abridged", connection.ConnectionTcpAbridged),
    ("obfuscated", connection.ConnectionTcpObfuscated),
]

failed = 0


def report(name, error=None, detail=""):
    global failed
    if error is None:
        print(f"ok {name}" + (f" ({detail})" if detail else ""), flush=True)
    else:
        failed += 1
        reason = str(error).replace("\n", " ") or type(error).__name__
        print(f"FAIL {name}: {type(error).__name__}: {reason}", flush=True)


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


async def check(name, coro):
    """Runs one check with a timeout; returns its result or None on failure."""
    try:
        result = await asyncio.wait_for(coro, STEP_TIMEOUT * 3)
    except Exception as e:  # noqa: BLE001 - every failure is reported, never raised
        report(name, e)
        return None
    detail = result if isinstance(result, str) else ""
    report(name, detail=detail)
    return result if result is not None else True


class Suite:
    def __init__(self, port):
        self.port = port
        self.clients = []

    def client(self, session="", conn=connection.ConnectionTcpFull):
        s = StringSession(session)
        if not session:
            s.set_dc(2, "127.0.0.1", self.port)
        c = TelegramClient(
            s,
            API_ID,
            API_HASH,
            connection=conn,
            connection_retries=1,
            retry_delay=1,
            request_retries=2,
            timeout=5,
            auto_reconnect=False,
        )
        self.clients.append(c)
        return c

    async def close_all(self):
        for c in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.disconnect(), 5)
        self.clients.clear()

    # ----------------------------------------------------------------------------------------
    async def fresh_connects(self):
        started = time.monotonic()
        failures = []
        for i in range(FRESH_CONNECTS):
            c = self.client()
            try:
                await asyncio.wait_for(c.connect(), STEP_TIMEOUT)
                authorized = await asyncio.wait_for(c.is_user_authorized(), STEP_TIMEOUT)
                if authorized:
                    failures.append(f"#{i}: fresh key claims to be authorized")
                elif c.session.auth_key is None or c.session.auth_key.key is None:
                    failures.append(f"#{i}: no auth key")
            except Exception as e:  # noqa: BLE001
                failures.append(f"#{i}: {type(e).__name__}: {e}")
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(c.disconnect(), 5)
                self.clients.remove(c)
            if len(failures) >= 3 and len(failures) == i + 1:
                failures[-1] += " (aborting: the first 3 attempts all failed)"
                break
        expect(not failures, f"{len(failures)} of {i + 1} tried failed: " + "; ".join(failures))
        return f"{FRESH_CONNECTS}/{FRESH_CONNECTS} in {time.monotonic() - started:.1f}s"

    async def sign_up(self, phone, first_name):
        """New account with raw requests (Telethon 1.45's start() cannot sign up)."""
        c = self.client()
        await c.connect()
        sent = await c(functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings()))
        r = await c(functions.auth.SignInRequest(phone, sent.phone_code_hash, CODE))
        expect(
            isinstance(r, types.auth.AuthorizationSignUpRequired),
            f"auth.signIn of a new number: want authorizationSignUpRequired, got {type(r).__name__}",
        )
        r = await c(functions.auth.SignUpRequest(phone, sent.phone_code_hash, first_name, "Telethon"))
        expect(isinstance(r, types.auth.Authorization), f"auth.signUp: got {type(r).__name__}")
        me = await c.get_me()
        expect(me is not None and me.id == r.user.id, f"get_me after sign-up: {me!r}")
        expect(me.phone == phone, f"get_me phone {me.phone!r}, want {phone}")
        return c, r.user

    async def sign_in(self, phone, want_id, conn=connection.ConnectionTcpFull):
        """Existing account through Telethon's own send_code_request + sign_in."""
        c = self.client(conn=conn)
        await c.connect()
        expect(not await c.is_user_authorized(), "fresh session is authorized")
        await c.send_code_request(phone)
        user = await c.sign_in(phone, CODE)
        expect(isinstance(user, types.User), f"sign_in returned {type(user).__name__}")
        expect(user.id == want_id, f"signed in as {user.id}, want {want_id}")
        me = await c.get_me()
        expect(me.id == want_id and not me.bot, f"get_me: {me.id} bot={me.bot}")
        return c

    async def bot_login(self, token):
        c = self.client()
        with contextlib.redirect_stdout(sys.stderr):  # start() prints a greeting
            await c.start(bot_token=token)
        me = await c.get_me()
        expect(me is not None and me.bot, f"get_me after bot login: {me!r}")
        expect(str(me.id) == token.split(":")[0], f"bot id {me.id} does not match the token")
        return f"bot id {me.id}"

    async def resolve(self, c, user_b, name_b, phone_b):
        def pick(what, r):
            expect(
                isinstance(r.peer, types.PeerUser) and r.peer.user_id == user_b.id,
                f"{what}: peer {r.peer!r}, want user {user_b.id}",
            )
            users = [u for u in r.users if u.id == user_b.id]
            expect(users and users[0].access_hash, f"{what}: user {user_b.id} without access_hash")
            return users[0].access_hash

        hashes = []

        async def by_name():
            r = await c(functions.contacts.ResolveUsernameRequest(name_b))
            hashes.append(pick("resolveUsername", r))
            ent = await c.get_entity(name_b)  # Telethon's own path
            expect(ent.id == user_b.id, f"get_entity({name_b}) = {ent.id}")
            return f"id {user_b.id} hash {hashes[-1]}"

        async def by_phone():
            r = await c(functions.contacts.ResolvePhoneRequest(phone_b))
            hashes.append(pick("resolvePhone", r))
            return f"id {user_b.id} hash {hashes[-1]}"

        async def usable():
            expect(hashes, "nothing resolved")
            got = await c(functions.users.GetUsersRequest([types.InputUser(user_b.id, hashes[0])]))
            expect(
                len(got) == 1 and isinstance(got[0], types.User) and got[0].id == user_b.id,
                f"users.getUsers with the resolved hash: {got!r}",
            )
            try:
                bad = await c(functions.users.GetUsersRequest([types.InputUser(user_b.id, hashes[0] ^ 0x5A5A)]))
            except RPCError as e:
                # Telethon maps known error names to classes (USER_ID_INVALID -> UserIdInvalidError).
                expect(isinstance(e, errors.UserIdInvalidError), f"wrong access hash: want USER_ID_INVALID, got {e!r}")
                return ""
            raise CheckFailed(f"wrong access hash accepted: {bad!r}")

        await check("resolve username", by_name())
        await check("resolve phone", by_phone())
        await check("access hash usable", usable())

    async def pushed_update(self, a1, a2, user_a, name_a):
        got = asyncio.get_running_loop().create_future()
        seen = []

        async def on_raw(update):
            seen.append(type(update).__name__)
            if (
                isinstance(update, types.UpdateUserName)
                and update.user_id == user_a.id
                and any(u.username == name_a for u in update.usernames)
                and not got.done()
            ):
                got.set_result(update)

        a1.add_event_handler(on_raw, events.Raw)
        try:
            u = await a2(functions.account.UpdateUsernameRequest(name_a))
            expect(u.username == name_a, f"account.updateUsername returned {u.username!r}")
            try:
                await asyncio.wait_for(asyncio.shield(got), UPDATE_TIMEOUT)
            except asyncio.TimeoutError:
                raise CheckFailed(f"no updateUserName within {UPDATE_TIMEOUT}s (saw {seen})") from None
        finally:
            a1.remove_event_handler(on_raw)

    # ----------------------------------------------------------------------------------------
    async def fresh(self, token, state_file):
        await check("50 fresh connects", self.fresh_connects())

        suffix = random.randrange(10000)
        phone_a = f"{PHONE_PREFIX}{suffix:04}"
        phone_b = f"{PHONE_PREFIX}{(suffix + 5000) % 10000:04}"
        name_a, name_b = f"tt_a{suffix:04}", f"tt_b{suffix:04}"

        signed_up = await check("sign up", self.sign_up(phone_a, "Alice"))
        user_a = signed_up[1] if signed_up else None
        a1 = a2 = None
        if user_a:
            a1 = await check("sign in existing account", self.sign_in(phone_a, user_a.id))
            a2 = await self.sign_in_quiet(phone_a, user_a.id)
        else:
            report("sign in existing account", CheckFailed("no account from sign up"))

        for tname, cls in TRANSPORTS:

            async def on_transport(cls=cls, tname=tname):
                expect(user_a, "no account from sign up")
                c = await self.sign_in(phone_a, user_a.id, conn=cls)
                await c.disconnect()
                return f"{cls.__name__}: handshake + sign in + get_me"

            await check(f"transport {tname}", on_transport())

        await check("bot login", self.bot_login(token))

        async def setup_b():
            c, user_b = await self.sign_up(phone_b, "Bob")
            u = await c(functions.account.UpdateUsernameRequest(name_b))
            expect(u.username == name_b, f"account.updateUsername returned {u.username!r}")
            return user_b

        try:
            user_b = await asyncio.wait_for(setup_b(), STEP_TIMEOUT * 2)
        except Exception as e:  # noqa: BLE001
            for n in ("resolve username", "resolve phone", "access hash usable"):
                report(n, CheckFailed(f"setting up user B: {type(e).__name__}: {e}"))
        else:
            if a1:
                await self.resolve(a1, user_b, name_b, phone_b)
            else:
                for n in ("resolve username", "resolve phone", "access hash usable"):
                    report(n, CheckFailed("user A not signed in"))

        async def pushed():
            expect(a1 and a2, "user A not signed in on two sessions")
            await self.pushed_update(a1, a2, user_a, name_a)

        await check("pushed updateUserName", pushed())

        async def save():
            expect(a1, "user A not signed in")
            data = {"client": "telethon", "session": a1.session.save(), "user_id": user_a.id, "phone": phone_a}
            with open(state_file, "w") as f:
                json.dump(data, f)

        await check("save session", save())

    async def sign_in_quiet(self, phone, want_id):
        try:
            return await asyncio.wait_for(self.sign_in(phone, want_id), STEP_TIMEOUT * 2)
        except Exception as e:  # noqa: BLE001
            print(f"second session of user A failed: {type(e).__name__}: {e}", file=sys.stderr)
            return None

    async def resume(self, state_file):
        async def run():
            with open(state_file) as f:
                data = json.load(f)
            c = self.client(session=data["session"])
            key = c.session.auth_key.key
            expect(c.session.port == self.port, f"saved session has port {c.session.port}")
            await c.connect()
            me = await c.get_me()
            expect(me is not None, "get_me returned None: the saved session is not authorized")
            expect(me.id == data["user_id"], f"get_me: id {me.id}, want {data['user_id']}")
            expect(c.session.auth_key.key == key, "the client replaced the saved auth key")
            return f"user {me.id}"

        await check("resume session", run())


async def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("fresh", "resume"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    phase, port, data_dir, token, state_file = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    with open(f"{data_dir}/server.pub") as f:
        trsa.add_key(f.read(), old=False)
    suite = Suite(int(port))
    try:
        if phase == "fresh":
            await suite.fresh(token, state_file)
        else:
            await suite.resume(state_file)
    finally:
        await suite.close_all()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(1 if failed else 0)
