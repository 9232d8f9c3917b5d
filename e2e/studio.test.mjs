// Studio end-to-end: the real server, the real MLflow client, a real browser.
//   cd e2e && npm ci && ATELIER_PYTHON=/path/to/python-with-mlflow npm test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, mlflow, launchBrowser, newPage, until, fullShot, call } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-${name}.png`, 4000);

const EXP = 'studio-e2e-' + Date.now().toString(36);
let server, browser, page, seeded;
const errors = [];

const rowNames = () => page.$$eval('[data-testid=run-row] [data-testid=run-link]', (as) => as.map((a) => a.textContent));

before(async () => {
  server = await startServer();
  seeded = await mlflow(server.url, 'seed', EXP);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  // Failed requests the tests provoke on purpose (a 400 filter, a blocked event stream) are not bugs.
  const real = errors.filter((e) => !/Failed to load resource|EventSource/.test(e));
  assert.deepEqual(real, [], 'no uncaught errors in the pages');
});

test('experiments list shows the experiment', async () => {
  await page.goto(server.url + '/');
  const row = page.locator(`[data-testid=experiment-row][data-experiment-id="${seeded.experiment_id}"]`);
  await row.waitFor();
  assert.equal(await row.locator('[data-testid=experiment-link]').textContent(), EXP);
  await page.goto(server.url + '/experiments');
  await row.waitFor();
  await shot('experiments');
  await row.locator('[data-testid=experiment-link]').click();
  await page.waitForURL(`**/experiments/${seeded.experiment_id}`);
});

test('runs table lists, filters and sorts the runs', async () => {
  await page.goto(`${server.url}/experiments/${seeded.experiment_id}`);
  await page.locator('[data-testid=run-row]').nth(2).waitFor();
  assert.equal(await page.locator('[data-testid=experiment-name]').textContent(), EXP);
  assert.deepEqual((await rowNames()).sort(), ['alpha', 'beta', 'gamma']);
  // Default columns include metrics and params.
  const rmse = page.locator('[data-testid=run-row][data-run-id="' + seeded.runs.beta + '"] td[data-col="metrics.rmse"]');
  assert.equal(await rmse.textContent(), '0.266667');
  // The runs chart plots one point per run (x: created, y: the first metric).
  await until(async () => (await page.getAttribute('[data-testid=runs-chart]', 'data-points')) === '3', 'runs chart with 3 points');
  await page.selectOption('[data-testid=runs-chart-x]', 'params.depth');
  await page.selectOption('[data-testid=runs-chart-y]', 'metrics.rmse');
  assert.equal(await page.getAttribute('[data-testid=runs-chart]', 'data-points'), '3');

  // Filter with MLflow's grammar (evaluated by the server).
  await page.fill('[data-testid=runs-filter]', "params.model = 'gbm'");
  await page.press('[data-testid=runs-filter]', 'Enter');
  await until(async () => (await rowNames()).length === 2, 'two gbm runs');
  assert.deepEqual((await rowNames()).sort(), ['alpha', 'beta']);
  assert.match(page.url(), /filter=params\.model/);
  await page.fill('[data-testid=runs-filter]', 'metrics.rmse < 0.3');
  await page.click('[data-testid=runs-search]');
  await until(async () => JSON.stringify(await rowNames()) === '["beta"]', 'only beta');

  // A bad filter shows the server's message under the box.
  await page.fill('[data-testid=runs-filter]', 'metrics.rmse <<< 1');
  await page.press('[data-testid=runs-filter]', 'Enter');
  const err = page.locator('[data-testid=filter-error]');
  await err.waitFor({ state: 'visible' });
  assert.ok((await err.textContent()).length > 5, 'the error message is shown');
  await shot('filter-error');
  await page.click('[data-testid=runs-clear]');
  await until(async () => (await rowNames()).length === 3, 'all runs again');
  assert.equal(await err.isVisible(), false);

  // Sort by a metric: ascending, then descending.
  await page.click('[data-testid=col-header][data-col="metrics.rmse"]');
  await until(async () => JSON.stringify(await rowNames()) === '["beta","alpha","gamma"]', 'rmse ascending');
  assert.equal(await page.getAttribute('[data-testid=col-header][data-col="metrics.rmse"]', 'aria-sort'), 'ascending');
  await page.click('[data-testid=col-header][data-col="metrics.rmse"]');
  await until(async () => JSON.stringify(await rowNames()) === '["gamma","alpha","beta"]', 'rmse descending');
  // Sort by a param.
  await page.click('[data-testid=col-header][data-col="params.lr"]');
  await until(async () => JSON.stringify(await rowNames()) === '["beta","alpha","gamma"]', 'lr ascending (as strings)');

  // Column chooser: hide a param, show a tag.
  await page.click('[data-testid=columns-button]');
  await page.locator('[data-testid=column-chooser]').waitFor();
  await page.uncheck('[data-testid=column-option][data-col="params.depth"]');
  await page.check('[data-testid=column-option][data-col="tags.team"]');
  await until(async () => (await page.locator('[data-testid=col-header][data-col="params.depth"]').count()) === 0, 'depth column hidden');
  assert.equal(await page.locator(`[data-testid=run-row][data-run-id="${seeded.runs.alpha}"] td[data-col="tags.team"]`).textContent(), 'vision');
  await shot('experiment');
  await page.click('[data-testid=columns-reset]');
  await page.locator('[data-testid=col-header][data-col="params.depth"]').waitFor();
  await page.click('h1');
});

