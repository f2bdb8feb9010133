#!/usr/bin/env python3
"""Pyrogram-family interop driver: the real, unmodified pyrogram 2.0.106, hydrogram 0.2.0, pyrofork 2.3.69 and
kurigram 2.2.26 log in to a real mtcall server, make the everyday calls (get_me, get_users, get_chat,
get_contacts, get_dialogs, resolve by username and by phone), take and place one-to-one calls, and reconnect.

It starts `mtcall serve` on a free port below 32768 with a temporary data dir (and --no-admin), creates
a bot per library with `mtcall bot create` and the accounts the libraries sign in to with mtcall's own
client (`mtcall login`), and starts one agent (agent.py) per library, each in that library's venv. A
kurigram session, the reference peer, calls each library and is called by it; with kurigram under test
the peer is a second session of the same agent. Each library's run:
  login     sign-up of a new test number (pyrofork, which has no sign-up: its sign-in of a new number must
            fail with PHONE_NUMBER_UNOCCUPIED, then it signs in to an account `mtcall login` created), a
            sign-in to an existing account, a bot login with a token from `mtcall bot create`
  everyday  get_me, set_username, resolve (@username, phone), get_users (id, "me", @username), the raw idiom
            invoke(users.getUsers / users.getFullUser with resolve_peer's result), get_chat,
            import_contacts + get_contacts, get_dialogs
  calls     an incoming call (requested -> receivedCall true -> the caller's receive_date -> accept ->
            confirm -> both phoneCall with the same key fingerprint -> discard -> both phoneCallDiscarded)
            and an outgoing one
  reconnect a new client from the exported session string: get_me, and a second incoming call still rings
  requests  every request the library sent (the agent records them) succeeded or failed with an error
            Telegram documents for that method; the requests are listed as `#` lines
Prints one line per check, `ok NAME` or `FAIL NAME: REASON` (`#` lines are information), then
`N passed, M failed`; exit status 1 if any check failed. A reply or push the library could not read is
reported with the constructor id and the request it answered.

Usage (see README.md):
    run.py --mtcall BIN --python-pyrogram P --python-hydrogram P --python-pyrofork P --python-kurigram P
           [--only LIB[,LIB...]] [--keep]
Python 3.11 standard library only, and ../common/harness.py.
"""

import re
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import harness  # noqa: E402 - interop/common/harness.py: Tally, Server, Steps, JsonLines, mtcall_login, finish

LIBS = ("pyrogram", "hydrogram", "pyrofork", "kurigram")
SIGNUP = {"pyrogram", "hydrogram", "kurigram"}  # pyrofork's sign_in raises PhoneNumberUnoccupied, no sign_up
UPDATE_TIMEOUT = 5.0  # a push the server owes us
OP_TIMEOUT = 15.0  # one agent request (the agent gives one library request at most 8 s)
LOGIN_TIMEOUT = 35.0  # the agent gives a login 25 s
READY_TIMEOUT = 30.0
CLI_TIMEOUT = 30.0  # `mtcall login` / `mtcall bot create`

# Test numbers 99966XYYYY log in with code XXXXX; each run has a fresh data dir, so they are fixed.
DIGIT = {"pyrogram": "1", "hydrogram": "2", "pyrofork": "3", "kurigram": "4"}
REF_PHONE = "9996651001"  # the reference peer (a kurigram session)
REF_USERNAME = "ref_peer_interop"


def main_phone(lib):
    return f"99966{DIGIT[lib]}1001"


def existing_phone(lib):
    """An account `mtcall login` creates; the library signs in to it."""
    return f"999666{DIGIT[lib]}001"


