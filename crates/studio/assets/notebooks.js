// Atelier Studio: the Notebooks page (registered into window.AtelierStudio.pages).
// /notebooks lists the caller's workspace notebooks with their last runs, the recent notebook runs
// (pick two to diff their parameters) and the notebook schedules; /notebooks?lab[=<path>] shows the
// caller's JupyterLab inside the Studio (started on demand, proxied under /notebooks/<space>/);
// /notebooks?preview=<source> renders a notebook without a kernel (workspace:<path>, job:<id> —
// live while the job runs —, runs:/<run>/<path> or an artifact path) with "Run as job" and
// "Open in JupyterLab". Data: /api/atelier/notebooks, /api/atelier/notebook-schedules,
// /api/atelier/spaces (crates `notebooks`, `spaces`).
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, append, request, errorBox, fmtAgo, fmtDate, fmtDur, fmtBytes, live, main, pages } = S;
  // S.api is the MLflow API ({get, post}); these are Atelier's own endpoints
  const api = (url) => request('GET', url);
  const NB = '/api/atelier/notebooks';
  const SCHED = '/api/atelier/notebook-schedules';
  const enc = encodeURIComponent;

  const STATUS_CLASS = { queued: 'SCHEDULED', running: 'RUNNING', succeeded: 'FINISHED', failed: 'FAILED', cancelled: 'KILLED' };
  function runBadge(r, testid) {
    return h('span', { class: 'badge ' + (STATUS_CLASS[r.status] || ''), 'data-testid': testid || 'nb-run-status', 'data-status': r.status, title: r.error || r.status }, r.primary_status || r.status);
  }
  function duration(r) {
    if (!r.started_ms) return '—';
    return fmtDur(r.started_ms, r.ended_ms || undefined);
  }
  function paramText(v) { return typeof v === 'string' ? v : JSON.stringify(v); }
  function paramsLine(p) {
    const keys = Object.keys(p || {});
    if (!keys.length) return h('span', { class: 'muted' }, 'defaults');
    return h('span', { class: 'nb-params' }, keys.map((k) => k + '=' + paramText(p[k])).join(', '));
  }
  function fileName(source) {
    const s = String(source || '');
    // the last path segment; `workspace:report.ipynb` names report.ipynb too
    return s.slice(Math.max(s.lastIndexOf('/'), s.indexOf(':')) + 1) || s;
  }
  function relOf(source, space) {
    const p = 'workspace:' + space + '/';
    return String(source || '').startsWith(p) ? String(source).slice(p.length) : null;
  }
  /** papermill's -p typing: True/False/None, integers and floats; anything else is a string. */
  function typed(v) {
    if (v === 'True') return true;
    if (v === 'False') return false;
    if (v === 'None') return null;
    if (/^[-+]?\d+$/.test(v)) return parseInt(v, 10);
    if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) return parseFloat(v);
    return v;
  }
  function parseParams(text) {
    const out = {};
    for (const raw of String(text || '').split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      const i = line.indexOf('=');
      if (i <= 0) throw new Error('parameter "' + line + '": write NAME=VALUE, one per line');
      out[line.slice(0, i).trim()] = typed(line.slice(i + 1).trim());
    }
    return out;
  }
  function header(title, sub, actions) {
    return h('header', { class: 'page-head' }, h('h1', {}, title), sub ? h('span', { class: 'sub' }, sub) : null,
      h('div', { class: 'nb-head-actions' }, actions || []));
  }

  // ---------------------------------------------------------------- run form

  /** A form that runs `source` as a notebook job, then shows its live preview. */
  function runForm(source, kernels, onCancel) {
    const params = h('textarea', { class: 'nb-params-input', rows: 3, placeholder: 'alpha=0.5\nepochs=3', 'data-testid': 'nb-run-params' });
    const kernel = h('select', { 'data-testid': 'nb-run-kernel' }, h('option', { value: '' }, 'the notebook\'s own'),
      (kernels || []).map((k) => h('option', { value: k.name }, k.display_name + ' (' + k.name + ')')));
    const timeout = h('input', { type: 'number', min: 1, placeholder: 'none', class: 'nb-num', 'data-testid': 'nb-run-timeout' });
    const msg = h('div', {});
    const go = h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'nb-run-submit' }, 'Run');
    const form = h('form', { class: 'card nb-run-form', 'data-testid': 'nb-run-form' },
      h('h3', {}, 'Run ', h('code', {}, fileName(source)), ' as a job'),
      h('div', { class: 'form-row' },
        h('label', { class: 'field nb-field-wide' }, h('span', {}, 'Parameters (NAME=VALUE per line)'), params),
        h('label', { class: 'field' }, h('span', {}, 'Kernel'), kernel),
        h('label', { class: 'field' }, h('span', {}, 'Cell timeout (s)'), timeout)),
      h('div', { class: 'form-row' }, go, onCancel ? h('button', { class: 'btn', type: 'button', onclick: onCancel }, 'Cancel') : null),
      msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      replace(msg);
      let body;
      try {
        body = { source, parameters: parseParams(params.value) };
      } catch (e) { replace(msg, errorBox(e, 'nb-run-error')); return; }
      if (kernel.value) body.kernel = kernel.value;
      if (timeout.value) body.cell_timeout_seconds = Number(timeout.value);
      go.disabled = true;
      try {
        const r = await request('POST', NB + '/runs', body);
        const warn = (r.warnings || []).join('; ');
        location.href = '/notebooks?preview=' + enc('job:' + r.job.id) + (warn ? '&warn=' + enc(warn) : '');
      } catch (e) {
        replace(msg, errorBox(e, 'nb-run-error'));
        go.disabled = false;
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- list

  function notebooksCard(d) {
    const rows = d.notebooks.map((n) => {
      const last = (n.runs || [])[0];
      const source = 'workspace:' + n.path;
      return h('tr', { 'data-testid': 'nb-row', 'data-path': n.path },
        h('td', { class: 'nb-name' }, h('a', { href: '/notebooks?preview=' + enc(source), 'data-testid': 'nb-preview-link' }, n.path)),
        h('td', { class: 'muted' }, fmtAgo(n.modified_ms)),
        h('td', { class: 'muted num' }, fmtBytes(n.size)),
        h('td', {}, last ? h('span', { class: 'nb-last' }, runBadge(last), ' ', h('span', { class: 'muted' }, duration(last))) : h('span', { class: 'muted' }, 'never run')),
        h('td', { class: 'nb-actions' },
          h('a', { class: 'btn', href: '/notebooks?lab=' + enc(n.path), 'data-testid': 'nb-open-lab' }, 'Open'),
          h('a', { class: 'btn', href: '/notebooks?preview=' + enc(source) + '&run=1', 'data-testid': 'nb-run' }, 'Run')));
    });
    return h('section', { class: 'card', 'data-testid': 'nb-workspace' },
      h('h2', {}, 'Workspace ', h('span', { class: 'muted nb-space' }, d.space)),
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data nb-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Notebook'), h('th', {}, 'Modified'), h('th', {}, 'Size'), h('th', {}, 'Last run'), h('th', {}, ''))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted', 'data-testid': 'nb-empty' }, 'No notebooks yet. Open JupyterLab to create one; it is saved in ', h('code', {}, d.workspace), '.'));
  }

  function diffTable(a, b) {
    const keys = [...new Set([...Object.keys(a.parameters || {}), ...Object.keys(b.parameters || {})])].sort();
    const pa = a.parameters || {}, pb = b.parameters || {};
    return h('div', { class: 'table-wrap' }, h('table', { class: 'data nb-diff', 'data-testid': 'nb-diff' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Parameter'), h('th', {}, fileName(a.source) + ' · ' + a.job_id.slice(0, 8)), h('th', {}, fileName(b.source) + ' · ' + b.job_id.slice(0, 8)))),
      h('tbody', {}, keys.length ? keys.map((k) => {
        const va = k in pa ? paramText(pa[k]) : '—', vb = k in pb ? paramText(pb[k]) : '—';
        return h('tr', { class: va !== vb ? 'nb-changed' : '', 'data-testid': 'nb-diff-row', 'data-param': k }, h('td', {}, k), h('td', {}, va), h('td', {}, vb));
      }) : h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'Both runs used the notebook\'s defaults')),
      h('tr', {}, h('td', { class: 'muted' }, 'status'), h('td', {}, runBadge(a, 'nb-diff-status')), h('td', {}, runBadge(b, 'nb-diff-status'))),
      h('tr', {}, h('td', { class: 'muted' }, 'duration'), h('td', {}, duration(a)), h('td', {}, duration(b))))));
  }

  function runsCard(d, picked, rerender) {
    const runs = d.runs || [];
    const diffBox = h('div', {});
    const sel = runs.filter((r) => picked.has(r.job_id));
    if (sel.length === 2) append(diffBox, diffTable(sel[0], sel[1]));
    else if (runs.length > 1) append(diffBox, h('p', { class: 'muted' }, 'Tick two runs to compare their parameters.'));
    const rows = runs.map((r) => h('tr', { 'data-testid': 'nb-run-row', 'data-job': r.job_id },
      h('td', {}, h('input', { type: 'checkbox', checked: picked.has(r.job_id), 'aria-label': 'compare', 'data-testid': 'nb-pick',
        onchange: (e) => { if (e.target.checked) { picked.add(r.job_id); if (picked.size > 2) picked.delete([...picked][0]); } else picked.delete(r.job_id); rerender(); } })),
      h('td', {}, runBadge(r)),
      h('td', { class: 'nb-name' }, h('a', { href: '/notebooks?preview=' + enc('job:' + r.job_id), 'data-testid': 'nb-run-preview' }, fileName(r.source))),
      h('td', { class: 'nb-params-cell' }, paramsLine(r.parameters)),
      h('td', {}, r.schedule ? h('span', { class: 'badge' }, r.schedule) : ''),
      h('td', { class: 'muted' }, fmtAgo(r.created_ms)),
      h('td', { class: 'muted' }, duration(r)),
      h('td', {}, r.run_id ? h('a', { href: '/runs/' + enc(r.run_id) }, 'run') : '')));
    return h('section', { class: 'card', 'data-testid': 'nb-runs' },
      h('h2', {}, 'Notebook runs'),
      runs.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data nb-table' },
          h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Status'), h('th', {}, 'Notebook'), h('th', {}, 'Parameters'), h('th', {}, 'Schedule'), h('th', {}, 'Started'), h('th', {}, 'Duration'), h('th', {}, ''))),
          h('tbody', {}, rows)))
        : h('p', { class: 'muted' }, 'No notebook has run as a job yet.'),
      diffBox);
  }

  function scheduleForm(d, onDone) {
    const name = h('input', { type: 'text', placeholder: 'nightly-report', 'data-testid': 'nb-sched-name' });
    const nb = h('select', { 'data-testid': 'nb-sched-notebook' }, d.notebooks.map((n) => h('option', { value: 'workspace:' + n.path }, n.path)));
    const cron = h('input', { type: 'text', value: '0 6 * * *', 'data-testid': 'nb-sched-cron', title: 'minute hour day month weekday (UTC); a leading seconds field is allowed' });
    const params = h('textarea', { class: 'nb-params-input', rows: 2, placeholder: 'alpha=0.5', 'data-testid': 'nb-sched-params' });
    const hooks = h('input', { type: 'text', placeholder: 'https://hooks.example.com/… (comma-separated)', 'data-testid': 'nb-sched-webhooks' });
    const msg = h('div', {});
    const form = h('form', { class: 'nb-sched-form', 'data-testid': 'nb-sched-form' },
      h('div', { class: 'form-row' },
        h('label', { class: 'field' }, h('span', {}, 'Name'), name),
        h('label', { class: 'field' }, h('span', {}, 'Notebook'), nb),
        h('label', { class: 'field' }, h('span', {}, 'Cron (UTC)'), cron)),
      h('div', { class: 'form-row' },
        h('label', { class: 'field nb-field-wide' }, h('span', {}, 'Parameters (NAME=VALUE per line)'), params),
        h('label', { class: 'field nb-field-wide' }, h('span', {}, 'Webhooks on failure'), hooks)),
      h('div', { class: 'form-row' }, h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'nb-sched-save' }, 'Save schedule')),
      msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      replace(msg);
      try {
        const body = { name: name.value.trim(), source: nb.value, cron: cron.value.trim(), parameters: parseParams(params.value),
          webhooks: hooks.value.split(',').map((s) => s.trim()).filter(Boolean) };
        await request('POST', SCHED, body);
        onDone();
      } catch (e) { replace(msg, errorBox(e, 'nb-sched-error')); }
    });
    return form;
  }

  function schedulesCard(d, reload) {
    const rows = (d.schedules || []).map((s) => h('tr', { 'data-testid': 'nb-sched-row', 'data-name': s.name, 'data-status': s.status },
      h('td', { class: 'nb-name' }, s.status === 'failing' ? h('span', { class: 'badge ALERT', 'data-testid': 'nb-sched-failing', title: 'the last run failed' }, 'FAILING') : null, ' ', s.name),
      h('td', {}, fileName(s.source)),
      h('td', {}, h('code', {}, s.cron), s.enabled ? '' : h('span', { class: 'muted' }, ' (paused)')),
      h('td', { class: 'nb-params-cell' }, paramsLine(s.parameters)),
      h('td', { class: 'muted' }, s.next_fire_ms ? fmtDate(s.next_fire_ms) : '—'),
      h('td', { class: 'nb-sched-runs', 'data-testid': 'nb-sched-runs' }, (s.runs || []).slice(0, 5).map((r) =>
        h('a', { href: '/notebooks?preview=' + enc('job:' + r.job_id), title: fmtDate(r.created_ms) }, runBadge(r, 'nb-sched-run')))),
      h('td', { class: 'nb-actions' },
        h('button', { class: 'btn', 'data-testid': 'nb-sched-run-now', onclick: async () => { await request('POST', SCHED + '/' + enc(s.name) + '/run'); reload(); } }, 'Run now'),
        h('button', { class: 'btn', 'data-testid': 'nb-sched-delete', onclick: async () => { if (confirm('Delete schedule ' + s.name + '?')) { await request('DELETE', SCHED + '/' + enc(s.name)); reload(); } } }, 'Delete'))));
    return h('section', { class: 'card', 'data-testid': 'nb-schedules' },
      h('h2', {}, 'Schedules'),
      rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data nb-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Notebook'), h('th', {}, 'Cron'), h('th', {}, 'Parameters'), h('th', {}, 'Next'), h('th', {}, 'Last runs'), h('th', {}, ''))),
        h('tbody', {}, rows))) : h('p', { class: 'muted' }, 'No schedules. A schedule runs a notebook on a cron; each firing is a notebook job.'),
      d.notebooks.length ? h('details', { class: 'nb-new-sched' }, h('summary', {}, 'New schedule'), scheduleForm(d, reload)) : null);
  }

  async function listPage() {
    const picked = new Set();
    let data = null;
    const render = () => {
      if (!data) return;
      replace(main,
        header('Notebooks', data.python ? 'kernels from ' + data.python : null, [
          h('a', { class: 'btn primary', href: '/notebooks?lab', 'data-testid': 'nb-open-jupyterlab' }, 'Open JupyterLab')]),
        notebooksCard(data), runsCard(data, picked, render), schedulesCard(data, load));
    };
    async function load() {
      try { data = await api(NB); } catch (e) { replace(main, header('Notebooks'), errorBox(e)); return; }
      render();
    }
    await load();
    live(load);
  }

  // ---------------------------------------------------------------- JupyterLab

  async function labPage(path) {
    const status = h('div', { class: 'nb-lab-status', 'data-testid': 'nb-lab-status' }, 'Starting JupyterLab…');
    const stopBtn = h('button', { class: 'btn', 'data-testid': 'nb-lab-stop' }, 'Stop JupyterLab');
    replace(main, header('JupyterLab', null, [h('a', { class: 'btn', href: '/notebooks' }, 'All notebooks'), stopBtn]), status);
    main.classList.add('nb-lab-main');
    let info;
    try {
      info = await api(NB);
      const s = await request('POST', '/api/atelier/spaces/' + enc(info.space) + '/start');
      const url = path ? '/notebooks/' + enc(info.space) + '/lab/tree/' + path.split('/').map(enc).join('/') : (s.url || '/notebooks/' + enc(info.space) + '/lab');
      const frame = h('iframe', { class: 'nb-lab-frame', src: url, title: 'JupyterLab', 'data-testid': 'nb-lab-frame' });
      replace(status, h('span', { class: 'muted' }, 'Workspace ', h('code', {}, info.workspace), ' · kernels log to this server\'s experiments'));
      append(main, frame);
      stopBtn.onclick = async () => {
        await request('POST', '/api/atelier/spaces/' + enc(info.space) + '/stop');
        location.href = '/notebooks';
      };
    } catch (e) {
      replace(status, errorBox(e, 'nb-lab-error'));
    }
  }

  // ---------------------------------------------------------------- preview

  async function previewPage(source, openRun, warn) {
    const isJob = source.startsWith('job:');
    let info = null;
    try { info = await api(NB); } catch (_) { /* the preview still works */ }
    const body = h('div', { class: 'nb-preview', 'data-testid': 'nb-preview' });
    const meta = h('span', { class: 'sub' });
    const actions = h('div', { class: 'nb-head-actions' });
    const runBox = h('div', {});
    const note = h('div', {});
    if (warn) append(note, h('div', { class: 'warn-box', 'data-testid': 'nb-warning' }, 'Warning: ' + warn));
    const title = h('h1', { class: 'nb-title' }, isJob ? 'Notebook run' : fileName(source));
    replace(main, h('header', { class: 'page-head' }, title, meta, actions), note, runBox, body);
    const showRun = () => replace(runBox, runForm(isJob ? jobSource : source, info && info.kernels, () => replace(runBox)));
    let jobSource = source;
    function setActions(job) {
      const out = [h('a', { class: 'btn', href: '/notebooks' }, 'All notebooks')];
      if (!isJob || job) out.push(h('button', { class: 'btn primary', 'data-testid': 'nb-preview-run', onclick: showRun }, isJob ? 'Run again' : 'Run as job'));
      if (source.startsWith('workspace:')) {
        out.push(h('a', { class: 'btn', href: '/notebooks?lab=' + enc(source.slice('workspace:'.length)), 'data-testid': 'nb-preview-open' }, 'Open in JupyterLab'));
      } else if (!isJob) {
        out.push(h('button', { class: 'btn', 'data-testid': 'nb-preview-import', onclick: importIt }, 'Open in JupyterLab'));
      }
      if (job) out.push(h('a', { class: 'btn', href: '/jobs/' + enc(job.id) }, 'Job'));
      if (job && job.progress && job.progress.run_id) out.push(h('a', { class: 'btn', href: '/runs/' + enc(job.progress.run_id) }, 'Run'));
      replace(actions, out);
    }
    async function importIt() {
      try {
        const r = await request('POST', NB + '/import', { source });
        location.href = '/notebooks?lab=' + enc(r.path);
      } catch (e) { replace(note, errorBox(e, 'nb-import-error')); }
    }
    let lastHtml = null;
    async function load() {
      let r;
      try { r = await api(NB + '/preview?source=' + enc(source)); } catch (e) { replace(body, errorBox(e, 'nb-preview-error')); return; }
      if (r.html !== lastHtml) {
        // rendered and sanitised by the server (crate nbrender); HTML outputs sit in sandboxed frames
        body.innerHTML = r.html;
        lastHtml = r.html;
      }
      const bits = [r.cells + ' cells', 'nbformat ' + r.nbformat];
      if (r.kernel) bits.push('kernel ' + r.kernel);
      if (r.job) {
        const j = r.job;
        const src = j.spec && j.spec.notebook && j.spec.notebook.source;
        // "Run again" runs the caller's workspace notebook (as it is now) when the job ran one, so
        // that the new run belongs to it; otherwise the snapshot the job ran
        const rel = info ? relOf(src, info.space) : null;
        jobSource = rel ? 'workspace:' + rel : (j.spec && j.spec.notebook && j.spec.notebook.path) || source;
        replace(title, 'Run of ', h('code', {}, fileName(src || jobSource)));
        replace(meta, runBadge({ status: j.status, primary_status: j.primary_status, error: j.error }, 'nb-job-status'), ' ',
          j.started_ms ? fmtDur(j.started_ms, j.ended_ms || undefined) : '', ' · ', paramsLine(j.spec && j.spec.notebook && j.spec.notebook.parameters), ' · ', bits.join(' · '));
        if (j.error) replace(note, h('div', { class: 'error-box', 'data-testid': 'nb-job-error' }, j.error));
        setActions(j);
      } else {
        replace(meta, bits.join(' · '));
        setActions(null);
      }
    }
    await load();
    if (openRun) showRun();
    if (isJob) live(load);
  }

  // ---------------------------------------------------------------- navigation mark

  /** A red count on the Notebooks link while schedules are failing (on every Studio page). */
  function markNav(count) {
    S.markNav('notebooks', count, count + (count === 1 ? ' notebook schedule' : ' notebook schedules') + ' failing');
  }
  if (main && document.querySelector('[data-testid=nav-notebooks]')) {
    request('GET', SCHED).then((res) => markNav((res.schedules || []).filter((s) => s.status === 'failing').length), () => { /* the mark is optional */ });
  }

  pages.notebooks = function () {
    const q = new URLSearchParams(location.search);
    if (q.get('preview')) return previewPage(q.get('preview'), q.get('run') === '1', q.get('warn'));
    if (q.has('lab')) return labPage(q.get('lab') || '');
    return listPage();
  };
})();
