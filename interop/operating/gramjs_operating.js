#!/usr/bin/env node
// GramJS (npm `telegram` 2.26.22) against an mtcall server run as an operator would: the `[auth]`
// settings seen by a real client (driven by run.py, which starts the server with each phase's
// configuration; the phases and NUMBERS_JSON are those of telethon_operating.py).
//
// Usage: NODE_PATH=<dir>/node_modules node gramjs_operating.js PHASE PORT DATA_DIR CODES_FILE NUMBERS_JSON
//
// Prints `ok NAME [(DETAIL)]` or `FAIL NAME: REASON` per check; exits 0 only if all passed.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const bigInt = require('big-integer');
const { TelegramClient, Api } = require('telegram');
const { StringSession } = require('telegram/sessions');
const { ConnectionTCPFull } = require('telegram/network');
const { Logger } = require('telegram/extensions/Logger');
const RSA = require('telegram/crypto/RSA');

const API_ID = 12345;
const API_HASH = '0123456789abcdef0123456789abcdef';
const STEP_TIMEOUT_MS = 30000;

let failed = 0;

function report(name, error, detail) {
  if (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${String((error && error.message) || error).replace(/\n/g, ' ')}`);
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
    const result = await withTimeout(fn(), STEP_TIMEOUT_MS, name);
    report(name, null, typeof result === 'string' ? result : '');
  } catch (e) {
    report(name, e);
  }
}

/** Adds a PKCS#1 public key file to GramJS's key map (fingerprint -> {n, e}). */
function addKey(path) {
  const jwk = crypto.createPublicKey(fs.readFileSync(path)).export({ format: 'jwk' });
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

/** The newest code the server's code command was given for `phone`. */
function hookedCode(codesFile, phone) {
  let code = null;
  for (const line of fs.readFileSync(codesFile, 'utf8').split('\n')) {
    const [p, c] = line.trim().split(' ');
    if (p === phone) code = c;
  }
  expect(code !== null, `the code command was given no code for ${phone}`);
  return code;
}

/** Awaits `promise`, which must fail with the error message `want`; returns the error. */
async function rpcError(promise, want) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    const got = e.errorMessage || e.message;
    expect(got === want, `answered ${got}, want ${want}`);
    return e;
  }
  throw new Error(`succeeded (${result && result.className}), want ${want}`);
}

class Suite {
  constructor(port, codesFile, numbers) {
    this.port = port;
    this.codesFile = codesFile;
    this.numbers = numbers;
    this.clients = [];
    // GramJS on Node dials port 80 whatever the session says: pin the real port.
    this.transport = class extends ConnectionTCPFull {
      constructor(opts) {
        super({ ...opts, port });
      }
    };
  }

  /** A client, not yet connected; `retries` connection attempts. */
  newClient(retries) {
    const session = new StringSession('');
    session.setDC(2, '127.0.0.1', this.port);
    // floodSleepThreshold 0: a FLOOD_WAIT is thrown, not slept through.
    const c = new TelegramClient(session, API_ID, API_HASH, {
      connection: this.transport,
      connectionRetries: retries,
      retryDelay: 500,
      requestRetries: 1,
      timeout: 5,
      autoReconnect: false,
      floodSleepThreshold: 0,
      baseLogger: new Logger('none'),
    });
    this.clients.push(c);
    return c;
  }

  async client() {
    const c = this.newClient(3);
    await withTimeout(c.connect(), STEP_TIMEOUT_MS, 'connect');
    expect(c.connected, `could not connect to 127.0.0.1:${this.port}`);
    return c;
  }

  async closeAll() {
    for (const c of this.clients) {
      try {
        await withTimeout(c.destroy(), 5000, 'destroy');
      } catch (e) {
        console.error(`destroy: ${e.message}`);
      }
    }
    this.clients = [];
  }

  sendCode(c, phone) {
    return c.invoke(new Api.auth.SendCode({ phoneNumber: phone, apiId: API_ID, apiHash: API_HASH, settings: new Api.CodeSettings({}) }));
  }

  /** GramJS's own login path: start() with the code the hook got (sign-up when new). */
  async login(phone, firstName) {
    const c = await this.client();
    let lastError = null;
    await c.start({
      phoneNumber: phone,
      phoneCode: async () => hookedCode(this.codesFile, phone),
      firstAndLastNames: async () => [firstName, 'GramJS'],
      onError: async (e) => {
        lastError = e;
        return true; // stop instead of asking again
      },
    });
    if (lastError) throw lastError;
    const me = await c.getMe();
    expect(me instanceof Api.User && me.phone === phone, `getMe: ${me && me.phone}, want ${phone}`);
    return me;
  }

  async allowlist() {
    const n = this.numbers;
    await check('test number refused when test numbers are off', async () => {
      await rpcError(this.sendCode(await this.client(), n.test), 'PHONE_NUMBER_INVALID');
      return `+${n.test}: PHONE_NUMBER_INVALID`;
    });
    await check('number off the allowlist refused', async () => {
      await rpcError(this.sendCode(await this.client(), n.stranger), 'PHONE_NUMBER_UNOCCUPIED');
      return `+${n.stranger}: PHONE_NUMBER_UNOCCUPIED`;
    });
    await check('wrong code', async () => {
      const c = await this.client();
      const sent = await this.sendCode(c, n.allowed);
      const code = hookedCode(this.codesFile, n.allowed);
      const wrong = String((Number(code) + 1) % 100000).padStart(5, '0');
      await rpcError(c.invoke(new Api.auth.SignIn({ phoneNumber: n.allowed, phoneCodeHash: sent.phoneCodeHash, phoneCode: wrong })), 'PHONE_CODE_INVALID');
      return 'PHONE_CODE_INVALID';
    });
    await check('allowlisted number signs up with the hooked code', async () => {
      const me = await this.login(n.allowed, 'Allowed');
      return `user ${me.id} from the hooked code`;
    });
    await check('existing account signs in', async () => {
      const me = await this.login(n.allowed, 'unused');
      return `user ${me.id} again`;
    });
    await check('codes per number limited', async () => {
      // The hour's three codes for this number went to the wrong-code try, the sign-up and the
      // second login: the fourth is refused.
      await rpcError(this.sendCode(await this.client(), n.allowed), 'PHONE_NUMBER_FLOOD');
      return '4th code in the hour: PHONE_NUMBER_FLOOD';
    });
    await check('codes per address limited', async () => {
      const c = await this.client();
      for (let i = 0; i < 20; i++) {
        try {
          await this.sendCode(c, `${n.flood_prefix}${String(i).padStart(2, '0')}`);
        } catch (e) {
          if (e.errorMessage === 'PHONE_NUMBER_UNOCCUPIED') continue; // counted, then refused
          expect(e.seconds > 0, `answered ${e.errorMessage || e.message}, want FLOOD_WAIT_X`);
          return `refused after ${i} more: FLOOD_WAIT_${e.seconds}`;
        }
      }
      throw new Error('20 codes asked for from one address without FLOOD_WAIT');
    });
  }

  async closed() {
    const n = this.numbers;
    await check('closed sign-up: existing account signs in', async () => {
      const me = await this.login(n.allowed, 'unused');
      return `user ${me.id}`;
    });
    await check('closed sign-up: new number refused', async () => {
      await rpcError(this.sendCode(await this.client(), n.allowed_later), 'PHONE_NUMBER_UNOCCUPIED');
      return `+${n.allowed_later} (on the allowlist, which closed sign-up ignores): PHONE_NUMBER_UNOCCUPIED`;
    });
  }

  async key_pinned() {
    await check('a client that pinned the key logs in', async () => {
      const me = await this.login(this.numbers.allowed, 'unused');
      return `user ${me.id} through key ${pinnedFingerprint}`;
    });
  }

  async key_refused() {
    await check('a client that pinned only a retired key is refused', async () => {
      const c = this.newClient(1);
      let failure = null;
      c.onError = async (e) => {
        failure = e;
      };
      const connected = await withTimeout(c.connect(), STEP_TIMEOUT_MS, 'connect');
      expect(!connected && !c.connected, 'connected, though the server should no longer offer the pinned key');
      expect(failure && /could not find a valid key/.test(failure.message),
        `connect failed (${failure && failure.message}) but not for want of a key`);
      return failure.message;
    });
  }

  async password() {
    const phone = this.numbers.allowed;
    const secret = 'correct horse battery';
    const startWith = async (c, password) => {
      let lastError = null;
      try {
        await c.start({
          phoneNumber: phone,
          phoneCode: async () => hookedCode(this.codesFile, phone),
          password: async () => password,
          onError: async (e) => {
            lastError = e;
            return true; // stop: GramJS then throws AUTH_USER_CANCEL, the error before it is the answer
          },
        });
      } catch (e) {
        throw lastError || e;
      }
      if (lastError) throw lastError;
    };
    await check('cloud password set', async () => {
      await this.login(phone, 'unused');
      const c = this.clients[this.clients.length - 1];
      await c.updateTwoFaSettings({ newPassword: secret, hint: 'the usual' });
      return 'updateTwoFaSettings: account.getPassword, account.updatePasswordSettings';
    });
    await check('wrong cloud password refused', async () => {
      await rpcError(startWith(await this.client(), 'wrong horse'), 'PASSWORD_HASH_INVALID');
      return 'SESSION_PASSWORD_NEEDED, then PASSWORD_HASH_INVALID';
    });
    await check('cloud password logs in', async () => {
      const c = await this.client();
      await startWith(c, secret);
      const me = await c.getMe();
      expect(me instanceof Api.User && me.phone === phone, `getMe: ${me && me.phone}`);
      await c.updateTwoFaSettings({ currentPassword: secret });
      return `user ${me.id}; then removed with updateTwoFaSettings`;
    });
    await check('cloud password removed', async () => {
      const me = await this.login(phone, 'unused');
      return `user ${me.id} logs in with the code alone`;
    });
  }
}

let pinnedFingerprint = null;
const PHASES = ['allowlist', 'closed', 'key_pinned', 'key_refused', 'password'];

async function main() {
  const [phase, port, dataDir, codesFile, numbers] = process.argv.slice(2);
  if (!PHASES.includes(phase) || !numbers) {
    console.error(`usage: gramjs_operating.js ${PHASES.join('|')} PORT DATA_DIR CODES_FILE NUMBERS_JSON`);
    process.exit(2);
  }
  // MTCALL_PINNED_KEY: the one public key this client knows (the key phases); else server.pub.
  pinnedFingerprint = addKey(process.env.MTCALL_PINNED_KEY || `${dataDir}/server.pub`);
  const suite = new Suite(Number(port), codesFile, JSON.parse(numbers));
  try {
    await suite[phase]();
  } finally {
    await suite.closeAll();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL driver: ${e.stack || e}`);
  process.exit(1);
});
