// Atelier Studio: the client side of every page. Plain JS, no dependencies.
// The server renders a shell whose <main id="main"> carries data-page and the ids from the URL;
// this script fetches the data from the MLflow JSON API and re-fetches it on live change events.
(function () {
  'use strict';
  const C = window.AtelierCharts;
  const API = '/ajax-api/2.0/mlflow/';
  const ARTIFACTS = '/api/2.0/mlflow-artifacts/artifacts';

  // ---------------------------------------------------------------- helpers

  /** Creates an element. attrs: class, text, data-*, on<event>, and any other attribute/property. */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'checked' || k === 'value' || k === 'disabled' || k === 'selected') e[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    append(e, children);
    return e;
  }
  function append(e, ...children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function replace(e, ...children) { clear(e); return append(e, children); }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  /**
   * The project (MLflow workspace) the Studio works in: every API call names it in the
   * X-MLFLOW-WORKSPACE header, as the mlflow client does after mlflow.set_workspace. Chosen in the
   * sidebar's switcher, kept per browser; `null` until the list of the user's projects is known.
   */
  const project = { current: null };
  /** The project the Studio works in when it is not the default one (which requests need not name). */
  function namedProject() { return project.current && project.current !== 'default' ? project.current : null; }
  /** Headers naming the project, for calls made without `request` (uploads with progress, invocations). */
  function projectHeaders() {
    const p = namedProject();
    return p ? { 'X-MLFLOW-WORKSPACE': p } : {};
  }
  /** A link or image address in the project: links cannot send headers, so a GET names it as ?workspace=. */
  function inProject(url) {
    const p = namedProject();
    return p ? url + (url.includes('?') ? '&' : '?') + 'workspace=' + encodeURIComponent(p) : url;
  }
  /** Where an upload folder goes in the artifact store: another project's are under projects/<name>/. */
  function projectFolder(rel) {
    const p = namedProject();
    return p ? 'projects/' + p + '/' + rel : rel;
  }
  async function request(method, url, body) {
    const init = { method, headers: { Accept: 'application/json', ...projectHeaders() }, credentials: 'same-origin' };
    if (body !== undefined) { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
    let res;
    try { res = await fetch(url, init); } catch (e) { throw new ApiError(0, 'NETWORK', 'Cannot reach the server: ' + e.message); }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : {}; } catch (_) { json = null; }
    if (!res.ok) {
      const msg = json && json.message ? json.message : (text && text.length < 300 ? text : res.statusText) || 'HTTP ' + res.status;
      throw new ApiError(res.status, (json && json.error_code) || 'HTTP_' + res.status, msg);
    }
    if (json === null) throw new ApiError(res.status, 'BAD_RESPONSE', 'The server answered with something that is not JSON');
    return json;
  }
  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
      else if (v !== undefined && v !== null) u.append(k, v);
    }
    return u.toString();
  }
  const api = {
    get: (path, params) => request('GET', API + path + (params ? '?' + qs(params) : '')),
    post: (path, body) => request('POST', API + path, body),
  };

  /** MLflow metric values are numbers or the strings "NaN", "Infinity", "-Infinity". */
  function num(v) {
    if (typeof v === 'number') return v;
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    const n = Number(v);
    return Number.isNaN(n) ? NaN : n;
  }
  const int = (v) => (v === undefined || v === null || v === '' ? null : Number(v));

  function pad(n) { return String(n).padStart(2, '0'); }
  function fmtDate(ms) {
    ms = int(ms);
    if (!ms) return '—';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtAgo(ms) {
    ms = int(ms);
    if (!ms) return '—';
    const s = (Date.now() - ms) / 1000;
    if (s < 45) return 'just now';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    if (s < 86400 * 7) return Math.round(s / 86400) + ' d ago';
    return fmtDate(ms).slice(0, 10);
  }
  function fmtDur(start, end) {
    start = int(start); end = int(end);
    if (!start) return '—';
    const ms = (end || Date.now()) - start;
    if (ms < 0) return '—';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.round(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.round((s % 3600) / 60) + 'm';
  }
  function fmtBytes(n) {
    n = int(n);
    if (n === null) return '';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
    if (n < 1024 ** 3) return (n / 1024 / 1024).toFixed(1) + ' MB';
    return (n / 1024 ** 3).toFixed(2) + ' GB';
  }
  const fmtNum = (v) => C.fmtNum(v, 5);

  const store = {
    get(k, dflt) { try { const v = localStorage.getItem('atelier.' + k); return v === null ? dflt : JSON.parse(v); } catch (_) { return dflt; } },
    set(k, v) { try { localStorage.setItem('atelier.' + k, JSON.stringify(v)); } catch (_) { /* private mode */ } },
  };

  /** A red count on a stage's navigation link (`nav-<stage>-alert`), gone at 0; `title` says what it counts. */
  function markNav(stage, count, title) {
    const link = document.querySelector('[data-testid=nav-' + stage + ']');
    if (!link) return;
    let dot = link.querySelector('.mon-nav-alert');
    if (!count) { if (dot) dot.remove(); return; }
    if (!dot) { dot = h('span', { class: 'mon-nav-alert', 'data-testid': 'nav-' + stage + '-alert' }); link.appendChild(dot); }
    dot.textContent = String(count);
    dot.title = title;
  }
  function errorBox(err, testid) {
    return h('div', { class: 'error-box', role: 'alert', 'data-testid': testid || 'error' }, err && err.message ? err.message : String(err));
  }
  /** A token (id, name, number) that never wraps: too long for its box, it ends in an ellipsis; its title has it whole. */
  function tok(text, attrs) {
    const t = text === undefined || text === null ? '' : String(text);
    return h('span', Object.assign({ class: 'tok', title: t }, attrs || {}), t);
  }
  /**
   * The whole page, when what it shows does not exist: breadcrumbs, a title, the one message and a
   * link to the list, in place of every panel. opts: { crumbs: [[label, href]], title, error
   * (its message is shown), testid (of the message), back: [href, label] }.
   */
  function notFound(opts) {
    const crumbs = (opts.crumbs || []).map(([label, href]) => [h('a', { href }, label), ' / ']);
    document.title = opts.title + ' · Atelier Studio';
    replace(main,
      h('div', { class: 'crumbs' }, crumbs),
      h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'not-found-title' }, opts.title)),
      h('section', { class: 'card not-found', 'data-testid': 'not-found' },
        errorBox(opts.error, opts.testid),
        h('a', { class: 'btn', href: opts.back[0], 'data-testid': 'not-found-back' }, '← ' + opts.back[1])));
  }
  /** Whether an API error means the thing asked for does not exist. */
  const isNotFound = (e) => !!e && (e.status === 404 || e.code === 'RESOURCE_DOES_NOT_EXIST');
  function statusBadge(status) {
    return h('span', { class: 'badge ' + (status || ''), 'data-testid': 'run-status' }, status || 'UNKNOWN');
  }
  function runName(run) {
    const info = run.info || {};
    if (info.run_name) return info.run_name;
    const t = tagsOf(run)['mlflow.runName'];
    return t || (info.run_id || '').slice(0, 8);
  }
  function kvMap(list) { const m = {}; for (const kv of list || []) m[kv.key] = kv.value; return m; }
  function tagsOf(run) { return kvMap((run.data || {}).tags); }
  function paramsOf(run) { return kvMap((run.data || {}).params); }
  function metricsOf(run) { const m = {}; for (const x of (run.data || {}).metrics || []) m[x.key] = x; return m; }
  function runId(run) { return (run.info || {}).run_id || (run.info || {}).run_uuid; }

  /** `mlflow-artifacts:/1/<run>/artifacts` → `1/<run>/artifacts`; null for other schemes. */
  function artifactRoot(uri) {
    if (!uri) return null;
    let m = /^mlflow-artifacts:\/\/[^/]*\/(.*)$/.exec(uri) || /^mlflow-artifacts:\/?(.*)$/.exec(uri);
    return m ? m[1].replace(/^\/+|\/+$/g, '') : null;
  }
  const encodePath = (p) => p.split('/').filter(Boolean).map(encodeURIComponent).join('/');

  // ---------------------------------------------------------------- live updates

  /**
   * Calls `refresh` on every `change` event of /studio/api/events, at most once per 500 ms and never
   * concurrently; polls every 3 s while the event stream is unavailable.
   */
  function live(refresh) {
    const ind = document.getElementById('live-indicator');
    let last = 0, timer = null, running = false, pending = false, pollTimer = null, opened = false;
    const trigger = () => {
      if (timer) return;
      timer = setTimeout(run, Math.max(0, last + 500 - Date.now()));
    };
    async function run() {
      timer = null;
      if (running) { pending = true; return; }
      running = true;
      last = Date.now();
      try { await refresh(); } catch (e) { console.warn('refresh failed', e); }
      running = false;
      if (pending) { pending = false; trigger(); }
    }
    const show = (cls, text) => { if (ind) { ind.className = 'live ' + cls; ind.textContent = text; ind.dataset.mode = cls; } };
    const startPoll = () => { if (!pollTimer) { pollTimer = setInterval(trigger, 3000); show('poll', 'Polling'); } };
    const stopPoll = () => { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } };
    if (typeof EventSource === 'function') {
      const es = new EventSource('/studio/api/events');
      es.addEventListener('change', trigger);
      es.onopen = () => {
        stopPoll();
        show('sse', 'Live');
        if (opened) trigger(); // reconnected: we may have missed changes
        opened = true;
      };
      es.onerror = () => { if (es.readyState !== EventSource.OPEN) startPoll(); };
      window.addEventListener('pagehide', () => es.close());
    } else {
      startPoll();
    }
    return trigger;
  }

  // ---------------------------------------------------------------- metric histories

  const historyCache = new Map(); // `${runId}\0${key}` -> { sig, points }

  async function fetchHistory(rid, key) {
    let points = [];
    let token;
    for (let page = 0; page < 100; page++) {
      const res = await api.get('metrics/get-history', { run_id: rid, metric_key: key, max_results: 25000, page_token: token });
      for (const m of res.metrics || []) points.push({ step: int(m.step) || 0, ts: int(m.timestamp) || 0, y: num(m.value) });
      token = res.next_page_token;
      if (!token) break;
    }
    points.sort((a, b) => a.step - b.step || a.ts - b.ts);
    return points;
  }
  /** The history of (run, key), re-fetched only when the run's latest value for key changed. */
  // At most 6 history requests in flight (a run may have hundreds of metrics).
  let inFlight = 0;
  const waiting = [];
  async function limited(fn) {
    if (inFlight >= 6) await new Promise((r) => waiting.push(r));
    inFlight++;
    try { return await fn(); } finally { inFlight--; const next = waiting.shift(); if (next) next(); }
  }
  async function metricHistory(rid, latest) {
    const sig = latest ? `${latest.step}|${latest.timestamp}|${latest.value}` : '';
    const k = rid + '\0' + latest.key;
    const hit = historyCache.get(k);
    if (hit && hit.sig === sig) return { points: hit.points, changed: false };
    const points = await limited(() => fetchHistory(rid, latest.key));
    historyCache.set(k, { sig, points });
    return { points, changed: true };
  }
  function xOf(p, xKind, start) {
    if (xKind === 'time') return p.ts;
    if (xKind === 'relative') return p.ts - start;
    return p.step;
  }

  /** Shared chart settings (x axis, log scale, smoothing), remembered across pages. */
  function chartControls(onChange) {
    const st = Object.assign({ xKind: 'step', logY: false, smoothing: 0 }, store.get('chart', {}));
    const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'X axis' });
    const kinds = [['step', 'Step'], ['time', 'Wall time'], ['relative', 'Relative']];
    const buttons = kinds.map(([k, label]) => h('button', {
      type: 'button', 'data-testid': 'xaxis-' + k, class: st.xKind === k ? 'on' : '',
      onclick: () => { st.xKind = k; buttons.forEach((b, i) => b.classList.toggle('on', kinds[i][0] === k)); save(); },
    }, label));
    append(seg, buttons);
    const log = h('input', { type: 'checkbox', 'data-testid': 'log-scale', checked: st.logY, onchange: (e) => { st.logY = e.target.checked; save(); } });
    const sval = h('span', { class: 'mono', 'data-testid': 'smoothing-value' }, st.smoothing.toFixed(2));
    const slider = h('input', {
      type: 'range', min: '0', max: '0.99', step: '0.01', value: String(st.smoothing), 'data-testid': 'smoothing',
      oninput: (e) => { st.smoothing = Number(e.target.value); sval.textContent = st.smoothing.toFixed(2); save(); },
    });
    function save() { store.set('chart', st); onChange(st); }
    const node = h('div', { class: 'controls', 'data-testid': 'chart-controls' },
      h('span', { class: 'muted' }, 'X axis'), seg,
      h('label', null, log, 'Log scale'),
      h('label', null, 'Smoothing', slider, sval));
    return { node, state: st };
  }

  // ---------------------------------------------------------------- pages

  const main = document.getElementById('main');
  const pages = {};

  // ----- experiments list
  pages.experiments = function () {
    const state = { list: null, error: null, q: '' };
    const search = h('input', { type: 'search', placeholder: 'Filter by name', 'data-testid': 'experiments-search', oninput: (e) => { state.q = e.target.value.toLowerCase(); render(); } });
    const body = h('div', { class: 'card flush' });
    replace(main,
      h('header', { class: 'page-head' }, h('h1', null, 'Experiments'), h('span', { class: 'sub', 'data-testid': 'experiment-count' })),
      h('div', { class: 'toolbar' }, search),
      body);
    function render() {
      main.querySelector('[data-testid=experiment-count]').textContent = state.list ? state.list.length + ' experiments' : '';
      if (state.error) return replace(body, errorBox(state.error));
      if (!state.list) return replace(body, h('div', { class: 'empty' }, 'Loading…'));
      const rows = state.list.filter((e) => !state.q || (e.name || '').toLowerCase().includes(state.q));
      if (!rows.length) return replace(body, h('div', { class: 'empty', 'data-testid': 'experiments-empty' }, state.list.length ? 'No experiment matches.' : 'No experiments yet. Log a run with the MLflow client to create one.'));
      replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'experiments-table' },
        h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'ID'), h('th', null, 'Created'), h('th', null, 'Last updated'), h('th', null, 'Artifact location'))),
        h('tbody', null, rows.map((e) => h('tr', { 'data-testid': 'experiment-row', 'data-experiment-id': e.experiment_id },
          h('td', null, h('a', { href: '/experiments/' + encodeURIComponent(e.experiment_id), 'data-testid': 'experiment-link' }, e.name || '(unnamed)')),
          h('td', { class: 'mono' }, e.experiment_id),
          h('td', { title: fmtDate(e.creation_time) }, fmtAgo(e.creation_time)),
          h('td', { title: fmtDate(e.last_update_time) }, fmtAgo(e.last_update_time)),
          h('td', { class: 'mono muted' }, e.artifact_location || '')))))));
    }
    async function load() {
      try {
        const res = await api.post('experiments/search', { max_results: 1000 });
        state.list = res.experiments || [];
        state.list.sort((a, b) => (int(b.last_update_time) || int(b.creation_time) || 0) - (int(a.last_update_time) || int(a.creation_time) || 0));
        state.error = null;
      } catch (e) { state.error = e; }
      render();
    }
    render();
    load().then(() => live(load));
  };

  // ----- one experiment: the runs table
  const ATTR_COLS = [
    { id: 'name', label: 'Run name', order: 'attributes.run_name' },
    { id: 'created', label: 'Created', order: 'attributes.start_time' },
    { id: 'duration', label: 'Duration', order: null },
    { id: 'status', label: 'Status', order: 'attributes.status' },
    { id: 'user', label: 'User', order: 'attributes.user_id' },
  ];
  function orderKey(group, key) {
    return group + '.' + (/^[A-Za-z0-9_.]+$/.test(key) ? key : '`' + key.replace(/`/g, '') + '`');
  }

  pages.experiment = function () {
    const expId = main.dataset.experimentId;
    const params = new URLSearchParams(location.search);
    const saved = store.get('cols.' + expId, null);
    const state = {
      exp: null, runs: [], next: null, error: null, filterError: null, loading: true,
      filter: params.get('filter') || '',
      order: params.get('order') || '',
      columns: saved ? new Set(saved) : null, // null: the default choice
      selected: new Set(),
      chooserOpen: false,
    };
    const title = h('h1', { 'data-testid': 'experiment-name' }, 'Experiment ' + expId);
    const sub = h('span', { class: 'sub mono' }, 'ID ' + expId);
    const filterInput = h('input', {
      type: 'search', value: state.filter, 'data-testid': 'runs-filter', spellcheck: 'false',
      placeholder: "metrics.rmse < 1 and params.model = 'xgb'",
      onkeydown: (e) => { if (e.key === 'Enter') applyFilter(); },
    });
    const filterError = h('div', { class: 'filter-error', 'data-testid': 'filter-error', hidden: true });
    const compareBtn = h('button', { type: 'button', class: 'btn primary', 'data-testid': 'compare-button', disabled: true, onclick: () => {
      const ids = [...state.selected];
      if (ids.length >= 2 && ids.length <= 20) location.href = '/compare?runs=' + ids.map(encodeURIComponent).join(',');
    } }, 'Compare');
    const chooserAnchor = h('div', { class: 'popover-anchor' });
    const colsBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'columns-button', 'aria-expanded': 'false', onclick: (e) => { e.stopPropagation(); state.chooserOpen = !state.chooserOpen; renderChooser(); } }, 'Columns');
    append(chooserAnchor, colsBtn);
    const count = h('span', { class: 'count', 'data-testid': 'run-count' });
    const tableCard = h('div', { class: 'card flush' });
    const chartState = Object.assign({ open: true, x: 'attributes.start_time', y: null }, store.get('expchart.' + expId, {}));
    const chartX = h('select', { 'data-testid': 'runs-chart-x', onchange: (e) => { chartState.x = e.target.value; saveChart(); renderChart(); } });
    const chartY = h('select', { 'data-testid': 'runs-chart-y', onchange: (e) => { chartState.y = e.target.value; saveChart(); renderChart(); } });
    const chartBox = h('div', { class: 'chart', 'data-testid': 'runs-chart', style: 'height:260px' });
    const chartBody = h('div', null, chartBox);
    const chartToggle = h('button', { type: 'button', class: 'btn', 'data-testid': 'toggle-chart', onclick: () => { chartState.open = !chartState.open; saveChart(); renderChart(); } });
    const chartCard = h('section', { class: 'card', 'data-testid': 'runs-chart-card' },
      h('div', { class: 'toolbar', style: 'align-items:center;margin-bottom:0' }, h('h2', { style: 'margin:0 12px 0 0' }, 'Runs chart'),
        h('label', { class: 'controls' }, 'X', chartX), h('label', { class: 'controls' }, 'Y', chartY), h('span', { style: 'flex:1' }), chartToggle),
      chartBody);
    let runsChart = null;
    function saveChart() { store.set('expchart.' + expId, chartState); }
    function renderChart() {
      const k = keys();
      chartCard.hidden = !state.runs.length || !k.metrics.length;
      chartToggle.textContent = chartState.open ? 'Hide' : 'Show';
      chartBody.hidden = !chartState.open;
      chartX.parentNode.hidden = chartY.parentNode.hidden = !chartState.open;
      if (chartCard.hidden || !chartState.open) return;
      const opts = [['attributes.start_time', 'Created']].concat(k.metrics.map((m) => ['metrics.' + m, m]), k.params.map((p) => ['params.' + p, p]));
      const ids = opts.map((o) => o[0]);
      if (!ids.includes(chartState.x)) chartState.x = 'attributes.start_time';
      if (!ids.includes(chartState.y)) chartState.y = 'metrics.' + k.metrics[0];
      for (const [sel, cur] of [[chartX, chartState.x], [chartY, chartState.y]]) {
        replace(sel, h('optgroup', { label: 'Attributes' }, h('option', { value: 'attributes.start_time' }, 'Created')),
          h('optgroup', { label: 'Metrics' }, k.metrics.map((m) => h('option', { value: 'metrics.' + m }, m))),
          k.params.length ? h('optgroup', { label: 'Parameters' }, k.params.map((p) => h('option', { value: 'params.' + p }, p))) : null);
        sel.value = cur;
      }
      const val = (r, sel) => {
        if (sel === 'attributes.start_time') return int((r.info || {}).start_time);
        const [g, ...rest] = sel.split('.');
        const key = rest.join('.');
        if (g === 'metrics') { const m = metricsOf(r)[key]; const v = m ? num(m.value) : undefined; return Number.isFinite(v) ? v : undefined; }
        return paramsOf(r)[key];
      };
      const points = state.runs.map((r) => ({ x: val(r, chartState.x), y: val(r, chartState.y), label: runName(r), color: state.selected.has(runId(r)) ? '#e8590c' : C.PALETTE[0], id: runId(r) }))
        .filter((p) => p.x !== undefined && p.x !== null && p.y !== undefined && p.y !== null);
      const o = { points, xLabel: chartState.x === 'attributes.start_time' ? 'created' : chartState.x, yLabel: chartState.y, xTime: chartState.x === 'attributes.start_time', yTime: chartState.y === 'attributes.start_time',
        onClick: (p) => { location.href = '/runs/' + encodeURIComponent(p.id); } };
      if (!runsChart) runsChart = C.scatterChart(chartBox, o); else runsChart.update(o);
    }
    const more = h('div');
    replace(main,
      h('div', { class: 'crumbs' }, h('a', { href: '/experiments' }, 'Experiments'), ' / '),
      h('header', { class: 'page-head' }, title, sub),
      h('nav', { class: 'tabs', 'data-testid': 'experiment-tabs' },
        h('a', { class: 'on', href: '/experiments/' + encodeURIComponent(expId), 'data-testid': 'runs-tab', 'aria-current': 'page' }, 'Runs'),
        h('a', { href: '/experiments/' + encodeURIComponent(expId) + '/traces', 'data-testid': 'traces-tab' }, 'Traces')),
      h('div', { class: 'toolbar' },
        h('div', { class: 'filter' }, filterInput, filterError,
          h('div', { class: 'filter-hint' }, 'MLflow filter syntax: ', h('code', null, "metrics.acc > 0.9 and params.lr = '0.1' and tags.`mlflow.runName` LIKE '%cv%'"))),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'runs-search', onclick: applyFilter }, 'Search'),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'runs-clear', onclick: () => { filterInput.value = ''; applyFilter(); } }, 'Clear'),
        chooserAnchor, compareBtn),
      chartCard,
      h('div', null, count),
      tableCard, more);
    document.addEventListener('click', (e) => {
      if (state.chooserOpen && !chooserAnchor.contains(e.target)) { state.chooserOpen = false; renderChooser(); }
    });

    function syncUrl() {
      const p = new URLSearchParams();
      if (state.filter) p.set('filter', state.filter);
      if (state.order) p.set('order', state.order);
      const s = p.toString();
      history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
    }
    function applyFilter() {
      state.filter = filterInput.value.trim();
      syncUrl();
      load(true);
    }
    function keys() {
      const m = new Set(), p = new Set(), t = new Set();
      for (const r of state.runs) {
        for (const x of (r.data || {}).metrics || []) m.add(x.key);
        for (const x of (r.data || {}).params || []) p.add(x.key);
        for (const x of (r.data || {}).tags || []) t.add(x.key);
      }
      const sortTags = (a, b) => (a.startsWith('mlflow.') - b.startsWith('mlflow.')) || a.localeCompare(b);
      return { metrics: [...m].sort(), params: [...p].sort(), tags: [...t].sort(sortTags) };
    }
    function visibleColumns(k) {
      if (state.columns) {
        const out = [];
        for (const g of ['metrics', 'params', 'tags']) for (const key of k[g]) if (state.columns.has(g + '.' + key)) out.push([g, key]);
        return out;
      }
      // Default: every metric and param (up to 16 columns), user tags that are not mlflow.*.
      const out = [];
      for (const key of k.metrics) out.push(['metrics', key]);
      for (const key of k.params) out.push(['params', key]);
      return out.slice(0, 16);
    }
    function renderChooser() {
      colsBtn.setAttribute('aria-expanded', String(state.chooserOpen));
      const old = chooserAnchor.querySelector('.popover');
      if (old) old.remove();
      if (!state.chooserOpen) return;
      const k = keys();
      const visible = new Set(visibleColumns(k).map(([g, key]) => g + '.' + key));
      const pop = h('div', { class: 'popover', 'data-testid': 'column-chooser' });
      const toggle = (id, on) => {
        const cur = new Set(visibleColumns(keys()).map(([g, key]) => g + '.' + key));
        if (on) cur.add(id); else cur.delete(id);
        state.columns = cur;
        store.set('cols.' + expId, [...cur]);
        renderTable();
      };
      for (const [g, label] of [['metrics', 'Metrics'], ['params', 'Parameters'], ['tags', 'Tags']]) {
        append(pop, h('h3', null, label));
        if (!k[g].length) append(pop, h('div', { class: 'muted' }, 'none'));
        for (const key of k[g]) {
          const id = g + '.' + key;
          append(pop, h('label', null, h('input', { type: 'checkbox', 'data-col': id, 'data-testid': 'column-option', checked: visible.has(id), onchange: (e) => toggle(id, e.target.checked) }), tok(key)));
        }
      }
      append(pop, h('div', { style: 'margin-top:8px' }, h('button', { type: 'button', class: 'btn', 'data-testid': 'columns-reset', onclick: () => {
        state.columns = null; store.set('cols.' + expId, null); renderTable(); renderChooser();
      } }, 'Reset to default')));
      chooserAnchor.appendChild(pop);
    }
    function sortState() {
      const m = /^(.*?)(?:\s+(ASC|DESC))?$/i.exec(state.order || '');
      return state.order ? { key: m[1], dir: (m[2] || 'ASC').toUpperCase() } : { key: 'attributes.start_time', dir: 'DESC' };
    }
    function header(label, order, cls) {
      const s = sortState();
      const on = order && s.key === order;
      const th = h('th', { class: (cls || '') + (order ? ' sortable' : ''), 'data-testid': 'col-header', 'data-col': order || label, 'aria-sort': on ? (s.dir === 'ASC' ? 'ascending' : 'descending') : null, title: order ? 'Sort by ' + order : null },
        label, on ? h('span', { class: 'arrow' }, s.dir === 'ASC' ? '▲' : '▼') : null);
      if (order) th.addEventListener('click', () => {
        const dir = on ? (s.dir === 'ASC' ? 'DESC' : 'ASC') : (order === 'attributes.start_time' ? 'DESC' : 'ASC');
        state.order = order + ' ' + dir;
        syncUrl();
        load(true);
      });
      return th;
    }
    function updateCompare() {
      const n = state.selected.size;
      compareBtn.disabled = !(n >= 2 && n <= 20);
      compareBtn.textContent = n ? `Compare (${n})` : 'Compare';
      compareBtn.title = n > 20 ? 'Select at most 20 runs' : n < 2 ? 'Select 2 to 20 runs' : '';
    }
    function renderTable() {
      if (filterError.hidden !== !state.filterError) filterError.hidden = !state.filterError;
      filterError.textContent = state.filterError ? state.filterError.message : '';
      filterInput.classList.toggle('invalid', !!state.filterError);
      if (state.error) return replace(tableCard, errorBox(state.error));
      count.textContent = state.loading && !state.runs.length ? 'Loading…' : state.runs.length + (state.next ? '+' : '') + ' runs';
      if (!state.runs.length) {
        chartCard.hidden = true;
        return replace(tableCard, h('div', { class: 'empty', 'data-testid': 'runs-empty' }, state.loading ? 'Loading…' : state.filter ? 'No run matches the filter.' : 'No runs in this experiment yet.'));
      }
      const k = keys();
      const cols = visibleColumns(k);
      const ids = state.runs.map(runId);
      for (const id of [...state.selected]) if (!ids.includes(id)) state.selected.delete(id);
      const all = h('input', { type: 'checkbox', 'data-testid': 'select-all', 'aria-label': 'Select all', checked: state.selected.size > 0 && state.selected.size === ids.length, onchange: (e) => {
        if (e.target.checked) ids.slice(0, 20).forEach((id) => state.selected.add(id)); else state.selected.clear();
        renderTable();
      } });
      const head = h('tr', null, h('th', { style: 'width:28px' }, all),
        ATTR_COLS.map((c) => header(c.label, c.order)),
        cols.map(([g, key]) => header(key, orderKey(g, key), 'group-' + g + (g === 'metrics' ? ' num' : ''))));
      const rows = state.runs.map((r) => {
        const id = runId(r);
        const info = r.info || {};
        const m = metricsOf(r), p = paramsOf(r), t = tagsOf(r);
        const sel = state.selected.has(id);
        return h('tr', { 'data-testid': 'run-row', 'data-run-id': id, class: sel ? 'selected' : '' },
          h('td', null, h('input', { type: 'checkbox', 'data-testid': 'run-select', 'aria-label': 'Select run', checked: sel, onchange: (e) => {
            if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
            e.target.closest('tr').classList.toggle('selected', e.target.checked);
            updateCompare();
            renderChart();
          } })),
          h('td', null, h('a', { href: '/runs/' + encodeURIComponent(id), 'data-testid': 'run-link' }, runName(r))),
          h('td', { title: fmtDate(info.start_time) }, fmtAgo(info.start_time)),
          h('td', null, fmtDur(info.start_time, info.end_time)),
          h('td', null, statusBadge(info.status)),
          h('td', { class: 'muted' }, info.user_id || ''),
          cols.map(([g, key]) => {
            if (g === 'metrics') {
              const x = m[key];
              return h('td', { class: 'num', 'data-col': 'metrics.' + key, title: x ? 'step ' + x.step : null }, x ? fmtNum(num(x.value)) : '');
            }
            const v = g === 'params' ? p[key] : t[key];
            return h('td', { 'data-col': g + '.' + key, title: v && v.length > 40 ? v : null }, v === undefined ? '' : v.length > 60 ? v.slice(0, 57) + '…' : v);
          }));
      });
      replace(tableCard, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'runs-table' }, h('thead', null, head), h('tbody', null, rows))));
      renderChart();
      updateCompare();
      replace(more, state.next ? h('button', { type: 'button', class: 'btn', 'data-testid': 'load-more', onclick: loadMore }, 'Load more runs') : null);
      if (state.chooserOpen) renderChooser();
    }
    function searchBody(pageToken, max) {
      const s = sortState();
      const body = { experiment_ids: [expId], max_results: max || 1000 };
      if (state.filter) body.filter = state.filter;
      if (state.order) body.order_by = [s.key + ' ' + s.dir];
      if (pageToken) body.page_token = pageToken;
      return body;
    }
    let seq = 0, gone = false;
    async function load(userAction) {
      const my = ++seq;
      if (userAction) { state.loading = true; }
      try {
        if (!state.exp) {
          try {
            const r = await api.get('experiments/get', { experiment_id: expId });
            state.exp = r.experiment;
            title.textContent = state.exp.name;
            document.title = state.exp.name + ' · Atelier Studio';
          } catch (e) {
            if (isNotFound(e)) {
              gone = true;
              notFound({ crumbs: [['Experiments', '/experiments']], title: 'Experiment not found', error: e, testid: 'experiment-error', back: ['/experiments', 'All experiments'] });
              return;
            }
          }
        }
        const max = Math.min(50000, Math.max(1000, userAction ? 0 : state.runs.length));
        const res = await api.post('runs/search', searchBody(null, max));
        if (my !== seq) return;
        state.runs = res.runs || [];
        state.next = res.next_page_token || null;
        state.filterError = null;
        state.error = null;
      } catch (e) {
        if (my !== seq) return;
        if (e.status === 400) { state.filterError = e; state.runs = []; state.next = null; } else state.error = e;
      }
      state.loading = false;
      renderTable();
    }
    async function loadMore() {
      try {
        const res = await api.post('runs/search', searchBody(state.next));
        state.runs = state.runs.concat(res.runs || []);
        state.next = res.next_page_token || null;
      } catch (e) { state.error = e; }
      renderTable();
    }
    renderTable();
    load(true).then(() => { if (!gone) live(() => load(false)); });
  };

  // ----- one run
  pages.run = function () {
    const rid = main.dataset.runId;
    const state = { run: null, exp: null, error: null, charts: new Map() };
    const crumbs = h('div', { class: 'crumbs' }, h('a', { href: '/experiments' }, 'Experiments'), ' / ');
    const title = h('h1', { 'data-testid': 'run-name' }, 'Run');
    const badge = h('span');
    const info = h('section', { class: 'card', 'data-testid': 'run-info' });
    const tables = h('div', { class: 'grid2' });
    const chartsGrid = h('div', { class: 'charts', 'data-testid': 'metric-charts' });
    const controls = chartControls(() => redrawAll());
    const artifactsCard = h('section', { class: 'card flush', 'data-testid': 'artifacts' });
    const err = h('div');
    // the panels show once the run is known (a missing run is one message, not empty panels)
    const body = h('div', { 'data-testid': 'run-body', hidden: true }, info, tables,
      h('section', { class: 'card' }, h('div', { class: 'toolbar', style: 'justify-content:space-between;align-items:center' }, h('h2', { style: 'margin:0' }, 'Metrics'), controls.node), chartsGrid),
      artifactsCard);
    replace(main, crumbs, h('header', { class: 'page-head' }, title, badge), err, body);
    const artifacts = artifactBrowser(artifactsCard);

    function fact(label, value, testid, wide) {
      return h('div', { class: wide ? 'wide' : null }, h('span', null, label), h('b', { 'data-testid': testid, title: typeof value === 'string' ? value : null, class: typeof value === 'string' && !/\s/.test(value) ? 'nowrap' : null }, value));
    }
    function kvTable(title, map, testid, opts) {
      const keys = Object.keys(map).sort((a, b) => (opts && opts.systemLast ? (a.startsWith('mlflow.') - b.startsWith('mlflow.')) : 0) || a.localeCompare(b));
      return h('section', { class: 'card flush' }, h('div', { class: 'card-head' }, h('h2', null, title), h('span', { class: 'muted' }, String(keys.length))),
        keys.length ? h('div', { class: 'table-wrap', style: 'max-height:360px' }, h('table', { class: 'data kv', 'data-testid': testid }, h('tbody', null, keys.map((k) => {
          const v = map[k];
          return h('tr', { 'data-key': k, class: k.startsWith('mlflow.') ? 'system' : '' }, h('td', null, tok(k)), h('td', { class: opts && opts.numeric ? 'num' : '', title: v }, v));
        })))) : h('div', { class: 'empty', 'data-testid': testid + '-empty' }, 'None'));
    }
    function renderInfo() {
      const r = state.run;
      const i = r.info || {};
      const t = tagsOf(r);
      title.textContent = runName(r);
      document.title = runName(r) + ' · Atelier Studio';
      replace(badge, statusBadge(i.status));
      replace(crumbs, h('a', { href: '/experiments' }, 'Experiments'), ' / ',
        h('a', { href: '/experiments/' + encodeURIComponent(i.experiment_id), 'data-testid': 'experiment-crumb' }, state.exp ? state.exp.name : 'Experiment ' + i.experiment_id), ' / ');
      replace(info, h('div', { class: 'facts' },
        fact('Run ID', i.run_id, 'run-id', true),
        fact('Status', i.status || '—', 'run-status-text'),
        fact('Started', fmtDate(i.start_time), 'run-start'),
        fact('Ended', i.end_time ? fmtDate(i.end_time) : '—', 'run-end'),
        fact('Duration', fmtDur(i.start_time, i.end_time), 'run-duration'),
        fact('User', i.user_id || '—'),
        fact('Source', t['mlflow.source.name'] || '—'),
        fact('Artifact URI', i.artifact_uri || '—', null, true)));
      const metrics = {};
      for (const m of (r.data || {}).metrics || []) metrics[m.key] = fmtNum(num(m.value)) + '  (step ' + (m.step || 0) + ')';
      replace(tables,
        kvTable('Parameters', paramsOf(r), 'params-table'),
        kvTable('Metrics', metrics, 'metrics-table', { numeric: true }),
        kvTable('Tags', t, 'tags-table', { systemLast: true }));
    }
    function seriesOf(key, points) {
      const start = int((state.run.info || {}).start_time) || (points[0] ? points[0].ts : 0);
      const xk = controls.state.xKind;
      return [{ label: key, color: C.PALETTE[0], id: rid, points: points.map((p) => ({ x: xOf(p, xk, start), y: p.y, step: p.step, ts: p.ts })) }];
    }
    function chartOpts(key, points) {
      return { series: seriesOf(key, points), xKind: controls.state.xKind, logY: controls.state.logY, smoothing: controls.state.smoothing };
    }
    function redrawAll() { for (const [key, c] of state.charts) c.chart.update(chartOpts(key, c.points)); }
    async function renderCharts() {
      const latest = metricsOf(state.run);
      const keys = Object.keys(latest).sort();
      if (!keys.length) { replace(chartsGrid, h('div', { class: 'empty', 'data-testid': 'no-metrics' }, 'No metrics logged.')); state.charts.clear(); return; }
      if (!state.charts.size) clear(chartsGrid);
      const results = await Promise.all(keys.map((k) => metricHistory(rid, latest[k]).catch((e) => ({ error: e }))));
      keys.forEach((key, idx) => {
        const res = results[idx];
        let c = state.charts.get(key);
        if (res.error) {
          if (!c) append(chartsGrid, h('div', { class: 'chart-card' }, h('h3', null, key), errorBox(res.error)));
          return;
        }
        if (!c) {
          const box = h('div', { class: 'chart', 'data-testid': 'chart' });
          const count = h('span', { class: 'muted', 'data-testid': 'point-count' });
          const card = h('div', { class: 'chart-card', 'data-testid': 'metric-chart', 'data-metric-key': key }, h('h3', null, h('span', null, key), count), box);
          // keep cards in key order
          const after = [...chartsGrid.children].find((n) => n.dataset.metricKey && n.dataset.metricKey > key);
          chartsGrid.insertBefore(card, after || null);
          c = { card, count, points: res.points, chart: C.lineChart(box, chartOpts(key, res.points)) };
          state.charts.set(key, c);
        } else if (res.changed) {
          c.points = res.points;
          c.chart.update(chartOpts(key, res.points));
        }
        c.card.setAttribute('data-points', String(c.points.length));
        const bad = c.points.filter((p) => !Number.isFinite(p.y)).length;
        c.count.textContent = c.points.length + (c.points.length === 1 ? ' point' : ' points') + (bad ? ` · ${bad} non-finite` : '');
      });
    }
    async function load() {
      try {
        const res = await api.get('runs/get', { run_id: rid });
        state.run = res.run;
        state.error = null;
        const eid = (state.run.info || {}).experiment_id;
        if (!state.exp && eid !== undefined) {
          try { state.exp = (await api.get('experiments/get', { experiment_id: eid })).experiment; } catch (_) { /* shown as id */ }
        }
      } catch (e) {
        state.error = e;
        if (!state.run && isNotFound(e)) {
          notFound({ crumbs: [['Experiments', '/experiments']], title: 'Run not found', error: e, testid: 'run-error', back: ['/experiments', 'All experiments'] });
          return false;
        }
        if (!state.run) { replace(err, errorBox(e, 'run-error')); title.textContent = 'Run ' + rid; return true; }
      }
      replace(err);
      body.hidden = false;
      renderInfo();
      artifacts.setRoot(artifactRoot((state.run.info || {}).artifact_uri), (state.run.info || {}).artifact_uri);
      await renderCharts();
      return true;
    }
    load().then((found) => { if (found) live(() => Promise.all([load(), artifacts.refresh()])); });
  };

  // ----- artifact browser
  function artifactBrowser(card) {
    const st = { root: null, uri: null, dir: '', files: null, error: null, selected: null };
    const list = h('div', { class: 'artifact-list', 'data-testid': 'artifact-list' });
    const preview = h('div', { class: 'artifact-preview', 'data-testid': 'artifact-preview' }, h('div', { class: 'muted' }, 'Select a file to preview it.'));
    replace(card, h('div', { class: 'card-head' }, h('h2', null, 'Artifacts')), h('div', { class: 'artifacts' }, list, preview));

    const urlOf = (rel) => inProject(ARTIFACTS + '/' + encodePath(st.root + '/' + rel));
    async function fetchList() {
      if (st.root === null) return;
      try {
        const path = st.dir ? st.root + '/' + st.dir : st.root;
        const res = await request('GET', ARTIFACTS + '?' + qs({ path }));
        const prefix = st.dir ? st.dir + '/' : '';
        st.files = (res.files || []).map((f) => {
          let name = f.path || '';
          if (name.startsWith(st.root + '/')) name = name.slice(st.root.length + 1);
          if (prefix && name.startsWith(prefix)) name = name.slice(prefix.length);
          name = name.split('/').filter(Boolean).pop() || name;
          return { name, rel: prefix + name, is_dir: !!f.is_dir, size: f.file_size };
        }).sort((a, b) => (b.is_dir - a.is_dir) || a.name.localeCompare(b.name));
        st.error = null;
      } catch (e) { st.error = e; st.files = []; }
      renderList();
    }
    function renderList() {
      if (st.root === null) {
        return replace(list, h('div', { class: 'empty' }, st.uri ? 'Artifacts at ' + st.uri + ' cannot be browsed here.' : 'No artifact location.'));
      }
      const items = [];
      items.push(h('div', { class: 'path', 'data-testid': 'artifact-path' }, '/' + st.dir));
      if (st.dir) items.push(h('button', { type: 'button', 'data-testid': 'artifact-up', onclick: () => { st.dir = st.dir.split('/').slice(0, -1).join('/'); fetchList(); } }, h('span', { class: 'ico' }, '↰'), '..'));
      if (st.error) items.push(errorBox(st.error));
      else if (st.files && !st.files.length) items.push(h('div', { class: 'empty', 'data-testid': 'artifacts-empty' }, 'No artifacts.'));
      for (const f of st.files || []) {
        items.push(h('button', {
          type: 'button', class: st.selected === f.rel ? 'on' : '', 'data-testid': 'artifact-entry', 'data-path': f.rel, 'data-is-dir': String(f.is_dir), title: f.rel,
          onclick: () => { if (f.is_dir) { st.dir = f.rel; fetchList(); } else { st.selected = f.rel; renderList(); showPreview(f); } },
        }, h('span', { class: 'ico' }, f.is_dir ? '▸' : '·'), f.name, h('span', { class: 'size' }, f.is_dir ? '' : fmtBytes(f.size))));
      }
      replace(list, items);
    }
    async function showPreview(f) {
      const url = urlOf(f.rel);
      const ext = (f.name.split('.').pop() || '').toLowerCase();
      const head = h('div', { class: 'preview-head' }, h('b', null, f.rel), h('span', { class: 'muted' }, fmtBytes(f.size)),
        h('a', { class: 'btn', href: url, download: f.name, 'data-testid': 'artifact-download' }, 'Download'));
      replace(preview, head, h('div', { class: 'muted' }, 'Loading…'));
      if (ext === 'ipynb') {
        // rendered with its outputs by the notebooks page (no kernel), which also runs it as a job
        return replace(preview, head, h('p', null,
          h('a', { class: 'btn primary', href: '/notebooks?preview=' + encodeURIComponent(st.root + '/' + f.rel), 'data-testid': 'preview-notebook' }, 'Preview the notebook'),
          ' ', h('span', { class: 'muted' }, 'with its outputs; run it as a job or open it in JupyterLab from there.')));
      }
      if (['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp'].includes(ext)) {
        return replace(preview, head, h('img', { src: url, alt: f.name, 'data-testid': 'preview-image' }));
      }
      const LIMIT = 2 * 1024 * 1024;
      if (int(f.size) > LIMIT && !['txt', 'log', 'csv', 'tsv'].includes(ext)) {
        return replace(preview, head, h('div', { class: 'muted', 'data-testid': 'preview-too-large' }, 'Too large to preview; download it instead.'));
      }
      let text;
      try {
        const res = await fetch(url, { credentials: 'same-origin' });
        if (!res.ok) throw new Error('HTTP ' + res.status + ' ' + (await res.text()).slice(0, 200));
        const buf = await res.arrayBuffer();
        const bytes = new Uint8Array(buf, 0, Math.min(buf.byteLength, LIMIT));
        if (bytes.slice(0, 8000).includes(0)) return replace(preview, head, h('div', { class: 'muted', 'data-testid': 'preview-binary' }, 'Binary file; download it to open it.'));
        text = new TextDecoder('utf-8').decode(bytes);
      } catch (e) { return replace(preview, head, errorBox(e)); }
      if (st.selected !== f.rel) return; // another file was chosen meanwhile
      if (ext === 'json') {
        try { return replace(preview, head, h('pre', { 'data-testid': 'preview-json' }, JSON.stringify(JSON.parse(text), null, 2))); } catch (_) { /* fall through to text */ }
      }
      if (ext === 'csv' || ext === 'tsv') {
        const rows = parseCsv(text, ext === 'tsv' ? '\t' : ',', 101);
        if (rows.length) {
          const [hdr, ...body] = rows;
          const isNum = (c) => c !== undefined && c.trim() !== '' && Number.isFinite(Number(c));
          const numeric = hdr.map((_, j) => body.some((r) => isNum(r[j])) && body.every((r) => r[j] === undefined || r[j] === '' || isNum(r[j])));
          return replace(preview, head, h('div', { class: 'table-wrap', style: 'max-height:480px' }, h('table', { class: 'data', 'data-testid': 'preview-csv', 'data-rows': String(body.length) },
            h('thead', null, h('tr', null, hdr.map((c, j) => h('th', { class: numeric[j] ? 'num' : '' }, c)))),
            h('tbody', null, body.map((r) => h('tr', null, r.map((c, j) => h('td', { class: numeric[j] ? 'num' : '' }, c))))))),
          h('div', { class: 'muted', style: 'margin-top:6px' }, body.length >= 100 ? 'Showing the first 100 rows.' : body.length + ' rows'));
        }
      }
      replace(preview, head, h('pre', { 'data-testid': 'preview-text' }, text.length > 200000 ? text.slice(0, 200000) + '\n…' : text));
    }
    return {
      setRoot(root, uri) {
        if (root === st.root && uri === st.uri) return;
        st.root = root; st.uri = uri; st.dir = '';
        if (root === null) renderList(); else fetchList();
      },
      refresh: () => fetchList(),
    };
  }

  /** RFC 4180 CSV: quoted fields, doubled quotes, CRLF; stops after `maxRows` rows. */
  function parseCsv(text, sep, maxRows) {
    const rows = [];
    let row = [], field = '', i = 0, q = false;
    while (i < text.length && rows.length < maxRows) {
      const c = text[i];
      if (q) {
        if (c === '"') { if (text[i + 1] === '"') { field += '"'; i += 2; continue; } q = false; i++; continue; }
        field += c; i++; continue;
      }
      if (c === '"' && field === '') { q = true; i++; continue; }
      if (c === sep) { row.push(field); field = ''; i++; continue; }
      if (c === '\n' || c === '\r') {
        row.push(field); field = '';
        rows.push(row); row = [];
        if (c === '\r' && text[i + 1] === '\n') i++;
        i++; continue;
      }
      field += c; i++;
    }
    if ((field !== '' || row.length) && rows.length < maxRows) { row.push(field); rows.push(row); }
    return rows.filter((r) => !(r.length === 1 && r[0] === ''));
  }

  // ----- compare runs
  pages.compare = function () {
    const ids = [...new Set((main.dataset.runIds || '').split(',').map((s) => s.trim()).filter(Boolean))];
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/experiments' }, 'Experiments'), ' / '), h('header', { class: 'page-head' }, h('h1', null, 'Compare runs'), h('span', { class: 'sub' }, ids.length + ' runs')));
    if (ids.length < 2 || ids.length > 20) {
      append(main, h('div', { class: 'card', 'data-testid': 'compare-invalid' }, h('p', null, 'Select between 2 and 20 runs to compare (',
        ids.length, ' given). Open an experiment, tick the runs and press ', h('b', null, 'Compare'), '.')));
      return;
    }
    const state = { runs: [], errors: [], charts: new Map(), onlyDiff: store.get('onlyDiff', false), sx: null, sy: null };
    const color = (i) => C.PALETTE[i % C.PALETTE.length];
    const legend = h('div', { class: 'legend', 'data-testid': 'compare-legend' });
    const errors = h('div');
    const controls = chartControls(() => redrawCharts());
    const chartsGrid = h('div', { class: 'charts', 'data-testid': 'compare-charts' });
    const diffCard = h('section', { class: 'card flush', 'data-testid': 'param-diff-card' });
    const metricCard = h('section', { class: 'card flush' });
    const scatterCard = h('section', { class: 'card', 'data-testid': 'scatter' });
    append(main, errors, legend,
      h('section', { class: 'card' }, h('div', { class: 'toolbar', style: 'justify-content:space-between;align-items:center' }, h('h2', { style: 'margin:0' }, 'Metrics'), controls.node), chartsGrid),
      diffCard, scatterCard, metricCard);

    const scatterX = h('select', { 'data-testid': 'scatter-x', onchange: (e) => { state.sx = e.target.value; drawScatter(); } });
    const scatterY = h('select', { 'data-testid': 'scatter-y', onchange: (e) => { state.sy = e.target.value; drawScatter(); } });
    const scatterBox = h('div', { class: 'chart', 'data-testid': 'scatter-plot', style: 'height:320px' });
    let scatter = null;
    replace(scatterCard, h('div', { class: 'toolbar', style: 'align-items:center' }, h('h2', { style: 'margin:0 12px 0 0' }, 'Scatter'),
      h('label', { class: 'controls' }, 'X', scatterX), h('label', { class: 'controls' }, 'Y', scatterY)), scatterBox);

    function runLabel(r) { return runName(r); }
    function renderLegend() {
      replace(legend, state.runs.map((r, i) => h('span', { 'data-testid': 'legend-item', 'data-run-id': runId(r) }, h('i', { class: 'sw', style: 'background:' + color(i) }),
        h('a', { href: '/runs/' + encodeURIComponent(runId(r)) }, runLabel(r)))));
      replace(errors, state.errors.map(([id, e]) => errorBox(new Error('Run ' + id + ': ' + e.message))));
    }
    function diffTable(title, testid, keyset, valueOf, numeric) {
      const keys = [...keyset].sort();
      const rows = keys.map((k) => {
        const vals = state.runs.map((r) => valueOf(r, k));
        const differs = !numeric && new Set(vals.map((v) => (v === undefined ? '\u0000' : String(v)))).size > 1;
        return { k, vals, differs };
      });
      const shown = state.onlyDiff ? rows.filter((r) => r.differs) : rows;
      const onlyDiff = h('input', { type: 'checkbox', 'data-testid': 'only-diff', checked: state.onlyDiff, onchange: (e) => { state.onlyDiff = e.target.checked; store.set('onlyDiff', state.onlyDiff); renderTables(); } });
      return [h('div', { class: 'card-head' }, h('h2', null, title), h('span', { class: 'muted' }, numeric ? String(rows.length) : rows.filter((r) => r.differs).length + ' of ' + rows.length + ' differ'), h('span', { class: 'spacer' }),
        testid === 'param-diff' ? h('label', { class: 'controls' }, onlyDiff, 'Only differences') : null),
      rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': testid },
        h('thead', null, h('tr', null, h('th', null, testid === 'param-diff' ? 'Parameter' : 'Metric'), state.runs.map((r, i) => h('th', { class: numeric ? 'num' : '' }, h('i', { class: 'sw', style: `display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:6px;background:${color(i)}` }), runLabel(r))))),
        h('tbody', null, shown.map((r) => h('tr', { class: r.differs ? 'differs' : '', 'data-key': r.k, 'data-differs': String(r.differs), 'data-testid': 'diff-row' },
          h('td', { class: 'mono' }, r.k), r.vals.map((v) => h('td', { class: numeric ? 'num' : 'wrap' }, v === undefined ? '—' : numeric ? fmtNum(v) : v))))))) : h('div', { class: 'empty' }, 'None')];
    }
    function renderTables() {
      const pk = new Set(), mk = new Set();
      for (const r of state.runs) { Object.keys(paramsOf(r)).forEach((k) => pk.add(k)); Object.keys(metricsOf(r)).forEach((k) => mk.add(k)); }
      replace(diffCard, diffTable('Parameters', 'param-diff', pk, (r, k) => paramsOf(r)[k]));
      replace(metricCard, diffTable('Latest metrics', 'metric-diff', mk, (r, k) => { const m = metricsOf(r)[k]; return m ? num(m.value) : undefined; }, true));
    }
    function scatterOptions() {
      const pk = new Set(), mk = new Set();
      for (const r of state.runs) { Object.keys(paramsOf(r)).forEach((k) => pk.add(k)); Object.keys(metricsOf(r)).forEach((k) => mk.add(k)); }
      return { params: [...pk].sort(), metrics: [...mk].sort() };
    }
    function valueFor(r, sel) {
      if (!sel) return undefined;
      const [g, ...rest] = sel.split('.');
      const k = rest.join('.');
      if (g === 'metrics') { const m = metricsOf(r)[k]; return m ? num(m.value) : undefined; }
      const v = paramsOf(r)[k];
      return v === undefined ? undefined : v;
    }
    function drawScatter() {
      const o = scatterOptions();
      const all = [...o.params.map((k) => 'params.' + k), ...o.metrics.map((k) => 'metrics.' + k)];
      if (!state.sx || !all.includes(state.sx)) {
        // Prefer a parameter whose values vary across the runs.
        const varying = o.params.find((k) => new Set(state.runs.map((r) => paramsOf(r)[k])).size > 1);
        state.sx = varying ? 'params.' + varying : all[0] || null;
      }
      if (!state.sy || !all.includes(state.sy)) state.sy = o.metrics.length ? 'metrics.' + o.metrics[0] : all[1] || all[0] || null;
      for (const [sel, cur] of [[scatterX, state.sx], [scatterY, state.sy]]) {
        replace(sel,
          o.params.length ? h('optgroup', { label: 'Parameters' }, o.params.map((k) => h('option', { value: 'params.' + k, selected: cur === 'params.' + k }, k))) : null,
          o.metrics.length ? h('optgroup', { label: 'Metrics' }, o.metrics.map((k) => h('option', { value: 'metrics.' + k, selected: cur === 'metrics.' + k }, k))) : null);
        if (cur) sel.value = cur;
      }
      const points = state.runs.map((r, i) => ({ x: valueFor(r, state.sx), y: valueFor(r, state.sy), label: runLabel(r), color: color(i), id: runId(r) }))
        .filter((p) => p.x !== undefined && p.y !== undefined && !(typeof p.x === 'number' && !Number.isFinite(p.x)) && !(typeof p.y === 'number' && !Number.isFinite(p.y)));
      const opts = { points, xLabel: state.sx || '', yLabel: state.sy || '' };
      if (!scatter) scatter = C.scatterChart(scatterBox, opts); else scatter.update(opts);
    }
    function chartOpts(key) {
      const xk = controls.state.xKind;
      const series = [];
      state.runs.forEach((r, i) => {
        const c = historyCache.get(runId(r) + '\0' + key);
        if (!c || !metricsOf(r)[key]) return;
        const start = int((r.info || {}).start_time) || (c.points[0] ? c.points[0].ts : 0);
        series.push({ label: runLabel(r), color: color(i), id: runId(r), points: c.points.map((p) => ({ x: xOf(p, xk, start), y: p.y, step: p.step, ts: p.ts })) });
      });
      return { series, xKind: xk, logY: controls.state.logY, smoothing: controls.state.smoothing };
    }
    function redrawCharts() { for (const [key, c] of state.charts) c.chart.update(chartOpts(key)); }
    async function renderCharts() {
      const keys = new Set();
      const jobs = [];
      for (const r of state.runs) {
        for (const [k, latest] of Object.entries(metricsOf(r))) {
          keys.add(k);
          jobs.push(metricHistory(runId(r), latest).then((res) => (res.changed ? k : null)).catch(() => null));
        }
      }
      const changed = new Set(await Promise.all(jobs));
      const sorted = [...keys].sort();
      if (!sorted.length) { replace(chartsGrid, h('div', { class: 'empty' }, 'These runs have no metrics.')); state.charts.clear(); return; }
      if (!state.charts.size) clear(chartsGrid);
      for (const key of sorted) {
        let c = state.charts.get(key);
        if (!c) {
          const box = h('div', { class: 'chart' });
          const card = h('div', { class: 'chart-card', 'data-testid': 'compare-chart', 'data-metric-key': key }, h('h3', null, h('span', null, key)), box);
          const after = [...chartsGrid.children].find((n) => n.dataset.metricKey && n.dataset.metricKey > key);
          chartsGrid.insertBefore(card, after || null);
          c = { card, chart: C.lineChart(box, chartOpts(key)) };
          state.charts.set(key, c);
        } else if (changed.has(key)) {
          c.chart.update(chartOpts(key));
        }
      }
    }
    async function load() {
      const results = await Promise.all(ids.map((id) => api.get('runs/get', { run_id: id }).then((r) => r.run, (e) => ({ error: e, id }))));
      state.runs = results.filter((r) => !r.error);
      state.errors = results.filter((r) => r.error).map((r) => [r.id, r.error]);
      renderLegend();
      renderTables();
      drawScatter();
      await renderCharts();
    }
    load().then(() => live(load));
  };

  pages.stage = function () { /* static page rendered by the server */ };

  // Links the MLflow client prints use the MLflow UI's hash routes
  // ("View run at http://host/#/experiments/1/runs/<id>"): follow them.
  const legacy = /^#\/experiments\/(\d+)(?:\/runs\/([0-9a-f]+))?/.exec(location.hash || '');
  if (legacy) {
    location.replace(legacy[2] ? '/runs/' + legacy[2] : '/experiments/' + legacy[1]);
    return;
  }

  // The other stages' pages live in their own files (autopilot.js, serving.js, …), loaded after
  // this one with `defer`; they register into `pages` through this object before DOMContentLoaded.
  window.AtelierStudio = {
    C, API, ARTIFACTS, h, append, clear, replace, request, qs, api, num, fmtDate, fmtAgo, fmtDur, fmtBytes, fmtNum,
    errorBox, tok, notFound, isNotFound, markNav, statusBadge, runName, kvMap, tagsOf, paramsOf, metricsOf, runId, artifactRoot, encodePath, live,
    chartControls, parseCsv, main, pages, project, projectHeaders, inProject, projectFolder, store,
  };
  /**
   * Before any page loads: the projects this user may see (a server admin: all) and who they are.
   * The remembered project is kept if still theirs, else `default` if they have a role there, else
   * their first. The sidebar gets a switcher (changing it reloads the Studio on that project) and,
   * when signed in, the name with a sign-out link.
   */
  async function chooseProject() {
    const side = document.querySelector('.sidebar-inner');
    let names = [];
    let me = null;
    try {
      const [ws, who] = await Promise.all([request('GET', '/api/3.0/mlflow/workspaces'), request('GET', '/api/atelier/me').catch(() => null)]);
      names = (ws.workspaces || []).map((w) => w.name);
      me = who;
    } catch (e) {
      console.warn('could not list projects', e);
    }
    const kept = store.get('project', null);
    project.current = names.includes(kept) ? kept : names.includes('default') ? 'default' : names[0] || null;
    if (project.current) store.set('project', project.current);
    if (!side) return;
    const brand = side.querySelector('.brand');
    if (names.length) {
      const sel = h('select', { 'data-testid': 'project-switcher', 'aria-label': 'Project', onchange: () => { store.set('project', sel.value); location.assign('/'); } },
        names.map((n) => h('option', { value: n, selected: n === project.current }, n)));
      const box = h('label', { class: 'project-switch', 'data-testid': 'project-switch' }, h('span', {}, 'Project'), sel);
      if (brand) brand.after(box); else side.prepend(box);
    }
    if (me && me.name && me.name !== 'local') {
      side.append(h('div', { class: 'who', 'data-testid': 'signed-in' },
        h('a', { href: '/settings', class: 'who-name', title: 'Your account' }, tok(me.name)),
        h('form', { method: 'post', action: '/logout', class: 'who-out-form' },
          h('button', { type: 'submit', class: 'who-out', 'data-testid': 'sign-out' }, 'Sign out'))));
    }
  }
  async function dispatch() {
    await chooseProject();
    const kind = main && main.dataset.page;
    if (kind && pages[kind]) pages[kind]();
  }
  // Deferred scripts run before DOMContentLoaded, in order: by then every page script has registered.
  if (document.readyState === 'complete') dispatch();
  else document.addEventListener('DOMContentLoaded', dispatch);
})();
