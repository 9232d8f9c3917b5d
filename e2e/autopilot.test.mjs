// Autopilot in the Studio: upload a dataset, pick the target from its preview, start a job, watch the
// leaderboard fill in live, open the result and its reports; cancel a running job; bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, newPage, ROOT, until, fullShot, call } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-${name}.png`, 5000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);

const DATASETS = join(ROOT, 'datasets');
let server, browser, page;
const errors = [];


before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  assert.deepEqual(errors, [], 'no page errors');
});

test('upload, choose the target, run Autopilot and watch the leaderboard live', async () => {
  await page.goto(server.url + '/autopilot');
  await page.locator('[data-testid=automl-jobs-empty]').waitFor();
  await page.setInputFiles('[data-testid=dataset-upload]', join(DATASETS, 'penguins.csv'));
  await until(async () => (await page.inputValue('[data-testid=dataset-select]')) === 'penguins.csv', 'the uploaded dataset is selected');
  // the preview lists every column with its inferred kind
  await page.locator('[data-testid=preview-column]').first().waitFor();
  assert.equal(await page.locator('[data-testid=preview-column]').count(), 8);
  assert.match(await page.locator('[data-testid=columns-preview]').textContent(), /344 rows, 8 columns/);
  assert.equal(await page.isDisabled('[data-testid=start-automl]'), true, 'no start before a target is chosen');
  await page.selectOption('[data-testid=target-select]', 'species');
  await page.fill('[data-testid=budget-input]', '40');
  await page.fill('[data-testid=max-candidates-input]', '6');
  // a bias report for one facet: Clarify's metrics in the model-quality report
  await page.selectOption('[data-testid=facet-select]', 'sex');
  await page.fill('[data-testid=facet-values-input]', 'female');
  await page.fill('[data-testid=label-values-input]', 'Adelie');
  await shot('autopilot-form');
  await page.click('[data-testid=start-automl]');
  await page.waitForURL(/\/autopilot\/[0-9a-f]{32}$/);
  // live: rows appear while the job runs, without reloading
  await until(async () => (await page.locator('[data-testid=leaderboard-row]').count()) >= 1, 'a first leaderboard row', 60000);
  await until(async () => (await page.getAttribute('[data-testid=job-status]', 'data-status')) === 'succeeded', 'the job to succeed', 90000);
  assert.equal(await page.locator('[data-testid=leaderboard-row]').count(), 6);
  assert.match(await page.textContent('[data-testid=best-model-link]'), /penguins-species v1/);
  const best = Number(await page.textContent('[data-testid=best-score]'));
  assert.ok(best > 0.9, `penguins accuracy ${best}`);
  assert.ok(Number(await page.getAttribute('[data-testid=score-chart]', 'data-candidates')) >= 5, 'every finished candidate is plotted');
  // the reports render in the page, with their plots, sandboxed
  await page.locator('[data-testid=report-frame]').waitFor();
  assert.equal(await page.getAttribute('[data-testid=report-frame]', 'sandbox'), '');
  const tabs = await page.$$eval('[data-testid=report-tab]', (bs) => bs.map((b) => b.dataset.report));
  assert.deepEqual(tabs.sort(), ['data_exploration', 'model_quality']);
  const frame = page.frameLocator('[data-testid=report-frame]');
  await frame.locator('svg').first().waitFor();
  assert.match(await frame.locator('body').textContent(), /Confusion matrix/i);
  assert.ok((await frame.locator('svg').count()) >= 4, 'model-quality plots');
  // the bias section, and Clarify's analysis.json beside the reports
  assert.match(await frame.locator('#bias').textContent(), /Bias \(Clarify metrics\)[\s\S]*DPPL/);
  const biasHref = await page.getAttribute('[data-testid=download-bias]', 'href');
  const analysis = await (await fetch(server.url + biasHref)).json();
  const post = analysis.post_training_bias_metrics.facets.sex[0];
  assert.equal(post.value_or_threshold, 'female');
  assert.ok(post.metrics.some((m) => m.name === 'DPPL' && typeof m.value === 'number'), JSON.stringify(post.metrics));
  await page.click('[data-testid=report-tab][data-report=data_exploration]');
  await until(async () => /Insights/i.test(await frame.locator('body').textContent().catch(() => '')), 'the data report');
  assert.match(await frame.locator('body').textContent(), /344/);
  // the notebook downloads as valid nbformat 4 JSON
  const nbHref = await page.getAttribute('[data-testid=download-notebook]', 'href');
  const nb = await (await fetch(server.url + nbHref)).json();
  assert.equal(nb.nbformat, 4);
  assert.ok(nb.cells.some((c) => c.cell_type === 'code' && /atelier/.test([].concat(c.source).join(''))));
  await shot('autopilot-job');
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await page.screenshot({ path: '/tmp/studio-autopilot-reports.png', fullPage: false });
  // the registered model version links back here
  await page.click('[data-testid=best-model-link]');
  await page.waitForURL(/\/models\/penguins-species\/versions\/1$/);
  await page.goBack();
  // the jobs page lists it
  await page.goto(server.url + '/jobs');
  await page.locator('[data-testid=jobs-table]').waitFor();
  assert.match(await page.textContent('[data-testid=jobs-table]'), /penguins\.csv → species/);
});

