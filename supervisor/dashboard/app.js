// The troupe dashboard's script: plain JavaScript, no framework, nothing
// fetched but this origin's /api/ (docs/PROTOCOL.md §6.7). Every text from
// the system is set as textContent, never parsed as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  // The timeline's span: the shortest of these that holds the events it shows.
  const SPANS = [15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 1800e3, 3600e3];
  const MAX_EVENTS = 400;            // events kept on the page
  const REFRESH_MS = 4000;           // tables re-read this often (other systems' changes have no event here)

  const state = {
    token: '',
    status: null,
    systems: null,
    packages: null,
    actors: [],
    actorsTotal: 0,
    actorsNext: null,
    previous: new Map(),  // address -> "state|restarts|system", to flash what changed
    events: [],           // newest last
    lastSeq: 0,
    runSystem: '',        // the daemon run the events belong to
  };

  // ------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
  function fmtAgo(ms) {
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    return Math.round(ms / 60000) + ' min';
  }
  function fmtUptime(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
  }
  function capText(name, value) {
    return value === true ? name : `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
  }
  let toastTimer = null;
  function toast(text, error) {
    let t = document.querySelector('.toast');
    if (!t) { t = el('div', { class: 'toast', role: 'status' }); document.body.append(t); }
    t.className = 'toast' + (error ? ' error' : '');
    t.textContent = text;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.remove(), error ? 7000 : 3500);
  }

  // ------------------------------------------------------------ the API

  class AuthError extends Error {}

  async function api(path, body) {
    const init = { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) throw new AuthError((await res.json().catch(() => ({}))).error || 'token refused');
    const json = await res.json().catch(() => ({ ok: false, error: `HTTP ${res.status}` }));
    return json;
  }

  // ------------------------------------------------------------ token

  function takeToken() {
    const m = /(?:^#|&)token=([0-9a-fA-F]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem('troupe-token', m[1]);
      // Out of the address bar (and of bookmarks, screenshots).
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('troupe-token') || '';
  }

  function showLogin(error) {
    $('main').classList.add('hidden');
    $('login').classList.remove('hidden');
    $('login-error').textContent = error || '';
    setLive('off', 'no token');
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('login-token').value.trim();
    if (!t) return;
    sessionStorage.setItem('troupe-token', t);
    start();
  });

  // ------------------------------------------------------------ rendering

  function setLive(s, text) {
    $('live').dataset.state = s;
    $('live-text').textContent = text || (s === 'on' ? 'live' : s === 'retry' ? 'reconnecting…' : 'offline');
  }

  function renderStatus() {
    const st = state.status;
    if (!st) return;
    const role = st.is_leader ? (st.coordination === 'etcd' ? 'leader (etcd)' : 'leader') : st.joined ? 'member' : 'member, not joined';
    const who = $('who');
    who.replaceChildren('system ', el('b', { text: st.system }), ` on port ${st.port} · ${role} · up ${fmtUptime(st.uptime_ms)}`);
    const running = state.actors.filter((a) => a.state === 'running').length;
    const restarts = state.actors.reduce((n, a) => n + (a.restarts || 0), 0);
    const up = state.systems ? state.systems.systems.filter((s) => s.state === 'up').length : 0;
    const stat = (n, l, id) => el('div', { class: 'stat', 'data-stat': id }, el('div', { class: 'n', text: String(n) }), el('div', { class: 'l', text: l }));
    $('stats').replaceChildren(
      stat(up, 'systems up', 'systems'),
      stat(state.actorsTotal, 'actors', 'actors'),
      stat(running, 'running', 'running'),
      stat(restarts, 'restarts', 'restarts'),
      stat(st.packages, 'packages here', 'packages'),
      stat(st.workers, 'workers here', 'workers'),
    );
    $('foot').textContent = `Served by system ${st.system} (pid ${st.pid}). The token stays in this tab (sessionStorage); ` +
      'it changes at every start of the system. Events are those this system records.';
  }

  function renderSystems() {
    const s = state.systems;
    if (!s) return;
    $('systems-mode').textContent = s.mode === 'etcd' ? `on etcd, convention ${s.convention}` : 'built-in leader';
    const rows = s.systems.map((m) => {
      const caps = el('div', { class: 'caps' });
      for (const [name, value] of Object.entries(m.capabilities || {})) {
        caps.append(el('span', { class: 'cap', 'data-cap': name, 'data-system': m.port },
          capText(name, value),
          el('button', { type: 'button', title: `remove ${name} from system ${m.port}`, 'aria-label': `remove ${name}`,
            onclick: () => chgcap(m.port, 'remove', name) }, '×')));
      }
      const input = el('input', { placeholder: 'NAME[=VALUE]', 'aria-label': `capability for system ${m.port}`, spellcheck: 'false' });
      const add = el('form', { class: 'cap-add', 'data-system': m.port, onsubmit: (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) return;
        const eq = v.indexOf('=');
        if (eq > 0) chgcap(m.port, 'set', v.slice(0, eq), v.slice(eq + 1));
        else chgcap(m.port, 'add', v);
        input.value = '';
      } }, input, el('button', { type: 'submit', class: 'secondary', title: 'add a capability' }, '+'));
      caps.append(add);
      return el('tr', { 'data-port': m.port },
        el('td', { class: 'mono', text: `${m.host}:${m.port}` }),
        el('td', { class: 'mono', text: m.system }),
        el('td', {}, m.leader ? el('span', { class: 'badge leader', text: 'leader' }) : 'member'),
        el('td', {}, el('span', { class: 'badge ' + m.state, text: m.state })),
        el('td', { text: String(m.actors) }),
        el('td', { text: m.state === 'up' ? fmtAgo(m.last_heard_ms || 0) : '—' }),
        el('td', {}, caps));
    });
    $('systems').tBodies[0].replaceChildren(...rows);
  }

  function renderPackages() {
    const p = state.packages;
    if (!p) return;
    const groups = new Map();
    for (const v of p.packages) {
      if (!groups.has(v.group)) groups.set(v.group, []);
      groups.get(v.group).push(v);
    }
    if (groups.size === 0) {
      $('packages').replaceChildren(el('div', { class: 'empty', text: 'No package is loaded on this system.' }));
      return;
    }
    const out = [];
    for (const [group, versions] of groups) {
      const vs = versions.map((v) => el('div', { class: 'version' + (v.active ? ' active' : ''), 'data-version': v.version },
        el('div', { class: 'v' }, v.version, ' ', v.active ? el('span', { class: 'badge active', text: 'active' }) : null,
          v.phase !== 'loaded' ? el('span', { class: 'badge ' + v.phase, text: v.phase }) : null),
        el('div', { class: 'meta mono', text: v.id.slice(0, 12) }),
        el('div', { class: 'meta', text: `${v.actors} actor${v.actors === 1 ? '' : 's'} · ${(v.types || []).join(', ')}` }),
        el('div', { class: 'meta', text: v.signer ? `signed by ${v.signer}` : 'unsigned' }),
        v.error ? el('div', { class: 'error', text: v.error }) : null));
      out.push(el('div', { class: 'pkg', 'data-group': group }, el('h3', { text: group }), el('div', { class: 'versions' }, ...vs)));
    }
    $('packages').replaceChildren(...out);
  }

  function renderActors() {
    const filter = $('actors-filter').value.trim().toLowerCase();
    const rows = [];
    const names = [];
    for (const a of state.actors) {
      if (a.name) names.push(a.name);
      names.push(a.address);
      const hay = [a.address, a.name, a.type, a.package, a.version, a.system, a.state, a.last_reason].join(' ').toLowerCase();
      if (filter && !hay.includes(filter)) continue;
      const key = `${a.state}|${a.restarts}|${a.system}`;
      const before = state.previous.get(a.address);
      const tr = el('tr', { 'data-address': a.address, 'data-name': a.name || '', 'data-state': a.state,
        class: before !== undefined && before !== key ? 'flash' : null },
        el('td', { class: 'mono', text: a.address }),
        el('td', { text: a.name || '—' }),
        el('td', { text: a.type }),
        el('td', { text: a.package ? `${a.package} ${a.version}` : '—' }),
        el('td', { class: 'mono system', text: a.system || '—' }),
        el('td', { class: 'mono worker', text: a.worker_pid ? String(a.worker_pid) : '—' }),
        el('td', {}, el('span', { class: 'badge ' + a.state, text: a.state })),
        el('td', { class: 'restarts' + (a.restarts ? ' some' : ''), text: String(a.restarts) }),
        el('td', { class: 'reason', title: a.last_reason || '', text: a.last_reason || '' }));
      rows.push(tr);
    }
    for (const a of state.actors) state.previous.set(a.address, `${a.state}|${a.restarts}|${a.system}`);
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 9, class: 'empty', text: state.actors.length ? 'No actor matches the filter.' : 'No actor.' })));
    $('actors').tBodies[0].replaceChildren(...rows);
    $('actors-count').textContent = `${state.actors.length} of ${state.actorsTotal} shown`;
    $('actors-more').disabled = !state.actorsNext;
    $('targets').replaceChildren(...[...new Set(names)].map((n) => el('option', { value: n })));
  }

  // ------------------------------------------------------------ events and the timeline

  const KIND = {
    actor_started: ['started', ''],
    actor_restarted: ['restarted', 'restarted'],
    actor_failed: ['failed', 'failed'],
    actor_stopped: ['stopped', ''],
    actor_moved: ['moved', 'moved'],
    actor_pending: ['pending', 'restarted'],
    worker_exited: ['worker exited', 'exited'],
    package_loaded: ['package loaded', ''],
    package_unloaded: ['package unloaded', ''],
    package_refused: ['package refused', 'failed'],
    system_joined: ['system joined', 'system'],
    system_lost: ['system lost', 'system'],
    system_fenced: ['fenced', 'system'],
    leader_changed: ['leader changed', 'system'],
  };

  function describe(e) {
    const parts = [];
    if (e.address) parts.push(e.address + (e.name ? ` ${e.name}` : ''));
    if (e.type) parts.push(e.type);
    if (e.kind === 'worker_exited') parts.push(`w${e.worker} pid ${e.pid}` + (e.expected ? ' (told to stop)' : ''));
    if (e.package && e.kind !== 'actor_started') parts.push(`${e.package} ${e.version || ''}`.trim());
    if (e.port && (e.kind.startsWith('system') || e.kind === 'leader_changed' || e.kind === 'actor_moved'))
      parts.push((e.kind === 'actor_moved' ? 'to system ' : 'system ') + e.port);
    let text = parts.join(' · ');
    if (e.reason) text += (text ? ': ' : '') + e.reason;
    return text;
  }

  function eventItem(e, fresh) {
    const [label, cls] = KIND[e.kind] || [e.kind, ''];
    const lost = e.kind === 'system_lost' || e.kind === 'system_fenced' ? ' lost' : '';
    return el('li', { 'data-kind': e.kind, 'data-seq': e.seq, class: fresh ? 'new' : null },
      el('span', { class: 't', text: fmtTime(e.time_ms) }),
      el('span', { class: `kind ${cls}${lost}`, text: label }),
      el('span', { class: 'what', title: describe(e), text: describe(e) }));
  }

  function onEvent(e, fresh) {
    state.events.push(e);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
    const list = $('events');
    list.prepend(eventItem(e, fresh));
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
    if (e.kind !== 'actor_started' || fresh) scheduleRefresh();
  }

  function fmtSpan(ms) {
    return ms < 60000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60000)} min`;
  }

  function renderTimeline() {
    const box = $('timeline');
    const now = Date.now();
    const shown = state.events.filter((e) => (KIND[e.kind] || [])[1] && !(e.kind === 'worker_exited' && e.expected));
    const oldest = shown.length ? Math.min(...shown.map((e) => e.time_ms)) : now;
    const span = SPANS.find((s) => s >= (now - oldest) * 1.1) || SPANS[SPANS.length - 1];
    const from = now - span;
    $('timeline-span').textContent = `the last ${fmtSpan(span)}, as this system saw them`;
    for (const m of box.querySelectorAll('.mark')) m.remove();
    const lanes = { restarted: 6, failed: 6, exited: 22, moved: 14, system: 30 };
    for (const e of shown) {
      if (e.time_ms < from) continue;
      const [, cls] = KIND[e.kind];
      const m = el('div', { class: 'mark ' + cls, 'data-kind': e.kind, title: `${fmtTime(e.time_ms)} ${e.kind}: ${describe(e)}` });
      m.style.left = `${1.5 + ((e.time_ms - from) / span) * 97}%`;  // whole marks at both ends
      m.style.top = `${lanes[cls]}px`;
      box.append(m);
    }
    const axis = $('timeline-axis');
    const ticks = [];
    for (let i = 0; i <= 5; i++) {
      const t = el('span', { class: 'tick', text: i === 5 ? 'now' : `−${fmtSpan((span * (5 - i)) / 5)}` });
      t.style.left = `${1.5 + i * 19.4}%`;
      ticks.push(t);
    }
    axis.replaceChildren(...ticks);
  }

  // Server-sent events over fetch (so that the token goes in a header, as
  // EventSource cannot send one); after a break it resumes with Last-Event-ID.
  async function follow() {
    for (;;) {
      try {
        const headers = { Authorization: 'Bearer ' + state.token, Accept: 'text/event-stream' };
        if (state.lastSeq) headers['Last-Event-ID'] = String(state.lastSeq);
        const res = await fetch('/api/events' + (state.lastSeq ? '' : '?tail=300'), { headers, cache: 'no-store' });
        if (res.status === 401) return showLogin('The system refused the token (it changes at every start).');
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setLive('on');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            handleBlock(block);
          }
        }
      } catch (err) {
        // The system stopped, or the connection broke: try again.
      }
      setLive('retry');
      await sleep(2000);
    }
  }

  function handleBlock(block) {
    let kind = 'message', data = '', id = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'event') kind = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
      else if (field === 'id') id = value;
    }
    if (!data) return;
    let body;
    try { body = JSON.parse(data); } catch { return; }
    if (kind === 'hello') {
      // Another run of the daemon: its numbers start again.
      if (state.runSystem && (state.runSystem !== body.system || body.last_seq < state.lastSeq)) {
        state.events = [];
        $('events').replaceChildren();
      }
      state.runSystem = body.system;
      if (body.since === 0 && state.lastSeq > body.last_seq) state.lastSeq = 0;
      return;
    }
    if (kind === 'missed') {
      onEvent({ seq: state.lastSeq, time_ms: Date.now(), kind: 'missed', reason: `${body.missed} events were missed` }, true);
      return;
    }
    if (kind === 'end') return;
    if (id) state.lastSeq = Number(id);
    onEvent(body, true);
    renderTimeline();
  }

  // ------------------------------------------------------------ actions

  async function chgcap(port, op, name, value) {
    try {
      const body = { system: port, op, name };
      if (value !== undefined) body.value = value;
      const r = await api('/api/chgcap', body);
      if (r.ok) toast(`system ${port}: capabilities now ${Object.entries(r.capabilities).map(([k, v]) => capText(k, v)).join(', ') || 'none'}`);
      else toast(`chgcap on ${port}: ${r.error}`, true);
    } catch (err) {
      if (err instanceof AuthError) return showLogin(err.message);
      toast(`chgcap on ${port}: ${err.message}`, true);
    }
    await refresh();
  }

  async function send(ask) {
    const target = $('send-target').value.trim();
    let payload;
    try {
      payload = JSON.parse($('send-payload').value);
    } catch (err) {
      return showReply('error', 'The payload is not JSON: ' + err.message, '');
    }
    const body = { target, payload, type: $('send-type').value.trim() || 'json' };
    const timeout = Number($('send-timeout').value);
    if (timeout) body.timeout_ms = timeout;
    showReply('none', `${ask ? 'asking' : 'telling'} ${target}…`, '');
    const t0 = performance.now();
    try {
      const r = await api(ask ? '/api/ask' : '/api/tell', body);
      const ms = Math.round(performance.now() - t0);
      if (!r.ok) return showReply('error', `${r.code || 'error'} after ${ms} ms`, r.error);
      if (ask) showReply('ok', `reply from ${r.from} (type ${r.type}) in ${ms} ms`, JSON.stringify(r.payload, null, 2));
      else showReply('ok', `told ${r.address}${r.held ? ' (held: it is moving or pending)' : ''} in ${ms} ms`, '');
    } catch (err) {
      if (err instanceof AuthError) return showLogin(err.message);
      showReply('error', 'no answer', err.message);
    }
  }

  function showReply(s, head, body) {
    $('reply').dataset.state = s;
    $('reply-head').textContent = head;
    $('reply-body').textContent = body;
  }

  $('send-form').addEventListener('submit', (ev) => { ev.preventDefault(); send(true); });
  $('send-tell').addEventListener('click', () => send(false));
  $('actors-filter').addEventListener('input', renderActors);
  $('actors-more').addEventListener('click', () => loadActors(true));
  $('actors').addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-address]');
    if (tr) $('send-target').value = tr.dataset.name || tr.dataset.address;
  });

  // ------------------------------------------------------------ loading

  async function loadActors(more) {
    const after = more && state.actorsNext ? `&after=${encodeURIComponent(state.actorsNext)}` : '';
    const r = await api('/api/actors?limit=200' + after);
    if (!r.ok) return;
    state.actors = more ? state.actors.concat(r.actors) : r.actors;
    state.actorsTotal = r.total;
    state.actorsNext = r.next;
    renderActors();
  }

  let refreshing = null;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const [status, systems, packages] = await Promise.all([api('/api/status'), api('/api/systems'), api('/api/packages')]);
        if (status.ok) state.status = status;
        if (systems.ok) state.systems = systems;
        if (packages.ok) state.packages = packages;
        await loadActors(false);
        renderSystems();
        renderPackages();
        renderStatus();
      } catch (err) {
        if (err instanceof AuthError) showLogin(err.message);
      }
    })();
    await refreshing;
    refreshing = null;
    if (again) { again = false; return refresh(); }
  }
  let refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  let started = false;
  async function start() {
    state.token = takeToken();
    if (!state.token) return showLogin('');
    try {
      const st = await api('/api/status');
      if (!st.ok) throw new Error(st.error);
    } catch (err) {
      return showLogin(err instanceof AuthError ? err.message : 'The system does not answer: ' + err.message);
    }
    $('login').classList.add('hidden');
    $('main').classList.remove('hidden');
    await refresh();
    renderTimeline();
    if (started) return;
    started = true;
    follow();
    setInterval(refresh, REFRESH_MS);
    setInterval(renderTimeline, 5000);
  }

  start();
})();