test('run page shows info, params, metric charts with hover, and artifacts', async () => {
  await page.goto(`${server.url}/runs/${seeded.runs.alpha}`);
  await page.locator('[data-testid=params-table]').waitFor();
  assert.equal(await page.locator('[data-testid=run-name]').textContent(), 'alpha');
  assert.equal(await page.locator('[data-testid=run-id]').textContent(), seeded.runs.alpha);
  assert.equal(await page.locator('[data-testid=run-status-text]').textContent(), 'FINISHED');
  assert.notEqual(await page.locator('[data-testid=run-end]').textContent(), '—');
  assert.equal(await page.locator('[data-testid=params-table] tr[data-key=lr] td:last-child').textContent(), '0.1');
  assert.equal(await page.locator('[data-testid=tags-table] tr[data-key=team] td:last-child').textContent(), 'vision');
  assert.match(await page.locator('[data-testid=metrics-table] tr[data-key=rmse] td:last-child').textContent(), /^0\.383333/);

  const chart = page.locator('[data-testid=metric-chart][data-metric-key=rmse]');
  await chart.waitFor();
  assert.equal(await chart.locator('.chart').getAttribute('data-points'), '12');
  assert.equal(await page.locator('[data-testid=metric-chart][data-metric-key=accuracy] .chart').getAttribute('data-points'), '1');
  // NaN points are counted but not drawn.
  assert.equal(await page.locator('[data-testid=metric-chart][data-metric-key=weird] .chart').getAttribute('data-points'), '2');

  // Hover shows the value at the nearest step.
  const overlay = chart.locator('[data-testid=chart-overlay]');
  const box = await overlay.boundingBox();
  await page.mouse.move(box.x + 2, box.y + box.height / 2);
  await page.mouse.move(box.x + 3, box.y + box.height / 2);
  const tip = chart.locator('[data-testid=chart-tooltip]');
  await tip.waitFor({ state: 'visible' });
  let text = await tip.textContent();
  assert.match(text, /step 0/);
  assert.match(text, /1\.3/); // rmse at step 0 = 1/(0+1) + 0.3
  await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
  await until(async () => /step 11/.test(await tip.textContent()), 'tooltip at the last step');
  assert.match(await tip.textContent(), /0\.383333/);

  // Smoothing draws the smoothed line over a faint raw line; log scale and wall-time axis redraw.
  assert.equal(await chart.locator('path.series.raw').count(), 0);
  await page.locator('[data-testid=smoothing]').fill('0.8');
  await until(async () => (await chart.locator('path.series.raw').count()) === 1, 'raw line under smoothing');
  await page.locator('[data-testid=smoothing]').fill('0');
  await page.check('[data-testid=log-scale]');
  await page.click('[data-testid=xaxis-time]');
  await page.mouse.move(box.x + 3, box.y + box.height / 2);
  await page.mouse.move(box.x + 2, box.y + box.height / 2);
  await until(async () => !/step/.test(await tip.textContent()) && /\d/.test(await tip.textContent()), 'wall-time tooltip');
  await page.click('[data-testid=xaxis-step]');
  await page.uncheck('[data-testid=log-scale]');
  await page.mouse.move(0, 0);
  await shot('run');

  // Artifacts: JSON, CSV and image previews.
  const entry = (p) => page.locator(`[data-testid=artifact-entry][data-path="${p}"]`);
  await entry('report').click();
  await entry('report/summary.json').click();
  const json = page.locator('[data-testid=preview-json]');
  await json.waitFor();
  text = await json.textContent();
  assert.match(text, /\n {2}"best": \{\n {4}"rmse": 0\.38333/);
  await page.click('[data-testid=artifact-up]');
  await entry('data').click();
  await entry('data/sample.csv').click();
  const csv = page.locator('[data-testid=preview-csv]');
  await csv.waitFor();
  assert.equal(await csv.getAttribute('data-rows'), '100'); // 150 rows in the file, the first 100 shown
  assert.deepEqual(await csv.locator('thead th').allTextContents(), ['id', 'feature', 'label']);
  assert.deepEqual(await csv.locator('tbody tr').nth(1).locator('td').allTextContents(), ['1', '0.8415', '1']);
  await shot('run-artifacts');
  await page.click('[data-testid=artifact-up]');
  await entry('images').click();
  await entry('images/pixel.png').click();
  const img = page.locator('[data-testid=preview-image]');
  await img.waitFor();
  await until(() => img.evaluate((i) => i.complete && i.naturalWidth), 'image loaded');
  assert.equal(await img.evaluate((i) => i.naturalWidth), 24);
  await page.click('[data-testid=artifact-up]');
  await entry('notes.txt').click();
  await page.locator('[data-testid=preview-text]').waitFor();
  assert.match(await page.locator('[data-testid=preview-text]').textContent(), /hello from alpha/);
  const href = await page.getAttribute('[data-testid=artifact-download]', 'href');
  const res = await fetch(server.url + href);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'hello from alpha\nsecond line\n');
});

