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
// a/b are random, the key fingerprint is computed locally and reported next to the server's value.
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const bigInt = require('big-integer');
const { TelegramClient, Api } = require('telegram');
const { StringSession } = require('telegram/sessions');
const { Raw } = require('telegram/events');
const env = require('./mtcall_env');

const [PORT, DATA_DIR] = [Number(process.argv[2]), process.argv[3]];
const LIB = 'gramjs';

// stdout carries the protocol only; anything a library prints goes to stderr.
const out = process.stdout.write.bind(process.stdout);
console.log = (...a) => process.stderr.write(`${a.map(String).join(' ')}\n`);
const emit = (obj) => out(`${JSON.stringify(obj)}\n`);

const PROTOCOL = () => new Api.PhoneCallProtocol({
  udpP2p: true, udpReflector: true, minLayer: 65, maxLayer: 92, libraryVersions: ['2.4.4'],
});
const REASONS = {
  missed: () => new Api.PhoneCallDiscardReasonMissed(),
  disconnect: () => new Api.PhoneCallDiscardReasonDisconnect(),
  hangup: () => new Api.PhoneCallDiscardReasonHangup(),
  busy: () => new Api.PhoneCallDiscardReasonBusy(),
};

// ---------------------------------------------------------------- DH (BigInt, big-endian 256 bytes)
const toBig = (buf) => BigInt(`0x${Buffer.from(buf).toString('hex') || '0'}`);
const toBuf256 = (n) => Buffer.from(n.toString(16).padStart(512, '0'), 'hex');
function modPow(base, exp, mod) {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const sha1 = (b) => crypto.createHash('sha1').update(b).digest();
/** key_fingerprint: last 8 bytes of SHA1(key) as a signed little-endian int64. */
const fingerprint = (key) => sha1(key).readBigInt64LE(12).toString();
/** 1 < g_x < p-1 and 2^(2048-64) <= g_x <= p - 2^(2048-64) (end-to-end docs). */
function gRangeOk(gx, p) {
  const lim = 1n << 1984n;
  return gx > 1n && gx < p - 1n && gx >= lim && gx <= p - lim;
}

// ---------------------------------------------------------------- state
const clients = new Map(); // name -> {client, userId, updates: [], waiters: [], calls: Map(id -> ctx), peers: Map(phone -> {id, hash})}

function str(v) {
  if (v === undefined || v === null) return null;
  return v.toString();
}
const lowerFirst = (s) => (s ? s[0].toLowerCase() + s.slice(1) : s);

/** A PhoneCall object as plain JSON (the same shape telethon_agent.py produces). */
function summarize(pc) {
  const s = { type: lowerFirst(pc.className), id: str(pc.id) };
  for (const [k, name] of [['accessHash', 'access_hash'], ['adminId', 'admin_id'], ['participantId', 'participant_id'],
    ['keyFingerprint', 'key_fingerprint']]) {
    if (pc[k] !== undefined) s[name] = str(pc[k]);
  }
  for (const [k, name] of [['date', 'date'], ['receiveDate', 'receive_date'], ['startDate', 'start_date'], ['duration', 'duration']]) {
    if (pc[k] !== undefined) s[name] = pc[k] === null ? null : pc[k];
  }
  if (pc.className === 'PhoneCallWaiting' && pc.receiveDate === undefined) s.receive_date = null;
  if (pc.className === 'PhoneCallDiscarded') {
    s.reason = pc.reason ? lowerFirst(pc.reason.className) : null;
    s.need_rating = !!pc.needRating;
    s.need_debug = !!pc.needDebug;
  }
  if (pc.gAHash) s.g_a_hash = Buffer.from(pc.gAHash).toString('hex');
  if (pc.gB) s.g_b_len = pc.gB.length;
  if (pc.gAOrB) s.g_a_or_b_len = pc.gAOrB.length;
  if (pc.video !== undefined) s.video = !!pc.video;
  if (pc.protocol) {
    const p = pc.protocol;
    s.protocol = {
      udp_p2p: !!p.udpP2p, udp_reflector: !!p.udpReflector, min_layer: p.minLayer, max_layer: p.maxLayer,
      library_versions: p.libraryVersions,
    };
  }
  if (pc.connections) s.connections = pc.connections.length;
  return s;
}

function ctxFor(st, id) {
  const key = str(id);
  if (!st.calls.has(key)) st.calls.set(key, { id: key });
  return st.calls.get(key);
}

/** Records a pushed (or result-carried) PhoneCall; does the callee's key check on phoneCall. */
function onPhoneCall(st, pc, via) {
  const s = summarize(pc);
  const ctx = ctxFor(st, pc.id);
  if (pc.accessHash !== undefined && !ctx.accessHash) ctx.accessHash = str(pc.accessHash);
  if (pc.className === 'PhoneCallRequested') {
    ctx.role = ctx.role || 'callee';
    ctx.gAHash = Buffer.from(pc.gAHash);
  } else if (pc.className === 'PhoneCallAccepted') {
    ctx.gB = Buffer.from(pc.gB);
  } else if (pc.className === 'PhoneCall' && ctx.role === 'callee' && ctx.b !== undefined) {
    // callee: key = g_a^b mod p, after checking SHA256(g_a) == g_a_hash
    const gA = Buffer.from(pc.gAOrB);
    const gABig = toBig(gA);
    const key = toBuf256(modPow(gABig, ctx.b, ctx.p));
    s.g_a_hash_ok = !!ctx.gAHash && sha256(gA).equals(ctx.gAHash);
    s.g_range_ok = gRangeOk(gABig, ctx.p);
    s.computed_fingerprint = fingerprint(key);
    s.key_sha256 = sha256(key).toString('hex');
  }
  s.via = via;
  s.t = Date.now();
  return s;
}

function pushUpdate(st, s) {
  st.updates.push(s);
  for (const w of [...st.waiters]) {
    const i = st.updates.findIndex((u) => !u.taken && w.match(u));
    if (i >= 0) {
      st.updates[i].taken = true;
      st.waiters.splice(st.waiters.indexOf(w), 1);
      w.resolve(st.updates[i]);
    }
  }
}

function getClient(name) {
  const st = clients.get(name);
  if (!st) throw new Error(`no client ${name}`);
  return st;
}

function inputCall(st, args) {
  const ctx = st.calls.get(String(args.call_id)) || {};
  const id = args.call_id;
  const hash = args.access_hash !== undefined ? args.access_hash : ctx.accessHash;
  if (hash === undefined || hash === null) throw new Error(`no access_hash known for call ${id}`);
  return new Api.InputPhoneCall({ id: bigInt(String(id)), accessHash: bigInt(String(hash)) });
}

async function dhConfig(st) {
  const r = await st.client.invoke(new Api.messages.GetDhConfig({ version: 0, randomLength: 256 }));
  if (r.className !== 'messages.DhConfig') throw new Error(`getDhConfig returned ${r.className}`);
  return r;
}

function randomExponent() {
  return toBig(crypto.randomBytes(256));
}

// ---------------------------------------------------------------- operations
const ops = {
  async login({ client: name, phone, first, last }) {
    const session = new StringSession('');
    session.setDC(2, '127.0.0.1', PORT);
    const client = new TelegramClient(session, env.API_ID, env.API_HASH, env.clientOptions(PORT));
    const st = { client, updates: [], waiters: [], calls: new Map(), peers: new Map() };
    client.addEventHandler((u) => {
      if (u && u.className === 'UpdatePhoneCall' && u.phoneCall) {
        const s = onPhoneCall(st, u.phoneCall, 'push');
        // the users of the carrying updates{} container (GramJS attaches them as _entities)
        s.users = u._entities ? [...u._entities.values()].filter((x) => x.className === 'User').map((x) => str(x.id)) : null;
        pushUpdate(st, s);
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
    const dh = await dhConfig(st);
    const p = toBig(dh.p);
    const a = randomExponent();
    const gA = toBuf256(modPow(BigInt(dh.g), a, p));
    const randomId = crypto.randomBytes(4).readInt32LE(0);
    const r = await st.client.invoke(new Api.phone.RequestCall({
      userId: new Api.InputUser({ userId: bigInt(peer.id), accessHash: bigInt(peer.hash) }),
      randomId,
      gAHash: sha256(gA),
      protocol: PROTOCOL(),
    }));
    const pc = r.phoneCall;
    const ctx = ctxFor(st, pc.id);
    Object.assign(ctx, { role: 'caller', a, gA, p, accessHash: str(pc.accessHash) });
    const s = onPhoneCall(st, pc, 'result');
    s.users = r.users.map((u) => str(u.id));
    return s;
  },

  async received({ client: name, call_id, access_hash }) {
    const st = getClient(name);
    const r = await st.client.invoke(new Api.phone.ReceivedCall({ peer: inputCall(st, { call_id, access_hash }) }));
    return { value: r };
  },

  async accept({ client: name, call_id }) {
    const st = getClient(name);
    const ctx = st.calls.get(String(call_id));
    if (!ctx || !ctx.gAHash) throw new Error(`no phoneCallRequested seen for call ${call_id}`);
    const dh = await dhConfig(st);
    ctx.p = toBig(dh.p);
    ctx.b = randomExponent();
    ctx.role = 'callee';
    const gB = toBuf256(modPow(BigInt(dh.g), ctx.b, ctx.p));
    const r = await st.client.invoke(new Api.phone.AcceptCall({ peer: inputCall(st, { call_id }), gB, protocol: PROTOCOL() }));
    const s = onPhoneCall(st, r.phoneCall, 'result');
    s.users = r.users.map((u) => str(u.id));
    return s;
  },

  async confirm({ client: name, call_id }) {
    const st = getClient(name);
    const ctx = st.calls.get(String(call_id));
    if (!ctx || ctx.role !== 'caller') throw new Error(`not the caller of ${call_id}`);
    if (!ctx.gB) throw new Error(`no phoneCallAccepted seen for call ${call_id}`);
    const gBBig = toBig(ctx.gB);
    const key = toBuf256(modPow(gBBig, ctx.a, ctx.p));
    const fp = fingerprint(key);
    const r = await st.client.invoke(new Api.phone.ConfirmCall({
      peer: inputCall(st, { call_id }), gA: ctx.gA, keyFingerprint: bigInt(fp), protocol: PROTOCOL(),
    }));
    const s = onPhoneCall(st, r.phoneCall, 'result');
    s.users = r.users.map((u) => str(u.id));
    return { result: s, computed_fingerprint: fp, key_sha256: sha256(key).toString('hex'), g_range_ok: gRangeOk(gBBig, ctx.p) };
  },

  async discard({ client: name, call_id, reason, duration }) {
    const st = getClient(name);
    const r = await st.client.invoke(new Api.phone.DiscardCall({
      peer: inputCall(st, { call_id }), duration: duration || 0, reason: REASONS[reason || 'hangup'](), connectionId: bigInt(0),
    }));
    const inner = r.updates || (r.update ? [r.update] : []);
    return {
      container: lowerFirst(r.className),
      updates: inner.map((u) => (u.className === 'UpdatePhoneCall' ? onPhoneCall(st, u.phoneCall, 'result') : { update: lowerFirst(u.className) })),
    };
  },

  async wait({ client: name, type, call_id, timeout }) {
    const st = getClient(name);
    const match = (u) => (!type || u.type === type) && (call_id === undefined || call_id === null || u.id === String(call_id));
    const i = st.updates.findIndex((u) => !u.taken && match(u));
    if (i >= 0) {
      st.updates[i].taken = true;
      return st.updates[i];
    }
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      st.waiters.push(w);
      setTimeout(() => {
        const k = st.waiters.indexOf(w);
        if (k < 0) return;
        st.waiters.splice(k, 1);
        const seen = st.updates.map((u) => `${u.type}${u.reason ? `(${u.reason})` : ''}#${u.id}${u.taken ? '*' : ''}`);
        reject(new Error(`no ${type || 'update'} for call ${call_id} within ${timeout}s; buffered: [${seen.join(', ')}]`));
      }, (timeout || 5) * 1000);
    });
  },

  async drain({ client: name }) {
    const st = getClient(name);
    const left = st.updates.filter((u) => !u.taken);
    st.updates = [];
    return left;
  },

  async close({ client: name }) {
    const st = clients.get(name);
    if (st) {
      clients.delete(name);
      await st.client.destroy();
    }
    return true;
  },
};

function errorInfo(e) {
  return {
    rpc: e && e.errorMessage !== undefined ? e.errorMessage : null, // GramJS RPCError.errorMessage
    code: e && e.code !== undefined ? e.code : null,
    class: e && e.constructor ? e.constructor.name : typeof e,
    text: String((e && e.message) || e),
  };
}

async function shutdown() {
  await Promise.allSettled([...clients.values()].map((st) => st.client.destroy()));
  process.exit(0);
}

env.addServerKey(DATA_DIR);
emit({ ready: true, lib: LIB, layer: require('telegram/tl/AllTLObjects').LAYER });
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    emit({ id: null, ok: false, error: { text: `bad json: ${line}` } });
    return;
  }
  if (req.op === 'exit') {
    emit({ id: req.id, ok: true, result: true });
    shutdown();
    return;
  }
  const fn = ops[req.op];
  if (!fn) {
    emit({ id: req.id, ok: false, error: { text: `unknown op ${req.op}` } });
    return;
  }
  Promise.resolve()
    .then(() => fn(req))
    .then((result) => emit({ id: req.id, ok: true, result }), (e) => emit({ id: req.id, ok: false, error: errorInfo(e) }));
});
rl.on('close', shutdown);
process.on('unhandledRejection', (e) => process.stderr.write(`unhandledRejection: ${e && e.stack}\n`));
