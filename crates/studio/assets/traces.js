// Atelier Studio: MLflow 3 traces. The Traces tab of an experiment (`/experiments/<id>/traces`,
// data-page="experiment-traces") and one trace (`/traces/<trace_id>`, data-page="trace"): its span
// tree, a waterfall timeline (our own SVG), the selected span's inputs, outputs, attributes and
// events, and the trace's assessments. Data from the v3 trace API under /ajax-api/3.0/mlflow/.
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { C, h, append, replace, request, qs, errorBox, tok, notFound, isNotFound, fmtDate, fmtAgo, main, pages, live } = S;
  const API3 = '/ajax-api/3.0/mlflow/';
  const api3 = {
    get: (path, params) => request('GET', API3 + path + (params ? '?' + qs(params) : '')),
    post: (path, body) => request('POST', API3 + path, body),
  };
  const PAGE_SIZE = 50;
  const TOKEN_USAGE = 'mlflow.trace.tokenUsage';
  const SPAN_USAGE = 'mlflow.chat.tokenUsage';

  // ---------------------------------------------------------------- values

  /** `request_time` (RFC 3339) as epoch ms. */
  const timeMs = (s) => { const t = Date.parse(s || ''); return Number.isNaN(t) ? null : t; };
  /** `execution_duration` ("1.234s") as ms. */
  function durMs(s) {
    if (s === undefined || s === null) return null;
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(String(s));
    return m ? Number(m[1]) * 1000 : null;
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    if (ms < 1) return (Math.round(ms * 1000) / 1000) + ' ms';
    if (ms < 1000) return (ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms)) + ' ms';
    if (ms < 60000) return (Math.round(ms / 10) / 100) + ' s';
    return C.fmtDuration(ms);
  }
  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  function parseJson(s) { if (typeof s !== 'string') return s; try { return JSON.parse(s); } catch (_) { return s; } }

  /** Token usage of a trace (its `mlflow.trace.tokenUsage` metadata), or null. */
  function traceTokens(info) {
    const raw = ((info || {}).trace_metadata || {})[TOKEN_USAGE];
    if (!raw) return null;
    const u = parseJson(raw);
    return u && typeof u === 'object' ? u : null;
  }
  function tokensCell(u) {
    if (!u) return h('span', { class: 'muted' }, '—');
    const total = u.total_tokens !== undefined ? u.total_tokens : (Number(u.input_tokens) || 0) + (Number(u.output_tokens) || 0);
    return h('span', { 'data-testid': 'trace-tokens', title: `input ${u.input_tokens ?? '—'} · output ${u.output_tokens ?? '—'} · total ${total}` }, fmtInt(total));
  }
  function stateBadge(state) {
    const cls = state === 'OK' ? 'tr-ok' : state === 'ERROR' ? 'tr-error' : 'tr-progress';
    return h('span', { class: 'badge ' + cls, 'data-testid': 'trace-status' }, state || 'UNKNOWN');
  }

  /** An OTLP AnyValue (protobuf JSON, snake or camel case) as a plain JS value. */
  function anyPlain(v) {
    if (!v || typeof v !== 'object') return v === undefined ? null : v;
    const [k, inner] = Object.entries(v)[0] || [];
    switch (k) {
      case 'string_value': case 'stringValue': case 'bool_value': case 'boolValue': case 'double_value': case 'doubleValue': return inner;
      case 'int_value': case 'intValue': { const n = Number(inner); return Number.isSafeInteger(n) ? n : inner; }
      case 'bytes_value': case 'bytesValue': return inner;
      case 'array_value': case 'arrayValue': return ((inner || {}).values || []).map(anyPlain);
      case 'kvlist_value': case 'kvlistValue': {
        const o = {};
        for (const kv of (inner || {}).values || []) o[kv.key] = anyPlain(kv.value);
        return o;
      }
      default: return null;
    }
  }
  function attrsOf(list) { const o = {}; for (const kv of list || []) o[kv.key] = anyPlain(kv.value); return o; }
  function b64hex(s) {
    if (!s) return null;
    try {
      const bin = atob(s);
      let out = '';
      for (let i = 0; i < bin.length; i++) out += bin.charCodeAt(i).toString(16).padStart(2, '0');
      return out || null;
    } catch (_) { return String(s); }
  }
  const ns = (v) => (v === undefined || v === null || v === '' ? null : Number(v));
  function spanStatus(st) {
    const c = (st || {}).code;
    if (c === 2 || c === 'STATUS_CODE_ERROR') return 'ERROR';
    if (c === 1 || c === 'STATUS_CODE_OK') return 'OK';
    return 'UNSET';
  }
  /** A stored OTLP span as what the page shows. */
  function toSpan(raw) {
    const attrs = attrsOf(raw.attributes);
    const span = {
      id: b64hex(raw.span_id), parent: b64hex(raw.parent_span_id), name: raw.name || '(unnamed)',
      start: ns(raw.start_time_unix_nano), end: ns(raw.end_time_unix_nano),
      status: spanStatus(raw.status), statusMessage: (raw.status || {}).message || '',
      type: attrs['mlflow.spanType'] || null,
      inputs: attrs['mlflow.spanInputs'], outputs: attrs['mlflow.spanOutputs'],
      usage: attrs[SPAN_USAGE] && typeof attrs[SPAN_USAGE] === 'object' ? attrs[SPAN_USAGE] : null,
      events: (raw.events || []).map((e) => ({ name: e.name, time: ns(e.time_unix_nano), attributes: attrsOf(e.attributes) })),
      attributes: {}, children: [], depth: 0,
    };
    for (const [k, v] of Object.entries(attrs)) {
      if (k !== 'mlflow.spanInputs' && k !== 'mlflow.spanOutputs') span.attributes[k] = v;
    }
    return span;
  }
  /** The spans as a forest (children by start time); every span gets its depth. */
  function buildTree(spans) {
    const byId = new Map(spans.map((s) => [s.id, s]));
    const roots = [];
    for (const s of spans) {
      const p = s.parent && byId.get(s.parent);
      if (p && p !== s) p.children.push(s); else roots.push(s);
    }
    const order = (a, b) => (a.start || 0) - (b.start || 0);
    const walk = (list, d) => { list.sort(order); for (const s of list) { s.depth = d; walk(s.children, d + 1); } };
    walk(roots, 0);
    return roots;
  }
  function jsonBlock(v, testid) {
    const text = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
    return h('pre', { class: 'tr-json', 'data-testid': testid }, text === undefined ? 'null' : text);
  }

  // ---------------------------------------------------------------- the list

  const COLS = [
    { id: 'request', label: 'Request' },
    { id: 'name', label: 'Name' },
    { id: 'time', label: 'Time', order: 'timestamp_ms' },
    { id: 'latency', label: 'Latency', order: 'execution_time_ms', num: true },
    { id: 'status', label: 'Status', order: 'status' },
    { id: 'tokens', label: 'Tokens', num: true },
  ];

  pages['experiment-traces'] = function () {
    const expId = main.dataset.experimentId;
    const params = new URLSearchParams(location.search);
    const state = {
      filter: params.get('filter') || '', order: params.get('order') || '',
      traces: null, error: null, filterError: null, tokens: [null], pageIndex: 0, next: null,
    };
    const title = h('h1', { 'data-testid': 'experiment-name' }, 'Experiment ' + expId);
    const filterInput = h('input', {
      type: 'search', value: state.filter, 'data-testid': 'traces-filter', spellcheck: 'false',
      placeholder: "trace.status = 'ERROR' and trace.execution_time_ms > 500",
      onkeydown: (e) => { if (e.key === 'Enter') applyFilter(); },
    });
    const filterError = h('div', { class: 'filter-error', 'data-testid': 'traces-filter-error', hidden: true });
    const count = h('span', { class: 'count', 'data-testid': 'trace-count' });
    const body = h('div', { class: 'card flush' });
    const prev = h('button', { type: 'button', class: 'btn', 'data-testid': 'traces-prev', disabled: true, onclick: () => go(state.pageIndex - 1) }, '← Previous');
    const next = h('button', { type: 'button', class: 'btn', 'data-testid': 'traces-next', disabled: true, onclick: () => go(state.pageIndex + 1) }, 'Next →');
    const pageNo = h('span', { class: 'count', 'data-testid': 'traces-page' });
    const expLink = '/experiments/' + encodeURIComponent(expId);
    replace(main,
      h('div', { class: 'crumbs' }, h('a', { href: '/experiments' }, 'Experiments'), ' / '),
      h('header', { class: 'page-head' }, title, h('span', { class: 'sub mono' }, 'ID ' + expId)),
      h('nav', { class: 'tabs', 'data-testid': 'experiment-tabs' },
        h('a', { href: expLink, 'data-testid': 'runs-tab' }, 'Runs'),
        h('a', { class: 'on', href: expLink + '/traces', 'data-testid': 'traces-tab', 'aria-current': 'page' }, 'Traces')),
      h('div', { class: 'toolbar' },
        h('div', { class: 'filter' }, filterInput, filterError,
          h('div', { class: 'filter-hint' }, 'MLflow trace search syntax: ',
            h('code', null, "trace.status = 'OK' and span.name = 'llm' and tags.env = 'prod' and feedback.correct = 'true'"))),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'traces-search', onclick: applyFilter }, 'Search'),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'traces-clear', onclick: () => { filterInput.value = ''; applyFilter(); } }, 'Clear'),
        count),
      body,
      h('div', { class: 'tr-pager' }, prev, pageNo, next));

    function syncUrl() {
      const u = new URLSearchParams();
      if (state.filter) u.set('filter', state.filter);
      if (state.order) u.set('order', state.order);
      const s = u.toString();
      history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
    }
    function applyFilter() {
      state.filter = filterInput.value.trim();
      state.tokens = [null]; state.pageIndex = 0;
      syncUrl();
      load();
    }
    function go(i) {
      if (i < 0 || i >= state.tokens.length) return;
      state.pageIndex = i;
      load();
    }
    function sortBy(col) {
      if (!col.order) return;
      const [key, dir] = state.order.split(' ');
      state.order = key === col.order ? (dir === 'DESC' ? col.order + ' ASC' : '') : col.order + ' DESC';
      state.tokens = [null]; state.pageIndex = 0;
      syncUrl();
      load();
    }
    function render() {
      filterError.hidden = !state.filterError;
      filterError.textContent = state.filterError ? state.filterError.message : '';
      filterInput.classList.toggle('invalid', !!state.filterError);
      prev.disabled = state.pageIndex === 0;
      next.disabled = !state.next;
      pageNo.textContent = state.traces && (state.pageIndex > 0 || state.next) ? 'Page ' + (state.pageIndex + 1) : '';
      if (state.error) return replace(body, errorBox(state.error));
      if (!state.traces) return replace(body, h('div', { class: 'empty' }, 'Loading…'));
      count.textContent = state.traces.length + (state.next ? '+' : '') + ' traces' + (state.pageIndex ? ' on this page' : '');
      if (!state.traces.length) {
        return replace(body, h('div', { class: 'empty', 'data-testid': 'traces-empty' },
          state.filterError ? 'Fix the filter above to see traces.' : state.filter ? 'No trace matches this filter.' : 'No traces yet. Decorate a function with @mlflow.trace, or export OpenTelemetry spans to /v1/traces with the header x-mlflow-experiment-id: ' + expId + '.'));
      }
      const [okey, odir] = state.order.split(' ');
      const head = COLS.map((c) => h('th', {
        class: (c.num ? 'num ' : '') + (c.order ? 'sortable' : ''), 'data-testid': 'col-' + c.id,
        onclick: c.order ? () => sortBy(c) : null,
      }, c.label, c.order && okey === c.order ? h('span', { class: 'arrow' }, odir === 'ASC' ? '↑' : '↓') : null));
      const rows = state.traces.map((t) => {
        const href = '/traces/' + encodeURIComponent(t.trace_id);
        const ms = timeMs(t.request_time);
        const name = (t.tags || {})['mlflow.traceName'] || '';
        return h('tr', { 'data-testid': 'trace-row', 'data-trace-id': t.trace_id, 'data-state': t.state },
          h('td', { class: 'fill' }, h('a', { href, 'data-testid': 'trace-link', class: 'tok mono', title: t.request_preview || t.trace_id }, t.request_preview || t.trace_id)),
          h('td', null, tok(name, { class: 'tok tr-name' })),
          h('td', { title: fmtDate(ms) }, fmtAgo(ms)),
          h('td', { class: 'num', 'data-testid': 'trace-latency' }, fmtMs(durMs(t.execution_duration))),
          h('td', null, stateBadge(t.state)),
          h('td', { class: 'num' }, tokensCell(traceTokens(t))));
      });
      replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'traces-table' },
        h('thead', null, h('tr', null, head)), h('tbody', null, rows))));
    }
    async function load() {
      const body = { locations: [{ type: 'MLFLOW_EXPERIMENT', mlflow_experiment: { experiment_id: expId } }], max_results: PAGE_SIZE };
      if (state.filter) body.filter = state.filter;
      if (state.order) body.order_by = [state.order];
      const token = state.tokens[state.pageIndex];
      if (token) body.page_token = token;
      try {
        const res = await api3.post('traces/search', body);
        state.traces = res.traces || [];
        state.next = res.next_page_token || null;
        state.tokens.length = state.pageIndex + 1;
        if (state.next) state.tokens.push(state.next);
        state.error = null; state.filterError = null;
      } catch (e) {
        if (e.status === 400 && state.filter) { state.filterError = e; state.traces = []; state.next = null; }
        else state.error = e;
      }
      render();
    }
    (async () => {
      try {
        const r = await S.api.get('experiments/get', { experiment_id: expId });
        const name = ((r.experiment || {}).name) || ('Experiment ' + expId);
        title.textContent = name;
        document.title = 'Traces · ' + name + ' · Atelier Studio';
      } catch (e) {
        if (isNotFound(e)) {
          notFound({ crumbs: [['Experiments', '/experiments']], title: 'Experiment not found', error: e, testid: 'experiment-not-found', back: ['/experiments', 'Experiments'] });
          return;
        }
      }
      render();
      await load();
      // a filter the server refused is not asked again until it is changed
      live(() => (state.filterError ? null : load()));
    })();
  };

  // ---------------------------------------------------------------- one trace

  const ROW_H = 26;

  pages.trace = function () {
    const traceId = main.dataset.traceId;
    const state = { trace: null, spans: [], roots: [], byId: new Map(), selected: null, collapsed: new Set(), error: null, sig: '' };
    const head = h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'trace-title' }, 'Trace'), h('span', { class: 'sub mono' }, traceId));
    const crumbs = h('div', { class: 'crumbs' }, h('a', { href: '/experiments' }, 'Experiments'), ' / ');
    const facts = h('div', { class: 'facts', 'data-testid': 'trace-facts' });
    const treeBox = h('div', { class: 'tr-tree', 'data-testid': 'span-tree', role: 'tree' });
    const timeline = h('div', { class: 'tr-timeline', 'data-testid': 'timeline' });
    const detail = h('section', { class: 'card', 'data-testid': 'span-detail' });
    const assessCard = h('section', { class: 'card', 'data-testid': 'assessments' });
    const msg = h('div');
    replace(main, crumbs, head, msg,
      h('section', { class: 'card' }, facts),
      h('section', { class: 'card' },
        h('div', { class: 'tr-split-head' }, h('h2', null, 'Spans'), h('span', { class: 'muted', 'data-testid': 'span-count' })),
        h('div', { class: 'tr-split' }, treeBox, timeline)),
      h('div', { class: 'tr-bottom' }, detail, assessCard));

    function visible() {
      const out = [];
      const walk = (list) => { for (const s of list) { out.push(s); if (!state.collapsed.has(s.id)) walk(s.children); } };
      walk(state.roots);
      return out;
    }
    function select(id) { state.selected = id; renderTree(); renderTimeline(); renderDetail(); }
    function toggle(id) {
      if (state.collapsed.has(id)) state.collapsed.delete(id); else state.collapsed.add(id);
      renderTree(); renderTimeline();
    }
    const spanMs = (s) => (s.start !== null && s.end !== null ? (s.end - s.start) / 1e6 : null);

    function renderFacts() {
      const t = state.trace.trace_info;
      const ms = timeMs(t.request_time);
      const name = (t.tags || {})['mlflow.traceName'] || (state.roots[0] && state.roots[0].name) || 'Trace';
      head.firstChild.textContent = name;
      document.title = name + ' · Trace · Atelier Studio';
      const expId = ((t.trace_location || {}).mlflow_experiment || {}).experiment_id;
      const run = (t.trace_metadata || {})['mlflow.sourceRun'];
      replace(crumbs, h('a', { href: '/experiments' }, 'Experiments'), ' / ',
        expId ? [h('a', { href: '/experiments/' + encodeURIComponent(expId) + '/traces', 'data-testid': 'back-to-traces' }, 'Experiment ' + expId + ' traces'), ' / '] : null);
      const u = traceTokens(t);
      const fact = (label, value, testid) => h('div', null, h('span', null, label), h('b', { 'data-testid': testid }, value));
      replace(facts,
        fact('Status', stateBadge(t.state), 'fact-status'),
        fact('Latency', fmtMs(durMs(t.execution_duration)), 'fact-latency'),
        fact('Started', ms ? fmtDate(ms) : '—', 'fact-time'),
        fact('Tokens', u ? h('span', { title: 'input · output' }, fmtInt(u.total_tokens ?? 0), h('span', { class: 'muted' }, ` (${fmtInt(u.input_tokens ?? 0)} in · ${fmtInt(u.output_tokens ?? 0)} out)`)) : '—', 'fact-tokens'),
        fact('Spans', String(state.spans.length), 'fact-spans'),
        fact('Run', run ? h('a', { href: '/runs/' + encodeURIComponent(run), class: 'tok mono' }, run.slice(0, 12)) : '—', 'fact-run'),
        fact('Request', tok(t.request_preview || '—', { class: 'tok mono' }), 'fact-request'),
        fact('Response', tok(t.response_preview || '—', { class: 'tok mono' }), 'fact-response'));
    }

    function renderTree() {
      const rows = visible().map((s) => {
        const has = s.children.length > 0;
        const open = !state.collapsed.has(s.id);
        return h('div', {
          class: 'tr-row' + (state.selected === s.id ? ' on' : '') + (s.status === 'ERROR' ? ' err' : ''), role: 'treeitem',
          'data-testid': 'span-row', 'data-span-id': s.id, 'data-span-name': s.name, 'data-depth': String(s.depth),
          'aria-expanded': has ? String(open) : null, 'aria-selected': String(state.selected === s.id),
          style: 'padding-left:' + (6 + s.depth * 16) + 'px', onclick: () => select(s.id),
        },
        has ? h('button', { type: 'button', class: 'tr-toggle', 'data-testid': 'span-toggle', 'aria-label': open ? 'Collapse' : 'Expand', onclick: (e) => { e.stopPropagation(); toggle(s.id); } }, open ? '▾' : '▸')
          : h('span', { class: 'tr-toggle' }),
        h('span', { class: 'tok tr-span-name', title: s.name }, s.name),
        s.type ? h('span', { class: 'tr-type' }, String(s.type)) : null,
        h('span', { class: 'tr-dur', 'data-testid': 'span-duration' }, fmtMs(spanMs(s))));
      });
      replace(treeBox, rows);
    }

    function renderTimeline() {
      const rows = visible();
      const all = state.spans.filter((s) => s.start !== null);
      const w = Math.max(200, timeline.clientWidth || 500);
      const axisH = 22;
      const height = axisH + rows.length * ROW_H + 4;
      const svg = C.svgEl('svg', { width: w, height, class: 'tr-svg', 'data-testid': 'timeline-svg', role: 'img', 'aria-label': 'Span timeline' });
      if (!all.length) { replace(timeline, svg); return; }
      const t0 = Math.min(...all.map((s) => s.start));
      const t1 = Math.max(...all.map((s) => (s.end !== null ? s.end : s.start)));
      const spanTotal = Math.max((t1 - t0) / 1e6, 0.001);
      const pad = 8, right = 60;
      const x = (tns) => pad + ((tns - t0) / 1e6 / spanTotal) * (w - pad - right);
      const ticks = C.linearTicks(0, spanTotal, Math.max(2, Math.floor(w / 110)));
      const step = ticks.length > 1 ? ticks[1] - ticks[0] : spanTotal;
      const ax = C.svgEl('g', { class: 'tr-axis' }, svg);
      for (const v of ticks) {
        const px = pad + (v / spanTotal) * (w - pad - right);
        C.svgEl('line', { x1: px, x2: px, y1: axisH - 4, y2: height, class: 'tr-grid' }, ax);
        const label = C.svgEl('text', { x: px, y: 12, 'text-anchor': v === 0 ? 'start' : 'middle' }, ax);
        label.textContent = step >= 1000 ? C.fmtTick(v / 1000, step / 1000) + ' s' : C.fmtTick(v, step) + ' ms';
      }
      rows.forEach((s, i) => {
        const y = axisH + i * ROW_H + 5;
        const x0 = x(s.start !== null ? s.start : t0);
        const x1 = x(s.end !== null ? s.end : t1);
        const g = C.svgEl('g', { class: 'tr-bar' + (state.selected === s.id ? ' on' : '') + (s.status === 'ERROR' ? ' err' : ''), 'data-testid': 'timeline-bar', 'data-span-id': s.id }, svg);
        C.svgEl('rect', { x: x0, y, width: Math.max(2, x1 - x0), height: ROW_H - 10, rx: 3, fill: s.status === 'ERROR' ? '#e03131' : C.PALETTE[Math.min(s.depth, C.PALETTE.length - 1)] }, g);
        const title = C.svgEl('title', {}, g);
        title.textContent = `${s.name}: ${fmtMs(spanMs(s))}, starts at ${fmtMs(((s.start || t0) - t0) / 1e6)}`;
        const lbl = C.svgEl('text', { x: Math.min(x1 + 4, w - right + 4), y: y + ROW_H - 14, class: 'tr-bar-label' }, g);
        lbl.textContent = fmtMs(spanMs(s));
        g.addEventListener('click', () => select(s.id));
      });
      replace(timeline, svg);
    }

    function kvTable(obj, testid) {
      const entries = Object.entries(obj || {});
      if (!entries.length) return h('div', { class: 'muted', 'data-testid': testid }, 'None');
      return h('table', { class: 'data kv', 'data-testid': testid }, h('tbody', null, entries.map(([k, v]) =>
        h('tr', null, h('td', null, tok(k)), h('td', null, v !== null && typeof v === 'object' ? jsonBlock(v) : h('span', { class: 'mono tr-val' }, String(v)))))));
    }
    function renderDetail() {
      const s = state.byId.get(state.selected);
      if (!s) return replace(detail, h('h2', null, 'Span'), h('div', { class: 'muted' }, 'Select a span.'));
      replace(detail,
        h('div', { class: 'tr-detail-head' },
          h('h2', { 'data-testid': 'span-name' }, s.name),
          s.type ? h('span', { class: 'tr-type' }, String(s.type)) : null,
          h('span', { class: 'badge ' + (s.status === 'ERROR' ? 'tr-error' : s.status === 'OK' ? 'tr-ok' : ''), 'data-testid': 'span-status' }, s.status),
          h('span', { class: 'muted' }, fmtMs(spanMs(s)))),
        s.statusMessage ? h('div', { class: 'error-box', 'data-testid': 'span-status-message' }, s.statusMessage) : null,
        s.usage ? h('div', { class: 'muted', 'data-testid': 'span-tokens' }, `Tokens: ${s.usage.input_tokens ?? '—'} in · ${s.usage.output_tokens ?? '—'} out · ${s.usage.total_tokens ?? '—'} total`) : null,
        h('h3', null, 'Inputs'), s.inputs === undefined ? h('div', { class: 'muted', 'data-testid': 'span-inputs' }, 'None') : jsonBlock(s.inputs, 'span-inputs'),
        h('h3', null, 'Outputs'), s.outputs === undefined ? h('div', { class: 'muted', 'data-testid': 'span-outputs' }, 'None') : jsonBlock(s.outputs, 'span-outputs'),
        h('h3', null, 'Attributes'), kvTable(s.attributes, 'span-attributes'),
        h('h3', null, 'Events'),
        s.events.length ? h('div', { 'data-testid': 'span-events' }, s.events.map((e) => h('div', { class: 'tr-event', 'data-testid': 'span-event' },
          h('div', null, h('b', null, e.name || '(event)'), ' ', h('span', { class: 'muted' }, e.time && s.start ? '+' + fmtMs((e.time - s.start) / 1e6) : '')),
          Object.keys(e.attributes).length ? jsonBlock(e.attributes) : null)))
          : h('div', { class: 'muted', 'data-testid': 'span-events' }, 'None'));
    }

    function assessmentValue(a) {
      if (a.feedback) return a.feedback.error ? 'error: ' + (a.feedback.error.error_message || a.feedback.error.error_code || '') : a.feedback.value;
      if (a.expectation) return a.expectation.value !== undefined ? a.expectation.value : parseJson(((a.expectation.serialized_value || {}).value));
      return null;
    }
    function renderAssessments() {
      const list = (state.trace.trace_info.assessments || []).filter((a) => a.valid !== false);
      if (!list.length) return replace(assessCard, h('h2', null, 'Assessments'), h('div', { class: 'muted', 'data-testid': 'assessments-empty' }, 'No feedback or expectations yet. Log them with mlflow.log_feedback or mlflow.log_expectation.'));
      replace(assessCard, h('h2', null, 'Assessments'),
        h('table', { class: 'data kv tr-assess' }, h('tbody', null, list.map((a) => {
          const v = assessmentValue(a);
          const src = a.source || {};
          return h('tr', { 'data-testid': 'assessment', 'data-name': a.assessment_name },
            h('td', null, tok(a.assessment_name), h('div', { class: 'muted tr-kind' }, a.feedback ? 'feedback' : 'expectation')),
            h('td', null,
              v !== null && typeof v === 'object' ? jsonBlock(v, 'assessment-value') : h('span', { class: 'mono', 'data-testid': 'assessment-value' }, String(v)),
              a.rationale ? h('div', { class: 'tr-rationale', 'data-testid': 'assessment-rationale' }, a.rationale) : null,
              h('div', { class: 'muted tr-kind' }, [src.source_type, src.source_id].filter(Boolean).join(' · '))));
        }))));
    }

    async function load() {
      let res;
      try {
        res = await api3.get('traces/get', { trace_id: traceId });
      } catch (e) {
        if (isNotFound(e)) {
          notFound({ crumbs: [['Experiments', '/experiments']], title: 'Trace not found', error: e, testid: 'trace-not-found', back: ['/experiments', 'Experiments'] });
          return 'gone';
        }
        replace(msg, errorBox(e));
        return;
      }
      replace(msg);
      const trace = res.trace || {};
      const sig = JSON.stringify(trace);
      if (sig === state.sig) return;
      state.sig = sig;
      state.trace = trace;
      state.spans = (trace.spans || []).map(toSpan);
      state.byId = new Map(state.spans.map((s) => [s.id, s]));
      state.roots = buildTree(state.spans);
      if (!state.byId.has(state.selected)) state.selected = state.roots.length ? state.roots[0].id : null;
      main.querySelector('[data-testid=span-count]').textContent = state.spans.length + ' spans';
      renderFacts(); renderTree(); renderTimeline(); renderDetail(); renderAssessments();
    }
    if (typeof ResizeObserver === 'function') {
      let lastW = 0;
      new ResizeObserver(() => { const w = timeline.clientWidth; if (w !== lastW && state.trace) { lastW = w; renderTimeline(); } }).observe(timeline);
    }
    load().then((r) => { if (r !== 'gone') live(load); });
  };
})();
