// Atelier Studio: model registry and endpoint pages (registered into window.AtelierStudio.pages).
// Registry data comes from the MLflow JSON API; endpoints from /api/atelier/endpoints (the serving crate).
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, api, request, errorBox, fmtAgo, fmtDate, C, main, pages, live } = S;
  const EP = '/api/atelier/endpoints';
  const enc = encodeURIComponent;

  function kv(list) { const m = {}; for (const t of list || []) m[t.key] = t.value; return m; }
  function fact(label, value, testid, cls) {
    const v = value === undefined || value === null || value === '' ? '—' : value;
    return h('div', { 'data-testid': testid, class: cls }, h('span', null, label), h('b', { title: typeof v === 'string' || typeof v === 'number' ? String(v) : null, class: typeof v === 'string' && !/\s/.test(v) ? 'nowrap' : null }, v));
  }
  /** key=value tags, one per line, each a token (cut with an ellipsis when too long). */
  function tagList(tags) {
    const entries = Object.entries(tags);
    return entries.length ? entries.map(([k, v]) => S.tok(k + '=' + v, { class: 'tok tag-line' })) : null;
  }
  function modelLink(name) { return h('a', { href: '/models/' + enc(name) }, name); }
  function versionLink(name, v) { return h('a', { href: '/models/' + enc(name) + '/versions/' + enc(v), 'data-testid': 'version-link' }, 'v' + v); }
  function ms(v) { return v === null || v === undefined ? '—' : C.fmtNum(v, 3) + ' ms'; }
  async function endpoints() { return (await request('GET', EP)).endpoints || []; }
  /** Poll `load` every `every` ms while the page is shown (endpoint metrics are not store writes). */
  function poll(load, every) {
    let t = null;
    const tick = async () => { try { await load(); } catch (e) { console.warn(e); } t = setTimeout(tick, every); };
    t = setTimeout(tick, every);
    return () => clearTimeout(t);
  }

  /** Deploy `model` as variant `variant` of endpoint `name`: create it, or replace that variant and keep the others. */
  async function deploy(name, model, variant, weight) {
    let existing = null;
    try { existing = (await request('GET', EP + '/' + enc(name))).endpoint; } catch (e) { if (e.status !== 404) throw e; }
    const mine = { name: variant, model, weight };
    if (!existing) return request('POST', EP, { name, variants: [mine] });
    const variants = existing.variants.filter((v) => v.name !== variant).map((v) => ({ name: v.name, model: v.model, weight: v.weight }));
    variants.push(mine);
    return request('PUT', EP + '/' + enc(name), { variants });
  }

  // ---------------------------------------------------------------- registry

  pages.models = function () {
    const body = h('div', { class: 'card flush' });
    replace(main, h('header', { class: 'page-head' }, h('h1', null, 'Models'), h('span', { class: 'sub' }, 'Registered models')), body);
    async function load() {
      let list = [];
      try {
        let token;
        for (let i = 0; i < 20; i++) {
          const res = await api.get('registered-models/search', { max_results: 1000, page_token: token });
          list = list.concat(res.registered_models || []);
          token = res.next_page_token;
          if (!token) break;
        }
      } catch (e) { return replace(body, errorBox(e, 'models-error')); }
      if (!list.length) return replace(body, h('div', { class: 'empty', 'data-testid': 'models-empty' }, 'No registered models yet. Autopilot registers its best model; or use mlflow.register_model.'));
      replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'models-table' },
        h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Latest versions'), h('th', null, 'Aliases'), h('th', null, 'Last modified'), h('th', null, 'Description'))),
        h('tbody', null, list.map((m) => h('tr', { 'data-testid': 'model-row', 'data-name': m.name },
          h('td', null, h('b', null, modelLink(m.name))),
          h('td', null, (m.latest_versions || []).map((v) => h('span', { class: 'badge', style: 'margin-right:4px' }, versionLink(m.name, v.version), v.current_stage && v.current_stage !== 'None' ? ' · ' + v.current_stage : ''))),
          h('td', null, (m.aliases || []).map((a) => h('span', { class: 'badge', style: 'margin-right:4px' }, '@' + a.alias + ' → v' + a.version))),
          h('td', { title: fmtDate(m.last_updated_timestamp) }, fmtAgo(m.last_updated_timestamp)),
          h('td', { class: 'wrap muted' }, m.description || '')))))));
    }
    replace(body, h('div', { class: 'empty' }, 'Loading…'));
    load().then(() => live(load));
  };

  pages['models-item'] = function () {
    const name = main.dataset.id;
    const head = h('div');
    const versions = h('div', { class: 'card flush' });
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/models' }, 'Models'), ' / ', name), head,
      h('h2', null, 'Versions'), versions);
    async function load() {
      let m, vs;
      try {
        m = (await api.get('registered-models/get', { name })).registered_model;
        vs = (await api.get('model-versions/search', { filter: "name='" + name.replace(/'/g, "\\'") + "'", max_results: 1000 })).model_versions || [];
      } catch (e) {
        if (S.isNotFound(e) && !shown) {
          S.notFound({ crumbs: [['Models', '/models']], title: 'Model not found', error: e, testid: 'model-error', back: ['/models', 'All models'] });
          return false;
        }
        replace(head, errorBox(e, 'model-error')); replace(versions); return true;
      }
      shown = true;
      const eps = await endpoints().catch(() => []);
      const aliasesOf = {};
      for (const a of m.aliases || []) (aliasesOf[a.version] = aliasesOf[a.version] || []).push(a.alias);
      const tags = kv(m.tags);
      replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'model-name' }, name), h('span', { class: 'sub' }, (vs.length) + ' version(s)')),
        h('div', { class: 'card' }, h('div', { class: 'facts' },
          fact('Description', m.description, 'model-description'),
          fact('Created', fmtDate(m.creation_timestamp)),
          fact('Last modified', fmtDate(m.last_updated_timestamp)),
          fact('Aliases', (m.aliases || []).map((a) => '@' + a.alias + ' → v' + a.version).join(', '), 'model-aliases'),
          fact('Tags', tagList(tags), 'model-tags', 'wide'))));
      vs.sort((a, b) => Number(b.version) - Number(a.version));
      if (!vs.length) { replace(versions, h('div', { class: 'empty' }, 'No versions yet.')); return true; }
      replace(versions, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'versions-table' },
        h('thead', null, h('tr', null, h('th', null, 'Version'), h('th', null, 'Stage'), h('th', null, 'Aliases'), h('th', null, 'Run'), h('th', null, 'Endpoints'), h('th', null, 'Created'), h('th', null, 'Description'))),
        h('tbody', null, vs.map((v) => h('tr', { 'data-testid': 'version-row', 'data-version': v.version },
          h('td', null, versionLink(name, v.version)),
          h('td', null, v.current_stage || 'None'),
          h('td', null, (aliasesOf[v.version] || []).map((a) => h('span', { class: 'badge', style: 'margin-right:4px' }, '@' + a))),
          h('td', null, v.run_id ? h('a', { href: '/runs/' + enc(v.run_id) }, v.run_id.slice(0, 8)) : '—'),
          h('td', null, servingEndpoints(eps, name, v.version).map((e) => h('a', { href: '/endpoints/' + enc(e), style: 'margin-right:6px' }, e))),
          h('td', { title: fmtDate(v.creation_timestamp) }, fmtAgo(v.creation_timestamp)),
          h('td', { class: 'wrap muted' }, v.description || '')))))));
      return true;
    }
    let shown = false;
    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    load().then((found) => { if (found) live(load); });
  };

  function servingEndpoints(eps, name, version) {
    return eps.filter((e) => e.variants.some((v) => v.registered_model === name && String(v.version) === String(version))).map((e) => e.name);
  }

  pages['models-versions'] = function () {
    const name = main.dataset.id, version = main.dataset.subId;
    const head = h('div');
    const lineage = h('div', { class: 'card' });
    const deployBox = h('div', { class: 'card' });
    const batchBox = h('div', { class: 'card' });
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/models' }, 'Models'), ' / ', modelLink(name), ' / v' + version), head,
      h('h2', null, 'Lineage'), lineage, h('h2', null, 'Deploy'), deployBox, h('h2', null, 'Batch transform'), batchBox);
    const uri = 'models:/' + name + '/' + version;
    // deploy form
    const epName = h('input', { type: 'text', value: name.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'endpoint', 'data-testid': 'deploy-name', 'aria-label': 'Endpoint name' });
    const varName = h('input', { type: 'text', value: 'AllTraffic', 'data-testid': 'deploy-variant', 'aria-label': 'Variant name', size: 12 });
    const weight = h('input', { type: 'number', value: '1', min: '0', step: 'any', 'data-testid': 'deploy-weight', 'aria-label': 'Weight', style: 'width:6em' });
    const deployMsg = h('div');
    const deployBtn = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'deploy-button', onclick: async () => {
      deployBtn.disabled = true;
      replace(deployMsg, h('span', { class: 'muted' }, 'Deploying…'));
      try {
        const res = await deploy(epName.value.trim(), uri, varName.value.trim() || 'AllTraffic', Number(weight.value));
        const n = res.endpoint.name;
        replace(deployMsg, h('div', { 'data-testid': 'deploy-done' }, 'In service: ', h('a', { href: '/endpoints/' + enc(n) }, n), ' — ', h('code', null, 'POST ' + location.origin + '/endpoints/' + n + '/invocations')));
        load();
      } catch (e) { replace(deployMsg, errorBox(e, 'deploy-error')); }
      deployBtn.disabled = false;
    } }, 'Deploy');
    replace(deployBox, h('div', { class: 'serving-form' },
      h('label', null, 'Endpoint ', epName), h('label', null, 'Variant ', varName), h('label', null, 'Weight ', weight), deployBtn),
      h('p', { class: 'muted' }, 'Creates the endpoint, or adds this version as a variant of an existing one (a variant of the same name is replaced).'), deployMsg);
    // batch transform form
    const dsSelect = h('select', { 'data-testid': 'batch-dataset', 'aria-label': 'Dataset' });
    const joinBox = h('input', { type: 'checkbox', 'data-testid': 'batch-join' });
    const batchMsg = h('div');
    const batchBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'batch-button', onclick: async () => {
      if (!dsSelect.value) {
        const none = !dsSelect.querySelector('option[value]:not([value=""])');
        return replace(batchMsg, errorBox(new Error(none ? 'Upload a dataset first (Autopilot page or PUT /api/atelier/datasets/<name>).' : 'Choose the dataset to predict.'), 'batch-error'));
      }
      batchBtn.disabled = true;
      try {
        const res = await request('POST', '/api/atelier/jobs', { kind: 'batch-transform', spec: { model: uri, dataset: dsSelect.value, join_input: joinBox.checked } });
        followJob(res.job.id, batchMsg);
      } catch (e) { replace(batchMsg, errorBox(e, 'batch-error')); }
      batchBtn.disabled = false;
    } }, 'Run batch transform');
    replace(batchBox, h('div', { class: 'serving-form' }, h('label', null, 'Dataset ', dsSelect), h('label', null, joinBox, ' join input columns'), batchBtn),
      h('p', { class: 'muted' }, 'Predicts every row as a background job; the output CSV lands in the artifact store.'), batchMsg);
    // the dataset menu: the one the version was trained on (its lineage) when it is uploaded, else
    // no choice made for the user
    let datasets = null, trainedOn, picked = false;
    function fillDatasets() {
      if (datasets === null || trainedOn === undefined || picked) return;
      picked = true;
      if (!datasets.length) return replace(dsSelect, h('option', { value: '' }, 'no datasets uploaded'));
      const known = datasets.some((d) => d.name === trainedOn);
      replace(dsSelect, known ? null : h('option', { value: '' }, '— choose a dataset —'), datasets.map((d) => h('option', { value: d.name }, d.name + (d.name === trainedOn ? ' (trained on)' : ''))));
      dsSelect.value = known ? trainedOn : '';
      dsSelect.dataset.trainedOn = trainedOn || '';
    }
    replace(dsSelect, h('option', { value: '' }, 'loading…'));
    request('GET', '/api/atelier/datasets').then((r) => { datasets = r.datasets || []; fillDatasets(); })
      .catch(() => replace(dsSelect, h('option', { value: '' }, 'datasets unavailable')));

    async function load() {
      let v;
      try { v = (await api.get('model-versions/get', { name, version })).model_version; } catch (e) {
        if (S.isNotFound(e) && !shown) {
          S.notFound({ crumbs: [['Models', '/models'], [name, '/models/' + enc(name)]], title: 'Version not found', error: e, testid: 'version-error', back: ['/models/' + enc(name), 'All versions of ' + name] });
          return false;
        }
        replace(head, errorBox(e, 'version-error'));
        return true;
      }
      shown = true;
      const tags = kv(v.tags);
      if (trainedOn === undefined) { trainedOn = tags['atelier.dataset'] || ''; fillDatasets(); }
      replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'version-title' }, name + ' v' + version),
        h('span', { class: 'badge' }, v.current_stage || 'None'), (v.aliases || []).map((a) => h('span', { class: 'badge', 'data-testid': 'version-alias' }, '@' + a))),
        h('div', { class: 'card' }, h('div', { class: 'facts' },
          fact('Description', v.description, 'version-description', 'wide'),
          fact('Source', v.source, 'version-source', 'wide'),
          fact('Status', v.status),
          fact('Created', fmtDate(v.creation_timestamp)),
          fact('Tags', tagList(tags), 'version-tags', 'wide'))));
      const eps = await endpoints().catch(() => []);
      const serving = servingEndpoints(eps, name, version);
      // ids get columns wide enough for a 32-digit id (an ellipsis and a title when narrower)
      const link = (href, text) => h('b', null, h('a', { href, title: text }, text));
      replace(lineage, h('div', { class: 'facts lineage' },
        h('div', { 'data-testid': 'lineage-run' }, h('span', null, 'Run'), v.run_id ? link('/runs/' + enc(v.run_id), v.run_id) : h('b', null, '—')),
        h('div', { 'data-testid': 'lineage-dataset' }, h('span', null, 'Dataset'), h('b', { title: tags['atelier.dataset'] || null }, tags['atelier.dataset'] || '—')),
        h('div', { 'data-testid': 'lineage-card' }, h('span', null, 'Model card'), link('/models/' + enc(name) + '/card/' + enc(version), 'Model card of v' + version)),
        h('div', { 'data-testid': 'lineage-job' }, h('span', null, 'Job'), tags['atelier.job_id'] ? link('/autopilot/' + enc(tags['atelier.job_id']), tags['atelier.job_id']) : h('b', null, '—')),
        h('div', { 'data-testid': 'lineage-endpoints' }, h('span', null, 'Serving endpoints'), h('b', null, serving.length ? serving.map((e, i) => [i ? ' ' : null, h('a', { href: '/endpoints/' + enc(e), style: 'margin-right:6px', 'data-testid': 'serving-endpoint' }, e)]) : 'none'))));
      return true;
    }
    let shown = false;
    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    load().then((found) => { if (found) live(load); });
  }

  function followJob(id, box) {
    const bar = h('div', { class: 'serving-bar' }, h('div', { class: 'serving-bar-fill', style: 'width:0%' }));
    const text = h('span', { class: 'muted', 'data-testid': 'batch-status' }, 'queued');
    replace(box, h('div', { 'data-testid': 'batch-job', 'data-job-id': id }, bar, text));
    const tick = async () => {
      let j;
      try { j = (await request('GET', '/api/atelier/jobs/' + enc(id))).job; } catch (e) { replace(box, errorBox(e, 'batch-error')); return; }
      const p = j.progress || {};
      const frac = j.status === 'succeeded' ? 1 : (p.fraction || 0);
      bar.firstChild.style.width = Math.round(frac * 100) + '%';
      text.dataset.status = j.status;
      if (j.status === 'succeeded') {
        const r = j.result || {};
        replace(text, `succeeded: ${r.rows} rows, ${r.failed} failed `, (r.outputs || []).map((o) => {
          const path = S.artifactRoot(o);
          return path ? h('a', { href: S.inProject(S.ARTIFACTS + '/' + S.encodePath(path)), 'data-testid': 'batch-output', style: 'margin-left:6px' }, path.split('/').pop()) : o;
        }), (r.errors || []).slice(0, 5).map((e) => h('div', { class: 'muted' }, `${e.file} line ${e.line}: ${e.message}`)));
        return;
      }
      if (j.status === 'failed' || j.status === 'cancelled') { replace(text, j.status + ': ' + (j.error || '')); return; }
      replace(text, `${j.status}: ${p.rows || 0} rows, ${p.failed || 0} failed`);
      setTimeout(tick, 500);
    };
    tick();
  }

  // ---------------------------------------------------------------- endpoints

  pages.endpoints = function () {
    const body = h('div', { class: 'card flush' });
    const nameIn = h('input', { type: 'text', placeholder: 'name', 'data-testid': 'new-endpoint-name', 'aria-label': 'Endpoint name' });
    const modelIn = h('input', { type: 'text', placeholder: 'models:/<name>/<version> or models:/<name>@<alias>', size: 40, 'data-testid': 'new-endpoint-model', 'aria-label': 'Model' });
    const msg = h('div');
    const create = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'create-endpoint', onclick: async () => {
      try {
        await request('POST', EP, { name: nameIn.value.trim(), model: modelIn.value.trim() });
        location.href = '/endpoints/' + enc(nameIn.value.trim());
      } catch (e) { replace(msg, errorBox(e, 'create-error')); }
    } }, 'Create endpoint');
    replace(main, h('header', { class: 'page-head' }, h('h1', null, 'Endpoints'), h('span', { class: 'sub' }, 'Real-time inference')), body,
      h('div', { class: 'card' }, h('div', { class: 'serving-form' }, nameIn, modelIn, create), msg,
        h('p', { class: 'muted' }, 'Or from a model version page, or: atelier deploy models:/<name>/<version> --name <endpoint>')));
    async function load() {
      let list;
      try { list = await endpoints(); } catch (e) { return replace(body, errorBox(e, 'endpoints-error')); }
      if (!list.length) return replace(body, h('div', { class: 'empty', 'data-testid': 'endpoints-empty' }, 'No endpoints yet. Deploy a model version to create one.'));
      replace(body, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'endpoints-table' },
        h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Status'), h('th', null, 'Variants'), h('th', null, 'Requests'), h('th', null, 'p99'), h('th', null, 'Updated'))),
        h('tbody', null, list.map((e) => {
          const req = e.variants.reduce((a, v) => a + v.totals.requests, 0);
          const p99 = Math.max(...e.variants.map((v) => v.totals.p99_ms || 0));
          return h('tr', { 'data-testid': 'endpoint-row', 'data-name': e.name },
            h('td', null, h('a', { href: '/endpoints/' + enc(e.name) }, h('b', null, e.name))),
            h('td', null, h('span', { class: 'badge ' + (e.status === 'InService' ? 'FINISHED' : 'FAILED'), title: e.failure_reason || '' }, e.status)),
            h('td', null, e.variants.map((v) => h('div', null, v.name + ' · ', v.registered_model ? versionLink(v.registered_model, v.version) : v.model, ' · weight ' + v.weight))),
            h('td', { 'data-testid': 'endpoint-requests' }, String(req)),
            h('td', null, req ? ms(p99) : '—'),
            h('td', { title: fmtDate(e.updated_ms) }, fmtAgo(e.updated_ms)));
        })))));
    }
    replace(body, h('div', { class: 'empty' }, 'Loading…'));
    load().then(() => { live(load); poll(load, 5000); });
  };

  // ---------------------------------------------------------------- shadow tests

  /**
   * Grouped bars, our own SVG: one group per bin, one bar per series; values are shares (0..1).
   * opts: { labels, series: [{ key, label, color, values }], empty, mark (index of a bin to outline) }.
   */
  function bars(container, opts) {
    const M = { l: 44, r: 10, t: 10, b: 30 };
    const el = C.svgEl;
    const W = Math.max(260, container.clientWidth || 480), H = 220;
    container.textContent = '';
    const svg = el('svg', { width: '100%', height: H, viewBox: '0 0 ' + W + ' ' + H, class: 'chart', preserveAspectRatio: 'none' }, container);
    const labels = opts.labels || [];
    container.dataset.bins = String(labels.length);
    if (!labels.length) {
      el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty-note' }, svg).textContent = opts.empty || 'Nothing to plot';
      return;
    }
    const vals = opts.series.flatMap((s) => s.values);
    const max = Math.max(0.01, ...vals);
    const step = C.niceStep(max, 4);
    // shares: never above 100 %
    const top = Math.min(Math.ceil((max * 1.05) / step) * step, Math.max(1, max));
    const plotW = W - M.l - M.r, band = plotW / labels.length;
    const sy = (v) => H - M.b - (v / top) * (H - M.t - M.b);
    const grid = el('g', { class: 'grid' }, svg), axis = el('g', { class: 'axis' }, svg);
    for (let v = 0; v <= top + step * 1e-9; v += step) {
      el('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
      el('text', { x: M.l - 6, y: sy(v) + 3.5, 'text-anchor': 'end' }, axis).textContent = Math.round(v * 100) + '%';
    }
    const inner = band * 0.8, bw = inner / opts.series.length;
    labels.forEach((l, i) => {
      opts.series.forEach((s, j) => {
        const v = s.values[i] || 0;
        const x = M.l + i * band + (band - inner) / 2 + j * bw;
        const r = el('rect', { x: x.toFixed(2), y: sy(v).toFixed(2), width: Math.max(1, bw - 1).toFixed(2), height: Math.max(0, sy(0) - sy(v)).toFixed(2), fill: s.color,
          'data-testid': 'shadow-bar', 'data-series': s.key, 'data-bin': String(i), 'data-value': String(v) }, svg);
        el('title', null, r).textContent = s.label + ' · ' + l + ': ' + (v * 100).toFixed(1) + '%';
      });
    });
    const fit = Math.max(3, Math.floor((band * (labels.length > 12 ? 3 : 1) - 4) / 6.2));
    const every = labels.length > 12 ? 3 : 1;
    labels.forEach((l, i) => {
      if (i % every) return;
      const t = String(l);
      el('text', { x: M.l + (i + 0.5) * band, y: H - M.b + 16, 'text-anchor': 'middle' }, axis).textContent = t.length > fit ? t.slice(0, fit - 1) + '…' : t;
    });
    el('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis-line' }, svg);
  }

  function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(1) + ' %'; }

  /**
   * The endpoint page's shadow test: start one (model, share, duration), follow the comparison
   * computed by the server from the captured pairs, promote or stop it. Returns the loader.
   */
  function shadowPanel(name, box, endpoint, reloadEndpoint) {
    const url = EP + '/' + enc(name) + '/shadow';
    const msg = h('div');
    const modelIn = h('input', { type: 'text', size: 34, placeholder: 'models:/<name>/<version>', 'data-testid': 'shadow-model', 'aria-label': 'Shadow model' });
    const shareIn = h('input', { type: 'number', min: '0', max: '100', step: 'any', value: '100', style: 'width:6em', 'data-testid': 'shadow-share', 'aria-label': 'Share of requests copied (%)' });
    const minutesIn = h('input', { type: 'number', min: '0.05', step: 'any', value: '60', style: 'width:6em', 'data-testid': 'shadow-minutes', 'aria-label': 'Duration in minutes' });
    const variantSel = h('select', { 'data-testid': 'shadow-production', 'aria-label': 'Production variant' });
    const startBtn = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'shadow-start', onclick: async () => {
      const body = { model: modelIn.value.trim(), sampling_percentage: Number(shareIn.value), duration_seconds: Math.round(Number(minutesIn.value) * 60) };
      if (variantSel.value) body.production_variant = variantSel.value;
      try { await request('POST', url, body); replace(msg); await reloadEndpoint(); await loadShadow(); } catch (e) { replace(msg, errorBox(e, 'shadow-error')); }
    } }, 'Start shadow test');
    const form = h('div', { class: 'card', 'data-testid': 'shadow-form' },
      h('div', { class: 'serving-form' }, h('label', null, 'Model', modelIn), h('label', null, 'Copy', shareIn, '% of'), variantSel,
        h('label', null, 'for', minutesIn, 'min'), startBtn),
      h('p', { class: 'muted' }, 'The shadow gets a copy of the sampled requests; its answers are captured and compared, never returned to clients. ',
        'CLI: atelier endpoints shadow start ' + name + ' <model> --share 10 --minutes 60'), msg);
    const status = h('div');
    const numbers = h('div');
    const primaryChart = h('div'), latencyChart = h('div');
    const primaryTitle = h('span');
    const primaryCard = h('div', { class: 'chart-card', 'data-testid': 'shadow-chart' }, h('h3', null, primaryTitle), primaryChart);
    const key = (color, label) => h('span', null, h('i', { style: 'background:' + color }), label);
    const latencyCard = h('div', { class: 'chart-card', 'data-testid': 'shadow-latency-chart' }, h('h3', null, h('span', null, 'Latency, ms (share of requests)'),
      h('span', { class: 'serving-legend' }, key(C.PALETTE[0], 'production'), key(C.PALETTE[1], 'shadow'))), latencyChart);
    const timeline = C.lineChart(primaryChart, { series: [], xKind: 'time', empty: 'No compared requests yet' });
    let kind = null;
    const sides = h('div');
    const result = h('div', null, status, numbers, sides, h('div', { class: 'charts' }, primaryCard, latencyCard));
    let bucketSeconds = 60;
    replace(box, form, result);
    result.hidden = true;

    async function act(method, path) {
      try { await request(method, url + path); replace(msg); await reloadEndpoint(); await loadShadow(); } catch (e) { replace(msg, errorBox(e, 'shadow-error')); }
    }

    async function loadShadow() {
      const ep = endpoint();
      if (ep && ep.variants) {
        const names = ep.variants.map((v) => v.name);
        if (variantSel.dataset.names !== names.join(',')) {
          replace(variantSel, names.map((n) => h('option', { value: n }, n)));
          variantSel.dataset.names = names.join(',');
        }
        variantSel.hidden = names.length < 2;
      }
      let v;
      try { v = await request('GET', url + '?bucket_seconds=' + bucketSeconds); } catch (e) { replace(status, errorBox(e, 'shadow-load-error')); return; }
      const t = v.test, c = v.comparison;
      // about 60 points over the test's span, 5 s at least
      if (t) bucketSeconds = Math.max(5, Math.round((t.ends_ms - t.started_ms) / 60000));
      form.hidden = !!(t && t.running);
      if (!t) { result.hidden = true; return; }
      result.hidden = false;
      const running = t.running;
      const badge = { Running: 'RUNNING', Promoted: 'FINISHED', Ended: 'FINISHED', Stopped: 'KILLED' }[t.status] || '';
      const ended = running ? 'ends ' + fmtDate(t.ends_ms) : (t.status === 'Ended' ? 'ended by itself ' : t.status.toLowerCase() + ' ') + fmtAgo(Math.min(t.stopped_ms || t.ends_ms, t.ends_ms));
      replace(status, h('div', { class: 'card' },
        h('div', { class: 'serving-form' }, h('span', { class: 'badge ' + badge, 'data-testid': 'shadow-status', 'data-status': t.status }, t.status),
          h('span', null, h('b', null, t.variant), ' ← ', t.registered_model ? h('span', null, modelLink(t.registered_model), ' ', versionLink(t.registered_model, t.version)) : S.tok(t.model, { class: 'tok mono' }),
            ' shadows ', h('b', null, t.production_variant), ' · ' + t.sampling_percentage + ' % of its requests · ', h('span', { 'data-testid': 'shadow-ends' }, ended)),
          h('span', { class: 'spacer', style: 'flex:1' }),
          t.status !== 'Promoted' ? h('button', { class: 'btn primary', type: 'button', 'data-testid': 'shadow-promote', title: 'Serve the shadow\'s model on ' + t.production_variant + ' (no request is dropped)', onclick: () => {
            if (confirm('Promote ' + t.model + ' to serve ' + t.production_variant + '?')) act('POST', '/promote');
          } }, 'Promote') : null,
          running ? h('button', { class: 'btn', type: 'button', 'data-testid': 'shadow-stop', onclick: () => act('DELETE', '') }, 'Stop') : null)));
      if (!c) return;
      kind = c.problem;
      const p = c.production, s = c.shadow;
      const d = c.differences;
      replace(numbers, h('div', { class: 'card' }, h('div', { class: 'facts' },
        kind === 'regression'
          ? fact('Mean |difference|', d && d.abs.mean !== null ? C.fmtNum(d.abs.mean, 4) : '—', 'shadow-mean-abs')
          : fact('Agreement', pct(c.agreement_rate), 'shadow-agreement'),
        kind === 'regression' ? fact('95 % of |differences| ≤', d && d.abs.p95 !== null ? C.fmtNum(d.abs.p95, 4) : '—', 'shadow-p95-abs') : fact('Rows compared', String(c.compared_rows), 'shadow-rows'),
        fact('Requests compared', String(c.compared_requests), 'shadow-compared'),
        fact('Copies dropped', String(c.copies_dropped), 'shadow-dropped'),
        fact('Waiting for the shadow', String(c.pending), 'shadow-pending'),
        c.unanswered ? fact('Answers lost', String(c.unanswered), 'shadow-lost') : null),
      c.errors && c.errors.length ? h('p', { class: 'muted', 'data-testid': 'shadow-error-sample' }, 'e.g. ' + c.errors[0].side + ' ' + c.errors[0].status + ': ' + (c.errors[0].error || '')) : null));
      replace(sides, h('div', { class: 'card flush' }, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'shadow-sides' },
        h('thead', null, h('tr', null, h('th', null, 'Side'), h('th', null, 'Variant'), h('th', { class: 'num' }, 'Requests'), h('th', { class: 'num' }, 'Errors'), h('th', { class: 'num' }, 'Mean'), h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p95'))),
        h('tbody', null, [['production', p], ['shadow', s]].map(([side, x]) => h('tr', { 'data-testid': 'shadow-side', 'data-side': side },
          h('td', null, side), h('td', null, x.variant), h('td', { class: 'num' }, String(x.requests)), h('td', { class: 'num', 'data-testid': 'shadow-errors' }, String(x.errors)),
          h('td', { class: 'num' }, ms(x.latency_ms.mean)), h('td', { class: 'num' }, ms(x.latency_ms.p50)), h('td', { class: 'num' }, ms(x.latency_ms.p95)))))))));
      // the main chart: differences for regression, agreement over time for classification
      if (kind === 'regression') {
        primaryTitle.textContent = 'Shadow − production, share of rows';
        primaryCard.dataset.kind = 'differences';
        const bins = (d && d.histogram) || [];
        bars(primaryChart, { labels: bins.map((b) => Number(((b.lo + b.hi) / 2).toPrecision(2))), series: [{ key: 'difference', label: 'rows', color: C.PALETTE[1], values: bins.map((b) => b.count / Math.max(1, d.summary.count)) }], empty: 'No compared rows yet' });
      } else {
        primaryTitle.textContent = 'Agreement per ' + Math.round(c.bucket_ms / 1000) + ' s';
        primaryCard.dataset.kind = 'agreement';
        const pts = c.timeline.filter((b) => b.agreement !== null).map((b) => ({ x: b.t_ms, y: b.agreement, ts: b.t_ms }));
        primaryChart.dataset.points = String(pts.length);
        timeline.update({ series: [{ label: 'agreement', color: C.PALETTE[2], id: 'agreement', points: pts }], xKind: 'time', empty: 'No compared requests yet' });
      }
      const edges = c.latency_bins_ms;
      const labels = edges.map((e) => '≤' + C.fmtNum(e, 2)).concat(['>' + C.fmtNum(edges[edges.length - 1], 2)]);
      const share = (hst) => { const n = hst.reduce((a, b) => a + b, 0) || 1; return hst.map((x) => x / n); };
      // only the bins either side used, so the bars stay readable
      let lo = labels.length, hi = -1;
      [p.latency_histogram, s.latency_histogram].forEach((hst) => hst.forEach((x, i) => { if (x) { lo = Math.min(lo, i); hi = Math.max(hi, i); } }));
      const cut = (a) => (hi < 0 ? [] : a.slice(lo, hi + 1));
      bars(latencyChart, { labels: cut(labels), empty: 'No answers yet', series: [
        { key: 'production', label: 'production', color: C.PALETTE[0], values: cut(share(p.latency_histogram)) },
        { key: 'shadow', label: 'shadow', color: C.PALETTE[1], values: cut(share(s.latency_histogram)) }] });
    }
    return loadShadow;
  }

  pages['endpoints-item'] = function () {
    const name = main.dataset.id;
    const head = h('div');
    const variantsBox = h('div', { class: 'card flush' });
    const charts = h('div', { class: 'charts' });
    const legend = h('div', { class: 'serving-legend', 'data-testid': 'chart-legend' });
    const tryBox = h('div', { class: 'card' });
    const captureBox = h('div', { class: 'card flush' });
    const shadowBox = h('div', { 'data-testid': 'shadow-section' });
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/endpoints' }, 'Endpoints'), ' / ', name), head,
      h('h2', null, 'Variants'), variantsBox, h('h2', null, 'Traffic'), legend, charts, h('h2', null, 'Shadow test'), shadowBox,
      h('h2', null, 'Invoke'), tryBox, h('h2', null, 'Captured data'), captureBox);
    const loadShadow = shadowPanel(name, shadowBox, () => current, () => load());
    const chartDefs = [
      ['requests', 'Requests / 5 s', (p) => p.requests],
      ['p99', 'p99 latency (ms)', (p) => p.p99_ms],
      ['p50', 'p50 latency (ms)', (p) => p.p50_ms],
      ['errors', 'Errors / 5 s', (p) => p.errors],
    ];
    const chartObjs = {};
    for (const [key, title] of chartDefs) {
      const box = h('div');
      charts.appendChild(h('div', { class: 'chart-card', 'data-testid': 'endpoint-chart', 'data-chart': key }, h('h3', null, h('span', null, title)), box));
      chartObjs[key] = C.lineChart(box, { series: [], xKind: 'time', empty: 'No traffic yet' });
    }
    let current = null;
    const weightInputs = {};
    const saveMsg = h('div');

    // invoke box
    const ctSel = h('select', { 'data-testid': 'try-content-type', 'aria-label': 'Content type' }, ['text/csv', 'application/json', 'application/jsonlines'].map((c) => h('option', { value: c }, c)));
    const payload = h('textarea', { rows: 4, class: 'serving-payload', 'data-testid': 'try-payload', 'aria-label': 'Payload' });
    const answer = h('pre', { class: 'serving-answer', 'data-testid': 'try-answer' });
    const tryBtn = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'try-button', onclick: async () => {
      try {
        const res = await fetch('/endpoints/' + enc(name) + '/invocations', { method: 'POST', headers: { 'Content-Type': ctSel.value, Accept: 'application/json', ...S.projectHeaders() }, body: payload.value, credentials: 'same-origin' });
        const text = await res.text();
        answer.dataset.status = res.status;
        let shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 1); } catch (_) { /* as is */ }
        answer.textContent = res.status + ' ' + (res.headers.get('x-atelier-invoked-variant') || '') + '\n' + shown;
      } catch (e) { answer.textContent = String(e); }
      loadStats();
    } }, 'Invoke');
    replace(tryBox, h('div', { class: 'serving-form' }, ctSel, tryBtn), payload, answer);

    async function saveWeights() {
      const variants = current.variants.map((v) => ({ name: v.name, model: v.model, weight: Number(weightInputs[v.name].value) }));
      try {
        const res = await request('PUT', EP + '/' + enc(name), { variants });
        replace(saveMsg, h('span', { class: 'muted', 'data-testid': 'weights-saved' }, 'Saved: traffic now splits ' + res.endpoint.variants.map((v) => v.name + ' ' + v.weight).join(', ')));
        load();
      } catch (e) { replace(saveMsg, errorBox(e, 'weights-error')); }
    }

    async function load() {
      let e;
      try { e = (await request('GET', EP + '/' + enc(name))).endpoint; } catch (err) {
        if (S.isNotFound(err) && !current) {
          // nothing to show but that: no empty panels, no Invoke box for an endpoint that is not there
          S.notFound({ crumbs: [['Endpoints', '/endpoints']], title: 'Endpoint not found', error: err, testid: 'endpoint-error', back: ['/endpoints', 'All endpoints'] });
          return false;
        }
        replace(head, errorBox(err, 'endpoint-error'));
        return true;
      }
      current = e;
      if (e.status !== 'InService') {
        replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'endpoint-name' }, name), h('span', { class: 'badge FAILED', 'data-testid': 'endpoint-status' }, e.status)),
          errorBox(new Error('Not in service: ' + (e.failure_reason || 'unknown reason') + '. Deploy a model to it again, or delete it.'), 'endpoint-failure'),
          h('button', { class: 'btn', type: 'button', 'data-testid': 'delete-endpoint', onclick: async () => {
            if (!confirm('Delete endpoint ' + name + '?')) return;
            try { await request('DELETE', EP + '/' + enc(name)); location.href = '/endpoints'; } catch (err) { replace(saveMsg, errorBox(err, 'delete-error')); }
          } }, 'Delete'));
        replace(variantsBox);
        return true;
      }
      const c = e.data_capture;
      replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'endpoint-name' }, name), h('span', { class: 'badge FINISHED', 'data-testid': 'endpoint-status' }, e.status),
        h('span', { class: 'spacer', style: 'flex:1' }),
        h('button', { class: 'btn', type: 'button', 'data-testid': 'delete-endpoint', onclick: async () => {
          if (!confirm('Delete endpoint ' + name + '?')) return;
          try { await request('DELETE', EP + '/' + enc(name)); location.href = '/endpoints'; } catch (err) { replace(saveMsg, errorBox(err, 'delete-error')); }
        } }, 'Delete')),
        h('div', { class: 'card' }, h('div', { class: 'facts' },
          fact('Invocations', h('code', { title: 'POST ' + location.origin + e.invocations_path }, 'POST ' + location.origin + e.invocations_path), 'endpoint-url', 'full'),
          fact('Data capture', c.enabled ? c.sampling_percentage + ' % of requests' : 'off', 'endpoint-capture'),
          fact('Captured / dropped', e.capture_written + ' / ' + e.capture_dropped, 'endpoint-captured'),
          fact('Concurrency limit', e.max_concurrency + ' (503 beyond; ' + e.overloaded + ' refused)'),
          fact('Payload limit', (e.max_payload_bytes / 1048576).toFixed(1) + ' MiB'),
          fact('Updated', fmtDate(e.updated_ms)))));
      const total = e.variants.reduce((a, v) => a + v.weight, 0) || 1;
      if (!payload.value && e.variants[0]) payload.value = e.variants[0].input_columns.join(',') + '\n';
      const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.variant;
      if (focused) return true; // do not replace a weight being typed
      // the weights and the numbers first; the model's description (long for an ensemble) last,
      // wrapping between words, so that no weight field is pushed out of view
      replace(variantsBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data serving-variants', 'data-testid': 'variants-table' },
        h('thead', null, h('tr', null, h('th', null, 'Variant'), h('th', null, 'Model'), h('th', null, 'Weight'), h('th', { class: 'num' }, 'Share'), h('th', { class: 'num' }, 'Requests'), h('th', { class: 'num' }, 'Errors'), h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p99'), h('th', null, 'Problem'))),
        h('tbody', null, e.variants.map((v) => {
          const w = h('input', { type: 'number', min: '0', step: 'any', value: String(v.weight), style: 'width:6em', 'data-variant': v.name, 'data-testid': 'weight-input', 'aria-label': 'Weight of ' + v.name });
          weightInputs[v.name] = w;
          return h('tr', { 'data-testid': 'variant-row', 'data-name': v.name },
            h('td', null, h('b', null, v.name)),
            h('td', null, v.registered_model ? h('span', null, modelLink(v.registered_model), ' ', versionLink(v.registered_model, v.version)) : S.tok(v.model, { class: 'tok mono' })),
            h('td', null, w),
            h('td', { class: 'num', 'data-testid': 'variant-share' }, Math.round((v.weight / total) * 100) + ' %'),
            h('td', { class: 'num', 'data-testid': 'variant-requests' }, String(v.totals.requests)),
            h('td', { class: 'num' }, String(v.totals.client_errors + v.totals.server_errors)),
            h('td', { class: 'num' }, ms(v.totals.p50_ms)),
            h('td', { class: 'num' }, ms(v.totals.p99_ms)),
            h('td', { class: 'wrap serving-problem', 'data-testid': 'variant-problem' }, h('span', { class: 'badge' }, v.problem), ' ', h('span', { class: 'muted' }, v.algorithm)));
        })))),
      h('div', { class: 'serving-form', style: 'padding:10px 14px' }, h('button', { class: 'btn', type: 'button', 'data-testid': 'save-weights', onclick: saveWeights }, 'Save weights'), saveMsg));
      return true;
    }

    async function loadStats() {
      let st;
      try { st = await request('GET', EP + '/' + enc(name) + '/metrics'); } catch (_) { return; }
      replace(legend, st.variants.map((v, i) => h('span', null, h('i', { style: 'background:' + C.PALETTE[i % C.PALETTE.length] }), v.name)),
        h('span', { class: 'muted' }, 'points every ' + st.tick_seconds + ' s'));
      // one time range for the four charts: every tick of every variant, whatever the metric
      let t0 = Infinity, t1 = -Infinity;
      for (const v of st.variants) for (const p of v.history) { if (p.t_ms < t0) t0 = p.t_ms; if (p.t_ms > t1) t1 = p.t_ms; }
      const xDomain = t1 > t0 ? [t0, t1] : null;
      charts.dataset.xMin = xDomain ? String(t0) : '';
      charts.dataset.xMax = xDomain ? String(t1) : '';
      for (const [key, , f] of chartDefs) {
        const series = st.variants.map((v, i) => ({
          label: v.name, color: C.PALETTE[i % C.PALETTE.length], id: v.name,
          points: v.history.filter((p) => f(p) !== null && f(p) !== undefined).map((p) => ({ x: p.t_ms, y: f(p), ts: p.t_ms })),
        }));
        chartObjs[key].update({ series, xKind: 'time', xDomain, empty: 'No traffic yet' });
      }
    }

    async function loadCapture() {
      let recs;
      try { recs = (await request('GET', EP + '/' + enc(name) + '/capture?max_results=10')).records || []; } catch (e) { replace(captureBox, errorBox(e, 'capture-error')); return; }
      if (!recs.length) return replace(captureBox, h('div', { class: 'empty', 'data-testid': 'capture-empty' }, 'Nothing captured in the last hour.'));
      replace(captureBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'data-testid': 'capture-table' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Variant'), h('th', null, 'Inference id'), h('th', null, 'Input'), h('th', null, 'Output'))),
        h('tbody', null, recs.slice().reverse().map((r) => {
          const cd = r.captureData || {};
          const cut = (d) => (d ? (d.data.length > 120 ? d.data.slice(0, 120) + '…' : d.data) : '—');
          return h('tr', { 'data-testid': 'capture-row' },
            h('td', null, r.eventMetadata.inferenceTime),
            h('td', null, r.variant),
            h('td', null, r.eventMetadata.inferenceId ? S.tok(r.eventMetadata.inferenceId, { class: 'tok serving-cap' }) : '—'),
            h('td', null, S.tok(cut(cd.endpointInput), { class: 'tok mono serving-cap' })),
            h('td', null, S.tok(cut(cd.endpointOutput), { class: 'tok mono serving-cap' })));
        })))));
    }

    replace(head, h('div', { class: 'loading' }, 'Loading…'));
    load().then((found) => {
      if (!found) return;
      Promise.all([loadStats(), loadCapture(), loadShadow()]).then(() => {
        live(load);
        poll(() => Promise.all([load(), loadStats(), loadCapture(), loadShadow()]), 5000);
      });
    });
  };
})();
