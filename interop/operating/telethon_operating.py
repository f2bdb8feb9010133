#!/usr/bin/env python3
"""Telethon 1.45 against an mtcall server run as an operator would: the `[auth]` settings seen by a
real client (driven by run.py, which starts the server with each phase's configuration).

Usage: telethon_operating.py PHASE PORT DATA_DIR CODES_FILE NUMBERS_JSON

Phases (the configuration run.py gives the server for each):
  allowlist  test_numbers = false, signup = "allowlist" (NUMBERS.allowed added with `mtcall users add`),
             code_command appending "PHONE CODE" to CODES_FILE, the sendCode limits small and loopback
             not exempt
  closed     signup = "closed", the same data: the account made in `allowlist` still logs in, a new
             number does not
  key_pinned   the client knows only the public key MTCALL_PINNED_KEY names (not server.pub): the account
               made in `allowlist` logs in through it
  key_refused  the same with a key the server no longer offers: the key exchange finds no key it knows
  password   the account made in `allowlist` sets a cloud password with Telethon's edit_2fa; start() with
             a wrong one is refused (PASSWORD_HASH_INVALID), with the right one logs in; edit_2fa removes it
NUMBERS_JSON: {"allowed", "allowed_later", "stranger", "test", "flood_prefix"}.
Prints `ok NAME [(DETAIL)]` or `FAIL NAME: REASON` per check; exits 0 only if all passed.
"""

import asyncio
import contextlib
import json
import logging
import os
import sys

