// The Studio's layout with real data, at 1280, 1400 and 1920 px: every page the other browser tests
// visit (experiments, runs with charts, the registry, an endpoint with a long problem text and two
// variants, an Autopilot job and its candidates, jobs, Monitor with a schedule and an execution,
// Notebooks, the not-found pages) passes e2e/layout.mjs's check — nothing sticks out sideways, no
// text overlaps, no token wraps mid-token, no chart axis repeats a label — and the charts, progress
// bars, not-found pages and menus that issue 16 found wrong are checked one by one. Screenshots at
// 1400×900 land in /tmp/layout-shots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, mlflow, launchBrowser, newPage, ROOT, until, call } from './harness.mjs';
import { checkLayout } from './layout.mjs';

const api = (method, path, body, headers) => call(server.url, method, path, body, headers);
const SHOTS = '/tmp/layout-shots';
const DATASETS = [join(ROOT, 'datasets'), join(ROOT, 'tests', 'fixtures', 'datasets')].find((d) => existsSync(join(d, 'penguins.csv')));
// titanic (ids, names with commas, a target called Survived) when the datasets are there; else penguins
const TITANIC = existsSync(join(DATASETS, 'titanic.csv'));
const TRAIN = TITANIC
  ? { file: 'titanic.csv', target: 'Survived', numeric: 'Fare', drop: (l) => l.replace(/^(\d+),\d,/, '$1,').replace(/^PassengerId,Survived,/, 'PassengerId,') }
  : { file: 'penguins.csv', target: 'species', numeric: 'bill_length_mm', drop: (l) => l.slice(l.indexOf(',') + 1) };
const OTHER = TITANIC ? 'penguins.csv' : 'aaa-other.csv'; // a dataset listed before the trained-on one
const EXP = 'layout-e2e';
let server, browser, page;
const errors = [];
const scene = {};

