#!/usr/bin/env node
// GramJS (npm `telegram` 2.26.22, layer 198) interop suite against a running mtcall server.
//
// Usage: NODE_PATH=<dir>/node_modules node gramjs_suite.js fresh|resume PORT DATA_DIR BOT_TOKEN STATE_FILE
//
// `fresh` runs every check on new sessions and saves one logged-in StringSession to STATE_FILE;
// `resume` (after the server restarted on the same data dir) loads it and calls getMe.
// Prints one line per check, `ok NAME` or `FAIL NAME: REASON`; exits 0 only if all passed.
// Test numbers 99966 2 YYYY (login code 22222); YYYY is random, so reruns don't collide.
// GramJS's StringSession stores the port as a signed 16-bit value: PORT must be < 32768.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const bigInt = require('big-integer');
const { TelegramClient, Api } = require('telegram');
const { StringSession } = require('telegram/sessions');
const { ConnectionTCPFull, ConnectionTCPAbridged, ConnectionTCPObfuscated } = require('telegram/network');
const { Logger } = require('telegram/extensions/Logger');
const { Raw } = require('telegram/events');
const RSA = require('telegram/crypto/RSA');

const API_ID = 12345;
const API_HASH = '0123456789abcdef0123456789abcdef';
const PHONE_PREFIX = '999662';
const CODE = '22222';
const FRESH_CONNECTS = 50;
const STEP_TIMEOUT_MS = 20000;
const UPDATE_TIMEOUT_MS = 5000;

let failed = 0;

