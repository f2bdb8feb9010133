#!/usr/bin/env node
// mtcute agent: hosts any number of @mtcute/node 0.30.3 clients (sessions) against an mtcall server and
// performs steps on request, so that run.py can drive logins, everyday calls and one-to-one calls.
//
// Usage: NODE_PATH=<dir>/node_modules node agent.js PORT DATA_DIR
// mtcute is pointed at the server by configuration only: `addPublicKey(crypto, server.pub)` (from
// @mtcute/node/utils.js) and the client option `defaultDcs` (DC 2 = 127.0.0.1:PORT); storage is mtcute's
// own MemoryStorage. mtcute ships ES modules (its CommonJS bundles are deprecated), so they are
// import()ed from the NODE_PATH directory.
//
// Protocol (the same as interop/calls/gramjs_agent.js; harness.JsonLines on the other side):
//   stdin : {"id": N, "op": OP, "client": NAME, ...}
//   stdout: {"ready": true, ...} once, then {"id": N, "ok": true, "result": ...} or
//           {"id": N, "ok": false, "error": {"rpc": ERROR_NAME|null, "code": N|null, "class": "...", "text": "..."}}
// Ops: login (phone + code of an existing account), bot_login (token), get_me, get_users, get_chat,
//   get_full_user, get_contacts, import_contacts, get_dialogs, set_username, resolve_username,
//   resolve_phone, invoke (a raw request given as JSON), dh_config, request_call, received, accept,
//   confirm, discard, wait, drain, trace, reconnect, close, exit.
// A request with "deadline": S fails after S seconds with "no answer within S s" while the client lives on
// (mtcute retries some failures forever, e.g. an answer it cannot parse), so its trace can still be read.
// Requests run concurrently. Every updatePhoneCall a client's update handler sees (client.onRawUpdate,
// after mtcute's updates manager) is buffered in arrival order and handed out by "wait" (first
// unconsumed match) or "drain" (all). The client does the call's DH itself (messages.getDhConfig, random
// a/b, g_a_hash = SHA256(g_a), the key fingerprint computed locally).
// "trace" hands out what mtcute's own log said it did on the wire since the last trace: requests sent
// (method + constructor id from mtcute's schema, and the request body's shape from the verbose `>>>` line),
// results and errors received, service messages, unknown constructors it could not parse (and which
// requests failed because of them), session resets and bad_msg_notifications.
// The protocol loop, the clients' call state and update buffer and the DH arithmetic are
// ../common/agent_loop.js's.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');
const loop = require('../common/agent_loop');

const { clients, getClient, str, sha256 } = loop;
const [PORT, DATA_DIR] = [Number(process.argv[2]), process.argv[3]];
const API_ID = 12345;
const API_HASH = '0123456789abcdef0123456789abcdef';
const LIB = 'mtcute';
// mtcute's log level for stderr (0 off .. 5 verbose); the trace always listens at debug level
const STDERR_LEVEL = Number.parseInt(process.env.MTCUTE_AGENT_LOG || '2', 10);

loop.takeStdout();

