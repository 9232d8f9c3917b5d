// Atelier Studio: the Autopilot pages (registered into window.AtelierStudio.pages).
// Data comes from Atelier's API under /api/atelier (jobs, datasets); pages stay live through the
// same change stream as the rest of the Studio (every job progress report is a store write).
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, append, request, errorBox, fmtAgo, fmtDate, fmtBytes, live, main, pages, C } = S;
  const API = '/api/atelier/';

  const METRICS = {
    binary: ['auc', 'accuracy', 'balanced_accuracy', 'f1', 'precision', 'recall', 'log_loss'],
    multiclass: ['accuracy', 'balanced_accuracy', 'f1_macro', 'auc', 'log_loss'],
    regression: ['mse', 'rmse', 'mae', 'r2'],
  };
  const enc = encodeURIComponent;

  function jobBadge(status) {
    const cls = { succeeded: 'FINISHED', running: 'RUNNING', queued: 'SCHEDULED', failed: 'FAILED', cancelled: 'KILLED' }[status] || '';
    return h('span', { class: 'badge ' + cls, 'data-testid': 'job-status', 'data-status': status }, status || 'unknown');
  }
  function duration(job) {
    if (!job.started_ms) return '';
    const end = job.ended_ms || Date.now();
    return C.fmtDuration(end - job.started_ms);
  }
  function score(v) { return v === null || v === undefined || !Number.isFinite(Number(v)) ? '—' : Number(v).toFixed(4); }
  function jobHref(j) { return (j.kind === 'automl' ? '/autopilot/' : '/jobs/') + enc(j.id); }

  async function cancelJob(id, btn, onError) {
    btn.disabled = true;
    try { await request('POST', API + 'jobs/' + enc(id) + '/cancel', {}); } catch (e) { btn.disabled = false; onError(e); }
  }

  // ------------------------------------------------------------------ /autopilot

  pages.autopilot = function () {
    const formBox = h('div', { class: 'card', 'data-testid': 'automl-form' });
    const listBox = h('div', { class: 'card flush' });
    replace(main,
      h('header', { class: 'page-head' }, h('h1', null, 'Autopilot'),
        h('span', { class: 'sub' }, 'Train and tune dozens of candidates on a table within a time budget; keep the best pipeline.')),
      formBox, listBox);

    // --- the new-job form
    const state = { datasets: [], preview: null };
    const err = h('div');
    const datasetSel = h('select', { 'data-testid': 'dataset-select', 'aria-label': 'Dataset' });
    const upload = h('input', { type: 'file', accept: '.csv,.tsv,.txt,.parquet,.pq', 'data-testid': 'dataset-upload', 'aria-label': 'Upload a CSV or Parquet file' });
    const uploadNote = h('span', { class: 'muted' });
    const targetSel = h('select', { 'data-testid': 'target-select', 'aria-label': 'Target column' });
    const problemSel = h('select', { 'data-testid': 'problem-select', 'aria-label': 'Problem type' },
      h('option', { value: '' }, 'infer'), ['binary', 'multiclass', 'regression'].map((p) => h('option', { value: p }, p)));
    const metricSel = h('select', { 'data-testid': 'metric-select', 'aria-label': 'Metric' });
    const budget = h('input', { type: 'number', min: '1', step: '1', value: '300', 'data-testid': 'budget-input', 'aria-label': 'Time budget in seconds', style: 'width:110px' });
    const maxCand = h('input', { type: 'number', min: '1', step: '1', value: '50', 'data-testid': 'max-candidates-input', 'aria-label': 'Maximum candidates', style: 'width:90px' });
    const modelName = h('input', { type: 'text', placeholder: '<file>-<target>', 'data-testid': 'model-name-input', 'aria-label': 'Registered model name' });
    const start = h('button', { class: 'btn primary', 'data-testid': 'start-automl', disabled: true }, 'Start Autopilot');
    // optional bias report (Clarify's metrics on the out-of-fold predictions) for one facet
    const facetSel = h('select', { 'data-testid': 'facet-select', 'aria-label': 'Bias facet column' });
    const facetValues = h('input', { type: 'text', placeholder: 'e.g. female (empty: each value)', 'data-testid': 'facet-values-input', 'aria-label': 'Sensitive group values' });
    const labelValues = h('input', { type: 'text', placeholder: 'e.g. 1 or >50K', 'data-testid': 'label-values-input', 'aria-label': 'Positive label values' });
    const csvList = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
    const previewBox = h('div', { 'data-testid': 'columns-preview' });

    function fillMetrics() {
      const col = state.preview && state.preview.columns.find((c) => c.name === targetSel.value);
      let problem = problemSel.value;
      if (!problem && col) problem = col.kind === 'numeric' ? 'regression' : '';
      const groups = problem ? { [problem]: METRICS[problem] } : METRICS;
      const cur = metricSel.value;
      replace(metricSel, h('option', { value: '' }, 'default (AUC · accuracy · MSE)'),
        Object.entries(groups).map(([p, ms]) => h('optgroup', { label: p }, ms.map((m) => h('option', { value: m }, m)))));
      if ([...metricSel.options].some((o) => o.value === cur)) metricSel.value = cur;
    }
    function renderPreview() {
      const p = state.preview;
      if (!p) { replace(previewBox); replace(targetSel); start.disabled = true; return; }
      const prev = targetSel.value;
      replace(targetSel, h('option', { value: '' }, '— choose the column to predict —'), p.columns.map((c) => h('option', { value: c.name }, `${c.name} (${c.kind})`)));
      if (p.columns.some((c) => c.name === prev)) targetSel.value = prev;
      const prevFacet = facetSel.value;
      replace(facetSel, h('option', { value: '' }, '— none —'), p.columns.map((c) => h('option', { value: c.name }, c.name)));
      if (p.columns.some((c) => c.name === prevFacet)) facetSel.value = prevFacet;
      const show = p.columns.slice(0, 60);
      replace(previewBox,
        h('p', { class: 'muted' }, `${p.name}: ${p.rows.toLocaleString()} rows, ${p.columns.length} columns`, p.warnings.length ? ` · ${p.warnings.length} warning(s)` : ''),
        h('div', { class: 'table-wrap', style: 'max-height:320px' }, h('table', { class: 'data' },
          h('thead', null, h('tr', null, h('th', null, 'column'), h('th', null, 'kind'), h('th', { class: 'num' }, 'missing'),
            p.head.slice(0, 5).map((_, i) => h('th', null, 'row ' + (i + 1))))),
          h('tbody', null, show.map((c, ci) => h('tr', { 'data-testid': 'preview-column', class: c.name === targetSel.value ? 'selected' : '' },
            h('td', null, h('b', null, c.name)), h('td', null, h('span', { class: 'badge' }, c.kind)), h('td', { class: 'num' }, c.missing),
            p.head.slice(0, 5).map((row) => h('td', { class: 'muted' }, row[ci] === null ? '∅' : String(row[ci]).slice(0, 40)))))))));
      start.disabled = !targetSel.value;
      fillMetrics();
    }
    async function loadPreview() {
      state.preview = null;
      renderPreview();
      if (!datasetSel.value) return;
      replace(previewBox, h('div', { class: 'loading' }, 'Reading ' + datasetSel.value + '…'));
      try {
        state.preview = await request('GET', API + 'datasets/' + enc(datasetSel.value) + '/preview');
        replace(err);
      } catch (e) { replace(previewBox); replace(err, errorBox(e, 'automl-error')); }
      renderPreview();
    }
    async function loadDatasets(select) {
      try {
        const res = await request('GET', API + 'datasets');
        state.datasets = res.datasets || [];
      } catch (e) { replace(err, errorBox(e, 'automl-error')); }
      const cur = select || datasetSel.value;
      replace(datasetSel, h('option', { value: '' }, state.datasets.length ? '— pick a dataset —' : '— upload a file first —'),
        state.datasets.map((d) => h('option', { value: d.name }, `${d.name} (${fmtBytes(d.size || 0)})`)));
      if (state.datasets.some((d) => d.name === cur)) datasetSel.value = cur;
    }
    upload.addEventListener('change', async () => {
      const f = upload.files && upload.files[0];
      if (!f) return;
      uploadNote.textContent = `Uploading ${f.name} (${fmtBytes(f.size)})…`;
      try {
        const res = await fetch(API + 'datasets/' + enc(f.name), { method: 'PUT', body: f, headers: S.projectHeaders(), credentials: 'same-origin' });
        const body = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(body.message || 'upload failed: HTTP ' + res.status);
        uploadNote.textContent = `Uploaded ${f.name}.`;
        await loadDatasets(f.name);
        await loadPreview();
      } catch (e) { uploadNote.textContent = ''; replace(err, errorBox(e, 'automl-error')); }
    });
    datasetSel.addEventListener('change', loadPreview);
    targetSel.addEventListener('change', renderPreview);
    problemSel.addEventListener('change', fillMetrics);
    start.addEventListener('click', async () => {
      const spec = { dataset: datasetSel.value, target: targetSel.value, time_budget: Number(budget.value), max_candidates: Number(maxCand.value) };
      if (metricSel.value) spec.metric = metricSel.value;
      if (problemSel.value) spec.problem_type = problemSel.value;
      if (modelName.value.trim()) spec.model_name = modelName.value.trim();
      if (facetSel.value) {
        spec.bias = { facet: facetSel.value };
        if (csvList(facetValues.value).length) spec.bias.facet_values = csvList(facetValues.value);
        if (csvList(labelValues.value).length) spec.bias.label_values = csvList(labelValues.value);
      }
      start.disabled = true;
      try {
        const res = await request('POST', API + 'automl', spec);
        location.href = '/autopilot/' + enc(res.job.id);
      } catch (e) { start.disabled = false; replace(err, errorBox(e, 'automl-error')); }
    });
    const field = (label, input, hint) => h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
    replace(formBox,
      h('h2', null, 'New Autopilot job'),
      err,
      h('div', { class: 'form-row' }, field('Dataset', datasetSel), h('span', { class: 'muted', style: 'align-self:end;padding-bottom:8px' }, 'or'), field('Upload CSV / Parquet', upload), uploadNote),
      previewBox,
      h('div', { class: 'form-row' }, field('Target column', targetSel), field('Problem type', problemSel), field('Metric', metricSel),
        field('Time budget (s)', budget), field('Max candidates', maxCand), field('Registered model', modelName)),
      h('div', { class: 'form-row' }, field('Bias facet (optional)', facetSel, 'Clarify bias metrics in the model-quality report'),
        field('Sensitive group', facetValues), field('Positive label', labelValues)),
      h('div', { class: 'form-row' }, start));
    fillMetrics();
    loadDatasets();

    // --- the jobs list
    async function loadJobs() {
      let res;
      try { res = await request('GET', API + 'jobs?kind=automl&limit=200'); } catch (e) { return replace(listBox, errorBox(e, 'jobs-error')); }
      const list = res.jobs || [];
      if (!list.length) return replace(listBox, h('div', { class: 'card-head' }, h('h2', null, 'Jobs')), h('div', { class: 'empty', 'data-testid': 'automl-jobs-empty' }, 'No Autopilot jobs yet.'));
      replace(listBox, h('div', { class: 'card-head' }, h('h2', null, 'Jobs'), h('span', { class: 'muted' }, list.length + '')),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'automl-jobs-table' },
          h('thead', null, h('tr', null, ['Job', 'Status', 'Problem', 'Metric', 'Best', 'Candidates', 'Created', 'Duration'].map((t) => h('th', null, t)))),
          h('tbody', null, list.map((j) => {
            const p = j.progress || {};
            const best = (j.result && j.result.score !== undefined) ? j.result.score : (p.best || {}).score;
            return h('tr', { 'data-testid': 'job-row', 'data-id': j.id },
              h('td', null, h('a', { href: jobHref(j) }, j.name)),
              h('td', null, jobBadge(j.status)),
              h('td', null, p.problem || ''),
              h('td', null, p.metric || ''),
              h('td', { class: 'num' }, score(best)),
              h('td', { class: 'num' }, (p.candidates || []).length),
              h('td', { title: fmtDate(j.created_ms) }, fmtAgo(j.created_ms)),
              h('td', null, duration(j)));
          })))));
    }
    replace(listBox, h('div', { class: 'loading' }, 'Loading…'));
    loadJobs().then(() => live(loadJobs));
  };

  // ------------------------------------------------------------------ /autopilot/<job id>

  pages['autopilot-item'] = function () {
    const id = main.dataset.id;
    const head = h('div');
    const factsBox = h('div', { class: 'card' });
    const chartCard = h('div', { class: 'chart-card', style: 'margin-bottom:16px' });
    const chartBox = h('div', { class: 'chart', 'data-testid': 'score-chart' });
    append(chartCard, h('h3', null, h('span', null, 'Validation score by candidate'), h('span', { class: 'muted' }, 'blue: each candidate · orange: best so far')), chartBox);
    const boardBox = h('div', { class: 'card flush' });
    const resultBox = h('div');
    const err = h('div');
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/autopilot' }, 'Autopilot'), ' / '), head, err, factsBox, chartCard, boardBox, resultBox);
    let chart = null, lastResultKey = '';

    function render(job) {
      const p = job.progress || {};
      const r = job.result || {};
      const active = job.status === 'queued' || job.status === 'running';
      const cancel = active ? h('button', { class: 'btn', 'data-testid': 'cancel-job', onclick: (ev) => cancelJob(id, ev.currentTarget, (e) => replace(err, errorBox(e))) }, job.cancel_requested ? 'Cancelling…' : 'Cancel') : null;
      if (cancel && job.cancel_requested) cancel.disabled = true;
      replace(head, h('header', { class: 'page-head' }, h('h1', null, job.name), jobBadge(job.status), h('span', { class: 'sub' }, p.phase ? 'phase: ' + p.phase : ''), h('span', { style: 'flex:1' }), cancel));
      if (job.error && job.status !== 'succeeded') replace(err, errorBox(new Error(job.error), 'job-error')); else replace(err);

      const budgetS = p.budget_s || (job.spec || {}).time_budget || 0;
      const elapsed = job.status === 'running' ? Math.max(p.elapsed_s || 0, (Date.now() - (job.started_ms || Date.now())) / 1000) : (p.elapsed_s || 0);
      const best = r.score !== undefined ? r.score : (p.best || {}).score;
      const fact = (k, v, testid) => {
        const text = v === undefined || v === null || v === '' ? '—' : String(v);
        return h('div', null, h('span', null, k), h('b', { 'data-testid': testid, title: text, class: /\s/.test(text) ? null : 'nowrap' }, text));
      };
      // a running job's bar is the share of its time budget used; an ended job's is full, and says
      // why it ended (its candidates all trained, the budget ran out, cancelled, failed)
      const nCand = (p.candidates || []).length, maxCand = (job.spec || {}).max_candidates;
      const secs = (x) => (x < 10 ? x.toFixed(1) : x.toFixed(0)) + ' s';
      let frac, barClass, barText;
      if (active) {
        frac = budgetS ? Math.min(1, elapsed / budgetS) : 0;
        barClass = ' active';
        barText = job.status === 'queued' ? 'queued' : `${secs(elapsed)} of the ${budgetS} s budget`;
      } else {
        frac = 1;
        barClass = job.status === 'succeeded' ? ' done' : job.status === 'cancelled' ? ' stopped' : ' failed';
        // why the search stopped: the job's own word when it gives one (stop_reason), else guessed
        const why = job.status === 'cancelled' ? 'cancelled' : job.status === 'failed' ? 'failed'
          : r.stop_reason || p.stop_reason ? 'stopped: ' + (r.stop_reason || p.stop_reason)
            : maxCand && nCand >= maxCand ? `all ${nCand} candidates trained` : budgetS && elapsed >= budgetS * 0.95 ? 'time budget used' : 'search finished';
        barText = `${why} · ${secs(elapsed)} of the ${budgetS} s budget`;
      }
      replace(factsBox,
        h('div', { class: 'progress', 'data-testid': 'automl-progress', 'data-fraction': frac.toFixed(3), title: barText }, h('div', { class: 'progress-bar' + barClass, style: `width:${(frac * 100).toFixed(1)}%` })),
        h('div', { class: 'progress-note muted', 'data-testid': 'automl-progress-text' }, barText),
        h('div', { class: 'facts', style: 'margin-top:12px' },
          fact('Dataset', (job.spec || {}).dataset), fact('Target', (job.spec || {}).target), fact('Problem', p.problem),
          fact('Metric', p.metric ? p.metric + (p.higher_is_better === false ? ' (lower is better)' : '') : ''),
          fact('Validation', p.validation), fact(active ? 'Budget' : 'Time used', `${secs(elapsed)} of ${budgetS} s`, 'budget'),
          fact('Candidates', (p.candidates || []).length, 'candidate-count'), fact('Best score', score(best), 'best-score'),
          fact('Created', fmtDate(job.created_ms))));

      const cands = p.candidates || [];
      const done = cands.filter((c) => c.status === 'done' && Number.isFinite(c.score));
      const higher = p.higher_is_better !== false;
      let bestSoFar = null;
      const line = [];
      cands.forEach((c) => {
        if (c.status === 'done' && Number.isFinite(c.score)) {
          if (bestSoFar === null || (higher ? c.score > bestSoFar : c.score < bestSoFar)) bestSoFar = c.score;
        }
        if (bestSoFar !== null) line.push({ x: c.id, y: bestSoFar, step: c.id });
      });
      const opts = { series: [{ label: 'best so far', color: C.PALETTE[1], points: line }, { label: 'candidate', color: C.PALETTE[0], points: done.map((c) => ({ x: c.id, y: c.score, step: c.id })) }], xKind: 'step', smoothing: 0, empty: 'No finished candidate yet' };
      if (!chart) chart = C.lineChart(chartBox, opts); else chart.update(opts);
      chartBox.setAttribute('data-candidates', String(done.length));

      const ranked = cands.slice().sort((a, b) => {
        const fa = Number.isFinite(a.score), fb = Number.isFinite(b.score);
        if (fa !== fb) return fa ? -1 : 1;
        if (!fa) return a.id - b.id;
        return higher ? b.score - a.score : a.score - b.score;
      });
      const members = new Map(((r.ensemble || (p.ensemble || {}).members) || []).map((m) => [m.id, m.weight]));
      replace(boardBox, h('div', { class: 'card-head' }, h('h2', null, 'Leaderboard'), h('span', { class: 'muted' }, `${cands.length} candidates` + (members.size ? ` · ensemble of ${members.size}` : ''))),
        cands.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'leaderboard' },
          h('thead', null, h('tr', null, ['#', 'Candidate', 'Algorithm', p.metric || 'score', 'Fit s', 'Model size', 'Status', 'Ensemble', 'Parameters'].map((t, i) => h('th', { class: i === 3 || i === 4 || i === 5 ? 'num' : '' }, t)))),
          h('tbody', null, ranked.map((c, i) => h('tr', { 'data-testid': 'leaderboard-row', 'data-candidate': c.id, class: i === 0 && Number.isFinite(c.score) ? 'selected' : '' },
            h('td', { class: 'num' }, i + 1),
            h('td', null, c.run_id ? h('a', { href: '/runs/' + enc(c.run_id) }, c.name) : c.name),
            h('td', null, c.algorithm),
            h('td', { class: 'num' }, score(c.score)),
            h('td', { class: 'num' }, Number(c.fit_seconds || 0).toFixed(1)),
            h('td', { class: 'num' }, fmtBytes(c.model_bytes || 0)),
            h('td', null, c.status === 'done' ? '' : h('span', { class: 'badge ' + (c.status === 'failed' ? 'FAILED' : 'KILLED'), title: c.error || '' }, c.status)),
            h('td', null, members.has(c.id) ? (members.get(c.id) * 100).toFixed(0) + ' %' : ''),
            h('td', { class: 'wrap muted', style: 'font-family:var(--mono);font-size:12px' }, Object.entries(c.params || {}).map(([k, v]) => k + '=' + v).join(' '))))))) :
          h('div', { class: 'empty' }, active ? 'The first candidates are training…' : 'No candidates.'));

      // results: registered model, downloads, reports (rendered once per result)
      const key = job.status + JSON.stringify(r.reports || {}) + (r.model_version || '');
      if (key === lastResultKey) return;
      lastResultKey = key;
      if (job.status !== 'succeeded') { replace(resultBox); return; }
      const art = (path) => S.inProject('/api/2.0/mlflow-artifacts/artifacts/' + String(path).split('/').map(enc).join('/'));
      const reports = r.reports || {};
      // the candidate notebook: copied into the user's JupyterLab workspace, or run as a notebook job
      // (the dataset as its input `data`, which the notebook reads through ATELIER_INPUT_DATA)
      const notebookNote = h('div', { 'data-testid': 'notebook-note' });
      async function openInLab(btn, source) {
        btn.disabled = true;
        try {
          const res = await request('POST', '/api/atelier/notebooks/import', { source, path: 'autopilot/' + (job.name || id).replace(/[^A-Za-z0-9_.-]+/g, '-') + '.ipynb' });
          location.href = '/notebooks?lab=' + enc(res.path);
        } catch (err) { replace(notebookNote, errorBox(err)); btn.disabled = false; }
      }
      async function runNotebook(btn, source, dataset) {
        btn.disabled = true;
        try {
          const body = { source, experiment: 'Autopilot' };
          if (dataset) body.inputs = { data: /^(datasets\/|runs:\/|models:\/)/.test(dataset) ? dataset : 'datasets/' + dataset };
          const res = await request('POST', '/api/atelier/notebooks/runs', body);
          location.href = '/notebooks?preview=' + enc('job:' + res.job.id);
        } catch (err) { replace(notebookNote, errorBox(err)); btn.disabled = false; }
      }
      const reportNames = Object.keys(reports).filter((n) => /\.html$/.test(reports[n]));
      const frame = h('iframe', { class: 'report-frame', 'data-testid': 'report-frame', sandbox: '', title: 'report' });
      const tabs = h('div', { class: 'seg' });
      const show = (n) => {
        frame.src = S.inProject(API + 'jobs/' + enc(id) + '/reports/' + enc(n));
        frame.dataset.report = n;
        for (const b of tabs.children) b.classList.toggle('on', b.dataset.report === n);
      };
      reportNames.forEach((n) => append(tabs, h('button', { 'data-report': n, 'data-testid': 'report-tab', onclick: () => show(n) }, n.replace(/_/g, ' '))));
      replace(resultBox,
        h('div', { class: 'card' }, h('h2', null, 'Result'),
          h('div', { class: 'facts' },
            h('div', null, h('span', null, 'Registered model'), h('b', null, h('a', { href: '/models/' + enc(r.model_name) + '/versions/' + enc(r.model_version), 'data-testid': 'best-model-link' }, `${r.model_name} v${r.model_version}`))),
            h('div', { class: 'wide' }, h('span', null, 'Pipeline'), h('b', null, r.algorithm || '')),
            h('div', null, h('span', null, 'Validation ' + (r.metric || '')), h('b', null, score(r.score))),
            h('div', { class: 'wide' }, h('span', null, 'Run'), h('b', null, h('a', { href: '/runs/' + enc(r.run_id), title: r.run_id }, r.run_id)))),
          h('p', { style: 'margin:12px 0 0' },
            h('a', { class: 'btn', href: art((r.artifacts || {}).model), download: 'pipeline.atelier', 'data-testid': 'download-pipeline' }, 'Download pipeline'), ' ',
            reports.notebook ? h('a', { class: 'btn', href: S.inProject(API + 'jobs/' + enc(id) + '/reports/notebook'), download: 'autopilot-candidate.ipynb', 'data-testid': 'download-notebook' }, 'Download notebook') : null, ' ',
            reports.bias ? h('a', { class: 'btn', href: S.inProject(API + 'jobs/' + enc(id) + '/reports/bias'), download: 'analysis.json', 'data-testid': 'download-bias' }, 'Bias analysis.json') : null, ' ',
            reports.notebook ? h('button', { class: 'btn', 'data-testid': 'notebook-open-lab', onclick: (e) => openInLab(e.target, reports.notebook) }, 'Open in JupyterLab') : null, ' ',
            reports.notebook ? h('button', { class: 'btn', 'data-testid': 'notebook-run-job', onclick: (e) => runNotebook(e.target, reports.notebook, (job.spec || {}).dataset) }, 'Reproduce as notebook job') : null),
          notebookNote),
        reportNames.length ? h('div', { class: 'card' }, h('div', { class: 'page-head', style: 'margin-bottom:10px' }, h('h2', null, 'Reports'), tabs), frame) : null);
      if (reportNames.length) show(reportNames.includes('model_quality') ? 'model_quality' : reportNames[0]);
    }

    async function load() {
      let res;
      try { res = await request('GET', API + 'jobs/' + enc(id)); } catch (e) {
        if (S.isNotFound(e) && !shown) {
          S.notFound({ crumbs: [['Autopilot', '/autopilot']], title: 'Autopilot job not found', error: e, testid: 'job-error', back: ['/autopilot', 'All Autopilot jobs'] });
          return false;
        }
        replace(head, errorBox(e, 'job-error'));
        return true;
      }
      // other kinds of job have their page under /jobs
      if (res.job.kind !== 'automl') { location.replace('/jobs/' + enc(id)); return false; }
      shown = true;
      render(res.job);
      return true;
    }
    let shown = false;
    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    load().then((found) => { if (found) live(load); });
  };

  // /jobs and /jobs/<id> (every kind but Autopilot's) are jobs.js's pages.
})();
