// Shadow tests on the endpoint page (issue 15 §3): two models trained by `atelier train` and
// registered; a shadow test started from the page (its mistakes shown), live traffic compared
// (agreement for classification, the distribution of differences for regression, latency and
// errors of both sides, charts), promoted from the page, and a test that ends by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, newPage, ROOT, until, fullShot, call, layoutProblems } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-${name}.png`, 5000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);

const DATASETS = join(ROOT, 'datasets');
const BIN = resolve(ROOT, process.env.ATELIER_BIN || 'target/debug/atelier');
const OVERLAP = ['.page-head', '.facts', '.serving-form', '.charts'];
let server, browser, page, tmp;
const errors = [];

/** Train `file` on `target` with `trees` trees and register it as the next version of `name`. */
async function register(name, file, target, trees, extra = []) {
  const model = join(tmp, `${name}-${trees}.model`);
  execFileSync(BIN, ['train', join(DATASETS, file), '--target', target, '--param', `n_estimators=${trees}`, '--param', 'early_stopping_rounds=0', ...extra, '-o', model], { stdio: 'pipe' });
  const dir = `models/${name}-${trees}`;
  let r = await api('PUT', `/api/2.0/mlflow-artifacts/artifacts/${dir}/pipeline.atelier`, new Uint8Array(readFileSync(model)));
  assert.equal(r.status, 200);
  r = await api('POST', '/api/2.0/mlflow/registered-models/create', { name });
  assert.ok(r.status === 200 || r.status === 400, JSON.stringify(r.body));
  r = await api('POST', '/api/2.0/mlflow/model-versions/create', { name, source: `mlflow-artifacts:/${dir}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.model_version.version;
}

/** The dataset's rows without its target column, header first. */
function rows(file, target, from, n) {
  const lines = readFileSync(join(DATASETS, file), 'utf8').trim().split('\n');
  const ti = lines[0].split(',').indexOf(target);
  const strip = (l) => l.split(',').filter((_, i) => i !== ti).join(',');
  return [strip(lines[0]), ...lines.slice(1 + from, 1 + from + n).map(strip)].join('\n');
}

async function invoke(endpoint, body) {
  const r = await fetch(`${server.url}/endpoints/${endpoint}/invocations`, { method: 'POST', headers: { 'Content-Type': 'text/csv', Accept: 'application/json' }, body });
  return { status: r.status, variant: r.headers.get('x-atelier-invoked-variant'), text: await r.text() };
}

before(async () => {
  server = await startServer();
  tmp = mkdtempSync(join(tmpdir(), 'atelier-shadow-e2e-'));
  assert.equal(await register('penguins', 'penguins.csv', 'species', 20), '1');
  assert.equal(await register('penguins', 'penguins.csv', 'species', 1), '2');
  const reg = ['--problem-type', 'regression'];
  assert.equal(await register('wine', 'wine_quality.csv', 'quality', 20, reg), '1');
  assert.equal(await register('wine', 'wine_quality.csv', 'quality', 3, reg), '2');
  let r = await api('POST', '/api/atelier/endpoints', { name: 'peng', model: 'models:/penguins/1' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await api('POST', '/api/atelier/endpoints', { name: 'wine', model: 'models:/wine/1' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  // 4xx answers the tests provoke on purpose show up as failed resources
  const real = errors.filter((e) => !/Failed to load resource|EventSource/.test(e));
  assert.deepEqual(real, [], 'no uncaught errors in the pages');
});

test('classification: start from the page, compare live traffic, promote without a failed request', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(server.url + '/endpoints/peng');
  await page.locator('[data-testid=shadow-form]').waitFor();
  // mistakes are shown with what to fix
  await page.locator('[data-testid=shadow-model]').fill('models:/penguins/2');
  await page.locator('[data-testid=shadow-share]').fill('150');
  await page.locator('[data-testid=shadow-start]').click();
  assert.match(await page.locator('[data-testid=shadow-error]').textContent(), /at most 100/);
  await page.locator('[data-testid=shadow-model]').fill('models:/penguins/9');
  await page.locator('[data-testid=shadow-share]').fill('100');
  await page.locator('[data-testid=shadow-start]').click();
  await until(async () => /penguins/.test(await page.locator('[data-testid=shadow-error]').textContent()) && /9/.test(await page.locator('[data-testid=shadow-error]').textContent()), 'the unknown version named');
  // a real start
  await page.locator('[data-testid=shadow-model]').fill('models:/penguins/2');
  await page.locator('[data-testid=shadow-minutes]').fill('10');
  await page.locator('[data-testid=shadow-start]').click();
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Running', 'the test running');
  assert.equal(await page.locator('[data-testid=shadow-form]').isHidden(), true);
  // live traffic: answers stay production's
  for (let i = 0; i < 30; i++) {
    const r = await invoke('peng', rows('penguins.csv', 'species', i * 10, 1 + (i % 4)));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.variant, 'AllTraffic');
  }
  assert.equal((await invoke('peng', 'island\nnowhere')).status, 400);
  // the comparison appears without a reload (the page polls)
  await until(async () => (await page.locator('[data-testid=shadow-compared] b').textContent()) === '30', 'the 30 requests compared', 20000);
  const agreement = await page.locator('[data-testid=shadow-agreement] b').textContent();
  assert.match(agreement, /^\d+(\.\d)? %$/);
  const api1 = (await api('GET', '/api/atelier/endpoints/peng/shadow')).body.comparison;
  assert.equal(agreement, (api1.agreement_rate * 100).toFixed(1) + ' %');
  assert.ok(api1.agreement_rate < 1, 'a one-tree model disagrees somewhere');
  assert.equal(await page.locator('[data-testid=shadow-side][data-side=production] [data-testid=shadow-errors]').textContent(), '1');
  assert.equal(await page.locator('[data-testid=shadow-side][data-side=shadow] [data-testid=shadow-errors]').textContent(), '1');
  assert.equal(await page.locator('[data-testid=shadow-dropped] b').textContent(), '0');
  await until(async () => Number(await page.locator('[data-testid=shadow-chart] .chart').first().getAttribute('data-points')) > 0, 'agreement points');
  assert.ok(await page.locator('[data-testid=shadow-latency-chart] [data-series=production]').count() > 0);
  assert.ok(await page.locator('[data-testid=shadow-latency-chart] [data-series=shadow]').count() > 0);
  for (const width of [1280, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(200);
    const problems = await layoutProblems(page, OVERLAP);
    if (problems.length) console.log(await page.evaluate(() => [...document.querySelectorAll('.table-wrap')].map((e) => (e.firstChild && e.firstChild.dataset.testid) + ' ' + e.scrollWidth + '/' + e.clientWidth).join('; ')));
    assert.deepEqual(problems, [], `the endpoint page at ${width}px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await shot('shadow-classification');

  // promote while a client keeps invoking: no request fails, answers switch to version 2
  const probe = rows('penguins.csv', 'species', 0, 3);
  const before = (await invoke('peng', probe)).text;
  let stop = false, n = 0;
  const failures = [];
  const answers = [];
  const clients = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const r = await invoke('peng', probe);
      n++;
      if (r.status !== 200) failures.push(r.status + ' ' + r.text);
      else answers.push(r.text);
    }
  });
  await page.locator('[data-testid=shadow-promote]').click();
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Promoted', 'promoted');
  await page.waitForTimeout(300);
  stop = true;
  await Promise.all(clients);
  assert.deepEqual(failures, [], `${failures.length} of ${n} requests failed`);
  assert.ok(n > 20, `only ${n} requests during the promotion`);
  const after = (await invoke('peng', probe)).text;
  assert.notEqual(after, before, 'the promoted model answers');
  assert.ok(answers.every((a) => a === before || a === after));
  await until(async () => (await page.locator('[data-testid=variant-row] [data-testid=version-link]').getAttribute('href')) === '/models/penguins/versions/2', 'the variant serves version 2');
  assert.equal(await page.locator('[data-testid=shadow-promote]').count(), 0);
  // the form is back for the next test
  await page.locator('[data-testid=shadow-form]').waitFor();
});