test('compare view overlays curves, diffs params and scatters', async () => {
  await page.goto(`${server.url}/experiments/${seeded.experiment_id}`);
  await page.locator('[data-testid=run-row]').nth(2).waitFor();
  const compare = page.locator('[data-testid=compare-button]');
  assert.equal(await compare.isDisabled(), true);
  await page.check(`[data-testid=run-row][data-run-id="${seeded.runs.alpha}"] [data-testid=run-select]`);
  assert.equal(await compare.isDisabled(), true, 'one run is not enough');
  await page.check(`[data-testid=run-row][data-run-id="${seeded.runs.beta}"] [data-testid=run-select]`);
  assert.equal(await compare.isDisabled(), false);
  await compare.click();
  await page.waitForURL('**/compare?runs=*');
  const ids = new URL(page.url()).searchParams.get('runs').split(',').sort();
  assert.deepEqual(ids, [seeded.runs.alpha, seeded.runs.beta].sort());

  const chart = page.locator('[data-testid=compare-chart][data-metric-key=rmse]');
  await chart.waitFor();
  await until(async () => (await chart.locator('.chart').getAttribute('data-series')) === '2', 'two series');
  const series = chart.locator('path[data-testid=series]');
  assert.equal(await series.count(), 2);
  assert.deepEqual(await series.evaluateAll((ps) => ps.map((p) => p.getAttribute('data-points'))), ['12', '12']);
  const colors = await series.evaluateAll((ps) => ps.map((p) => p.getAttribute('stroke')));
  assert.notEqual(colors[0], colors[1]);
  assert.equal(await page.locator('[data-testid=legend-item]').count(), 2);
  // Hover shows one value per run.
  const box = await chart.locator('[data-testid=chart-overlay]').boundingBox();
  await page.mouse.move(box.x + 3, box.y + 10);
  await page.mouse.move(box.x + 2, box.y + 10);
  const tip = chart.locator('[data-testid=chart-tooltip]');
  await tip.waitFor({ state: 'visible' });
  assert.equal(await tip.locator('.row').count(), 2);
  const tipText = await tip.textContent();
  assert.match(tipText, /alpha/);
  assert.match(tipText, /beta/);

  const diff = page.locator('[data-testid=param-diff]');
  await diff.waitFor();
  assert.equal(await diff.locator('tr[data-key=lr]').getAttribute('data-differs'), 'true');
  assert.equal(await diff.locator('tr[data-key=depth]').getAttribute('data-differs'), 'true');
  assert.equal(await diff.locator('tr[data-key=model]').getAttribute('data-differs'), 'false');
  await page.check('[data-testid=only-diff]');
  await until(async () => (await page.locator('[data-testid=param-diff] tr[data-key=model]').count()) === 0, 'equal params hidden');
  await page.uncheck('[data-testid=only-diff]');

  const scatter = page.locator('[data-testid=scatter-plot]');
  await scatter.waitFor();
  assert.equal(await scatter.getAttribute('data-points'), '2');
  await page.selectOption('[data-testid=scatter-x]', 'params.lr');
  await page.selectOption('[data-testid=scatter-y]', 'metrics.rmse');
  assert.equal(await scatter.getAttribute('data-points'), '2');
  const pts = await scatter.locator('[data-testid=scatter-point]').evaluateAll((cs) => cs.map((c) => [c.getAttribute('data-run-id'), Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]));
  const byId = Object.fromEntries(pts.map(([id, x, y]) => [id, { x, y }]));
  // beta has the smaller lr (0.01 < 0.1) and the smaller rmse: left of and below alpha.
  assert.ok(byId[seeded.runs.beta].x < byId[seeded.runs.alpha].x, 'x follows lr');
  assert.ok(byId[seeded.runs.beta].y > byId[seeded.runs.alpha].y, 'y follows rmse (SVG y grows downwards)');
  await page.mouse.move(0, 0);
  await shot('compare');

  // Fewer than 2 runs is explained, not broken.
  await page.goto(`${server.url}/compare?runs=${seeded.runs.alpha}`);
  await page.locator('[data-testid=compare-invalid]').waitFor();
});

