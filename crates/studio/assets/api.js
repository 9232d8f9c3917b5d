// Atelier Studio: the API page (registered into window.AtelierStudio.pages).
// /api renders this server's OpenAPI 3.1 document (GET /api/atelier/openapi.json, generated from
// the route table the server enforces): every operation grouped by area, with its method, path,
// summary, the role it needs and, unfolded, its id, parameters and body. A filter narrows by text;
// MLflow's three aliases of its API (ajax-api/, 3.0) are hidden unless asked for.
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, replace, append, request, errorBox, tok, main, pages } = S;
  const DOC = '/api/atelier/openapi.json';
  const ROLE = { public: 'anyone', read: 'viewer', write: 'editor', admin: 'admin' };
  const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

  /** The operations of `doc`, flattened: {method, path, op, tag}. */
  function operations(doc) {
    const out = [];
    for (const [path, ops] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = ops[method];
        if (op) out.push({ method, path, op, tag: (op.tags || ['other'])[0] });
      }
    }
    return out;
  }
  /** MLflow's API answers under four prefixes; /api/2.0/ is the one clients use. */
  const isAlias = (path) => /^\/ajax-api\//.test(path) || /^\/api\/3\.0\//.test(path);

  function details(o) {
    const op = o.op;
    const rows = [['operationId', h('code', {}, op.operationId)]];
    const params = (op.parameters || []).map((p) => p.name + ' (' + p.in + (p['x-atelier-wildcard'] ? ', may contain /' : '') + ')');
    rows.push(['parameters', params.length ? params.join(', ') : h('span', { class: 'muted' }, 'none')]);
    const body = op.requestBody && Object.keys(op.requestBody.content || {});
    if (body && body.length) rows.push(['body', body.join(', ') + (op.requestBody.required ? ' (required)' : ' (optional)')]);
    rows.push(['role', ROLE[op['x-atelier-access']] || op['x-atelier-access']]);
    rows.push(['errors', '4XX/5XX as {"error_code", "message"}']);
    if (op.externalDocs) rows.push(['reference', h('a', { href: op.externalDocs.url, rel: 'noopener' }, 'MLflow REST API')]);
    rows.push(['handler', h('code', {}, op['x-atelier-handler'] || '')]);
    return h('table', { class: 'kv api-detail', 'data-testid': 'api-detail' },
      h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v)))));
  }

  function row(o) {
    const detailRow = h('tr', { class: 'api-detail-row', hidden: true }, h('td', { colspan: 4 }, details(o)));
    const toggle = h('button', { type: 'button', class: 'btn api-toggle', 'aria-expanded': 'false', 'data-testid': 'api-toggle', title: 'Details' }, '▸');
    toggle.onclick = () => {
      const open = detailRow.hidden;
      detailRow.hidden = !open;
      toggle.textContent = open ? '▾' : '▸';
      toggle.setAttribute('aria-expanded', String(open));
    };
    const tr = h('tr', { 'data-testid': 'api-op', 'data-method': o.method, 'data-path': o.path, 'data-operation-id': o.op.operationId },
      h('td', {}, h('span', { class: 'api-method api-' + o.method }, o.method.toUpperCase())),
      h('td', { class: 'fill' }, tok(o.path, { class: 'tok api-path' })),
      h('td', { class: 'api-summary' }, tok(o.op.summary || '')),
      h('td', { class: 'api-role' }, ROLE[o.op['x-atelier-access']] || '', ' ', toggle));
    return [tr, detailRow];
  }

  function section(tag, ops, meta) {
    const link = meta && meta.externalDocs
      ? h('a', { href: meta.externalDocs.url, rel: 'noopener', class: 'muted' }, 'reference')
      : null;
    return h('section', { class: 'card flush', 'data-testid': 'api-tag', 'data-tag': tag },
      h('div', { class: 'card-head' }, h('h2', {}, tag), h('span', { class: 'muted' }, ops.length + (ops.length === 1 ? ' operation' : ' operations')),
        meta && meta.description ? h('span', { class: 'muted api-tag-desc' }, meta.description) : null, h('span', { class: 'spacer' }), link),
      h('table', { class: 'data api-table' },
        h('colgroup', {}, h('col', { class: 'api-c-method' }), h('col', {}), h('col', { class: 'api-c-summary' }), h('col', { class: 'api-c-role' })),
        h('thead', {}, h('tr', {}, h('th', {}, 'Method'), h('th', {}, 'Path'), h('th', {}, 'Summary'), h('th', {}, 'Role'))),
        h('tbody', {}, ops.flatMap(row))));
  }

  pages.api = async function () {
    replace(main, h('header', { class: 'page-head' }, h('h1', {}, 'API')), h('div', { class: 'loading' }, 'Loading…'));
    let doc;
    try {
      doc = await request('GET', DOC);
    } catch (e) {
      replace(main, h('header', { class: 'page-head' }, h('h1', {}, 'API')), errorBox(e, 'api-error'));
      return;
    }
    const all = operations(doc);
    const tagMeta = Object.fromEntries((doc.tags || []).map((t) => [t.name, t]));
    const filter = h('input', { type: 'search', placeholder: 'Filter: path, summary or operation id', 'data-testid': 'api-filter', 'aria-label': 'Filter operations' });
    const aliases = h('input', { type: 'checkbox', 'data-testid': 'api-aliases' });
    const count = h('span', { class: 'count', 'data-testid': 'api-count' });
    const body = h('div', { 'data-testid': 'api-sections' });
    const render = () => {
      const q = filter.value.trim().toLowerCase();
      const shown = all.filter((o) => (aliases.checked || !isAlias(o.path))
        && (!q || (o.path + ' ' + (o.op.summary || '') + ' ' + o.op.operationId + ' ' + o.method).toLowerCase().includes(q)));
      const byTag = new Map();
      for (const o of shown) {
        if (!byTag.has(o.tag)) byTag.set(o.tag, []);
        byTag.get(o.tag).push(o);
      }
      // Atelier's own areas first, then MLflow's protocol, then the Studio's plumbing
      const rank = (t) => (t.startsWith('mlflow') ? 1 : ['studio', 'static', 'health', 'version', 'login', 'logout'].includes(t) ? 2 : 0);
      const tags = [...byTag.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
      count.textContent = shown.length + ' of ' + all.length + ' operations';
      replace(body, tags.length ? tags.map((t) => section(t, byTag.get(t), tagMeta[t])) : h('div', { class: 'empty card' }, 'No operation matches.'));
    };
    filter.oninput = render;
    aliases.onchange = render;
    replace(main,
      h('header', { class: 'page-head' }, h('h1', {}, 'API'),
        h('span', { class: 'sub' }, (doc.info && doc.info.title) + ' ' + (doc.info && doc.info.version) + ' · OpenAPI ' + doc.openapi + ', generated from the routes this server enforces'),
        h('a', { class: 'btn', href: DOC, download: 'atelier-openapi.json', 'data-testid': 'api-download' }, 'openapi.json')),
      h('p', { class: 'muted api-intro' }, 'Send an API token as ', h('code', {}, 'Authorization: Bearer <token>'),
        ' when the server requires sign-in; the role column says who may call each operation. Generate a client from openapi.json with any OpenAPI 3.1 generator.'),
      h('div', { class: 'toolbar' }, h('div', { class: 'filter' }, filter),
        h('label', { class: 'api-alias-label' }, aliases, ' MLflow aliases (ajax-api, 3.0)'), count),
      body);
    render();
  };
})();