// ---------------------------------------------------------------- loading mtcute (ESM) via NODE_PATH
function packageDir(name) {
  for (const dir of (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)) {
    const d = path.join(dir, name);
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
  }
  throw new Error(`${name} not found on NODE_PATH (${process.env.NODE_PATH || 'unset'})`);
}
/** The ES module entry `sub` ('.', './utils.js', ...) of package `name`, per its package.json exports. */
function esmEntry(name, sub = '.') {
  const dir = packageDir(name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  let e = pkg.exports && pkg.exports[sub];
  if (e && typeof e === 'object') e = e.import || e.default;
  if (e && typeof e === 'object') e = e.default;
  if (typeof e !== 'string') throw new Error(`${name}: no ESM export ${sub}`);
  return pathToFileURL(path.join(dir, e)).href;
}
function jsonFile(name, file) {
  return JSON.parse(fs.readFileSync(path.join(packageDir(name), file), 'utf8'));
}

let M; // @mtcute/node
let MU; // @mtcute/node/utils.js
let Long;
let schemaIds; // TL name -> constructor id (hex), from mtcute's own schema
let LAYER;

async function loadMtcute() {
  M = await import(esmEntry('@mtcute/node'));
  MU = await import(esmEntry('@mtcute/node', './utils.js'));
  Long = M.Long;
  const api = jsonFile('@mtcute/core', 'tl/api-schema.json');
  const mtp = jsonFile('@mtcute/core', 'tl/mtp-schema.json');
  LAYER = api.l;
  schemaIds = new Map();
  for (const e of [...api.e, ...(Array.isArray(mtp) ? mtp : mtp.e)]) schemaIds.set(e.name, (e.id >>> 0).toString(16).padStart(8, '0'));
}

const idOf = (name) => (schemaIds && schemaIds.get(name)) || null;

// ---------------------------------------------------------------- JSON <-> TL objects
const isLong = (v) => v && typeof v === 'object' && typeof v.low === 'number' && typeof v.high === 'number' && 'unsigned' in v;

/** A TL object (as mtcute hands it out) as JSON: Longs as decimal strings, bytes as hex, undefined dropped. */
function toJson(v, depth = 0) {
  if (depth > 12) return '...';
  if (v === null || v === undefined) return null;
  if (isLong(v)) return v.toString();
  if (typeof v === 'bigint') return v.toString();
  if (ArrayBuffer.isView(v)) return { hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  if (typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined || typeof x === 'function') continue;
      o[k] = toJson(x, depth + 1);
    }
    return o;
  }
  return v;
}

/** JSON for the invoke op: {"$long": "123"} -> Long, {"$hex": "ab"} -> Uint8Array, the rest as it is. */
function fromJson(v) {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === 'object') {
    if (typeof v.$long === 'string' || typeof v.$long === 'number') return Long.fromString(String(v.$long));
    if (typeof v.$hex === 'string') return new Uint8Array(Buffer.from(v.$hex, 'hex'));
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJson(x);
    return o;
  }
  return v;
}

/** A mtcute high-level User as JSON. */
function userJson(u) {
  if (!u) return null;
  const raw = u.raw || {};
  return {
    id: str(u.id),
    access_hash: str(raw.accessHash),
    first_name: u.firstName ?? null,
    last_name: u.lastName ?? null,
    username: u.username ?? null,
    phone: u.phoneNumber ?? raw.phone ?? null,
    is_self: !!u.isSelf,
    is_bot: !!u.isBot,
    is_contact: !!u.isContact,
    status: u.status ?? null,
    type: raw._ || null,
  };
}

// ---------------------------------------------------------------- calls
const PROTOCOL = () => ({
  _: 'phoneCallProtocol', udpP2p: true, udpReflector: true, minLayer: 65, maxLayer: 92, libraryVersions: ['2.4.4'],
});
const REASONS = {
  missed: 'phoneCallDiscardReasonMissed',
  disconnect: 'phoneCallDiscardReasonDisconnect',
  hangup: 'phoneCallDiscardReasonHangup',
  busy: 'phoneCallDiscardReasonBusy',
};

function inputCall(st, args) {
  const { id, hash } = loop.callPeer(st, args);
  return { _: 'inputPhoneCall', id: Long.fromString(id), accessHash: Long.fromString(hash) };
}