test('live: new metric points and new runs appear without a reload', async () => {
  await page.goto(`${server.url}/runs/${seeded.runs.alpha}`);
  const chart = page.locator('[data-testid=metric-chart][data-metric-key=rmse] .chart');
  await chart.waitFor();
  assert.equal(await chart.getAttribute('data-points'), '12');
  await page.evaluate(() => { window.__noReload = true; });
  await mlflow(server.url, 'log-metric', seeded.runs.alpha, 'rmse', '0.25', '12');
  await until(async () => (await chart.getAttribute('data-points')) === '13', 'the 13th point', 20000);
  assert.match(await page.locator('[data-testid=metrics-table] tr[data-key=rmse] td:last-child').textContent(), /^0\.25 +\(step 12\)/);
  // A new metric key gets a new chart.
  await mlflow(server.url, 'log-metric', seeded.runs.alpha, 'val_loss', '0.5', '0');
  await page.locator('[data-testid=metric-chart][data-metric-key=val_loss]').waitFor({ timeout: 20000 });
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  assert.equal(await page.locator('#live-indicator').getAttribute('data-mode'), 'sse');

  await page.goto(`${server.url}/experiments/${seeded.experiment_id}`);
  await page.locator('[data-testid=run-row]').nth(2).waitFor();
  await page.evaluate(() => { window.__noReload = true; });
  const created = await mlflow(server.url, 'new-run', EXP, 'delta');
  await page.locator(`[data-testid=run-row][data-run-id="${created.run_id}"]`).waitFor({ timeout: 20000 });
  assert.equal(await page.locator('[data-testid=run-row]').count(), 4);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  await shot('live');
});

test('live updates fall back to polling when the event stream is unavailable', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  await p.route('**/studio/api/events', (route) => route.fulfill({ status: 404, body: 'no' }));
  await p.goto(`${server.url}/runs/${seeded.runs.beta}`);
  const chart = p.locator('[data-testid=metric-chart][data-metric-key=rmse] .chart');
  await chart.waitFor();
  assert.equal(await chart.getAttribute('data-points'), '12');
  await until(async () => (await p.locator('#live-indicator').getAttribute('data-mode')) === 'poll', 'polling mode');
  await mlflow(server.url, 'log-metric', seeded.runs.beta, 'rmse', '0.2', '12');
  await until(async () => (await chart.getAttribute('data-points')) === '13', 'the polled point', 20000);
  await ctx.close();
});

test('navigation, other stages and unknown pages', async () => {
  await page.goto(server.url + '/experiments');
  for (const stage of ['experiments', 'models', 'autopilot', 'jobs', 'endpoints', 'monitor', 'notebooks']) {
    assert.equal(await page.locator(`[data-testid=nav-${stage}]`).count(), 1, stage);
  }
  await page.click('[data-testid=nav-notebooks]');
  await page.waitForURL('**/notebooks');
  // the notebooks page lists the (empty) workspace of this open server's space
  await page.locator('[data-testid=nb-workspace]').waitFor();
  assert.match(await page.locator('[data-testid=nb-empty]').textContent(), /No notebooks yet/);
  await page.click('[data-testid=nav-models]');
  await page.waitForURL('**/models');
  await page.locator('[data-testid=models-table], [data-testid=models-empty], [data-testid=models-error]').first().waitFor();
  await shot('models');
  // the links the MLflow client prints (MLflow UI hash routes) lead to our pages
  await page.goto(server.url + '/#/experiments/' + seeded.experiment_id + '/runs/' + seeded.runs.beta);
  await page.waitForURL('**/runs/' + seeded.runs.beta);
  await page.goto(server.url + '/#/experiments/' + seeded.experiment_id);
  await page.waitForURL('**/experiments/' + seeded.experiment_id);
  const res = await fetch(server.url + '/definitely-not-a-page');
  assert.equal(res.status, 404);
  const js = await fetch(server.url + '/static/studio.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
});
