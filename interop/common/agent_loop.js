// What the JavaScript agents (interop/calls/gramjs_agent.js, interop/mtcute/agent.js) share: the JSON-lines
// protocol that harness.JsonLines speaks from the driver's side, the clients an agent hosts with their calls
// (the DH state of each call, the PhoneCall summaries, the buffer of updatePhoneCall pushes handed out by
// "wait" and "drain"), and the call's DH arithmetic. The library-specific parts (building the requests,
// reading errors) stay in each agent.
//
// The protocol: one JSON object per line. stdout: {"ready": true, ...} once, then {"id": N, "ok": true,
// "result": ...} or {"id": N, "ok": false, "error": {...}}; stdin: {"id": N, "op": OP, ...}, run as
// ops[OP](request), concurrently. A request with "deadline": S fails after S seconds while the client lives
// on. {"op": "exit"} (or the end of stdin) closes every client and exits.
//
// An agent requires it by its path: require('../common/agent_loop'). Node.js standard library only; a TL
// object is either library's (GramJS names its type in .className, mtcute in ._).
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const util = require('util');

// ---------------------------------------------------------------- the protocol
const out = process.stdout.write.bind(process.stdout);

/** Keeps stdout for the protocol alone: whatever the library logs through console goes to stderr, and so
 * does an unhandled rejection. */
function takeStdout() {
  for (const k of ['log', 'info', 'warn', 'error', 'debug']) {
    console[k] = (...a) => process.stderr.write(`${util.format(...a)}\n`);
  }
  process.on('unhandledRejection', (e) => process.stderr.write(`unhandledRejection: ${e && e.stack}\n`));
}

const emit = (obj) => out(`${JSON.stringify(obj)}\n`);

const clients = new Map(); // name -> state (newState)

function getClient(name) {
  const st = clients.get(name);
  if (!st) throw new Error(`no client ${name}`);
  return st;
}

async function shutdown() {
  await Promise.allSettled([...clients.values()].map((st) => st.client.destroy()));
  process.exit(0);
}

/** Emits the `ready` line, then runs each request read from stdin as ops[op](request); errorInfo(e) is the
 * error object of a request that failed. */
function serve(ops, errorInfo, ready) {
  emit(ready);
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
    let run = Promise.resolve().then(() => fn(req));
    if (req.deadline) {
      run = Promise.race([run, new Promise((_, reject) => {
        setTimeout(() => reject(new Error(`no answer within ${req.deadline} s (the library may still be retrying)`)),
          req.deadline * 1000);
      })]);
    }
    run.then((result) => emit({ id: req.id, ok: true, result }), (e) => emit({ id: req.id, ok: false, error: errorInfo(e) }));
  });
  rl.on('close', shutdown);
}

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
const randomExponent = () => toBig(crypto.randomBytes(256));

// ---------------------------------------------------------------- a client's calls
const str = (v) => (v === undefined || v === null ? null : v.toString());
const lowerFirst = (s) => (s ? s[0].toLowerCase() + s.slice(1) : s);
/** The TL type of a GramJS or mtcute object: phoneCallWaiting, phone.phoneCall, ... */
const tlType = (o) => o._ || lowerFirst(o.className);

/** A client's state: its calls (id -> context), the peers resolved for calling (key -> {id, hash}) and its
 * buffered pushes; `extra` adds the agent's own fields. */
function newState(extra) {
  return { updates: [], waiters: [], calls: new Map(), peers: new Map(), ...extra };
}

