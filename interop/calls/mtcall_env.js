'use strict';
// Pointing GramJS (npm `telegram` 2.26.22) at a local mtcall server, see docs/clients.md §2.1.
// Used by gramjs_agent.js and seed_received_call.js (the .ts seed has its own typed copy).

const crypto = require('crypto');
const fs = require('fs');
const bigInt = require('big-integer');
const { ConnectionTCPFull } = require('telegram/network');
const RSA = require('telegram/crypto/RSA');

const API_ID = 12345;
const API_HASH = '0123456789abcdef0123456789abcdef';

/** Adds DATA_DIR/server.pub (PKCS#1 PEM) to GramJS's key map; returns the signed fingerprint string. */
function addServerKey(dataDir) {
  const jwk = crypto.createPublicKey(fs.readFileSync(`${dataDir}/server.pub`)).export({ format: 'jwk' });
  const n = Buffer.from(jwk.n, 'base64url');
  const e = Buffer.from(jwk.e, 'base64url');
  // fingerprint = low 64 bits of SHA1(TL bytes n || TL bytes e), as GramJS computes it
  const tlBytes = (b) => {
    const head = b.length < 254
      ? Buffer.from([b.length])
      : Buffer.from([254, b.length & 255, (b.length >> 8) & 255, b.length >> 16]);
    const body = Buffer.concat([head, b]);
    return Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  };
  const sha = crypto.createHash('sha1').update(Buffer.concat([tlBytes(n), tlBytes(e)])).digest();
  const fp = sha.readBigInt64LE(12).toString();
  RSA._serverKeys.set(fp, { n: bigInt(n.toString('hex'), 16), e: parseInt(e.toString('hex'), 16) });
  return fp;
}

/** GramJS on Node dials port 80 whatever the session says: this subclass pins the real port. */
function pinnedConnection(port) {
  return class MtcallConnection extends ConnectionTCPFull {
    constructor(opts) {
      super({ ...opts, port });
    }
  };
}

/** Client options for a test client (no retry storms, no banner). */
function clientOptions(port) {
  const { Logger } = require('telegram/extensions/Logger');
  return {
    connection: pinnedConnection(port),
    connectionRetries: 2,
    retryDelay: 500,
    requestRetries: 1,
    timeout: 10,
    autoReconnect: false,
    baseLogger: new Logger('none'),
  };
}

/** Login code of a test number 99966XYYYY: XXXXX. */
function testCode(phone) {
  return String(phone)[5].repeat(5);
}

module.exports = { API_ID, API_HASH, addServerKey, pinnedConnection, clientOptions, testCode };
