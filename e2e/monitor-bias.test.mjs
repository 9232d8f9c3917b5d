// Model Monitor's Clarify checks on a live endpoint: an Autopilot model on synthetic loan data
// (approval depends on x1 and x2, not on the group), deployed with full capture; a model-bias
// schedule made through the form and a model-explainability one through the API, each with a
// baseline from the training data. Clean traffic passes both; traffic where group B's x1 is
// lowered (planted bias) alerts the bias schedule on DPPL and DI, with a webhook; traffic where x1
// is held at its median (planted attribution drift) alerts the explainability schedule (nDCG below
// 0.9). The pages plot the metric against its bounds, nDCG against its threshold, and both feature
// rankings side by side. Bad configurations are refused with what to fix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, newPage, until, fullShot, call, layoutProblems } from './harness.mjs';

const api = (method, path, body, headers) => call(server.url, method, path, body, headers);
const shot = (name) => fullShot(page, `/tmp/studio-monitor-bias-${name}.png`, 5000);
let server, browser, page, hook;
const errors = [];
const hookCalls = [];
const scene = {};
const OVERLAP = ['.grid2', '.facts', '.mon-chart-head', '.page-head'];

async function waitJob(id, timeoutMs = 120000) {
  return until(async () => {
    const j = (await api('GET', '/api/atelier/jobs/' + id)).body.job;
    return j.status !== 'queued' && j.status !== 'running' ? j : null;
  }, 'job ' + id, timeoutMs);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const attr = (sel, name) => page.getAttribute(sel, name);

// seeded data: x1, x2 standard normal, x3 noise, group A/B independent of everything
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function loans(n, seed) {
  const u = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const rows = [];
  for (let i = 0; i < n; i++) {
    const group = u() < 0.5 ? 'A' : 'B';
    const x1 = normal(), x2 = normal(), x3 = normal();
    const approved = x1 + 0.5 * x2 + 0.25 * normal() > 0 ? 'yes' : 'no';
    rows.push({ group, x1: +x1.toFixed(4), x2: +x2.toFixed(4), x3: +x3.toFixed(4), approved });
  }
  return rows;
}
const FEATURES = ['group', 'x1', 'x2', 'x3'];

/** Requests of 50 rows each (CSV with a header), inference ids `${tag}-${b}`; then their labels. */
async function sendWindow(rows, tag) {
  const ids = [];
  for (let b = 0; b * 50 < rows.length; b++) {
    const chunk = rows.slice(b * 50, b * 50 + 50);
    const body = FEATURES.join(',') + '\n' + chunk.map((r) => FEATURES.map((f) => r[f]).join(',')).join('\n') + '\n';
    const res = await fetch(server.url + '/endpoints/loans/invocations', {
      method: 'POST', headers: { 'Content-Type': 'text/csv', Accept: 'application/json', 'X-Atelier-Inference-Id': `${tag}-${b}` }, body,
    });
    assert.equal(res.status, 200, await res.text());
    ids.push([`${tag}-${b}`, chunk.map((r) => r.approved)]);
  }
  await sleep(2500); // capture files are written about every second
  const labels = ids.map(([id, l]) => JSON.stringify({ inferenceId: id, label: l })).join('\n');
  const up = await api('POST', '/api/atelier/ground-truth/loans', labels, { 'Content-Type': 'application/jsonlines' });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  assert.equal(up.body.matched, ids.length);
}
async function run(name, start, end) {
  const r = await api('POST', `/api/atelier/monitoring-schedules/${name}/run`, { window_start_ms: start, window_end_ms: end });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitJob(r.body.job.id, 90000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  return job;
}
const metric = (job, name) => job.result.metrics.find((m) => m.name === name);

before(async () => {
  server = await startServer(['--webhook-allowed-hosts', '127.0.0.1']);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { hookCalls.push(JSON.parse(body)); res.writeHead(200).end(); });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (hook) await new Promise((r) => hook.close(r));
  assert.deepEqual(errors, [], 'no page errors');
});

test('an Autopilot model on loan data serves with every request captured', async () => {
  scene.train = loans(800, 15);
  const csv = ['group,x1,x2,x3,approved', ...scene.train.map((r) => [r.group, r.x1, r.x2, r.x3, r.approved].join(','))].join('\n') + '\n';
  assert.equal((await api('PUT', '/api/atelier/datasets/loans.csv', csv, { 'Content-Type': 'text/csv' })).status, 201);
  const r = await api('POST', '/api/atelier/automl', { dataset: 'loans.csv', target: 'approved', time_budget: 60, max_candidates: 3 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitJob(r.body.job.id, 150000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  const model = `models:/${job.result.model_name}/1`;
  let d = await api('POST', '/api/atelier/endpoints', { name: 'loans', model, data_capture: { sampling_percentage: 100 } });
  assert.equal(d.status, 200, JSON.stringify(d.body));
  d = await api('POST', '/api/atelier/endpoints', { name: 'loans-dark', model, data_capture: { enabled: false } });
  assert.equal(d.status, 200, JSON.stringify(d.body));
});

test('bad bias and explainability configurations are refused with what to fix', async () => {
  const base = { endpoint: 'loans', kind: 'model_bias', dataset: 'loans.csv', cron: '0 0 1 1 *' };
  const refuse = async (body, re, status = 400) => {
    const r = await api('POST', '/api/atelier/monitoring-schedules', body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.match(r.body.message, re);
  };
  await refuse({ ...base, name: 'b1', bias: { facet: 'gender', facet_values: ['B'] } }, /no column 'gender'.*columns: .*group.*fix the schedule's "bias"/);
  await refuse({ ...base, name: 'b2', bias: { facet: 'group', facet_values: ['C'] } }, /column 'group' has no value 'C' \(values: .*A.*\)/);
  await refuse({ ...base, name: 'b3', bias: { facet: 'group' } }, /name the sensitive group with facet_values/);
  await refuse({ ...base, name: 'b4', bias: { facet: 'group', facet_values: ['B'], metrics: ['XYZ'] } }, /'XYZ' is not a post-training bias metric; use some of AD, .*DPPL/);
  await refuse({ ...base, name: 'b5', dataset: undefined, bias: { facet: 'group', facet_values: ['B'] } }, /needs the training data .*give "dataset"/);
  await refuse({ ...base, name: 'b6', dataset: 'nope.csv', bias: { facet: 'group', facet_values: ['B'] } }, /no dataset named 'nope.csv'; upload/);
  await refuse({ ...base, name: 'b7', endpoint: 'loans-dark', bias: { facet: 'group', facet_values: ['B'] } }, /'loans-dark' does not capture its traffic.*turn data capture on/);
  await refuse({ ...base, name: 'e1', kind: 'model_explainability', explainability: { threshold: 1.5 } }, /nDCG between 0 and 1 \(SageMaker's is 0.9\)/);
  await refuse({ ...base, name: 'e2', kind: 'model_explainability', endpoint: 'loans-dark' }, /does not capture its traffic/);
  const list = (await api('GET', '/api/atelier/monitoring-schedules')).body.schedules;
  assert.deepEqual(list, [], 'nothing was saved');
});

test('a bias schedule is made through the form; its baseline comes from the training data', async () => {
  await page.goto(server.url + '/monitor');
  await until(async () => (await page.locator('[data-testid=new-schedule-endpoint] option').count()) >= 3, 'the endpoints');
  await page.selectOption('[data-testid=new-schedule-endpoint]', 'loans');
  await page.selectOption('[data-testid=new-schedule-kind]', 'model_bias');
  assert.equal(await page.inputValue('[data-testid=new-schedule-name]'), 'loans-bias');
  await until(async () => (await page.locator('[data-testid=new-schedule-dataset] option[value="loans.csv"]').count()) === 1, 'the datasets');
  await page.selectOption('[data-testid=new-schedule-dataset]', 'loans.csv');
  await page.fill('[data-testid=new-schedule-cron]', '0 0 1 1 *');
  await page.fill('[data-testid=new-schedule-webhook]', `http://127.0.0.1:${hook.address().port}/alerts`);
  // a facet value the data lacks is refused on the page, with the values it has
  await page.fill('[data-testid=new-schedule-facet]', 'group');
  await page.fill('[data-testid=new-schedule-facet-values]', 'b');
  await page.click('[data-testid=create-schedule]');
  await page.locator('[data-testid=schedule-error]').waitFor();
  assert.match(await page.textContent('[data-testid=schedule-error]'), /has no value 'b'/);
  assert.equal(errors.filter((e) => /status of 400/.test(e)).length, 1, errors.join('\n'));
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);
  await page.fill('[data-testid=new-schedule-facet-values]', 'B');
  await page.click('[data-testid=create-schedule]');
  await page.waitForURL(/\/monitor\/loans-bias$/, { timeout: 60000 });
  const s = (await api('GET', '/api/atelier/monitoring-schedules/loans-bias')).body.schedule;
  assert.equal(s.kind, 'model_bias');
  assert.deepEqual(s.bias, { facet: 'group', facet_values: ['B'] });
  assert.equal(s.baseline, 'monitoring/loans-bias/baseline');
  // SageMaker's file shapes: constraints with bounds, the baseline's analysis.json
  const cons = JSON.parse(await (await fetch(server.url + '/api/2.0/mlflow-artifacts/artifacts/monitoring/loans-bias/baseline/constraints.json')).text());
  const dppl = cons.post_training_bias_metrics.facets.group[0].metrics.find((m) => m.name === 'DPPL');
  assert.ok(Math.abs(dppl.value) < 0.15, `group does not drive approval: DPPL ${dppl.value}`);
  assert.ok(Math.abs(dppl.upper - (Math.abs(dppl.value) + 0.1)) < 1e-9 && dppl.lower === -dppl.upper, JSON.stringify(dppl));
  const di = cons.post_training_bias_metrics.facets.group[0].metrics.find((m) => m.name === 'DI');
  const m = Math.max(di.value, 1 / di.value);
  assert.ok(Math.abs(di.upper - 1.25 * m) < 1e-9 && Math.abs(di.lower - 1 / (1.25 * m)) < 1e-9, JSON.stringify(di));
  const analysis = JSON.parse(await (await fetch(server.url + '/api/2.0/mlflow-artifacts/artifacts/monitoring/loans-bias/baseline/analysis.json')).text());
  assert.equal(analysis.post_training_bias_metrics.label, 'approved');
  assert.equal(analysis.post_training_bias_metrics.facets.group[0].value_or_threshold, 'B');
  scene.baselineDppl = dppl;
});

test('an explainability schedule ranks the training data\'s features by mean |SHAP|', async () => {
  const r = await api('POST', '/api/atelier/monitoring-schedules', {
    name: 'loans-explain', endpoint: 'loans', kind: 'model_explainability', dataset: 'loans.csv', cron: '0 0 1 1 *',
    webhooks: [`http://127.0.0.1:${hook.address().port}/alerts`],
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const cons = JSON.parse(await (await fetch(server.url + '/api/2.0/mlflow-artifacts/artifacts/monitoring/loans-explain/baseline/constraints.json')).text());
  const shap = cons.explanations.kernel_shap.yes.global_shap_values;
  const ranked = Object.entries(shap).sort((a, b) => b[1] - a[1]).map((x) => x[0]);
  assert.deepEqual(ranked.slice(0, 2), ['x1', 'x2'], JSON.stringify(shap));
});

test('clean traffic passes both checks', async () => {
  // fresh applicants from the same distribution: the metrics move by sampling noise only
  const t0 = Date.now();
  await sendWindow(loans(800, 18), 'clean');
  const t1 = Date.now();
  scene.clean = [t0, t1];
  const bias = await run('loans-bias', t0, t1);
  assert.equal(bias.result.status, 'ok', JSON.stringify(bias.result));
  assert.equal(bias.result.labelled, 800);
  assert.deepEqual(bias.result.violations, []);
  assert.notEqual(metric(bias, 'DPPL').value, scene.baselineDppl.value, 'new rows, a new value');
  assert.ok(metric(bias, 'DPPL').p_adjusted > 0.01, JSON.stringify(metric(bias, 'DPPL')));
  assert.match(bias.result.files['constraint_violations.json'], /^monitoring\/loans-bias\/[0-9a-f]+\/constraint_violations.json$/);
  const ex = await run('loans-explain', t0, t1);
  assert.equal(ex.result.status, 'ok', JSON.stringify(ex.result));
  assert.ok(ex.result.ndcg > 0.97, `nDCG ${ex.result.ndcg}`);
  assert.equal(ex.result.threshold, 0.9);
});

test('planted bias: group B\'s x1 lowered → DPPL and DI past their bounds, an alert and a webhook', async () => {
  const biased = loans(800, 16).map((r) => (r.group === 'B' ? { ...r, x1: +(r.x1 - 2).toFixed(4) } : r));
  const t0 = Date.now();
  await sendWindow(biased, 'biased');
  const t1 = Date.now();
  const job = await run('loans-bias', t0, t1);
  assert.equal(job.result.status, 'violations', JSON.stringify(job.result));
  const names = job.result.violations.map((v) => v.metric_name).sort();
  assert.ok(names.includes('DPPL') && names.includes('DI'), names.join(','));
  const v = job.result.violations.find((x) => x.metric_name === 'DPPL');
  assert.equal(v.constraint_check_type, 'bias_drift_check');
  assert.equal(v.facet, 'group');
  assert.equal(v.facet_value, 'B');
  assert.ok(metric(job, 'DPPL').value > metric(job, 'DPPL').upper);
  assert.ok(metric(job, 'DI').value < metric(job, 'DI').lower);
  assert.ok(metric(job, 'DPPL').p_adjusted < 1e-6, 'evidently past the bound with 400 rows a side');
  // the violations file in SageMaker's shape
  const file = JSON.parse(await (await fetch(server.url + '/api/2.0/mlflow-artifacts/artifacts/' + job.result.files['constraint_violations.json'])).text());
  assert.equal(file.version, '1.0');
  assert.ok(file.violations.some((x) => x.metric_name === 'DI' && x.constraint_check_type === 'bias_drift_check'));
  await until(() => hookCalls.find((c) => c.execution_id === job.id), 'the webhook', 20000);
  const call = hookCalls.find((c) => c.execution_id === job.id);
  assert.equal(call.kind, 'model_bias');
  assert.ok(call.violations.some((x) => x.metric_name === 'DPPL'));
  scene.biasJob = job.id;

  await page.goto(server.url + '/monitor/loans-bias');
  await until(async () => (await attr('[data-testid=alert-state]', 'data-state')) === 'alert', 'the alert');
  const bc = '[data-testid=bias-chart]';
  await until(async () => (await attr(bc, 'data-points')) === '2', 'a DPPL value per window');
  assert.equal(await attr(bc, 'data-metric'), 'DPPL');
  assert.equal(await attr(bc, 'data-threshold-points'), '2', 'the upper bound');
  assert.equal(await attr(bc, 'data-lower-points'), '2', 'the lower bound');
  assert.equal(await page.locator(`${bc} [data-testid=threshold-line]`).count(), 1);
  assert.equal(await page.locator(`${bc} [data-testid=lower-line]`).count(), 1);
  assert.equal(await attr('[data-testid=bias-metric-row][data-metric=DPPL]', 'data-violation'), 'true');
  assert.equal(await attr('[data-testid=bias-metric-row][data-metric=DI]', 'data-violation'), 'true');
  const violated = await page.$$eval('[data-testid=violation-row]', (rs) => rs.map((r) => r.dataset.feature));
  assert.ok(violated.includes('DPPL') && violated.includes('DI'), violated.join(','));
  // DI is plotted on a click of its row
  await page.click('[data-testid=bias-metric-row][data-metric=DI]');
  await until(async () => (await attr(bc, 'data-metric')) === 'DI', 'DI plotted');
  for (const w of [1280, 1920]) {
    await page.setViewportSize({ width: w, height: 900 });
    await sleep(200);
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `layout at ${w}px`);
  }
  await shot('bias');
  // the list marks it
  await page.goto(server.url + '/monitor');
  const row = page.locator('[data-testid=schedule-row][data-name=loans-bias]');
  await row.waitFor();
  assert.equal(await row.locator('[data-testid=alert-badge]').textContent(), 'ALERT');
  assert.match(await row.textContent(), /Model bias/);
});

test('planted attribution drift: x1 held at its median → nDCG below 0.9, an alert, both rankings side by side', async () => {
  const flat = loans(800, 17).map((r) => ({ ...r, x1: 0 }));
  const t0 = Date.now();
  await sendWindow(flat, 'flat');
  const t1 = Date.now();
  const job = await run('loans-explain', t0, t1);
  assert.equal(job.result.status, 'violations', JSON.stringify(job.result));
  assert.ok(job.result.ndcg < 0.9, `nDCG ${job.result.ndcg}`);
  const v = job.result.violations[0];
  assert.equal(v.constraint_check_type, 'feature_attribution_drift_check');
  assert.equal(v.metric_name, 'shap');
  assert.equal(v.label, 'yes');
  const l = job.result.labels[0];
  assert.equal(l.baseline_ranking[0][0], 'x1');
  assert.notEqual(l.current_ranking[0][0], 'x1');
  await until(() => hookCalls.find((c) => c.execution_id === job.id), 'the webhook', 20000);
  assert.equal(hookCalls.find((c) => c.execution_id === job.id).kind, 'model_explainability');

  await page.goto(server.url + '/monitor/loans-explain');
  await until(async () => (await attr('[data-testid=alert-state]', 'data-state')) === 'alert', 'the alert');
  const nc = '[data-testid=ndcg-chart]';
  await until(async () => (await attr(nc, 'data-points')) === '2', 'an nDCG per window');
  assert.equal(await attr(nc, 'data-threshold-points'), '2');
  assert.equal(await page.locator(`${nc} [data-testid=point]`).count(), 2);
  const rc = '[data-testid=ranking-chart]';
  assert.equal(await attr(rc, 'data-execution'), job.id);
  assert.equal(await attr(rc, 'data-features'), '4');
  const ranks = async (series) => page.$$eval(`${rc} [data-testid=rank-bar][data-series=${series}]`, (bs) => bs.map((b) => b.dataset.feature));
  assert.equal((await ranks('baseline'))[0], 'x1');
  assert.notEqual((await ranks('current'))[0], 'x1');
  const x1 = page.locator(`${rc} [data-testid=rank-link][data-feature=x1]`);
  assert.equal(await x1.getAttribute('data-from'), '1');
  assert.ok(Number(await x1.getAttribute('data-to')) > 1);
  assert.match(await page.textContent('[data-testid=violation-row]'), /nDCG 0\.\d+ .* below 0\.9/);
  // the clean window: the same top features on both sides
  const clean = (await api('GET', '/api/atelier/monitoring-schedules/loans-explain')).body.executions.find((e) => e.result.status === 'ok');
  await page.click(`[data-testid=execution-row][data-id="${clean.id}"]`);
  await until(async () => (await attr(rc, 'data-execution')) === clean.id, 'the clean window');
  assert.deepEqual((await ranks('current')).slice(0, 2), ['x1', 'x2']);
  for (const w of [1280, 1920]) {
    await page.setViewportSize({ width: w, height: 900 });
    await sleep(200);
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `layout at ${w}px`);
  }
  await shot('explainability');
});

test('a multiclass model is explained per class; bias asks which classes are the positive outcome', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { ROOT } = await import('./harness.mjs');
  const csv = readFileSync(join(ROOT, 'datasets', 'penguins.csv'));
  assert.equal((await api('PUT', '/api/atelier/datasets/penguins.csv', new Uint8Array(csv), { 'Content-Type': 'text/csv' })).status, 201);
  const r = await api('POST', '/api/atelier/automl', { dataset: 'penguins.csv', target: 'species', time_budget: 60, max_candidates: 3 });
  const job = await waitJob(r.body.job.id, 150000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  const d = await api('POST', '/api/atelier/endpoints', { name: 'penguins', model: `models:/${job.result.model_name}/1`, data_capture: { sampling_percentage: 100 } });
  assert.equal(d.status, 200, JSON.stringify(d.body));
  const bias = await api('POST', '/api/atelier/monitoring-schedules', { name: 'pb', endpoint: 'penguins', kind: 'model_bias', dataset: 'penguins.csv', bias: { facet: 'island', facet_values: ['Dream'] } });
  assert.equal(bias.status, 400);
  assert.match(bias.body.message, /bias.label_values: which classes of 'species' are the positive outcome\? \(classes: Adelie, Chinstrap, Gentoo\)/);
  const c = await api('POST', '/api/atelier/monitoring-schedules', { name: 'penguins-explain', endpoint: 'penguins', kind: 'model_explainability', dataset: 'penguins.csv', cron: '0 0 1 1 *', explainability: { max_rows: 120 } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const lines = readFileSync(join(ROOT, 'datasets', 'penguins.csv'), 'utf8').trim().split('\n');
  const t0 = Date.now();
  const res = await fetch(server.url + '/endpoints/penguins/invocations', {
    method: 'POST', headers: { 'Content-Type': 'text/csv', Accept: 'application/json' },
    body: lines[0].split(',').slice(1).join(',') + '\n' + lines.slice(1).map((l) => l.split(',').slice(1).join(',')).join('\n') + '\n',
  });
  assert.equal(res.status, 200, await res.text());
  await sleep(2500);
  const ex = await run('penguins-explain', t0, Date.now());
  assert.equal(ex.result.status, 'ok', JSON.stringify(ex.result));
  assert.deepEqual(ex.result.labels.map((l) => l.label).sort(), ['Adelie', 'Chinstrap', 'Gentoo']);
  await page.goto(server.url + '/monitor/penguins-explain');
  const sel = '[data-testid=ranking-label]';
  await until(async () => (await page.locator(`${sel} option`).count()) === 3, 'a ranking per class');
  await page.selectOption(sel, 'Gentoo');
  await until(async () => /label Gentoo/.test(await page.textContent('[data-testid=ranking-title]')), 'the Gentoo ranking');
  assert.equal(await attr('[data-testid=ranking-chart]', 'data-features'), String(ex.result.labels.find((l) => l.label === 'Gentoo').baseline_ranking.length));
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);
});
