// The seed's JavaScript example (docs/clients.md §2.1), run against an mtcall server.
//
// Usage: NODE_PATH=<dir>/node_modules node seed_received_call.js PORT DATA_DIR CALLEE_PHONE
//
// Logs in as the CALLEE (a test number 99966XYYYY, code XXXXX; signs up if new), prints
// `ready <phone> <user id>`, waits for an incoming phoneCallRequested (raw update handler), prints
// `incoming call <id>`, then runs the seed's code, whose console.log(result) must print `true`.
//
// The seed as quoted cannot run as is (docs/clients.md §2.1); the three fixes are marked FIX:
//   FIX 1: the class is `Api.phone.ReceivedCall` (`Api.phone.receivedCall` is undefined);
//   FIX 2: the client must connect and log in before `invoke`;
//   FIX 3: `client.destroy()` at the end, or Node never exits (GramJS pings every 9 s).
// Lines marked HARNESS only point GramJS at the local server and fill in the seed's `{...}`.
const {Api, TelegramClient} = require('telegram');
const {StringSession} = require('telegram/sessions');
const {Raw} = require('telegram/events'); // HARNESS: raw update handler for the incoming call
const {API_ID, API_HASH, addServerKey, clientOptions, testCode} = require('./mtcall_env'); // HARNESS

const [PORT, DATA_DIR, PHONE] = [Number(process.argv[2]), process.argv[3], process.argv[4]]; // HARNESS
const apiId = API_ID; // HARNESS: any non-zero id; mtcall does not check it
const apiHash = API_HASH; // HARNESS
addServerKey(DATA_DIR); // HARNESS: trust the server's RSA key (telegram/crypto/RSA _serverKeys)

const session = new StringSession('');
session.setDC(2, '127.0.0.1', PORT); // HARNESS: the local server
const client = new TelegramClient(session, apiId, apiHash, {...clientOptions(PORT)}); // HARNESS: options pin the port

// HARNESS: the incoming call whose InputPhoneCall fills the seed's `{...}`
const incomingCall = new Promise((resolve, reject) => {
    client.addEventHandler((update) => {
        if (update.className === 'UpdatePhoneCall' && update.phoneCall.className === 'PhoneCallRequested') {
            resolve(update.phoneCall);
        }
    }, new Raw({}));
    setTimeout(() => reject(new Error('no phoneCallRequested within 30 s')), 30000).unref();
});

(async function run() {
    // FIX 2: connect and log in (signs up a new test number) before invoking anything
    await client.start({
        phoneNumber: PHONE,
        phoneCode: async () => testCode(PHONE),
        firstAndLastNames: async () => ['Seed', 'Callee'],
        onError: async (e) => { throw e; },
    });
    const me = await client.getMe(); // HARNESS
    console.log(`ready ${PHONE} ${me.id}`); // HARNESS: run.py places the call now
    const call = await incomingCall; // HARNESS
    console.log(`incoming call ${call.id}`); // HARNESS

    const result = await client.invoke(new Api.phone.ReceivedCall({ // FIX 1: ReceivedCall, not receivedCall
		peer: new Api.InputPhoneCall({id: call.id, accessHash: call.accessHash}),
		}));
    console.log(result); // prints the result
    await client.destroy(); // FIX 3: close the connection so Node exits
})().catch((e) => { console.error(e); process.exit(1); }); // HARNESS: fail loudly
