#!/usr/bin/env node
// The inspector's browser side: Debian's Chromium, headless, driven by playwright-core (no browser download).
// run.py starts it, then sends one JSON command per line on stdin; for each command it prints one line per
// check, {"check": NAME, "ok": true} or {"check": NAME, "ok": false, "reason": "..."}, then {"done": OP}.
//
// Usage: NODE_PATH=<dir>/node_modules node page_check.js --chromium /usr/bin/chromium --artefacts DIR
// Commands (see run.py for the arguments):
//   open     {url, address}            open the inspector first (before any client connects) and wait for the stream
//   live     {a, b, c, call, busy_call, layers, screenshot}   while A->B rings and B is busy
//   final    {a, b, c, call, busy_call, screenshot}           after the hang-up: feed order, timeline, decoded TL
//   token    {with, without}           a server with an admin token: the page with and without ?token=
//   exit
// The page's data-testid attributes are listed in README.md.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const WAIT = 8000; // ms for the page to show what the server already did

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
let context;
let page;
const pageErrors = [];

// ------------------------------------------------------------------ helpers
async function check(name, fn) {
  try {
    const detail = await fn();
    out({ check: name, ok: true, detail: detail || undefined });
    return true;
  } catch (e) {
    out({ check: name, ok: false, reason: String((e && e.message) || e).split('\n')[0].slice(0, 1500) });
    return false;
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** What the page shows, as plain data: feed rows, call rows, session rows, timeline rows, lanes, TL panel. */
function snapshot() {
  return page.evaluate(() => {
    const rows = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];
    const data = (r) => ({ ...r.dataset, text: r.textContent.replace(/\s+/g, ' ').trim() });
    return {
      feed: rows('feed-row').map(data),
      calls: rows('call-row').map(data),
      sessions: rows('session-row').map(data),
      timeline: rows('timeline-row').map(data),
      lanes: rows('lane').map(data),
      tl: (() => { const p = document.querySelector('[data-testid="tl-json"]'); return p ? { ...p.dataset, text: p.textContent } : null; })(),
      diagramCall: (document.querySelector('[data-testid="diagram"]') || {}).dataset?.callId || null,
      stream: document.querySelector('[data-testid="stream-status"]').dataset.state,
      busy: document.querySelector('[data-testid="busy-users"]').textContent,
      banner: (() => { const b = document.querySelector('[data-testid="banner"]'); return b.hidden ? '' : b.textContent; })(),
    };
  });
}

/** Polls snapshot() until pred(snap) returns true (or a string: the reason it is not yet true). */
async function until(pred, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    const snap = await snapshot();
    last = pred(snap);
    if (last === true) return snap;
    if (Date.now() > deadline) throw new Error(`${what}: ${typeof last === 'string' ? last : 'not shown'} after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const short = (rows) => rows.map((r) => `#${r.seq} ${r.kind} ${r.name}${r.error ? ` ${r.error}` : ''} u${r.userId || '-'} ${r.callId ? r.callId.slice(0, 6) : '-'}`).join('; ');

async function screenshot(name) {
  fs.mkdirSync(args.artefacts, { recursive: true });
  const file = path.join(args.artefacts, name);
  await page.screenshot({ path: file });
  return file;
}

async function newPage() {
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(`${e.message}`));
  p.on('console', (m) => { if (m.type() === 'error' && !/status of 40[14]/.test(m.text())) pageErrors.push(`console: ${m.text()}`); });
  return p;
}

// The events of the scenario, found in the activity feed (all of them, in DOM order).
function scenarioRows(rows, a, b, c, call) {
  const find = (fn) => rows.find(fn);
  return {
    request: find((r) => r.kind === 'rpc' && r.name === 'phone.requestCall' && r.callId === call && r.userId === String(a.id)),
    received: find((r) => r.kind === 'rpc' && r.name === 'phone.receivedCall' && r.callId === call && r.userId === String(b.id) && !r.error),
    receiveDate: find((r) => r.kind === 'push' && r.callId === call && r.userId === String(a.id) && /receive_date/.test(r.text)),
    busy: find((r) => r.kind === 'note' && /busy/i.test(r.text)),
  };
}

// ------------------------------------------------------------------ commands
const commands = {
  async open({ url, address }) {
    await check('the inspector page opens before any client connects', async () => {
      page = await newPage();
      const r = await page.goto(url, { waitUntil: 'load' });
      expect(r && r.status() === 200, `GET ${url}: HTTP ${r && r.status()}`);
      return `HTTP ${r.status()}`;
    });
    await check('the page connects to the event stream (api/stream) and loads api/overview', async () => {
      await until((s) => s.stream === 'open' || `stream ${s.stream}`, 'stream status');
      await page.waitForFunction(() => document.querySelector('[data-testid="node-version"]').textContent !== '–', null, { timeout: WAIT });
    });
    await check('the header shows the node: version, MTProto address, store', async () => {
      const h = await page.evaluate(() => ['node-version', 'node-address', 'node-store'].map((id) => document.querySelector(`[data-testid="${id}"]`).textContent));
      expect(/^\d+\.\d+\.\d+/.test(h[0]), `version '${h[0]}'`);
      expect(h[1] === address, `address '${h[1]}', want '${address}'`);
      expect(['sqlite', 'postgres'].includes(h[2]), `store '${h[2]}'`);
      return h.join(', ');
    });
  },

  async live({ a, b, c, call, busy_call: busyCall, layers, screenshot: shot }) {
    await check('sessions table lists the 3 users with layer, transport and client device', async () => {
      await until((s) => {
        for (const u of [a, b, c]) {
          const r = s.sessions.find((x) => x.userId === String(u.id));
          if (!r) return `no session row for ${u.name} (${u.id}); rows: ${s.sessions.map((x) => x.text).join(' | ')}`;
          if (r.layer !== String(layers[u.id])) return `${u.name}: layer '${r.layer}', want ${layers[u.id]}`;
          if (r.transport !== 'full') return `${u.name}: transport '${r.transport}', want full`;
          if (!r.text.includes(u.name)) return `${u.name}: name missing in '${r.text}'`;
          for (const k of ['device_model', 'app_version', 'system_version']) {
            if (!u[k] || !r.text.includes(u[k])) return `${u.name}: ${k} '${u[k]}' (api/overview) missing in '${r.text}'`;
          }
        }
        return true;
      }, 'sessions');
    });
    await check('the caller and the callee are shown busy (session badges, header), the third user is not', async () => {
      await until((s) => {
        for (const u of [a, b]) {
          const r = s.sessions.find((x) => x.userId === String(u.id));
          if (!r || r.busy !== 'true') return `${u.name}'s session row data-busy=${r && r.busy}`;
          if (!s.busy.includes(u.name)) return `header busy list '${s.busy}'`;
        }
        const r = s.sessions.find((x) => x.userId === String(c.id));
        if (!r || r.busy !== 'false' || s.busy.includes(c.name)) return `${c.name} shown busy (${s.busy})`;
        return true;
      }, 'busy');
    });
    await check('the ringing call A -> B is listed live (state received)', async () => {
      await until((s) => {
        const r = s.calls.find((x) => x.callId === call);
        if (!r) return `no row for call ${call}; rows ${s.calls.map((x) => x.callId).join(',')}`;
        if (r.live !== 'true' || r.state !== 'received') return `live=${r.live} state=${r.state}`;
        if (!r.text.includes(a.name) || !r.text.includes(b.name) || r.text.indexOf(a.name) > r.text.indexOf(b.name)) return `row text '${r.text}'`;
        return true;
      }, 'call row');
    });
    await check('the refused call C -> B is listed as busy_refused', async () => {
      await until((s) => {
        const r = s.calls.find((x) => x.callId === busyCall);
        if (!r) return `no row for call ${busyCall}`;
        if (r.live !== 'false' || r.outcome !== 'busy_refused') return `live=${r.live} outcome=${r.outcome} state=${r.state}`;
        return true;
      }, 'busy call row');
    });
    await check('the live call is listed before the ended one', async () => {
      const s = await snapshot();
      const i = s.calls.findIndex((x) => x.callId === call);
      const j = s.calls.findIndex((x) => x.callId === busyCall);
      expect(i >= 0 && j >= 0 && i < j, `call rows ${s.calls.map((x) => `${x.callId}:${x.live}`).join(', ')}`);
    });
    await check(`screenshot ${shot}`, async () => screenshot(shot));
  },

  async final({ a, b, c, call, busy_call: busyCall, screenshot: shot }) {
    let { feed } = await snapshot();
    await check('the ended call A -> B is listed with outcome answered', async () => {
      await until((s) => {
        const r = s.calls.find((x) => x.callId === call);
        if (!r) return `no row for call ${call}`;
        if (r.live !== 'false' || r.state !== 'discarded' || r.outcome !== 'answered') return `live=${r.live} state=${r.state} outcome=${r.outcome}`;
        return true;
      }, 'call row');
      const s = await until((x) => (!x.busy.includes(b.name) && !x.busy.includes(a.name) && x.sessions.every((r) => r.busy === 'false'))
        || `still busy: header '${x.busy}', rows ${x.sessions.filter((r) => r.busy === 'true').map((r) => r.userId)}`, 'busy released');
      feed = s.feed;
    });
    await check('activity feed: requestCall, receivedCall, the receive_date push, the busy refusal, in that order', async () => {
      const s = await until((x) => {
        const f = scenarioRows(x.feed, a, b, c, call);
        const missing = Object.entries(f).filter(([, v]) => !v).map(([k]) => k);
        return missing.length ? `missing ${missing.join(', ')} in feed [${short(x.feed)}]` : true;
      }, 'feed');
      feed = s.feed;
      const f = scenarioRows(feed, a, b, c, call);
      const seqs = [f.request, f.received, f.receiveDate, f.busy].map((r) => Number(r.seq));
      expect(seqs.every((v, i) => i === 0 || v > seqs[i - 1]), `seqs ${seqs.join(' < ')} not increasing`);
      const dom = [f.request, f.received, f.receiveDate, f.busy].map((r) => feed.indexOf(r));
      expect(dom.every((v, i) => i === 0 || v > dom[i - 1]), `DOM positions ${dom.join(', ')} not in order`);
      expect(f.busy.text.includes(c.name) && f.busy.text.includes(b.name), `busy note '${f.busy.text}' names neither ${c.name} nor ${b.name}`);
      return `seq ${seqs.join(' < ')}`;
    });
    await check('activity feed rows are in seq order', async () => {
      const seqs = feed.map((r) => Number(r.seq));
      expect(seqs.length > 0 && seqs.every((v, i) => i === 0 || v > seqs[i - 1]), `seqs ${seqs.join(',')}`);
    });
    await check('activity feed: the busy caller gets phoneCallDiscarded(busy) pushed', async () => {
      const r = feed.find((x) => x.kind === 'push' && x.userId === String(c.id) && x.callId === busyCall && /phoneCallDiscarded/.test(x.text) && /busy/i.test(x.text));
      expect(r, `no such push in [${short(feed.filter((x) => x.userId === String(c.id)))}]`);
    });
    await check('activity feed: the wrong access_hash shows CALL_PEER_INVALID', async () => {
      const r = feed.find((x) => x.kind === 'rpc' && x.name === 'phone.receivedCall' && x.error === 'CALL_PEER_INVALID');
      expect(r && r.text.includes('CALL_PEER_INVALID'), `no receivedCall row with the error in [${short(feed)}]`);
    });
    await check('clicking the call selects it: lanes caller | server | callee', async () => {
      await page.click(`[data-testid="call-row"][data-call-id="${call}"]`);
      await until((s) => {
        if (s.diagramCall !== call) return `diagram shows ${s.diagramCall}`;
        const sides = s.lanes.map((l) => l.side);
        const ci = sides.indexOf('caller');
        const si = sides.indexOf('server');
        const ei = sides.indexOf('callee');
        if (!(ci >= 0 && si > ci && ei > si)) return `lanes ${s.lanes.map((l) => `${l.side}:${l.text}`).join(' | ')}`;
        const callerLane = s.lanes[ci];
        const calleeLane = s.lanes[ei];
        if (!callerLane.text.includes(a.name) || !calleeLane.text.includes(b.name)) return `lane labels '${callerLane.text}' / '${calleeLane.text}'`;
        return true;
      }, 'diagram lanes');
    });
    await check('the selected call shows its media path: confirmed without relayed packets is direct', async () => {
      const m = await page.waitForFunction(() => {
        const e = document.querySelector('[data-testid="call-media"]');
        return e && e.dataset.path !== 'not started' ? { path: e.dataset.path, text: e.textContent } : null;
      }, null, { timeout: WAIT }).then((h) => h.jsonValue());
      expect(m.path === 'direct' && m.text.includes('p2p always'), `media ${JSON.stringify(m)}`);
      return m.text;
    });
    await check('timeline: requestCall from the caller, receivedCall from the callee, receive_date pushed to the caller, in order', async () => {
      const s = await until((x) => x.timeline.some((r) => r.kind === 'rpc' && r.name === 'phone.discardCall') || `timeline [${short(x.timeline)}]`, 'timeline');
      const lanes = new Map(s.lanes.map((l) => [l.lane, l.side]));
      const t = s.timeline;
      const req = t.find((r) => r.kind === 'rpc' && r.name === 'phone.requestCall');
      const rec = t.find((r) => r.kind === 'rpc' && r.name === 'phone.receivedCall' && !r.error);
      const push = t.find((r) => r.kind === 'push' && /receive_date/.test(r.text));
      expect(req && rec && push, `timeline [${short(t)}]`);
      expect(lanes.get(req.lane) === 'caller', `requestCall drawn on lane ${req.lane} (${lanes.get(req.lane)})`);
      expect(lanes.get(rec.lane) === 'callee', `receivedCall drawn on lane ${rec.lane} (${lanes.get(rec.lane)})`);
      expect(lanes.get(push.lane) === 'caller', `receive_date push drawn on lane ${push.lane} (${lanes.get(push.lane)})`);
      const idx = [req, rec, push].map((r) => t.indexOf(r));
      expect(idx[0] < idx[1] && idx[1] < idx[2], `DOM order ${idx.join(', ')}`);
      const seqs = t.map((r) => Number(r.seq));
      expect(seqs.every((v, i) => i === 0 || v > seqs[i - 1]), `timeline seqs ${seqs.join(',')}`);
      expect(t.every((r) => r.callId === call || r.related === 'true'), 'a row of another call in the timeline');
      const names = t.filter((r) => r.kind === 'rpc' && !r.error).map((r) => r.name);
      for (const m of ['phone.acceptCall', 'phone.confirmCall', 'phone.discardCall']) expect(names.includes(m), `no ${m} in [${names.join(', ')}]`);
      const bad = t.find((r) => r.error === 'CALL_PEER_INVALID');
      expect(bad && bad.text.includes('CALL_PEER_INVALID'), 'the CALL_PEER_INVALID answer is not drawn');
      return `${t.length} rows`;
    });
    await check('timeline: the busy refusal it caused is drawn as a note after the receive_date push', async () => {
      const t = (await snapshot()).timeline;
      const push = t.findIndex((r) => r.kind === 'push' && /receive_date/.test(r.text));
      const note = t.findIndex((r) => r.kind === 'note' && /busy/i.test(r.text) && r.callId === busyCall);
      expect(note >= 0, `no busy refusal note in [${short(t)}]`);
      expect(push >= 0 && note > push && Number(t[note].seq) > Number(t[push].seq), `note at ${note}, push at ${push}`);
    });
    await check('clicking the receivedCall row shows its decoded TL: phone.receivedCall, result true', async () => {
      const s = await snapshot();
      const rec = s.timeline.find((r) => r.kind === 'rpc' && r.name === 'phone.receivedCall' && !r.error);
      await page.click(`[data-testid="timeline-row"][data-seq="${rec.seq}"]`);
      const tl = await until((x) => (x.tl && x.tl.seq === rec.seq && x.tl.state === 'ok') || `TL panel ${JSON.stringify(x.tl).slice(0, 200)}`, 'decoded TL');
      const text = tl.tl.text;
      expect(/"_"\s*:\s*"phone\.receivedCall"/.test(text), `no "_": "phone.receivedCall" in ${text.slice(0, 300)}`);
      expect(/"result"\s*:\s*(true|\{\s*"_"\s*:\s*"boolTrue"\s*\})/.test(text), `result is not true: ${text.slice(0, 600)}`);
      expect(text.includes(call), `the call id ${call} is not in the request`);
    });
    await check('the call page has no JavaScript errors', async () => {
      expect(pageErrors.length === 0, pageErrors.join(' | '));
    });
    await check(`screenshot ${shot} (1280x900)`, async () => screenshot(shot));
  },

  async token({ with: withToken, without }) {
    await check('admin token: the page opened with ?token= connects and loads the overview', async () => {
      const p = await newPage();
      page = p;
      const r = await p.goto(withToken, { waitUntil: 'load' });
      expect(r && r.status() === 200, `HTTP ${r && r.status()}`);
      await until((s) => (s.stream === 'open' && !s.banner) || `stream ${s.stream}, banner '${s.banner}'`, 'stream');
      await p.waitForFunction(() => document.querySelector('[data-testid="node-version"]').textContent !== '–', null, { timeout: WAIT });
      await p.close();
    });
    await check('admin token: without it the page says 401', async () => {
      const p = await newPage();
      page = p;
      const r = await p.goto(without, { waitUntil: 'load' });
      if (r && r.status() === 401) return 'the page itself is 401';
      await until((s) => /401/.test(s.banner) || `banner '${s.banner}', stream ${s.stream}`, 'banner');
      await p.close();
      return 'banner';
    });
  },
};

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtcall-inspector-chromium-'));
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: args.chromium,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    out({ ready: false, error: String(e.message || e).split('\n')[0] });
    process.exit(1);
  }
  for (const p of context.pages()) await p.close().catch(() => {});
  out({ ready: true, browser: context.browser() ? context.browser().version() : null });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (cmd.op === 'exit') break;
    try {
      await commands[cmd.op](cmd);
    } catch (e) {
      out({ check: `${cmd.op}`, ok: false, reason: String(e.message || e).split('\n')[0] });
    }
    out({ done: cmd.op });
  }
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  out({ done: 'exit' });
}

main().catch((e) => {
  out({ fatal: String((e && e.stack) || e) });
  process.exit(1);
});