from telethon import TelegramClient, connection, errors
import rsa as pyrsa
from telethon.crypto import rsa as trsa
from telethon.sessions import StringSession
from telethon.tl import functions, types

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
STEP_TIMEOUT = 30

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
    try:
        result = await asyncio.wait_for(coro, STEP_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - every failure is reported, never raised
        report(name, e)
        return None
    report(name, detail=result if isinstance(result, str) else "")
    return True


def hooked_code(codes_file, phone):
    """The newest code the server's code command was given for `phone`."""
    code = None
    with open(codes_file) as f:
        for line in f:
            got_phone, _, got_code = line.strip().partition(" ")
            if got_phone == phone:
                code = got_code
    expect(code is not None, f"the code command was given no code for {phone}")
    return code


async def rpc_error(coro, cls):
    """Awaits `coro`, which must fail with `cls`; returns the error."""
    try:
        await coro
    except cls as e:
        return e
    except errors.RPCError as e:
        raise CheckFailed(f"answered {type(e).__name__} ({e.code} {e.message}), want {cls.__name__}") from None
    raise CheckFailed(f"succeeded, want {cls.__name__}")


class Suite:
    def __init__(self, port, codes_file, numbers):
        self.port, self.codes_file, self.numbers = port, codes_file, numbers
        self.clients = []

    async def client(self):
        s = StringSession()
        s.set_dc(2, "127.0.0.1", self.port)
        # flood_sleep_threshold 0: a FLOOD_WAIT is raised, not slept through; request_retries 1: a
        # failed request is not sent again behind the check's back.
        c = TelegramClient(s, API_ID, API_HASH, connection=connection.ConnectionTcpFull, connection_retries=1,
                           request_retries=1, timeout=5, auto_reconnect=False, flood_sleep_threshold=0)
        self.clients.append(c)
        await c.connect()
        return c

    async def close_all(self):
        for c in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.disconnect(), 5)
        self.clients.clear()

    async def send_code(self, c, phone):
        return await c(functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings()))

    async def login(self, phone):
        """Telethon's own login path: start() with the code the hook got."""
        c = await self.client()
        await c.start(phone=phone, code_callback=lambda: hooked_code(self.codes_file, phone), max_attempts=1)
        me = await c.get_me()
        expect(me is not None and me.phone == phone, f"get_me: {me and me.phone}, want {phone}")
        return c, me

    async def sign_up(self, phone, first_name):
        """A new account by raw requests (Telethon 1.45's start() cannot sign up) with the hooked code."""
        c = await self.client()
        sent = await self.send_code(c, phone)
        code = hooked_code(self.codes_file, phone)
        r = await c(functions.auth.SignInRequest(phone, sent.phone_code_hash, code))
        expect(isinstance(r, types.auth.AuthorizationSignUpRequired), f"auth.signIn: {type(r).__name__}")
        r = await c(functions.auth.SignUpRequest(phone, sent.phone_code_hash, first_name, "Telethon"))
        expect(isinstance(r, types.auth.Authorization), f"auth.signUp: {type(r).__name__}")
        me = await c.get_me()
        expect(me is not None and me.phone == phone, f"get_me: {me and me.phone}, want {phone}")
        return c, me

    # ------------------------------------------------------------------------------------ allowlist
    async def allowlist(self):
        n = self.numbers

        async def test_number_refused():
            c = await self.client()
            await rpc_error(self.send_code(c, n["test"]), errors.PhoneNumberInvalidError)
            return f"+{n['test']}: PHONE_NUMBER_INVALID"

        async def stranger_refused():
            c = await self.client()
            await rpc_error(self.send_code(c, n["stranger"]), errors.PhoneNumberUnoccupiedError)
            return f"+{n['stranger']}: PHONE_NUMBER_UNOCCUPIED"

        async def wrong_code():
            c = await self.client()
            sent = await self.send_code(c, n["allowed"])
            code = hooked_code(self.codes_file, n["allowed"])
            wrong = f"{(int(code) + 1) % 100000:05d}"
            await rpc_error(c.sign_in(n["allowed"], wrong, phone_code_hash=sent.phone_code_hash),
                            errors.PhoneCodeInvalidError)
            return "PHONE_CODE_INVALID"

        async def allowed_signs_up():
            _, me = await self.sign_up(n["allowed"], "Allowed")
            return f"user {me.id} from the hooked code"

        async def existing_signs_in():
            _, me = await self.login(n["allowed"])
            return f"user {me.id} again"

        async def codes_per_number():
            # The hour's three codes for this number went to the wrong-code try, the sign-up and the
            # second login: the fourth is refused.
            c = await self.client()
            await rpc_error(self.send_code(c, n["allowed"]), errors.PhoneNumberFloodError)
            return "4th code in the hour: PHONE_NUMBER_FLOOD"

        async def codes_per_address():
            c = await self.client()
            for i in range(20):
                try:
                    await self.send_code(c, f"{n['flood_prefix']}{i:02d}")
                except errors.FloodWaitError as e:
                    expect(e.seconds > 0, f"FLOOD_WAIT_{e.seconds}")
                    return f"refused after {i} more: FLOOD_WAIT_{e.seconds}"
                except errors.PhoneNumberUnoccupiedError:
                    continue  # counted against the address, then refused as off the allowlist
            raise CheckFailed("20 codes asked for from one address without FLOOD_WAIT")

        await check("test number refused when test numbers are off", test_number_refused())
        await check("number off the allowlist refused", stranger_refused())
        await check("wrong code", wrong_code())
        await check("allowlisted number signs up with the hooked code", allowed_signs_up())
        await check("existing account signs in", existing_signs_in())
        await check("codes per number limited", codes_per_number())
        await check("codes per address limited", codes_per_address())

    # ------------------------------------------------------------------------------------ closed
    async def closed(self):
        n = self.numbers

        async def existing_signs_in():
            _, me = await self.login(n["allowed"])
            return f"user {me.id}"

        async def new_number_refused():
            c = await self.client()
            await rpc_error(self.send_code(c, n["allowed_later"]), errors.PhoneNumberUnoccupiedError)
            return f"+{n['allowed_later']} (on the allowlist, which closed sign-up ignores): PHONE_NUMBER_UNOCCUPIED"

        await check("closed sign-up: existing account signs in", existing_signs_in())
        await check("closed sign-up: new number refused", new_number_refused())


    # ------------------------------------------------------------------------------------ keys
    async def key_pinned(self):
        async def pinned_logs_in():
            _, me = await self.login(self.numbers["allowed"])
            return f"user {me.id} through key {PINNED_FINGERPRINT}"

        await check("a client that pinned the key logs in", pinned_logs_in())

    async def key_refused(self):
        async def refused():
            seen = KeyWarnings()
            logging.getLogger("telethon.network.mtprotosender").addHandler(seen)
            try:
                await self.client()
            except ConnectionError as e:
                failure = e
            else:
                raise CheckFailed("connected, though the server should no longer offer the pinned key")
            finally:
                logging.getLogger("telethon.network.mtprotosender").removeHandler(seen)
            expect(seen.messages, f"connect failed ({failure}) but not for want of a key")
            expect(str(PINNED_FINGERPRINT) not in seen.messages[0],
                   f"the server still offers the pinned key: {seen.messages[0]}")
            return seen.messages[0].split(": ", 1)[-1]

        await check("a client that pinned only a retired key is refused", refused())


    # ------------------------------------------------------------------------------------ password
    async def password(self):
        phone, secret = self.numbers["allowed"], "correct horse battery"

        async def set_password():
            c, _ = await self.login(phone)
            expect(await c.edit_2fa(new_password=secret, hint="the usual"), "edit_2fa returned False")
            return "edit_2fa: account.getPassword, account.updatePasswordSettings"

        async def wrong_refused():
            c = await self.client()
            await rpc_error(c.start(phone=phone, code_callback=lambda: hooked_code(self.codes_file, phone),
                                    password="wrong horse", max_attempts=1), errors.PasswordHashInvalidError)
            return "SESSION_PASSWORD_NEEDED, then PASSWORD_HASH_INVALID"

        async def right_logs_in():
            c = await self.client()
            await c.start(phone=phone, code_callback=lambda: hooked_code(self.codes_file, phone), password=secret,
                          max_attempts=1)
            me = await c.get_me()
            expect(me is not None and me.phone == phone, f"get_me: {me and me.phone}")
            expect(await c.edit_2fa(current_password=secret, new_password=None), "edit_2fa returned False")
            return f"user {me.id}; then removed with edit_2fa"

        async def removed():
            _, me = await self.login(phone)
            return f"user {me.id} logs in with the code alone"

        await check("cloud password set", set_password())
        await check("wrong cloud password refused", wrong_refused())
        await check("cloud password logs in", right_logs_in())
        await check("cloud password removed", removed())


class KeyWarnings(logging.Handler):
    """Telethon's warnings that a key exchange found no key it knows among the server's fingerprints."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        text = record.getMessage()
        if "could not find a valid key" in text:
            self.messages.append(text)


PINNED_FINGERPRINT = None
PHASES = ("allowlist", "closed", "key_pinned", "key_refused", "password")


async def main():
    global PINNED_FINGERPRINT
    if len(sys.argv) != 6 or sys.argv[1] not in PHASES:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    phase, port, data_dir, codes_file, numbers = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    with open(os.environ.get("MTCALL_PINNED_KEY") or f"{data_dir}/server.pub") as f:
        pem = f.read()
    trsa.add_key(pem, old=False)
    PINNED_FINGERPRINT = trsa._compute_fingerprint(pyrsa.PublicKey.load_pkcs1(pem))
    suite = Suite(int(port), codes_file, json.loads(numbers))
    try:
        await getattr(suite, phase)()
    finally:
        await suite.close_all()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(1 if failed else 0)
