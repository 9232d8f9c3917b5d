// Atelier Studio: the Model Dashboard (/dashboard) and model cards (/models/<name>/card/<version>).
// Data: GET /api/atelier/dashboard (one call, every model) and /api/atelier/model-cards/... (crates/modelcards).
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, request, errorBox, fmtAgo, fmtDate, main, pages, live } = S;
  const enc = encodeURIComponent;
  const API = '/api/atelier/';
  const MONITORS = [['data_quality', 'Data quality'], ['model_quality', 'Model quality'], ['bias', 'Bias'], ['explainability', 'Explainability']];
  const FLOW = ['Draft', 'PendingReview', 'Approved', 'Archived'];
  const COLORS = ['#3b6ef5', '#12a38a', '#e08a00', '#9b51e0', '#d64545', '#5f6b7a'];
  const SVGNS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    for (const k of kids.flat()) if (k) e.appendChild(k);
    return e;
  }
  const versionHref = (name, v) => '/models/' + enc(name) + '/versions/' + enc(v);
  const cardHref = (name, v) => '/models/' + enc(name) + '/card/' + enc(v);
  function cardBadge(status, testid) {
    return h('span', { class: 'badge md-card-' + (status || 'None'), 'data-testid': testid || 'card-status' }, status || 'No card');
  }
  function fact(label, value, testid, cls) {
    return h('div', { 'data-testid': testid, class: cls }, h('span', null, label), h('b', null, value === undefined || value === null || value === '' ? '—' : value));
  }

  /** The traffic split of an endpoint as one stacked bar: a segment per variant, its share of the weight. */
  function trafficBar(ep) {
    const W = 220, H = 12;
    let x = 0;
    const segs = ep.variants.map((v, i) => {
      const w = (v.traffic_share || 0) * W;
      const r = svg('rect', { x: x.toFixed(2), y: 0, width: Math.max(0, w).toFixed(2), height: H, fill: v.this_model ? COLORS[i % COLORS.length] : '#c4cad3' },
        svg('title', null, document.createTextNode(`${v.name}: ${Math.round((v.traffic_share || 0) * 100)} % of traffic (weight ${v.weight})`)));
      x += w;
      return r;
    });
    return svg('svg', { class: 'md-traffic', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'traffic split', 'data-testid': 'traffic-bar' }, segs);
  }

  function monitorCell(m, key, label) {
    const alert = m.alert === 'InAlert' ? h('span', { class: 'badge ALERT', 'data-testid': 'monitor-alert' }, 'ALERT')
      : m.alert === 'OK' ? h('span', { class: 'badge FINISHED', 'data-testid': 'monitor-alert' }, 'OK') : null;
    const last = m.last_execution;
    return h('div', { class: 'md-monitor', 'data-testid': 'monitor-' + key, 'data-status': m.status, 'data-alert': m.alert || '' },
      h('span', { class: 'md-label' }, label),
      h('div', null, m.status === 'NotScheduled' ? h('span', { class: 'badge NODATA' }, 'not scheduled')
        : h('a', { href: '/monitor/' + enc(m.schedules[0].name), class: 'badge ' + (m.status === 'Scheduled' ? 'SCHEDULED' : ''), 'data-testid': 'monitor-schedule' }, m.status === 'Scheduled' ? 'scheduled' : 'stopped'),
      alert ? ' ' : null, alert),
      last ? h('div', { class: 'muted md-small', title: fmtDate(last.ended_ms || last.created_ms), 'data-testid': 'monitor-last' }, 'last: ' + last.status + (last.result ? ' · ' + last.result : '') + ' · ' + fmtAgo(last.ended_ms || last.created_ms))
        : (m.status !== 'NotScheduled' ? h('div', { class: 'muted md-small', 'data-testid': 'monitor-last' }, 'no execution yet') : null));
  }

  function modelCard(m) {
    const inProd = m.versions_in_production;
    const card = m.model_card;
    const eps = m.endpoints.map((e) => h('div', { class: 'md-endpoint', 'data-testid': 'dash-endpoint', 'data-name': e.name },
      h('div', { class: 'md-ep-head' }, h('a', { href: '/endpoints/' + enc(e.name) }, h('b', null, S.tok(e.name))),
        ' ', h('span', { class: 'badge ' + (e.status === 'InService' ? 'FINISHED' : e.status === 'Failed' ? 'FAILED' : ''), 'data-testid': 'dash-endpoint-status' }, e.status)),
      trafficBar(e),
      h('div', { class: 'md-variants' }, e.variants.map((v) => h('div', { class: 'md-variant', 'data-testid': 'dash-variant', 'data-variant': v.name },
        S.tok(v.name + (v.version ? ' · v' + v.version : '') + (v.this_model || !v.registered_model ? '' : ' (' + v.registered_model + ')')),
        h('span', { class: 'md-num', 'data-testid': 'dash-share' }, Math.round((v.traffic_share || 0) * 100) + ' %'),
        h('span', { class: 'md-num muted', 'data-testid': 'dash-requests', title: 'requests in the last 5 minutes, and since this server process started' },
          v.requests === null ? 'no counts here' : v.requests_recent + ' in 5 min · ' + v.requests + ' total'))))));
    const b = m.last_batch_transform;
    return h('section', { class: 'card md-model', 'data-testid': 'dash-model', 'data-name': m.name, 'data-in-production': inProd.length ? 'yes' : 'no' },
      h('div', { class: 'md-head' },
        h('h2', null, h('a', { href: '/models/' + enc(m.name) }, S.tok(m.name))),
        inProd.length ? h('span', { class: 'badge RUNNING' }, 'in production') : h('span', { class: 'badge' }, 'not deployed'),
        m.require_approved_card ? h('span', { class: 'badge md-rule', 'data-testid': 'dash-rule', title: 'Versions of this model deploy only with an Approved model card' }, 'approved card required') : null,
        h('span', { class: 'spacer' }),
        card ? h('span', { class: 'md-card-link' }, 'Card of v' + card.version + ' ', h('a', { href: cardHref(m.name, card.version), 'data-testid': 'dash-card-link' }, cardBadge(card.status, 'dash-card-status'))) : null),
      h('div', { class: 'md-grid' },
        h('div', { class: 'md-cell' }, h('span', { class: 'md-label' }, 'Versions in production'),
          inProd.length ? inProd.map((p) => h('div', { 'data-testid': 'dash-prod-version', 'data-version': p.version },
            h('a', { href: versionHref(m.name, p.version) }, 'v' + p.version), ' → ', p.endpoints.join(', '), ' ', cardBadge(p.card_status, 'dash-prod-card')))
            : h('div', { class: 'muted' }, m.latest_version ? 'latest v' + m.latest_version + ', not served' : 'no versions')),
        h('div', { class: 'md-cell md-eps' }, h('span', { class: 'md-label' }, 'Endpoints & traffic'), eps.length ? eps : h('div', { class: 'muted' }, 'none')),
        h('div', { class: 'md-cell md-monitors' }, MONITORS.map(([k, label]) => monitorCell(m.monitoring[k], k, label))),
        h('div', { class: 'md-cell', 'data-testid': 'dash-batch' }, h('span', { class: 'md-label' }, 'Last batch transform'),
          b ? [h('div', null, h('a', { href: '/jobs/' + enc(b.id) }, h('span', { class: 'badge ' + (b.status === 'succeeded' ? 'FINISHED' : b.status === 'failed' ? 'FAILED' : 'RUNNING') }, b.status)), ' ', fmtAgo(b.ended_ms || b.created_ms)),
            h('div', { class: 'muted md-small' }, (b.rows !== null ? b.rows + ' rows' : '') + (b.failed ? ', ' + b.failed + ' failed' : ''))]
            : h('div', { class: 'muted' }, 'none'))));
  }

  pages.dashboard = function () {
    const summary = h('div', { class: 'card' });
    const list = h('div');
    const filter = h('input', { type: 'search', placeholder: 'Filter models', 'aria-label': 'Filter models', 'data-testid': 'dash-filter' });
    const onlyProd = h('input', { type: 'checkbox', 'data-testid': 'dash-only-production' });
    replace(main, h('header', { class: 'page-head' }, h('h1', null, 'Model dashboard'), h('span', { class: 'sub' }, 'Every registered model: production, traffic, monitoring, cards')),
      summary, h('div', { class: 'md-toolbar' }, filter, h('label', null, onlyProd, ' only models in production')), list);
    let data = null;
    function render() {
      if (!data) return;
      const q = filter.value.trim().toLowerCase();
      const shown = data.models.filter((m) => (!q || m.name.toLowerCase().includes(q)) && (!onlyProd.checked || m.versions_in_production.length));
      if (!data.models.length) return replace(list, h('div', { class: 'card empty', 'data-testid': 'dash-empty' }, 'No registered models yet. Register one (Autopilot does) and deploy it to see it here.'));
      if (!shown.length) return replace(list, h('div', { class: 'card empty', 'data-testid': 'dash-none-match' }, 'No model matches.'));
      replace(list, shown.map(modelCard));
    }
    async function load() {
      try { data = await request('GET', API + 'dashboard'); } catch (e) { replace(list, errorBox(e, 'dash-error')); return; }
      const c = data.counts;
      replace(summary, h('div', { class: 'facts' },
        fact('Registered models', String(c.models), 'dash-count-models'),
        fact('In production', String(c.in_production), 'dash-count-production'),
        fact('Alerting', h('span', { class: c.alerting ? 'md-bad' : null }, String(c.alerting)), 'dash-count-alerting'),
        fact('Approved cards (serving version)', String(c.approved_cards), 'dash-count-approved'),
        fact('Updated', fmtDate(data.generated_ms), 'dash-updated')));
      render();
    }
    filter.addEventListener('input', render);
    onlyProd.addEventListener('change', render);
    replace(list, h('div', { class: 'loading' }, 'Loading…'));
    load().then(() => {
      live(load);
      // request counts are not store writes: refresh them every 10 s as well
      const t = setInterval(() => { if (document.body.contains(list)) load(); else clearInterval(t); }, 10000);
    });
  };

  // ---------------------------------------------------------------- model card

  const SECTIONS = [
    ['model_overview', 'Model overview', [['model_description', 'Description', 'text']]],
    ['intended_uses', 'Intended uses', [['purpose_of_model', 'Purpose of the model', 'text'], ['intended_uses', 'Intended uses', 'text'],
      ['factors_affecting_model_efficiency', 'Factors affecting model efficiency', 'text'], ['risk_rating', 'Risk rating', 'risk'], ['explanations_for_risk_rating', 'Explanation of the risk rating', 'text']]],
    ['business_details', 'Business details', [['business_problem', 'Business problem', 'text'], ['business_stakeholders', 'Stakeholders', 'line'], ['line_of_business', 'Line of business', 'line']]],
    ['training_details', 'Training', [['objective_function', 'Objective function', 'line'], ['training_observations', 'Observations', 'text']]],
    ['additional_information', 'Additional information', [['ethical_considerations', 'Ethical considerations', 'text'], ['caveats_and_recommendations', 'Caveats and recommendations', 'text']]],
  ];

  /** The status flow, the current step marked. */
  function flow(status) {
    return h('ol', { class: 'md-flow', 'data-testid': 'card-flow' }, FLOW.map((s) => h('li', { class: s === status ? 'current' : FLOW.indexOf(s) < FLOW.indexOf(status) ? 'done' : '', 'data-step': s }, s)));
  }

  /** Metrics between 0 and 1 as horizontal bars (the others as numbers). */
  function metricBars(data) {
    const rows = data.filter((d) => typeof d.value === 'number');
    const bounded = rows.filter((d) => d.value >= 0 && d.value <= 1);
    const other = rows.filter((d) => !(d.value >= 0 && d.value <= 1));
    const W = 440, L = 150, R = 76, RH = 18;
    const chart = bounded.length ? svg('svg', { class: 'md-bars', viewBox: `0 0 ${W} ${bounded.length * RH + 4}`, width: W, height: bounded.length * RH + 4, role: 'img', 'aria-label': 'evaluation metrics', 'data-testid': 'card-metric-bars' },
      bounded.map((d, i) => {
        const y = i * RH + 2, w = d.value * (W - L - R);
        const t = (x, anchor, text, cls) => { const e = svg('text', { x, y: y + 12, 'text-anchor': anchor, class: cls }); e.textContent = text; return e; };
        return svg('g', null, t(L - 6, 'end', d.name.length > 22 ? d.name.slice(0, 21) + '…' : d.name, 'md-bar-label'),
          svg('rect', { x: L, y: y + 3, width: W - L - R, height: RH - 8, fill: '#eef0f3' }),
          svg('rect', { x: L, y: y + 3, width: w.toFixed(2), height: RH - 8, fill: '#3b6ef5' }, svg('title', null, document.createTextNode(d.name + ' ' + d.value))),
          t(W - R + 6, 'start', S.C.fmtNum(d.value, 4), 'md-bar-value'));
      })) : null;
    return h('div', null, chart, other.length ? h('div', { class: 'facts' }, other.map((d) => fact(d.name, S.C.fmtNum(d.value, 5)))) : null);
  }

  function pairTable(items, testid) {
    if (!items || !items.length) return h('div', { class: 'muted' }, 'none');
    return h('div', { class: 'table-wrap md-pairs' }, h('table', { class: 'data', 'data-testid': testid },
      h('tbody', null, items.map((p) => h('tr', null, h('td', null, S.tok(p.name)), h('td', null, S.tok(typeof p.value === 'number' ? S.C.fmtNum(p.value, 5) : String(p.value))))))));
  }

  function changeText(e) {
    const c = e.changes || {};
    if (e.action === 'status') return c.from + ' → ' + c.to + (c.comment ? ': “' + c.comment + '”' : '');
    const fields = (c.fields || []);
    if (e.action === 'create') return 'created (Draft, filled from lineage)' + (fields.length ? '; set ' + fields.map((f) => f.field).join(', ') : '');
    return fields.map((f) => f.field + ': “' + (f.from || '') + '” → “' + f.to + '”').join('; ');
  }

  pages['models-card'] = function () {
    const name = main.dataset.id, version = main.dataset.subId;
    const head = h('div'), actions = h('div', { class: 'card' }), body = h('div'), msg = h('div');
    replace(main, h('div', { class: 'crumbs' }, h('a', { href: '/models' }, 'Models'), ' / ', h('a', { href: '/models/' + enc(name) }, name), ' / ',
      h('a', { href: versionHref(name, version) }, 'v' + version), ' / model card'), head, msg, actions, body);
    const url = API + 'model-cards/' + enc(name) + '/' + enc(version);
    // (the comment being typed survives a live refresh, which rebuilds the actions)
    let card = null, editing = false, commentText = '';
    const show = (e) => replace(msg, e ? errorBox(e, 'card-error') : null);

    async function act(fn) {
      show(null);
      try { const r = await fn(); if (r && r.model_card) { card = r.model_card; editing = false; commentText = ''; render(); } } catch (e) { show(e); }
    }
    function ruleBox(rule) {
      const box = h('input', { type: 'checkbox', checked: !!rule.require_approved_card, 'data-testid': 'card-rule' });
      box.addEventListener('change', () => act(async () => {
        await request('PUT', API + 'model-card-requirements/' + enc(name), { require_approved_card: box.checked });
        return request('GET', url);
      }));
      return h('label', { class: 'md-rule-box', title: rule.updated_by ? 'set by ' + rule.updated_by + ' ' + fmtAgo(rule.updated_ms) : null },
        box, ' Require an Approved card before any version of ', h('b', null, name), ' is deployed');
    }
    function render() {
      if (!card) return;
      const st = card.status;
      replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'card-title' }, 'Model card · ' + name + ' v' + version),
        cardBadge(st), h('span', { class: 'sub', 'data-testid': 'card-revision' }, 'revision ' + card.revision + ' · updated by ' + card.updated_by + ' ' + fmtAgo(card.updated_ms))));
      const comment = h('input', { type: 'text', value: commentText, placeholder: 'comment (required to request changes)', 'data-testid': 'card-comment', 'aria-label': 'Comment', size: 36,
        oninput: () => { commentText = comment.value; } });
      const to = (status, label, testid, primary) => h('button', { class: 'btn' + (primary ? ' primary' : ''), type: 'button', 'data-testid': testid,
        onclick: () => act(() => request('POST', url + '/status', { status, revision: card.revision, comment: comment.value.trim() || undefined })) }, label);
      const buttons = st === 'Draft' ? [to('PendingReview', 'Submit for review', 'card-submit', true)]
        : st === 'PendingReview' ? [to('Approved', 'Approve', 'card-approve', true), to('Draft', 'Request changes', 'card-request-changes')]
          : st === 'Approved' ? [to('Archived', 'Archive', 'card-archive')] : [];
      replace(actions, flow(st),
        buttons.length ? h('div', { class: 'serving-form md-actions' }, buttons, st === 'Archived' ? null : comment) : h('p', { class: 'muted' }, 'Archived: this card no longer changes.'),
        st === 'Draft' ? h('p', { class: 'muted' }, 'Fill in the card, then submit it for review. Only a Draft card can be edited; approving needs the admin role.') : null,
        ruleBox(card.requirement || {}));
      const c = card.content || {};
      const canEdit = st === 'Draft';
      const inputs = {};
      const sections = SECTIONS.map(([key, title, fields]) => h('section', { class: 'card', 'data-testid': 'card-section-' + key },
        h('h2', null, title),
        h('div', { class: 'md-fields' }, fields.map(([f, label, kind]) => {
          const value = ((c[key] || {})[f]) || '';
          let ctl;
          if (editing && canEdit) {
            ctl = kind === 'risk' ? h('select', { 'data-testid': 'card-field-' + f, 'aria-label': label }, ['Unknown', 'Low', 'Medium', 'High'].map((r) => h('option', { value: r, selected: r === value }, r)))
              : kind === 'line' ? h('input', { type: 'text', value, 'data-testid': 'card-field-' + f, 'aria-label': label })
                : h('textarea', { rows: 3, 'data-testid': 'card-field-' + f, 'aria-label': label }, value);
            (inputs[key] = inputs[key] || {})[f] = ctl;
          } else {
            ctl = h('div', { class: 'md-value' + (value ? '' : ' muted'), 'data-testid': 'card-value-' + f }, kind === 'risk' ? h('span', { class: 'badge md-risk-' + (value || 'Unknown') }, value || 'Unknown') : (value || 'not filled in'));
          }
          return h('div', { class: 'md-field' + (kind === 'text' ? ' md-wide' : '') }, h('span', { class: 'md-label' }, label), ctl);
        })),
        key === 'model_overview' ? h('div', { class: 'facts', style: 'margin-top:10px' },
          fact('Creator', c.model_overview && c.model_overview.model_creator),
          fact('Algorithm', c.model_overview && c.model_overview.algorithm_type, 'card-algorithm'),
          fact('Problem', c.model_overview && c.model_overview.problem_type),
          fact('Artifact', c.model_overview && (c.model_overview.model_artifact || [])[0] ? S.tok(c.model_overview.model_artifact[0]) : null, null, 'wide')) : null));
      const editBar = canEdit ? h('div', { class: 'md-edit-bar' }, editing
        ? [h('button', { class: 'btn primary', type: 'button', 'data-testid': 'card-save', onclick: () => {
          const content = {};
          for (const [k, fs] of Object.entries(inputs)) { content[k] = {}; for (const [f, el] of Object.entries(fs)) content[k][f] = el.value; }
          act(() => request('PATCH', url, { content, revision: card.revision }));
        } }, 'Save'), ' ', h('button', { class: 'btn', type: 'button', onclick: () => { editing = false; render(); } }, 'Cancel')]
        : h('button', { class: 'btn', type: 'button', 'data-testid': 'card-edit', onclick: () => { editing = true; render(); } }, 'Edit card')) : null;
      const t = (c.training_details || {}).training_job_details || {};
      const lineage = h('section', { class: 'card', 'data-testid': 'card-lineage' }, h('h2', null, 'Training details (from lineage)'),
        h('div', { class: 'facts lineage' },
          fact('Run', t.run_id ? h('a', { href: '/runs/' + enc(t.run_id), title: t.run_id, 'data-testid': 'card-run' }, t.run_id) : null),
          fact('Job', t.job_id ? h('a', { href: (t.job_kind === 'automl' ? '/autopilot/' : '/jobs/') + enc(t.job_id), title: t.job_id, 'data-testid': 'card-job' }, t.job_id) : null),
          fact('Job kind', t.job_kind),
          fact('Datasets', (t.training_datasets || []).join(', '), 'card-datasets')),
        h('div', { class: 'grid2', style: 'margin-top:12px' },
          h('div', null, h('h3', null, 'Hyperparameters'), pairTable(t.hyper_parameters, 'card-params')),
          h('div', null, h('h3', null, 'Training metrics'), pairTable(t.training_metrics, 'card-metrics'))));
      const evals = c.evaluation_details || [];
      const evaluation = h('section', { class: 'card', 'data-testid': 'card-evaluation' }, h('h2', null, 'Evaluation'),
        evals.length ? evals.map((e) => h('div', { class: 'md-eval' },
          h('div', { class: 'facts' }, fact('Evaluation', e.name, 'card-eval-name', 'wide'), fact('Observation', e.evaluation_observation, null, 'wide'),
            fact('Report', e.evaluation_job ? h('a', { href: S.inProject(API + 'jobs/' + enc(e.evaluation_job) + '/reports/model_quality'), target: '_blank', rel: 'noopener', 'data-testid': 'card-report' }, 'model-quality report') : null)),
          (e.metric_groups || []).map((g) => h('div', null, h('h3', null, g.name), metricBars(g.metric_data || [])))))
          : h('div', { class: 'muted', 'data-testid': 'card-no-evaluation' }, 'No evaluation: the version does not come from an Autopilot job with a model-quality report.'));
      const history = h('section', { class: 'card flush', 'data-testid': 'card-history' }, h('div', { class: 'card-head' }, h('h2', null, 'History')),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Who'), h('th', null, 'From'), h('th', null, 'Status'), h('th', null, 'Change'))),
          h('tbody', null, card.history.slice().reverse().map((e) => h('tr', { 'data-testid': 'card-history-row', 'data-action': e.action, 'data-status': e.status },
            h('td', { title: fmtDate(e.at_ms) }, fmtDate(e.at_ms)), h('td', { 'data-testid': 'card-history-who' }, S.tok(e.principal)), h('td', null, S.tok(e.address)),
            h('td', null, cardBadge(e.status, 'card-history-status')), h('td', { class: 'wrap' }, changeText(e))))))));
      replace(body, editBar, sections, lineage, evaluation, history);
    }
    async function load() {
      if (editing) return;
      let fresh;
      try { fresh = (await request('GET', url)).model_card; } catch (e) {
        if (S.isNotFound(e)) {
          if (/no model card/.test(e.message)) {
            let rule = {};
            try { rule = (await request('GET', API + 'model-card-requirements/' + enc(name))).requirement; } catch (_) { /* shown without the rule */ }
            replace(head, h('header', { class: 'page-head' }, h('h1', { 'data-testid': 'card-title' }, 'Model card · ' + name + ' v' + version), cardBadge(null)));
            replace(actions, h('p', { 'data-testid': 'card-missing' }, 'This version has no model card yet. Creating one fills the training details from its lineage and the evaluation from its model-quality report.'),
              h('button', { class: 'btn primary', type: 'button', 'data-testid': 'card-create', onclick: () => act(() => request('POST', url, {})) }, 'Create model card'),
              ruleBox(rule));
            replace(body);
            return;
          }
          S.notFound({ crumbs: [['Models', '/models'], [name, '/models/' + enc(name)]], title: 'Version not found', error: e, testid: 'card-error', back: ['/models/' + enc(name), 'All versions of ' + name] });
          return;
        }
        show(e);
        return;
      }
      // a refresh that changes nothing leaves the page (and what is being typed) alone
      const same = card && fresh && fresh.revision === card.revision && fresh.status === card.status
        && JSON.stringify(fresh.requirement) === JSON.stringify(card.requirement) && fresh.history.length === card.history.length;
      card = fresh;
      if (!same) render();
    }
    replace(body, h('div', { class: 'loading' }, 'Loading…'));
    load().then(() => live(load));
  };
})();
