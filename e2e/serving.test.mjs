// Registry and endpoints in the Studio: a model trained by `atelier train` and registered with lineage
// tags, deployed from its version page, invoked from the endpoint page, weights shifted between two
// variants, charts and captured data shown, batch transform run as a job; bad input shown as errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, newPage, ROOT, until, fullShot, call } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-${name}.png`, 5000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);

const DATASETS = join(ROOT, 'datasets');
const BIN = resolve(ROOT, process.env.ATELIER_BIN || 'target/debug/atelier');
let server, browser, page, tmp;
const errors = [];

const ROW = 'Biscoe,50.0,15.0,220.0,5000.0,male,2008';

before(async () => {
  server = await startServer();
  tmp = mkdtempSync(join(tmpdir(), 'atelier-serving-e2e-'));
  const model = join(tmp, 'penguins.model');
  execFileSync(BIN, ['train', join(DATASETS, 'penguins.csv'), '--target', 'species', '--param', 'n_estimators=20', '-o', model], { stdio: 'pipe' });
  let r = await api('PUT', '/api/2.0/mlflow-artifacts/artifacts/models/penguins/pipeline.atelier', new Uint8Array(readFileSync(model)));
  assert.equal(r.status, 200);
  r = await api('POST', '/api/2.0/mlflow/registered-models/create', { name: 'penguins', description: 'species from measurements' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  for (let i = 0; i < 2; i++) {
    r = await api('POST', '/api/2.0/mlflow/model-versions/create', {
      name: 'penguins', source: 'mlflow-artifacts:/models/penguins',
      tags: [{ key: 'atelier.dataset', value: 'penguins.csv' }, { key: 'atelier.job_id', value: 'job' + i }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  r = await api('POST', '/api/2.0/mlflow/registered-models/alias', { name: 'penguins', alias: 'champion', version: '1' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const csv = readFileSync(join(DATASETS, 'penguins.csv'));
  assert.equal((await api('PUT', '/api/atelier/datasets/penguins.csv', new Uint8Array(csv))).status, 201);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  // 4xx answers the tests provoke on purpose show up as failed resources
  const real = errors.filter((e) => !/Failed to load resource|EventSource/.test(e));
  assert.deepEqual(real, [], 'no uncaught errors in the pages');
});

test('registry pages: models, versions with aliases, and lineage', async () => {
  await page.goto(server.url + '/models');
  const row = page.locator('[data-testid=model-row][data-name=penguins]');
  await row.waitFor();
  await row.locator('a', { hasText: 'penguins' }).click();
  await page.waitForURL('**/models/penguins');
  await page.locator('[data-testid=version-row]').first().waitFor();
  assert.equal(await page.locator('[data-testid=version-row]').count(), 2);
  assert.match(await page.locator('[data-testid=model-description]').textContent(), /species from measurements/);
  assert.match(await page.locator('[data-testid=version-row][data-version="1"]').textContent(), /@champion/);
  await shot('serving-model');
  await page.locator('[data-testid=version-row][data-version="1"] [data-testid=version-link]').click();
  await page.waitForURL('**/models/penguins/versions/1');
  await page.locator('[data-testid=lineage-dataset]').waitFor();
  assert.match(await page.locator('[data-testid=lineage-dataset]').textContent(), /penguins\.csv/);
  assert.equal(await page.locator('[data-testid=lineage-job] a').getAttribute('href'), '/autopilot/job0');
  assert.match(await page.locator('[data-testid=version-alias]').textContent(), /@champion/);
  assert.match(await page.locator('[data-testid=lineage-endpoints]').textContent(), /none/);
});

test('deploy from the version page; the endpoint answers and lineage goes both ways', async () => {
  await page.goto(server.url + '/models/penguins/versions/1');
  await page.locator('[data-testid=deploy-name]').fill('peng');
  await page.locator('[data-testid=deploy-button]').click();
  await page.locator('[data-testid=deploy-done]').waitFor();
  await until(async () => (await page.locator('[data-testid=serving-endpoint]').count()) === 1, 'the version lists its endpoint');
  await shot('serving-version');
  const r = await fetch(server.url + '/endpoints/peng/invocations', { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: ROW });
  assert.equal(r.status, 200);
  assert.match(await r.text(), /^predicted_label,probability_Adelie/);
  // a deploy mistake is shown, not swallowed
  await page.locator('[data-testid=deploy-name]').fill('bad name!');
  await page.locator('[data-testid=deploy-button]').click();
  assert.match(await page.locator('[data-testid=deploy-error]').textContent(), /invalid endpoint name/);
  // endpoint → version
  await page.locator('[data-testid=serving-endpoint]').click();
  await page.waitForURL('**/endpoints/peng');
  await page.locator('[data-testid=variant-row]').waitFor();
  assert.equal(await page.locator('[data-testid=variant-row] [data-testid=version-link]').getAttribute('href'), '/models/penguins/versions/1');
});

test('endpoint page: invoke, charts, captured data, and weights shifted between variants', async () => {
  assert.equal((await api('PUT', '/api/atelier/endpoints/peng', { data_capture: { enabled: true, sampling_percentage: 100 } })).status, 200);
  await page.goto(server.url + '/endpoints/peng');
  await page.locator('[data-testid=variant-row]').waitFor();
  assert.match(await page.locator('[data-testid=endpoint-capture]').textContent(), /100 %/);
  await page.locator('[data-testid=try-payload]').fill(ROW);
  await page.locator('[data-testid=try-button]').click();
  await until(async () => (await page.locator('[data-testid=try-answer]').getAttribute('data-status')) === '200', 'an answer');
  assert.match(await page.locator('[data-testid=try-answer]').textContent(), /"predicted_label": "Gentoo"/);
  // a bad payload answers 400 with the reason
  await page.locator('[data-testid=try-payload]').fill('Biscoe,abc,15.0,220.0,5000.0,male,2008');
  await page.locator('[data-testid=try-button]').click();
  await until(async () => (await page.locator('[data-testid=try-answer]').getAttribute('data-status')) === '400', 'a 400');
  assert.match(await page.locator('[data-testid=try-answer]').textContent(), /needs a number/);
  // a second variant (version 2), then move all traffic to it from the page
  const add = await api('PUT', '/api/atelier/endpoints/peng', { variants: [
    { name: 'AllTraffic', model: 'models:/penguins/1', weight: 1 },
    { name: 'v2', model: 'models:/penguins/2', weight: 1 },
  ] });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  await page.reload();
  await until(async () => (await page.locator('[data-testid=variant-row]').count()) === 2, 'two variants');
  assert.deepEqual(await page.locator('[data-testid=variant-share]').allTextContents(), ['50 %', '50 %']);
  await page.locator('[data-testid=weight-input][data-variant=AllTraffic]').fill('0');
  await page.locator('[data-testid=weight-input][data-variant=v2]').fill('3');
  await page.locator('[data-testid=save-weights]').click();
  await page.locator('[data-testid=weights-saved]').waitFor();
  await until(async () => JSON.stringify(await page.locator('[data-testid=variant-share]').allTextContents()) === '["0 %","100 %"]', 'the new split');
  for (let i = 0; i < 20; i++) {
    const r = await fetch(server.url + '/endpoints/peng/invocations', { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: ROW });
    assert.equal(r.headers.get('x-atelier-invoked-variant'), 'v2');
  }
  // the 5-second history and the capture files appear without a reload
  await until(async () => Number(await page.locator('[data-testid=variant-row][data-name=v2] [data-testid=variant-requests]').textContent()) === 20, 'v2 counts 20 requests', 15000);
  await until(async () => Number(await page.locator('[data-testid=endpoint-chart][data-chart=requests] .chart').getAttribute('data-points')) > 0, 'points on the requests chart', 15000);
  await until(async () => (await page.locator('[data-testid=capture-row]').count()) >= 10, 'captured rows', 15000);
  await shot('serving-endpoint');
  // the endpoint list
  await page.goto(server.url + '/endpoints');
  await page.locator('[data-testid=endpoint-row][data-name=peng]').waitFor();
  assert.ok(Number(await page.locator('[data-testid=endpoint-row][data-name=peng] [data-testid=endpoint-requests]').textContent()) >= 21);
  await page.locator('[data-testid=new-endpoint-name]').fill('other');
  await page.locator('[data-testid=new-endpoint-model]').fill('models:/nope/1');
  await page.locator('[data-testid=create-endpoint]').click();
  assert.match(await page.locator('[data-testid=create-error]').textContent(), /nope/);
  await shot('serving-endpoints');
});

test('batch transform from the version page runs as a job', async () => {
  await page.goto(server.url + '/models/penguins/versions/2');
  await until(async () => (await page.locator('[data-testid=batch-dataset] option').count()) > 0 && (await page.locator('[data-testid=batch-dataset]').inputValue()) === 'penguins.csv', 'the dataset list');
  await page.locator('[data-testid=batch-button]').click();
  await until(async () => (await page.locator('[data-testid=batch-status]').getAttribute('data-status')) === 'succeeded', 'the job to succeed', 60000);
  assert.match(await page.locator('[data-testid=batch-status]').textContent(), /344 rows, 0 failed/);
  const href = await page.locator('[data-testid=batch-output]').getAttribute('href');
  const out = await (await fetch(server.url + href)).text();
  assert.equal(out.trim().split('\n').length, 345);
  assert.match(out, /^predicted_label,probability_Adelie,probability_Chinstrap,probability_Gentoo\n/);
});
