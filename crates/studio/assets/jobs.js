// Atelier Studio: the Jobs pages (registered into window.AtelierStudio.pages).
// /jobs lists every job on the server; /jobs/<id> shows one: for processing and training jobs the
// status timeline, live logs, the run's training and system metrics (with Debugger rule marks),
// the rules, inputs and outputs, "Register model" for a trained model and a "Run again with changes"
// form; /jobs/new starts a processing or training job from the user's files; tuning jobs their trials;
// monitoring executions link back to their schedule. Autopilot jobs keep their own page
// (autopilot.js). Data: /api/atelier/jobs (crates `jobs`, `userjobs`) and the MLflow API for the
// job's run; pages stay live through the Studio's change stream, logs are followed by polling.
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, append, request, api, num, errorBox, fmtAgo, fmtDate, fmtDur, fmtBytes, fmtNum, live, main, pages, C, ARTIFACTS, encodePath, metricsOf } = S;
  const { svgEl, niceStep } = window.AtelierCharts;
  const JOBS = '/api/atelier/jobs';
  const enc = encodeURIComponent;

  const KINDS = ['processing', 'training', 'tuning', 'automl', 'batch-transform', 'monitoring-execution', 'monitoring-baseline'];
  const KIND_LABEL = {
    processing: 'Processing', training: 'Training', tuning: 'Tuning', automl: 'Autopilot', 'batch-transform': 'Batch transform',
    'monitoring-execution': 'Monitoring execution', 'monitoring-baseline': 'Monitoring baseline',
  };
  const kindLabel = (k) => KIND_LABEL[k] || k || '—';
  const isActive = (j) => j.status === 'queued' || j.status === 'running';
  const isUserJob = (j) => j.kind === 'processing' || j.kind === 'training';

  // ---------------------------------------------------------------- formatting

  const pad = (n, w) => String(n).padStart(w || 2, '0');
  function clock(ms, millis) {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + (millis ? '.' + pad(d.getMilliseconds(), 3) : '');
  }
  function fmtSpan(ms) {
    if (!(ms >= 0)) return '—';
    if (ms < 1000) return Math.round(ms) + ' ms';
    return fmtDur(1, 1 + ms);
  }
  /** A job's duration; running jobs get a span the 1 s ticker keeps current. */
  function durationNode(job, testid) {
    if (!job.started_ms) return h('span', { class: 'muted', 'data-testid': testid }, '—');
    if (job.ended_ms) return h('span', { 'data-testid': testid }, fmtDur(job.started_ms, job.ended_ms));
    return h('span', { 'data-live-start': String(job.started_ms), 'data-testid': testid }, fmtDur(job.started_ms));
  }
  let ticker = null;
  function startTicker() {
    if (ticker) return;
    ticker = setInterval(() => {
      for (const e of main.querySelectorAll('[data-live-start]')) e.textContent = fmtDur(Number(e.dataset.liveStart));
    }, 1000);
  }
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  /** An argument as a POSIX shell would need it written. */
  function shellQuote(a) { return /^[\w@%+=:,./-]+$/.test(a) ? a : "'" + String(a).replace(/'/g, "'\\''") + "'"; }

  // SageMaker's primary status as a badge (the CSS classes are the run statuses' colours).
  const PRIMARY_CLASS = { InProgress: 'RUNNING', Completed: 'FINISHED', Failed: 'FAILED', Stopping: 'SCHEDULED', Stopped: 'KILLED' };
  function primaryOf(j) {
    if (j.primary_status) return j.primary_status;
    return { queued: 'InProgress', running: j.cancel_requested ? 'Stopping' : 'InProgress', succeeded: 'Completed', failed: 'Failed', cancelled: 'Stopped' }[j.status] || 'InProgress';
  }
  function primaryBadge(j, testid) {
    const p = primaryOf(j);
    return h('span', { class: 'badge ' + (PRIMARY_CLASS[p] || ''), 'data-testid': testid || 'job-status', 'data-status': p, 'data-job-status': j.status, title: 'job ' + j.status }, p);
  }
  function lastSecondary(j) {
    const ev = j.secondary_statuses || [];
    return ev.length ? ev[ev.length - 1] : null;
  }
  /** Where a job is shown: Autopilot jobs on their own page, the others here. */
  function jobHref(j) { return (j.kind === 'automl' ? '/autopilot/' : '/jobs/') + enc(j.id); }

  // Colours of the secondary statuses on the timeline.
  const PHASE_COLOR = {
    Queued: '#98a2b3', Starting: '#7d8aa3', Pending: '#98a2b3', Downloading: '#0c8599', Uploading: '#0b7285',
    Training: '#3b5bdb', Processing: '#3b5bdb', Tuning: '#3b5bdb', Completed: '#2b8a3e', Failed: '#c92a2a',
    MaxRuntimeExceeded: '#c92a2a', Stopping: '#e67700', Stopped: '#d9480f', RuleIssuesFound: '#f08c00',
    Retrying: '#7048e8', Reattached: '#7048e8', Reattaching: '#7048e8', Interrupted: '#c2255c',
  };
  const TERMINAL_EVENTS = new Set(['Completed', 'Failed', 'Stopped']);
  /** Statuses that mark a moment (a rule fired, a worker re-attached), not a phase of the job. */
  const MOMENTS = new Set(['RuleIssuesFound', 'Reattached']);
  const phaseColor = (s) => PHASE_COLOR[s] || '#5c7cfa';

  /** A source of a job's input as a link: datasets, runs, models. */
  function sourceLink(src) {
    src = String(src || '');
    let m;
    // a token: one line, cut with an ellipsis when its cell is narrower (the title has it whole)
    if ((m = /^runs:\/([^/]+)(?:\/(.*))?$/.exec(src))) return h('a', { href: '/runs/' + enc(m[1]), class: 'tok', title: src, 'data-testid': 'source-link' }, src);
    if ((m = /^models:\/([^/@]+)@(.+)$/.exec(src))) return h('a', { href: '/models/' + enc(m[1]), class: 'tok', title: src, 'data-testid': 'source-link' }, src);
    if ((m = /^models:\/(.+)\/(\d+)$/.exec(src))) return h('a', { href: '/models/' + enc(m[1]) + '/versions/' + enc(m[2]), class: 'tok', title: src, 'data-testid': 'source-link' }, src);
    if ((m = /^(?:dataset:|datasets\/)(.+)$/.exec(src))) return h('a', { href: S.inProject(ARTIFACTS + '/' + S.projectFolder('datasets/' + enc(m[1]))), download: m[1], class: 'tok', 'data-testid': 'source-link', title: 'Download the dataset ' + src }, src);
    return h('span', { class: 'mono tok', title: src }, src);
  }

  async function stopJob(id, btn, onError) {
    btn.disabled = true;
    btn.textContent = 'Stopping…';
    try { await request('POST', JOBS + '/' + enc(id) + '/cancel', {}); } catch (e) { btn.disabled = false; btn.textContent = 'Stop'; onError(e); }
  }

  // ---------------------------------------------------------------- charts

  function tooltip(container) {
    let tip = container.querySelector(':scope > .tooltip');
    if (!tip) { tip = h('div', { class: 'tooltip', 'data-testid': 'chart-tooltip' }); tip.hidden = true; container.appendChild(tip); }
    return tip;
  }
  function showTip(container, tip, head, rows, px, py) {
    replace(tip, h('div', { class: 'head' }, head), rows.map(([color, label, value]) =>
      h('div', { class: 'row' }, h('span', { class: 'sw', style: color ? 'background:' + color : 'visibility:hidden' }), h('span', null, label), h('span', { class: 'val' }, value))));
    tip.hidden = false;
    const w = container.clientWidth, tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = px + 14;
    if (left + tw > w) left = px - tw - 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, Math.min(py - th / 2, container.clientHeight - th)) + 'px';
  }
  /** Ticks of a step or relative-time axis: [[value, label]], labels distinct (charts.js's helpers). */
  function xTicks(kind, a, b, count) {
    if (kind === 'relative') return C.spanTicks(a, b, count);
    return C.linearTicks(a, b, count, kind === 'step').map((v) => [v, fmtNum(v)]);
  }
  /** At most ~2 points per pixel column (the column's min and max, in x order). */
  function decimate(pts, sx, width) {
    if (pts.length <= width * 2) return pts;
    const out = [];
    let col = null, lo = null, hi = null;
    const flush = () => { if (lo) { if (lo === hi) out.push(lo); else if (lo.x <= hi.x) out.push(lo, hi); else out.push(hi, lo); } };
    for (const p of pts) {
      const c = Math.floor(sx(p.x));
      if (c !== col) { flush(); col = c; lo = hi = p; continue; }
      if (p.y < lo.y) lo = p;
      if (p.y > hi.y) hi = p;
    }
    flush();
    return out;
  }

  /**
   * A line chart with marks (Debugger rules that fired), drawn with charts.js's svgEl / niceStep.
   * opts: { series: [{ label, color, points: [{ x, y }] }], xKind: 'step'|'relative', marks:
   * [{ x, label, message, color }], zero (y axis from 0 when all values are ≥ 0), unit, empty }.
   * The container gets data-points (finite points drawn) and data-marks.
   */
  function markChart(container, opts) {
    const M = { l: 50, r: 14, t: 18, b: 24 };
    container.classList.add('chart');
    let o = opts, lastW = container.clientWidth;
    function draw() {
      const nm = (o.marks || []).length;
      M.t = nm ? 18 + 12 * (Math.min(3, nm) - 1) : 10;
      const W = Math.max(200, container.clientWidth || 400), H = Math.max(120, container.clientHeight || 200);
      const old = container.querySelector(':scope > svg');
      if (old) old.remove();
      const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
      container.insertBefore(svg, container.firstChild);
      const series = (o.series || []).map((s) => ({ s, pts: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x) }));
      const total = series.reduce((n, s) => n + s.pts.length, 0);
      const marks = (o.marks || []).filter((m) => Number.isFinite(m.x));
      container.dataset.points = String(total);
      container.dataset.marks = String(marks.length);
      if (!total) {
        svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = o.empty || 'No points yet';
        return;
      }
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (const { pts } of series) for (const p of pts) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y); }
      for (const m of marks) { x0 = Math.min(x0, m.x); x1 = Math.max(x1, m.x); }
      // one x: the point in the middle of an axis around it, with one tick at it (not a 0–1 axis)
      const oneX = x1 === x0;
      if (oneX) { const d = o.xKind === 'relative' ? 1000 : 1; x0 -= d; x1 += d; }
      container.dataset.single = String(total === 1);
      if (o.zero && y0 >= 0) y0 = 0;
      if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; if (!(o.zero && y0 === 0)) y0 -= d; y1 += d; } else { const p = (y1 - y0) * 0.06; if (!(o.zero && y0 === 0)) y0 -= p; y1 += p; }
      const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
      const sy = (y) => H - M.b - ((y - y0) / (y1 - y0)) * (H - M.t - M.b);
      const grid = svgEl('g', { class: 'grid' }, svg), axis = svgEl('g', { class: 'axis' }, svg);
      const ystep = niceStep(y1 - y0, Math.max(2, Math.floor((H - M.t - M.b) / 45)));
      for (let v = Math.ceil(y0 / ystep) * ystep; v <= y1 + ystep * 1e-9; v += ystep) {
        const vv = Math.abs(v) < ystep * 1e-9 ? 0 : v;
        svgEl('line', { x1: M.l, x2: W - M.r, y1: sy(vv), y2: sy(vv) }, grid);
        svgEl('text', { x: M.l - 6, y: sy(vv) + 3.5, 'text-anchor': 'end' }, axis).textContent = fmtNum(vv);
      }
      const xt = oneX ? xTicks(o.xKind, (x0 + x1) / 2, (x0 + x1) / 2, 1) : xTicks(o.xKind, x0, x1, Math.max(2, Math.floor((W - M.l) / 85)));
      for (const [v, label] of xt) {
        svgEl('text', { x: sx(v), y: H - M.b + 15, 'text-anchor': 'middle' }, axis).textContent = label;
      }
      svgEl('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
      for (const { s, pts } of series) {
        let d = '';
        decimate(pts, sx, W).forEach((p, i) => { d += (i ? 'L' : 'M') + sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1); });
        svgEl('path', { d, class: 'series', stroke: s.color, 'data-testid': 'series', 'data-label': s.label, 'data-points': String(pts.length) }, svg);
        if (pts.length === 1) svgEl('circle', { cx: sx(pts[0].x), cy: sy(pts[0].y), r: total === 1 ? 4.5 : 3, fill: s.color }, svg);
      }
      // a single value: shown as a number beside its marker
      if (total === 1) {
        const p = series.find((s) => s.pts.length).pts[0];
        const px = sx(p.x), right = px < W - M.r - 90;
        svgEl('text', { x: px + (right ? 10 : -10), y: sy(p.y) - 8, 'text-anchor': right ? 'start' : 'end', class: 'point-value', 'data-testid': 'point-value' }, svg).textContent = fmtNum(p.y);
      }
      // rule marks: a dashed line at the trigger's x, a diamond on the curve and the rule's label
      // (labels that would collide go on the next row above the plot)
      const mg = svgEl('g', { class: 'jb-marks' }, svg);
      const rowsEnd = [];
      marks.slice().sort((a, b) => a.x - b.x).forEach((m) => {
        const cx = sx(m.x);
        const g = svgEl('g', { 'data-testid': 'rule-mark', 'data-rule': m.label, 'data-x': String(m.x), class: 'jb-mark' }, mg);
        svgEl('title', {}, g).textContent = m.label + (m.message ? ': ' + m.message : '');
        svgEl('line', { x1: cx, x2: cx, y1: M.t - 2, y2: H - M.b, stroke: m.color, class: 'jb-mark-line' }, g);
        const target = series.find((s) => s.s.key === m.key) || series[0];
        let cy = M.t;
        if (target && target.pts.length) {
          let best = target.pts[0];
          for (const p of target.pts) if (Math.abs(p.x - m.x) < Math.abs(best.x - m.x)) best = p;
          cy = sy(best.y);
        }
        svgEl('path', { d: `M${cx},${cy - 6}L${cx + 6},${cy}L${cx},${cy + 6}L${cx - 6},${cy}Z`, fill: m.color, stroke: '#fff', 'stroke-width': 1.5 }, g);
        const tw = m.label.length * 6 + 4;
        const right = cx + 4 + tw > W;
        const a = right ? cx - 4 - tw : cx + 4, b = a + tw;
        let row = rowsEnd.findIndex((end) => a > end + 4);
        if (row < 0) { row = rowsEnd.length; rowsEnd.push(-Infinity); }
        rowsEnd[row] = Math.max(rowsEnd[row], b);
        if (row > 2) return; // three rows at most; the title still names it
        svgEl('text', { x: right ? cx - 4 : cx + 4, y: M.t - 6 - row * 12, 'text-anchor': right ? 'end' : 'start', class: 'jb-mark-label', fill: m.color }, g).textContent = m.label;
      });
      // hover: nearest point of each series, and the marks there
      const hover = svgEl('g', { visibility: 'hidden' }, svg);
      const guide = svgEl('line', { class: 'hover-line', y1: M.t, y2: H - M.b }, hover);
      const dots = series.map(({ s }) => svgEl('circle', { r: 3.5, fill: s.color, stroke: '#fff', 'stroke-width': 1.5 }, hover));
      const overlay = svgEl('rect', { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: 'transparent', 'data-testid': 'chart-overlay' }, svg);
      const tip = tooltip(container);
      const nearest = (pts, x) => {
        let lo = 0, hi = pts.length - 1;
        if (hi < 0) return null;
        while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (pts[mid].x < x) lo = mid; else hi = mid; }
        return Math.abs(pts[lo].x - x) <= Math.abs(pts[hi].x - x) ? pts[lo] : pts[hi];
      };
      overlay.addEventListener('mousemove', (ev) => {
        const r = svg.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W;
        const x = x0 + ((px - M.l) / (W - M.l - M.r)) * (x1 - x0);
        const hits = series.map(({ pts }) => nearest(pts, x));
        let best = null;
        for (const p of hits) if (p && (!best || Math.abs(p.x - x) < Math.abs(best.x - x))) best = p;
        if (!best) return;
        hover.setAttribute('visibility', 'visible');
        guide.setAttribute('x1', sx(best.x));
        guide.setAttribute('x2', sx(best.x));
        const rows = [];
        hits.forEach((p, i) => {
          const show = p && Math.abs(sx(p.x) - sx(best.x)) < 30;
          dots[i].setAttribute('visibility', show ? 'visible' : 'hidden');
          if (!show) return;
          dots[i].setAttribute('cx', sx(p.x));
          dots[i].setAttribute('cy', sy(p.y));
          rows.push([series[i].s.color, series[i].s.label, fmtNum(p.y) + (o.unit ? ' ' + o.unit : '')]);
        });
        for (const m of marks) if (Math.abs(sx(m.x) - sx(best.x)) < 8) rows.push([m.color, m.label, 'fired']);
        const head = o.xKind === 'relative' ? C.fmtDuration(best.x) + ' after the start' : 'step ' + fmtNum(best.x);
        showTip(container, tip, head, rows, ev.clientX - r.left, ev.clientY - r.top);
      });
      overlay.addEventListener('mouseleave', () => { hover.setAttribute('visibility', 'hidden'); tip.hidden = true; });
    }
    draw();
    let ro = null;
    if (typeof ResizeObserver !== 'undefined') {
      ro = new ResizeObserver(() => { const w = container.clientWidth; if (w !== lastW) { lastW = w; draw(); } });
      ro.observe(container);
    }
    return { update(next) { o = Object.assign({}, o, next); draw(); }, destroy() { if (ro) ro.disconnect(); } };
  }

  // ---------------------------------------------------------------- metric histories

  const historyCache = new Map(); // `${run}\0${key}` -> { sig, points: [{ step, ts, y }] }
  let inFlight = 0;
  const waiting = [];
  async function limited(fn) {
    if (inFlight >= 6) await new Promise((r) => waiting.push(r));
    inFlight++;
    try { return await fn(); } finally { inFlight--; const next = waiting.shift(); if (next) next(); }
  }
  const pointOf = (m) => ({ step: Number(m.step) || 0, ts: Number(m.timestamp) || 0, y: num(m.value) });
  /**
   * The history of (run, key), fetched again only when the run's latest value for key changed.
   * `append`: the key's steps only grow (the system metrics), so only the points from the last
   * step on are fetched (get-history-bulk-interval), not the whole history again.
   */
  async function metricHistory(rid, latest, append) {
    const sig = `${latest.step}|${latest.timestamp}|${latest.value}`;
    const k = rid + '\0' + latest.key;
    const hit = historyCache.get(k);
    if (hit && hit.sig === sig) return hit.points;
    const points = await limited(async () => {
      if (append && hit && hit.points.length) {
        const from = hit.points[hit.points.length - 1].step;
        const res = await api.get('metrics/get-history-bulk-interval', { run_ids: [rid], metric_key: latest.key, start_step: from, end_step: Number.MAX_SAFE_INTEGER, max_results: 2500 });
        const fresh = (res.metrics || []).map(pointOf);
        // fewer steps than the answer's cap: nothing was sampled away
        if (new Set(fresh.map((p) => p.step)).size < 2500) {
          fresh.sort((a, b) => a.step - b.step || a.ts - b.ts);
          return hit.points.filter((p) => p.step < from).concat(fresh);
        }
      }
      const out = [];
      let token;
      for (let page = 0; page < 100; page++) {
        const res = await api.get('metrics/get-history', { run_id: rid, metric_key: latest.key, max_results: 25000, page_token: token });
        for (const m of res.metrics || []) out.push(pointOf(m));
        token = res.next_page_token;
        if (!token) break;
      }
      out.sort((a, b) => a.step - b.step || a.ts - b.ts);
      return out;
    });
    historyCache.set(k, { sig, points });
    return points;
  }

  // ---------------------------------------------------------------- Debugger rules

  /** Every rule result, ProfilerReport's children after their parent (with `depth`). */
  function flatRules(list, depth, out) {
    out = out || [];
    for (const r of list || []) {
      if (!r || typeof r !== 'object') continue;
      out.push(Object.assign({}, r, { depth: depth || 0 }));
      if (Array.isArray(r.rules)) flatRules(r.rules, (depth || 0) + 1, out);
    }
    return out;
  }
  const RULE_CLASS = { InProgress: 'RUNNING', IssuesFound: 'ALERT', NoIssuesFound: 'FINISHED', Error: 'NODATA' };
  const TRIGGER_META = new Set(['step', 'timestamp_ms', 'detected_ms', 'metric', 'train_metric', 'val_metric']);
  /** The metric keys a fired rule points at, most specific first. */
  function ruleKeys(r, available) {
    const t = r.trigger || {};
    const named = [t.metric, t.val_metric].filter((k) => typeof k === 'string' && k);
    if (named.length) return named;
    if (typeof t.train_metric === 'string') return [t.train_metric];
    const byValue = Object.keys(t).filter((k) => !TRIGGER_META.has(k) && available.includes(k));
    if (byValue.length) return byValue;
    return ['val_loss', 'loss'].filter((k) => available.includes(k)).slice(0, 1);
  }
  const RULE_COLORS = ['#c92a2a', '#e67700', '#862e9c', '#c2255c', '#0b7285'];

  // ---------------------------------------------------------------- /jobs

  pages.jobs = function () {
    const params = new URLSearchParams(location.search);
    const state = { kind: KINDS.includes(params.get('kind')) ? params.get('kind') : '', q: '', list: null, error: null };
    const kindSel = h('select', { 'data-testid': 'kind-filter', 'aria-label': 'Kind' },
      h('option', { value: '' }, 'All kinds'), KINDS.map((k) => h('option', { value: k }, kindLabel(k))));
    kindSel.value = state.kind;
    const search = h('input', { type: 'search', placeholder: 'Filter by name or id', 'data-testid': 'jobs-search', 'aria-label': 'Filter by name or id' });
    const count = h('span', { class: 'count', 'data-testid': 'jobs-count' });
    const box = h('div', { class: 'card flush' });
    replace(main,
      h('header', { class: 'page-head' }, h('h1', null, 'Jobs'),
        h('span', { class: 'sub' }, 'Every job on this server: processing, training, tuning, Autopilot, batch transform and monitoring')),
      h('div', { class: 'toolbar', style: 'align-items:center' }, kindSel, search, count, h('span', { style: 'flex:1' }),
        h('a', { class: 'btn primary', href: '/jobs/new', 'data-testid': 'new-job', title: 'Run your own processing or training script as a job' }, 'New job')),
      box);
    function detail(j) {
      if (j.status === 'failed' || j.status === 'cancelled') return h('span', { class: j.status === 'failed' ? 'jb-err' : 'muted', title: j.error || '' }, j.error || '');
      const p = j.progress || {}, r = j.result || {};
      if (j.kind === 'tuning') {
        const doc = isActive(j) ? p : r;
        const n = (doc.trials || []).length;
        return h('span', { class: 'muted' }, n ? `${n} trial${n === 1 ? '' : 's'}` + (doc.best && isNum(doc.best.objective) ? ' · best ' + fmtNum(doc.best.objective) : '') : '');
      }
      if (isUserJob(j) && isActive(j)) return h('span', { class: 'mono muted', title: p.last_line || '' }, p.last_line || (lastSecondary(j) || {}).message || '');
      if (j.kind === 'automl') return h('span', { class: 'muted' }, p.phase || '');
      if (j.kind === 'monitoring-execution' && !isActive(j)) return h('span', { class: 'muted' }, r.status ? String(r.status).replace(/_/g, ' ') + (r.violation_count ? ` · ${r.violation_count} violation(s)` : '') : '');
      return h('span', { class: 'muted' }, isActive(j) ? (lastSecondary(j) || {}).status || '' : '');
    }
    function render() {
      if (state.error) return replace(box, errorBox(state.error, 'jobs-error'));
      if (!state.list) return replace(box, h('div', { class: 'loading', style: 'padding:16px' }, 'Loading…'));
      const q = state.q.trim().toLowerCase();
      const rows = state.list.filter((j) => !q || String(j.name || '').toLowerCase().includes(q) || String(j.id).startsWith(q));
      count.textContent = rows.length === state.list.length ? `${rows.length} job${rows.length === 1 ? '' : 's'}` : `${rows.length} of ${state.list.length} jobs`;
      if (!rows.length) {
        return replace(box, h('div', { class: 'empty', 'data-testid': 'jobs-empty' }, state.list.length ? 'No job matches.' :
          state.kind ? `No ${kindLabel(state.kind).toLowerCase()} jobs yet.` : 'No jobs yet. Start one with New job, from Autopilot, with `atelier jobs run` or with POST /api/atelier/jobs.'));
      }
      replace(box, h('div', { class: 'table-wrap' }, h('table', { class: 'data jb-list', 'data-testid': 'jobs-table' },
        h('thead', null, h('tr', null, h('th', null, 'Status'), h('th', null, 'Job'), h('th', null, 'Kind'), h('th', null, 'Owner'),
          h('th', null, 'Created'), h('th', null, 'Duration'), h('th', { class: 'num' }, 'Attempt'), h('th', null, 'Detail'))),
        h('tbody', null, rows.map((j) => {
          const sec = lastSecondary(j);
          return h('tr', { 'data-testid': 'job-row', 'data-id': j.id, 'data-kind': j.kind, 'data-status': j.status },
            h('td', null, primaryBadge(j), isActive(j) && sec ? h('div', { class: 'jb-sec muted', 'data-testid': 'job-secondary' }, sec.status) : null),
            h('td', { class: 'wrap jb-name' }, h('a', { href: jobHref(j), 'data-testid': 'job-link', title: j.name || j.id }, j.name || j.id), h('div', { class: 'muted mono jb-id' }, String(j.id).slice(0, 12))),
            h('td', { class: 'jb-kind-cell' }, h('span', { class: 'badge jb-kind', 'data-kind': j.kind }, kindLabel(j.kind))),
            h('td', null, h('span', { class: 'jb-owner', title: j.owner || '' }, j.owner || '—')),
            h('td', { title: fmtDate(j.created_ms) }, fmtAgo(j.created_ms)),
            h('td', null, durationNode(j, 'job-duration')),
            h('td', { class: 'num' }, j.attempt ? `${j.attempt}/${j.max_attempts}` : '—'),
            // raw text (the last line of output, the error), cut to two lines
            h('td', { class: 'wrap jb-detail', 'data-raw': true }, detail(j)));
        })))));
    }
    async function load() {
      try {
        const res = await request('GET', JOBS + '?' + new URLSearchParams(Object.assign({ limit: '500' }, state.kind ? { kind: state.kind } : {})));
        state.list = res.jobs || [];
        state.error = null;
      } catch (e) { state.error = e; }
      render();
    }
    kindSel.addEventListener('change', () => {
      state.kind = kindSel.value;
      state.list = null;
      const u = new URL(location.href);
      if (state.kind) u.searchParams.set('kind', state.kind); else u.searchParams.delete('kind');
      window.history.replaceState(null, '', u.pathname + u.search);
      render();
      load();
    });
    search.addEventListener('input', () => { state.q = search.value; render(); });
    render();
    startTicker();
    load().then(() => live(load));
  };

  // ---------------------------------------------------------------- /jobs/<id>

  pages['jobs-item'] = function () {
    const id = main.dataset.id;
    const head = h('div');
    const body = h('div');
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/jobs' }, 'Jobs'), ' / '), head, body);
    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    let page = null;
    async function load() {
      let job;
      try { job = (await request('GET', JOBS + '/' + enc(id))).job; } catch (e) {
        if (!page && S.isNotFound(e)) {
          S.notFound({ crumbs: [['Jobs', '/jobs']], title: 'Job not found', error: e, testid: 'job-error', back: ['/jobs', 'All jobs'] });
          return false;
        }
        if (!page) replace(head, errorBox(e, 'job-error'));
        return true;
      }
      if (!page) {
        if (job.kind === 'automl') { location.replace('/autopilot/' + enc(id)); return false; }
        page = jobPage(job, head, body);
      }
      await page.render(job);
      return true;
    }
    startTicker();
    load().then((found) => { if (found) live(load); });
  };

  /** The parts every job page has (header, failure, facts, timeline) and the kind's own sections. */
  function jobPage(first, head, body) {
    const id = first.id;
    const err = h('div');
    const failureBox = h('div');
    const factsCard = h('section', { class: 'card', 'data-testid': 'job-facts' });
    const timelineCard = h('section', { class: 'card', 'data-testid': 'timeline' });
    append(body, err, failureBox, factsCard, timelineCard);
    const kindPage = isUserJob(first) ? userJobSections(first, body, failureBox)
      : first.kind === 'tuning' ? tuningSections(first, body)
        : first.kind === 'monitoring-execution' ? monitoringSections(first, body)
          : first.kind === 'batch-transform' ? batchSections(first, body)
            : genericSections(first, body);
    let stopBtn = null;

    function renderHead(j) {
      const sec = lastSecondary(j);
      const active = isActive(j);
      if (!stopBtn) stopBtn = h('button', { class: 'btn', 'data-testid': 'stop-job', title: 'Stop the job (SIGTERM, then SIGKILL after the grace period)', onclick: (ev) => stopJob(id, ev.currentTarget, (e) => replace(err, errorBox(e))) }, 'Stop');
      if (!active) stopBtn.disabled = true;
      else if (j.cancel_requested) { stopBtn.disabled = true; stopBtn.textContent = 'Stopping…'; }
      document.title = (j.name || id) + ' · Jobs · Atelier Studio';
      replace(head, h('header', { class: 'page-head jb-head' },
        h('h1', { 'data-testid': 'job-name' }, j.name || id),
        primaryBadge(j),
        h('span', { class: 'badge jb-kind', 'data-testid': 'job-kind' }, kindLabel(j.kind)),
        sec && active ? h('span', { class: 'sub jb-now', 'data-testid': 'job-secondary', title: sec.message || '' }, h('b', null, sec.status), sec.message ? ': ' + sec.message : '') : null,
        h('span', { class: 'spacer' }),
        kindPage.headActions ? kindPage.headActions(j) : null,
        active ? stopBtn : null));
    }
    function fact(label, value, testid, wide) {
      const v = value === undefined || value === null || value === '' ? '—' : value;
      return h('div', { class: wide ? 'jb-wide' : null }, h('span', null, label), h('b', { 'data-testid': testid, title: typeof v === 'string' ? v : null, class: typeof v === 'string' && !/\s/.test(v) ? 'nowrap' : null }, v));
    }
    function renderFacts(j) {
      replace(factsCard, h('div', { class: 'facts' },
        fact('Kind', kindLabel(j.kind)),
        fact('Owner', j.owner),
        fact('Created', fmtDate(j.created_ms)),
        fact('Started', j.started_ms ? fmtDate(j.started_ms) : '—'),
        fact('Ended', j.ended_ms ? fmtDate(j.ended_ms) : '—'),
        fact('Duration', durationNode(j, 'job-duration-fact')),
        fact('Attempt', j.attempt ? `${j.attempt} of ${j.max_attempts}` : `— of ${j.max_attempts}`, 'job-attempt'),
        fact('Worker', j.worker ? h('span', { class: 'mono' }, j.worker) : null),
        kindPage.facts ? kindPage.facts(j, fact) : null,
        fact('Job ID', h('span', { class: 'mono', title: j.id }, j.id), null, true)));
    }
    function renderTimeline(j) {
      const ev = (j.secondary_statuses || []).filter((e) => e && isNum(e.at_ms));
      if (!ev.length) return replace(timelineCard, h('h2', null, 'Status timeline'), h('div', { class: 'empty' }, 'No status yet.'));
      const t0 = ev[0].at_ms;
      const now = Date.now();
      const active = isActive(j);
      const tEnd = j.ended_ms || (active ? now : ev[ev.length - 1].at_ms);
      // Phases: consecutive statuses of one kind are one phase, which lasts until the next phase
      // begins; a terminal status is a cap at the end; moments (a rule that fired) are markers.
      const phaseEv = ev.filter((e) => !MOMENTS.has(e.status));
      const phases = [];
      phaseEv.forEach((e, i) => {
        const until = i + 1 < phaseEv.length ? phaseEv[i + 1].at_ms : (active ? now : Math.max(e.at_ms, j.ended_ms || 0));
        const prev = phases[phases.length - 1];
        if (prev && prev.status === e.status) { prev.until = until; return; }
        phases.push({ status: e.status, message: e.message, from: e.at_ms, until, cap: TERMINAL_EVENTS.has(e.status) });
      });
      // Widths in %: a minimum each (so that a phase of a few ms still shows), caps a fixed width,
      // the rest shared by duration; a time maps to a place through its phase.
      const MIN = 1.2, CAP = 9;
      const caps = phases.filter((p) => p.cap).length;
      const durs = phases.filter((p) => !p.cap).map((p) => Math.max(0, p.until - p.from));
      const totalDur = durs.reduce((a, b) => a + b, 0) || 1;
      const free = Math.max(0, 100 - caps * CAP - (phases.length - caps) * MIN);
      let left = 0;
      for (const p of phases) {
        p.left = left;
        p.width = p.cap ? CAP : MIN + (free * Math.max(0, p.until - p.from)) / totalDur;
        left += p.width;
      }
      const scaleBy = left > 100 ? 100 / left : 1;
      for (const p of phases) { p.left *= scaleBy; p.width *= scaleBy; }
      const placeOf = (t) => {
        const p = phases.find((q) => !q.cap && t >= q.from && t <= q.until) || phases.filter((q) => !q.cap && q.from <= t).pop();
        if (!p) return 0;
        const f = p.until > p.from ? Math.min(1, (t - p.from) / (p.until - p.from)) : 0;
        return p.left + f * p.width;
      };
      const bar = h('div', { class: 'jb-bar', 'data-testid': 'timeline-bar' }, phases.map((p, i) => {
        const dur = Math.max(0, p.until - p.from);
        const running = i === phases.length - 1 && active;
        return h('div', {
          class: 'jb-seg' + (p.cap ? ' cap' : '') + (running ? ' active' : ''),
          'data-testid': 'timeline-phase', 'data-status': p.status,
          style: `background:${phaseColor(p.status)};left:${p.left.toFixed(3)}%;width:${p.width.toFixed(3)}%`,
          title: `${p.status} · ${clock(p.from, true)} · ${p.cap ? 'the end' : fmtSpan(dur) + (running ? ' so far' : '')}${p.message ? ' · ' + p.message : ''}`,
        }, p.width >= 7 ? h('span', null, p.status) : null);
      }));
      const moments = ev.filter((e) => MOMENTS.has(e.status));
      const markers = moments.map((e) => h('div', {
        class: 'jb-moment', 'data-testid': 'timeline-marker', 'data-status': e.status,
        style: `left:${placeOf(e.at_ms).toFixed(3)}%;background:${phaseColor(e.status)}`,
        title: `${e.status} · ${clock(e.at_ms, true)}${e.message ? ' · ' + e.message : ''}`,
      }));
      const scale = h('div', { class: 'jb-scale muted' }, h('span', null, clock(t0)), h('span', null, fmtSpan(tEnd - t0) + (active ? ' so far' : ' in all')), h('span', null, j.ended_ms ? clock(j.ended_ms) : active ? 'now' : clock(tEnd)));
      const legend = moments.length ? h('div', { class: 'jb-moments-note muted' }, h('i', { class: 'jb-moment-key' }), ' a rule found issues (hover for the rule)') : null;
      const rows = ev.map((e, i) => {
        // a phase lasted until the next phase; a moment has no length
        const next = MOMENTS.has(e.status) ? null : (ev.slice(i + 1).find((x) => !MOMENTS.has(x.status)) || {}).at_ms || (active ? now : null);
        return h('tr', { 'data-testid': 'timeline-entry', 'data-status': e.status },
          h('td', { class: 'mono', title: fmtDate(e.at_ms) }, clock(e.at_ms, true)),
          h('td', { class: 'num muted' }, '+' + fmtSpan(e.at_ms - t0)),
          h('td', null, h('span', { class: 'jb-chip', style: `border-color:${phaseColor(e.status)};color:${phaseColor(e.status)}` }, e.status)),
          h('td', { class: 'wrap' }, e.message || ''),
          h('td', { class: 'num muted' }, next === null || next === undefined || TERMINAL_EVENTS.has(e.status) ? '' : fmtSpan(next - e.at_ms)));
      });
      replace(timelineCard,
        h('div', { class: 'jb-card-head' }, h('h2', null, 'Status timeline'), h('span', { class: 'muted' }, `${ev.length} status change${ev.length === 1 ? '' : 's'}`)),
        h('div', { class: 'jb-bar-wrap' }, bar, markers), scale, legend,
        h('div', { class: 'table-wrap jb-events' }, h('table', { class: 'data', 'data-testid': 'timeline-table' },
          h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', { class: 'num' }, 'Since queued'), h('th', null, 'Status'), h('th', null, 'Message'), h('th', { class: 'num' }, 'Lasted'))),
          h('tbody', null, rows))));
    }
    let lastSig = '';
    return {
      async render(j) {
        const sig = JSON.stringify(j);
        if (!isActive(j) && sig === lastSig) return;
        lastSig = sig;
        renderHead(j);
        if (j.status === 'failed' && !isUserJob(j)) replace(failureBox, h('div', { class: 'error-box jb-failure', role: 'alert', 'data-testid': 'failure-reason' }, h('b', null, 'Failure reason: '), j.error || 'unknown'));
        renderFacts(j);
        renderTimeline(j);
        await kindPage.render(j);
      },
    };
  }

  // ---------------------------------------------------------------- processing / training

  const SYSTEM_CHARTS = [
    { id: 'cpu', title: 'CPU', unit: '%', keys: [['system/cpu_utilization_percentage', 'machine'], ['system/process_cpu_percentage', 'job (share of one core)']] },
    { id: 'memory', title: 'Memory', unit: 'MB', keys: [['system/process_memory_rss_megabytes', 'job RSS']], note: ['system/system_memory_usage_megabytes', 'system/system_memory_usage_percentage'] },
    { id: 'disk', title: 'Disk IO', unit: 'MB', keys: [['system/process_disk_read_megabytes', 'read'], ['system/process_disk_write_megabytes', 'written']] },
    { id: 'network', title: 'Network', unit: 'MB', keys: [['system/network_receive_megabytes', 'received'], ['system/network_transmit_megabytes', 'sent']] },
  ];
  const MAX_TRAIN_CHARTS = 12;
  const MAX_LOG_LINES = 200000;
  const MAX_DOM_LINES = 5000;

  function userJobSections(first, body, failureBox) {
    const id = first.id;
    const st = {
      job: first, run: null,
      logs: [], matched: 0, next: 0, done: false, busy: false, follow: true, q: '', stream: '', dropped: 0,
      metricsAt: 0, metricsTimer: null, metricsBusy: false, metricsAgain: false,
      charts: new Map(), showAllMetrics: false, trainPoints: 0, finalMetrics: false, outputsKey: '', rerunBuilt: false, lastStatus: null,
    };

    // --- logs
    const logView = h('div', { class: 'jb-log', 'data-raw': true, 'data-testid': 'log-view', tabindex: '0', role: 'log', 'aria-label': 'Job output' });
    const logCount = h('span', { class: 'muted', 'data-testid': 'log-count' });
    const logSearch = h('input', { type: 'search', placeholder: 'Search the output', 'data-testid': 'log-search', 'aria-label': 'Search the output' });
    const streamSeg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Stream' });
    const streams = [['', 'All'], ['stdout', 'stdout'], ['stderr', 'stderr']];
    const streamBtns = streams.map(([v, label]) => h('button', { type: 'button', class: v === '' ? 'on' : '', 'data-testid': 'log-stream-' + (v || 'all'), onclick: () => { st.stream = v; streamBtns.forEach((b, i) => b.classList.toggle('on', streams[i][0] === v)); renderLogs(); } }, label));
    append(streamSeg, streamBtns);
    const followBox = h('input', { type: 'checkbox', checked: true, 'data-testid': 'log-follow' });
    const download = h('button', { type: 'button', class: 'btn', 'data-testid': 'log-download', title: 'The whole output as a text file' }, 'Download');
    const logNote = h('div', { class: 'jb-log-note muted', 'data-testid': 'log-note' });
    const logsCard = h('section', { class: 'card jb-logs', 'data-testid': 'logs' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Logs'), logCount, h('span', { class: 'spacer' }),
        logSearch, streamSeg, h('label', { class: 'jb-follow' }, followBox, 'Follow'), download),
      logView, logNote);

    // --- metrics
    const trainGrid = h('div', { class: 'jb-charts', 'data-testid': 'training-charts' });
    const trainMore = h('div');
    const trainCard = h('section', { class: 'card', 'data-testid': 'training-metrics' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Training metrics'), h('span', { class: 'muted', 'data-testid': 'training-metrics-note' }, 'by step; ◆ marks a Debugger rule that fired')), trainGrid, trainMore);
    const rulesCard = h('section', { class: 'card flush', 'data-testid': 'rules' });
    const sysGrid = h('div', { class: 'jb-charts', 'data-testid': 'system-charts' });
    const sysCard = h('section', { class: 'card', 'data-testid': 'system-metrics' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'System metrics'), h('span', { class: 'muted' }, 'the job\'s processes and the machine, every 500 ms')), sysGrid);
    const metricsErr = h('div');

    // --- inputs / outputs, spec, run again
    const ioGrid = h('div', { class: 'grid2' });
    const specCard = h('section', { class: 'card', 'data-testid': 'job-spec' });
    const rerunCard = h('section', { class: 'card jb-rerun', 'data-testid': 'rerun' });
    append(body, logsCard, metricsErr, trainCard, rulesCard, sysCard, ioGrid, specCard, rerunCard);
    // a succeeded training job's model: registered, or a button that registers it
    const modelCard = h('section', { class: 'card jb-model', 'data-testid': 'model-card', hidden: true });
    body.insertBefore(modelCard, body.querySelector('[data-testid=timeline]'));

    // ---------- logs
    const atBottom = () => logView.scrollHeight - logView.scrollTop - logView.clientHeight < 24;
    let programmatic = 0;
    logView.addEventListener('scroll', () => {
      if (Date.now() - programmatic < 120) return;
      const bottom = atBottom();
      if (bottom !== st.follow) { st.follow = bottom; followBox.checked = bottom; }
    });
    followBox.addEventListener('change', () => { st.follow = followBox.checked; if (st.follow) scrollDown(); });
    function scrollDown() { programmatic = Date.now(); logView.scrollTop = logView.scrollHeight; }
    logSearch.addEventListener('input', () => { st.q = logSearch.value; renderLogs(); });

    function matches(l) {
      if (st.stream && l.stream !== st.stream) return false;
      return !st.q || l.text.toLowerCase().includes(st.q.toLowerCase());
    }
    function lineNode(l) {
      const text = h('span', { class: 'jb-log-text' });
      const q = st.q;
      if (q) {
        const low = l.text.toLowerCase(), ql = q.toLowerCase();
        let i = 0;
        for (let at = low.indexOf(ql); at >= 0; at = low.indexOf(ql, i)) {
          append(text, l.text.slice(i, at), h('mark', null, l.text.slice(at, at + q.length)));
          i = at + q.length;
        }
        append(text, l.text.slice(i));
      } else text.textContent = l.text;
      return h('div', { class: 'jb-log-line' + (l.stream === 'stderr' ? ' err' : ''), 'data-testid': 'log-line', 'data-stream': l.stream },
        h('span', { class: 'jb-log-ts', title: fmtDate(l.at_ms) }, clock(l.at_ms, true)),
        h('span', { class: 'jb-log-stream' }, l.stream === 'stderr' ? 'err' : 'out'), text);
    }
    function updateLogCount() {
      const shown = st.matched;
      const total = st.logs.length + st.dropped;
      logCount.title = shown > MAX_DOM_LINES ? `the view keeps the last ${MAX_DOM_LINES.toLocaleString()}; Download has them all` : '';
      logCount.textContent = (st.q || st.stream) ? `${shown} of ${total} lines` : `${total} line${total === 1 ? '' : 's'}`;
      logCount.dataset.total = String(total);
      logCount.dataset.shown = String(shown);
    }
    function logEmptyText() {
      const j = st.job;
      if (j.status === 'queued') return 'Waiting for the job to start…';
      if (isActive(j)) return 'No output yet.';
      return 'The command printed nothing.';
    }
    function renderLogs() {
      const all = st.logs.filter(matches);
      st.matched = all.length;
      const nodes = all.slice(-MAX_DOM_LINES).map(lineNode);
      replace(logView, nodes.length ? nodes : h('div', { class: 'jb-log-empty', 'data-testid': 'log-empty' }, st.logs.length ? 'No line matches.' : logEmptyText()));
      updateLogCount();
      if (st.follow) scrollDown();
    }
    function addLines(lines) {
      if (!lines.length) return;
      const placeholder = logView.querySelector(':scope > .jb-log-empty');
      let added = 0;
      for (const l of lines) {
        const line = { at_ms: Number(l.at_ms) || 0, stream: l.stream === 'stderr' ? 'stderr' : 'stdout', text: String(l.text === undefined || l.text === null ? '' : l.text) };
        st.logs.push(line);
        if (!matches(line)) continue;
        if (!added && placeholder) placeholder.remove();
        logView.appendChild(lineNode(line));
        added++;
        st.matched++;
      }
      // the view keeps the newest lines only (a DOM of millions of lines would freeze the page)
      for (let extra = logView.childElementCount - MAX_DOM_LINES; extra > 0; extra--) logView.firstElementChild.remove();
      if (st.logs.length > MAX_LOG_LINES) {
        const drop = st.logs.length - MAX_LOG_LINES;
        st.logs.splice(0, drop);
        st.dropped += drop;
        logNote.textContent = `Showing the last ${MAX_LOG_LINES.toLocaleString()} lines; Download has them all.`;
        renderLogs();
      } else if (!added && placeholder) {
        renderLogs();
      }
      updateLogCount();
      if (st.follow) scrollDown();
      renderFailure(st.job);
    }
    async function pollLogs() {
      if (st.busy) return;
      st.busy = true;
      let stop = false;
      try {
        for (let round = 0; round < 50; round++) {
          const from = st.next;
          const r = await request('GET', `${JOBS}/${enc(id)}/logs?from=${from}&max_bytes=1048576`);
          addLines(r.lines || []);
          st.next = Number(r.next) || from;
          const moved = st.next !== from;
          if (r.done && !moved) { stop = true; break; }
          if (!moved) break;
        }
        if (logNote.dataset.error) { logNote.textContent = ''; delete logNote.dataset.error; }
      } catch (e) {
        logNote.textContent = 'Could not read the output: ' + e.message;
        logNote.dataset.error = '1';
        if (e.status === 400 || e.status === 404) stop = true;
      }
      st.busy = false;
      if (stop) {
        st.done = true;
        logsCard.dataset.done = 'true';
        if (!st.logs.length) renderLogs();
        return;
      }
      setTimeout(pollLogs, 500);
    }
    download.addEventListener('click', async () => {
      download.disabled = true;
      const out = [];
      try {
        let from = 0;
        for (let round = 0; round < 10000; round++) {
          const r = await request('GET', `${JOBS}/${enc(id)}/logs?from=${from}&max_bytes=4194304`);
          for (const l of r.lines || []) out.push(`${fmtDate(l.at_ms)}.${pad(new Date(l.at_ms).getMilliseconds(), 3)} ${l.stream === 'stderr' ? 'stderr' : 'stdout'} ${l.text}`);
          if (Number(r.next) === from) break;
          from = Number(r.next);
        }
        const url = URL.createObjectURL(new Blob([out.join('\n') + (out.length ? '\n' : '')], { type: 'text/plain;charset=utf-8' }));
        const a = h('a', { href: url, download: `${(st.job.name || id).replace(/[^\w.-]+/g, '_')}-${id.slice(0, 8)}.log`, style: 'display:none' });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 30000);
      } catch (e) {
        logNote.textContent = 'Could not download the output: ' + e.message;
      }
      download.disabled = false;
    });

    // ---------- failure
    function renderFailure(j) {
      if (j.status === 'failed') {
        const errs = st.logs.filter((l) => l.stream === 'stderr').slice(-6);
        replace(failureBox, h('div', { class: 'error-box jb-failure', role: 'alert', 'data-testid': 'failure-reason' },
          h('div', { class: 'jb-failure-head' }, 'Failure reason'),
          h('div', { class: 'jb-failure-msg', 'data-raw': true, 'data-testid': 'failure-message' }, j.error || 'The job failed.'),
          errs.length ? h('div', { class: 'jb-failure-stderr' }, h('div', { class: 'muted' }, 'Last lines on stderr'),
            h('pre', { 'data-testid': 'failure-stderr' }, errs.map((l) => l.text).join('\n'))) : null));
      } else if (j.status === 'cancelled') {
        replace(failureBox, h('div', { class: 'jb-stopped', 'data-testid': 'stop-reason' }, h('b', null, 'Stopped: '), j.error || 'stopped on request'));
      } else replace(failureBox);
    }

    // ---------- facts
    function exitOf(j) {
      const r = j.result || {};
      const e = r.exit || null;
      if (e) {
        const parts = [];
        if (e.code !== null && e.code !== undefined) parts.push(String(e.code));
        if (e.signal) parts.push('signal ' + e.signal);
        if (e.oom_killed) parts.push('out of memory');
        if (e.stopped) parts.push('stopped');
        if (e.start_error) parts.push('did not start: ' + e.start_error);
        return parts.join(' · ') || '—';
      }
      const m = /exit(?:ed with)? status (-?\d+)/.exec(j.error || '');
      if (m) return m[1];
      const s = /signal (\w+)/.exec(j.error || '');
      if (s) return 'signal ' + s[1];
      return isActive(j) ? 'running' : '—';
    }
    const runIdOf = (j) => (j.result || {}).run_id || (j.progress || {}).run_id || null;
    function facts(j, fact) {
      const rid = runIdOf(j);
      const r = j.result || {};
      const mv = r.model_version;
      return [
        fact('Exit code', exitOf(j), 'exit-code'),
        fact('Run', rid ? h('a', { href: '/runs/' + enc(rid), 'data-testid': 'run-link', class: 'mono' }, rid.slice(0, 12)) : null),
        fact('Experiment', (r.experiment_id || (j.progress || {}).experiment_id) ? h('a', { href: '/experiments/' + enc(r.experiment_id || j.progress.experiment_id) }, (j.spec || {}).experiment || 'experiment ' + (r.experiment_id || j.progress.experiment_id)) : null),
        fact('Max runtime', fmtSpan(1000 * ((j.spec || {}).max_runtime_seconds || 86400))),
        fact('Output lines', String((j.progress || {}).log_lines || r.log_lines || 0)),
        mv && mv.name ? fact('Registered model', h('a', { href: '/models/' + enc(mv.name) + '/versions/' + enc(mv.version), 'data-testid': 'model-version-link' }, `${mv.name} v${mv.version}`)) : null,
      ];
    }

    // ---------- metrics
    function rulesOf(j) {
      const r = (j.result && Array.isArray(j.result.rules) && j.result.rules) || (j.progress && Array.isArray(j.progress.rules) && j.progress.rules) || [];
      return flatRules(r);
    }
    function marksFor(keys, xKind, start, available) {
      const out = [];
      const fired = rulesOf(st.job).filter((r) => r.trigger && (r.status === 'IssuesFound' || r.trigger.step !== undefined));
      fired.forEach((r, i) => {
        const targets = ruleKeys(r, available);
        const key = targets.find((k) => keys.includes(k));
        if (!key) return;
        const t = r.trigger;
        let x;
        if (xKind === 'step') x = isNum(t.step) ? t.step : NaN;
        else x = (t.timestamp_ms || t.detected_ms || NaN) - start;
        if (!Number.isFinite(x)) return;
        out.push({ x, key, label: r.label || r.rule, message: r.message, color: RULE_COLORS[i % RULE_COLORS.length] });
      });
      return out;
    }
    function chartCard(grid, key, title, legend) {
      const box = h('div', { class: 'chart jb-chart' });
      const card = h('div', { class: 'chart-card', 'data-testid': 'metric-chart', 'data-key': key },
        h('div', { class: 'jb-chart-head' }, h('h3', null, title),
          h('span', { class: 'legend jb-legend' }, legend.map(([color, label]) => h('span', null, h('i', { class: 'sw', style: 'background:' + color }), label)))),
        box);
      grid.appendChild(card);
      return { card, box, chart: null };
    }
    function trainOrder(keys, rules) {
      const hot = new Set();
      for (const r of rules) if (r.trigger) ruleKeys(r, keys).forEach((k) => hot.add(k));
      const rank = (k) => (k === 'loss' ? 0 : k === 'val_loss' ? 1 : hot.has(k) ? 2 : /loss|acc|auc|f1|error|score/i.test(k) ? 3 : 4);
      return keys.slice().sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    }
    async function refreshMetrics(force) {
      const j = st.job;
      const rid = runIdOf(j);
      if (!rid) { renderMetricPlaceholders(); return; }
      const now = Date.now();
      const every = st.trainPoints > 50000 ? 10000 : st.trainPoints > 10000 ? 4000 : 1500;
      if (!force && isActive(j) && now - st.metricsAt < every) {
        if (!st.metricsTimer) st.metricsTimer = setTimeout(() => { st.metricsTimer = null; refreshMetrics(true); }, every - (now - st.metricsAt));
        return;
      }
      // a finished job's metrics do not change: one refresh after it ended is enough
      if (!isActive(j) && st.finalMetrics) return;
      if (st.metricsBusy) { st.metricsAgain = true; return; }
      st.metricsBusy = true;
      st.metricsAt = now;
      try {
        st.run = (await api.get('runs/get', { run_id: rid })).run;
        const latest = metricsOf(st.run);
        const keys = Object.keys(latest);
        const start = Number((st.run.info || {}).start_time) || j.started_ms || 0;
        const trainKeys = trainOrder(keys.filter((k) => !k.startsWith('system/')), rulesOf(j));
        const shown = st.showAllMetrics ? trainKeys : trainKeys.slice(0, MAX_TRAIN_CHARTS);
        const gpu = keys.filter((k) => /^system\/gpu_\d+_utilization_percentage$/.test(k));
        const sysDefs = SYSTEM_CHARTS.concat(gpu.length ? [{ id: 'gpu', title: 'GPU', unit: '%', keys: gpu.map((k) => [k, 'GPU ' + k.split('_')[1]]) }] : []);
        const needed = new Set(shown);
        for (const d of sysDefs) for (const [k] of d.keys) if (latest[k]) needed.add(k);
        const hist = new Map();
        await Promise.all([...needed].map(async (k) => { hist.set(k, await metricHistory(rid, latest[k], k.startsWith('system/'))); }));
        replace(metricsErr);
        st.trainPoints = shown.reduce((n, k) => n + (hist.get(k) || []).length, 0);
        if (!isActive(j)) st.finalMetrics = true;
        drawTraining(shown, trainKeys, hist, start);
        drawSystem(sysDefs, hist, latest, start);
      } catch (e) {
        replace(metricsErr, errorBox(new Error('Metrics: ' + e.message), 'metrics-error'));
      }
      st.metricsBusy = false;
      if (st.metricsAgain) { st.metricsAgain = false; refreshMetrics(true); }
    }
    function renderMetricPlaceholders() {
      if (!trainGrid.firstChild) replace(trainGrid, h('div', { class: 'empty', 'data-testid': 'training-empty' }, st.job.status === 'queued' ? 'The job has not started.' : 'No metrics yet.'));
      if (!sysGrid.firstChild) replace(sysGrid, h('div', { class: 'empty', 'data-testid': 'system-empty' }, st.job.status === 'queued' ? 'The job has not started.' : 'No system metrics yet.'));
    }
    function drawTraining(shown, all, hist, start) {
      trainCard.hidden = !shown.length && !isActive(st.job) && !rulesOf(st.job).length;
      if (!shown.length) {
        st.charts.forEach((c, k) => { if (!k.startsWith('sys:')) { c.card.remove(); st.charts.delete(k); } });
        replace(trainGrid, h('div', { class: 'empty', 'data-testid': 'training-empty' },
          isActive(st.job) ? 'No training metrics yet: log them with mlflow.log_metric (the job sets MLFLOW_RUN_ID).' : 'The job logged no metrics besides the system ones.'));
        trainMore.textContent = '';
        return;
      }
      const empty = trainGrid.querySelector(':scope > .empty');
      if (empty) empty.remove();
      for (const [k, c] of st.charts) if (!k.startsWith('sys:') && !shown.includes(k)) { c.card.remove(); st.charts.delete(k); }
      shown.forEach((key, i) => {
        let c = st.charts.get(key);
        const pts = hist.get(key) || [];
        const steps = new Set(pts.map((p) => p.step));
        const xKind = pts.length > 1 && steps.size < 2 ? 'relative' : 'step';
        const series = [{ key, label: key, color: C.PALETTE[i % C.PALETTE.length], points: pts.map((p) => ({ x: xKind === 'step' ? p.step : p.ts - start, y: p.y })) }];
        const opts = { series, xKind, marks: marksFor([key], xKind, start, all), empty: 'No finite values' };
        if (!c) {
          c = chartCard(trainGrid, key, key, []);
          st.charts.set(key, c);
          c.chart = markChart(c.box, opts);
        } else c.chart.update(opts);
        if (trainGrid.children[i] !== c.card) trainGrid.insertBefore(c.card, trainGrid.children[i] || null);
      });
      if (all.length > MAX_TRAIN_CHARTS) {
        replace(trainMore, h('button', { type: 'button', class: 'btn', 'data-testid': 'show-all-metrics', style: 'margin-top:12px', onclick: () => { st.showAllMetrics = !st.showAllMetrics; st.finalMetrics = false; refreshMetrics(true); } },
          st.showAllMetrics ? `Show the first ${MAX_TRAIN_CHARTS}` : `Show all ${all.length} metrics`));
      } else replace(trainMore);
    }
    function drawSystem(defs, hist, latest, start) {
      const present = defs.filter((d) => d.keys.some(([k]) => hist.has(k)));
      if (!present.length) { renderMetricPlaceholders(); return; }
      const empty = sysGrid.querySelector(':scope > .empty');
      if (empty) empty.remove();
      present.forEach((d) => {
        const key = 'sys:' + d.id;
        const colors = [C.PALETTE[0], C.PALETTE[1], C.PALETTE[2], C.PALETTE[3]];
        const series = d.keys.filter(([k]) => hist.has(k)).map(([k, label], i) => ({ key: k, label, color: colors[i % colors.length], points: hist.get(k).map((p) => ({ x: p.ts - start, y: p.y })) }));
        const allKeys = d.keys.map(([k]) => k);
        const opts = { series, xKind: 'relative', zero: true, unit: d.unit, marks: marksFor(allKeys, 'relative', start, allKeys) };
        let c = st.charts.get(key);
        if (!c) {
          c = chartCard(sysGrid, d.id, `${d.title} (${d.unit})`, series.map((s) => [s.color, s.label]));
          c.card.dataset.testid = 'system-chart';
          c.card.dataset.chart = d.id;
          st.charts.set(key, c);
          c.chart = markChart(c.box, opts);
        } else c.chart.update(opts);
        if (d.note) {
          const used = latest[d.note[0]], pct = latest[d.note[1]];
          let note = c.card.querySelector('.jb-chart-note');
          if (!note) { note = h('div', { class: 'jb-chart-note muted' }); c.card.appendChild(note); }
          note.textContent = used ? `machine: ${Math.round(num(used.value)).toLocaleString()} MB in use` + (pct ? ` (${num(pct.value).toFixed(1)} %)` : '') : '';
        }
      });
    }

    // ---------- rules
    function renderRules(j) {
      const specRules = Array.isArray((j.spec || {}).rules) ? j.spec.rules : [];
      const rules = rulesOf(j);
      if (!specRules.length && !rules.length) { rulesCard.hidden = true; return; }
      rulesCard.hidden = false;
      const fired = rules.filter((r) => r.status === 'IssuesFound').length;
      const trig = (t) => {
        if (!t) return h('span', { class: 'muted' }, '—');
        const vals = Object.entries(t).filter(([k]) => !['step', 'timestamp_ms', 'detected_ms'].includes(k));
        return h('div', { class: 'jb-trigger' },
          isNum(t.step) ? h('div', null, h('b', null, 'step ' + t.step), t.detected_ms ? h('span', { class: 'muted' }, ' · ' + clock(t.detected_ms)) : null) : t.detected_ms ? h('div', { class: 'muted' }, 'at ' + clock(t.detected_ms)) : null,
          vals.map(([k, v]) => h('div', { class: 'mono' }, `${k} = ${typeof v === 'number' ? fmtNum(v) : String(v)}`)));
      };
      replace(rulesCard,
        h('div', { class: 'card-head' }, h('h2', null, 'Debugger rules'),
          h('span', { class: 'muted' }, rules.length ? `${rules.length} rule${rules.length === 1 ? '' : 's'}` + (fired ? ` · ${fired} found issues` : '') : '')),
        rules.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data jb-rules', 'data-testid': 'rules-table' },
          h('thead', null, h('tr', null, h('th', null, 'Rule · actions'), h('th', null, 'Status'), h('th', null, 'Message'), h('th', null, 'Trigger'))),
          h('tbody', null, rules.map((r) => h('tr', { 'data-testid': 'rule-row', 'data-rule': r.label || r.rule, 'data-status': r.status, class: r.status === 'IssuesFound' ? 'jb-rule-fired' : '' },
            h('td', { class: 'jb-rule-name', style: r.depth ? `padding-left:${12 + 18 * r.depth}px` : null },
              h('b', null, r.label || r.rule), r.rule && r.rule !== r.label ? h('div', { class: 'muted mono' }, r.rule) : null,
              h('div', { class: 'jb-actions', 'data-testid': 'rule-actions' }, (r.actions || []).map((a) => h('span', { class: 'badge jb-action' + (a === 'StopTraining' ? ' stop' : '') }, a)))),
            h('td', null, h('span', { class: 'badge ' + (RULE_CLASS[r.status] || ''), 'data-testid': 'rule-status' }, r.status || '—'),
              h('div', { class: 'muted jb-evals', title: 'times the rule was evaluated · times its condition was met' }, `${r.evaluations || 0} eval. · ${r.violations || 0} viol.`)),
            h('td', { class: 'wrap jb-rule-msg' }, r.message || '',
              Array.isArray(r.missing_metrics) && r.missing_metrics.length ? h('div', { class: 'muted' }, 'never logged: ', h('span', { class: 'mono' }, r.missing_metrics.join(', '))) : null),
            h('td', { class: 'wrap' }, trig(r.trigger))))))) :
          h('div', { class: 'empty', 'data-testid': 'rules-waiting' }, `Watching ${specRules.map((r) => typeof r === 'string' ? r.split(':')[0] : (r && (r.label || r.name)) || '?').join(', ')}: no evaluation yet.`));
    }

    // ---------- inputs and outputs
    async function renderIO(j) {
      const spec = j.spec || {};
      const r = j.result || {};
      const rid = runIdOf(j);
      const key = j.status + '|' + JSON.stringify(r.outputs || {}) + '|' + rid + '|' + (st.run ? 1 : 0);
      if (key === st.outputsKey) return;
      st.outputsKey = key;
      const inputs = Object.entries(spec.inputs || {});
      const inCard = h('section', { class: 'card flush', 'data-testid': 'inputs' },
        h('div', { class: 'card-head' }, h('h2', null, 'Inputs'), h('span', { class: 'muted' }, String(inputs.length + (spec.code ? 1 : 0)))),
        inputs.length || spec.code ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, h('tbody', null,
          spec.code ? h('tr', null, h('td', { class: 'mono' }, 'code'), h('td', { class: 'wrap fill' }, h('span', { class: 'mono tok', title: spec.code }, spec.code), h('div', { class: 'muted' }, 'the folder the command runs in'))) : null,
          inputs.map(([name, src]) => h('tr', { 'data-testid': 'input-row', 'data-name': name }, h('td', { class: 'mono' }, name), h('td', { class: 'wrap fill' }, sourceLink(src)))))))
          : h('div', { class: 'empty' }, 'No inputs.'));
      const outputs = Object.entries(r.outputs || {});
      const outBody = h('div');
      const outCard = h('section', { class: 'card flush', 'data-testid': 'outputs' },
        h('div', { class: 'card-head' }, h('h2', null, 'Outputs'), rid ? h('a', { href: '/runs/' + enc(rid), class: 'muted' }, 'the run\'s artifacts') : null), outBody);
      if (!outputs.length) {
        const planned = j.kind === 'training' ? ['model', 'data'] : spec.outputs || [];
        replace(outBody, h('div', { class: 'empty', 'data-testid': 'outputs-empty' }, isActive(j)
          ? (planned.length ? `${planned.join(', ')}: uploaded to the run when the command ends.` : 'Uploaded to the run when the command ends.')
          : j.status === 'succeeded' ? 'No outputs.' : 'No outputs were recorded (the job did not succeed); the run keeps what was uploaded.'));
      } else {
        const root = st.run ? S.artifactRoot((st.run.info || {}).artifact_uri) : null;
        const rows = outputs.map(([name, o]) => {
          const files = h('div', { class: 'jb-files' });
          const m = /^runs:\/[^/]+\/(.+)$/.exec(o.uri || '');
          if (root && m && o.files) listFiles(files, root + '/' + m[1]);
          return h('tr', { 'data-testid': 'output-row', 'data-name': name },
            h('td', { class: 'mono' }, name),
            h('td', { class: 'wrap fill' }, rid ? h('a', { href: '/runs/' + enc(rid), class: 'mono tok', title: o.uri, 'data-testid': 'output-link' }, o.uri) : h('span', { class: 'mono tok', title: o.uri }, o.uri), files),
            h('td', { class: 'num' }, `${o.files || 0} file${o.files === 1 ? '' : 's'}`));
        });
        replace(outBody, h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, h('tbody', null, rows,
          r.model_uri && !(r.outputs || {}).model ? h('tr', null, h('td', { class: 'mono' }, 'model'), h('td', { class: 'wrap mono fill' }, h('span', { class: 'tok', title: r.model_uri }, r.model_uri)), h('td')) : null))));
      }
      replace(ioGrid, inCard, outCard);
    }
    async function listFiles(box, path) {
      try {
        const res = await request('GET', ARTIFACTS + '?' + new URLSearchParams({ path }));
        const files = (res.files || []).slice(0, 20);
        replace(box, files.map((f) => {
          const name = String(f.path || '').split('/').filter(Boolean).pop() || f.path;
          const full = String(f.path || '').startsWith(path + '/') ? f.path : path + '/' + name;
          return f.is_dir ? h('div', { class: 'mono muted' }, name + '/')
            : h('div', null, h('a', { href: S.inProject(ARTIFACTS + '/' + encodePath(full)), download: name, class: 'mono', 'data-testid': 'output-file' }, name), ' ', h('span', { class: 'muted' }, fmtBytes(f.file_size || 0)));
        }), (res.files || []).length > 20 ? h('div', { class: 'muted' }, '…') : null);
      } catch (_) { /* the run's artifacts are still listed on the run page */ }
    }

    // ---------- the model
    function versionLinks(versions) {
      return versions.map((v, i) => h('span', { class: 'jb-version', 'data-testid': 'registered-version', 'data-name': v.name, 'data-version': String(v.version) }, i ? ', ' : '',
        h('a', { href: '/models/' + enc(v.name), 'data-testid': 'registered-model-link' }, v.name), ' ',
        h('a', { href: '/models/' + enc(v.name) + '/versions/' + enc(v.version), 'data-testid': 'registered-version-link' }, 'version ' + v.version)));
    }
    function modelHead(rid, files) {
      return h('div', { class: 'jb-card-head' }, h('h2', null, 'Model'),
        h('span', { class: 'muted mono' }, `runs:/${rid}/model`), files === undefined ? null : h('span', { class: 'muted' }, `${files} file${files === 1 ? '' : 's'}`));
    }
    async function renderModel(j) {
      const rid = runIdOf(j);
      if (j.kind !== 'training' || j.status !== 'succeeded' || !rid) { modelCard.hidden = true; return; }
      if (st.modelShown) return;
      st.modelShown = true;
      const files = (((j.result || {}).outputs || {}).model || {}).files;
      let versions = [];
      try { versions = (await api.get('model-versions/search', { filter: `run_id='${rid}'`, max_results: 100 })).model_versions || []; } catch (_) { /* shown as not registered */ }
      const mv = (j.result || {}).model_version;
      if (mv && mv.name && !versions.some((v) => v.name === mv.name && String(v.version) === String(mv.version))) versions.push(mv);
      modelCard.hidden = false;
      if (versions.length) {
        replace(modelCard, modelHead(rid, files), h('div', { 'data-testid': 'model-registered' }, 'Registered as ', versionLinks(versions), '.'));
        return;
      }
      const err = h('div');
      const nameIn = h('input', { type: 'text', value: j.name || '', 'data-testid': 'register-name', 'aria-label': 'Model name', class: 'jb-register-name' });
      const btn = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'register-model' }, 'Register model');
      const empty = files === 0;
      if (empty) btn.disabled = true;
      const form = h('form', { class: 'form-row jb-register', 'data-testid': 'register-form', novalidate: true },
        h('label', { class: 'field' }, h('span', null, 'Model name'), nameIn), btn,
        h('span', { class: 'muted' }, empty ? 'The job wrote nothing to model/ (SM_MODEL_DIR): there is nothing to register.' : 'Not registered yet: a new version of this model, from the run\'s model/ folder.'));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const name = nameIn.value.trim();
        replace(err);
        if (!name) return replace(err, errorBox(new Error('Give the model a name'), 'register-error'));
        btn.disabled = true;
        btn.textContent = 'Registering…';
        try {
          try { await api.post('registered-models/create', { name }); } catch (e) { if (e.code !== 'RESOURCE_ALREADY_EXISTS') throw e; }
          const res = await api.post('model-versions/create', {
            name, source: `runs:/${rid}/model`, run_id: rid, description: `trained by job ${j.name || j.id}`, tags: [{ key: 'atelier.job_id', value: j.id }],
          });
          const v = res.model_version || {};
          replace(modelCard, modelHead(rid, files), h('div', { 'data-testid': 'model-registered' }, 'Registered as ', versionLinks([{ name: v.name || name, version: v.version }]), '.'));
        } catch (e) {
          btn.disabled = false;
          btn.textContent = 'Register model';
          replace(err, errorBox(e, 'register-error'));
        }
      });
      replace(modelCard, modelHead(rid, files), err, form);
    }

    // ---------- spec and run again
    function renderSpec(j) {
      const s = j.spec || {};
      const hp = Object.entries(s.hyperparameters || {});
      const env = Object.entries(s.environment || {});
      const kv = (entries, testid) => h('table', { class: 'data kv', 'data-testid': testid }, h('tbody', null, entries.map(([k, v]) => h('tr', null, h('td', null, k), h('td', null, String(v))))));
      replace(specCard, h('h2', null, 'Command'),
        h('pre', { class: 'jb-command', 'data-testid': 'job-command' }, (s.command || []).map(shellQuote).join(' ')),
        h('div', { class: 'jb-spec-grid' },
          h('div', null, h('h3', null, 'Hyperparameters'), hp.length ? kv(hp, 'hyperparameters') : h('div', { class: 'muted' }, 'None')),
          h('div', null, h('h3', null, 'Environment'), env.length ? kv(env, 'environment') : h('div', { class: 'muted' }, 'None')),
          h('div', null, h('h3', null, 'Limits'), kv([
            ['max_runtime_seconds', s.max_runtime_seconds || 86400], ['stop_grace_seconds', s.stop_grace_seconds === undefined ? 120 : s.stop_grace_seconds],
            ['max_output_bytes', fmtBytes(s.max_output_bytes || 5 * 1024 ** 3)]].concat(s.register_model ? [['register_model', s.register_model]] : []), 'limits'))));
    }
    function buildRerun(j) {
      const s = j.spec || {};
      const err = h('div');
      const name = h('input', { type: 'text', value: s.name || '', placeholder: 'default: from the command', 'data-testid': 'rerun-name', 'aria-label': 'Job name' });
      const multiline = (s.command || []).some((a) => /\n/.test(a));
      const command = h('textarea', { class: 'jb-textarea', rows: String(Math.min(8, Math.max(2, (s.command || []).length))), 'data-testid': 'rerun-command', 'aria-label': 'Command, one argument per line', spellcheck: 'false' });
      command.value = multiline ? JSON.stringify(s.command || []) : (s.command || []).join('\n');
      const runtime = h('input', { type: 'number', min: '1', step: '1', value: String(s.max_runtime_seconds || 86400), 'data-testid': 'rerun-runtime', 'aria-label': 'Maximum runtime in seconds', style: 'width:140px' });
      const rows = h('tbody', { 'data-testid': 'rerun-hyperparameters' });
      const addRow = (k, v) => {
        const tr = h('tr', { 'data-testid': 'hp-row' },
          h('td', null, h('input', { type: 'text', value: k, placeholder: 'name', 'data-testid': 'hp-key', 'aria-label': 'Hyperparameter name' })),
          h('td', null, h('input', { type: 'text', value: v, placeholder: 'value', 'data-testid': 'hp-value', 'aria-label': 'Hyperparameter value' })),
          h('td', null, h('button', { type: 'button', class: 'btn jb-icon', title: 'Remove', 'aria-label': 'Remove', 'data-testid': 'hp-remove', onclick: () => tr.remove() }, '×')));
        rows.appendChild(tr);
        return tr;
      };
      Object.entries(s.hyperparameters || {}).forEach(([k, v]) => addRow(k, String(v)));
      const add = h('button', { type: 'button', class: 'btn', 'data-testid': 'hp-add', onclick: () => { const tr = addRow('', ''); tr.querySelector('input').focus(); } }, '+ Add hyperparameter');
      const submit = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'rerun-submit' }, 'Start the new job');
      const form = h('form', { class: 'jb-rerun-form', 'data-testid': 'rerun-form', novalidate: true },
        err,
        h('div', { class: 'form-row' }, h('label', { class: 'field' }, h('span', null, 'Name'), name), h('label', { class: 'field' }, h('span', null, 'Max runtime (s)'), runtime)),
        h('label', { class: 'field jb-field-wide' }, h('span', null, 'Command, one argument per line'), command),
        h('div', { class: 'field' }, h('span', null, 'Hyperparameters'),
          h('table', { class: 'jb-hp' }, h('thead', null, h('tr', null, h('th', null, 'name'), h('th', null, 'value'), h('th'))), rows), h('div', null, add)),
        h('div', { class: 'form-row' }, submit, h('span', { class: 'muted' }, `Inputs, code, environment and the other settings are kept from this job (${kindLabel(j.kind).toLowerCase()}).`)));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        replace(err);
        const spec = JSON.parse(JSON.stringify(s));
        let cmd;
        const text = command.value.trim();
        if (text.startsWith('[')) {
          try { cmd = JSON.parse(text); } catch (e) { return replace(err, errorBox(new Error('The command is not a JSON list: ' + e.message), 'rerun-error')); }
          if (!Array.isArray(cmd) || cmd.some((a) => typeof a !== 'string')) return replace(err, errorBox(new Error('The command must be a list of strings'), 'rerun-error'));
        } else cmd = command.value.split('\n').map((a) => a.replace(/\r$/, '')).filter((a) => a.trim() !== '');
        if (!cmd.length) return replace(err, errorBox(new Error('Give the command to run'), 'rerun-error'));
        spec.command = cmd;
        const hps = {};
        for (const tr of rows.querySelectorAll('tr')) {
          const k = tr.querySelector('[data-testid=hp-key]').value.trim();
          const v = tr.querySelector('[data-testid=hp-value]').value;
          if (!k) { if (v.trim()) return replace(err, errorBox(new Error(`The hyperparameter with the value '${v}' has no name`), 'rerun-error')); continue; }
          if (k in hps) return replace(err, errorBox(new Error(`The hyperparameter '${k}' is given twice`), 'rerun-error'));
          hps[k] = v;
        }
        spec.hyperparameters = hps;
        const rt = Number(runtime.value);
        if (!Number.isInteger(rt) || rt < 1) return replace(err, errorBox(new Error('The maximum runtime must be a whole number of seconds'), 'rerun-error'));
        spec.max_runtime_seconds = rt;
        if (name.value.trim()) spec.name = name.value.trim(); else delete spec.name;
        submit.disabled = true;
        try {
          const res = await request('POST', JOBS, { kind: j.kind, spec });
          location.href = '/jobs/' + enc(res.job.id);
        } catch (e) { submit.disabled = false; replace(err, errorBox(e, 'rerun-error')); }
      });
      const open = h('button', { type: 'button', class: 'btn', 'data-testid': 'rerun-open' }, 'Run again with changes');
      const headRow = h('div', { class: 'jb-card-head' }, h('h2', null, 'Run again'), h('span', { class: 'muted' }, 'a new job from this one\'s spec'), h('span', { class: 'spacer' }), open);
      form.hidden = true;
      const toggle = (show) => { form.hidden = !show; open.textContent = form.hidden ? 'Run again with changes' : 'Close'; if (!form.hidden) command.focus({ preventScroll: true }); };
      open.addEventListener('click', () => toggle(form.hidden));
      st.openRerun = () => { toggle(true); rerunCard.scrollIntoView({ block: 'start', behavior: 'smooth' }); };
      replace(rerunCard, headRow, form);
    }

    const rerunHead = h('button', { type: 'button', class: 'btn', 'data-testid': 'rerun-head', title: 'A new job from this one\'s spec, with your changes', onclick: () => st.openRerun && st.openRerun() }, 'Run again…');
    return {
      facts,
      headActions: () => rerunHead,
      async render(j) {
        const prev = st.lastStatus;
        st.job = j;
        st.lastStatus = j.status;
        renderFailure(j);
        renderRules(j);
        renderModel(j);
        if (!st.rerunBuilt) {
          st.rerunBuilt = true;
          renderSpec(j);
          buildRerun(j);
          renderLogs();
          pollLogs();
        }
        if (prev !== j.status && !st.logs.length) renderLogs();
        const ended = prev !== null && prev !== j.status && !isActive(j);
        await refreshMetrics(ended || prev === null);
        await renderIO(j);
      },
    };
  }

  // ---------------------------------------------------------------- /jobs/new

  // SageMaker Debugger's rules (crates/debugger): suggestions for the rule rows; the server checks
  // them and names the known ones when a rule is unknown.
  const RULE_NAMES = ['LossNotDecreasing', 'Overfit', 'Overtraining', 'ExplodingTensor', 'VanishingGradient', 'StalledTrainingRule',
    'ClassImbalance', 'UnchangedTensor', 'CPUBottleneck', 'IOBottleneck', 'LowGPUUtilization', 'GPUMemoryIncrease', 'StepOutlier',
    'MaxInitializationTime', 'ProfilerReport'];
  /** As the CLI (`atelier jobs run`): larger files are not uploaded as code. */
  const MAX_CODE_FILE = 50 * 1024 * 1024;
  const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
  const UNITS = [['seconds', 1], ['minutes', 60], ['hours', 3600]];

  function randomHex() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  }
  /** PUT a file as the raw body, reporting the bytes sent; rejects with the server's message. */
  function putFile(url, file, onProgress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('PUT', url);
      x.setRequestHeader('Accept', 'application/json');
      // in the project the Studio works in, as every other call (S.request)
      for (const [k, v] of Object.entries(S.projectHeaders())) x.setRequestHeader(k, v);
      x.upload.onprogress = (e) => onProgress(e.loaded);
      x.onload = () => {
        if (x.status >= 200 && x.status < 300) { onProgress(file.size); resolve(x.status); return; }
        let msg = '';
        try { msg = JSON.parse(x.responseText).message || ''; } catch (_) { msg = (x.responseText || '').slice(0, 300); }
        reject(new Error(msg || 'HTTP ' + x.status));
      };
      x.onerror = () => reject(new Error('Cannot reach the server'));
      x.send(file);
    });
  }
  /** A picked file's path inside the code folder, or why it is left out (as the CLI's upload_dir). */
  function codePath(file, fromFolder) {
    const rel = fromFolder && file.webkitRelativePath ? file.webkitRelativePath.split('/').slice(1).join('/') : file.name;
    const dirs = rel.split('/').slice(0, -1);
    const hidden = dirs.find((d) => d.startsWith('.') || d === '__pycache__' || d === 'node_modules');
    if (hidden) return { rel, skip: hidden + '/' };
    if (file.size > MAX_CODE_FILE) return { rel, skip: 'over 50 MB' };
    return { rel };
  }

  pages['jobs-new'] = function () {
    document.title = 'New job · Jobs · Atelier Studio';
    const st = {
      kind: 'processing',
      code: new Map(), // rel -> { file, rel, state: '', sent: 0 }
      skipped: [],
      venvs: new Set(),
      folder: null, // the code folder name when a folder was picked (for the CLI line)
      uploaded: null, // { sig, dest } of the code folder uploaded last
      datasetUploads: new Map(), // dataset name -> file uploaded under it
      datasets: [],
      suggestions: [],
      busy: false,
    };

    // --- the job
    const kindBtns = ['processing', 'training'].map((k) => h('button', { type: 'button', 'data-kind': k, 'data-testid': 'new-kind-' + k, 'aria-pressed': String(k === st.kind), class: k === st.kind ? 'on' : '' }, kindLabel(k)));
    const kindSeg = h('div', { class: 'seg jn-kind', role: 'group', 'aria-label': 'Kind', 'data-testid': 'new-kind' }, kindBtns);
    const name = h('input', { type: 'text', placeholder: 'from the command', 'data-testid': 'new-name', 'aria-label': 'Job name', maxlength: '64' });
    const experiment = h('input', { type: 'text', placeholder: 'jobs', 'data-testid': 'new-experiment', 'aria-label': 'Experiment' });
    const runtime = h('input', { type: 'number', min: '1', step: '1', value: '24', 'data-testid': 'new-runtime', 'aria-label': 'Maximum runtime', class: 'jn-num' });
    const unit = h('select', { 'data-testid': 'new-runtime-unit', 'aria-label': 'Unit of the maximum runtime' }, UNITS.map(([u]) => h('option', { value: u }, u)));
    unit.value = 'hours';
    const register = h('input', { type: 'text', placeholder: 'not registered', 'data-testid': 'new-register-model', 'aria-label': 'Register the model as' });
    const registerField = h('label', { class: 'field' }, h('span', null, 'Register the model as'), register);
    const kindNote = h('div', { class: 'muted jn-hint', 'data-testid': 'new-kind-note' });
    const jobCard = h('section', { class: 'card', 'data-testid': 'new-job-card' },
      h('div', { class: 'form-row jn-first' }, h('div', { class: 'field' }, h('span', null, 'Kind'), kindSeg),
        h('label', { class: 'field' }, h('span', null, 'Name'), name),
        h('label', { class: 'field' }, h('span', null, 'Experiment'), experiment),
        h('div', { class: 'field' }, h('span', null, 'Max runtime'), h('div', { class: 'jn-inline' }, runtime, unit)),
        registerField),
      kindNote);

    // --- the code
    const pickFiles = h('input', { type: 'file', multiple: true, class: 'jn-file-input', 'data-testid': 'code-files', 'aria-label': 'Code files' });
    const pickFolder = h('input', { type: 'file', multiple: true, webkitdirectory: true, class: 'jn-file-input', 'data-testid': 'code-folder', 'aria-label': 'Code folder' });
    const codeList = h('div', { 'data-testid': 'code-list' });
    const codeNote = h('div', { class: 'muted jn-hint', 'data-testid': 'code-note' });
    const clearCode = h('button', { type: 'button', class: 'btn', 'data-testid': 'code-clear', onclick: () => { st.code.clear(); st.skipped = []; st.venvs.clear(); st.folder = null; renderCode(); } }, 'Clear');
    const codeCard = h('section', { class: 'card', 'data-testid': 'new-code' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Code'), h('span', { class: 'muted' }, 'the folder the command runs in'), h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'code-files-button', onclick: () => pickFiles.click() }, 'Add files…'),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'code-folder-button', onclick: () => pickFolder.click() }, 'Add a folder…'),
        clearCode, pickFiles, pickFolder),
      codeList, codeNote);

    // --- the command
    const command = h('textarea', { class: 'jb-textarea', rows: '4', 'data-testid': 'new-command', 'aria-label': 'Command, one argument per line', spellcheck: 'false', placeholder: 'python\ntrain.py\n--epochs\n3' });
    const commandCard = h('section', { class: 'card', 'data-testid': 'new-command-card' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Command'), h('span', { class: 'muted' }, 'one argument per line, no shell quoting (a JSON list works too); it runs in the code folder')),
      command);

    // --- inputs
    const uriList = h('datalist', { id: 'jn-uri-suggestions' });
    const inputRows = h('div', { class: 'jn-rows', 'data-testid': 'input-rows' });
    const inputNote = h('div', { class: 'muted jn-hint' });
    const inputsCard = h('section', { class: 'card', 'data-testid': 'new-inputs' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Inputs'), h('span', { class: 'muted' }, 'downloaded before the command starts')),
      inputRows, h('div', null, h('button', { type: 'button', class: 'btn', 'data-testid': 'input-add', onclick: () => { const r = addInput(); r.querySelector('input').focus(); } }, '+ Add input')),
      inputNote, uriList);

    // --- outputs (processing)
    const outputs = h('input', { type: 'text', placeholder: 'e.g. clean report', 'data-testid': 'new-outputs', 'aria-label': 'Output names', class: 'jn-wide-input' });
    const outputsCard = h('section', { class: 'card', 'data-testid': 'new-outputs-card' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Outputs'), h('span', { class: 'muted' }, 'folder names, separated by spaces or commas')),
      outputs,
      h('div', { class: 'muted jn-hint' }, 'The command writes each to ', h('span', { class: 'mono' }, '$ATELIER_JOB_DIR/processing/output/<name>'),
        '; it is uploaded to the run as ', h('span', { class: 'mono' }, 'output/<name>'), ' (an input of a next job: ', h('span', { class: 'mono' }, 'runs:/<run id>/output/<name>'), ').'));

    // --- hyperparameters, environment
    function kvTable(prefix, label) {
      const rows = h('tbody', { 'data-testid': prefix + '-rows' });
      const add = (k, v) => {
        const tr = h('tr', { 'data-testid': prefix + '-row' },
          h('td', null, h('input', { type: 'text', value: k || '', placeholder: 'name', 'data-testid': prefix + '-key', 'aria-label': label + ' name' })),
          h('td', null, h('input', { type: 'text', value: v || '', placeholder: 'value', 'data-testid': prefix + '-value', 'aria-label': label + ' value' })),
          h('td', null, h('button', { type: 'button', class: 'btn jb-icon', title: 'Remove', 'aria-label': 'Remove', 'data-testid': prefix + '-remove', onclick: () => { tr.remove(); refresh(); } }, '×')));
        rows.appendChild(tr);
        return tr;
      };
      const table = h('table', { class: 'jb-hp jn-kv' }, h('thead', null, h('tr', null, h('th', null, 'name'), h('th', null, 'value'), h('th'))), rows);
      const button = h('button', { type: 'button', class: 'btn', 'data-testid': prefix + '-add', onclick: () => { add().querySelector('input').focus(); } }, '+ Add ' + label.toLowerCase());
      return { rows, add, node: h('div', { class: 'jn-kv-box' }, table, h('div', null, button)) };
    }
    const hps = kvTable('hp', 'Hyperparameter');
    const env = kvTable('env', 'Variable');
    const paramsCard = h('section', { class: 'card', 'data-testid': 'new-parameters' },
      h('div', { class: 'jn-two' },
        h('div', null, h('h2', null, 'Hyperparameters'), h('div', { class: 'muted jn-hint jn-hint-top' }, h('span', { class: 'mono' }, 'SM_HP_<NAME>'), ', ', h('span', { class: 'mono' }, 'input/config/hyperparameters.json'), ' and the run\'s parameters'), hps.node),
        h('div', null, h('h2', null, 'Environment'), h('div', { class: 'muted jn-hint jn-hint-top' }, 'variables set for the command'), env.node)));

    // --- Debugger rules
    const ruleList = h('datalist', { id: 'jn-rule-names' }, RULE_NAMES.map((r) => h('option', { value: r })));
    const ruleRows = h('div', { class: 'jn-rows', 'data-testid': 'rule-rows' });
    function addRule(text) {
      const input = h('input', { type: 'text', value: text || '', list: 'jn-rule-names', placeholder: 'Overfit:patience=3,stop_training=true', 'data-testid': 'rule-input', 'aria-label': 'Debugger rule', class: 'jn-rule' });
      const row = h('div', { class: 'jn-row', 'data-testid': 'rule-row' }, input,
        h('button', { type: 'button', class: 'btn jb-icon', title: 'Remove', 'aria-label': 'Remove', 'data-testid': 'rule-remove', onclick: () => { row.remove(); refresh(); } }, '×'));
      ruleRows.appendChild(row);
      return input;
    }
    const rulesCard = h('section', { class: 'card', 'data-testid': 'new-rules' },
      h('div', { class: 'jb-card-head' }, h('h2', null, 'Debugger rules'), h('span', { class: 'muted' }, 'watch the metrics the command logs while it runs')),
      ruleRows, h('div', null, h('button', { type: 'button', class: 'btn', 'data-testid': 'rule-add', onclick: () => addRule().focus() }, '+ Add rule')),
      h('div', { class: 'muted jn-hint' }, 'A rule name, then parameters: ', h('span', { class: 'mono' }, 'Overfit:patience=3,stop_training=true'),
        '. Its status is on the job\'s page; ', h('span', { class: 'mono' }, 'stop_training=true'), ' stops the job when it finds issues.'),
      ruleList);

    // --- submit
    const cli = h('pre', { class: 'jb-command jn-cli', 'data-testid': 'cli-preview' });
    const err = h('div', { 'data-testid': 'new-job-errors' });
    const progressBar = h('div', { class: 'progress-bar', style: 'width:0%' });
    const progressText = h('span', { class: 'muted', 'data-testid': 'upload-progress-text' });
    const progress = h('div', { class: 'jn-progress', 'data-testid': 'upload-progress', hidden: true }, h('div', { class: 'progress' }, progressBar), progressText);
    const submit = h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'new-submit' }, 'Start the job');
    const submitCard = h('section', { class: 'card jn-submit', 'data-testid': 'new-submit-card' },
      h('h3', null, 'The same from the command line'), cli,
      err, progress,
      h('div', { class: 'form-row jn-actions' }, submit, h('a', { href: '/jobs', class: 'btn' }, 'Cancel'),
        h('span', { class: 'muted' }, 'Files are uploaded first; the job page opens when the job is queued.')));

    const form = h('form', { class: 'jn-form', 'data-testid': 'new-job-form', novalidate: true },
      jobCard, codeCard, commandCard, inputsCard, outputsCard, paramsCard, rulesCard, submitCard);
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/jobs' }, 'Jobs'), ' / '),
      h('header', { class: 'page-head' }, h('h1', null, 'New job'),
        h('span', { class: 'sub' }, 'Run your own script with SageMaker\'s container contract, as `atelier jobs run` does')),
      form);

    // ---------- kind
    function setKind(k) {
      st.kind = k;
      kindBtns.forEach((b) => { const on = b.dataset.kind === k; b.classList.toggle('on', on); b.setAttribute('aria-pressed', String(on)); });
      outputsCard.hidden = k !== 'processing';
      registerField.hidden = k !== 'training';
      kindNote.textContent = k === 'processing'
        ? 'Processing: inputs under processing/input/<name>, outputs from processing/output/<name> (below $ATELIER_JOB_DIR, as /opt/ml in SageMaker).'
        : 'Training: inputs as channels (SM_CHANNEL_<NAME>, input/data/<name>); SM_MODEL_DIR (model/) and SM_OUTPUT_DATA_DIR are uploaded to the run.';
      inputNote.textContent = k === 'processing'
        ? 'Each input is downloaded to $ATELIER_JOB_DIR/processing/input/<name>.'
        : 'Each input is a channel: $SM_CHANNEL_<NAME> (input/data/<name>).';
      refresh();
    }
    kindBtns.forEach((b) => b.addEventListener('click', () => setKind(b.dataset.kind)));

    // ---------- code
    function addFiles(list, fromFolder) {
      const files = [...(list || [])];
      if (fromFolder) {
        // virtual environments (a folder holding pyvenv.cfg) are left out, as the CLI does
        for (const f of files) {
          const rel = codePath(f, true).rel;
          if (rel.split('/').pop() === 'pyvenv.cfg') st.venvs.add(rel.split('/').slice(0, -1).join('/'));
        }
        const top = (files[0] && files[0].webkitRelativePath || '').split('/')[0];
        if (top) st.folder = top;
      }
      for (const f of files) {
        const { rel, skip } = codePath(f, fromFolder);
        const venv = [...st.venvs].find((d) => d && (rel === d || rel.startsWith(d + '/')));
        if (skip || venv) { st.skipped.push(rel + ' (' + (skip || 'virtual environment ' + venv + '/') + ')'); continue; }
        st.code.set(rel, { file: f, rel, state: '', sent: 0 });
      }
      renderCode();
    }
    pickFiles.addEventListener('change', () => { addFiles(pickFiles.files, false); pickFiles.value = ''; });
    pickFolder.addEventListener('change', () => { addFiles(pickFolder.files, true); pickFolder.value = ''; });
    function codeSig() { return [...st.code.values()].map((c) => `${c.rel}\0${c.file.size}\0${c.file.lastModified}`).sort().join('\n'); }
    function renderCode() {
      const list = [...st.code.values()].sort((a, b) => a.rel.localeCompare(b.rel));
      clearCode.disabled = !list.length && !st.skipped.length;
      if (!list.length) replace(codeList, h('div', { class: 'empty jn-empty', 'data-testid': 'code-empty' }, 'No code: the command runs in an empty folder (fine for a program installed on the server). Add your script\'s files or its folder.'));
      else {
        replace(codeList, h('div', { class: 'table-wrap jn-code-wrap' }, h('table', { class: 'data', 'data-testid': 'code-table' },
          h('thead', null, h('tr', null, h('th', null, 'File'), h('th', { class: 'num' }, 'Size'), h('th', null, 'Upload'), h('th'))),
          h('tbody', null, list.map((c) => {
            c.stateCell = h('td', { class: 'muted jn-state', 'data-testid': 'code-file-state' });
            showFileState(c);
            return h('tr', { 'data-testid': 'code-file', 'data-path': c.rel },
              h('td', { class: 'mono wrap' }, c.rel), h('td', { class: 'num' }, fmtBytes(c.file.size)), c.stateCell,
              h('td', { class: 'jn-x' }, h('button', { type: 'button', class: 'btn jb-icon', title: 'Remove', 'aria-label': 'Remove ' + c.rel, 'data-testid': 'code-remove', disabled: st.busy, onclick: () => { st.code.delete(c.rel); renderCode(); } }, '×')));
          })))));
      }
      const total = list.reduce((n, c) => n + c.file.size, 0);
      replace(codeNote, list.length ? `${list.length} file${list.length === 1 ? '' : 's'}, ${fmtBytes(total)}. ` : '',
        st.skipped.length ? h('span', { title: st.skipped.join('\n'), 'data-testid': 'code-skipped' }, `Left out ${st.skipped.length} (hidden folders, __pycache__, node_modules, virtual environments, files over 50 MB). `) : null);
      if (!command.value.trim()) {
        const script = list.find((c) => !c.rel.includes('/') && /\.py$/.test(c.rel)) || list.find((c) => /\.(py|sh)$/.test(c.rel));
        command.placeholder = script ? (/\.sh$/.test(script.rel) ? 'sh' : 'python') + '\n' + script.rel : 'python\ntrain.py\n--epochs\n3';
      }
      refresh();
    }
    function showFileState(c) {
      if (!c.stateCell) return;
      const text = c.state === 'done' ? 'uploaded' : c.state === 'failed' ? 'failed' : c.state === 'sending' ? `${Math.round((100 * c.sent) / Math.max(1, c.file.size))} %` : '';
      c.stateCell.textContent = text;
      c.stateCell.dataset.state = c.state || 'waiting';
    }

    // ---------- inputs
    function datasetOptions(sel, keep) {
      const cur = keep === undefined ? sel.value : keep;
      replace(sel, h('option', { value: '' }, st.datasets.length ? '— pick a dataset —' : '— no datasets yet —'),
        st.datasets.map((d) => h('option', { value: d.name }, `${d.name} (${fmtBytes(d.size || 0)})`)));
      if (st.datasets.some((d) => d.name === cur)) sel.value = cur;
    }
    function addInput(init) {
      init = init || {};
      const nameIn = h('input', { type: 'text', value: init.name || '', placeholder: 'name', 'data-testid': 'input-name', 'aria-label': 'Input name', class: 'jn-name' });
      const mode = h('select', { 'data-testid': 'input-mode', 'aria-label': 'Where the input comes from' },
        h('option', { value: 'dataset' }, 'Dataset'), h('option', { value: 'file' }, 'Local file → new dataset'), h('option', { value: 'uri' }, 'runs:/ or models:/ URI'));
      const dsSel = h('select', { 'data-testid': 'input-dataset', 'aria-label': 'Dataset', class: 'jn-source' });
      datasetOptions(dsSel, init.dataset || '');
      const fileIn = h('input', { type: 'file', accept: '.csv,.tsv,.txt,.parquet,.pq', 'data-testid': 'input-file', 'aria-label': 'Local file to upload as a dataset', class: 'jn-file' });
      const dsName = h('input', { type: 'text', placeholder: 'dataset name, e.g. raw.csv', 'data-testid': 'input-dataset-name', 'aria-label': 'Upload as the dataset', class: 'jn-dsname' });
      const dsNote = h('span', { class: 'muted jn-ds-note', 'data-testid': 'input-dataset-note' });
      const uri = h('input', { type: 'text', value: init.uri || '', list: 'jn-uri-suggestions', placeholder: 'runs:/<run id>/output/clean or models:/<name>/<version>', 'data-testid': 'input-uri', 'aria-label': 'Source URI', class: 'jn-source jn-uri' });
      const box = h('div', { class: 'jn-source-box' });
      const row = h('div', { class: 'jn-row', 'data-testid': 'input-row' }, nameIn, mode, box,
        h('button', { type: 'button', class: 'btn jb-icon', title: 'Remove', 'aria-label': 'Remove', 'data-testid': 'input-remove', onclick: () => { row.remove(); refresh(); } }, '×'));
      const show = () => {
        if (mode.value === 'dataset') replace(box, dsSel);
        else if (mode.value === 'file') replace(box, fileIn, h('span', { class: 'jn-as' }, h('span', { class: 'muted' }, 'as dataset'), dsName), dsNote);
        else replace(box, uri);
        refresh();
      };
      const noteExisting = () => {
        const n = dsName.value.trim();
        dsNote.textContent = n && st.datasets.some((d) => d.name === n) && st.datasetUploads.get(n) !== (fileIn.files || [])[0] ? 'replaces the dataset ' + n : '';
      };
      fileIn.addEventListener('change', () => {
        const f = fileIn.files && fileIn.files[0];
        if (f) dsName.value = f.name.replace(/[/\\]/g, '_');
        if (f && !nameIn.value.trim()) nameIn.value = f.name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
        noteExisting();
        refresh();
      });
      dsName.addEventListener('input', noteExisting);
      mode.addEventListener('change', show);
      row.inputParts = { nameIn, mode, dsSel, fileIn, dsName, uri, noteExisting };
      mode.value = init.uri ? 'uri' : 'dataset';
      show();
      inputRows.appendChild(row);
      return row;
    }
    async function loadDatasets() {
      try { st.datasets = (await request('GET', '/api/atelier/datasets')).datasets || []; } catch (_) { st.datasets = []; }
      for (const row of inputRows.children) if (row.inputParts) { datasetOptions(row.inputParts.dsSel); row.inputParts.noteExisting(); }
    }
    async function loadSuggestions() {
      // the outputs and models of recent jobs: what a next job usually reads
      try {
        const jobs = (await request('GET', JOBS + '?limit=100')).jobs || [];
        const out = [];
        for (const j of jobs) {
          if (j.status !== 'succeeded' || !isUserJob(j)) continue;
          for (const [n, o] of Object.entries((j.result || {}).outputs || {})) if (o && o.uri && o.files) out.push([o.uri, `${j.name || j.id} · ${n}`]);
        }
        replace(uriList, out.slice(0, 60).map(([v, label]) => h('option', { value: v, label })));
      } catch (_) { /* suggestions only */ }
    }

    // ---------- the spec
    const nonEmptyRows = (tbody, prefix) => [...tbody.querySelectorAll('tr')].map((tr) => [tr.querySelector(`[data-testid=${prefix}-key]`).value.trim(), tr.querySelector(`[data-testid=${prefix}-value]`).value]);
    function parseCommand() {
      const text = command.value.trim();
      if (text.startsWith('[')) {
        let cmd;
        try { cmd = JSON.parse(text); } catch (e) { throw new Error('The command is not a JSON list: ' + e.message); }
        if (!Array.isArray(cmd) || cmd.some((a) => typeof a !== 'string')) throw new Error('The command must be a list of strings');
        return cmd;
      }
      return command.value.split('\n').map((a) => a.replace(/\r$/, '')).filter((a) => a.trim() !== '');
    }
    /** The spec and what must be uploaded first; `problems` are mistakes to fix before sending. */
    function collect() {
      const problems = [];
      const spec = {};
      const nm = name.value.trim();
      if (nm) {
        spec.name = nm;
        if (!NAME_RE.test(nm)) problems.push(`The job name '${nm}' must be 1–64 letters, digits, '_' or '-', starting with a letter or digit`);
      }
      let cmd = [];
      try { cmd = parseCommand(); } catch (e) { problems.push(e.message); }
      if (!cmd.length && !problems.length) problems.push('Give the command to run, one argument per line (e.g. python, then train.py)');
      spec.command = cmd;
      const codeFiles = [...st.code.values()];
      const inputs = {}, uploads = [];
      for (const row of inputRows.children) {
        const p = row.inputParts;
        if (!p) continue;
        const n = p.nameIn.value.trim();
        let src = '';
        if (p.mode.value === 'dataset') src = p.dsSel.value ? 'datasets/' + p.dsSel.value : '';
        else if (p.mode.value === 'uri') src = p.uri.value.trim();
        else {
          const f = p.fileIn.files && p.fileIn.files[0];
          const dn = p.dsName.value.trim();
          if (f && !dn) problems.push(`Input '${n || '?'}': give the dataset name to upload ${f.name} as`);
          if (f && dn) { src = 'datasets/' + dn; uploads.push({ name: dn, file: f }); }
        }
        if (!n && !src) continue;
        if (!n) { problems.push(`The input from '${src}' has no name`); continue; }
        if (!NAME_RE.test(n)) problems.push(`Input name '${n}' must be 1–64 letters, digits, '_' or '-', starting with a letter or digit`);
        if (n in inputs) problems.push(`The input '${n}' is given twice`);
        if (!src) problems.push(p.mode.value === 'file' ? `Input '${n}': pick the local file to upload` : p.mode.value === 'uri' ? `Input '${n}': type its source (runs:/… or models:/…)` : `Input '${n}': pick a dataset`);
        inputs[n] = src;
      }
      const dup = uploads.find((u) => uploads.some((v) => v.name === u.name && v.file !== u.file));
      if (dup) problems.push(`Two inputs upload different files as the dataset '${dup.name}'`);
      spec.inputs = inputs;
      if (st.kind === 'processing') {
        const outs = outputs.value.split(/[\s,]+/).filter(Boolean);
        const seen = new Set();
        for (const o of outs) {
          if (!NAME_RE.test(o)) problems.push(`Output name '${o}' must be 1–64 letters, digits, '_' or '-', starting with a letter or digit`);
          if (seen.has(o)) problems.push(`The output '${o}' is named twice`);
          seen.add(o);
        }
        if (outs.length) spec.outputs = outs;
      }
      const kv = (pairs, what) => {
        const out = {};
        for (const [k, v] of pairs) {
          if (!k) { if (v.trim()) problems.push(`The ${what} with the value '${v}' has no name`); continue; }
          if (k in out) problems.push(`The ${what} '${k}' is given twice`);
          out[k] = v;
        }
        return out;
      };
      spec.hyperparameters = kv(nonEmptyRows(hps.rows, 'hp'), 'hyperparameter');
      const envs = kv(nonEmptyRows(env.rows, 'env'), 'environment variable');
      if (Object.keys(envs).length) spec.environment = envs;
      const rules = [...ruleRows.querySelectorAll('[data-testid=rule-input]')].map((i) => i.value.trim()).filter(Boolean);
      if (rules.length) spec.rules = rules;
      const exp = experiment.value.trim();
      if (exp) spec.experiment = exp;
      const mult = (UNITS.find(([u]) => u === unit.value) || UNITS[0])[1];
      const rt = Math.round(Number(runtime.value) * mult);
      if (!(rt >= 1) || String(runtime.value).trim() === '') problems.push('The maximum runtime must be a positive number');
      else spec.max_runtime_seconds = rt;
      const reg = register.value.trim();
      if (st.kind === 'training' && reg) spec.register_model = reg;
      return { spec, problems, codeFiles, uploads };
    }

    // ---------- the command line equivalent
    function renderCli() {
      const { spec, codeFiles, uploads } = collect();
      const args = ['atelier', 'jobs', 'run', '--kind', st.kind];
      if (spec.name) args.push('--name', spec.name);
      for (const [n, src] of Object.entries(spec.inputs)) {
        const up = uploads.find((u) => 'datasets/' + u.name === src);
        args.push('--input', `${n}=${up ? up.file.name : src || '…'}`);
      }
      for (const o of spec.outputs || []) args.push('--output', o);
      for (const [k, v] of Object.entries(spec.hyperparameters)) args.push('--hyperparameter', `${k}=${v}`);
      for (const [k, v] of Object.entries(spec.environment || {})) args.push('--env', `${k}=${v}`);
      for (const r of spec.rules || []) args.push('--rule', r);
      if (spec.experiment) args.push('--experiment', spec.experiment);
      if (spec.max_runtime_seconds && spec.max_runtime_seconds !== 86400) args.push('--max-runtime', String(spec.max_runtime_seconds));
      if (spec.register_model) args.push('--register-model', spec.register_model);
      // the CLI uploads a folder with --code, else the files the command names
      const named = new Set(spec.command.slice(1));
      if (st.folder || codeFiles.some((c) => !named.has(c.rel))) args.push('--code', st.folder || '.');
      cli.textContent = args.map(shellQuote).join(' ') + ' -- ' + (spec.command.length ? spec.command.map(shellQuote).join(' ') : '<command>');
    }
    let refreshTimer = null;
    function refresh() {
      if (refreshTimer) return;
      refreshTimer = setTimeout(() => { refreshTimer = null; renderCli(); }, 50);
    }
    form.addEventListener('input', refresh);
    form.addEventListener('change', refresh);

    // ---------- upload and submit
    function showProgress(done, total, sentBytes, totalBytes, label) {
      progress.hidden = false;
      progress.dataset.done = String(done);
      progress.dataset.total = String(total);
      progressBar.style.width = (totalBytes ? (100 * sentBytes) / totalBytes : total ? (100 * done) / total : 100).toFixed(1) + '%';
      progressText.textContent = label;
    }
    async function uploadAll(codeFiles, uploads) {
      // the code folder: a new one whenever the files changed since the last upload
      const sig = codeSig();
      const codeDone = codeFiles.length && st.uploaded && st.uploaded.sig === sig;
      const dest = codeDone ? st.uploaded.dest : S.projectFolder('jobs-code/' + randomHex());
      const todo = [];
      if (!codeDone) for (const c of codeFiles) { c.state = ''; c.sent = 0; showFileState(c); todo.push({ what: c.rel, file: c.file, url: ARTIFACTS + '/' + dest + '/' + encodePath(c.rel), code: c }); }
      for (const u of uploads) {
        if (st.datasetUploads.get(u.name) === u.file) continue;
        todo.push({ what: 'dataset ' + u.name, file: u.file, url: '/api/atelier/datasets/' + enc(u.name), dataset: u.name });
      }
      if (!todo.length) return codeFiles.length ? dest : null;
      const totalBytes = todo.reduce((n, t) => n + t.file.size, 0);
      let doneBytes = 0;
      for (let i = 0; i < todo.length; i++) {
        const t = todo[i];
        const label = (sent) => `Uploading ${i + 1} of ${todo.length}: ${t.what} (${fmtBytes(doneBytes + sent)} of ${fmtBytes(totalBytes)})`;
        showProgress(i, todo.length, doneBytes, totalBytes, label(0));
        if (t.code) { t.code.state = 'sending'; showFileState(t.code); }
        try {
          await putFile(t.url, t.file, (sent) => {
            if (t.code) { t.code.sent = sent; showFileState(t.code); }
            showProgress(i, todo.length, doneBytes + sent, totalBytes, label(sent));
          });
        } catch (e) {
          if (t.code) { t.code.state = 'failed'; showFileState(t.code); }
          throw new Error(`Uploading ${t.what} failed: ${e.message}`);
        }
        doneBytes += t.file.size;
        if (t.code) { t.code.state = 'done'; showFileState(t.code); }
        if (t.dataset) st.datasetUploads.set(t.dataset, t.file);
      }
      showProgress(todo.length, todo.length, totalBytes, totalBytes, `Uploaded ${todo.length} file${todo.length === 1 ? '' : 's'} (${fmtBytes(totalBytes)})`);
      if (codeFiles.length) st.uploaded = { sig, dest };
      if (uploads.length) loadDatasets();
      return codeFiles.length ? dest : null;
    }
    // which card a message is about (the server's and ours name the field first)
    const CARD_OF = [[/^rules:/i, rulesCard], [/^uploading /i, codeCard], [/^'code'/, codeCard], [/input/i, inputsCard], [/dataset/i, inputsCard],
      [/output/i, outputsCard], [/hyperparameter|environment/i, paramsCard], [/command/i, commandCard],
      [/job name|the job|max_runtime|maximum runtime|experiment|register_model/i, jobCard]];
    const cards = [jobCard, codeCard, commandCard, inputsCard, outputsCard, paramsCard, rulesCard];
    function showErrors(list) {
      replace(err, list.length ? h('div', { class: 'error-box jn-error', role: 'alert', 'data-testid': 'new-job-error' },
        list.length === 1 ? list[0] : h('ul', null, list.map((m) => h('li', null, m)))) : null);
      for (const c of cards) {
        c.classList.remove('jn-bad');
        const old = c.querySelector(':scope > .jn-card-error');
        if (old) old.remove();
      }
      for (const m of list) {
        const hit = CARD_OF.find(([re]) => re.test(m));
        if (!hit || hit[1].hidden) continue;
        const card = hit[1];
        card.classList.add('jn-bad');
        let box = card.querySelector(':scope > .jn-card-error');
        if (!box) { box = h('div', { class: 'jn-card-error', 'data-raw': true, 'data-testid': 'card-error' }); card.appendChild(box); }
        append(box, h('div', null, m));
      }
      if (list.length) err.scrollIntoView({ block: 'center', behavior: 'smooth' });
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (st.busy) return;
      showErrors([]);
      const { spec, problems, codeFiles, uploads } = collect();
      if (problems.length) return showErrors(problems);
      st.busy = true;
      submit.disabled = true;
      submit.textContent = 'Starting…';
      // the files being sent stay as they are until the job is queued
      for (const b of codeCard.querySelectorAll('button')) b.disabled = true;
      try {
        const code = await uploadAll(codeFiles, uploads);
        if (code) spec.code = code;
        const res = await request('POST', JOBS, { kind: st.kind, spec });
        location.href = '/jobs/' + enc(res.job.id);
        return;
      } catch (e) {
        showErrors([e.message || String(e)]);
      }
      st.busy = false;
      submit.disabled = false;
      submit.textContent = 'Start the job';
      for (const b of codeCard.querySelectorAll('.jb-card-head button')) b.disabled = false;
      renderCode();
    });

    setKind('processing');
    renderCode();
    addInput();
    hps.add();
    loadDatasets();
    loadSuggestions();
    renderCli();
  };

  // ---------------------------------------------------------------- tuning

  function tuningSections(first, body) {
    const st = { param: null, line: null, scatter: null, spec: first.spec || {} };
    const summary = h('section', { class: 'card', 'data-testid': 'tuning-summary' });
    const lineBox = h('div', { class: 'chart', 'data-testid': 'objective-chart' });
    const paramSel = h('select', { 'data-testid': 'tuning-param', 'aria-label': 'Hyperparameter' });
    const scatterBox = h('div', { class: 'chart', 'data-testid': 'objective-scatter' });
    const charts = h('div', { class: 'jb-charts fit' },
      h('div', { class: 'chart-card' }, h('div', { class: 'jb-chart-head' }, h('h3', null, 'Objective by trial'), h('span', { class: 'legend jb-legend' },
        h('span', null, h('i', { class: 'sw', style: 'background:' + C.PALETTE[0] }), 'trial'), h('span', null, h('i', { class: 'sw', style: 'background:' + C.PALETTE[1] }), 'best so far'))), lineBox),
      h('div', { class: 'chart-card' }, h('div', { class: 'jb-chart-head' }, h('h3', null, 'Objective against ', paramSel),
        h('span', { class: 'legend jb-legend' }, h('span', null, h('i', { class: 'sw', style: 'background:#e8590c' }), 'best'),
          h('span', null, h('i', { class: 'sw', style: 'background:#98a2b3' }), 'stopped early'))), scatterBox));
    const chartsCard = h('section', { class: 'card', 'data-testid': 'tuning-charts' }, h('div', { class: 'jb-card-head' }, h('h2', null, 'Objective'),
      h('span', { class: 'muted' }, 'click a point to open its trial')), charts);
    const trialsCard = h('section', { class: 'card flush', 'data-testid': 'trials' });
    const specCard = h('details', { class: 'card jb-details' }, h('summary', null, 'Spec'), h('pre', { class: 'json' }, JSON.stringify(first.spec || {}, null, 2)));
    append(body, summary, chartsCard, trialsCard, specCard);
    paramSel.addEventListener('change', () => { st.param = paramSel.value; draw(st.last); });

    const num = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v));
    function trialBadge(s) {
      const cls = { succeeded: 'FINISHED', Completed: 'FINISHED', running: 'RUNNING', InProgress: 'RUNNING', queued: 'SCHEDULED', failed: 'FAILED', Failed: 'FAILED', cancelled: 'KILLED', Stopped: 'KILLED', Stopping: 'SCHEDULED' }[s] || '';
      return h('span', { class: 'badge ' + cls, 'data-testid': 'trial-status' }, s || '—');
    }
    function draw(doc) {
      st.last = doc;
      const trials = doc.trials || [];
      const obj = doc.objective || {};
      const minimize = obj.direction !== 'maximize';
      const best = doc.best || null;
      const isBest = (t) => best && ((best.job_id && t.job_id === best.job_id) || (best.run_id && t.run_id === best.run_id));
      // objective by trial, with the best so far
      let bestSoFar = null;
      const pts = [], bestLine = [];
      trials.forEach((t, i) => {
        const v = num(t.objective);
        if (Number.isFinite(v)) {
          pts.push({ x: i + 1, y: v, step: i + 1 });
          if (bestSoFar === null || (minimize ? v < bestSoFar : v > bestSoFar)) bestSoFar = v;
        }
        if (bestSoFar !== null) bestLine.push({ x: i + 1, y: bestSoFar, step: i + 1 });
      });
      const lopts = { series: [{ label: 'best so far', color: C.PALETTE[1], points: bestLine }, { label: 'trial', color: C.PALETTE[0], points: pts }], xKind: 'step', empty: 'No trial has an objective yet' };
      if (!st.line) st.line = markChart(lineBox, lopts); else st.line.update(lopts);
      // objective against a hyperparameter
      const params = [...new Set(trials.flatMap((t) => Object.keys(t.params || {})))].sort();
      if (!st.param || !params.includes(st.param)) {
        st.param = params.find((p) => new Set(trials.map((t) => String((t.params || {})[p]))).size > 1) || params[0] || null;
      }
      replace(paramSel, params.map((p) => h('option', { value: p }, p)));
      if (st.param) paramSel.value = st.param;
      // a parameter searched on a log scale is plotted on one (log10 of its values)
      const pspec = ((st.spec || {}).parameters || {})[st.param] || {};
      const values = trials.map((t) => (t.params || {})[st.param]).filter((v) => v !== undefined);
      const logX = pspec.scale === 'log' && values.every((v) => Number(v) > 0);
      const xOfTrial = (t) => (logX ? Math.log10(Number(t.params[st.param])) : t.params[st.param]);
      const spts = trials.map((t, i) => ({ t, i })).filter(({ t }) => Number.isFinite(num(t.objective)) && st.param && (t.params || {})[st.param] !== undefined)
        .map(({ t, i }) => ({ x: xOfTrial(t), y: num(t.objective), label: `trial ${i + 1}` + (isBest(t) ? ' (best)' : '') + (t.stopped_early ? ' · stopped early' : ''),
          color: isBest(t) ? '#e8590c' : t.stopped_early ? '#98a2b3' : C.PALETTE[0], id: t.job_id }));
      const sopts = { points: spts, xLabel: logX ? `log10(${st.param})` : st.param || '', yLabel: obj.metric || 'objective', onClick: (p) => { if (p.id) location.href = '/jobs/' + enc(p.id); } };
      if (!st.scatter) st.scatter = C.scatterChart(scatterBox, sopts); else st.scatter.update(sopts);
      // the trials table
      replace(trialsCard, h('div', { class: 'card-head' }, h('h2', null, 'Trials'), h('span', { class: 'muted' }, String(trials.length)),
        h('span', { class: 'spacer' }), h('span', { class: 'muted' }, obj.metric ? `${obj.metric}, ${minimize ? 'lower' : 'higher'} is better` : '')),
      trials.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'trials-table' },
        h('thead', null, h('tr', null, h('th', { class: 'num' }, '#'), h('th', null, 'Trial'), h('th', null, 'Status'), h('th', { class: 'num' }, obj.metric || 'objective'), params.map((p) => h('th', { class: 'num' }, p)), h('th', null, 'Run'))),
        h('tbody', null, trials.map((t, i) => h('tr', { 'data-testid': 'trial-row', 'data-job-id': t.job_id || '', 'data-best': isBest(t) ? 'true' : 'false', class: isBest(t) ? 'selected jb-best' : '' },
          h('td', { class: 'num' }, i + 1),
          h('td', null, t.job_id ? h('a', { href: '/jobs/' + enc(t.job_id), 'data-testid': 'trial-link', class: 'mono' }, String(t.job_id).slice(0, 12)) : '—',
            isBest(t) ? h('span', { class: 'badge FINISHED jb-best-badge', 'data-testid': 'best-trial' }, 'best') : null),
          h('td', null, trialBadge(t.status), t.stopped_early ? h('span', { class: 'badge jb-early', 'data-testid': 'stopped-early', title: 'stopped early: its curve was worse than the median of the others at the same step' }, 'stopped early') : null),
          h('td', { class: 'num' }, Number.isFinite(num(t.objective)) ? fmtNum(num(t.objective)) : '—'),
          params.map((p) => h('td', { class: 'num' }, (t.params || {})[p] === undefined ? '' : String(t.params[p]))),
          h('td', null, t.run_id ? h('a', { href: '/runs/' + enc(t.run_id), class: 'mono' }, String(t.run_id).slice(0, 8)) : '—')))))) :
        h('div', { class: 'empty' }, 'No trials yet.'));
    }
    return {
      facts(j, fact) {
        const doc = (isActive(j) ? j.progress : j.result) || {};
        const obj = doc.objective || {};
        const best = doc.best;
        return [
          fact('Objective', obj.metric ? `${obj.direction || 'minimize'} ${obj.metric}` : null),
          fact('Trials', String((doc.trials || []).length) + (doc.max_jobs ? ' of ' + doc.max_jobs : ''), 'trial-count'),
          fact('Strategy', doc.strategy ? doc.strategy + (doc.early_stopping && doc.early_stopping !== 'off' ? ' · early stopping: ' + doc.early_stopping : '') : null),
          fact('At once', doc.max_parallel_jobs ? String(doc.parallel && doc.parallel < doc.max_parallel_jobs ? `${doc.parallel} (asked ${doc.max_parallel_jobs})` : doc.max_parallel_jobs) : null),
          fact('Best objective', best && Number.isFinite(Number(best.objective)) ? fmtNum(Number(best.objective)) : null, 'best-objective'),
          fact('Parent run', doc.parent_run_id ? h('a', { href: '/runs/' + enc(doc.parent_run_id), class: 'mono' }, String(doc.parent_run_id).slice(0, 12)) : null),
        ];
      },
      async render(j) {
        const doc = (isActive(j) || !j.result || !(j.result.trials) ? j.progress : j.result) || {};
        const best = doc.best;
        replace(summary, best ? h('div', { class: 'jb-best-line', 'data-testid': 'best-summary' },
          h('b', null, 'Best trial: '), best.job_id ? h('a', { href: '/jobs/' + enc(best.job_id) }, String(best.job_id).slice(0, 12)) : '—',
          ` · ${(doc.objective || {}).metric || 'objective'} = ${Number.isFinite(Number(best.objective)) ? fmtNum(Number(best.objective)) : '—'}`,
          h('span', { class: 'mono muted' }, ' ' + Object.entries(best.params || {}).map(([k, v]) => `${k}=${v}`).join(' ')))
          : h('div', { class: 'muted' }, isActive(j) ? 'No trial has finished yet.' : 'No best trial.'),
        doc.note ? h('div', { class: 'jb-note muted', 'data-testid': 'tuning-note' }, doc.note) : null);
        draw(doc);
      },
    };
  }

  // ---------------------------------------------------------------- monitoring execution

  function monitoringSections(first, body) {
    const card = h('section', { class: 'card', 'data-testid': 'monitoring-execution' });
    const violations = h('section', { class: 'card flush' });
    // what the execution found comes first, the job's own facts after
    body.insertBefore(card, body.querySelector('[data-testid=job-facts]'));
    body.insertBefore(violations, body.querySelector('[data-testid=job-facts]'));
    const scheduleOf = (j) => (j.spec || {}).schedule || (j.result || {}).schedule || j.name;
    return {
      facts(j, fact) {
        const s = scheduleOf(j);
        return [fact('Schedule', h('a', { href: '/monitor/' + enc(s), 'data-testid': 'schedule-link' }, s))];
      },
      async render(j) {
        const s = scheduleOf(j);
        const r = j.result || {};
        const spec = j.spec || {};
        const a = r.window_start_ms || spec.window_start_ms, b = r.window_end_ms || spec.window_end_ms;
        replace(card, h('div', { class: 'jb-card-head' }, h('h2', null, 'Monitoring execution'), h('span', { class: 'spacer' }),
          h('a', { class: 'btn primary', href: '/monitor/' + enc(s), 'data-testid': 'open-schedule' }, 'Open the schedule ' + s)),
        h('div', { class: 'facts' },
          h('div', null, h('span', null, 'Schedule'), h('b', null, h('a', { href: '/monitor/' + enc(s) }, s))),
          h('div', null, h('span', null, 'Endpoint'), h('b', null, r.endpoint ? h('a', { href: '/endpoints/' + enc(r.endpoint) }, r.endpoint) : '—')),
          h('div', null, h('span', null, 'Check'), h('b', null, r.kind ? String(r.kind).replace(/_/g, ' ') : '—')),
          h('div', { class: 'jb-wide' }, h('span', null, 'Window'), h('b', null, a && b ? `${fmtDate(a)} → ${fmtDate(b)}` : '—')),
          h('div', null, h('span', null, 'Captured requests'), h('b', null, r.captured_requests === undefined ? '—' : String(r.captured_requests))),
          h('div', null, h('span', null, 'Outcome'), h('b', { 'data-testid': 'execution-outcome' }, isActive(j) ? ((j.progress || {}).phase || 'running') : r.status ? String(r.status).replace(/_/g, ' ') : j.status)),
          h('div', null, h('span', null, 'Violations'), h('b', null, String(r.violation_count || (r.violations || []).length || 0)))));
        const v = Array.isArray(r.violations) ? r.violations : [];
        if (!v.length) { violations.hidden = true; return; }
        violations.hidden = false;
        replace(violations, h('div', { class: 'card-head' }, h('h2', null, 'Violations'), h('span', { class: 'muted' }, String(v.length))),
          h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'violations-table' },
            h('thead', null, h('tr', null, h('th', null, 'Feature'), h('th', null, 'Check'), h('th', null, 'Description'))),
            h('tbody', null, v.map((x) => h('tr', null, h('td', { class: 'mono' }, x.feature_name || ''), h('td', null, String(x.constraint_check_type || '').replace(/_/g, ' ')), h('td', { class: 'wrap' }, x.description || '')))))));
      },
    };
  }

  // ---------------------------------------------------------------- batch transform

  /** What a batch transform read and wrote, as facts and links; the raw documents folded away. */
  function batchSections(first, body) {
    const card = h('section', { class: 'card', 'data-testid': 'batch-transform' });
    const raw = h('details', { class: 'card jb-details' });
    body.insertBefore(card, body.querySelector('[data-testid=job-facts]'));
    append(body, raw);
    let lastKey = '';
    return {
      async render(j) {
        const s = j.spec || {}, r = j.result || {}, p = j.progress || {};
        const key = JSON.stringify([s, r, p, j.status]);
        if (key === lastKey) return;
        lastKey = key;
        const outputs = (r.outputs || []).map((o) => {
          const path = S.artifactRoot(o);
          return path ? h('a', { href: S.inProject(ARTIFACTS + '/' + encodePath(path)), class: 'tok', title: o, 'data-testid': 'batch-output' }, path.split('/').pop()) : h('span', { class: 'tok mono', title: o }, o);
        });
        const rows = isActive(j) ? p.rows : r.rows, failed = isActive(j) ? p.failed : r.failed;
        replace(card, h('div', { class: 'jb-card-head' }, h('h2', null, 'Batch transform')),
          h('div', { class: 'facts' },
            h('div', { class: 'jb-wide' }, h('span', null, 'Model'), h('b', null, s.model ? sourceLink(s.model) : '—')),
            h('div', null, h('span', null, 'Dataset'), h('b', null, s.dataset ? sourceLink(/^[a-z]+:\//.test(s.dataset) ? s.dataset : 'datasets/' + s.dataset) : '—')),
            h('div', null, h('span', null, 'Rows'), h('b', { 'data-testid': 'batch-rows' }, isNum(rows) ? String(rows) : '—')),
            h('div', null, h('span', null, 'Failed rows'), h('b', null, isNum(failed) ? String(failed) : '—')),
            h('div', { class: 'jb-wide' }, h('span', null, 'Output'), h('b', null, outputs.length ? outputs : '—'))),
          (r.errors || []).length ? h('div', { class: 'table-wrap', style: 'margin-top:12px' }, h('table', { class: 'data' },
            h('thead', null, h('tr', null, h('th', null, 'File'), h('th', { class: 'num' }, 'Line'), h('th', null, 'Error'))),
            h('tbody', null, r.errors.slice(0, 20).map((e) => h('tr', null, h('td', { class: 'mono' }, e.file || ''), h('td', { class: 'num' }, String(e.line || '')), h('td', { class: 'wrap' }, e.message || '')))))) : null);
        replace(raw, h('summary', null, 'Spec and result (JSON)'),
          h('div', { class: 'grid2' }, h('pre', { class: 'json', 'data-testid': 'job-spec-json' }, JSON.stringify(s, null, 2)),
            h('pre', { class: 'json', 'data-testid': 'job-result-json' }, JSON.stringify(isActive(j) ? p : r, null, 2))));
      },
    };
  }

  // ---------------------------------------------------------------- other kinds

  function genericSections(first, body) {
    const grid = h('div', { class: 'grid2' });
    append(body, grid);
    let lastKey = '';
    return {
      async render(j) {
        const doc = isActive(j) ? j.progress : j.result;
        const key = JSON.stringify([j.spec, doc, j.status]);
        if (key === lastKey) return;
        lastKey = key;
        replace(grid,
          h('section', { class: 'card' }, h('h2', null, 'Spec'), h('pre', { class: 'json', 'data-testid': 'job-spec-json' }, JSON.stringify(j.spec || {}, null, 2))),
          h('section', { class: 'card' }, h('h2', null, isActive(j) ? 'Progress' : 'Result'), h('pre', { class: 'json', 'data-testid': 'job-result-json' }, JSON.stringify(doc || {}, null, 2))));
      },
    };
  }
})();