test('bad input gets a clear message in the form', async () => {
  await page.goto(server.url + '/autopilot');
  await until(async () => (await page.locator('[data-testid=dataset-select] option').count()) > 1, 'the dataset list');
  await page.selectOption('[data-testid=dataset-select]', 'penguins.csv');
  await page.locator('[data-testid=preview-column]').first().waitFor();
  await page.selectOption('[data-testid=target-select]', 'species');
  await page.fill('[data-testid=budget-input]', '0');
  await page.click('[data-testid=start-automl]');
  await page.locator('[data-testid=automl-error]').waitFor();
  assert.match(await page.textContent('[data-testid=automl-error]'), /time_budget must be a positive/);
  await page.fill('[data-testid=budget-input]', '30');
  await page.selectOption('[data-testid=metric-select]', 'rmse');
  await page.click('[data-testid=start-automl]');
  await until(async () => /does not fit a multiclass problem/.test(await page.textContent('[data-testid=automl-error]')), 'the metric error');
  // a facet value the data lacks is refused before any search, with the values it has
  await page.selectOption('[data-testid=metric-select]', '');
  await page.selectOption('[data-testid=facet-select]', 'island');
  await page.fill('[data-testid=facet-values-input]', 'Atlantis');
  await page.fill('[data-testid=label-values-input]', 'Adelie');
  await page.click('[data-testid=start-automl]');
  await until(async () => /has no value 'Atlantis'/.test(await page.textContent('[data-testid=automl-error]')), 'the facet error');
  // the three refusals above are 400s in the console, as they should be
  const expected = errors.filter((e) => /status of 400/.test(e));
  assert.equal(expected.length, 3);
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
  // an unsupported file is refused at upload
  const r = await api('PUT', '/api/atelier/datasets/report.xlsx', 'a,b\n1,2\n');
  assert.equal(r.status, 400);
  assert.match(r.body.message, /not a supported file/);
});

test('a running job can be cancelled from its page', async () => {
  const csv = readFileSync(join(DATASETS, 'adult.csv'));
  assert.equal((await api('PUT', '/api/atelier/datasets/adult.csv', new Uint8Array(csv))).status, 201);
  const r = await api('POST', '/api/atelier/automl', { dataset: 'adult.csv', target: 'income', time_budget: 600, max_candidates: 200 });
  assert.equal(r.status, 202);
  const id = r.body.job.id;
  await page.goto(server.url + '/autopilot/' + id);
  await until(async () => (await page.getAttribute('[data-testid=job-status]', 'data-status')) === 'running', 'the job to run', 60000);
  await page.click('[data-testid=cancel-job]');
  await until(async () => (await page.getAttribute('[data-testid=job-status]', 'data-status')) === 'cancelled', 'the job to be cancelled', 60000);
  const job = (await api('GET', '/api/atelier/jobs/' + id)).body.job;
  assert.equal(job.status, 'cancelled');
  assert.equal(job.result && job.result.model_version, undefined, 'a cancelled job registers nothing');
});
