// Atelier Studio charts: small hand-written SVG line and scatter charts with hover tooltips.
// Exposes window.AtelierCharts = { lineChart, scatterChart, ema, fmtNum, fmtDuration, fmtTick,
// timeTicks, spanTicks, linearTicks, PALETTE, svgEl, niceStep } (the axis helpers and svgEl for other pages'
// own charts).
(function () {
  'use strict';
  const SVG = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#3b5bdb', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0c8599', '#e67700',
    '#5c940d', '#862e9c', '#1864ab', '#d9480f', '#087f5b', '#a61e4d', '#495057', '#364fc7',
    '#f08c00', '#0b7285', '#9c36b5', '#2f9e44', '#c92a2a'];

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function fmtNum(v, digits) {
    if (typeof v !== 'number') return String(v);
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
    if (v === 0) return '0';
    const a = Math.abs(v);
    const d = digits || 4;
    if (a >= 1e6 || a < 1e-4) return v.toExponential(Math.max(1, d - 2)).replace('e+', 'e');
    if (Number.isInteger(v)) return String(v);
    return String(parseFloat(v.toPrecision(d + 1)));
  }

  function fmtDuration(ms) {
    const s = ms / 1000;
    if (Math.abs(s) < 60) return (Math.round(s * 10) / 10) + 's';
    if (Math.abs(s) < 3600) return Math.floor(s / 60) + 'm' + (Math.round(s % 60) ? ' ' + Math.round(s % 60) + 's' : '');
    return (Math.round(s / 360) / 10) + 'h';
  }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  // Round time steps, from a millisecond to a week; the axis takes the first that fits.
  const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3,
    900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 172800e3, 604800e3];
  /** A time step of at least (b − a) / count, from TIME_STEPS (whole days beyond a week). */
  function timeStep(a, b, count) {
    const want = (b - a) / Math.max(1, count);
    return TIME_STEPS.find((s) => s >= want) || Math.ceil(want / 86400e3) * 86400e3;
  }
  /** A wall-clock label precise to `step`: dates for days, minutes for hours, seconds, milliseconds. */
  function fmtClock(ms, step, span) {
    const d = new Date(ms);
    const day = (d.getMonth() + 1) + '/' + d.getDate();
    const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (step >= 86400e3) return span > 365 * 86400e3 ? d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) : day;
    if (step >= 60e3) return span > 86400e3 ? day + ' ' + hm : hm;
    if (step >= 1e3) return hm + ':' + pad(d.getSeconds());
    return hm + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }
  /**
   * Ticks of a wall-time axis over [a, b] (epoch ms), about `count` of them: [[t, label]], at round
   * local times (a step from TIME_STEPS) and labelled as precisely as the step needs, so that no two
   * labels are the same ("07:47:51" four times for a range of two seconds was the bug).
   */
  function timeTicks(a, b, count) {
    if (!(b > a)) return [[a, fmtClock(a, 1e3, 0)]];
    const step = timeStep(a, b, count);
    const off = new Date(a).getTimezoneOffset() * 60000; // round local hours and days
    const out = [];
    for (let t = Math.ceil((a - off) / step) * step + off; t <= b + 1e-6; t += step) out.push([t, fmtClock(t, step, b - a)]);
    return out;
  }
  /** A duration label precise to `step` (relative time axes). */
  function fmtSpan(ms, step) {
    if (step < 1000) return (ms / 1000).toFixed(Math.max(0, Math.ceil(-Math.log10(step / 1000)))) + 's';
    const s = Math.round(ms / 1000);
    if (Math.abs(s) < 60) return s + 's';
    if (Math.abs(s) < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? ' ' + (s % 60) + 's' : '');
    const m = Math.round(s / 60);
    return Math.floor(m / 60) + 'h' + (m % 60 ? ' ' + (m % 60) + 'm' : '');
  }
  /** Ticks of a relative-time axis (ms since the start): [[t, label]]. */
  function spanTicks(a, b, count) {
    if (!(b > a)) return [[a, fmtSpan(a, 1000)]];
    const step = timeStep(a, b, count);
    const out = [];
    for (let t = Math.ceil(a / step) * step; t <= b + 1e-6; t += step) out.push([t, fmtSpan(t, step)]);
    return out;
  }

  function niceStep(range, count) {
    const raw = range / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }
  /** About `count` round values in [min, max]; whole numbers only when `integer` (steps, counts). */
  function linearTicks(min, max, count, integer) {
    if (!(max > min)) return [min];
    let step = niceStep(max - min, count);
    if (integer) step = Math.max(1, Math.round(step));
    const out = [];
    for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  /**
   * Numbers of one axis (e.g. a histogram's bin edges, `width` apart) rounded alike: to the
   * decimals that tell neighbours `width` apart, no more (16.3334 → 16.3 for bins 8 wide).
   */
  function fmtTick(v, width) {
    if (!Number.isFinite(v)) return fmtNum(v);
    const a = Math.abs(v);
    if (a >= 1e6 || (a > 0 && a < 1e-4)) return fmtNum(v, 3);
    const d = Number.isFinite(width) && width > 0 ? Math.max(0, Math.min(8, 1 - Math.floor(Math.log10(width)))) : 3;
    return String(parseFloat(v.toFixed(d)));
  }
  function logTicks(min, max) {
    const lo = Math.floor(Math.log10(min)), hi = Math.ceil(Math.log10(max));
    const out = [];
    for (let e = lo; e <= hi; e++) {
      for (const m of (hi - lo <= 2 ? [1, 2, 5] : [1])) {
        const v = m * Math.pow(10, e);
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out.length >= 2 ? out : [min, max];
  }

  // Debiased exponential moving average (as in TensorBoard); non-finite values are passed through.
  function ema(ys, s) {
    if (!(s > 0)) return ys.slice();
    let last = 0, w = 0;
    return ys.map((y) => {
      if (!Number.isFinite(y)) return y;
      last = last * s + (1 - s) * y;
      w = w * s + (1 - s);
      return last / w;
    });
  }

  // Reduces a sorted point list to at most ~4 points per pixel column (first, min, max, last).
  function decimate(pts, sx, width) {
    if (pts.length <= width * 4) return pts;
    const out = [];
    let col = null, bucket = [];
    const flush = () => {
      if (!bucket.length) return;
      let mn = bucket[0], mx = bucket[0];
      for (const p of bucket) { if (p.y < mn.y) mn = p; if (p.y > mx.y) mx = p; }
      const set = [bucket[0], mn, mx, bucket[bucket.length - 1]];
      set.sort((a, b) => a.x - b.x);
      let prev = null;
      for (const p of set) { if (p !== prev) out.push(p); prev = p; }
      bucket = [];
    };
    for (const p of pts) {
      const c = Math.floor(sx(p.x));
      if (c !== col) { flush(); col = c; }
      bucket.push(p);
    }
    flush();
    return out;
  }

  function tooltipDiv(container) {
    let tip = container.querySelector(':scope > .tooltip');
    if (!tip) {
      tip = document.createElement('div');
      tip.className = 'tooltip';
      tip.setAttribute('data-testid', 'chart-tooltip');
      tip.hidden = true;
      container.appendChild(tip);
    }
    return tip;
  }
  function placeTip(container, tip, px, py) {
    const w = container.clientWidth;
    tip.hidden = false;
    const tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = px + 14;
    if (left + tw > w) left = px - tw - 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, Math.min(py - th / 2, container.clientHeight - th)) + 'px';
  }
  function tipRow(tip, color, label, value) {
    const row = document.createElement('div');
    row.className = 'row';
    const sw = document.createElement('span');
    sw.className = 'sw';
    sw.style.background = color;
    const l = document.createElement('span');
    l.textContent = label;
    const v = document.createElement('span');
    v.className = 'val';
    v.textContent = value;
    row.append(sw, l, v);
    tip.appendChild(row);
  }

  function observeResize(container, draw) {
    let lastW = container.clientWidth;
    if (typeof ResizeObserver === 'undefined') return () => {};
    const ro = new ResizeObserver(() => {
      const w = container.clientWidth;
      if (w !== lastW) { lastW = w; draw(); }
    });
    ro.observe(container);
    return () => ro.disconnect();
  }

  /**
   * Line chart. opts: { series: [{ label, color, id, points: [{ x, y, step, ts }] }],
   *   xKind: 'step'|'time'|'relative', logY, smoothing (0..0.99), empty: text }.
   * The container gets data-series / data-points (raw points received, all series).
   */
  function lineChart(container, opts) {
    container.classList.add('chart');
    const state = { opts };
    let svg = null;
    const M = { l: 52, r: 14, t: 10, b: 26 };

    function draw() {
      const o = state.opts;
      const W = Math.max(200, container.clientWidth || 400);
      const H = Math.max(120, container.clientHeight || 230);
      if (svg) svg.remove();
      svg = el('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
      container.insertBefore(svg, container.firstChild);
      let total = 0;
      for (const s of o.series) total += s.points.length;
      container.setAttribute('data-series', String(o.series.length));
      container.setAttribute('data-points', String(total));

      const prepared = o.series.map((s) => {
        const ys = ema(s.points.map((p) => p.y), o.smoothing);
        const pts = [];
        s.points.forEach((p, i) => {
          const y = ys[i];
          if (Number.isFinite(p.x) && Number.isFinite(y) && (!o.logY || y > 0)) {
            pts.push({ x: p.x, y, raw: p.y, step: p.step, ts: p.ts });
          }
        });
        const raw = o.smoothing > 0 ? s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.logY || p.y > 0)) : null;
        return { s, pts, raw };
      });
      let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
      for (const p of prepared) {
        for (const q of p.pts) { if (q.x < xmin) xmin = q.x; if (q.x > xmax) xmax = q.x; if (q.y < ymin) ymin = q.y; if (q.y > ymax) ymax = q.y; }
        for (const q of p.raw || []) { if (q.y < ymin) ymin = q.y; if (q.y > ymax) ymax = q.y; }
      }
      if (!Number.isFinite(xmin)) {
        const t = el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg);
        t.textContent = o.empty || 'No finite values to plot';
        return;
      }
      const xKind = o.xKind || 'step';
      const finite = prepared.reduce((a, p) => a + p.pts.length, 0);
      container.setAttribute('data-single', String(finite === 1));
      const oneX = xmax === xmin && !o.xDomain;
      // one range for every chart of a page (o.xDomain), else the data's
      if (o.xDomain && Number.isFinite(o.xDomain[0]) && Number.isFinite(o.xDomain[1]) && o.xDomain[1] > o.xDomain[0]) {
        xmin = Math.min(xmin, o.xDomain[0]);
        xmax = Math.max(xmax, o.xDomain[1]);
      }
      if (xmax === xmin) {
        // one x: the point in the middle of an axis around it, with one tick at it
        const c = xmin, d = xKind === 'step' ? 1 : 30e3;
        xmin = c - d;
        xmax = c + d;
      }
      container.setAttribute('data-x-min', String(xmin));
      container.setAttribute('data-x-max', String(xmax));
      const dataMin = ymin;
      const intY = !o.logY && prepared.every((p) => p.pts.every((q) => Number.isInteger(q.y)) && (p.raw || []).every((q) => Number.isInteger(q.y)));
      if (ymax === ymin) {
        if (o.logY) { ymin /= 2; ymax *= 2; } else { const d = intY ? Math.max(1, Math.abs(ymin) * 0.1) : Math.abs(ymin) * 0.1 || 1; ymin -= d; ymax += d; }
      } else if (!o.logY) {
        const pad = (ymax - ymin) * 0.05; ymin -= pad; ymax += pad;
      }
      // counts, losses, latencies: no negative part on the axis
      if (!o.logY && dataMin >= 0 && ymin < 0) ymin = 0;
      const fy = o.logY ? Math.log10 : (v) => v;
      const y0 = fy(ymin), y1 = fy(ymax);
      const sx = (x) => M.l + ((x - xmin) / (xmax - xmin)) * (W - M.l - M.r);
      const sy = (y) => H - M.b - ((fy(y) - y0) / (y1 - y0)) * (H - M.t - M.b);

      const grid = el('g', { class: 'grid' }, svg);
      const axis = el('g', { class: 'axis' }, svg);
      const yt = o.logY ? logTicks(ymin, ymax) : linearTicks(ymin, ymax, Math.max(2, Math.min(6, Math.floor((H - M.t - M.b) / 40))), intY);
      for (const v of yt) {
        const y = sy(v);
        el('line', { x1: M.l, x2: W - M.r, y1: y, y2: y }, grid);
        const t = el('text', { x: M.l - 6, y: y + 3.5, 'text-anchor': 'end' }, axis);
        t.textContent = fmtNum(v, 3);
      }
      const xCount = Math.max(2, Math.floor((W - M.l) / (xKind === 'step' ? 80 : 95)));
      let xt;
      if (oneX) {
        const c = (xmin + xmax) / 2;
        xt = [[c, xKind === 'time' ? fmtClock(c, 1e3, 0) : xKind === 'relative' ? fmtSpan(c, 1000) : fmtNum(c, 8)]];
      } else if (xKind === 'time') {
        xt = timeTicks(xmin, xmax, xCount);
      } else if (xKind === 'relative') {
        xt = spanTicks(xmin, xmax, xCount);
      } else {
        // steps (and candidate numbers) are whole numbers: so are their ticks
        xt = linearTicks(xmin, xmax, xCount, true).map((v) => [v, fmtNum(v, 8)]);
      }
      for (const [v, label] of xt) {
        const t = el('text', { x: sx(v), y: H - M.b + 16, 'text-anchor': 'middle' }, axis);
        t.textContent = label;
      }
      el('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);

      const pathOf = (pts) => {
        let d = '';
        let pen = false;
        for (const p of decimate(pts, sx, W)) {
          d += (pen ? 'L' : 'M') + sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1);
          pen = true;
        }
        return d;
      };
      for (const p of prepared) {
        const color = p.s.color || PALETTE[0];
        if (p.raw && p.raw.length) {
          el('path', { d: pathOf(p.raw.map((q) => ({ x: q.x, y: q.y }))), class: 'series raw', stroke: color }, svg);
        }
        const path = el('path', { d: pathOf(p.pts), class: 'series', stroke: color, 'data-testid': 'series', 'data-points': String(p.s.points.length) }, svg);
        if (p.s.id) path.setAttribute('data-run-id', p.s.id);
        if (p.pts.length === 1) el('circle', { cx: sx(p.pts[0].x), cy: sy(p.pts[0].y), r: finite === 1 ? 4.5 : 3, fill: color, 'data-testid': 'single-point' }, svg);
      }
      // a single value: shown as a number beside its marker, not as a line
      if (finite === 1) {
        const p = prepared.find((q) => q.pts.length).pts[0];
        const px = sx(p.x), right = px < W - M.r - 90;
        const t = el('text', { x: px + (right ? 10 : -10), y: sy(p.y) - 8, 'text-anchor': right ? 'start' : 'end', class: 'point-value', 'data-testid': 'point-value' }, svg);
        t.textContent = fmtNum(o.smoothing > 0 ? p.raw : p.y, 5);
      }

      // Hover: a vertical guide, a dot per series and a tooltip with every series' value.
      const hover = el('g', { visibility: 'hidden' }, svg);
      const guide = el('line', { class: 'hover-line', y1: M.t, y2: H - M.b }, hover);
      const dots = prepared.map((p) => el('circle', { r: 3.5, fill: p.s.color || PALETTE[0], stroke: '#fff', 'stroke-width': 1.5 }, hover));
      const overlay = el('rect', { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: 'transparent', 'data-testid': 'chart-overlay' }, svg);
      const tip = tooltipDiv(container);
      const nearest = (pts, x) => {
        let lo = 0, hi = pts.length - 1;
        if (hi < 0) return null;
        while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (pts[mid].x < x) lo = mid; else hi = mid; }
        return Math.abs(pts[lo].x - x) <= Math.abs(pts[hi].x - x) ? pts[lo] : pts[hi];
      };
      const move = (ev) => {
        const r = svg.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W;
        const x = xmin + ((px - M.l) / (W - M.l - M.r)) * (xmax - xmin);
        let best = null;
        const hits = prepared.map((p) => nearest(p.pts, x));
        for (const h of hits) if (h && (!best || Math.abs(h.x - x) < Math.abs(best.x - x))) best = h;
        if (!best) return;
        hover.setAttribute('visibility', 'visible');
        guide.setAttribute('x1', sx(best.x));
        guide.setAttribute('x2', sx(best.x));
        tip.textContent = '';
        const head = document.createElement('div');
        head.className = 'head';
        head.textContent = xKind === 'time' ? new Date(best.x).toLocaleString() : xKind === 'relative' ? fmtDuration(best.x) + (best.step != null ? ' · step ' + best.step : '') : 'step ' + fmtNum(best.x, 8);
        tip.appendChild(head);
        hits.forEach((h, i) => {
          const show = h && Math.abs(sx(h.x) - sx(best.x)) < 30;
          dots[i].setAttribute('visibility', show ? 'visible' : 'hidden');
          if (!show) return;
          dots[i].setAttribute('cx', sx(h.x));
          dots[i].setAttribute('cy', sy(h.y));
          const label = prepared[i].s.label || '';
          let value = fmtNum(h.y, 6);
          if (o.smoothing > 0) value += ' (raw ' + fmtNum(h.raw, 6) + ')';
          tipRow(tip, prepared[i].s.color || PALETTE[0], label, value);
        });
        placeTip(container, tip, (ev.clientX - r.left), (ev.clientY - r.top));
      };
      overlay.addEventListener('mousemove', move);
      overlay.addEventListener('mouseleave', () => { hover.setAttribute('visibility', 'hidden'); tip.hidden = true; });
    }

    draw();
    const stop = observeResize(container, draw);
    return {
      update(next) { state.opts = Object.assign({}, state.opts, next); draw(); },
      destroy() { stop(); container.textContent = ''; },
    };
  }

  /**
   * Scatter chart. opts: { points: [{ x, y, label, color, id }], xLabel, yLabel }.
   * x / y values may be numbers or strings (strings are placed on a categorical axis).
   */
  function scatterChart(container, opts) {
    container.classList.add('chart');
    const state = { opts };
    let svg = null;
    const M = { l: 56, r: 16, t: 12, b: 40 };
    function axisOf(values, isTime, count) {
      const nums = values.filter((v) => v !== null && v !== undefined && v !== '');
      const numeric = nums.every((v) => typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))));
      if (numeric) {
        const xs = nums.map(Number).filter(Number.isFinite);
        let min = Math.min(...xs), max = Math.max(...xs);
        if (!xs.length) { min = 0; max = 1; }
        if (min === max) { const d = isTime ? 30e3 : Math.abs(min) * 0.1 || 1; min -= d; max += d; } else { const p = (max - min) * 0.08; min -= p; max += p; }
        const pos = (v) => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : (Number(v) - min) / (max - min));
        const ticks = isTime ? timeTicks(min, max, count || 4).map(([t, l]) => [pos(t), l]) : linearTicks(min, max, 5, xs.every(Number.isInteger)).map((v) => [pos(v), fmtNum(v, 3)]);
        return { kind: 'num', min, max, pos, ticks };
      }
      const cats = [...new Set(nums.map(String))].sort();
      const n = cats.length;
      return { kind: 'cat', pos: (v) => (v === null || v === undefined || v === '' ? null : (cats.indexOf(String(v)) + 0.5) / n), ticks: cats.map((c, i) => [(i + 0.5) / n, c.length > 14 ? c.slice(0, 13) + '…' : c]) };
    }
    function draw() {
      const o = state.opts;
      const W = Math.max(240, container.clientWidth || 400);
      const H = Math.max(160, container.clientHeight || 300);
      if (svg) svg.remove();
      svg = el('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
      container.insertBefore(svg, container.firstChild);
      const ax = axisOf(o.points.map((p) => p.x), o.xTime, Math.max(2, Math.floor((W - M.l - M.r) / 130)));
      const ay = axisOf(o.points.map((p) => p.y), o.yTime, Math.max(2, Math.floor((H - M.t - M.b) / 40)));
      const sx = (f) => M.l + f * (W - M.l - M.r);
      const sy = (f) => H - M.b - f * (H - M.t - M.b);
      const grid = el('g', { class: 'grid' }, svg);
      const axis = el('g', { class: 'axis' }, svg);
      for (const [f, label] of ay.ticks) {
        el('line', { x1: M.l, x2: W - M.r, y1: sy(f), y2: sy(f) }, grid);
        el('text', { x: M.l - 6, y: sy(f) + 3.5, 'text-anchor': 'end' }, axis).textContent = label;
      }
      for (const [f, label] of ax.ticks) {
        el('line', { y1: M.t, y2: H - M.b, x1: sx(f), x2: sx(f) }, grid);
        el('text', { x: sx(f), y: H - M.b + 15, 'text-anchor': 'middle' }, axis).textContent = label;
      }
      el('text', { x: (M.l + W - M.r) / 2, y: H - 6, 'text-anchor': 'middle' }, axis).textContent = o.xLabel || '';
      el('text', { x: 12, y: (M.t + H - M.b) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})` }, axis).textContent = o.yLabel || '';
      el('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
      const placed = [];
      for (const p of o.points) {
        const fx = ax.pos(p.x), fy = ay.pos(p.y);
        if (fx === null || fy === null) continue;
        const c = el('circle', { cx: sx(fx), cy: sy(fy), r: 5.5, fill: p.color || PALETTE[0], 'fill-opacity': 0.85, stroke: '#fff', 'stroke-width': 1.5, 'data-testid': 'scatter-point' }, svg);
        if (p.id) c.setAttribute('data-run-id', p.id);
        placed.push({ p, cx: sx(fx), cy: sy(fy) });
      }
      container.setAttribute('data-points', String(placed.length));
      const tip = tooltipDiv(container);
      svg.addEventListener('mousemove', (ev) => {
        const r = svg.getBoundingClientRect();
        const px = ((ev.clientX - r.left) / r.width) * W, py = ((ev.clientY - r.top) / r.height) * H;
        let best = null, bd = 14 * 14;
        for (const q of placed) { const d = (q.cx - px) ** 2 + (q.cy - py) ** 2; if (d < bd) { bd = d; best = q; } }
        if (!best) { tip.hidden = true; return; }
        tip.textContent = '';
        const head = document.createElement('div');
        head.className = 'head';
        head.textContent = best.p.label || '';
        tip.appendChild(head);
        tipRow(tip, best.p.color, o.xLabel || 'x', o.xTime ? new Date(best.p.x).toLocaleString() : typeof best.p.x === 'number' ? fmtNum(best.p.x, 6) : String(best.p.x));
        tipRow(tip, best.p.color, o.yLabel || 'y', typeof best.p.y === 'number' ? fmtNum(best.p.y, 6) : String(best.p.y));
        placeTip(container, tip, ev.clientX - r.left, ev.clientY - r.top);
      });
      svg.addEventListener('mouseleave', () => { tip.hidden = true; });
      if (o.onClick) {
        svg.style.cursor = 'pointer';
        svg.addEventListener('click', (ev) => {
          const r = svg.getBoundingClientRect();
          const px = ((ev.clientX - r.left) / r.width) * W, py = ((ev.clientY - r.top) / r.height) * H;
          const hit = placed.find((q) => (q.cx - px) ** 2 + (q.cy - py) ** 2 < 100);
          if (hit) o.onClick(hit.p);
        });
      }
    }
    draw();
    const stop = observeResize(container, draw);
    return {
      update(next) { state.opts = Object.assign({}, state.opts, next); draw(); },
      destroy() { stop(); container.textContent = ''; },
    };
  }

  window.AtelierCharts = { lineChart, scatterChart, ema, fmtNum, fmtDuration, fmtTick, timeTicks, spanTicks, linearTicks, PALETTE, svgEl: el, niceStep };
})();