async function waitJob(id, timeoutMs = 180000) {
  return until(async () => {
    const j = (await api('GET', '/api/atelier/jobs/' + id)).body.job;
    return j.status !== 'queued' && j.status !== 'running' ? j : null;
  }, 'job ' + id, timeoutMs, 250);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Opens a page, waits for `ready` (a selector), checks its layout at every width and screenshots it. */
async function visit(name, path, ready, extra) {
  await page.goto(server.url + path);
  await page.locator(ready).first().waitFor({ timeout: 30000 });
  if (extra) await extra();
  await sleep(300); // the live refresh after the first load
  await checkLayout(page, { label: `${name} (${path})` });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1400, height: Math.min(5000, Math.max(900, height)) });
  await page.screenshot({ path: `${SHOTS}/${name}.png` });
  await page.setViewportSize({ width: 1400, height: 900 });
}
const texts = (sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  scene.seeded = await mlflow(server.url, 'seed', EXP);
  for (const [name, file] of [[TRAIN.file, TRAIN.file], [OTHER, 'penguins.csv']]) {
    const r = await api('PUT', '/api/atelier/datasets/' + name, new Uint8Array(readFileSync(join(DATASETS, file))), { 'Content-Type': 'text/csv' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  // Autopilot: six candidates, ended well before its 30 s budget
  let r = await api('POST', '/api/atelier/automl', { dataset: TRAIN.file, target: TRAIN.target, time_budget: 30, max_candidates: 6 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const auto = await waitJob(r.body.job.id);
  assert.equal(auto.status, 'succeeded', JSON.stringify(auto));
  scene.auto = auto;
  scene.model = auto.result.model_name;
  const v1 = `models:/${scene.model}/${auto.result.model_version}`;
  // a second version without lineage tags: its batch menu has no dataset to preselect
  const mv = (await api('GET', `/api/2.0/mlflow/model-versions/get?name=${encodeURIComponent(scene.model)}&version=${auto.result.model_version}`)).body.model_version;
  r = await api('POST', '/api/2.0/mlflow/model-versions/create', { name: scene.model, source: mv.source });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  scene.bare = r.body.model_version.version;
  // an endpoint with two variants of an ensemble (a long "problem · algorithm" text), every request captured
  r = await api('POST', '/api/atelier/endpoints', {
    name: 'layout-ep', data_capture: { sampling_percentage: 100 },
    variants: [{ name: 'AllTraffic', model: v1, weight: 1 }, { name: 'challenger', model: v1, weight: 1 }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.endpoint.variants[0].algorithm.length > 40, 'a long algorithm text: ' + r.body.endpoint.variants[0].algorithm);
  const lines = readFileSync(join(DATASETS, TRAIN.file), 'utf8').trim().split('\n').map(TRAIN.drop);
  const t0 = Date.now() - 1000;
  for (let i = 1; i <= 60; i++) {
    const res = await fetch(server.url + '/endpoints/layout-ep/invocations', {
      method: 'POST', headers: { 'Content-Type': 'text/csv', 'X-Atelier-Inference-Id': `req-${i}` }, body: lines[0] + '\n' + lines[i] + '\n',
    });
    assert.equal(res.status, 200, await res.text());
    if (i % 20 === 0) await sleep(5200); // traffic over several 5-second ticks
  }
  await sleep(2500); // capture files are written about every second
  // a monitoring schedule and one execution of it over that traffic
  r = await api('POST', '/api/atelier/monitoring-schedules', { name: 'layout-drift', endpoint: 'layout-ep', kind: 'data_quality', cron: '0 0 1 1 *' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  r = await api('POST', '/api/atelier/monitoring-schedules/layout-drift/run', { window_start_ms: t0, window_end_ms: Date.now() });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const exec = await waitJob(r.body.job.id);
  assert.equal(exec.status, 'succeeded', JSON.stringify(exec));
  scene.exec = exec;
  // a batch transform job
  r = await api('POST', '/api/atelier/jobs', { kind: 'batch-transform', spec: { model: v1, dataset: TRAIN.file } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  scene.batch = await waitJob(r.body.job.id);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  await page.setViewportSize({ width: 1400, height: 900 });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  // the not-found pages answer 404 on purpose
  const real = errors.filter((e) => !/Failed to load resource|EventSource/.test(e));
  assert.deepEqual(real, [], 'no uncaught errors in the pages');
});

test('experiments, runs and their charts', async () => {
  const { experiment_id: eid, runs } = scene.seeded;
  await visit('experiments', '/experiments', '[data-testid=experiment-row]');
  await visit('experiment', '/experiments/' + eid, '[data-testid=run-row]', async () => {
    await until(async () => (await page.getAttribute('[data-testid=runs-chart]', 'data-points')) === '3', 'the runs chart');
  });
  // the Autopilot experiment: runs created within a second, on a wall-time axis
  const autoExp = scene.auto.result.experiment_id;
  await visit('experiment-autopilot', '/experiments/' + autoExp, '[data-testid=run-row]', async () => {
    await until(async () => Number(await page.getAttribute('[data-testid=runs-chart]', 'data-points')) >= 6, 'the runs chart');
  });
  const xLabels = await page.$$eval('[data-testid=runs-chart] .axis text[text-anchor=middle]', (ts) => ts.map((t) => t.textContent).filter((t) => /\d\d:\d\d/.test(t)));
  assert.ok(xLabels.length >= 2, 'a time axis: ' + xLabels);
  // a run: a 12-point curve, a one-point metric, a metric with a NaN
  await visit('run', '/runs/' + runs.alpha, '[data-testid=metric-chart][data-metric-key=accuracy] svg');
  const single = page.locator('[data-testid=metric-chart][data-metric-key=accuracy] .chart');
  assert.equal(await single.getAttribute('data-single'), 'true', 'one point is shown as one value');
  assert.match(await single.locator('[data-testid=point-value]').textContent(), /^0\.8083/);
  assert.deepEqual(await single.evaluate((c) => [...c.querySelectorAll('.axis text[text-anchor=middle]')].map((t) => t.textContent)), ['11'], 'one x tick, at its step');
  const yTicks = (await single.evaluate((c) => [...c.querySelectorAll('.axis text')].filter((t) => t.getAttribute('text-anchor') === 'end').map((t) => Number(t.textContent))));
  assert.ok(Math.min(...yTicks) > 0.5 && Math.max(...yTicks) < 1, 'a y axis around the value, not 0–1: ' + yTicks);
  // the candidates' runs: one-point metrics at step 0
  const cand = scene.auto.progress.candidates.find((c) => c.run_id);
  await visit('run-candidate', '/runs/' + cand.run_id, '[data-testid=metric-chart] svg');
  for (const c of await page.locator('[data-testid=metric-chart][data-points="1"] .chart').all()) {
    assert.equal(await c.getAttribute('data-single'), 'true');
    const xs = await c.evaluate((e) => [...e.querySelectorAll('.axis text')].filter((t) => t.getAttribute('text-anchor') === 'middle').map((t) => t.textContent));
    assert.deepEqual(xs, ['0'], 'one tick at step 0, not a 0–1 axis');
  }
  await visit('compare', `/compare?runs=${runs.alpha},${runs.beta},${runs.gamma}`, '[data-testid=compare-chart] svg');
});

test('registry: models, a model, its version with lineage and the batch-transform menu', async () => {
  await visit('models', '/models', '[data-testid=model-row]');
  await visit('model', '/models/' + encodeURIComponent(scene.model), '[data-testid=version-row]');
  await visit('version', `/models/${encodeURIComponent(scene.model)}/versions/1`, '[data-testid=lineage-job] a', async () => {
    await until(async () => (await page.inputValue('[data-testid=batch-dataset]')) !== '' || (await page.locator('[data-testid=batch-dataset] option').count()) > 1, 'the dataset menu');
  });
  // the run id and the job id stay in their columns
  // measured in one step in the page: the lineage row is re-rendered on every refresh, so four
  // separate lookups could straddle a re-render and find a detached element
  const [run, ds, job, eps] = await page.evaluate((sels) => sels.map((sel) => {
    const r = document.querySelector(sel).getBoundingClientRect();
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  }), ['[data-testid=lineage-run] a', '[data-testid=lineage-dataset] b', '[data-testid=lineage-job] a', '[data-testid=lineage-endpoints] b']);
  assert.ok(run.x + run.width <= ds.x || run.y + run.height <= ds.y, 'the run id ends before the dataset column');
  assert.ok(job.x + job.width <= eps.x || job.y + job.height <= eps.y, 'the job id ends before the endpoints column');
  // the batch menu offers the dataset the version was trained on, not the first in the list
  assert.equal(await page.inputValue('[data-testid=batch-dataset]'), TRAIN.file);
  assert.equal((await texts('[data-testid=batch-dataset] option'))[0], OTHER, 'another dataset comes first in the list');
  // a version without lineage makes no choice for the user
  await page.goto(`${server.url}/models/${encodeURIComponent(scene.model)}/versions/${scene.bare}`);
  await until(async () => (await page.locator('[data-testid=batch-dataset] option').count()) >= 3, 'the dataset menu');
  assert.equal(await page.inputValue('[data-testid=batch-dataset]'), '');
  assert.match(await page.locator('[data-testid=batch-dataset] option:checked').textContent(), /choose a dataset/);
  await page.click('[data-testid=batch-button]');
  assert.match(await page.textContent('[data-testid=batch-error]'), /Choose the dataset/);
});

test('an endpoint with a long problem text and two variants; its charts share one time range', async () => {
  await visit('endpoints', '/endpoints', '[data-testid=endpoint-row]');
  await visit('endpoint', '/endpoints/layout-ep', '[data-testid=variant-row]', async () => {
    await until(async () => Number(await page.getAttribute('[data-testid=endpoint-chart][data-chart=p99] .chart', 'data-points')) > 0, 'latency points', 15000);
    await until(async () => (await page.locator('[data-testid=capture-row]').count()) >= 10, 'captured rows', 15000);
  });
  // every weight field is in view beside Save weights, at every width
  for (const width of [1280, 1400]) {
    await page.setViewportSize({ width, height: 900 });
    await sleep(100);
    const rights = await page.$$eval('[data-testid=weight-input]', (ws) => ws.map((w) => w.getBoundingClientRect().right));
    assert.equal(rights.length, 2);
    for (const r of rights) assert.ok(r <= width, `a weight field ends at x ${r} in a ${width}px window`);
  }
  await page.setViewportSize({ width: 1400, height: 900 });
  assert.match(await page.textContent('[data-testid=variant-problem]'), /ensemble of/);
  // one time range for the four charts
  const ranges = await page.$$eval('[data-testid=endpoint-chart] .chart[data-x-min]', (cs) => cs.map((c) => c.dataset.xMin + '…' + c.dataset.xMax));
  assert.ok(ranges.length >= 3, 'charts with data: ' + ranges.length);
  assert.equal(new Set(ranges).size, 1, 'the same time range: ' + ranges.join(', '));
});

test('an Autopilot job: a full bar once ended, whole-number candidate axis', async () => {
  await visit('autopilot', '/autopilot', '[data-testid=job-row]');
  await visit('autopilot-job', '/autopilot/' + scene.auto.id, '[data-testid=leaderboard-row]', async () => {
    await until(async () => Number(await page.getAttribute('[data-testid=score-chart]', 'data-candidates')) >= 5, 'the candidates chart');
  });
  assert.equal(await page.getAttribute('[data-testid=automl-progress]', 'data-fraction'), '1.000', 'an ended job is not shown at its budget fraction');
  assert.equal(parseFloat(await page.locator('[data-testid=automl-progress] .progress-bar').evaluate((b) => b.style.width)), 100);
  assert.match(await page.textContent('[data-testid=automl-progress-text]'), /candidates|budget|converged|configuration|search finished/, 'why it stopped');
  const xs = await page.$$eval('[data-testid=score-chart] .axis text[text-anchor=middle]', (ts) => ts.map((t) => t.textContent));
  assert.ok(xs.length >= 2 && xs.every((x) => /^\d+$/.test(x)), 'candidate numbers: ' + xs);
});

test('jobs: the list, a monitoring execution and a batch transform', async () => {
  await visit('jobs', '/jobs', '[data-testid=job-row]');
  await visit('job-monitoring', '/jobs/' + scene.exec.id, '[data-testid=monitoring-execution]');
  assert.equal(await page.locator('pre.json').count(), 0, 'no raw JSON');
  assert.equal(await page.getAttribute('[data-testid=open-schedule]', 'href'), '/monitor/layout-drift');
  assert.equal(await page.getAttribute('[data-testid=schedule-link]', 'href'), '/monitor/layout-drift');
  const card = await page.textContent('[data-testid=monitoring-execution]');
  assert.match(card, /Window\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'the window as dates');
  assert.doesNotMatch(card, /\d{13}/, 'no epoch milliseconds');
  assert.match(await page.textContent('[data-testid=execution-outcome]'), /^(ok|violations|no data)$/);
  await visit('job-batch', '/jobs/' + scene.batch.id, '[data-testid=batch-rows]');
  assert.equal(Number(await page.textContent('[data-testid=batch-rows]')), scene.batch.result.rows);
  assert.equal(await page.locator('pre.json:visible').count(), 0, 'the raw documents are folded away');
  assert.match(await page.getAttribute('[data-testid=batch-output]', 'href'), /^\/api\/2\.0\/mlflow-artifacts\/artifacts\/batch-transform\//);
});

test('Monitor: the list, a schedule with its histograms and executions', async () => {
  await visit('monitor', '/monitor', '[data-testid=schedule-row]');
  await visit('schedule', '/monitor/layout-drift?feature=' + TRAIN.numeric, '[data-testid=execution-row]', async () => {
    await until(async () => (await page.getAttribute('[data-testid=hist-chart]', 'data-feature')) === TRAIN.numeric, 'the histogram of ' + TRAIN.numeric);
  });
  // bin edges rounded to what tells them apart (16.3, not 16.3334)
  const edges = await page.$$eval('[data-testid=hist-chart] .axis text[text-anchor=middle]', (ts) => ts.map((t) => t.textContent));
  assert.ok(edges.length >= 3, 'edge labels: ' + edges);
  for (const e of edges) assert.ok(e.replace(/^-/, '').replace('.', '').replace(/^0+/, '').length <= 4, `edge ${e} has more digits than its bins need (${edges})`);
});

test('Notebooks', async () => {
  await visit('notebooks', '/notebooks', '[data-testid=nb-workspace]');
});

test('not-found pages: the Studio\'s own 404, and one message (no empty panels) for a missing run, endpoint or schedule', async () => {
  const res = await page.goto(server.url + '/no/such/page');
  assert.equal(res.status(), 404);
  await page.locator('[data-testid=not-found]').waitFor();
  assert.equal(await page.locator('[data-testid=nav]').count(), 1, 'the navigation');
  assert.match(await page.evaluate(() => getComputedStyle(document.body).fontFamily), /system-ui/, 'the Studio\'s fonts, not Times');
  assert.equal(await page.getAttribute('[data-testid=not-found-back]', 'href'), '/');
  await checkLayout(page, { label: '404 (/no/such/page)' });
  await page.screenshot({ path: `${SHOTS}/404.png` });
  const missing = [
    ['missing-run', '/runs/0123456789abcdef0123456789abcdef', 'run-error', /Run with id=0123456789abcdef0123456789abcdef not found/, '/experiments'],
    ['missing-endpoint', '/endpoints/nope', 'endpoint-error', /no endpoint named 'nope'/, '/endpoints'],
    ['missing-schedule', '/monitor/nope', 'schedule-load-error', /No monitoring schedule named 'nope'/, '/monitor'],
    ['missing-job', '/jobs/nope', 'job-error', /No job with id 'nope'/, '/jobs'],
    ['missing-autopilot', '/autopilot/nope', 'job-error', /No job with id 'nope'/, '/autopilot'],
    ['missing-model', '/models/nope', 'model-error', /Registered Model with name=nope not found/, '/models'],
    ['missing-version', `/models/${encodeURIComponent(scene.model)}/versions/99`, 'version-error', /Model Version \(name=.*, version=99\) not found/, `/models/${encodeURIComponent(scene.model)}`],
    ['missing-experiment', '/experiments/999', 'experiment-error', /No Experiment with id=999 exists/, '/experiments'],
  ];
  for (const [name, path, testid, message, back] of missing) {
    await page.goto(server.url + path);
    await page.locator('[data-testid=not-found]').waitFor();
    await sleep(300);
    assert.match(await page.textContent(`[data-testid=${testid}]`), message, name);
    assert.equal(await page.locator('main .error-box').count(), 1, `${name}: one message`);
    assert.equal(await page.getAttribute('[data-testid=not-found-back]', 'href'), back, `${name}: a link to the list`);
    // nothing but the message: no panels, charts, forms or an Invoke box
    assert.equal(await page.locator('main .card').count(), 1, `${name}: no empty panels`);
    assert.equal(await page.locator('main .chart, main textarea, main table').count(), 0, `${name}: no charts, forms or tables`);
    const text = await page.textContent('main');
    const first = text.match(message)[0];
    assert.equal(text.split(first).length - 1, 1, `${name}: the message once ("${first}")`);
    await checkLayout(page, { label: `${name} (${path})`, widths: [1400] });
    await page.screenshot({ path: `${SHOTS}/${name}.png` });
  }
});