/** A PhoneCall object as plain JSON (the shape interop/common/agent_loop.py produces too). */
function summarize(pc) {
  const type = tlType(pc);
  const s = { type, id: str(pc.id) };
  for (const [k, name] of [['accessHash', 'access_hash'], ['adminId', 'admin_id'], ['participantId', 'participant_id'],
    ['keyFingerprint', 'key_fingerprint']]) {
    if (pc[k] !== undefined) s[name] = str(pc[k]);
  }
  for (const [k, name] of [['date', 'date'], ['receiveDate', 'receive_date'], ['startDate', 'start_date'], ['duration', 'duration']]) {
    if (pc[k] !== undefined) s[name] = pc[k] === null ? null : pc[k];
  }
  if (type === 'phoneCallWaiting' && pc.receiveDate === undefined) s.receive_date = null;
  if (type === 'phoneCallDiscarded') {
    s.reason = pc.reason ? tlType(pc.reason) : null;
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
  if (s.type === 'phoneCallRequested') {
    ctx.role = ctx.role || 'callee';
    ctx.gAHash = Buffer.from(pc.gAHash);
  } else if (s.type === 'phoneCallAccepted') {
    ctx.gB = Buffer.from(pc.gB);
  } else if (s.type === 'phoneCall' && ctx.role === 'callee' && ctx.b !== undefined) {
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

/** The result of phone.requestCall, acceptCall or confirmCall: its PhoneCall recorded, and its summary with
 * the ids of the users it carries. */
function onResult(st, r) {
  const s = onPhoneCall(st, r.phoneCall, 'result');
  s.users = r.users.map((u) => str(u.id));
  return s;
}

/** An Updates result (of phone.discardCall): the container's type, and each update it carries, an
 * updatePhoneCall's PhoneCall recorded and summarized. */
function onUpdates(st, r) {
  const inner = r.updates || (r.update ? [r.update] : []);
  return {
    container: tlType(r),
    updates: inner.map((u) => (tlType(u) === 'updatePhoneCall' ? onPhoneCall(st, u.phoneCall, 'result') : { update: tlType(u) })),
  };
}

/** A pushed PhoneCall's summary: buffered, and handed to a "wait" that wants it. */
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

/** {id, hash} of a call, for its InputPhoneCall: the access hash given, or the one seen. */
function callPeer(st, args) {
  const ctx = st.calls.get(String(args.call_id)) || {};
  const hash = args.access_hash !== undefined && args.access_hash !== null ? args.access_hash : ctx.accessHash;
  if (hash === undefined || hash === null) throw new Error(`no access_hash known for call ${args.call_id}`);
  return { id: String(args.call_id), hash: String(hash) };
}

/** For phone.requestCall (dh: the messages.DhConfig): a random a and g_a = g^a mod p, as the call's context
 * to be. The request carries SHA256(g_a). */
function callerDh(dh) {
  const p = toBig(dh.p);
  const a = randomExponent();
  return { role: 'caller', a, gA: toBuf256(modPow(BigInt(dh.g), a, p)), p };
}

/** The context of a call whose phoneCallRequested was seen. */
function requested(st, callId) {
  const ctx = st.calls.get(String(callId));
  if (!ctx || !ctx.gAHash) throw new Error(`no phoneCallRequested seen for call ${callId}`);
  return ctx;
}

/** For phone.acceptCall (ctx: requested(); dh: the messages.DhConfig): a random b kept in ctx; g_b. */
function calleeDh(ctx, dh) {
  ctx.p = toBig(dh.p);
  ctx.b = randomExponent();
  ctx.role = 'callee';
  return toBuf256(modPow(BigInt(dh.g), ctx.b, ctx.p));
}

/** For phone.confirmCall, by the caller of a call whose phoneCallAccepted was seen: the key g_b^a mod p.
 * Returns {gA, fp (decimal string), report: what the answer carries besides the result}. */
function callerKey(st, callId) {
  const ctx = st.calls.get(String(callId));
  if (!ctx || ctx.role !== 'caller') throw new Error(`not the caller of ${callId}`);
  if (!ctx.gB) throw new Error(`no phoneCallAccepted seen for call ${callId}`);
  const gBBig = toBig(ctx.gB);
  const key = toBuf256(modPow(gBBig, ctx.a, ctx.p));
  const fp = fingerprint(key);
  return {
    gA: ctx.gA, fp, report: { computed_fingerprint: fp, key_sha256: sha256(key).toString('hex'), g_range_ok: gRangeOk(gBBig, ctx.p) },
  };
}

// ---------------------------------------------------------------- the ops every agent has
/** wait, drain and close; `more(st)` adds to the reason of a wait that timed out. */
function callOps(more = () => '') {
  return {
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
          reject(new Error(`no ${type || 'update'} for call ${call_id} within ${timeout}s; buffered: [${seen.join(', ')}]${more(st)}`));
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
}

module.exports = {
  takeStdout,
  emit,
  serve,
  clients,
  getClient,
  str,
  lowerFirst,
  sha256,
  newState,
  ctxFor,
  onPhoneCall,
  onResult,
  onUpdates,
  pushUpdate,
  callPeer,
  callerDh,
  requested,
  calleeDh,
  callerKey,
  callOps,
};