# Errors Telegram documents for each method the libraries send here ("Possible errors"), and the
# ones any method may get. A request that failed with anything else, or whose reply the library could not
# read, or that got no answer, fails the library's "requests" check.
DOCUMENTED = {
    "auth.sendCode": {"API_ID_INVALID", "API_ID_PUBLISHED_FLOOD", "AUTH_RESTART", "PHONE_NUMBER_APP_SIGNUP_FORBIDDEN",
                      "PHONE_NUMBER_BANNED", "PHONE_NUMBER_FLOOD", "PHONE_NUMBER_INVALID", "PHONE_PASSWORD_FLOOD",
                      "PHONE_PASSWORD_PROTECTED", "SMS_CODE_CREATE_FAILED"},
    "auth.signIn": {"AUTH_RESTART", "PHONE_CODE_EMPTY", "PHONE_CODE_EXPIRED", "PHONE_CODE_INVALID",
                    "PHONE_NUMBER_INVALID", "PHONE_NUMBER_UNOCCUPIED", "SIGN_IN_FAILED", "UPDATE_APP_TO_LOGIN",
                    "SESSION_PASSWORD_NEEDED"},
    "auth.signUp": {"FIRSTNAME_INVALID", "LASTNAME_INVALID", "PHONE_CODE_EMPTY", "PHONE_CODE_EXPIRED",
                    "PHONE_CODE_INVALID", "PHONE_NUMBER_FLOOD", "PHONE_NUMBER_INVALID", "PHONE_NUMBER_OCCUPIED"},
    "auth.importBotAuthorization": {"ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_INVALID", "API_ID_INVALID",
                                    "API_ID_PUBLISHED_FLOOD"},
    "users.getUsers": {"CHANNEL_INVALID", "CHANNEL_PRIVATE", "FROM_MESSAGE_BOT_DISABLED", "MSG_ID_INVALID",
                       "PEER_ID_INVALID", "USER_BANNED_IN_CHANNEL"},
    "users.getFullUser": {"CHANNEL_PRIVATE", "MSG_ID_INVALID", "USER_ID_INVALID"},
    "contacts.getContacts": set(),
    "contacts.importContacts": set(),
    "contacts.resolveUsername": {"CONNECTION_LAYER_INVALID", "USERNAME_INVALID", "USERNAME_NOT_OCCUPIED"},
    "contacts.resolvePhone": {"PHONE_NOT_OCCUPIED"},
    "account.updateUsername": {"USERNAME_INVALID", "USERNAME_NOT_MODIFIED", "USERNAME_OCCUPIED",
                               "USERNAME_PURCHASE_AVAILABLE"},
    "messages.getDialogs": {"FOLDER_ID_INVALID", "OFFSET_PEER_ID_INVALID", "TIMEOUT"},
    "messages.getDhConfig": {"RANDOM_LENGTH_INVALID"},
    "updates.getState": set(),
    "updates.getDifference": {"CDN_METHOD_INVALID", "CHANNEL_INVALID", "CHANNEL_PRIVATE", "DATE_EMPTY",
                              "HISTORY_GET_FAILED", "PERSISTENT_TIMESTAMP_EMPTY", "PERSISTENT_TIMESTAMP_INVALID",
                              "PERSISTENT_TIMESTAMP_OUTDATED"},
    "phone.requestCall": {"CALL_PROTOCOL_FLAGS_INVALID", "PARTICIPANT_VERSION_OUTDATED", "USER_ID_INVALID",
                          "USER_IS_BLOCKED", "USER_PRIVACY_RESTRICTED"},
    "phone.receivedCall": {"CALL_ALREADY_DECLINED", "CALL_PEER_INVALID"},
    "phone.acceptCall": {"CALL_ALREADY_ACCEPTED", "CALL_ALREADY_DECLINED", "CALL_OCCUPY_FAILED", "CALL_PEER_INVALID",
                         "CALL_PROTOCOL_FLAGS_INVALID"},
    "phone.confirmCall": {"CALL_ALREADY_DECLINED", "CALL_PEER_INVALID"},
    "phone.discardCall": {"CALL_ALREADY_ACCEPTED", "CALL_OCCUPY_FAILED", "CALL_PEER_INVALID"},
}
ANY_METHOD = ("FLOOD_WAIT_",)  # prefixes any method may answer
HANGUP = "phoneCallDiscardReasonHangup"
MISSED = "phoneCallDiscardReasonMissed"

CheckFailed, expect = harness.CheckFailed, harness.expect


# ------------------------------------------------------------------------------------------ agents
def describe_unparsed(items):
    """Constructors a library could not read, as a phrase."""
    out = []
    for u in items or []:
        if u.get("request"):
            out.append(f"{u['id']} in the reply to {u['request']}")
        else:
            out.append(f"{u['id']} in a pushed {u.get('in') or 'message'}")
    return "; ".join(OrderedDict.fromkeys(out))


