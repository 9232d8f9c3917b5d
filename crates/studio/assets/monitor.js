// Atelier Studio: the Model Monitor pages (registered into window.AtelierStudio.pages).
// Schedules and their executions come from /api/atelier/monitoring-schedules (crate `monitoring`),
// endpoints from /api/atelier/endpoints; retraining starts an Autopilot job (/autopilot/<id>).
// Pages stay live through the Studio's change stream: every execution is a job, a store write.
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, append, request, errorBox, fmtAgo, fmtDate, fmtNum, live, main, pages, C } = S;
  const API = '/api/atelier/monitoring-schedules';
  const enc = encodeURIComponent;
  const { svgEl, niceStep } = window.AtelierCharts;
  const COL = { value: C.PALETTE[0], threshold: '#c92a2a', baseline: '#8a99c7', current: '#e8590c', estimate: '#0c8599', ok: '#2b8a3e', bad: '#c92a2a', none: '#98a2b3', run: '#3b5bdb' };
  /** p-values below this are drawn at it on the (log) drift chart. */
  const P_FLOOR = 1e-16;

  // ---------------------------------------------------------------- formatting

  const pad = (n) => String(n).padStart(2, '0');
  function hms(ms) { const d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function fmtWindow(a, b) {
    if (a === null || a === undefined || b === null || b === undefined) return '—';
    const same = new Date(a).toDateString() === new Date(b).toDateString();
    return fmtDate(a) + ' → ' + (same ? hms(b) : fmtDate(b));
  }
  /** A window in a table: the year only when it is not this year's. */
  function fmtWindowShort(a, b) {
    if (a === null || a === undefined || b === null || b === undefined) return '—';
    const y = String(new Date().getFullYear()) + '-';
    const d = (ms) => { const t = fmtDate(ms); return t.startsWith(y) ? t.slice(5) : t; };
    return d(a) + ' → ' + (new Date(a).toDateString() === new Date(b).toDateString() ? hms(b) : d(b));
  }
  function fmtIn(ms) {
    if (!ms) return '—';
    const s = (ms - Date.now()) / 1000;
    if (s <= 1) return 'due now';
    if (s < 60) return 'in ' + Math.ceil(s) + ' s';
    if (s < 3600) return 'in ' + Math.round(s / 60) + ' min';
    if (s < 86400) return 'in ' + Math.round(s / 3600) + ' h';
    return 'in ' + Math.round(s / 86400) + ' d';
  }
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const fmt = (v) => (isNum(v) ? fmtNum(v) : '—');
  const pct = (v) => (isNum(v) ? (v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0) + ' %' : '—');
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many || one + 's');
  const KIND = { data_quality: 'Data quality', model_quality: 'Model quality', model_bias: 'Model bias', model_explainability: 'Model explainability' };
  const kindLabel = (k) => KIND[k] || 'Data quality';
  const isClarify = (k) => k === 'model_bias' || k === 'model_explainability';
  const METHOD = { ks: 'KS p-value', chi2: 'χ² p-value', wasserstein: 'Wasserstein (normed)', jensen_shannon: 'Jensen–Shannon', psi: 'PSI', cdf_distance: 'CDF distance' };
  const isPvalue = (m) => m === 'ks' || m === 'chi2';

  // ---------------------------------------------------------------- executions

  /** What an execution found: running | failed | cancelled | violations | ok | no_data | no_labels. */
  function outcome(e) {
    if (!e) return 'none';
    if (e.status === 'queued' || e.status === 'running') return 'running';
    if (e.status === 'failed' || e.status === 'cancelled') return e.status;
    const r = e.result || {};
    return r.status || 'ok';
  }
  const OUTCOME = {
    running: ['RUNNING', 'running'], failed: ['FAILED', 'failed'], cancelled: ['KILLED', 'cancelled'],
    violations: ['ALERT', 'violations'], ok: ['FINISHED', 'ok'], no_data: ['NODATA', 'no data'],
    no_labels: ['NODATA', 'no labels'], insufficient_data: ['NODATA', 'too few rows'], none: ['', 'never run'],
  };
  const violationsOf = (e) => ((e && e.result) || {}).violations || [];
  const hasData = (e) => { const o = outcome(e); return o === 'ok' || o === 'violations'; };
  const xOf = (e) => e.window_end_ms || e.created_ms;
  function execBadge(e, testid) {
    const o = outcome(e);
    const [cls, text] = OUTCOME[o] || ['', o];
    const n = violationsOf(e).length;
    return h('span', { class: 'badge ' + cls, 'data-testid': testid || 'execution-status', 'data-status': o, title: (e && e.error) || ((e && e.result) || {}).message || '' },
      o === 'violations' ? plural(n, 'violation') : text);
  }
  function alertBadge(s) {
    if (!s.alerting) return null;
    return h('span', { class: 'badge ALERT', 'data-testid': 'alert-badge', title: 'The latest execution that saw data found violations' }, 'ALERT');
  }
  function jobBadge(status) {
    const cls = { succeeded: 'FINISHED', running: 'RUNNING', queued: 'SCHEDULED', failed: 'FAILED', cancelled: 'KILLED' }[status] || '';
    return h('span', { class: 'badge ' + cls, 'data-testid': 'retrain-status', 'data-status': status }, status || 'unknown');
  }
  const artifactHref = (path) => S.inProject(S.ARTIFACTS + '/' + S.encodePath(String(path)));

  // ---------------------------------------------------------------- SVG charts

  function tooltip(container) {
    let tip = container.querySelector(':scope > .tooltip');
    if (!tip) { tip = h('div', { class: 'tooltip', 'data-testid': 'chart-tooltip' }); tip.hidden = true; container.appendChild(tip); }
    return tip;
  }
  /** Fills the tooltip with a head line and [colour, label, value] rows, placed beside (px, py). */
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
  /** Redraws on width changes; returns { update(opts), destroy() }. */
  function chartOf(container, draw, opts) {
    container.classList.add('chart');
    let o = opts, lastW = container.clientWidth;
    draw(o);
    let ro = null;
    if (typeof ResizeObserver !== 'undefined') {
      ro = new ResizeObserver(() => { const w = container.clientWidth; if (w !== lastW) { lastW = w; draw(o); } });
      ro.observe(container);
    }
    return { update(next) { o = Object.assign({}, o, next); draw(o); }, destroy() { if (ro) ro.disconnect(); } };
  }
  function freshSvg(container, W, H) {
    const old = container.querySelector(':scope > svg');
    if (old) old.remove();
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
    container.insertBefore(svg, container.firstChild);
    return svg;
  }

  /** Time ticks for [a, b]: [[t, label]], round local times labelled distinctly (charts.js). */
  const timeTicks = (a, b, count) => C.timeTicks(a, b, count);

  /**
   * Executions over time: one mark per execution at its window's end, its height the number of
   * violations; empty windows are hollow grey rings on the axis, failed runs red crosses.
   * opts: { execs (any order), selected (execution id), onSelect(id), empty }.
   */
  function timelineChart(container, opts) {
    const M = { l: 38, r: 16, t: 14, b: 26 };
    return chartOf(container, (o) => {
      const W = Math.max(240, container.clientWidth || 600), H = Math.max(120, container.clientHeight || 170);
      const svg = freshSvg(container, W, H);
      const pts = (o.execs || []).map((e) => ({ e, x: xOf(e), o: outcome(e), n: violationsOf(e).length })).sort((a, b) => a.x - b.x);
      container.dataset.executions = String(pts.length);
      container.dataset.noData = String(pts.filter((p) => p.o === 'no_data' || p.o === 'no_labels').length);
      container.dataset.violations = String(pts.filter((p) => p.o === 'violations').length);
      if (!pts.length) {
        svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = o.empty || 'No executions yet';
        return;
      }
      let x0 = pts[0].x, x1 = pts[pts.length - 1].x;
      if (x1 - x0 < 60000) { const c = (x0 + x1) / 2; x0 = c - 30000; x1 = c + 30000; }
      const padX = (x1 - x0) * 0.04;
      x0 -= padX; x1 += padX;
      const ymax = Math.max(1, ...pts.map((p) => p.n));
      const ystep = Math.max(1, Math.ceil(niceStep(ymax, 3)));
      const ytop = Math.ceil(ymax / ystep) * ystep;
      const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
      const sy = (y) => H - M.b - (y / ytop) * (H - M.t - M.b);
      const grid = svgEl('g', { class: 'grid' }, svg), axis = svgEl('g', { class: 'axis' }, svg);
      for (let v = 0; v <= ytop; v += ystep) {
        svgEl('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
        svgEl('text', { x: M.l - 6, y: sy(v) + 3.5, 'text-anchor': 'end' }, axis).textContent = String(v);
      }
      for (const [t, label] of timeTicks(x0, x1, Math.max(2, Math.floor((W - M.l) / 90)))) {
        svgEl('text', { x: sx(t), y: H - M.b + 16, 'text-anchor': 'middle' }, axis).textContent = label;
      }
      svgEl('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
      const marks = svgEl('g', {}, svg);
      for (const p of pts) {
        const cx = sx(p.x), base = sy(0);
        const g = svgEl('g', { 'data-testid': 'timeline-point', 'data-status': p.o, 'data-id': p.e.id, 'data-violations': String(p.n), class: 'mon-mark' + (p.e.id === o.selected ? ' selected' : '') }, marks);
        if (p.e.id === o.selected) svgEl('circle', { cx, cy: p.o === 'violations' ? sy(p.n) : base, r: 9, class: 'mon-ring' }, g);
        if (p.o === 'violations') {
          svgEl('line', { x1: cx, x2: cx, y1: base, y2: sy(p.n), stroke: COL.bad, 'stroke-width': 2.5 }, g);
          svgEl('circle', { cx, cy: sy(p.n), r: 5, fill: COL.bad, stroke: '#fff', 'stroke-width': 1.5 }, g);
        } else if (p.o === 'ok') {
          svgEl('circle', { cx, cy: base, r: 5, fill: COL.ok, stroke: '#fff', 'stroke-width': 1.5 }, g);
        } else if (p.o === 'failed' || p.o === 'cancelled') {
          svgEl('path', { d: `M${cx - 4},${base - 4}L${cx + 4},${base + 4}M${cx + 4},${base - 4}L${cx - 4},${base + 4}`, stroke: COL.bad, 'stroke-width': 2.2, 'stroke-linecap': 'round' }, g);
        } else if (p.o === 'running') {
          svgEl('circle', { cx, cy: base, r: 5, fill: '#fff', stroke: COL.run, 'stroke-width': 2, class: 'mon-pulse' }, g);
        } else {
          svgEl('circle', { cx, cy: base, r: 4.5, fill: '#fff', stroke: COL.none, 'stroke-width': 1.6, 'stroke-dasharray': '2 1.6' }, g);
        }
      }
      const tip = tooltip(container);
      const near = (ev) => {
        const r = svg.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W, py = ((ev.clientY - r.top) / r.height) * H;
        let best = null, bd = 14 * 14;
        for (const p of pts) {
          const cy = p.o === 'violations' ? sy(p.n) : sy(0);
          const d = (sx(p.x) - px) ** 2 + Math.min((cy - py) ** 2, py > cy && py < sy(0) + 6 ? 0 : Infinity);
          if (d < bd) { bd = d; best = p; }
        }
        return { best, px: ev.clientX - r.left, py: ev.clientY - r.top };
      };
      svg.addEventListener('mousemove', (ev) => {
        const { best, px, py } = near(ev);
        svg.style.cursor = best && o.onSelect ? 'pointer' : '';
        if (!best) { tip.hidden = true; return; }
        const e = best.e, r = e.result || {};
        const [, text] = OUTCOME[best.o] || ['', best.o];
        const color = { violations: COL.bad, ok: COL.ok, failed: COL.bad, cancelled: COL.bad, running: COL.run }[best.o] || COL.none;
        const rows = [[color, 'outcome', best.o === 'violations' ? plural(best.n, 'violation') : text]];
        if (isNum(r.rows)) rows.push([null, 'rows', String(r.rows)]);
        if (isNum(r.score)) rows.push([null, r.metric || 'score', fmt(r.score)]);
        rows.push([null, 'trigger', e.trigger || '—']);
        showTip(container, tip, fmtWindow(e.window_start_ms, e.window_end_ms), rows, px, py);
      });
      svg.addEventListener('mouseleave', () => { tip.hidden = true; });
      svg.addEventListener('click', (ev) => { const { best } = near(ev); if (best && o.onSelect) o.onSelect(best.e.id); });
    }, opts);
  }

  /**
   * Grouped bars: one group per bin, one bar per series (shares 0..1).
   * opts: { labels: [text], ticks: 'edges'|'centre', edges: [numbers] (edges mode), tipLabels: [text],
   *   series: [{ key, label, color, values }], empty }.
   */
  function barChart(container, opts) {
    const M = { l: 46, r: 12, t: 12, b: 30 };
    return chartOf(container, (o) => {
      const W = Math.max(240, container.clientWidth || 480), H = Math.max(140, container.clientHeight || 230);
      const svg = freshSvg(container, W, H);
      const labels = o.labels || [];
      container.dataset.bins = String(labels.length);
      container.dataset.series = String((o.series || []).length);
      if (!labels.length) {
        svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = o.empty || 'Nothing to plot';
        return;
      }
      const vals = o.series.flatMap((s) => s.values.filter(isNum));
      const max = Math.max(0.01, ...vals);
      const step = niceStep(max, 4);
      const top = Math.ceil((max * 1.05) / step) * step;
      const plotW = W - M.l - M.r, band = plotW / labels.length;
      const sy = (v) => H - M.b - (v / top) * (H - M.t - M.b);
      const grid = svgEl('g', { class: 'grid' }, svg), axis = svgEl('g', { class: 'axis' }, svg);
      for (let v = 0; v <= top + step * 1e-9; v += step) {
        svgEl('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
        svgEl('text', { x: M.l - 6, y: sy(v) + 3.5, 'text-anchor': 'end' }, axis).textContent = Math.round(v * 100) + '%';
      }
      const hl = svgEl('rect', { y: M.t, height: H - M.t - M.b, width: band, class: 'mon-band', visibility: 'hidden' }, svg);
      const inner = band * (labels.length > 20 ? 0.9 : 0.76), bw = inner / o.series.length;
      labels.forEach((_, i) => {
        o.series.forEach((s, j) => {
          const v = isNum(s.values[i]) ? s.values[i] : 0;
          const x = M.l + i * band + (band - inner) / 2 + j * bw;
          svgEl('rect', { x: x.toFixed(2), y: sy(v).toFixed(2), width: Math.max(1, bw - (bw > 4 ? 1.5 : 0.5)).toFixed(2), height: Math.max(0, sy(0) - sy(v)).toFixed(2), fill: s.color, rx: bw > 6 ? 1.5 : 0,
            'data-testid': 'hist-bar', 'data-series': s.key, 'data-bin': String(i), 'data-value': String(v) }, svg);
        });
      });
      // x axis: bin edges for numbers, centred (shortened) names for categories
      const charW = 6.2;
      if (o.ticks === 'edges' && o.edges) {
        const label = (v) => C.fmtTick(v, o.edgeWidth);
        const widest = Math.max(...o.edges.map((v) => label(v).length)) * charW + 10;
        const every = Math.max(1, Math.ceil(widest / band));
        o.edges.forEach((v, i) => {
          if (i % every && i !== o.edges.length - 1) return;
          if (i === o.edges.length - 1 && i % every && (i % every) * band < widest) return;
          svgEl('line', { x1: M.l + i * band, x2: M.l + i * band, y1: H - M.b, y2: H - M.b + 4, class: 'axis-line' }, svg);
          svgEl('text', { x: M.l + i * band, y: H - M.b + 16, 'text-anchor': 'middle' }, axis).textContent = label(v);
        });
      } else {
        const fit = Math.max(3, Math.floor((band - 4) / charW));
        labels.forEach((l, i) => {
          const t = String(l);
          svgEl('text', { x: M.l + (i + 0.5) * band, y: H - M.b + 16, 'text-anchor': 'middle' }, axis).textContent = t.length > fit ? t.slice(0, fit - 1) + '…' : t;
        });
      }
      svgEl('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
      const tip = tooltip(container);
      const overlay = svgEl('rect', { x: M.l, y: M.t, width: plotW, height: H - M.t - M.b, fill: 'transparent', 'data-testid': 'chart-overlay' }, svg);
      overlay.addEventListener('mousemove', (ev) => {
        const r = svg.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W;
        const i = Math.min(labels.length - 1, Math.max(0, Math.floor((px - M.l) / band)));
        hl.setAttribute('x', M.l + i * band);
        hl.setAttribute('visibility', 'visible');
        showTip(container, tip, (o.tipLabels || labels)[i], o.series.map((s) => [s.color, s.label, pct(s.values[i])]), ev.clientX - r.left, ev.clientY - r.top);
      });
      overlay.addEventListener('mouseleave', () => { tip.hidden = true; hl.setAttribute('visibility', 'hidden'); });
    }, opts);
  }

  /** Log-scale ticks: whole decades, thinned to about `count` labels. */
  function decadeTicks(lo, hi, count) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    const every = Math.max(1, Math.ceil((b - a) / count));
    const out = [];
    for (let e = Math.floor(b / every) * every; e >= a; e -= every) out.push(Math.pow(10, e));
    return out.reverse();
  }
  function linTicks(lo, hi, count) {
    const step = niceStep(hi - lo, count);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  /**
   * A statistic per execution against its threshold, the side past the threshold shaded.
   * opts: { series: [{ key, label, color, points: [{ x, y, e }] }], threshold: [{ x, y }],
   *   zone: 'below'|'above' (where the alarm side is), logY, floor (log scale), thresholdLabel,
   *   selected (execution id), onSelect(id), empty }.
   * The container gets data-points (values plotted, all series) and data-threshold-points.
   */
  function thresholdChart(container, opts) {
    const M = { l: 54, r: 16, t: 12, b: 26 };
    return chartOf(container, (o) => {
      const W = Math.max(240, container.clientWidth || 480), H = Math.max(140, container.clientHeight || 230);
      const svg = freshSvg(container, W, H);
      const series = (o.series || []).map((s) => Object.assign({}, s, { points: s.points.filter((p) => isNum(p.x) && isNum(p.y) && (!o.logY || p.y > 0)).sort((a, b) => a.x - b.x) }));
      const thr = (o.threshold || []).filter((p) => isNum(p.x) && isNum(p.y) && (!o.logY || p.y > 0)).sort((a, b) => a.x - b.x);
      const low = (o.lower || []).filter((p) => isNum(p.x) && isNum(p.y) && (!o.logY || p.y > 0)).sort((a, b) => a.x - b.x);
      const all = series.flatMap((s) => s.points);
      container.dataset.lowerPoints = String(low.length);
      container.dataset.points = String(all.length);
      container.dataset.thresholdPoints = String(thr.length);
      for (const s of series) container.dataset['points' + s.key[0].toUpperCase() + s.key.slice(1)] = String(s.points.length);
      if (!all.length) {
        svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = o.empty || 'Nothing to plot yet';
        return;
      }
      const xs = all.map((p) => p.x).concat(thr.map((p) => p.x));
      let x0 = Math.min(...xs), x1 = Math.max(...xs);
      if (x1 - x0 < 60000) { const c = (x0 + x1) / 2; x0 = c - 30000; x1 = c + 30000; }
      const px = (x1 - x0) * 0.05;
      x0 -= px; x1 += px;
      const ys = all.map((p) => p.y).concat(thr.map((p) => p.y), low.map((p) => p.y));
      let y0 = Math.min(...ys), y1 = Math.max(...ys);
      let ticks;
      if (o.logY) {
        y0 = Math.pow(10, Math.floor(Math.log10(y0)));
        y1 = Math.pow(10, Math.ceil(Math.log10(y1) - 1e-9));
        if (y1 / y0 < 100) { y0 /= 10; if (!o.maxY || y1 < o.maxY) y1 *= 10; }
        ticks = decadeTicks(y0, y1, 5);
      } else {
        if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 0.1; y0 -= d; y1 += d; }
        const pad = (y1 - y0) * 0.12;
        y0 -= pad; y1 += pad;
        if (y0 < 0 && Math.min(...ys) >= 0) y0 = 0;
        ticks = linTicks(y0, y1, 4);
      }
      const fy = o.logY ? Math.log10 : (v) => v;
      const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
      const sy = (y) => H - M.b - ((fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * (H - M.t - M.b);
      const grid = svgEl('g', { class: 'grid' }, svg), axis = svgEl('g', { class: 'axis' }, svg);
      for (const v of ticks) {
        if (v < y0 * (1 - 1e-9) || v > y1 * (1 + 1e-9)) continue;
        svgEl('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
        svgEl('text', { x: M.l - 6, y: sy(v) + 3.5, 'text-anchor': 'end' }, axis).textContent = o.logY ? (v >= 0.001 ? String(v) : '1e' + Math.round(Math.log10(v))) : fmtNum(v, 3);
      }
      for (const [t, label] of timeTicks(x0, x1, Math.max(2, Math.floor((W - M.l) / 95)))) {
        svgEl('text', { x: sx(t), y: H - M.b + 16, 'text-anchor': 'middle' }, axis).textContent = label;
      }
      // the threshold as a step line across the plot, the alarm side shaded (a lower bound: below it)
      const stepLine = (pts, zone, testid) => {
        if (!pts.length) return;
        const steps = [[M.l, sy(pts[0].y)]];
        pts.forEach((p, i) => {
          const x = sx(p.x);
          if (i) steps.push([x, steps[steps.length - 1][1]]);
          steps.push([x, sy(p.y)]);
        });
        steps.push([W - M.r, sy(pts[pts.length - 1].y)]);
        const edge = zone === 'above' ? M.t : H - M.b;
        const d = steps.map(([x, y], i) => (i ? 'L' : 'M') + x.toFixed(1) + ',' + y.toFixed(1)).join('');
        svgEl('path', { d: d + `L${W - M.r},${edge}L${M.l},${edge}Z`, class: 'mon-zone' }, svg);
        svgEl('path', { d, class: 'mon-threshold', 'data-testid': testid }, svg);
      };
      stepLine(thr, o.zone, 'threshold-line');
      stepLine(low, 'below', 'lower-line');
      svgEl('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
      for (const s of series) {
        if (s.points.length > 1) svgEl('path', { d: s.points.map((p, i) => (i ? 'L' : 'M') + sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1)).join(''), class: 'series', stroke: s.color, 'data-testid': 'series', 'data-series': s.key }, svg);
        for (const p of s.points) {
          if (p.e && p.e.id === o.selected) svgEl('circle', { cx: sx(p.x), cy: sy(p.y), r: 7.5, class: 'mon-ring' }, svg);
          svgEl('circle', { cx: sx(p.x), cy: sy(p.y), r: 3.6, fill: p.alarm ? COL.bad : s.color, stroke: '#fff', 'stroke-width': 1.4, 'data-testid': 'point', 'data-series': s.key }, svg);
        }
      }
      const hover = svgEl('line', { class: 'hover-line', y1: M.t, y2: H - M.b, visibility: 'hidden' }, svg);
      const tip = tooltip(container);
      const xsAll = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
      const nearestX = (ev) => {
        const r = svg.getBoundingClientRect();
        const x = x0 + ((((ev.clientX - r.left) / r.width) * W - M.l) / (W - M.l - M.r)) * (x1 - x0);
        let best = xsAll[0];
        for (const v of xsAll) if (Math.abs(v - x) < Math.abs(best - x)) best = v;
        return { x: best, px: ev.clientX - r.left, py: ev.clientY - r.top };
      };
      const overlay = svgEl('rect', { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: 'transparent', 'data-testid': 'chart-overlay' }, svg);
      overlay.addEventListener('mousemove', (ev) => {
        const { x, px: qx, py } = nearestX(ev);
        hover.setAttribute('x1', sx(x)); hover.setAttribute('x2', sx(x)); hover.setAttribute('visibility', 'visible');
        const rows = [];
        let e = null;
        for (const s of series) {
          const p = s.points.find((q) => q.x === x);
          if (p) { rows.push([s.color, s.label, fmtNum(p.raw !== undefined ? p.raw : p.y)]); e = e || p.e; }
        }
        let t = null;
        for (const q of thr) if (q.x <= x) t = q;
        if (t) rows.push([COL.threshold, o.thresholdLabel || 'threshold', fmtNum(t.y)]);
        let lo = null;
        for (const q of low) if (q.x <= x) lo = q;
        if (lo) rows.push([COL.threshold, o.lowerLabel || 'lower bound', fmtNum(lo.y)]);
        showTip(container, tip, e ? fmtWindow(e.window_start_ms, e.window_end_ms) : new Date(x).toLocaleString(), rows, qx, py);
        overlay.style.cursor = o.onSelect && e ? 'pointer' : '';
      });
      overlay.addEventListener('mouseleave', () => { tip.hidden = true; hover.setAttribute('visibility', 'hidden'); });
      overlay.addEventListener('click', (ev) => {
        const { x } = nearestX(ev);
        const p = all.find((q) => q.x === x);
        if (p && p.e && o.onSelect) o.onSelect(p.e.id);
      });
    }, opts);
  }

  /**
   * Two feature rankings side by side: the baseline's bars on the left, the window's on the right,
   * each sorted down, a line joining a feature's two ranks (red when it moved by more than one).
   * opts: { baseline: [[feature, value]], current: [[feature, value]], empty }.
   * The container gets data-features and data-moved (features whose rank changed).
   */
  function rankingChart(container, opts) {
    return chartOf(container, (o) => {
      const base = o.baseline || [], cur = o.current || [];
      const n = Math.max(base.length, cur.length);
      const W = Math.max(300, container.clientWidth || 480), rowH = 20, top = 22, H = Math.max(120, top + n * rowH + 8);
      container.style.height = H + 'px';
      const svg = freshSvg(container, W, H);
      container.dataset.features = String(n);
      if (!n) {
        svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = o.empty || 'Nothing to rank yet';
        container.dataset.moved = '0';
        return;
      }
      const gap = Math.min(120, W * 0.2), colW = (W - gap) / 2, labelW = Math.min(130, colW * 0.45);
      const barMax = Math.max(10, colW - labelW - 56);
      const maxB = Math.max(1e-12, ...base.map((x) => x[1])), maxC = Math.max(1e-12, ...cur.map((x) => x[1]));
      const axis = svgEl('g', { class: 'axis' }, svg);
      svgEl('text', { x: 0, y: 13 }, axis).textContent = 'baseline (training data)';
      svgEl('text', { x: colW + gap, y: 13 }, axis).textContent = 'current window';
      const y = (i) => top + i * rowH + rowH / 2;
      const rankC = new Map(cur.map((x, i) => [x[0], i]));
      let moved = 0;
      base.forEach(([f], i) => {
        const j = rankC.get(f);
        if (j === undefined) return;
        if (j !== i) moved++;
        svgEl('line', { x1: colW - 4, y1: y(i), x2: colW + gap + 4, y2: y(j), stroke: Math.abs(j - i) > 1 ? COL.bad : COL.none, 'stroke-width': Math.abs(j - i) > 1 ? 1.8 : 1, 'data-testid': 'rank-link', 'data-feature': f, 'data-from': String(i + 1), 'data-to': String(j + 1) }, svg);
      });
      container.dataset.moved = String(moved);
      const fit = (t, w) => { const k = Math.max(3, Math.floor(w / 6.2)); return t.length > k ? t.slice(0, k - 1) + '…' : t; };
      const column = (rows, x0, max, color, key) => rows.forEach(([f, v], i) => {
        svgEl('text', { x: x0, y: y(i) + 4, class: 'mono' }, axis).textContent = (i + 1) + '. ' + fit(f, labelW - 18);
        const w = Math.max(1, (v / max) * barMax);
        const r = svgEl('rect', { x: x0 + labelW, y: y(i) - 6, width: w.toFixed(1), height: 12, fill: color, rx: 1.5, 'data-testid': 'rank-bar', 'data-series': key, 'data-feature': f, 'data-rank': String(i + 1), 'data-value': String(v) }, svg);
        svgEl('title', null, r).textContent = `${f}: mean |SHAP| ${fmtNum(v)} (rank ${i + 1})`;
        svgEl('text', { x: x0 + labelW + w + 4, y: y(i) + 4 }, axis).textContent = v === 0 ? '0' : Math.abs(v) >= 0.001 ? v.toPrecision(3) : v.toExponential(1);
      });
      column(base, 0, maxB, COL.baseline, 'baseline');
      column(cur, colW + gap, maxC, COL.current, 'current');
    }, opts);
  }

  /** Bar-chart options for one feature's histogram from an execution's `histograms`. */
  function histogramOpts(hist) {
    const series = [
      { key: 'baseline', label: 'baseline (training)', color: COL.baseline, values: hist.baseline || [] },
      { key: 'current', label: 'current (window)', color: COL.current, values: hist.current || [] },
    ];
    if (hist.type === 'numeric') {
      const bins = hist.bins || [];
      const edges = bins.length ? bins.map((b) => b[0]).concat([bins[bins.length - 1][1]]) : [];
      // edges rounded alike, to what tells neighbours apart (the median bin's width): 16.3, not 16.3334
      const widths = bins.map((b) => b[1] - b[0]).filter((w) => Number.isFinite(w) && w > 0).sort((a, b) => a - b);
      const edgeWidth = widths.length ? widths[Math.floor(widths.length / 2)] : NaN;
      const f = (v) => C.fmtTick(v, edgeWidth / 10);
      // values beyond the baseline's range are counted in the first / last bin
      const tipLabels = bins.map((b, i) => (i === 0 && bins.length > 1 ? '< ' + f(b[1]) : i === bins.length - 1 && bins.length > 1 ? '≥ ' + f(b[0]) : f(b[0]) + ' – ' + f(b[1])));
      return { labels: tipLabels, tipLabels, ticks: 'edges', edges, edgeWidth, series };
    }
    return { labels: hist.bins || [], ticks: 'centre', series };
  }

  // ---------------------------------------------------------------- navigation mark

  /** A red count on the Monitor link while schedules alert (on every Studio page). */
  function markNav(count) {
    S.markNav('monitor', count, plural(count, 'schedule') + ' alerting');
  }
  const kind = main && main.dataset.page;
  if (kind && kind !== 'monitor' && kind !== 'monitor-item' && document.querySelector('[data-testid=nav-monitor]')) {
    request('GET', API).then((res) => markNav((res.schedules || []).filter((s) => s.alerting).length), () => { /* the mark is optional */ });
  }

  // ---------------------------------------------------------------- /monitor

  pages.monitor = function () {
    const listBox = h('div', { class: 'card flush' });
    const formBox = h('div', { class: 'card', 'data-testid': 'schedule-form' });
    replace(main,
      h('header', { class: 'page-head' }, h('h1', null, 'Monitor'),
        h('span', { class: 'sub' }, 'Captured endpoint traffic checked against the training baseline on a schedule: drift, data quality, model quality, alerts.')),
      listBox, formBox);

    let known = new Set();
    async function load() {
      let list;
      try { list = (await request('GET', API)).schedules || []; } catch (e) { return replace(listBox, errorBox(e, 'schedules-error')); }
      known = new Set(list.map((s) => s.name));
      onEndpoint();
      markNav(list.filter((s) => s.alerting).length);
      const alerting = list.filter((s) => s.alerting).length;
      const head = h('div', { class: 'card-head' }, h('h2', null, 'Schedules'), h('span', { class: 'muted' }, String(list.length)),
        alerting ? h('span', { class: 'badge ALERT' }, alerting + ' alerting') : null);
      if (!list.length) {
        return replace(listBox, head, h('div', { class: 'empty', 'data-testid': 'schedules-empty' },
          'No monitoring schedules yet. Create one below for an endpoint that captures its traffic: each run compares a window of requests with the model\'s training baseline and flags drifting features.'));
      }
      list.sort((a, b) => (b.alerting - a.alerting) || a.name.localeCompare(b.name));
      replace(listBox, head, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'schedules-table' },
        h('thead', null, h('tr', null, ['Schedule', 'Endpoint', 'Kind', 'Cron (UTC)', 'Next run', 'Latest execution', 'Window', 'Violations'].map((t, i) => h('th', { class: i === 7 ? 'num' : '' }, t)))),
        h('tbody', null, list.map((s) => {
          const e = s.latest;
          return h('tr', { 'data-testid': 'schedule-row', 'data-name': s.name, class: s.alerting ? 'mon-alert-row' : '' },
            h('td', null, h('a', { href: '/monitor/' + enc(s.name), 'data-testid': 'schedule-link' }, h('b', null, s.name)), ' ', alertBadge(s)),
            h('td', null, h('a', { href: '/endpoints/' + enc(s.endpoint) }, s.endpoint)),
            h('td', null, kindLabel(s.kind)),
            h('td', null, h('code', null, s.cron), s.enabled ? null : h('span', { class: 'badge', style: 'margin-left:6px' }, 'paused')),
            h('td', { title: fmtDate(s.next_run_ms) }, s.enabled ? fmtIn(s.next_run_ms) : '—'),
            h('td', null, e ? [execBadge(e), ' ', h('span', { class: 'muted', title: fmtDate(e.ended_ms || e.created_ms) }, fmtAgo(e.ended_ms || e.created_ms))] : h('span', { class: 'muted' }, 'never run')),
            h('td', { class: 'muted', title: e ? fmtWindow(e.window_start_ms, e.window_end_ms) : '' }, e ? fmtWindowShort(e.window_start_ms, e.window_end_ms) : ''),
            h('td', { class: 'num' }, e && hasData(e) ? String(violationsOf(e).length) : '—'));
        })))));
    }

    // --- the new-schedule form
    const err = h('div');
    const nameIn = h('input', { type: 'text', placeholder: 'e.g. churn-drift', 'data-testid': 'new-schedule-name', 'aria-label': 'Schedule name', size: 22 });
    const epSel = h('select', { 'data-testid': 'new-schedule-endpoint', 'aria-label': 'Endpoint' });
    const kindSel = h('select', { 'data-testid': 'new-schedule-kind', 'aria-label': 'Kind' },
      h('option', { value: 'data_quality' }, 'Data quality (drift vs baseline)'), h('option', { value: 'model_quality' }, 'Model quality (vs ground truth)'),
      h('option', { value: 'model_bias' }, 'Model bias (Clarify metrics vs ground truth)'), h('option', { value: 'model_explainability' }, 'Model explainability (SHAP ranking drift)'));
    const cronIn = h('input', { type: 'text', value: '0 * * * *', list: 'mon-cron-presets', 'data-testid': 'new-schedule-cron', 'aria-label': 'Cron (UTC)', size: 16, class: 'mono' });
    const presets = h('datalist', { id: 'mon-cron-presets' },
      [['*/5 * * * *', 'every 5 minutes'], ['0 * * * *', 'hourly'], ['0 */6 * * *', 'every 6 hours'], ['0 0 * * *', 'daily at midnight UTC'], ['0 0 * * 1', 'weekly, Monday']].map(([v, l]) => h('option', { value: v }, l)));
    const hookIn = h('input', { type: 'text', placeholder: 'https://hooks.example.com/… (optional)', 'data-testid': 'new-schedule-webhook', 'aria-label': 'Webhook URL', size: 34 });
    const metricSel = h('select', { 'data-testid': 'new-schedule-metric', 'aria-label': 'Metric' },
      h('option', { value: '' }, 'default (accuracy · rmse)'), ['accuracy', 'balanced_accuracy', 'f1', 'f1_macro', 'auc', 'log_loss', 'rmse', 'mae', 'r2'].map((m) => h('option', { value: m }, m)));
    const thresholdIn = h('input', { type: 'number', min: '0', step: 'any', placeholder: '0.05', 'data-testid': 'new-schedule-threshold', 'aria-label': 'Allowed degradation', style: 'width:100px' });
    const baseScoreIn = h('input', { type: 'number', step: 'any', placeholder: 'validation score', 'data-testid': 'new-schedule-baseline-score', 'aria-label': 'Baseline score', style: 'width:130px' });
    const create = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'create-schedule' }, 'Create schedule');
    const epNote = h('small', { class: 'muted mon-ep-note', 'data-testid': 'endpoint-note' });
    const field = (label, input, hint) => h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
    const mqRow = h('div', { class: 'form-row', style: 'display:none' },
      field('Metric', metricSel), field('Allowed drop', thresholdIn, 'absolute; relative for losses'), field('Baseline score', baseScoreIn, 'default: the model\'s own'));
    // bias and explainability: the training data the baseline comes from, and the facet
    const datasetSel = h('select', { 'data-testid': 'new-schedule-dataset', 'aria-label': 'Training data' }, h('option', { value: '' }, '— the model\'s training data —'));
    const facetIn = h('input', { type: 'text', placeholder: 'e.g. sex', 'data-testid': 'new-schedule-facet', 'aria-label': 'Facet column', size: 14 });
    const facetValuesIn = h('input', { type: 'text', placeholder: 'e.g. female', 'data-testid': 'new-schedule-facet-values', 'aria-label': 'Sensitive value(s)', size: 16 });
    const facetThresholdIn = h('input', { type: 'number', step: 'any', placeholder: 'or a threshold', 'data-testid': 'new-schedule-facet-threshold', 'aria-label': 'Facet threshold', style: 'width:120px' });
    const ndcgIn = h('input', { type: 'number', min: '0', max: '1', step: 'any', placeholder: '0.9', 'data-testid': 'new-schedule-ndcg', 'aria-label': 'nDCG threshold', style: 'width:90px' });
    const clarifyRow = h('div', { class: 'form-row', style: 'display:none' }, field('Training data', datasetSel, 'the baseline is computed from it'));
    const biasRow = h('div', { class: 'form-row', style: 'display:none' },
      field('Facet column', facetIn, 'a column the requests carry'), field('Sensitive group', facetValuesIn, 'value(s), comma-separated'), field('… or above', facetThresholdIn, 'numeric facets'));
    const explainRow = h('div', { class: 'form-row', style: 'display:none' }, field('nDCG threshold', ndcgIn, 'below it alerts (SageMaker: 0.9)'));
    let datasetsLoaded = false;
    async function loadDatasets() {
      if (datasetsLoaded) return;
      datasetsLoaded = true;
      try {
        const list = (await request('GET', '/api/atelier/datasets')).datasets || [];
        append(datasetSel, list.map((d) => h('option', { value: d.name }, d.name)));
      } catch (e) { replace(err, errorBox(e, 'schedule-error')); }
    }
    function onKind() {
      const k = kindSel.value;
      mqRow.style.display = k === 'model_quality' ? '' : 'none';
      clarifyRow.style.display = isClarify(k) ? '' : 'none';
      biasRow.style.display = k === 'model_bias' ? '' : 'none';
      explainRow.style.display = k === 'model_explainability' ? '' : 'none';
      if (isClarify(k)) loadDatasets();
      onEndpoint();
    }
    const nameNote = h('small', { class: 'mon-warn mon-ep-note', 'data-testid': 'name-note' });
    let eps = [];
    let autoName = '';
    function onName() {
      const n = nameIn.value.trim();
      replace(nameNote, known.has(n) ? `A schedule named ${n} exists: creating replaces it.` : '');
    }
    function onEndpoint() {
      const ep = eps.find((e) => e.name === epSel.value);
      if (!nameIn.value || nameIn.value === autoName) {
        autoName = '';
        if (ep) {
          const stem = ep.name + ({ model_quality: '-quality', model_bias: '-bias', model_explainability: '-explainability' }[kindSel.value] || '-drift');
          autoName = stem;
          for (let i = 2; known.has(autoName); i++) autoName = stem + '-' + i;
        }
        nameIn.value = autoName;
      }
      onName();
      if (!ep) { replace(epNote); return; }
      const c = ep.data_capture || {};
      const models = (ep.variants || []).map((v) => (v.registered_model ? `${v.registered_model} v${v.version}` : v.model)).join(', ');
      replace(epNote, c.enabled === false || c.sampling_percentage === 0
        ? h('span', { class: 'mon-warn' }, `Data capture is off for ${ep.name}: executions will find no data. Turn it on in the endpoint's configuration.`)
        : `Serves ${models}; captures ${isNum(c.sampling_percentage) ? c.sampling_percentage + ' %' : 'its'} of requests.`);
    }
    async function loadEndpoints() {
      try { eps = (await request('GET', '/api/atelier/endpoints')).endpoints || []; } catch (e) { replace(err, errorBox(e, 'schedule-error')); }
      const cur = epSel.value;
      replace(epSel, h('option', { value: '' }, eps.length ? '— pick an endpoint —' : '— no endpoints: deploy a model first —'), eps.map((e) => h('option', { value: e.name }, e.name)));
      if (eps.some((e) => e.name === cur)) epSel.value = cur;
      else if (eps.length === 1) epSel.value = eps[0].name;
      onEndpoint();
    }
    epSel.addEventListener('change', onEndpoint);
    kindSel.addEventListener('change', onKind);
    nameIn.addEventListener('input', onName);
    create.addEventListener('click', async () => {
      const body = { name: nameIn.value.trim(), endpoint: epSel.value, kind: kindSel.value, cron: cronIn.value.trim() };
      if (hookIn.value.trim()) body.webhooks = [hookIn.value.trim()];
      if (kindSel.value === 'model_quality') {
        if (metricSel.value) body.metric = metricSel.value;
        if (thresholdIn.value !== '') body.threshold = Number(thresholdIn.value);
        if (baseScoreIn.value !== '') body.baseline_score = Number(baseScoreIn.value);
      }
      if (isClarify(kindSel.value) && datasetSel.value) body.dataset = datasetSel.value;
      if (kindSel.value === 'model_bias') {
        body.bias = { facet: facetIn.value.trim() };
        const values = facetValuesIn.value.split(',').map((v) => v.trim()).filter(Boolean);
        if (values.length) body.bias.facet_values = values;
        if (facetThresholdIn.value !== '') body.bias.facet_threshold = Number(facetThresholdIn.value);
      }
      if (kindSel.value === 'model_explainability' && ndcgIn.value !== '') body.explainability = { threshold: Number(ndcgIn.value) };
      if (!body.name) return replace(err, errorBox(new Error('Give the schedule a name (letters, digits, "-", "_" or ".").'), 'schedule-error'));
      if (!body.endpoint) return replace(err, errorBox(new Error('Pick the endpoint to monitor.'), 'schedule-error'));
      create.disabled = true;
      // a bias or explainability baseline is computed from the training data before the answer
      if (isClarify(body.kind)) create.textContent = 'Computing the baseline…';
      try {
        const res = await request('POST', API, body);
        location.href = '/monitor/' + enc(res.schedule.name);
      } catch (e) { create.disabled = false; create.textContent = 'Create schedule'; replace(err, errorBox(e, 'schedule-error')); }
    });
    replace(formBox, h('h2', null, 'New schedule'), err,
      h('div', { class: 'form-row' }, field('Endpoint', epSel), field('Kind', kindSel), field('Name', nameIn)),
      epNote, nameNote,
      h('div', { class: 'form-row' }, field('Cron (UTC)', cronIn, 'minute hour day month weekday; 6 fields: seconds first'), presets, field('Webhook', hookIn, 'POSTed a JSON alert on violations')),
      mqRow, clarifyRow, biasRow, explainRow,
      h('div', { class: 'form-row' }, create,
        h('span', { class: 'muted' }, 'Data quality uses the baseline Autopilot stored with the served model version.')));
    loadEndpoints();

    replace(listBox, h('div', { class: 'loading', style: 'padding:16px' }, 'Loading…'));
    load().then(() => live(load));
  };

  // ---------------------------------------------------------------- /monitor/<name>

  pages['monitor-item'] = function () {
    const name = main.dataset.id;
    const params = new URLSearchParams(location.search);
    const st = { sched: null, execs: [], feature: params.get('feature') || '', execId: params.get('execution') || '', built: false };
    const head = h('div');
    const err = h('div');
    const retrainBox = h('div');
    const body = h('div');
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/monitor' }, 'Monitor'), ' / '), head, err, retrainBox, body);

    const retrainKey = 'atelier.monitor.retrain.' + name;
    const remembered = () => { try { return JSON.parse(localStorage.getItem(retrainKey) || 'null'); } catch (_) { return null; } };
    const remember = (v) => { try { localStorage.setItem(retrainKey, JSON.stringify(v)); } catch (_) { /* private mode */ } };

    // --- run now and retrain controls (built once, kept across reloads)
    const windowSel = h('select', { 'data-testid': 'run-window', 'aria-label': 'Window to check', title: 'Window of captured traffic to check' },
      h('option', { value: '' }, 'last cron period'), [['900000', 'last 15 min'], ['3600000', 'last hour'], ['86400000', 'last 24 h'], ['604800000', 'last 7 days']].map(([v, l]) => h('option', { value: v }, l)));
    const runMsg = h('div', { class: 'mon-run-msg', 'data-testid': 'run-msg' });
    const runBtn = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'run-now' }, 'Run now');
    runBtn.addEventListener('click', async () => {
      runBtn.disabled = true;
      const now = Date.now();
      const b = windowSel.value ? { window_start_ms: now - Number(windowSel.value), window_end_ms: now } : {};
      try {
        const res = await request('POST', API + '/' + enc(name) + '/run', b);
        const sp = res.job.spec || {};
        runMsg.textContent = 'Queued: a check of ' + fmtWindow(sp.window_start_ms, sp.window_end_ms) + '. It appears below when it has run.';
        load();
      } catch (e) { replace(err, errorBox(e, 'run-error')); }
      runBtn.disabled = false;
    });
    let leaving = false;
    const delBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'delete-schedule' }, 'Delete');
    delBtn.addEventListener('click', async () => {
      if (!confirm('Delete the schedule ' + name + '? Its executions stay listed under Jobs.')) return;
      leaving = true; // no reload of a schedule that is going away
      try { await request('DELETE', API + '/' + enc(name)); location.href = '/monitor'; } catch (e) { leaving = false; replace(err, errorBox(e, 'delete-error')); }
    });
    const retrainBtn = h('button', { class: 'btn danger', type: 'button', 'data-testid': 'retrain' }, 'Retrain');
    const budgetIn = h('input', { type: 'number', min: '1', step: '1', value: '300', 'data-testid': 'retrain-budget', 'aria-label': 'Time budget in seconds', style: 'width:90px' });
    const dataSel = h('select', { 'data-testid': 'retrain-dataset', 'aria-label': 'Training data' }, h('option', { value: '' }, 'captured requests + ground truth (last 7 days)'));
    const retrainErr = h('div');
    const retrainJob = h('div', { 'data-testid': 'retrain-job' });
    let datasetsLoaded = false;
    async function loadDatasets() {
      if (datasetsLoaded) return;
      datasetsLoaded = true;
      try {
        const list = (await request('GET', '/api/atelier/datasets')).datasets || [];
        append(dataSel, list.map((d) => h('option', { value: d.name }, 'dataset: ' + d.name)));
      } catch (_) { /* the captured-data option still works */ }
    }
    retrainBtn.addEventListener('click', async () => {
      retrainBtn.disabled = true;
      replace(retrainErr);
      const b = { time_budget: Number(budgetIn.value) };
      if (dataSel.value) b.dataset = dataSel.value;
      try {
        const res = await request('POST', API + '/' + enc(name) + '/retrain', b);
        remember({ job_id: res.job.id, dataset: res.dataset, serving: res.serving, started_ms: Date.now() });
        await renderRetrain();
      } catch (e) { replace(retrainErr, errorBox(e, 'retrain-error')); }
      retrainBtn.disabled = false;
    });

    async function renderRetrain() {
      const s = st.sched;
      // the server remembers the latest retraining; this browser's memory is the fallback
      const mem = (s && s.retrain) || remembered();
      if (!s || (!s.alerting && !mem)) { replace(retrainBox); return; }
      loadDatasets();
      const latest = st.execs.find(hasData);
      const viol = violationsOf(latest);
      const drifted = ((latest || {}).result || {}).drifted || [];
      let jobView = null;
      if (mem) {
        let job = null;
        try { job = (await request('GET', '/api/atelier/jobs/' + enc(mem.job_id))).job; } catch (e) { jobView = errorBox(e, 'retrain-error'); }
        if (job) jobView = retrainView(job, mem);
      }
      replace(retrainJob, jobView);
      replace(retrainBox, h('section', { class: 'card mon-retrain' + (s.alerting ? ' alerting' : ''), 'data-testid': 'retrain-box' },
        h('div', { class: 'mon-retrain-head' },
          h('div', null,
            h('h2', null, s.alerting ? 'Alert: ' + (drifted.length ? 'drift in ' + drifted.join(', ') : plural(viol.length, 'violation')) : 'Retraining'),
            h('p', { class: 'muted' }, 'Retrain in one step: an Autopilot job on fresh data registers a new version of the served model, shown here beside the one serving.')),
          h('div', { class: 'form-row', style: 'margin:0' },
            h('label', { class: 'field' }, h('span', null, 'Training data'), dataSel),
            h('label', { class: 'field' }, h('span', null, 'Budget (s)'), budgetIn))),
        retrainErr, retrainJob));
    }

    function retrainView(job, mem) {
      const r = job.result || {}, p = job.progress || {};
      const sv = mem.serving || {};
      const metric = r.metric || p.metric;
      const servingScore = metric && sv.metrics ? (isNum(sv.metrics[metric]) ? sv.metrics[metric] : sv.metrics['validation_' + metric]) : undefined;
      const newScore = isNum(r.score) ? r.score : (p.best || {}).score;
      const versionLink = (m, v) => (m && v ? h('a', { href: '/models/' + enc(m) + '/versions/' + enc(v) }, `${m} v${v}`) : '—');
      const better = isNum(servingScore) && isNum(newScore) ? (p.higher_is_better === false ? newScore < servingScore : newScore > servingScore) : null;
      return h('div', { class: 'mon-retrain-job' },
        h('div', { class: 'mon-retrain-line' },
          'Autopilot job ', h('a', { href: '/autopilot/' + enc(job.id), 'data-testid': 'retrain-job-link' }, job.name || job.id), ' ', jobBadge(job.status),
          h('span', { class: 'muted' }, (job.name || '').includes(mem.dataset || '\0') ? '' : ' on ' + (mem.dataset || '—'), p.phase && job.status === 'running' ? ' · ' + p.phase : '', ' · started ', fmtAgo(job.created_ms))),
        job.error && job.status !== 'succeeded' ? errorBox(new Error(job.error), 'retrain-job-error') : null,
        h('table', { class: 'data mon-compare', 'data-testid': 'retrain-compare' },
          h('thead', null, h('tr', null, h('th', null, ''), h('th', null, 'Model version'), h('th', { class: 'num' }, metric ? 'Validation ' + metric : 'Validation score'), h('th', null, ''))),
          h('tbody', null,
            h('tr', { 'data-testid': 'compare-serving' }, h('td', null, h('b', null, 'Serving')), h('td', null, versionLink(sv.registered_model, sv.version)), h('td', { class: 'num' }, fmt(servingScore)), h('td', { class: 'muted' }, 'holdout at training time')),
            h('tr', { 'data-testid': 'compare-new', class: better ? 'mon-better' : '' }, h('td', null, h('b', null, 'Retrained')),
              h('td', null, job.status === 'succeeded' ? versionLink(r.model_name, r.model_version) : h('span', { class: 'muted' }, job.status === 'failed' || job.status === 'cancelled' ? 'none' : 'training…')),
              h('td', { class: 'num', 'data-testid': 'compare-new-score' }, fmt(newScore)),
              h('td', { class: 'muted' }, job.status === 'succeeded' ? ['cross-validated on the fresh data', r.model_version ? [' · ', h('a', { href: '/models/' + enc(r.model_name) + '/versions/' + enc(r.model_version) }, 'deploy it →')] : null] : job.status === 'running' ? 'best so far' : '')))));
    }

    // --- page body, built on the first load (its layout depends on the kind)
    let timeline = null, driftChart = null, histChart = null, scoreChart = null;
    const factsBox = h('div', { class: 'card' });
    const timelineBox = h('div', { class: 'mon-timeline', 'data-testid': 'timeline-chart' });
    const featureSel = h('select', { 'data-testid': 'feature-select', 'aria-label': 'Feature' });
    const driftBox = h('div', { 'data-testid': 'drift-chart' });
    const driftNote = h('div', { class: 'mon-chart-note' });
    const histBox = h('div', { 'data-testid': 'hist-chart' });
    const histTitle = h('span', { class: 'muted' });
    const featuresBox = h('div', { class: 'card flush' });
    const violBox = h('div', { class: 'card flush' });
    const execBox = h('div', { class: 'card flush' });
    const delivBox = h('div', { class: 'card flush' });
    const scoreBox = h('div', { 'data-testid': 'score-chart' });
    const cbpeBox = h('div', { class: 'card', 'data-testid': 'cbpe' });
    const metricsBox = h('div', { class: 'card flush' });
    // model bias and explainability
    let biasChart = null, ndcgChart = null, rankChart = null;
    const biasMetricSel = h('select', { 'data-testid': 'bias-metric-select', 'aria-label': 'Bias metric' });
    const biasBox = h('div', { 'data-testid': 'bias-chart' });
    const biasTableBox = h('div', { class: 'card flush' });
    const ndcgBox = h('div', { 'data-testid': 'ndcg-chart' });
    const rankBox = h('div', { 'data-testid': 'ranking-chart', class: 'mon-ranking' });
    const rankTitle = h('span', { class: 'muted', 'data-testid': 'ranking-title' });
    // a multiclass model has a ranking (and an nDCG) per class
    const rankLabelSel = h('select', { 'data-testid': 'ranking-label', 'aria-label': 'Label', style: 'display:none' });
    rankLabelSel.addEventListener('change', () => { st.label = rankLabelSel.value; renderExplain(selected()); });
    biasMetricSel.addEventListener('change', () => { st.metric = biasMetricSel.value; renderBias(selected()); });
    featureSel.addEventListener('change', () => { st.feature = featureSel.value; syncUrl(); renderFeature(); });

    function syncUrl() {
      const q = new URLSearchParams();
      if (st.feature) q.set('feature', st.feature);
      if (st.execId) q.set('execution', st.execId);
      const s = q.toString();
      history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
    }
    function selectExec(id) { st.execId = id === st.execId ? '' : id; syncUrl(); renderSelected(); }

    const legend = (items) => h('div', { class: 'legend mon-legend' }, items.map(([cls, label]) => h('span', null, h('i', { class: 'mon-key ' + cls }), label)));

    function build(s) {
      const dq = s.kind !== 'model_quality';
      timeline = timelineChart(timelineBox, { execs: [], onSelect: selectExec, empty: 'No executions yet' });
      const timelineCard = h('div', { class: 'chart-card mon-card' },
        h('div', { class: 'mon-chart-head' }, h('h3', null, 'Executions'), h('span', { class: 'muted' }, dq ? 'violations per window, at the window\'s end · click one to inspect it' : 'violations per window · click one to inspect it')),
        timelineBox,
        legend([['violations', 'violations'], ['ok', 'passed'], ['nodata', dq ? 'no data in window' : 'no labels in window'], ['failed', 'failed']]));
      const tail = [h('div', { class: 'grid2 mon-grid' }, h('div', null, h('h2', { class: 'mon-h2' }, 'Violations'), violBox), h('div', null, h('h2', { class: 'mon-h2' }, 'Webhook deliveries'), delivBox)),
        h('h2', { class: 'mon-h2' }, 'Executions'), execBox];
      if (s.kind === 'model_bias') {
        biasChart = thresholdChart(biasBox, { series: [], empty: 'No window with labelled predictions yet' });
        replace(body, factsBox, timelineCard,
          h('div', { class: 'chart-card mon-card mon-drift' }, h('div', { class: 'mon-chart-head' }, h('h3', null, 'Bias over time'), biasMetricSel), biasBox,
            legend([['value', 'window\'s value'], ['threshold', 'bounds from the baseline (outside: violation)']])),
          h('h2', { class: 'mon-h2' }, 'Post-training metrics'), biasTableBox,
          ...tail);
      } else if (s.kind === 'model_explainability') {
        ndcgChart = thresholdChart(ndcgBox, { series: [], empty: 'No window with captured requests yet' });
        rankChart = rankingChart(rankBox, { baseline: [], current: [], empty: 'No window explained yet' });
        replace(body, factsBox, timelineCard,
          h('div', { class: 'grid2 mon-grid' },
            h('div', { class: 'chart-card mon-card mon-drift' }, h('div', { class: 'mon-chart-head' }, h('h3', null, 'nDCG over time')), ndcgBox,
              legend([['value', 'nDCG of the window\'s feature ranking'], ['threshold', 'threshold']])),
            h('div', { class: 'chart-card mon-card' }, h('div', { class: 'mon-chart-head' }, h('h3', null, 'Feature ranking (mean |SHAP|)'), rankLabelSel, rankTitle), rankBox,
              legend([['baseline', 'baseline (training data)'], ['current', 'selected window']]))),
          ...tail);
      } else if (dq) {
        driftChart = thresholdChart(driftBox, { series: [], empty: 'No window with data yet' });
        histChart = barChart(histBox, { labels: [], series: [], empty: 'No histogram yet: it comes with the first window that has data' });
        replace(body, factsBox, timelineCard,
          h('div', { class: 'grid2 mon-grid' },
            h('div', { class: 'chart-card mon-card mon-drift' },
              h('div', { class: 'mon-chart-head' }, h('h3', null, 'Drift over time'), featureSel), driftBox, driftNote),
            h('div', { class: 'chart-card mon-card' },
              h('div', { class: 'mon-chart-head' }, h('h3', null, 'Baseline vs current'), histTitle), histBox,
              legend([['baseline', 'baseline (training data)'], ['current', 'current window']]))),
          h('h2', { class: 'mon-h2' }, 'Features'), featuresBox,
          h('div', { class: 'grid2 mon-grid' }, h('div', null, h('h2', { class: 'mon-h2' }, 'Violations'), violBox), h('div', null, h('h2', { class: 'mon-h2' }, 'Webhook deliveries'), delivBox)),
          h('h2', { class: 'mon-h2' }, 'Executions'), execBox);
      } else {
        scoreChart = thresholdChart(scoreBox, { series: [], empty: 'No window with labelled predictions yet' });
        replace(body, factsBox, timelineCard,
          h('div', { class: 'grid2 mon-grid' },
            h('div', { class: 'chart-card mon-card mon-drift' }, h('div', { class: 'mon-chart-head' }, h('h3', null, 'Score over time'), h('span', { class: 'muted', 'data-testid': 'score-metric' })), scoreBox,
              legend([['value', 'measured on labelled predictions'], ['threshold', 'limit'], ['estimate', 'CBPE estimate (before labels)']])),
            cbpeBox),
          h('h2', { class: 'mon-h2' }, 'Metrics'), metricsBox,
          h('div', { class: 'grid2 mon-grid' }, h('div', null, h('h2', { class: 'mon-h2' }, 'Violations'), violBox), h('div', null, h('h2', { class: 'mon-h2' }, 'Webhook deliveries'), delivBox)),
          h('h2', { class: 'mon-h2' }, 'Executions'), execBox);
      }
      st.built = true;
    }

    /** The execution the detail sections show: the clicked one, else the newest that saw data. */
    function selected() {
      return st.execs.find((e) => e.id === st.execId) || st.execs.find(hasData) || st.execs[0] || null;
    }

    /** A baseline folder; one under a run's artifacts (Autopilot's) links to that run. */
    function baselineView(path) {
      if (!path) return 'the served version\'s (tag atelier.baseline)';
      const m = /^\d+\/([0-9a-f]{32})\/artifacts\/(.+)$/.exec(path);
      if (!m) return h('code', null, path);
      return h('span', { title: path }, h('a', { href: '/runs/' + enc(m[1]) }, 'run ' + m[1].slice(0, 8)), ' / ', h('code', null, m[2]));
    }
    function renderHead(s, ep) {
      const latest = st.execs[0];
      const state = s.alerting
        ? h('span', { class: 'badge ALERT', 'data-testid': 'alert-state', 'data-state': 'alert' }, 'ALERT')
        : h('span', { class: 'badge ' + (st.execs.some(hasData) ? 'FINISHED' : ''), 'data-testid': 'alert-state', 'data-state': st.execs.some(hasData) ? 'ok' : 'unknown' }, st.execs.some(hasData) ? 'OK' : 'no data yet');
      replace(head, h('header', { class: 'page-head mon-head' },
        h('h1', { 'data-testid': 'schedule-name' }, name), state,
        h('span', { class: 'sub' }, kindLabel(s.kind), ' on ', h('a', { href: '/endpoints/' + enc(s.endpoint) }, s.endpoint)),
        h('span', { style: 'flex:1' }),
        windowSel, runBtn, s.alerting ? retrainBtn : null, delBtn), runMsg);
      const variants = (ep && ep.variants) || [];
      const fact = (k, v, testid) => {
        const x = v === undefined || v === null || v === '' ? '—' : v;
        return h('div', { 'data-testid': testid }, h('span', null, k), h('b', { title: typeof x === 'string' ? x : null, class: typeof x === 'string' && !/\s/.test(x) ? 'nowrap' : null }, x));
      };
      replace(factsBox, h('div', { class: 'facts' },
        fact('Serving', variants.length ? variants.map((v, i) => [i ? ', ' : '', v.registered_model ? h('a', { class: 'nowrap', href: '/models/' + enc(v.registered_model) + '/versions/' + enc(v.version) }, `${v.registered_model} v${v.version}`) : v.model]) : null, 'fact-serving'),
        fact('Cron (UTC)', h('code', null, s.cron), 'fact-cron'),
        fact('Next run', s.enabled ? h('span', { title: fmtDate(s.next_run_ms) }, fmtIn(s.next_run_ms)) : 'paused', 'fact-next'),
        fact('Last execution', latest ? h('span', null, execBadge(latest, 'latest-status'), ' ', h('span', { class: 'muted' }, fmtAgo(latest.ended_ms || latest.created_ms))) : 'never', 'fact-latest'),
        s.kind === 'model_quality'
          ? fact('Metric', (s.metric || 'default') + (isNum(s.threshold) ? ' · allowed drop ' + s.threshold : ''), 'fact-metric')
          : fact('Baseline', baselineView(s.baseline || ((selected() || {}).result || {}).baseline), 'fact-baseline'),
        s.kind === 'model_bias' && s.bias
          ? fact('Facet', s.bias.facet + ' = ' + (s.bias.facet_values ? s.bias.facet_values.join(', ') : '> ' + s.bias.facet_threshold) + (s.dataset ? ' · baseline from ' + s.dataset : ''), 'fact-facet') : null,
        s.kind === 'model_explainability'
          ? fact('nDCG threshold', String(((s.explainability || {}).threshold) || 0.9) + (s.dataset ? ' · baseline from ' + s.dataset : ''), 'fact-ndcg') : null,
        fact('Webhooks', s.webhooks && s.webhooks.length ? s.webhooks.join(', ') : 'none', 'fact-webhooks')));
      const hooks = factsBox.querySelector('[data-testid=fact-webhooks]');
      if (hooks) hooks.classList.add('mon-wide');
    }

    // --- data quality
    function featureNames() {
      const names = [];
      const seen = new Set();
      const latest = st.execs.find((e) => ((e.result || {}).features || []).length);
      const drifted = new Set(((latest || {}).result || {}).drifted || []);
      for (const e of st.execs) for (const f of ((e.result || {}).features || [])) if (!seen.has(f.name)) { seen.add(f.name); names.push(f.name); }
      names.sort((a, b) => (drifted.has(b) - drifted.has(a)) || a.localeCompare(b));
      return { names, drifted };
    }
    let featureKey = '';
    /** Executions fetched in full (id → execution; null while on the way). */
    const fullExecs = new Map();
    function renderFeatureSelect() {
      const { names, drifted } = featureNames();
      if (!names.includes(st.feature)) st.feature = names[0] || '';
      const key = names.join('\0') + '|' + [...drifted].join('\0');
      if (key !== featureKey) {
        featureKey = key;
        replace(featureSel, names.length ? names.map((n) => h('option', { value: n }, n + (drifted.has(n) ? '  · drift' : ''))) : h('option', { value: '' }, 'no features yet'));
      }
      featureSel.value = st.feature;
      featureSel.disabled = !names.length;
    }
    function renderFeature() {
      const f = st.feature;
      const sel = selected();
      // drift value over executions (oldest first) against the threshold
      const pts = [];
      for (const e of st.execs.slice().reverse()) {
        const x = ((e.result || {}).features || []).find((q) => q.name === f);
        if (x && isNum(x.value)) pts.push({ e, f: x });
      }
      const method = pts.length ? pts[pts.length - 1].f.method : null;
      const same = pts.filter((p) => p.f.method === method);
      const logY = isPvalue(method);
      driftChart.update({
        series: [{ key: 'value', label: METHOD[method] || method || 'value', color: COL.value,
          points: same.map((p) => ({ x: xOf(p.e), y: logY ? Math.max(P_FLOOR, p.f.value) : p.f.value, raw: p.f.value, e: p.e, alarm: !!p.f.drift })) }],
        threshold: same.filter((p) => isNum(p.f.threshold)).map((p) => ({ x: xOf(p.e), y: p.f.threshold })),
        zone: logY ? 'below' : 'above', logY, maxY: logY ? 1 : undefined, selected: sel ? sel.id : null, onSelect: selectExec,
        empty: f ? 'No window with data for ' + f + ' yet' : 'No window with data yet',
      });
      driftBox.dataset.feature = f;
      driftBox.dataset.method = method || '';
      const dropped = pts.length - same.length;
      replace(driftNote, legend([['value', (METHOD[method] || 'value') + ' per window'], ['threshold', 'threshold'], ['zone', 'drift']]),
        h('div', { class: 'muted' }, !method ? '' : logY ? `Drift when the p-value falls below the threshold (log scale; p-values under ${P_FLOOR} are drawn at ${P_FLOOR}).` : 'Drift when the distance rises above the threshold.',
          dropped ? ` ${plural(dropped, 'earlier window')} judged with another method not shown.` : ''));
      // histogram: the selected execution's, else the newest that has one; the schedule's list
      // carries only the newest's histograms, so a selected older one is fetched in full once
      if (sel && sel.result && sel.result.histograms_omitted && !fullExecs.has(sel.id)) {
        fullExecs.set(sel.id, null);
        request('GET', API + '/' + enc(name) + '/executions/' + enc(sel.id)).then((res) => {
          fullExecs.set(sel.id, res.execution);
          if (selected() && selected().id === sel.id) renderFeature();
        }, () => fullExecs.delete(sel.id));
      }
      const full = (e) => (e && fullExecs.get(e.id)) || e;
      const withHist = (e) => e && e.result && e.result.histograms && e.result.histograms[f];
      const he = withHist(full(sel)) ? full(sel) : st.execs.find(withHist);
      if (he) {
        histChart.update(Object.assign({ empty: '' }, histogramOpts(he.result.histograms[f])));
        const today = new Date(he.window_end_ms).toDateString() === new Date().toDateString();
        replace(histTitle, h('b', { class: 'mono' }, f), ' · window ending ', h('span', { title: fmtDate(he.window_end_ms) }, today ? hms(he.window_end_ms) : fmtDate(he.window_end_ms)));
        histBox.dataset.feature = f;
        histBox.dataset.execution = he.id;
      } else {
        histChart.update({ labels: [], series: [], empty: f ? 'No histogram of ' + f + ' yet: it comes with the first window that has data' : 'No histogram yet' });
        replace(histTitle);
        histBox.dataset.feature = '';
      }
      for (const tr of featuresBox.querySelectorAll('tr[data-name]')) tr.classList.toggle('selected', tr.dataset.name === f);
    }
    function renderFeatures(e) {
      const feats = ((e || {}).result || {}).features || [];
      const r = (e || {}).result || {};
      if (!feats.length) {
        return replace(featuresBox, h('div', { class: 'empty', 'data-testid': 'features-empty' },
          !e ? 'No executions yet. Press Run now to check the last window of captured traffic.' : r.status === 'no_data' ? 'No data in this window: ' + (r.message || 'no captured requests.') : outcome(e) === 'running' ? 'Running…' : (e.error || 'This execution has no per-feature results.')));
      }
      // what the model reads first, drifted first; columns it does not read after (never alerting)
      const unused = (f) => f.used_by_model === false;
      const sorted = feats.slice().sort((a, b) => (unused(a) - unused(b)) || (b.drift - a.drift) || a.name.localeCompare(b.name));
      const st2 = (f) => f.statistics || {};
      const pval = (f) => (st2(f).ks ? st2(f).ks.pvalue : st2(f).chi2 ? st2(f).chi2.pvalue : null);
      replace(featuresBox, h('div', { class: 'card-head' }, h('h2', null, 'Window ' + fmtWindow(e.window_start_ms, e.window_end_ms)), execBadge(e, 'features-status'), h('span', { class: 'muted' }, `${r.rows} rows · click a row to plot it`)),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'features-table' },
          h('thead', null, h('tr', null, ['Feature', 'Drift', 'Method', 'Value', 'Threshold', 'KS statistic', 'p-value', 'PSI', 'Jensen–Shannon', 'Wasserstein (normed)'].map((t, i) => h('th', { class: i >= 3 ? 'num' : '', title: t === 'p-value' ? 'raw p-value; below it the Holm-adjusted one the verdict uses (corrected for testing every feature of the window at once)' : null }, t)))),
          h('tbody', null, sorted.map((f) => h('tr', { 'data-testid': 'feature-row', 'data-name': f.name, 'data-drift': String(!!f.drift), 'data-used': String(!unused(f)), class: (f.drift && !unused(f) ? 'mon-drift-row' : '') + (unused(f) ? ' mon-unused-row' : '') + (f.name === st.feature ? ' selected' : ''), style: 'cursor:pointer',
            onclick: () => { st.feature = f.name; syncUrl(); renderFeatureSelect(); renderFeature(); } },
            h('td', { title: f.note || '' }, h('b', { class: 'mono' }, f.name),
              unused(f) ? h('div', { class: 'muted mon-note', 'data-testid': 'unused-note' }, 'not used by the model: reported, never alerts') : null,
              f.note ? h('div', { class: 'muted mon-note' }, f.note) : null),
            h('td', null, h('span', { class: 'badge ' + (f.drift ? (unused(f) ? 'SCHEDULED' : 'ALERT') : 'FINISHED'), 'data-testid': 'drift-badge' }, f.drift ? 'drift' : 'ok')),
            h('td', null, METHOD[f.method] || f.method || '—'),
            h('td', { class: 'num' }, fmt(f.value)),
            h('td', { class: 'num' }, fmt(f.threshold)),
            h('td', { class: 'num' }, st2(f).ks ? fmt(st2(f).ks.statistic) : '—'),
            h('td', { class: 'num', 'data-testid': 'p-cell' }, fmt(pval(f)),
              isNum(f.p_adjusted) ? h('div', { class: 'muted mon-note', 'data-testid': 'p-adjusted' }, 'Holm ' + fmt(f.p_adjusted)) : null),
            h('td', { class: 'num' }, fmt(st2(f).psi)),
            h('td', { class: 'num' }, fmt(st2(f).jensen_shannon)),
            h('td', { class: 'num' }, fmt(st2(f).wasserstein_normed))))))));
    }

    // --- model quality
    function renderQuality(sel) {
      const execs = st.execs.slice().reverse();
      const withScore = execs.filter((e) => isNum((e.result || {}).score));
      const withEst = execs.filter((e) => (((e.result || {}).estimated || {}).accuracy || {}).estimate !== undefined);
      const metric = ((withScore[withScore.length - 1] || sel || {}).result || {}).metric || st.sched.metric || 'score';
      const estKey = metric === 'auc' ? 'auc' : 'accuracy';
      const series = [{ key: 'value', label: metric, color: COL.value, points: withScore.map((e) => ({ x: xOf(e), y: e.result.score, e, alarm: outcome(e) === 'violations' })) }];
      if (metric === 'accuracy' || metric === 'auc') {
        series.push({ key: 'estimate', label: 'CBPE ' + estKey, color: COL.estimate, points: withEst.filter((e) => isNum(((e.result.estimated || {})[estKey] || {}).estimate)).map((e) => ({ x: xOf(e), y: e.result.estimated[estKey].estimate, e })) });
      }
      const higher = ((withScore[withScore.length - 1] || {}).result || {}).higher_is_better !== false;
      scoreChart.update({
        series, threshold: execs.filter((e) => isNum((e.result || {}).limit)).map((e) => ({ x: xOf(e), y: e.result.limit })), thresholdLabel: 'limit',
        zone: higher ? 'below' : 'above', selected: sel ? sel.id : null, onSelect: selectExec,
      });
      replace(body.querySelector('[data-testid=score-metric]'), metric);
      const r = (sel || {}).result || {};
      const est = r.estimated || {};
      const band = (k, x) => {
        if (!x || !isNum(x.estimate)) return null;
        const lo = isNum(x.low) ? x.low : x.estimate, hi = isNum(x.high) ? x.high : x.estimate;
        const measured = r.metric === k && isNum(r.score) ? r.score : null;
        const limit = r.metric === k && isNum(r.limit) ? r.limit : null;
        // the track spans [d0, 1], zoomed on what it shows
        const d0 = Math.max(0, Math.floor((Math.min(lo, measured === null ? 1 : measured, limit === null ? 1 : limit) - 0.03) * 20) / 20);
        const at = (v) => (((Math.max(d0, Math.min(1, v)) - d0) / (1 - d0)) * 100).toFixed(2) + '%';
        return h('div', { class: 'mon-est', 'data-testid': 'cbpe-' + k },
          h('div', { class: 'mon-est-head' }, h('b', null, k), h('span', { class: 'mono' }, fmt(x.estimate), isNum(x.std_error) ? ' ± ' + fmt(x.std_error) : ''), h('span', { class: 'muted' }, '95 % interval ' + fmt(lo) + ' – ' + fmt(hi))),
          h('div', { class: 'mon-est-track' },
            h('div', { class: 'mon-est-band', style: `left:${at(lo)};width:calc(${at(hi)} - ${at(lo)})` }),
            h('div', { class: 'mon-est-tick estimate', style: 'left:' + at(x.estimate), title: 'estimate ' + fmt(x.estimate) }),
            measured !== null ? h('div', { class: 'mon-est-tick measured', style: 'left:' + at(measured), title: 'measured ' + fmt(measured) }) : null,
            limit !== null ? h('div', { class: 'mon-est-tick limit', style: 'left:' + at(limit), title: 'limit ' + fmt(limit) }) : null),
          h('div', { class: 'mon-est-scale muted' }, h('span', null, fmtNum(d0)), h('span', null, fmtNum((d0 + 1) / 2)), h('span', null, '1')));
      };
      const bands = [band('accuracy', est.accuracy), band('auc', est.auc)].filter(Boolean);
      replace(cbpeBox, h('h2', null, 'Estimated performance (CBPE)'),
        bands.length ? [bands, legend([['estimate', 'estimate'], ['measured', 'measured on labels'], ['threshold', 'limit']]),
          h('p', { class: 'muted', style: 'margin:8px 0 0' }, 'Confidence-based estimate from the model\'s own probabilities on ', String(est.rows || r.predictions || 0), ' predictions, before labels arrive; assumes ', est.assumption || 'calibrated probabilities', '.')]
          : h('div', { class: 'empty', style: 'padding:6px 0' }, sel ? 'No estimate for this window (regression models, or no captured predictions).' : 'No executions yet.'));
      const m = r.metrics || {};
      const counts = [['labelled', r.labelled], ['unlabelled', r.unlabelled], ['predictions', r.predictions], ['labels uploaded', r.labels_uploaded]];
      replace(metricsBox, sel ? h('div', { class: 'card-head' }, h('h2', null, 'Window ' + fmtWindow(sel.window_start_ms, sel.window_end_ms)), execBadge(sel, 'selected-status'), r.message ? h('span', { class: 'muted' }, r.message) : null) : null,
        Object.keys(m).length || counts.some(([, v]) => isNum(v))
          ? h('div', { class: 'facts', style: 'padding:14px 16px' },
            Object.entries(m).map(([k, v]) => h('div', { 'data-testid': 'quality-metric', 'data-metric': k }, h('span', null, k + (k === r.metric ? ' (watched)' : '')), h('b', { class: 'mono' }, fmt(v)))),
            isNum(r.baseline_score) ? h('div', null, h('span', null, 'baseline ' + (r.metric || '')), h('b', { class: 'mono' }, fmt(r.baseline_score))) : null,
            isNum(r.limit) ? h('div', null, h('span', null, 'limit'), h('b', { class: 'mono' }, fmt(r.limit))) : null,
            counts.filter(([, v]) => isNum(v)).map(([k, v]) => h('div', null, h('span', null, k), h('b', { class: 'mono' }, String(v)))))
          : h('div', { class: 'empty' }, sel ? (r.message || 'No metrics in this window.') : 'No executions yet. Upload ground truth (POST /api/atelier/ground-truth/' + st.sched.endpoint + ') and press Run now.'));
    }

    // --- model bias
    function renderBias(sel) {
      const execs = st.execs.slice().reverse();
      const names = [];
      for (const e of execs) for (const m of ((e.result || {}).metrics || [])) if (m.name && !names.includes(m.name)) names.push(m.name);
      if (!names.includes(st.metric)) st.metric = names.includes('DPPL') ? 'DPPL' : names[0] || '';
      const key = names.join('\0');
      if (biasMetricSel.dataset.key !== key) {
        replace(biasMetricSel, names.map((n) => h('option', { value: n }, n)));
        biasMetricSel.dataset.key = key;
      }
      biasMetricSel.value = st.metric;
      const of = (e) => ((e.result || {}).metrics || []).find((m) => m.name === st.metric);
      const withValue = execs.filter((e) => of(e) && isNum(of(e).value));
      const violated = (e) => violationsOf(e).some((v) => v.metric_name === st.metric);
      biasBox.dataset.metric = st.metric;
      biasChart.update({
        series: [{ key: 'value', label: st.metric, color: COL.value, points: withValue.map((e) => ({ x: xOf(e), y: of(e).value, e, alarm: violated(e) })) }],
        threshold: execs.filter((e) => of(e) && isNum(of(e).upper)).map((e) => ({ x: xOf(e), y: of(e).upper })), thresholdLabel: 'upper bound',
        lower: execs.filter((e) => of(e) && isNum(of(e).lower)).map((e) => ({ x: xOf(e), y: of(e).lower })), lowerLabel: 'lower bound',
        zone: 'above', selected: sel ? sel.id : null, onSelect: selectExec,
      });
      const r = (sel || {}).result || {};
      const ms = r.metrics || [];
      const fr = r.facet_rows || {};
      replace(biasTableBox, sel ? h('div', { class: 'card-head' }, h('h2', null, 'Window ' + fmtWindowShort(sel.window_start_ms, sel.window_end_ms)), execBadge(sel, 'selected-status'),
        isNum(fr.d) ? h('span', { class: 'muted', 'data-testid': 'facet-rows' }, `${r.facet} = ${((ms[0] || {}).facet_value) || '?'}: ${fr.d} rows · rest: ${fr.a}`) : null) : null,
        ms.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'bias-metrics' },
          h('thead', null, h('tr', null, h('th', null, 'Metric'), h('th', null, 'Description'), h('th', { class: 'num' }, 'Window'), h('th', { class: 'num' }, 'Baseline'), h('th', { class: 'num' }, 'Bounds'), h('th', null, ''))),
          h('tbody', null, ms.map((m) => {
            const bad = violationsOf(sel).some((v) => v.metric_name === m.name && v.facet_value === m.facet_value);
            const weak = !bad && (r.not_evident || []).includes(m.name);
            return h('tr', { 'data-testid': 'bias-metric-row', 'data-metric': m.name, 'data-violation': String(bad), class: bad ? 'mon-drift-row' : '', style: 'cursor:pointer',
              onclick: () => { st.metric = m.name; renderBias(selected()); } },
              h('td', null, h('b', { class: 'mono' }, m.name)),
              h('td', { class: 'wrap muted' }, (m.description || '') + ' · ' + m.facet + ' = ' + m.facet_value),
              h('td', { class: 'num', 'data-testid': 'bias-value', title: m.error || '' }, isNum(m.value) ? fmt(m.value) : (m.value || '—'),
                isNum(m.p_adjusted) ? h('div', { class: 'muted mon-note', 'data-testid': 'bias-p', title: 'one-sided test that the true value lies within the bounds, Holm-adjusted across the watched metrics; a value outside its bounds alerts only below ' + (r.p_value_threshold || 0.01) }, 'Holm p ' + fmt(m.p_adjusted)) : null),
              h('td', { class: 'num' }, fmt(m.baseline)),
              h('td', { class: 'num nowrap' }, '[' + (isNum(m.lower) ? fmtNum(m.lower, 3) : '−∞') + ', ' + (isNum(m.upper) ? fmtNum(m.upper, 3) : '∞') + ']'),
              h('td', null, h('span', { class: 'badge ' + (bad ? 'ALERT' : weak ? 'SCHEDULED' : 'FINISHED'), title: weak ? 'outside its bounds, but not evidently so with this many rows: not alerted' : null }, bad ? 'violation' : weak ? 'not evident' : 'ok')));
          }))))
          : h('div', { class: 'empty', 'data-testid': 'bias-empty' }, sel ? (r.message || 'No metrics in this window.') : 'No executions yet. Upload ground truth (POST /api/atelier/ground-truth/' + st.sched.endpoint + ') and press Run now.'));
    }

    // --- model explainability
    function renderExplain(sel) {
      const execs = st.execs.slice().reverse();
      const withN = execs.filter((e) => isNum((e.result || {}).ndcg));
      ndcgChart.update({
        series: [{ key: 'value', label: 'nDCG', color: COL.value, points: withN.map((e) => ({ x: xOf(e), y: e.result.ndcg, e, alarm: outcome(e) === 'violations' })) }],
        threshold: execs.filter((e) => isNum((e.result || {}).threshold) && isNum(e.result.ndcg)).map((e) => ({ x: xOf(e), y: e.result.threshold })), thresholdLabel: 'threshold',
        zone: 'below', selected: sel ? sel.id : null, onSelect: selectExec,
      });
      const r = (sel || {}).result || {};
      const labels = r.labels || [];
      const key = labels.map((x) => x.label).join('\0');
      if (rankLabelSel.dataset.key !== key) {
        replace(rankLabelSel, labels.map((x) => h('option', { value: x.label }, x.label + (x.violation ? ' ⚠' : ''))));
        rankLabelSel.dataset.key = key;
      }
      rankLabelSel.style.display = labels.length > 1 ? '' : 'none';
      const l = labels.find((x) => x.label === st.label) || labels.find((x) => x.violation) || labels[0];
      if (l) rankLabelSel.value = l.label;
      rankBox.dataset.execution = sel ? sel.id : '';
      replace(rankTitle, l ? `label ${l.label} · nDCG ${fmtNum(l.ndcg, 3)} · ${r.explained_rows || 0} rows` : '');
      rankChart.update({ baseline: l ? l.baseline_ranking : [], current: l ? l.current_ranking : [], empty: sel ? (r.message || 'Nothing explained in this window') : 'No window explained yet' });
    }

    function renderViolations(e) {
      const v = violationsOf(e);
      // findings on columns the served model does not read: shown apart, never alerting
      const apart = ((e || {}).result || {}).unused_column_violations || [];
      const table = (rows, testid, rowid) => h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': testid },
        h('thead', null, h('tr', null, h('th', null, 'Feature'), h('th', null, 'Check'), h('th', null, 'Description'))),
        h('tbody', null, rows.map((x) => h('tr', { 'data-testid': rowid, 'data-feature': x.feature_name },
          h('td', null, h('b', { class: 'mono' }, x.feature_name)),
          h('td', null, h('span', { class: 'badge' }, String(x.constraint_check_type || '').replace(/_/g, ' '))),
          h('td', { class: 'wrap' }, x.description))))));
      const unusedPart = apart.length ? [h('h3', { class: 'mon-apart-head', 'data-testid': 'unused-violations-head' }, 'Columns the model does not use · not alerted'), table(apart, 'unused-violations', 'unused-violation-row')] : [];
      if (!v.length) {
        return replace(violBox, h('div', { class: 'empty', 'data-testid': 'violations-empty' }, !e ? 'No executions yet.' : hasData(e) ? 'No violations in this window.' : 'No checks in this window: ' + (((e.result || {}).message) || e.error || outcome(e))), ...unusedPart);
      }
      replace(violBox, table(v, 'violations', 'violation-row'), ...unusedPart);
    }

    function renderDeliveries(e) {
      const s = st.sched;
      // from the webhook outbox: delivered, failed for good, or pending (queued or between retries)
      const d = (e || {}).deliveries || [];
      if (!d.length) {
        return replace(delivBox, h('div', { class: 'empty', 'data-testid': 'deliveries-empty' },
          !(s.webhooks || []).length ? 'No webhooks: recreate the schedule with a webhook URL to be told of violations.' : violationsOf(e).length ? 'Not delivered yet.' : 'Nothing to deliver: this window has no violations.'));
      }
      replace(delivBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'deliveries' },
        h('thead', null, h('tr', null, h('th', null, 'Webhook'), h('th', null, 'Delivered'), h('th', null, 'Attempts'))),
        h('tbody', null, d.map((x) => h('tr', { 'data-testid': 'delivery-row' },
          h('td', { class: 'wrap mono' }, x.url),
          h('td', null, h('span', { class: 'badge ' + (x.delivered ? 'FINISHED' : x.pending ? 'RUNNING' : 'FAILED'), 'data-state': x.delivered ? 'delivered' : x.pending ? 'pending' : 'failed',
            title: x.pending && x.next_attempt_ms ? 'next attempt ' + fmtDate(x.next_attempt_ms) : null }, x.delivered ? 'delivered' : x.pending ? 'pending' : 'failed')),
          h('td', { class: 'wrap' }, (x.attempts || []).map((a, i) => h('span', { class: 'mon-attempt', title: fmtDate(a.at_ms) + (a.error ? ': ' + a.error : '') },
            i ? ' → ' : '', a.status !== undefined && a.status !== null ? String(a.status) : h('span', { class: 'mon-warn' }, a.error ? a.error.replace(/^io: /, '').replace(/ \(os error \d+\)$/, '') : 'error'))))))))));
    }

    function renderExecutions(sel) {
      const kind = st.sched.kind;
      const dq = kind === 'data_quality' || !kind;
      if (!st.execs.length) {
        return replace(execBox, h('div', { class: 'empty', 'data-testid': 'executions-empty' },
          'No executions yet. The first runs ' + (st.sched.enabled ? fmtIn(st.sched.next_run_ms) + ' (' + fmtDate(st.sched.next_run_ms) + ')' : 'when the schedule is enabled') + ', or press Run now to check a window of captured traffic.'));
      }
      const cols = kind === 'model_bias' ? ['Window', 'Trigger', 'Outcome', 'Labelled', 'Group / rest', 'Violations', 'Reports', 'Took']
        : kind === 'model_explainability' ? ['Window', 'Trigger', 'Outcome', 'Explained', 'nDCG', 'Threshold', 'Reports', 'Took']
          : dq ? ['Window', 'Trigger', 'Outcome', 'Rows', 'Violations', 'Drifted', 'Reports', 'Took'] : ['Window', 'Trigger', 'Outcome', 'Labelled', 'Score', 'Limit', 'CBPE accuracy', 'Took'];
      const numCols = isClarify(kind) ? [3, 4, 5, 7] : dq ? [3, 4, 7] : [3, 4, 5, 6, 7];
      const files = (r) => h('td', null, Object.entries(r.files || {}).map(([n, p]) => h('a', { href: artifactHref(p), class: 'mon-file', target: '_blank', rel: 'noopener' }, n.replace(/\.json$/, ''))));
      replace(execBox, h('div', { class: 'card-head' }, h('h2', null, plural(st.execs.length, 'execution')), h('span', { class: 'muted' }, 'newest first · click one to inspect it')),
        h('div', { class: 'table-wrap mon-exec-wrap' }, h('table', { class: 'data', 'data-testid': 'executions-table' },
          h('thead', null, h('tr', null, cols.map((t, i) => h('th', { class: numCols.includes(i) ? 'num' : '' }, t)))),
          h('tbody', null, st.execs.map((e) => {
            const r = e.result || {};
            const took = e.ended_ms && e.created_ms ? C.fmtDuration(e.ended_ms - e.created_ms) : '';
            const cells = kind === 'model_bias' ? [
              h('td', { class: 'num' }, isNum(r.labelled) ? String(r.labelled) : '—'),
              h('td', { class: 'num' }, r.facet_rows ? r.facet_rows.d + ' / ' + r.facet_rows.a : '—'),
              h('td', { class: 'num' }, hasData(e) ? String(violationsOf(e).length) : '—'),
              files(r),
            ] : kind === 'model_explainability' ? [
              h('td', { class: 'num' }, isNum(r.explained_rows) ? String(r.explained_rows) : '—'),
              h('td', { class: 'num', 'data-testid': 'ndcg-cell' }, fmt(r.ndcg)),
              h('td', { class: 'num' }, fmt(r.threshold)),
              files(r),
            ] : dq ? [
              h('td', { class: 'num' }, isNum(r.rows) ? String(r.rows) : '—'),
              h('td', { class: 'num' }, hasData(e) ? String(violationsOf(e).length) : '—'),
              h('td', { class: 'mono wrap mon-drifted' }, (r.drifted || []).join(', ')),
              h('td', null, Object.entries(r.files || {}).map(([n, p]) => h('a', { href: artifactHref(p), class: 'mon-file', target: '_blank', rel: 'noopener' }, n.replace(/\.json$/, '')))),
            ] : [
              h('td', { class: 'num' }, isNum(r.labelled) ? String(r.labelled) : '—'),
              h('td', { class: 'num' }, fmt(r.score)),
              h('td', { class: 'num' }, fmt(r.limit)),
              h('td', { class: 'num' }, fmt(((r.estimated || {}).accuracy || {}).estimate)),
            ];
            return h('tr', { 'data-testid': 'execution-row', 'data-id': e.id, 'data-status': outcome(e), class: e === sel ? 'selected' : '', style: 'cursor:pointer', onclick: () => selectExec(e.id) },
              h('td', { title: fmtWindow(e.window_start_ms, e.window_end_ms) + ' · execution ' + e.id }, fmtWindowShort(e.window_start_ms, e.window_end_ms)),
              h('td', null, e.trigger || '—'),
              h('td', null, execBadge(e), outcome(e) === 'failed' && e.error ? h('div', { class: 'muted wrap', style: 'max-width:320px' }, e.error) : null),
              cells,
              h('td', { class: 'num' }, took));
          })))));
    }

    /** Everything that depends on the selected execution. */
    function renderSelected() {
      const sel = selected();
      timeline.update({ execs: st.execs, selected: sel ? sel.id : null });
      if (st.sched.kind === 'model_bias') {
        renderBias(sel);
      } else if (st.sched.kind === 'model_explainability') {
        renderExplain(sel);
      } else if (st.sched.kind !== 'model_quality') {
        renderFeatureSelect();
        renderFeatures(sel);
        renderFeature();
      } else {
        renderQuality(sel);
      }
      renderViolations(sel);
      renderDeliveries(sel);
      renderExecutions(sel);
    }

    let ep = null, navAt = 0, wasAlerting = null;
    async function load() {
      if (leaving) return true;
      let res;
      try { res = await request('GET', API + '/' + enc(name)); } catch (e) {
        if (S.isNotFound(e)) {
          // the server's message says it once ("No monitoring schedule named '…'"); nothing else shows
          S.notFound({ crumbs: [['Monitor', '/monitor']], title: 'Schedule not found', error: e, testid: 'schedule-load-error', back: ['/monitor', 'All schedules'] });
          return false;
        }
        if (!st.sched) replace(head, h('header', { class: 'page-head' }, h('h1', null, name)));
        replace(err, errorBox(e, 'schedule-load-error'));
        return true;
      }
      replace(err);
      st.sched = res.schedule;
      st.execs = res.executions || [];
      if (Date.now() - navAt > 15000 || res.schedule.alerting !== wasAlerting) {
        wasAlerting = res.schedule.alerting;
        navAt = Date.now();
        request('GET', API).then((r) => markNav((r.schedules || []).filter((s) => s.alerting).length), () => { /* optional */ });
      }
      if (!ep) { try { ep = (await request('GET', '/api/atelier/endpoints/' + enc(st.sched.endpoint))).endpoint; } catch (_) { ep = null; } }
      if (!st.built) build(st.sched);
      renderHead(st.sched, ep);
      renderSelected();
      await renderRetrain();
      return true;
    }
    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    load().then((found) => { if (found) live(load); });
  };
})();