function report(name, error, detail) {
  if (error) {
    failed += 1;
    const msg = (error && (error.stack ? String(error.message || error) : String(error))) || 'error';
    console.log(`FAIL ${name}: ${msg.replace(/\n/g, ' ')}`);
  } else {
    console.log(`ok ${name}${detail ? ` (${detail})` : ''}`);
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000}s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function check(name, fn) {
  try {
    const result = await withTimeout(fn(), STEP_TIMEOUT_MS * 3, name);
    report(name, null, typeof result === 'string' ? result : '');
    return result === undefined ? true : result;
  } catch (e) {
    report(name, e);
    return null;
  }
}

/** Adds the server's PKCS#1 key to GramJS's key map (fingerprint -> {n, e}). */
function addServerKey(dataDir) {
  const pub = crypto.createPublicKey(fs.readFileSync(`${dataDir}/server.pub`));
  const jwk = pub.export({ format: 'jwk' });
  const nBytes = Buffer.from(jwk.n, 'base64url');
  const eBytes = Buffer.from(jwk.e, 'base64url');
  const tlBytes = (b) => {
    const head = b.length < 254 ? Buffer.from([b.length]) : Buffer.from([254, b.length & 255, (b.length >> 8) & 255, b.length >> 16]);
    const body = Buffer.concat([head, b]);
    return Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  };
  const sha = crypto.createHash('sha1').update(Buffer.concat([tlBytes(nBytes), tlBytes(eBytes)])).digest();
  const fp = sha.readBigInt64LE(12).toString();
  RSA._serverKeys.set(fp, { n: bigInt(nBytes.toString('hex'), 16), e: parseInt(eBytes.toString('hex'), 16) });
  return fp;
}

/** GramJS on Node dials port 80 whatever the session says: each class pins the real port. */
function pinPort(Base, port) {
  return class extends Base {
    constructor(opts) {
      super({ ...opts, port });
    }
  };
}

class Suite {
  constructor(port) {
    this.port = port;
    this.clients = [];
    this.transports = {
      full: pinPort(ConnectionTCPFull, port),
      abridged: pinPort(ConnectionTCPAbridged, port),
      obfuscated: pinPort(ConnectionTCPObfuscated, port),
    };
  }

  client(saved = '', transport = 'full') {
    const session = new StringSession(saved);
    if (!saved) session.setDC(2, '127.0.0.1', this.port);
    const c = new TelegramClient(session, API_ID, API_HASH, {
      connection: this.transports[transport],
      // >1: GramJS redoes the handshake when its unpadded-key quirk hits (about 1 in 256 keys,
      // "Step 3 invalid new nonce hash"); with 1 that connect() gives up.
      connectionRetries: 3,
      retryDelay: 500,
      requestRetries: 2,
      timeout: 5,
      autoReconnect: false,
      baseLogger: new Logger('none'),
    });
    this.clients.push(c);
    return c;
  }

  /** connect() resolves even when every attempt failed (then requests wait forever): check. */
  async connect(c) {
    await withTimeout(c.connect(), STEP_TIMEOUT_MS, 'connect');
    expect(c.connected, `could not connect to 127.0.0.1:${this.port}`);
  }

  async close(c) {
    try {
      await withTimeout(c.destroy(), 5000, 'destroy');
    } catch (e) {
      console.error(`destroy: ${e.message}`);
    }
    this.clients = this.clients.filter((x) => x !== c);
  }

  async closeAll() {
    for (const c of [...this.clients]) await this.close(c);
  }

  async freshConnects() {
    const started = Date.now();
    const failures = [];
    let tried = 0;
    for (let i = 0; i < FRESH_CONNECTS; i++) {
      tried += 1;
      const c = this.client();
      try {
        await this.connect(c);
        const authorized = await withTimeout(c.checkAuthorization(), STEP_TIMEOUT_MS, 'checkAuthorization');
        if (authorized) failures.push(`#${i}: fresh key claims to be authorized`);
        else if (!c.session.getAuthKey() || !c.session.getAuthKey().getKey()) failures.push(`#${i}: no auth key`);
      } catch (e) {
        failures.push(`#${i}: ${e.message}`);
      } finally {
        await this.close(c);
      }
      if (failures.length >= 3 && failures.length === i + 1) {
        failures[failures.length - 1] += ' (aborting: the first 3 attempts all failed)';
        break;
      }
    }
    expect(failures.length === 0, `${failures.length} of ${tried} tried failed: ${failures.join('; ')}`);
    return `${FRESH_CONNECTS}/${FRESH_CONNECTS} in ${((Date.now() - started) / 1000).toFixed(1)}s`;
  }

  /** client.start with a phone: signs up a new number (firstAndLastNames) or signs in.
   * handlerFirst: an update handler is registered before connecting, as many bots do; GramJS
   * then asks for users.getUsers and updates.getState together before it is logged in. */
  async login(phone, transport = 'full', handlerFirst = false) {
    const c = this.client('', transport);
    let askedNames = false;
    let lastError = null;
    if (handlerFirst) c.addEventHandler(() => {}, new Raw({}));
    await this.connect(c);
    await c.start({
      phoneNumber: phone,
      phoneCode: async () => CODE,
      firstAndLastNames: async () => {
        askedNames = true;
        return ['Alice', 'GramJS'];
      },
      onError: async (e) => {
        lastError = e;
        return true; // stop instead of asking again
      },
    });
    if (lastError) throw lastError;
    const me = await c.getMe();
    expect(me instanceof Api.User, `getMe returned ${me && me.className}`);
    expect(me.phone === phone, `getMe phone ${me.phone}, want ${phone}`);
    return { c, me, askedNames };
  }

  async signUpRaw(phone, first) {
    const c = this.client();
    await this.connect(c);
    const sent = await c.invoke(new Api.auth.SendCode({ phoneNumber: phone, apiId: API_ID, apiHash: API_HASH, settings: new Api.CodeSettings({}) }));
    const r = await c.invoke(new Api.auth.SignIn({ phoneNumber: phone, phoneCodeHash: sent.phoneCodeHash, phoneCode: CODE }));
    expect(r instanceof Api.auth.AuthorizationSignUpRequired, `auth.signIn of a new number: got ${r.className}`);
    const a = await c.invoke(new Api.auth.SignUp({ phoneNumber: phone, phoneCodeHash: sent.phoneCodeHash, firstName: first, lastName: 'GramJS' }));
    return { c, user: a.user };
  }

  async fresh(token, stateFile) {
    await check('50 fresh connects', () => this.freshConnects());

    const suffix = crypto.randomInt(10000);
    const pad = (n) => String(n).padStart(4, '0');
    const phoneA = `${PHONE_PREFIX}${pad(suffix)}`;
    const phoneB = `${PHONE_PREFIX}${pad((suffix + 5000) % 10000)}`;
    const nameA = `gj_a${pad(suffix)}`;
    const nameB = `gj_b${pad(suffix)}`;

    let userA = null;
    await check('sign up', async () => {
      const { c, me, askedNames } = await this.login(phoneA);
      expect(askedNames, 'client.start did not go through auth.signUp for a new number');
      userA = me;
      await this.close(c);
      return `user ${me.id}`;
    });

    const signIn = async (transport) => {
      expect(userA, 'no account from sign up');
      const { c, me, askedNames } = await this.login(phoneA, transport);
      expect(!askedNames, 'existing account asked for sign-up');
      expect(me.id.equals(userA.id), `signed in as ${me.id}, want ${userA.id}`);
      return c;
    };
    const a1 = await check('sign in existing account', () => signIn('full'));
    await check('update handler registered before client.start', async () => {
      expect(userA, 'no account from sign up');
      const { c, me } = await withTimeout(this.login(phoneA, 'full', true), STEP_TIMEOUT_MS, 'client.start');
      expect(me.id.equals(userA.id), `signed in as ${me.id}, want ${userA.id}`);
      await this.close(c);
      return 'both 401 answers of the first container read, then signed in';
    });
    let a2 = null;
    try {
      a2 = await withTimeout(signIn('full'), STEP_TIMEOUT_MS * 2, 'second session');
    } catch (e) {
      console.error(`second session of user A failed: ${e.message}`);
    }

    for (const [tname, cls] of [['full', 'ConnectionTCPFull'], ['abridged', 'ConnectionTCPAbridged'], ['obfuscated', 'ConnectionTCPObfuscated']]) {
      await check(`transport ${tname}`, async () => {
        const c = await signIn(tname);
        await this.close(c);
        return `${cls}: handshake + sign in + getMe`;
      });
    }

    await check('bot login', async () => {
      const c = this.client();
      let lastError = null;
      await this.connect(c);
      await c.start({ botAuthToken: token, onError: async (e) => { lastError = e; return true; } });
      if (lastError) throw lastError;
      const me = await c.getMe();
      expect(me.bot === true, `getMe after bot login: bot=${me.bot}`);
      expect(me.id.toString() === token.split(':')[0], `bot id ${me.id} does not match the token`);
      await this.close(c);
      return `bot id ${me.id}`;
    });

    // e. resolve user B from A
    let userB = null;
    try {
      const { c, user } = await withTimeout(this.signUpRaw(phoneB, 'Bob'), STEP_TIMEOUT_MS * 2, 'sign up B');
      const u = await c.invoke(new Api.account.UpdateUsername({ username: nameB }));
      expect(u.username === nameB, `account.updateUsername returned ${u.username}`);
      userB = user;
      await this.close(c);
    } catch (e) {
      for (const n of ['resolve username', 'resolve phone', 'access hash usable']) report(n, new Error(`setting up user B: ${e.message}`));
    }
    if (userB) {
      const hashes = [];
      const pick = (what, r) => {
        expect(r.peer instanceof Api.PeerUser && r.peer.userId.equals(userB.id), `${what}: peer ${r.peer.className} ${r.peer.userId}, want user ${userB.id}`);
        const u = r.users.find((x) => x.id.equals(userB.id));
        expect(u && u.accessHash, `${what}: user ${userB.id} without access hash`);
        return u.accessHash;
      };
      await check('resolve username', async () => {
        expect(a1, 'user A not signed in');
        hashes.push(pick('resolveUsername', await a1.invoke(new Api.contacts.ResolveUsername({ username: nameB }))));
        const ent = await a1.getEntity(nameB); // GramJS's own path
        expect(ent.id.equals(userB.id), `getEntity(${nameB}) = ${ent.id}`);
        return `id ${userB.id} hash ${hashes[hashes.length - 1]}`;
      });
      await check('resolve phone', async () => {
        expect(a1, 'user A not signed in');
        hashes.push(pick('resolvePhone', await a1.invoke(new Api.contacts.ResolvePhone({ phone: phoneB }))));
        return `id ${userB.id} hash ${hashes[hashes.length - 1]}`;
      });
      await check('access hash usable', async () => {
        expect(hashes.length, 'nothing resolved');
        const got = await a1.invoke(new Api.users.GetUsers({ id: [new Api.InputUser({ userId: userB.id, accessHash: hashes[0] })] }));
        expect(got.length === 1 && got[0] instanceof Api.User && got[0].id.equals(userB.id), `users.getUsers with the resolved hash: ${got.map((x) => x.className)}`);
        let bad;
        try {
          bad = await a1.invoke(new Api.users.GetUsers({ id: [new Api.InputUser({ userId: userB.id, accessHash: hashes[0].xor(0x5a5a) })] }));
        } catch (e) {
          expect(e.errorMessage === 'USER_ID_INVALID', `wrong access hash: want USER_ID_INVALID, got ${e.code} ${e.errorMessage || e.message}`);
          return '';
        }
        throw new Error(`wrong access hash accepted: ${bad.map((x) => x.className)}`);
      });
    }

    // f. pushed update: A1 listens, A2 changes the username
    await check('pushed updateUserName', async () => {
      expect(a1 && a2, 'user A not signed in on two sessions');
      const seen = [];
      let handler;
      const got = new Promise((resolve) => {
        handler = async (update) => {
          seen.push(update.className);
          if (update instanceof Api.UpdateUserName && update.userId.equals(userA.id) && update.usernames.some((u) => u.username === nameA)) resolve(update);
        };
        a1.addEventHandler(handler, new Raw({}));
      });
      try {
        const u = await a2.invoke(new Api.account.UpdateUsername({ username: nameA }));
        expect(u.username === nameA, `account.updateUsername returned ${u.username}`);
        await withTimeout(got, UPDATE_TIMEOUT_MS, `no updateUserName (saw ${JSON.stringify(seen)})`);
      } finally {
        a1.removeEventHandler(handler, new Raw({}));
      }
    });

    await check('save session', async () => {
      expect(a1, 'user A not signed in');
      const data = { client: 'gramjs', session: a1.session.save(), user_id: userA.id.toString(), phone: phoneA };
      fs.writeFileSync(stateFile, JSON.stringify(data));
    });
  }

  async resume(stateFile) {
    await check('resume session', async () => {
      const data = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
      const c = this.client(data.session);
      expect(c.session.port === this.port, `saved session has port ${c.session.port}`);
      const key = Buffer.from(c.session._key || []); // the saved key, decoded by the constructor
      expect(key.length === 256, `saved session holds a ${key.length}-byte auth key`);
      await this.connect(c);
      const me = await c.getMe();
      expect(me.id.toString() === data.user_id, `getMe: id ${me.id}, want ${data.user_id}`);
      expect(Buffer.from(c.session.getAuthKey().getKey()).equals(key), 'the client replaced the saved auth key');
      await this.close(c);
      return `user ${me.id}`;
    });
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 5 || !['fresh', 'resume'].includes(args[0])) {
    console.error('usage: gramjs_suite.js fresh|resume PORT DATA_DIR BOT_TOKEN STATE_FILE');
    process.exit(2);
  }
  const [phase, port, dataDir, token, stateFile] = args;
  expect(Number(port) < 32768, 'GramJS StringSession keeps ports as int16: use a port below 32768');
  addServerKey(dataDir);
  const suite = new Suite(Number(port));
  try {
    if (phase === 'fresh') await suite.fresh(token, stateFile);
    else await suite.resume(stateFile);
  } finally {
    await suite.closeAll();
  }
}

main()
  .catch((e) => {
    report('suite', e);
  })
  .finally(() => process.exit(failed ? 1 : 0));