def describe_error(lib, op, err):
    """An agent's error object as one line: the RPC error name and code and the request it answered, or the
    exception; plus any constructor the library could not read meanwhile."""
    text = " ".join(str(err.get("text") or "").split())
    if err.get("rpc"):
        m = re.search(r'caused by "([^"]+)"', text)
        what = f"RPC error {err.get('code')} {err['rpc']}" + (f" to {m.group(1)}" if m else "")
    elif err.get("class"):
        what = f"{err['class']}: {text}"
    else:
        what = text
    unparsed = describe_unparsed(err.get("unparsed"))
    if unparsed and unparsed not in what and "UnreadableReply" != err.get("class"):
        what += f" [{lib} could not read {unparsed}]"
    return f"{lib} {op}: {what}"


class AgentError(harness.AgentError):
    def __init__(self, lib, op, error):
        super().__init__(lib, op, error)
        self.args = (describe_error(lib, op, error),)

    def __str__(self):
        return self.args[0]


class Agent(harness.JsonLines):
    """One agent.py process in one library's venv."""

    def __init__(self, lib, python, port, data, work):
        self.work = work / f"{lib}-agent"
        self.work.mkdir(parents=True, exist_ok=True)
        super().__init__(lib, [python, str(HERE / "agent.py"), str(port), str(data), str(self.work)],
                         harness.client_env(), work / f"{lib}-agent.log", OP_TIMEOUT)
        self.info = {}

    def result(self, fut, timeout=None):
        try:
            return super().result(fut, timeout)
        except harness.AgentError as e:
            raise AgentError(e.lib, e.op, e.error) from None

    def unparsed_since(self, since):
        try:
            return self.do("unparsed", clear=False, since=since)
        except Exception:  # noqa: BLE001 - the agent is gone
            return []


class Client:
    """One session hosted by an agent."""

    def __init__(self, agent, name, phone=None, first=None):
        self.agent, self.name, self.phone, self.first = agent, name, phone, first
        self.lib = agent.lib
        self.user_id = None
        self.username = None

    def __repr__(self):
        return f"{self.lib}:{self.name}"

    def do(self, op, op_timeout=None, **args):
        return self.agent.do(op, op_timeout=op_timeout, client=self.name, **args)

    def wait(self, type_, call_id, since, timeout=UPDATE_TIMEOUT):
        """The next unconsumed updatePhoneCall push of that type for the call; on a time-out the reason names
        what the library could not read since `since`."""
        try:
            return self.do("wait", op_timeout=timeout + OP_TIMEOUT, type=type_, call_id=call_id, timeout=timeout)
        except AgentError as e:
            pushes = [u for u in self.agent.unparsed_since(since) if not u.get("request")]
            extra = describe_unparsed(pushes)
            raise CheckFailed(str(e) + (f" [{self.lib} could not read {extra}]" if extra and extra not in str(e)
                                        else "")) from None

    def drain(self):
        try:
            return self.do("drain")
        except Exception:  # noqa: BLE001
            return []


# ------------------------------------------------------------------------------------------ checks
def check_user(u, want_id, **fields):
    expect(u is not None, "no user")
    expect(u["id"] == str(want_id), f"user id {u['id']}, want {want_id}")
    for k, v in fields.items():
        expect(u.get(k) == v, f"{k} {u.get(k)!r}, want {v!r}")


