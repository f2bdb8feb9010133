// The seed's TypeScript example (docs/clients.md §2.1), run against an mtcall server.
//
// Compile with the pinned `typescript` (run.py does this into a temporary directory):
//   tsc --project tsconfig.seed.json   (written by run.py: strict, commonjs, paths -> NODE_PATH)
// Usage: NODE_PATH=<dir>/node_modules node <outdir>/seed_received_call.js PORT DATA_DIR CALLEE_PHONE
//
// Logs in as the CALLEE (a test number 99966XYYYY, code XXXXX; signs up if new), prints
// `ready <phone> <user id>`, waits for an incoming phoneCallRequested (raw update handler), prints
// `incoming call <id>`, then runs the seed's code, whose console.log(result) must print `true`.
//
// The seed as quoted cannot run as is (docs/clients.md §2.1); the three fixes are marked FIX:
//   FIX 1: the class is `Api.phone.ReceivedCall` (`Api.phone.receivedCall` does not exist; tsc rejects it);
//   FIX 2: the client must connect and log in before `invoke`;
//   FIX 3: `client.destroy()` at the end, or Node never exits (GramJS pings every 9 s).
// Lines marked HARNESS only point GramJS at the local server and fill in the seed's `{...}`.
import {Api, TelegramClient} from 'telegram';
import {StringSession} from 'telegram/sessions';
import {Raw} from 'telegram/events'; // HARNESS: raw update handler for the incoming call
import {ConnectionTCPFull} from 'telegram/network'; // HARNESS
import {Logger, LogLevel} from 'telegram/extensions/Logger'; // HARNESS
import {_serverKeys} from 'telegram/crypto/RSA'; // HARNESS
import bigInt from 'big-integer'; // HARNESS (a dependency of `telegram`)
import {createHash, createPublicKey} from 'crypto'; // HARNESS
import {readFileSync} from 'fs'; // HARNESS

const PORT: number = Number(process.argv[2]); // HARNESS
const DATA_DIR: string = process.argv[3]; // HARNESS
const PHONE: string = process.argv[4]; // HARNESS
const apiId: number = 12345; // HARNESS: any non-zero id; mtcall does not check it
const apiHash: string = '0123456789abcdef0123456789abcdef'; // HARNESS

// HARNESS: trust the server's RSA key: GramJS looks keys up by the signed fingerprint
// (low 64 bits of SHA1 over the TL-serialized n and e).
function addServerKey(dataDir: string): void {
    const jwk = createPublicKey(readFileSync(`${dataDir}/server.pub`)).export({format: 'jwk'});
    const n: Buffer = Buffer.from(jwk.n as string, 'base64url');
    const e: Buffer = Buffer.from(jwk.e as string, 'base64url');
    const tlBytes = (b: Buffer): Buffer => {
        const head: Buffer = b.length < 254
            ? Buffer.from([b.length])
            : Buffer.from([254, b.length & 255, (b.length >> 8) & 255, b.length >> 16]);
        const body: Buffer = Buffer.concat([head, b]);
        return Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    };
    const sha: Buffer = createHash('sha1').update(Buffer.concat([tlBytes(n), tlBytes(e)])).digest();
    _serverKeys.set(sha.readBigInt64LE(12).toString(), {n: bigInt(n.toString('hex'), 16), e: parseInt(e.toString('hex'), 16)});
}

// HARNESS: GramJS on Node dials port 80 whatever the session says; pin the real port.
class MtcallConnection extends ConnectionTCPFull {
    constructor(opts: ConstructorParameters<typeof ConnectionTCPFull>[0]) {
        super({...opts, port: PORT});
    }
}

addServerKey(DATA_DIR); // HARNESS

const session = new StringSession('');
session.setDC(2, '127.0.0.1', PORT); // HARNESS: the local server
const client = new TelegramClient(session, apiId, apiHash, {
    connection: MtcallConnection, connectionRetries: 2, autoReconnect: false, baseLogger: new Logger(LogLevel.NONE), // HARNESS
});

// HARNESS: the incoming call whose InputPhoneCall fills the seed's `{...}`
const incomingCall: Promise<Api.PhoneCallRequested> = new Promise((resolve, reject) => {
    client.addEventHandler((update: Api.TypeUpdate) => {
        if (update instanceof Api.UpdatePhoneCall && update.phoneCall instanceof Api.PhoneCallRequested) {
            resolve(update.phoneCall);
        }
    }, new Raw({}));
    setTimeout(() => reject(new Error('no phoneCallRequested within 30 s')), 30000).unref();
});

(async function run() {
    // FIX 2: connect and log in (signs up a new test number) before invoking anything
    await client.start({
        phoneNumber: PHONE,
        phoneCode: async () => PHONE[5].repeat(5),
        firstAndLastNames: async () => ['Seed', 'Callee'],
        onError: async (e: Error) => { throw e; },
    });
    const me = await client.getMe(); // HARNESS
    console.log(`ready ${PHONE} ${me.id}`); // HARNESS: run.py places the call now
    const call: Api.PhoneCallRequested = await incomingCall; // HARNESS
    console.log(`incoming call ${call.id}`); // HARNESS

    const result: Api.Bool = await client.invoke(new Api.phone.ReceivedCall({ // FIX 1: ReceivedCall, not receivedCall
		peer: new Api.InputPhoneCall({id: call.id, accessHash: call.accessHash}),
		}));
    console.log(result); // prints the result
    await client.destroy(); // FIX 3: close the connection so Node exits
})().catch((e: unknown) => { console.error(e); process.exit(1); }); // HARNESS: fail loudly
