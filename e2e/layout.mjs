// A layout check for the Studio's pages, run by the browser tests on pages with real data:
//   (a) nothing sticks out of the window sideways: the document is no wider than the window, and no
//       visible element's right edge is past it, but inside a box that scrolls sideways on purpose
//       (overflow-x auto or scroll); and no form control (input, select, button, textarea) sits in
//       such a box where it can only be reached by scrolling sideways;
//   (b) no two visible pieces of text overlap (the boxes of text nodes, clipped by the boxes that
//       clip them, so that text cut with an ellipsis counts only where it shows; fixed-position
//       badges and tooltips are left out);
//   (c) no token is broken across lines: a text that is one token (no spaces: an id, a number, a
//       column name) stays on one line, and a word of a longer text is broken only after a hyphen
//       of running prose (a text of four words or more), never in the middle (`word-break:
//       break-all` or `overflow-wrap: anywhere` on a cell of ids). Raw text (pre, textarea, logs
//       marked with data-raw) may wrap as it likes;
//   (d) a chart's axis prints each tick label once (no "01:03:47" four times).
// Each problem names the page, the width, the element (tag, test id, classes, text) and its box.
import assert from 'node:assert/strict';

/** The layout problems of the page as it is now (the current viewport); [] when it holds. */
export async function layoutIssues(page) {
  return page.evaluate(() => {
    const out = [];
    const W = document.documentElement.clientWidth;
    const box = (r) => `(x ${Math.round(r.left)}–${Math.round(r.right)}, y ${Math.round(r.top + scrollY)}–${Math.round(r.bottom + scrollY)})`;
    const snippet = (t) => { t = String(t || '').replace(/\s+/g, ' ').trim(); return t.length > 48 ? t.slice(0, 47) + '…' : t; };
    const describe = (e) => {
      if (!e || !e.tagName) return '?';
      const own = e.getAttribute && e.getAttribute('data-testid');
      const near = !own && e.closest && e.closest('[data-testid]');
      const cls = typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/).join('.') : '';
      return e.tagName.toLowerCase() + (own ? `[data-testid=${own}]` : '') + cls + (near ? ` in [data-testid=${near.getAttribute('data-testid')}]` : '') + ` "${snippet(e.textContent)}"`;
    };
    const hidden = (e) => {
      for (let x = e; x && x.nodeType === 1; x = x.parentElement) {
        const cs = getComputedStyle(x);
        if (cs.display === 'none' || x.hidden || cs.opacity === '0') return true;
        if (x === e && cs.visibility === 'hidden') return true;
      }
      return false;
    };
    const fixed = (e) => { for (let x = e; x && x.nodeType === 1; x = x.parentElement) { if (getComputedStyle(x).position === 'fixed') return true; } return false; };
    const scrollsX = (e) => { const o = getComputedStyle(e).overflowX; return o === 'auto' || o === 'scroll'; };
    /** The nearest ancestor (not e) that scrolls sideways on purpose. */
    const scrollerOf = (e) => { for (let x = e.parentElement; x && x !== document.body; x = x.parentElement) if (scrollsX(x)) return x; return null; };
    /** The part of the window where e's content can show: its ancestors' (and its own) clipping boxes. */
    const clipOf = (e) => {
      let c = { left: -1e9, top: -1e9, right: 1e9, bottom: 1e9 };
      for (let x = e; x && x !== document.documentElement && x !== document.body; x = x.parentElement) {
        const cs = getComputedStyle(x);
        if (cs.position === 'fixed') break;
        const cx = cs.overflowX !== 'visible', cy = cs.overflowY !== 'visible';
        if (!cx && !cy) continue;
        const r = x.getBoundingClientRect();
        const l = r.left + x.clientLeft, t = r.top + x.clientTop;
        if (cx) c = { ...c, left: Math.max(c.left, l), right: Math.min(c.right, l + x.clientWidth) };
        if (cy) c = { ...c, top: Math.max(c.top, t), bottom: Math.min(c.bottom, t + x.clientHeight) };
      }
      return c;
    };
    const cut = (r, c) => ({ left: Math.max(r.left, c.left), right: Math.min(r.right, c.right), top: Math.max(r.top, c.top), bottom: Math.min(r.bottom, c.bottom) });
    const empty = (r) => r.right - r.left < 0.5 || r.bottom - r.top < 0.5;

    // (a) sideways overflow
    const de = document.documentElement;
    if (de.scrollWidth > W + 1) out.push(`overflow: the document is ${de.scrollWidth}px wide in a ${W}px window`);
    const sticking = new Set();
    for (const e of document.body.querySelectorAll('*')) {
      if (e.closest('svg') && e.tagName.toLowerCase() !== 'svg') continue;
      if (e.closest('.tooltip') || hidden(e) || fixed(e)) continue;
      const r = e.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const sc = scrollerOf(e);
      if (!sc && r.right > W + 1) {
        const shown = cut(r, clipOf(e.parentElement || e));
        if (!empty(shown) && shown.right > W + 1 && !sticking.has(e.parentElement)) out.push(`overflow: ${describe(e)} ends at x ${Math.round(r.right)}, past the ${W}px window ${box(r)}`);
        sticking.add(e);
      }
      if (sc && e.matches('input:not([type=hidden]), select, textarea, button')) {
        const v = cut(sc.getBoundingClientRect(), clipOf(sc));
        if (r.left < v.left - 1 || r.right > v.right + 1) out.push(`overflow: ${describe(e)} is out of view in a box that scrolls sideways (${describe(sc)} shows x ${Math.round(v.left)}–${Math.round(v.right)}) ${box(r)}`);
      }
    }

    // text boxes, for (b) and (c)
    const SKIP = 'script, style, noscript, template, title, option, select, datalist, textarea, .tooltip';
    const texts = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!/\S/.test(n.data)) continue;
      const p = n.parentElement;
      if (!p || p.closest(SKIP) || hidden(p) || fixed(p)) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      const clip = clipOf(p);
      const rects = [...range.getClientRects()].map((r) => cut(r, clip)).filter((r) => !empty(r));
      if (rects.length) texts.push({ n, p, rects });
    }

    // (b) overlapping text
    const boxes = [];
    texts.forEach((t, i) => t.rects.forEach((r) => boxes.push({ i, r })));
    boxes.sort((a, b) => a.r.top - b.r.top);
    const reported = new Set();
    for (let a = 0; a < boxes.length; a++) {
      const A = boxes[a];
      for (let b = a + 1; b < boxes.length && boxes[b].r.top < A.r.bottom; b++) {
        const B = boxes[b];
        if (A.i === B.i) continue;
        const w = Math.min(A.r.right, B.r.right) - Math.max(A.r.left, B.r.left);
        const h = Math.min(A.r.bottom, B.r.bottom) - Math.max(A.r.top, B.r.top);
        const hmin = Math.min(A.r.bottom - A.r.top, B.r.bottom - B.r.top);
        if (w > 2 && h > hmin * 0.35) {
          const key = A.i < B.i ? A.i + ':' + B.i : B.i + ':' + A.i;
          if (reported.has(key)) continue;
          reported.add(key);
          const ta = texts[A.i], tb = texts[B.i];
          out.push(`overlap: ${describe(ta.p)} ${box(A.r)} and ${describe(tb.p)} ${box(B.r)} overlap by ${Math.round(w)}×${Math.round(h)}px`);
        }
      }
    }

    // (c) tokens broken across lines
    const RAW = 'pre, textarea, [data-raw], [contenteditable]';
    const linesOf = (rects) => {
      const tops = [];
      for (const r of rects) {
        const hgt = r.bottom - r.top;
        if (!tops.some((t) => Math.abs(t - r.top) < hgt / 2)) tops.push(r.top);
      }
      return tops.length;
    };
    for (const t of texts) {
      if (t.p.closest(RAW) || t.p.closest('svg')) continue;
      const text = t.n.data;
      const words = [...text.matchAll(/\S+/g)];
      const oneToken = words.length === 1 && t.p.childNodes.length === 1;
      for (const m of words) {
        const word = m[0];
        if (word.length < 2) continue;
        const r = document.createRange();
        r.setStart(t.n, m.index);
        r.setEnd(t.n, m.index + word.length);
        const rects = [...r.getClientRects()].filter((x) => x.width > 0.5 && x.height > 0.5);
        if (linesOf(rects) < 2) continue;
        // where the word breaks: the characters that start a new line
        const breaks = [];
        let prevTop = null;
        for (let k = 0; k < word.length; k++) {
          const c = document.createRange();
          c.setStart(t.n, m.index + k);
          c.setEnd(t.n, m.index + k + 1);
          const cr = [...c.getClientRects()].find((x) => x.width > 0 || x.height > 0);
          if (!cr) continue;
          if (prevTop !== null && Math.abs(cr.top - prevTop) > cr.height / 2) breaks.push(k);
          prevTop = cr.top;
        }
        const prose = words.length >= 4;
        const bad = oneToken ? breaks : breaks.filter((k) => !(prose && word[k - 1] === '-'));
        if (!bad.length && breaks.length) continue;
        const shown = bad.length ? bad.map((k) => word.slice(0, k).slice(-12) + '|' + word.slice(k, k + 12)).join(', ') : word;
        out.push(`broken token: "${word.length > 60 ? word.slice(0, 59) + '…' : word}" wraps mid-token (${shown}) in ${describe(t.p)} ${box(rects[0])}`);
      }
    }

    // (d) a chart axis prints each label once (ticks closer than its labels' precision repeat them)
    for (const svg of document.querySelectorAll('svg')) {
      if (hidden(svg)) continue;
      const labels = [...svg.querySelectorAll('.axis text')].filter((t) => t.textContent.trim() && !t.getAttribute('transform'));
      for (const attr of ['y', 'x']) {
        const groups = new Map();
        for (const t of labels) {
          const k = Math.round(Number(t.getAttribute(attr)));
          if (!groups.has(k)) groups.set(k, []);
          groups.get(k).push(t.textContent.trim());
        }
        for (const g of groups.values()) {
          const seen = new Set(), twice = new Set();
          for (const l of g) (seen.has(l) ? twice : seen).add(l);
          if (g.length > 1 && twice.size) out.push(`axis: ${describe(svg.closest('[data-testid]') || svg.parentElement)} repeats the axis label${twice.size > 1 ? 's' : ''} ${[...twice].map((l) => `"${l}"`).join(', ')} (${g.join(' | ')}) ${box(svg.getBoundingClientRect())}`);
        }
      }
    }
    return out;
  });
}

/** Waits for the page to settle after a resize (charts redraw from a ResizeObserver). */
async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 120)))));
}

/**
 * Checks the page's layout at each width (default 1280, 1400 and 1920 px, 900 px high) and throws
 * an assertion error naming every problem; the viewport is put back as it was.
 * `label` names the page in the message; `widths` overrides the widths.
 */
export async function checkLayout(page, { label, widths = [1280, 1400, 1920], height = 900 } = {}) {
  const name = label || new URL(page.url()).pathname;
  const before = page.viewportSize();
  const problems = [];
  try {
    for (const width of widths) {
      await page.setViewportSize({ width, height });
      await settle(page);
      for (const p of await layoutIssues(page)) problems.push(`${name} at ${width}px: ${p}`);
    }
  } finally {
    if (before) { await page.setViewportSize(before); await settle(page); }
  }
  assert.deepEqual(problems, [], `layout problems on ${name}:\n  ${problems.join('\n  ')}`);
}