class LibraryRun:
    """The checks of one library, with `ref` as the other side of its calls."""

    def __init__(self, tally, args, server, work, agent, ref):
        self.t, self.args, self.server, self.work = tally, args, server, work
        self.agent, self.ref, self.lib = agent, ref, agent.lib
        self.me = Client(agent, "main", main_phone(self.lib), self.lib.capitalize())
        self.sessions = [self.me]
        self.live = []  # (client, call_id) to discard if a scenario broke off
        self.broken = None  # why nothing after the login can run

    def steps(self, title, soft=False, needs_ref=False):
        s = harness.Steps(self.t, f"{self.lib} {title}", soft=soft, clean=(CheckFailed,))
        if self.broken:
            s.broken = self.broken
        elif needs_ref and self.ref.user_id is None:
            s.broken = "the reference peer is not logged in"
        return s

    def mtcall_login(self, c):
        """`mtcall login` creates c's account (mtcall's own client); its user id."""
        return harness.mtcall_login(self.args.mtcall, self.server.port, self.server.data, c.phone, c.first,
                                    self.work / f"mtcall-{c.phone}.session", CLI_TIMEOUT)

    def run(self):
        self.login()
        self.everyday()
        self.call(self.ref, self.me, "incoming call", hangup_by_callee=True)
        self.call(self.me, self.ref, "outgoing call", hangup_by_callee=True)
        self.reconnect()
        self.requests()

    # ---------------------------------------------------------------- login
    def login(self):
        lib, me = self.lib, self.me
        sc = self.steps("login", soft=True)
        if lib in SIGNUP:
            @sc(f"sign up the new number {me.phone} (auth.signUp)")
            def _():
                r = me.do("login", op_timeout=LOGIN_TIMEOUT, phone=me.phone, first=me.first, last="Interop")
                expect(r["signed_up"], f"did not sign up: {r}")
                check_user(r["user"], r["user_id"], first_name=me.first, last_name="Interop", phone=me.phone,
                           is_self=True, is_bot=False)
                me.user_id = r["user_id"]
                return f"user {me.user_id}"
        else:
            @sc(f"sign-in of the new number {me.phone} fails with PHONE_NUMBER_UNOCCUPIED (no sign-up)")
            def _():
                try:
                    r = me.do("login", op_timeout=LOGIN_TIMEOUT, phone=me.phone, first=me.first, signup=False)
                except AgentError as e:
                    expect(e.error.get("rpc") == "PHONE_NUMBER_UNOCCUPIED" and e.error.get("code") == 400,
                           f"want RPC error 400 PHONE_NUMBER_UNOCCUPIED, got {e}")
                    return
                raise CheckFailed(f"logged in: {r}")

            @sc(f"sign in to {me.phone}, an account `mtcall login` created")
            def _():
                uid = self.mtcall_login(me)
                r = me.do("login", op_timeout=LOGIN_TIMEOUT, phone=me.phone, first=me.first, signup=False)
                expect(not r["signed_up"], "signed up")
                check_user(r["user"], uid, first_name=me.first, phone=me.phone, is_self=True, is_bot=False)
                me.user_id = r["user_id"]
                return f"user {me.user_id}"
        if me.user_id is None:
            self.broken = f"{lib} could not log in"

        other = Client(self.agent, "existing", existing_phone(lib), "Existing")

        @sc(f"a second session signs in to {other.phone}, an account `mtcall login` created (auth.signIn)")
        def _():
            uid = self.mtcall_login(other)
            self.sessions.append(other)
            r = other.do("login", op_timeout=LOGIN_TIMEOUT, phone=other.phone, signup=False)
            expect(not r["signed_up"], "signed up")
            check_user(r["user"], uid, first_name=other.first, phone=other.phone, is_self=True, is_bot=False)
            other.user_id = r["user_id"]
            u = other.do("get_me")
            check_user(u, uid, is_self=True)
            other.do("close")
            return f"user {uid}"

        bot = Client(self.agent, "bot")

        @sc("bot login with a token from `mtcall bot create` (auth.importBotAuthorization)")
        def _():
            token = harness.bot_create(self.args.mtcall, self.server.data, f"{lib}_interop_bot", CLI_TIMEOUT)
            self.sessions.append(bot)
            r = bot.do("login", op_timeout=LOGIN_TIMEOUT, bot_token=token)
            check_user(r["user"], token.split(":")[0], is_bot=True, is_self=True, username=f"{lib}_interop_bot")
            u = bot.do("get_me")
            check_user(u, token.split(":")[0], is_bot=True)
            bot.do("close")
            return f"bot {u['id']} @{u['username']}"

    # ---------------------------------------------------------------- everyday calls
    def everyday(self):
        me, ref = self.me, self.ref
        sc = self.steps("everyday", soft=True, needs_ref=True)
        me.username = f"{self.lib}_interop"

        @sc("get_me")
        def _():
            check_user(me.do("get_me"), me.user_id, phone=me.phone, first_name=me.first, is_self=True,
                       is_bot=False)

        @sc(f"set_username {me.username} (account.updateUsername)")
        def _():
            expect(me.do("set_username", username=me.username) is True, "set_username did not return True")
            check_user(me.do("get_me"), me.user_id, username=me.username)

        @sc(f"the reference peer resolves @{me.username} to this user")
        def _():
            r = ref.do("resolve", username=me.username)
            expect(r["user_id"] == me.user_id, f"resolved to {r['user_id']}, want {me.user_id}")

        @sc(f"resolve_peer('@{REF_USERNAME}') (contacts.resolveUsername)")
        def _():
            r = me.do("resolve", username=REF_USERNAME)
            expect(r["user_id"] == ref.user_id, f"resolved to {r['user_id']}, want {ref.user_id}")
            expect(r["peer"] == "inputPeerUser", f"resolve_peer gave {r['peer']}")
            return r["via"]

        @sc(f"resolve_peer('+{ref.phone}') (phone)")
        def _():
            r = me.do("resolve", phone=ref.phone)
            expect(r["user_id"] == ref.user_id, f"resolved to {r['user_id']}, want {ref.user_id}")
            return r["via"]

        @sc("get_users(user id)")
        def _():
            r = me.do("get_users", ids=[ref.user_id])
            expect(len(r) == 1, f"{len(r)} users")
            check_user(r[0], ref.user_id, first_name=ref.first, is_self=False, username=REF_USERNAME)

        @sc('get_users(["me", "@username"])')
        def _():
            r = me.do("get_users", ids=["me", "@" + REF_USERNAME])
            expect(len(r) == 2, f"{len(r)} users")
            check_user(r[0], me.user_id, is_self=True)
            check_user(r[1], ref.user_id, is_self=False)

        @sc("invoke(users.GetUsers(id=[resolve_peer(user id)]))")
        def _():
            r = me.do("invoke_peer", method="users.getUsers", peer=ref.user_id)
            expect(r["users"] == [ref.user_id], f"users {r['users']}, want [{ref.user_id}]")
            return f"id=[{r['peer']}]"

        @sc('invoke(users.GetFullUser(id=resolve_peer("me")))')
        def _():
            r = me.do("invoke_peer", method="users.getFullUser", peer="me")
            expect(r["id"] == me.user_id, f"full user {r['id']}, want {me.user_id}")
            return f"id={r['peer']}"

        @sc("get_chat(user id) is the private chat")
        def _():
            r = me.do("get_chat", chat=ref.user_id)
            expect(r["id"] == ref.user_id, f"chat {r['id']}, want {ref.user_id}")
            expect(str(r["type"]).upper() == "PRIVATE", f"type {r['type']}")

        @sc("import_contacts([the reference peer's phone]) (contacts.importContacts)")
        def _():
            r = me.do("import_contact", phone=ref.phone, first="Ref", last="Peer")
            expect(r["imported"] == [ref.user_id], f"imported {r['imported']}, want [{ref.user_id}]")

        @sc("get_contacts includes the imported contact (contacts.getContacts)")
        def _():
            r = me.do("get_contacts")
            ids = [u["id"] for u in r]
            expect(ref.user_id in ids, f"contacts {ids}, want {ref.user_id} among them")
            return f"{len(r)} contact(s)"

        @sc("get_dialogs (messages.getDialogs)")
        def _():
            r = me.do("get_dialogs", limit=20)
            expect(isinstance(r, list), f"got {r!r}")
            return f"{len(r)} dialog(s)"

    # ---------------------------------------------------------------- calls
    def cleanup(self):
        harness.end_calls(self.live, (self.me, self.ref))

    def call(self, caller, callee, title, hangup_by_callee):
        sc = self.steps(title, needs_ref=True)
        st = {"since": time.time()}
        who = {id(caller): "the caller", id(callee): "the callee"}

        @sc(f"{caller!r} resolves +{callee.phone}; requestCall gives phoneCallWaiting without receive_date")
        def _():
            r = caller.do("resolve", phone=callee.phone)
            expect(r["user_id"] == callee.user_id, f"resolved to {r['user_id']}, want {callee.user_id}")
            r = caller.do("request_call", phone=callee.phone)
            st["id"] = r["id"]
            self.live.append((caller, r["id"]))
            expect(r["type"] == "phoneCallWaiting", f"requestCall gave {r['type']}")
            expect(r.get("receive_date") is None, f"receive_date already set: {r.get('receive_date')}")
            expect(r["admin_id"] == caller.user_id and r["participant_id"] == callee.user_id,
                   f"admin/participant {r['admin_id']}/{r['participant_id']}, want {caller.user_id}/{callee.user_id}")

        @sc(f"{callee!r} gets updatePhoneCall(phoneCallRequested) with g_a_hash")
        def _():
            u = callee.wait("phoneCallRequested", st["id"], st["since"])
            expect(u["admin_id"] == caller.user_id and u["participant_id"] == callee.user_id,
                   f"admin/participant {u['admin_id']}/{u['participant_id']}")
            expect(len(u.get("g_a_hash", "")) == 64, f"g_a_hash {u.get('g_a_hash')}")
            expect(u.get("protocol", {}).get("max_layer") == 92, f"protocol {u.get('protocol')}")

        @sc(f"{callee!r}: phone.receivedCall returns true")
        def _():
            r = callee.do("received", call_id=st["id"])
            expect(r["value"] is True, f"receivedCall gave {r['value']!r}")

        @sc(f"{caller!r} gets phoneCallWaiting with receive_date")
        def _():
            u = caller.wait("phoneCallWaiting", st["id"], st["since"])
            expect(isinstance(u.get("receive_date"), int) and u["receive_date"] > 0,
                   f"receive_date {u.get('receive_date')}")

        @sc(f"{callee!r}: acceptCall gives phoneCallWaiting")
        def _():
            r = callee.do("accept", call_id=st["id"])
            expect(r["type"] == "phoneCallWaiting", f"acceptCall gave {r['type']}")

        @sc(f"{caller!r} gets phoneCallAccepted with a 256-byte g_b")
        def _():
            u = caller.wait("phoneCallAccepted", st["id"], st["since"])
            expect(u.get("g_b_len") == 256, f"g_b has {u.get('g_b_len')} bytes")

        @sc(f"{caller!r}: confirmCall gives phoneCall with its key fingerprint")
        def _():
            r = caller.do("confirm", call_id=st["id"])
            st["fp"] = r["computed_fingerprint"]
            expect(r["g_range_ok"], "g_b out of range")
            expect(r["result"]["type"] == "phoneCall", f"confirmCall gave {r['result']['type']}")
            expect(r["result"].get("key_fingerprint") == st["fp"],
                   f"key_fingerprint {r['result'].get('key_fingerprint')}, computed {st['fp']}")

        @sc(f"{callee!r} gets phoneCall(g_a): SHA256(g_a) = g_a_hash and the same key fingerprint")
        def _():
            u = callee.wait("phoneCall", st["id"], st["since"])
            expect(u.get("g_a_hash_ok") is True, "SHA256(g_a) != g_a_hash")
            expect(u.get("g_range_ok") is True, "g_a out of range")
            expect(u.get("computed_fingerprint") == st["fp"],
                   f"callee computed {u.get('computed_fingerprint')}, caller {st['fp']}")
            expect(u.get("key_fingerprint") == st["fp"], f"relayed key_fingerprint {u.get('key_fingerprint')}")
            return f"fingerprint {int(st['fp']) & 0xFFFFFFFFFFFFFFFF:016x}"

        ender, other = (callee, caller) if hangup_by_callee else (caller, callee)

        @sc(f"{ender!r} ({who[id(ender)]}): discardCall(hangup) gives phoneCallDiscarded")
        def _():
            r = ender.do("discard", call_id=st["id"], reason="hangup", duration=1)
            self.live.clear()
            d = [u for u in r["updates"] if u.get("type") == "phoneCallDiscarded" and u.get("id") == st["id"]]
            expect(d and d[0].get("reason") == HANGUP, f"discardCall result: {r}")

        @sc(f"{other!r} ({who[id(other)]}) gets phoneCallDiscarded(hangup)")
        def _():
            u = other.wait("phoneCallDiscarded", st["id"], st["since"])
            expect(u.get("reason") == HANGUP, f"reason {u.get('reason')}")

        self.cleanup()

    # ---------------------------------------------------------------- reconnect
    def reconnect(self):
        me, ref = self.me, self.ref
        sc = self.steps("reconnect", needs_ref=True)
        st = {"since": time.time()}

        @sc("a new client from the exported session string: same user, same auth key")
        def _():
            r = me.do("reconnect", op_timeout=LOGIN_TIMEOUT)
            expect(r["user_id"] == me.user_id, f"user {r['user_id']}, want {me.user_id}")
            expect(r["same_key"], "a different auth key")

        @sc("get_me after the reconnect")
        def _():
            check_user(me.do("get_me"), me.user_id, is_self=True, username=me.username)

        @sc("a second incoming call still rings: phoneCallRequested after the reconnect")
        def _():
            ref.do("resolve", phone=me.phone)
            r = ref.do("request_call", phone=me.phone)
            st["id"] = r["id"]
            self.live.append((ref, r["id"]))
            u = me.wait("phoneCallRequested", st["id"], st["since"])
            expect(u["admin_id"] == ref.user_id, f"admin {u['admin_id']}, want {ref.user_id}")

        @sc("phone.receivedCall after the reconnect returns true; the caller gets receive_date")
        def _():
            r = me.do("received", call_id=st["id"])
            expect(r["value"] is True, f"receivedCall gave {r['value']!r}")
            u = ref.wait("phoneCallWaiting", st["id"], st["since"])
            expect(isinstance(u.get("receive_date"), int), f"receive_date {u.get('receive_date')}")

        @sc("the caller gives up (missed): phoneCallDiscarded(missed) reaches this client")
        def _():
            ref.do("discard", call_id=st["id"], reason="missed")
            self.live.clear()
            u = me.wait("phoneCallDiscarded", st["id"], st["since"])
            expect(u.get("reason") == MISSED, f"reason {u.get('reason')}")

        self.cleanup()

    # ---------------------------------------------------------------- requests
    def requests(self):
        if not self.broken:
            try:  # information only: whether the calls left dialogs (call history messages)
                d = self.me.do("get_dialogs", limit=20)
                self.t.info(f"{self.lib} get_dialogs after the calls: {len(d)} dialog(s) "
                            f"{[x['chat_id'] for x in d]}")
            except Exception as e:  # noqa: BLE001
                self.t.info(f"{self.lib} get_dialogs after the calls: {e}")
        check_requests(self.t, self.agent, [s.name for s in self.sessions], f"{self.lib} requests")