// ---------------------------------------------------------------- wire trace from mtcute's own log
// mtcute logs (at debug level) each request it sends and each answer, and (at verbose level) each
// request body as JSON (`>>> {...}`, Longs as {low, high, unsigned}, bytes as hex); traceLine turns those
// lines (formatted, without their [DC 2] [SESSION ..] prefixes) into events. The texts are mtcute
// 0.30.3's (network/session-connection.js, mtproto-session.js, authorization.js, utils/logger.js).
const SERVICE_SENT = [
  [/acks = \[/, 'mt_msgs_ack'], [/ping = true/, 'mt_ping_delay_disconnect'], [/state_req = \[/, 'mt_msgs_state_req'],
  [/resend = \[/, 'mt_msg_resend_req'], [/cancels = \[/, 'mt_rpc_drop_answer'], [/salts_req = true/, 'mt_get_future_salts'],
];
const WRAPPERS = new Set(['invokeWithLayer', 'initConnection', 'invokeWithoutUpdates', 'invokeAfterMsg']);
const isLongJson = (v) => v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 3
  && typeof v.low === 'number' && typeof v.high === 'number' && typeof v.unsigned === 'boolean';
/** A request body (as logged) in short TL-ish form: name{field: value, ...}, nested constructors kept. */
function shape(v, depth = 0) {
  if (depth > 8) return '...';
  if (v === null || v === undefined) return 'null';
  if (isLongJson(v)) return Long.fromBits(v.low, v.high, v.unsigned).toString();
  if (Array.isArray(v)) return `[${v.slice(0, 8).map((x) => shape(x, depth + 1)).join(', ')}${v.length > 8 ? `, ... (${v.length})` : ''}]`;
  if (typeof v === 'object') {
    const fields = Object.entries(v).filter(([k]) => k !== '_').map(([k, x]) => `${k}: ${shape(x, depth + 1)}`);
    return `${v._ || ''}{${fields.join(', ')}}`;
  }
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return String(v);
}
function requestEvent(json) {
  let obj;
  try {
    obj = JSON.parse(json);
  } catch (e) {
    return { kind: 'request', method: null, shape: json.slice(0, 300) };
  }
  const wrappers = [];
  while (obj && WRAPPERS.has(obj._) && obj.query) {
    wrappers.push(obj._ === 'invokeWithLayer' ? `invokeWithLayer(${obj.layer})` : obj._);
    obj = obj.query;
  }
  const e = { kind: 'request', method: obj && obj._, id: idOf(obj && obj._), shape: shape(obj).slice(0, 700) };
  if (wrappers.length) e.wrappers = wrappers;
  return e;
}
function traceLine(st, level, text) {
  const ev = (e) => st.trace.push({ t: Date.now(), ...e });
  let m;
  if (level === 5) {
    // verbose: only the request bodies are kept
    if ((m = /^>>> (\{.*)$/s.exec(text)) && !text.startsWith('>>> {"_":"mt_')) ev(requestEvent(m[1]));
    return;
  }
  if ((m = /^(\S+): msg_id assigned (\d+), seqno: (\d+)/.exec(text))) {
    if (m[1] !== 'container') ev({ kind: 'send', method: m[1], id: idOf(m[1]), seqno: Number(m[3]) });
  } else if ((m = /^wrapping (\S+) with initConnection, layer: (\d+)/.exec(text))) {
    ev({ kind: 'wrap', method: m[1], layer: Number(m[2]) });
  } else if ((m = /^received rpc_result \((\S+)\) for request \d+ \((\S+)\)/.exec(text))) {
    const result = m[1] === 'undefined' ? 'Vector' : m[1]; // a vector result has no _ of its own
    ev({ kind: 'result', method: m[2], result, result_id: idOf(m[1]) });
  } else if ((m = /^received rpc_error \[(\d+):(\S+)\] for \d+ \((\S+)\)/.exec(text))) {
    ev({ kind: 'error', method: m[3], code: Number(m[1]), error: m[2] });
  } else if ((m = /^received (\S+) \(msg_id: \d+\)/.exec(text))) {
    ev({ kind: 'recv', type: m[1], id: idOf(m[1]) });
  } else if ((m = /^sending (\d+) messages: (.*)$/.exec(text))) {
    const service = SERVICE_SENT.filter(([re]) => re.test(m[2])).map(([, n]) => n);
    if (service.length) ev({ kind: 'send_service', types: service });
  } else if ((m = /received unknown object ([0-9a-f]+)/.exec(text))) {
    ev({ kind: 'unknown_object', id: m[1].padStart(8, '0') });
  } else if (/^session reset, new sid/.test(text)) {
    ev({ kind: 'session_reset' });
  } else if ((m = /received bad_msg_notification for msg_id = (\S+), code = (\d+)/.exec(text))) {
    ev({ kind: 'bad_msg_notification', code: Number(m[2]) });
  } else if ((m = /^rpc query \d+ \((\S+)\) failed because of (.*)$/.exec(text))) {
    ev({ kind: 'rpc_failed', method: m[1], reason: m[2] });
  } else if ((m = /^(.*?) failed because of (.*)$/.exec(text))) {
    ev({ kind: 'msg_failed', what: m[1].replace(/ \d{6,}/g, '').slice(0, 100), reason: m[2] });
  } else if ((m = /^all messages failed because of (.*)$/.exec(text))) {
    ev({ kind: 'all_failed', reason: m[1] });
  } else if ((m = /^failed to decrypt message: (.*)/.exec(text))) {
    ev({ kind: 'decrypt_failed', text: m[1].slice(0, 300) });
  } else if (level <= 2) {
    ev({ kind: level === 1 ? 'log_error' : 'log_warn', text: text.slice(0, 300) });
  }
}
function installLogHandler(st, name) {
  const mgr = st.client.log.mgr;
  mgr.level = 5; // verbose, for the trace (request bodies)
  const levelNames = ['', 'ERR', 'WRN', 'INF', 'DBG', 'VRB'];
  mgr.handler = (color, level, tag, fmt, args) => {
    try {
      const text = util.format(fmt, ...args);
      traceLine(st, level, text.replace(/^(\[[^\]]*\] )+/, ''));
      if (level <= STDERR_LEVEL) {
        process.stderr.write(`${new Date().toISOString()} [${name}] [${levelNames[level]}] [${tag}] ${text}\n`);
      }
    } catch (e) {
      process.stderr.write(`log handler: ${e && e.stack}\n`);
    }
  };
}

// ---------------------------------------------------------------- clients
function newClient(name, storage) {
  const dc = { id: 2, ipAddress: '127.0.0.1', port: PORT };
  const client = new M.TelegramClient({
    apiId: API_ID,
    apiHash: API_HASH,
    storage,
    defaultDcs: { main: dc, media: dc },
    logLevel: 0,
    updates: { catchUp: false },
  });
  return client;
}

function setupClient(name, storage, prev) {
  const client = newClient(name, storage);
  const st = prev || loop.newState({ trace: [], server: [] });
  st.client = client;
  st.storage = storage;
  installLogHandler(st, name);
  // what the application sees: mtcute's updates manager hands each update to onRawUpdate
  client.onRawUpdate.add((info) => {
    const u = info && info.update;
    if (u && u._ === 'updatePhoneCall' && u.phoneCall) {
      const s = loop.onPhoneCall(st, u.phoneCall, 'push');
      const users = info.peers && info.peers.users ? [...info.peers.users.keys()].map(String) : null;
      s.users = users;
      loop.pushUpdate(st, s);
    }
  });
  // what the server sent, before the updates manager (for diagnostics only)
  client.onServerUpdate.add((upd) => {
    const inner = upd.updates || (upd.update ? [upd.update] : []);
    st.server.push({ t: Date.now(), type: upd._, updates: inner.map((x) => x._) });
  });
  client.onError.add((e) => {
    st.trace.push({ t: Date.now(), kind: 'client_error', text: String((e && e.message) || e).slice(0, 300) });
    process.stderr.write(`[${name}] client error: ${e && e.stack}\n`);
  });
  return st;
}

async function loginWith(name, params) {
  if (clients.has(name)) throw new Error(`client ${name} exists`);
  const storage = new M.MemoryStorage();
  const st = setupClient(name, storage);
  let me;
  let sentCode = null;
  try {
    me = await st.client.start({
      ...params,
      codeSentCallback: (c) => { sentCode = c.type; },
      invalidCodeCallback: async () => { throw new Error('invalid code'); },
    });
  } catch (e) {
    // keep the trace of a failed login for the driver
    clients.set(`${name}!failed`, st);
    await st.client.destroy().catch(() => {});
    throw e;
  }
  st.userId = str(me.id);
  clients.set(name, st);
  return { user: userJson(me), sent_code: sentCode };
}

function remember(st, key, peer) {
  if (peer && peer._ === 'inputPeerUser') {
    st.peers.set(String(key), { id: str(peer.userId), hash: str(peer.accessHash) });
  }
}

async function dhConfig(st) {
  const r = await st.client.call({ _: 'messages.getDhConfig', version: 0, randomLength: 256 });
  if (r._ !== 'messages.dhConfig') throw new Error(`getDhConfig returned ${r._}`);
  return r;
}

// ---------------------------------------------------------------- operations
const ops = {
  async login({ client: name, phone, code }) {
    return loginWith(name, { phone: String(phone), code: () => String(code) });
  },

  async bot_login({ client: name, token }) {
    return loginWith(name, { botToken: String(token) });
  },

  async get_me({ client: name }) {
    return userJson(await getClient(name).client.getMe());
  },

  async get_users({ client: name, ids }) {
    const st = getClient(name);
    const list = (ids || []).map((x) => (typeof x === 'string' && /^-?\d+$/.test(x) ? Number(x) : x));
    const r = await st.client.getUsers(list);
    return r.map(userJson);
  },

  /** getChat; mtcute's getChat takes groups and channels only, so a user is fetched with getPeer. */
  async get_chat({ client: name, peer }) {
    const st = getClient(name);
    const p = typeof peer === 'string' && /^-?\d+$/.test(peer) ? Number(peer) : peer;
    try {
      const c = await st.client.getChat(p);
      return { via: 'getChat', type: c.type, id: str(c.id), title: c.title ?? null };
    } catch (e) {
      if (!(e && e.constructor && e.constructor.name === 'MtInvalidPeerTypeError')) throw e;
    }
    const peerObj = await st.client.getPeer(p);
    return { via: 'getPeer', type: peerObj.type, ...userJson(peerObj) };
  },

  async get_full_user({ client: name, peer }) {
    const st = getClient(name);
    const p = typeof peer === 'string' && /^-?\d+$/.test(peer) ? Number(peer) : peer;
    // FullUser extends User (its own fields are the User's); .full is the raw userFull
    const f = await st.client.getFullUser(p);
    return {
      user: userJson(f),
      full_type: f.full ? f.full._ : null,
      bio: f.bio ?? null,
      is_blocked: !!f.isBlocked,
      phone_calls_available: f.full ? !!f.full.phoneCallsAvailable : null,
      video_calls_available: f.full ? !!f.full.videoCallsAvailable : null,
    };
  },

  async get_contacts({ client: name }) {
    return (await getClient(name).client.getContacts()).map(userJson);
  },

  async import_contacts({ client: name, contacts }) {
    const r = await getClient(name).client.importContacts(
      contacts.map((c) => ({ phone: String(c.phone), firstName: c.first_name || 'Contact', lastName: c.last_name || '' })),
    );
    return { imported: r.imported.map((i) => str(i.userId)), users: r.users.map((u) => str(u.id)) };
  },

  async get_dialogs({ client: name, limit }) {
    const st = getClient(name);
    const list = [];
    for await (const d of st.client.iterDialogs({ limit: limit || 100 })) {
      list.push({ peer_id: str(d.peer.id), peer_type: d.peer.type, top_message: d.raw.topMessage, unread: d.unreadCount });
    }
    return list;
  },

  async set_username({ client: name, username }) {
    return userJson(await getClient(name).client.setMyUsername(username));
  },

  async resolve_username({ client: name, username }) {
    const st = getClient(name);
    const peer = await st.client.resolvePeer(`@${String(username).replace(/^@/, '')}`, true);
    remember(st, `@${username}`, peer);
    return { type: peer._, user_id: str(peer.userId), access_hash: str(peer.accessHash) };
  },

  async resolve_phone({ client: name, phone }) {
    const st = getClient(name);
    const peer = await st.client.resolvePhoneNumber(String(phone), true);
    remember(st, String(phone), peer);
    return { type: peer._, user_id: str(peer.userId), access_hash: str(peer.accessHash) };
  },

  /** A raw request, e.g. {"request": {"_": "help.getConfig"}}; Longs as {"$long": "..."}, bytes as {"$hex": ".."}. */
  async invoke({ client: name, request }) {
    return toJson(await getClient(name).client.call(fromJson(request)));
  },

  async dh_config({ client: name }) {
    const r = await dhConfig(getClient(name));
    return { g: r.g, p: Buffer.from(r.p).toString('hex'), version: r.version, random_len: r.random.length };
  },

  async request_call({ client: name, peer: key }) {
    const st = getClient(name);
    const peer = st.peers.get(String(key));
    if (!peer) throw new Error(`resolve ${key} first`);
    const mine = loop.callerDh(await dhConfig(st));
    const r = await st.client.call({
      _: 'phone.requestCall',
      video: false,
      userId: { _: 'inputUser', userId: Number(peer.id), accessHash: Long.fromString(peer.hash) },
      randomId: crypto.randomBytes(4).readInt32LE(0),
      gAHash: new Uint8Array(sha256(mine.gA)),
      protocol: PROTOCOL(),
    });
    Object.assign(loop.ctxFor(st, r.phoneCall.id), mine, { accessHash: str(r.phoneCall.accessHash) });
    return loop.onResult(st, r);
  },

  async received({ client: name, call_id, access_hash }) {
    const st = getClient(name);
    const r = await st.client.call({ _: 'phone.receivedCall', peer: inputCall(st, { call_id, access_hash }) });
    return { value: r };
  },

  async accept({ client: name, call_id }) {
    const st = getClient(name);
    const ctx = loop.requested(st, call_id);
    const gB = loop.calleeDh(ctx, await dhConfig(st));
    const r = await st.client.call({
      _: 'phone.acceptCall', peer: inputCall(st, { call_id }), gB: new Uint8Array(gB), protocol: PROTOCOL(),
    });
    return loop.onResult(st, r);
  },

  async confirm({ client: name, call_id }) {
    const st = getClient(name);
    const { gA, fp, report } = loop.callerKey(st, call_id);
    const r = await st.client.call({
      _: 'phone.confirmCall',
      peer: inputCall(st, { call_id }),
      gA: new Uint8Array(gA),
      keyFingerprint: Long.fromString(fp),
      protocol: PROTOCOL(),
    });
    return { result: loop.onResult(st, r), ...report };
  },

  async discard({ client: name, call_id, reason, duration }) {
    const st = getClient(name);
    const r = await st.client.call({
      _: 'phone.discardCall',
      video: false,
      peer: inputCall(st, { call_id }),
      duration: duration || 0,
      reason: { _: REASONS[reason || 'hangup'] },
      connectionId: Long.ZERO,
    });
    return loop.onUpdates(st, r);
  },

  /** What mtcute did on the wire since the last trace (client NAME, or NAME!failed after a failed login). */
  async trace({ client: name, keep }) {
    const st = clients.get(name);
    if (!st) throw new Error(`no client ${name}`);
    const t = st.trace;
    if (!keep) st.trace = [];
    return t;
  },

  /** disconnect(), then connect() the same client on the same storage; a request must work after it. */
  async reconnect({ client: name, fresh }) {
    const st = getClient(name);
    if (fresh) {
      // a new TelegramClient on the same MemoryStorage (an application restarted with its storage)
      await st.client.disconnect();
      setupClient(name, st.storage, st);
      await st.client.start({});
    } else {
      await st.client.disconnect();
      await st.client.connect();
      await st.client.startUpdatesLoop();
    }
    const me = await st.client.getMe();
    return userJson(me);
  },

  // a wait that times out also lists what the server last sent (before mtcute's updates manager)
  ...loop.callOps((st) => `; server sent: [${st.server.slice(-6).map((x) => `${x.type}[${x.updates.join(',')}]`).join(', ')}]`),
};

function errorInfo(e) {
  const isRpc = e && e.constructor && e.constructor.name === 'RpcError';
  return {
    rpc: isRpc ? e.text : null, // mtcute RpcError: .code, .text = the error name
    code: isRpc ? e.code : null,
    class: e && e.constructor ? e.constructor.name : typeof e,
    text: String((e && e.message) || e),
  };
}

async function main() {
  await loadMtcute();
  const pem = fs.readFileSync(path.join(DATA_DIR, 'server.pub'), 'utf8');
  const cryptoProvider = new MU.NodeCryptoProvider();
  if (cryptoProvider.initialize) await cryptoProvider.initialize();
  const parsed = MU.parsePublicKey(cryptoProvider, pem);
  MU.addPublicKey(cryptoProvider, pem);
  const version = JSON.parse(fs.readFileSync(path.join(packageDir('@mtcute/node'), 'package.json'), 'utf8')).version;
  loop.serve(ops, errorInfo, { ready: true, lib: LIB, version, layer: LAYER, key_fingerprint: parsed.fingerprint });
}

main().catch((e) => {
  process.stderr.write(`agent failed to start: ${e && e.stack}\n`);
  process.exit(2);
});
