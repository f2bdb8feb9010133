#!/usr/bin/env node
// GramJS call agent: hosts any number of GramJS clients (sessions) and performs call-signalling steps on
// request, so that run.py can drive one-to-one calls between GramJS and Telethon.
//
// Usage: NODE_PATH=<dir>/node_modules node gramjs_agent.js PORT DATA_DIR
// Protocol (same as telethon_agent.py): one JSON object per line.
//   stdin : {"id": N, "op": "login"|"resolve"|"dh_config"|"request_call"|"received"|"accept"|"confirm"|
//                              "discard"|"wait"|"drain"|"close"|"exit", "client": NAME, ...}
//   stdout: {"ready": true, ...} once, then {"id": N, "ok": true, "result": ...} or
//           {"id": N, "ok": false, "error": {"rpc": ERROR_NAME|null, "code": N|null, "text": "..."}}
// Requests run concurrently. Every updatePhoneCall a client receives is buffered (in arrival order) and
// handed out by "wait" (first unconsumed match) or "drain" (all). The client does the call's DH itself:
// a/b are random, the key fingerprint is computed locally and reported next to the server's value. The
// protocol loop, the clients' call state and update buffer and the DH arithmetic are ../common/agent_loop.js's.
'use strict';

const crypto = require('crypto');
const bigInt = require('big-integer');
const { TelegramClient, Api } = require('telegram');
const { StringSession } = require('telegram/sessions');
const { Raw } = require('telegram/events');
const loop = require('../common/agent_loop');
const env = require('./mtcall_env');

const { clients, getClient, str, sha256 } = loop;
const [PORT, DATA_DIR] = [Number(process.argv[2]), process.argv[3]];
const LIB = 'gramjs';

loop.takeStdout();

const PROTOCOL = () => new Api.PhoneCallProtocol({
  udpP2p: true, udpReflector: true, minLayer: 65, maxLayer: 92, libraryVersions: ['2.4.4'],
});
const REASONS = {
  missed: () => new Api.PhoneCallDiscardReasonMissed(),
  disconnect: () => new Api.PhoneCallDiscardReasonDisconnect(),
  hangup: () => new Api.PhoneCallDiscardReasonHangup(),
  busy: () => new Api.PhoneCallDiscardReasonBusy(),
};

function inputCall(st, args) {
  const { id, hash } = loop.callPeer(st, args);
  return new Api.InputPhoneCall({ id: bigInt(id), accessHash: bigInt(hash) });
}

async function dhConfig(st) {
  const r = await st.client.invoke(new Api.messages.GetDhConfig({ version: 0, randomLength: 256 }));
  if (r.className !== 'messages.DhConfig') throw new Error(`getDhConfig returned ${r.className}`);
  return r;
}

// ---------------------------------------------------------------- operations
const ops = {
  async login({ client: name, phone, first, last }) {
    const session = new StringSession('');
    session.setDC(2, '127.0.0.1', PORT);
    const client = new TelegramClient(session, env.API_ID, env.API_HASH, env.clientOptions(PORT));
    const st = loop.newState({ client });
    client.addEventHandler((u) => {
      if (u && u.className === 'UpdatePhoneCall' && u.phoneCall) {
        const s = loop.onPhoneCall(st, u.phoneCall, 'push');
        // the users of the carrying updates{} container (GramJS attaches them as _entities)
        s.users = u._entities ? [...u._entities.values()].filter((x) => x.className === 'User').map((x) => str(x.id)) : null;
        loop.pushUpdate(st, s);
      }
    }, new Raw({}));
    let signedUp = false;
    let loginError = null;
    let me;
    try {
      await client.start({
        phoneNumber: String(phone),
        phoneCode: async () => env.testCode(phone),
        firstAndLastNames: async () => { signedUp = true; return [first || 'GramJS', last || 'User']; },
        onError: async (e) => { loginError = e; return true; }, // true = stop retrying
      });
      if (loginError) throw loginError;
      me = await client.getMe();
    } catch (e) {
      await client.destroy().catch(() => {});
      throw e;
    }
    st.userId = str(me.id);
    clients.set(name, st);
    return { user_id: st.userId, signed_up: signedUp, phone: me.phone };
  },

  async resolve({ client: name, phone }) {
    const st = getClient(name);
    const r = await st.client.invoke(new Api.contacts.ResolvePhone({ phone: String(phone) }));
    const uid = str(r.peer.userId);
    const u = r.users.find((x) => str(x.id) === uid);
    if (!u) throw new Error(`resolvePhone: user ${uid} not in users`);
    st.peers.set(String(phone), { id: uid, hash: str(u.accessHash) });
    return { user_id: uid, access_hash: str(u.accessHash) };
  },

  async dh_config({ client: name }) {
    const r = await dhConfig(getClient(name));
    return { g: r.g, p: Buffer.from(r.p).toString('hex'), version: r.version, random_len: r.random.length };
  },

  async request_call({ client: name, phone }) {
    const st = getClient(name);
    const peer = st.peers.get(String(phone));
    if (!peer) throw new Error(`resolve ${phone} first`);
    const mine = loop.callerDh(await dhConfig(st));
    const randomId = crypto.randomBytes(4).readInt32LE(0);
    const r = await st.client.invoke(new Api.phone.RequestCall({
      userId: new Api.InputUser({ userId: bigInt(peer.id), accessHash: bigInt(peer.hash) }),
      randomId,
      gAHash: sha256(mine.gA),
      protocol: PROTOCOL(),
    }));
    Object.assign(loop.ctxFor(st, r.phoneCall.id), mine, { accessHash: str(r.phoneCall.accessHash) });
    return loop.onResult(st, r);
  },

  async received({ client: name, call_id, access_hash }) {
    const st = getClient(name);
    const r = await st.client.invoke(new Api.phone.ReceivedCall({ peer: inputCall(st, { call_id, access_hash }) }));
    return { value: r };
  },

  async accept({ client: name, call_id }) {
    const st = getClient(name);
    const ctx = loop.requested(st, call_id);
    const gB = loop.calleeDh(ctx, await dhConfig(st));
    const r = await st.client.invoke(new Api.phone.AcceptCall({ peer: inputCall(st, { call_id }), gB, protocol: PROTOCOL() }));
    return loop.onResult(st, r);
  },

  async confirm({ client: name, call_id }) {
    const st = getClient(name);
    const { gA, fp, report } = loop.callerKey(st, call_id);
    const r = await st.client.invoke(new Api.phone.ConfirmCall({
      peer: inputCall(st, { call_id }), gA, keyFingerprint: bigInt(fp), protocol: PROTOCOL(),
    }));
    return { result: loop.onResult(st, r), ...report };
  },

  async discard({ client: name, call_id, reason, duration }) {
    const st = getClient(name);
    return loop.onUpdates(st, await st.client.invoke(new Api.phone.DiscardCall({
      peer: inputCall(st, { call_id }), duration: duration || 0, reason: REASONS[reason || 'hangup'](), connectionId: bigInt(0),
    })));
  },

  ...loop.callOps(),
};

function errorInfo(e) {
  return {
    rpc: e && e.errorMessage !== undefined ? e.errorMessage : null, // GramJS RPCError.errorMessage
    code: e && e.code !== undefined ? e.code : null,
    class: e && e.constructor ? e.constructor.name : typeof e,
    text: String((e && e.message) || e),
  };
}

env.addServerKey(DATA_DIR);
loop.serve(ops, errorInfo, { ready: true, lib: LIB, layer: require('telegram/tl/AllTLObjects').LAYER });