def outcome(e):
    if "result" in e:
        return e["result"]
    if "error" in e:
        return e["error"] + (f" ({e['code']})" if e.get("code") else "")
    return "no answer"


def bad_entry(e, lib_layer):
    """Why a recorded request is not fine, or None."""
    m = e["method"]
    if "result" in e:
        return None
    if "error" not in e:
        return None if m == "ping" else f"{m}: no answer"
    err = e["error"]
    if e.get("unparsed") or err.startswith("UnreadableReply"):
        return f"{m}: reply has constructor {e.get('unparsed')} unknown to the library ({lib_layer})"
    if re.fullmatch(r"[A-Z0-9_]+", err):
        if err in DOCUMENTED.get(m, set()) or err.startswith(ANY_METHOD):
            return None
        if m not in DOCUMENTED:
            return f"{m}: {err} ({m} is not in this driver's list of documented errors)"
        return f"{m}: {err} (not an error Telegram documents for {m})"
    return f"{m}: {err}"


VOLATILE = re.compile(r"\b(id|user_id|access_hash|client_id|key_fingerprint)=-?\d+|"
                      r"\b(phone_code_hash|bot_auth_token|phone_code|phone_number|username|first_name|last_name)"
                      r"='[^']*'|\bphone='(\+?)\d+'")