test('regression: the distribution of differences is plotted and a test ends by itself', async () => {
  // a classifier cannot shadow a regressor
  const wrong = await api('POST', '/api/atelier/endpoints/wine/shadow', { model: 'models:/penguins/1' });
  assert.equal(wrong.status, 400);
  assert.match(wrong.body.message, /does classification but variant 'AllTraffic' does regression/);
  const r = await api('POST', '/api/atelier/endpoints/wine/shadow', { model: 'models:/wine/2', sampling_percentage: 100, duration_seconds: 6 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await page.goto(server.url + '/endpoints/wine');
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Running', 'the test running');
  for (let i = 0; i < 12; i++) assert.equal((await invoke('wine', rows('wine_quality.csv', 'quality', i * 40, 5))).status, 200);
  await until(async () => (await page.locator('[data-testid=shadow-compared] b').textContent()) === '12', 'the 12 requests compared', 20000);
  assert.equal(await page.locator('[data-testid=shadow-chart]').getAttribute('data-kind'), 'differences');
  const bars = page.locator('[data-testid=shadow-chart] [data-testid=shadow-bar]');
  assert.equal(await bars.count(), 24);
  const shares = (await bars.evaluateAll((els) => els.map((e) => Number(e.dataset.value))));
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'the bins hold every compared row');
  const meanAbs = Number(await page.locator('[data-testid=shadow-mean-abs] b').textContent());
  assert.ok(meanAbs > 0, 'a 3-tree model differs from a 20-tree one');
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);
  await shot('shadow-regression');
  // the end time passes: the page says it ended, copies stop, the form is back
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Ended', 'the test to end by itself', 20000);
  assert.match(await page.locator('[data-testid=shadow-ends]').textContent(), /ended by itself/);
  await page.locator('[data-testid=shadow-form]').waitFor();
  for (let i = 0; i < 5; i++) assert.equal((await invoke('wine', rows('wine_quality.csv', 'quality', i, 2))).status, 200);
  await page.waitForTimeout(1500);
  const c = (await api('GET', '/api/atelier/endpoints/wine/shadow')).body.comparison;
  assert.equal(c.requests_copied, 12);
  assert.equal(c.status, 'Ended');
  // a new test from the form, stopped from the page
  await page.locator('[data-testid=shadow-model]').fill('models:/wine/2');
  await page.locator('[data-testid=shadow-share]').fill('50');
  await page.locator('[data-testid=shadow-start]').click();
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Running', 'the second test running');
  assert.match(await page.locator('[data-testid=shadow-status]').locator('..').textContent(), /50 % of its requests/);
  await page.locator('[data-testid=shadow-stop]').click();
  await until(async () => (await page.locator('[data-testid=shadow-status]').getAttribute('data-status')) === 'Stopped', 'stopped');
  await page.locator('[data-testid=shadow-form]').waitFor();
});

test('a model that requires an approved card: shadow tests run, promotion is refused with what to do', async () => {
  let r = await api('PUT', '/api/atelier/model-card-requirements/wine', { require_approved_card: true });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // the serving version has no card either: starting and stopping a test serve no other model
  r = await api('POST', '/api/atelier/endpoints/wine/shadow', { model: 'models:/wine/2', variant: 'candidate' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r = await api('POST', '/api/atelier/endpoints/wine/shadow/promote');
  assert.equal(r.status, 400);
  assert.match(r.body.message, /requires an Approved model card/);
  r = await api('DELETE', '/api/atelier/endpoints/wine/shadow');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.endpoint.shadow.status, 'Stopped');
  assert.equal(r.body.endpoint.variants[0].model, 'models:/wine/1');
  r = await api('PUT', '/api/atelier/model-card-requirements/wine', { require_approved_card: false });
  assert.equal(r.status, 200);
});
