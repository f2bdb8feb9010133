// mtcall call inspector: plain JavaScript, no framework, no build step.
//
// State comes from GET api/overview (on every (re)connect of the event stream) and is then kept up to
// date incrementally by the server-sent events of api/stream (`event`, `call`, `session`,
// `session_closed`). A selected call's events come from api/calls/{id}; the decoded TL of one event
// from api/events/{seq}, shown verbatim (64-bit ids are strings or big numbers there: never re-parsed).
// With ?token=X in the page's URL every request carries token=X.
'use strict';

(() => {
  const FEED_MAX = 200; // rows kept in the activity feed (the server's overview sends at most 200)
  const RECENT_MAX = 100; // ended calls kept in the calls table
  const token = new URLSearchParams(location.search).get('token');

  /** A same-origin URL for an API path, with the page's token appended. */
  function api(path) {
    if (!token) return path;
    return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  }

  const S = {
    node: null,
    skew: 0, // server clock minus ours, ms
    sessions: new Map(), // conn_id -> Session
    calls: new Map(), // call id -> CallSummary
    busyKnown: new Map(), // user id -> name: the server said busy (overview, session), no call of theirs ended since
    feed: [], // Events, seq order
    feedSeqs: new Set(),
    firstAt: new Map(), // call id -> at_ms of its earliest event seen
    selected: null, // {id, events: Map(seq -> Event), explicit: bool}
    activeSeq: null, // the event whose TL is shown
    loading: 0, // overview generation being loaded (0: none)
    generation: 0,
    pending: [], // stream messages received while an overview is loading
    feedNew: [], // events to append to the feed's table at the next render
  };
  const dirty = new Set();
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  // ------------------------------------------------------------------ formatting
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'style') e.style.cssText = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  /** HH:MM:SS.mmm, local time. */
  function clock(ms) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  /** A span of milliseconds: 850 ms, 12.3 s, 4 m 05 s, 2 h 03 m. */
  function span(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} m ${pad(Math.floor(s % 60))} s`;
    return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  }
  function micros(us) {
    if (us === null || us === undefined) return '';
    if (us < 1000) return `${us} µs`;
    if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
    return `${(us / 1e6).toFixed(2)} s`;
  }
  const shortId = (id) => (id && id.length > 8 ? `${id.slice(0, 6)}…${id.slice(-2)}` : id || '');
  const who = (u) => (u ? u.name || `user ${u.id}` : '');
  const now = () => Date.now() + S.skew;

  /** Who is busy: what the server said, and what the live calls imply (docs/calls.md §2.1: the caller
   * of a live call, and its callee from the first receivedCall on). */
  function busyUsers() {
    const m = new Map(S.busyKnown);
    for (const c of S.calls.values()) {
      if (!c.live) continue;
      m.set(c.admin.id, c.admin.name);
      if (['received', 'accepted', 'confirmed'].includes(c.state)) m.set(c.participant.id, c.participant.name);
    }
    return m;
  }

  // ------------------------------------------------------------------ state changes
  function applyOverview(o) {
    S.node = o.node || null;
    if (S.node && S.node.now_ms) S.skew = S.node.now_ms - Date.now();
    S.sessions = new Map((o.sessions || []).map((s) => [s.conn_id, s]));
    S.calls = new Map();
    const calls = o.calls || {};
    for (const c of [...(calls.live || []), ...(calls.recent || [])]) S.calls.set(c.id, c);
    S.busyKnown = new Map((o.busy_users || []).map((u) => [u.id, u.name]));
    for (const s of S.sessions.values()) if (s.busy && s.user) S.busyKnown.set(s.user.id, s.user.name);
    S.feed = [];
    S.feedSeqs = new Set();
    for (const e of o.feed || []) addFeed(e, false);
    for (const d of ['header', 'sessions', 'calls', 'feed-reset', 'detail']) dirty.add(d);
  }

  /** Whether an event is drawn in call `id`'s timeline: its own, and notes about it (a busy refusal
   * names the call that made the callee busy). */
  function belongs(ev, id) {
    return ev.call_id === id || (ev.kind === 'note' && typeof ev.detail === 'string' && ev.detail.includes(id));
  }

  function seen(ev) {
    if (!ev.call_id) return;
    const t = S.firstAt.get(ev.call_id);
    if (t === undefined || ev.at_ms < t) S.firstAt.set(ev.call_id, ev.at_ms);
  }

  /** When a call started: created_at_ms can be whole seconds (the call's TL `date`); its first event, when
   * within that second, is more exact. */
  function startOf(c) {
    const t = S.firstAt.get(c.id);
    return t !== undefined && t >= c.created_at_ms && t - c.created_at_ms < 1000 ? t : c.created_at_ms;
  }

  function addFeed(ev, incremental) {
    seen(ev);
    if (S.feedSeqs.has(ev.seq)) return;
    S.feedSeqs.add(ev.seq);
    let i = S.feed.length;
    while (i > 0 && S.feed[i - 1].seq > ev.seq) i -= 1;
    S.feed.splice(i, 0, ev);
    while (S.feed.length > FEED_MAX) S.feedSeqs.delete(S.feed.shift().seq);
    if (incremental) S.feedNew.push(ev);
  }

  const RANK = { requested: 0, received: 1, accepted: 2, confirmed: 3, discarded: 4 };
  const rank = (c) => (c.live ? RANK[c.state] ?? 0 : 5);

  /** A call summary (stream, overview or api/calls/{id}); an older snapshot of the call is ignored. The event
   * count only grows (a summary can be sent before the events of its own change). */
  function mergeCall(c) {
    const old = S.calls.get(c.id);
    if (old && rank(c) < rank(old)) return;
    S.calls.set(c.id, old ? { ...c, events: Math.max(old.events || 0, c.events || 0) } : c);
    const ended = [...S.calls.values()].filter((x) => !x.live);
    if (ended.length > RECENT_MAX) {
      ended.sort((a, b) => (b.ended_at_ms || b.created_at_ms) - (a.ended_at_ms || a.created_at_ms));
      for (const x of ended.slice(RECENT_MAX)) {
        if (S.selected && S.selected.id === x.id) continue;
        S.calls.delete(x.id);
        S.firstAt.delete(x.id);
      }
    }
  }

  function apply(type, d) {
    switch (type) {
      case 'event':
        addFeed(d, true);
        dirty.add('feed');
        if (d.call_id && S.calls.has(d.call_id)) dirty.add('calls');
        if (S.selected && belongs(d, S.selected.id)) {
          S.selected.events.set(d.seq, d);
          dirty.add('detail');
        }
        break;
      case 'call':
        mergeCall(d);
        if (!d.live) {
          // the end of a call releases its users (still busy through another live call, busyUsers() says so)
          S.busyKnown.delete(d.admin.id);
          S.busyKnown.delete(d.participant.id);
        }
        dirty.add('calls');
        dirty.add('header');
        if (S.selected && S.selected.id === d.id) dirty.add('detail');
        else if (d.live && following()) select(d.id, false);
        break;
      case 'session':
        S.sessions.set(d.conn_id, d);
        if (d.user && d.busy) S.busyKnown.set(d.user.id, d.user.name);
        else if (d.user) S.busyKnown.delete(d.user.id);
        dirty.add('sessions');
        dirty.add('header');
        break;
      case 'session_closed':
        S.sessions.delete(d.conn_id);
        dirty.add('sessions');
        dirty.add('header');
        break;
      default:
    }
    schedule();
  }

  function receive(type, raw) {
    let d;
    try {
      d = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (S.loading) S.pending.push([type, d]);
    else apply(type, d);
  }

  // ------------------------------------------------------------------ server I/O
  function banner(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  async function loadOverview() {
    S.generation += 1;
    const gen = S.generation;
    S.loading = gen;
    try {
      const r = await fetch(api('api/overview'), { cache: 'no-store' });
      if (gen !== S.generation) return;
      if (r.status === 401) {
        banner('401 unauthorized: this server has an admin token; open the page as /?token=…');
        return;
      }
      if (!r.ok) throw new Error(`api/overview: HTTP ${r.status}`);
      const o = await r.json();
      if (gen !== S.generation) return;
      applyOverview(o);
      banner('');
    } catch (e) {
      if (gen === S.generation) banner(`cannot load the overview: ${e.message}`);
    } finally {
      if (gen === S.generation) {
        S.loading = 0;
        const p = S.pending;
        S.pending = [];
        for (const [t, d] of p) apply(t, d);
        if (S.selected) loadCall(S.selected.id);
        schedule();
      }
    }
  }

  async function loadCall(id) {
    try {
      const r = await fetch(api(`api/calls/${encodeURIComponent(id)}`), { cache: 'no-store' });
      if (!S.selected || S.selected.id !== id) return;
      if (r.status === 404) {
        S.selected.missing = true;
        dirty.add('detail');
        schedule();
        return;
      }
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const c = await r.json();
      if (!S.selected || S.selected.id !== id) return;
      const { events, ...summary } = c; // here `events` is the list, not the summary's count
      summary.events = Array.isArray(events) ? events.length + (c.events_dropped || 0) : events;
      mergeCall(summary);
      for (const e of events || []) {
        S.selected.events.set(e.seq, e);
        seen(e);
      }
      S.selected.loaded = true;
      dirty.add('detail');
      dirty.add('calls');
      schedule();
    } catch (e) {
      banner(`cannot load call ${id}: ${e.message}`);
    }
  }

  /** Until a call is picked, the page follows the newest live call (keeping one while it is live). */
  function following() {
    if (!S.selected) return true;
    if (S.selected.explicit) return false;
    const c = S.calls.get(S.selected.id);
    return !c || !c.live;
  }

  function select(id, explicit) {
    if (S.selected && S.selected.id === id) {
      if (explicit) {
        S.selected.explicit = true;
        $('diagram-scroll').scrollTop = 0;
      }
      return;
    }
    S.selected = { id, events: new Map(), explicit, loaded: false };
    for (const e of S.feed) if (belongs(e, id)) S.selected.events.set(e.seq, e);
    dirty.add('detail');
    dirty.add('calls');
    schedule();
    loadCall(id);
  }

  async function showEvent(seq) {
    S.activeSeq = seq;
    for (const r of document.querySelectorAll('.active-ev')) r.classList.remove('active-ev');
    for (const r of document.querySelectorAll(`tr[data-seq="${seq}"], .ev[data-seq="${seq}"]`)) r.classList.add('active-ev');
    const pre = $('tl-json');
    const title = $('tl-title');
    const ev = S.feed.find((e) => e.seq === seq) || (S.selected && S.selected.events.get(seq));
    title.textContent = `Decoded TL · event #${seq}${ev ? ` · ${ev.name}` : ''}`;
    pre.dataset.seq = seq;
    pre.dataset.state = 'loading';
    pre.textContent = 'loading…';
    try {
      const r = await fetch(api(`api/events/${seq}`), { cache: 'no-store' });
      const text = await r.text();
      if (S.activeSeq !== seq) return;
      if (r.status === 404) {
        pre.dataset.state = 'missing';
        pre.textContent = `event #${seq} is no longer kept (the server keeps a bounded history)`;
        return;
      }
      if (!r.ok) throw new Error(`HTTP ${r.status}: ${text}`);
      pre.dataset.state = 'ok';
      pre.textContent = text; // verbatim: re-stringifying would round 64-bit ids
    } catch (e) {
      if (S.activeSeq !== seq) return;
      pre.dataset.state = 'error';
      pre.textContent = `cannot load event #${seq}: ${e.message}`;
    }
  }

  let source = null;
  function connect() {
    setStream('connecting');
    const es = new EventSource(api('api/stream'));
    source = es;
    es.onopen = () => {
      setStream('open');
      loadOverview();
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // the browser gave up (an HTTP error such as 401): show why, try again later
        setStream('closed');
        es.close();
        if (source === es) {
          source = null;
          loadOverview();
          setTimeout(connect, 3000);
        }
      } else {
        setStream('connecting'); // EventSource reconnects by itself; onopen re-fetches the overview
      }
    };
    for (const type of ['event', 'call', 'session', 'session_closed']) {
      es.addEventListener(type, (m) => receive(type, m.data));
    }
  }

  function setStream(state) {
    const e = $('stream-status');
    e.dataset.state = state;
    e.textContent = { open: '● live', connecting: '○ connecting…', closed: '○ disconnected' }[state];
  }

  // ------------------------------------------------------------------ rendering
  let scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    const run = () => {
      if (!scheduled) return;
      scheduled = false;
      render();
    };
    requestAnimationFrame(run);
    setTimeout(run, 100); // hidden tabs get no animation frames
  }

  let busyKey = '';
  function render() {
    const d = new Set(dirty);
    dirty.clear();
    if (d.has('calls') || d.has('sessions')) {
      // busy follows the calls: redraw the sessions and the header when it changes
      const key = [...busyUsers().keys()].sort().join(',');
      if (key !== busyKey) {
        busyKey = key;
        d.add('sessions');
        d.add('header');
      }
    }
    if (d.has('header')) renderHeader();
    if (d.has('sessions')) renderSessions();
    if (d.has('calls')) renderCalls();
    if (d.has('feed-reset')) renderFeed(true);
    else if (d.has('feed')) renderFeed(false);
    if (d.has('detail')) renderDetail();
  }

  function renderHeader() {
    const n = S.node;
    if (n) {
      $('node-version').textContent = n.version;
      $('node-address').textContent = n.mtproto_address;
      $('node-address').title = 'RSA key fingerprints: ' + (n.rsa_keys || []).map((k) => k.fingerprint).join(', ');
      $('node-store').textContent = n.store;
    }
    tick();
    const users = new Set([...S.sessions.values()].filter((s) => s.user).map((s) => s.user.id));
    $('count-users').textContent = users.size;
    $('count-sessions').textContent = S.sessions.size;
    $('count-live').textContent = [...S.calls.values()].filter((c) => c.live).length;
    const busy = busyUsers();
    const b = $('busy-users');
    b.replaceChildren(...(busy.size ? [...busy].map(([id, name]) => el('span', { class: 'badge busy', 'data-user-id': id, title: `user ${id}` }, name)) : ['none']));
  }

  /** Once a second: uptime and the running durations of live calls. */
  function tick() {
    if (S.node && S.node.started_at_ms) $('node-uptime').textContent = span(now() - S.node.started_at_ms);
    for (const e of document.querySelectorAll('[data-live-since]')) e.textContent = span(now() - Number(e.dataset.liveSince));
  }

  function deviceOf(s) {
    const c = s.client;
    if (!c) return el('td', { class: 'dim' }, '–');
    return el('td', { title: `api_id ${c.api_id} · lang ${c.lang_code}` },
      el('div', { class: 'strong' }, c.device_model || '?'),
      el('div', { class: 'small' }, [c.app_version, c.system_version].filter(Boolean).join(' · ')));
  }

  function renderSessions() {
    const rows = [...S.sessions.values()].sort((a, b) => {
      if (!a.user !== !b.user) return a.user ? -1 : 1;
      const n = who(a.user).localeCompare(who(b.user));
      return n || a.conn_id - b.conn_id;
    });
    const busy = busyUsers();
    $('sessions-body').replaceChildren(...rows.map((s) => {
      const isBusy = !!(s.user && busy.has(s.user.id));
      return el('tr', {
        'data-testid': 'session-row', 'data-conn-id': s.conn_id, 'data-user-id': s.user ? s.user.id : '',
        'data-busy': isBusy ? 'true' : 'false', 'data-layer': s.layer ?? '', 'data-transport': s.transport ?? '',
        class: s.user ? '' : 'anon',
      },
      el('td', {},
        el('div', { class: 'strong' }, s.user ? who(s.user) : 'not logged in',
          isBusy ? el('span', { class: 'badge busy', 'data-testid': 'busy-badge' }, 'busy') : null),
        el('div', { class: 'small', title: `connected ${clock(s.connected_at_ms)}` }, `${s.user ? `id ${s.user.id} · ` : ''}conn ${s.conn_id} · `,
          el('span', { 'data-live-since': s.connected_at_ms }, span(now() - s.connected_at_ms)))),
      deviceOf(s),
      el('td', { class: 'num' }, s.layer ?? '–'),
      el('td', {},
        el('div', {}, s.transport || '–', s.obfuscated ? el('span', { class: 'badge obf', title: 'obfuscated2' }, 'obf') : null),
        el('div', { class: 'small mono' }, s.peer)),
      el('td', { class: 'mono', title: s.session_id ? `session ${s.session_id}` : '' }, s.auth_key || '–'));
    }));
    $('sessions-empty').hidden = rows.length > 0;
  }

  /** A call's event count: its summary's, or more if more of its events have been seen since (the
   * stream's summaries can be sent before the events of the same change). */
  function eventCount(c, inFeed) {
    let n = inFeed ? inFeed.get(c.id) || 0 : S.feed.filter((e) => e.call_id === c.id).length;
    if (S.selected && S.selected.id === c.id) {
      let own = 0;
      for (const e of S.selected.events.values()) if (e.call_id === c.id) own += 1;
      n = Math.max(n, own);
    }
    return Math.max(c.events || 0, n);
  }

  function outcomeText(c) {
    if (!c.outcome && !c.reason) return '';
    if (c.outcome && c.reason && c.outcome !== c.reason) return `${c.outcome} (${c.reason})`;
    return c.outcome || c.reason;
  }

  /** A call's media path: which relay carried it, and what this node's reflector relayed. */
  function mediaText(m) {
    if (!m) return '';
    const parts = [`media: ${m.path}`, `p2p ${m.p2p_policy}`];
    if (m.reflector) parts.push(`reflector ${m.reflector.address}: ${m.reflector.packets} packets, ${m.reflector.bytes} bytes`);
    if (m.turn && m.turn.length) parts.push(`TURN ${m.turn.join(', ')}`);
    return parts.join(' · ');
  }

  function renderCalls() {
    const all = [...S.calls.values()];
    const live = all.filter((c) => c.live).sort((a, b) => b.created_at_ms - a.created_at_ms);
    const recent = all.filter((c) => !c.live).sort((a, b) => b.created_at_ms - a.created_at_ms);
    const person = (u) => el('span', { title: `user ${u.id}` }, who(u));
    const inFeed = new Map();
    for (const e of S.feed) if (e.call_id) inFeed.set(e.call_id, (inFeed.get(e.call_id) || 0) + 1);
    const rows = [...live, ...recent].map((c) => el('tr', {
      'data-testid': 'call-row', 'data-call-id': c.id, 'data-state': c.state, 'data-live': c.live ? 'true' : 'false',
      'data-outcome': c.outcome || '', 'data-reason': c.reason || '',
      class: `${c.live ? 'live' : 'ended'}${S.selected && S.selected.id === c.id ? ' selected' : ''}`,
      onclick: () => select(c.id, true),
    },
    el('td', { class: 'mono', title: c.id }, shortId(c.id), c.video ? el('span', { class: 'badge' }, 'video') : null),
    el('td', {}, person(c.admin), ' → ', person(c.participant)),
    el('td', {}, el('span', { class: `state st-${c.state}` }, c.state)),
    el('td', { class: `outcome oc-${c.outcome || 'none'}`, title: outcomeText(c) }, c.outcome || c.reason || '',
      c.outcome && c.reason ? el('span', { class: 'small' }, ` ${c.reason}`) : null),
    el('td', { class: 'mono small', title: clock(startOf(c)) }, clock(startOf(c)).slice(0, 8)),
    c.live ? el('td', { class: 'num', 'data-live-since': startOf(c) }, span(now() - startOf(c)))
      : el('td', { class: 'num', title: c.duration !== null && c.duration !== undefined ? `reported duration ${c.duration} s` : '' },
        span(Math.max(0, (c.ended_at_ms || startOf(c)) - startOf(c)))),
    el('td', { class: 'num' }, eventCount(c, inFeed))));
    $('calls-body').replaceChildren(...rows);
    $('calls-empty').hidden = rows.length > 0;
  }

  function kindMark(ev) {
    return { rpc: '→', push: '←', note: '•' }[ev.kind] || '?';
  }

  function feedRow(ev) {
    const err = ev.error ? `${ev.error.message}` : '';
    return el('tr', {
      'data-testid': 'feed-row', 'data-seq': ev.seq, 'data-kind': ev.kind, 'data-call-id': ev.call_id || '',
      'data-name': ev.name, 'data-user-id': ev.user ? ev.user.id : '', 'data-conn-id': ev.conn_id ?? '',
      'data-error': err, class: `k-${ev.kind}${err ? ' has-error' : ''}${S.activeSeq === ev.seq ? ' active-ev' : ''}`,
      title: [ev.device, ev.auth_key && `key ${ev.auth_key}`, ev.call_id && `call ${ev.call_id}`].filter(Boolean).join(' · '),
      onclick: () => {
        if (ev.call_id) select(ev.call_id, true);
        showEvent(ev.seq);
      },
    },
    el('td', { class: 'mono small t' }, clock(ev.at_ms)),
    el('td', { class: 'who' }, ev.kind === 'push' ? `${kindMark(ev)} ${who(ev.user)}` : ev.kind === 'rpc' ? `${who(ev.user)} ${kindMark(ev)}` : kindMark(ev)),
    el('td', { class: 'what' },
      el('span', { class: 'name' }, ev.name),
      err ? el('span', { class: 'err' }, ` ${err}`) : null,
      ev.detail ? el('span', { class: 'detail' }, ` ${ev.detail}`) : null),
    el('td', { class: 'mono small dim' }, ev.call_id ? shortId(ev.call_id) : ''));
  }

  function renderFeed(reset) {
    const body = $('feed-body');
    const scroller = $('feed-scroll');
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    const fresh = S.feedNew;
    S.feedNew = [];
    if (reset) {
      body.replaceChildren(...S.feed.map(feedRow));
    } else {
      for (const ev of fresh) {
        if (!S.feedSeqs.has(ev.seq)) continue; // already trimmed
        const row = feedRow(ev);
        let before = null;
        for (let r = body.lastElementChild; r && Number(r.dataset.seq) > ev.seq; r = r.previousElementSibling) before = r;
        body.insertBefore(row, before);
      }
      while (body.children.length > FEED_MAX) body.firstElementChild.remove();
    }
    if (atBottom || reset) scroller.scrollTop = scroller.scrollHeight;
  }

  // ---------------------------------------------------------- the selected call's sequence diagram
  /** Lanes: the caller's devices, the server, the callee's devices, then anyone else's. */
  function lanesFor(call, events) {
    const caller = call ? call.admin.id : null;
    const callee = call ? call.participant.id : null;
    const sides = { caller: [], callee: [], other: [] };
    const byKey = new Map();
    const sideOf = (u) => (u && u.id === caller ? 'caller' : u && u.id === callee ? 'callee' : 'other');
    for (const ev of events) {
      if (ev.conn_id === null || ev.conn_id === undefined) continue;
      const key = `c${ev.conn_id}`;
      if (byKey.has(key)) {
        const l = byKey.get(key);
        l.device = l.device || ev.device;
        l.auth_key = l.auth_key || ev.auth_key;
        continue;
      }
      const side = sideOf(ev.user);
      const s = S.sessions.get(ev.conn_id);
      const lane = {
        key, side, conn_id: ev.conn_id, user: ev.user || (s && s.user), device: ev.device || (s && s.client ? s.client.device_model : null),
        auth_key: ev.auth_key || (s && s.auth_key),
      };
      byKey.set(key, lane);
      sides[side].push(lane);
    }
    // a side with no device seen yet still gets its user's lane
    for (const [side, u] of [['caller', call && call.admin], ['callee', call && call.participant]]) {
      if (u && sides[side].length === 0) {
        const lane = { key: `u${u.id}`, side, conn_id: null, user: u, device: null, auth_key: null };
        byKey.set(lane.key, lane);
        sides[side].push(lane);
      }
    }
    const server = { key: 'server', side: 'server' };
    const lanes = [...sides.caller, server, ...sides.callee, ...sides.other];
    lanes.forEach((l, i) => { l.index = i; });
    const laneOf = (ev) => {
      if (ev.conn_id !== null && ev.conn_id !== undefined && byKey.has(`c${ev.conn_id}`)) return byKey.get(`c${ev.conn_id}`);
      const side = sideOf(ev.user);
      return (sides[side] && sides[side][0]) || null;
    };
    return { lanes, server, laneOf };
  }

  const TIME_COL = 92; // px, keep in step with --tc in app.css

  /** An arrow between lane centres a and b in a diagram of n lanes, `top` px from the row's top. */
  function arrow(a, b, n, top, cls) {
    const lo = Math.min(a, b);
    const w = Math.abs(a - b);
    return el('div', {
      class: `arrow ${a < b ? 'to-right' : 'to-left'} ${cls || ''}`,
      style: `top:${top}px;left:calc(var(--tc) + (100% - var(--tc)) * ${lo + 0.5} / ${n});width:calc((100% - var(--tc)) * ${w} / ${n})`,
    });
  }

  /** A label next to an arrow from lane a to lane b: it starts at the arrow's left end and may run on over
   * the empty lanes to the right; on the right-hand half it ends at the arrow's right end instead. */
  function label(a, b, n, top, children, cls) {
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const rightHalf = lo >= (n - 1) / 2;
    const style = rightHalf
      ? `top:${top}px;left:calc(var(--tc) + 6px);right:calc((100% - var(--tc)) * ${n - hi - 0.5} / ${n} + 6px);text-align:right`
      : `top:${top}px;left:calc(var(--tc) + (100% - var(--tc)) * ${lo + 0.5} / ${n} + 6px);right:6px;text-align:left`;
    return el('div', { class: `label ${cls || ''}`, style }, el('span', {}, children));
  }

  function timelineRow(ev, t0, lanes, server, laneOf) {
    const n = lanes.length;
    const lane = laneOf(ev);
    const li = lane ? lane.index : server.index;
    const si = server.index;
    const attrs = {
      'data-testid': 'timeline-row', 'data-seq': ev.seq, 'data-kind': ev.kind, 'data-name': ev.name,
      'data-call-id': ev.call_id || '', 'data-lane': lane ? lane.key : '', 'data-error': ev.error ? ev.error.message : '',
      class: `ev k-${ev.kind}${ev.error ? ' has-error' : ''}${S.activeSeq === ev.seq ? ' active-ev' : ''}`,
      title: `#${ev.seq} · +${span(ev.at_ms - t0)}${ev.device ? ` · ${ev.device}` : ''}${ev.auth_key ? ` · key ${ev.auth_key}` : ''}`,
      onclick: () => showEvent(ev.seq),
    };
    const time = el('div', { class: 'time mono' }, clock(ev.at_ms));
    if (ev.kind === 'rpc') {
      const answer = ev.error
        ? [el('b', { class: 'err' }, ev.error.message), ` ${ev.error.code}`]
        : [ev.detail || 'ok'];
      return el('div', attrs, time,
        label(li, si, n, 1, [el('b', {}, ev.name)]),
        arrow(li, si, n, 17, 'req'),
        label(si, li, n, 20, [...answer, ev.duration_us !== null && ev.duration_us !== undefined ? el('span', { class: 'dur' }, ` ${micros(ev.duration_us)}`) : null], ev.error ? 'error' : ''),
        arrow(si, li, n, 36, `res${ev.error ? ' error' : ''}`));
    }
    if (ev.kind === 'push') {
      return el('div', attrs, time,
        label(si, li, n, 1, [el('b', {}, ev.name), ev.detail ? ` ${ev.detail}` : '']),
        arrow(si, li, n, 17, 'push'));
    }
    if (ev.call_id && ev.call_id !== S.selected.id) {
      attrs['data-related'] = 'true';
      attrs.class += ' related';
    }
    return el('div', attrs, time,
      el('div', { class: 'note' }, el('b', {}, ev.name), ev.detail ? ` ${ev.detail}` : ''));
  }

  function renderDetail() {
    const box = $('diagram');
    const sel = S.selected;
    if (!sel) return;
    const call = S.calls.get(sel.id) || null;
    const events = [...sel.events.values()].sort((a, b) => a.seq - b.seq);
    $('call-title').replaceChildren(`Call ${sel.id}`, call ? el('span', { class: 'hint' }, ` ${who(call.admin)} → ${who(call.participant)}`) : '');
    const meta = $('call-meta');
    meta.dataset.callId = sel.id;
    if (call) {
      meta.replaceChildren(...[
        el('span', { class: `state st-${call.state}` }, call.state),
        call.live ? el('span', { class: 'badge live-badge' }, 'live') : null,
        outcomeText(call) ? el('span', { class: `outcome oc-${call.outcome || 'none'}` }, outcomeText(call)) : null,
        el('span', {}, `started ${clock(startOf(call))}`),
        call.ended_at_ms ? el('span', {}, `ended ${clock(call.ended_at_ms)} (${span(Math.max(0, call.ended_at_ms - startOf(call)))})`) : null,
        call.duration !== null && call.duration !== undefined ? el('span', {}, `reported duration ${call.duration} s`) : null,
        call.video ? el('span', { class: 'badge' }, 'video') : null,
        call.media ? el('span', { 'data-testid': 'call-media', 'data-path': call.media.path }, mediaText(call.media)) : null,
        el('span', {}, `${eventCount(call)} events`),
        el('a', { href: api(`api/calls/${encodeURIComponent(sel.id)}/text`), target: '_blank', rel: 'noopener' }, 'text timeline'),
      ].filter(Boolean));
    } else {
      meta.replaceChildren(sel.missing ? 'this call is no longer kept' : 'loading…');
    }
    const { lanes, server, laneOf } = lanesFor(call, events);
    const n = lanes.length;
    const t0 = events.length ? events[0].at_ms : call ? call.created_at_ms : 0;
    const head = el('div', { class: 'lanes-head', style: `grid-template-columns:var(--tc) repeat(${n}, minmax(0, 1fr))` }, el('div', { class: 'time small dim' }, 'time'),
      ...lanes.map((l) => el('div', {
        class: `lane-head side-${l.side}`, 'data-testid': 'lane', 'data-lane': l.key, 'data-side': l.side,
        'data-conn-id': l.conn_id ?? '', title: l.auth_key ? `auth key ${l.auth_key}` : '',
      },
      l.side === 'server'
        ? [el('div', { class: 'strong' }, 'server'), el('div', { class: 'small' }, S.node ? S.node.mtproto_address : '')]
        : [el('div', { class: 'strong', title: `${who(l.user)} (${l.side}${l.user ? `, user ${l.user.id}` : ''})` },
          who(l.user), n <= 3 && l.side !== 'other' ? el('span', { class: 'role' }, ` ${l.side}`) : null),
        el('div', { class: 'small', title: l.device || '' }, l.conn_id !== null ? `conn ${l.conn_id} · ${l.device || 'device ?'}` : 'no device seen')])));
    const lines = lanes.map((l) => el('div', {
      class: `lifeline side-${l.side}`,
      style: `left:calc(var(--tc) + (100% - var(--tc)) * ${l.index + 0.5} / ${n})`,
    }));
    const rows = events.map((ev) => timelineRow(ev, t0, lanes, server, laneOf));
    const body = el('div', { class: 'rows', style: `--n:${n}` }, lines, rows);
    if (!rows.length) body.append(el('p', { class: 'empty' }, sel.loaded ? 'no events recorded for this call' : 'loading…'));
    const scroller = $('diagram-scroll');
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    const sameCall = box.dataset.callId === sel.id;
    box.dataset.callId = sel.id;
    box.style.setProperty('--tc', `${TIME_COL}px`);
    box.replaceChildren(head, body);
    if (!sameCall || atBottom) scroller.scrollTop = sameCall ? scroller.scrollHeight : 0;
  }

  // ------------------------------------------------------------------ start
  setInterval(tick, 1000);
  connect();
})();