def normalize(request):
    """A recorded request without the values that differ from call to call (ids, hashes, names, phone
    numbers but for a leading +), so that the same request shape is listed once."""
    return VOLATILE.sub(lambda m: f"{m.group(1)}=N" if m.group(1) else f"{m.group(2)}=…" if m.group(2)
                        else f"phone='{m.group(3)}N'", request)


def check_requests(tally, agent, names, title):
    """Every request `names` sent: succeeded, or failed with a documented error. Prints them as # lines."""
    sc = harness.Steps(tally, title, soft=True, clean=(CheckFailed,))
    layer = f"{agent.lib} {agent.info.get('version')}, layer {agent.info.get('layer')}"
    entries = []
    for n in names:
        try:
            entries += [dict(e, client=n) for e in agent.do("sent", client=n)]
        except Exception as e:  # noqa: BLE001
            tally.info(f"{agent.lib} {n}: no record ({e})")
    shapes = OrderedDict()
    for e in entries:
        key = (normalize(e["request"]), outcome(e))
        shapes[key] = shapes.get(key, 0) + 1
    methods = list(OrderedDict.fromkeys(e["method"] for e in entries))
    tally.info(f"{agent.lib} ({layer}) methods used: {', '.join(methods)}")
    for (req, out), n in shapes.items():
        tally.info(f"  {agent.lib}: {req} -> {out}" + (f" (x{n})" if n > 1 else ""))

    @sc("every request succeeded or failed with an error Telegram documents for it")
    def _():
        bad = list(OrderedDict.fromkeys(b for b in (bad_entry(e, layer) for e in entries) if b))
        expect(entries, "no requests recorded")
        expect(not bad, f"{len(bad)} problem(s): " + "; ".join(bad))
        return f"{len(entries)} requests, {len(methods)} methods"


# ------------------------------------------------------------------------------------------ main
def main():
    ap = harness.arg_parser(__doc__)
    for lib in LIBS:
        ap.add_argument(f"--python-{lib}", required=True, metavar="PYTHON",
                        help=f"python of a venv made from requirements-{lib}.txt")
    ap.add_argument("--only", help="comma-separated libraries to check (kurigram still hosts the reference peer)")
    a = harness.parse_args(ap)
    only = [x.strip() for x in a.only.split(",")] if a.only else list(LIBS)
    for x in only:
        if x not in LIBS:
            ap.error(f"--only: unknown library {x} (one of {', '.join(LIBS)})")
    pythons = {lib: getattr(a, f"python_{lib}") for lib in LIBS}

    started = time.monotonic()
    tally = harness.Tally()
    work = Path(tempfile.mkdtemp(prefix="mtcall-pyrogram-"))
    tally.info(f"mtcall binary {harness.describe_binary(a.mtcall)}")
    help_text = subprocess.run([a.mtcall, "serve", "--help"], capture_output=True, text=True).stdout
    extra = ["--no-admin"] if "--no-admin" in help_text else []
    server = harness.Server(a.mtcall, work / "data", work / "server.log", extra_args=extra)
    agents = {}
    per_lib = []
    try:
        server.start()
        tally.info(server.banner)
        needed = list(OrderedDict.fromkeys(only + ["kurigram"]))
        for lib in needed:  # started together: they only import while the others start
            agents[lib] = Agent(lib, pythons[lib], server.port, server.data, work)
        for lib in needed:
            ag = agents[lib]
            try:
                ag.info = ag.wait_ready(READY_TIMEOUT)
            except CheckFailed as e:
                tally.fail(f"{lib} agent", str(e))
                continue
            if ag.info.get("lib") != lib:
                tally.fail(f"{lib} agent", f"the interpreter given for {lib} runs {ag.info.get('lib')} "
                                           f"{ag.info.get('version')}")
                continue
            tally.info(f"{lib} agent ready: {lib} {ag.info.get('version')}, layer {ag.info.get('layer')}")

        ref = Client(agents["kurigram"], "ref", REF_PHONE, "Ref")
        sc = harness.Steps(tally, "reference peer (kurigram)", clean=(CheckFailed,))

        @sc(f"signs up {REF_PHONE} and sets @{REF_USERNAME}")
        def _():
            r = ref.do("login", op_timeout=LOGIN_TIMEOUT, phone=REF_PHONE, first="Ref", last="Peer")
            ref.user_id = r["user_id"]
            expect(ref.do("set_username", username=REF_USERNAME) is True, "set_username did not return True")
            ref.username = REF_USERNAME
            return f"user {ref.user_id}"

        for lib in only:
            t0 = time.monotonic()
            p0, f0 = tally.passed, tally.failed
            r = LibraryRun(tally, a, server, work, agents[lib], ref)
            if agents[lib].info.get("lib") != lib:
                r.broken = f"{lib} agent not ready"
            elif ref.user_id is None:
                tally.info(f"{lib}: the reference peer is not logged in; the call checks cannot run")
            try:
                r.run()
            except Exception as e:  # noqa: BLE001 - a driver error is one failed check
                tally.fail(f"{lib} driver", f"{type(e).__name__}: {e}")
            per_lib.append(f"{lib}: {tally.passed - p0} passed, {tally.failed - f0} failed, "
                           f"{time.monotonic() - t0:.1f}s")
            tally.info(per_lib[-1])
        check_requests(tally, agents["kurigram"], ["ref"], "reference peer (kurigram) requests")
    except Exception as e:  # noqa: BLE001 - a driver error is one failed check
        tally.fail("driver", f"{type(e).__name__}: {e}")
    finally:
        for ag in agents.values():
            ag.close()
        reason = server.stop()
        if reason:
            tally.fail("server stop", reason)
    for line in per_lib:
        tally.info(line)
    if tally.failed:
        for lib, ag in agents.items():
            tail = [x for x in harness.log_lines(ag.log_path)
                    if re.search(r"ERROR|Traceback|Error:|could not read|unknown constructor", x)][-8:]
            tally.block(f"{lib} agent log ({ag.log_path}), errors", tail, "!", 300)
    harness.finish(tally, work, a.keep, started, server)


if __name__ == "__main__":
    main()
