// The Studio's API page renders the server's generated OpenAPI document: every operation the route
// table declares (with MLflow's aliases when asked for), grouped by area, filterable, each with its
// role and, unfolded, its parameters; the layout holds at 1280, 1400 and 1920 px.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, until, call, fullShot } from './harness.mjs';
import { checkLayout } from './layout.mjs';

let server, browser, page;
const errors = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const rows = () => page.locator('[data-testid=api-op]');

test('the API page lists every declared operation by area, with its role and parameters', async () => {
  const routes = (await call(server.url, 'GET', '/api/atelier/routes')).body.routes;
  await page.goto(server.url + '/api');
  await page.locator('[data-testid=api-op]').first().waitFor();
  assert.equal(await page.getAttribute('[data-testid=nav-api]', 'aria-current'), 'page');
  const tags = await page.$$eval('[data-testid=api-tag]', (els) => els.map((e) => e.dataset.tag));
  for (const area of ['jobs', 'datasets', 'automl', 'endpoints', 'monitoring-schedules', 'notebooks', 'mlflow']) {
    assert.ok(tags.includes(area), `no ${area} section: ${tags}`);
  }
  // Atelier's own areas come before MLflow's protocol
  assert.ok(tags.indexOf('jobs') < tags.indexOf('mlflow'), String(tags));
  // MLflow's aliases are folded away by default, and all there when asked for
  const folded = await rows().count();
  assert.ok(folded < routes.length, `${folded} of ${routes.length}`);
  await page.check('[data-testid=api-aliases]');
  await until(async () => (await rows().count()) === routes.length, `all ${routes.length} operations`);
  assert.equal(await page.textContent('[data-testid=api-count]'), `${routes.length} of ${routes.length} operations`);
  await page.uncheck('[data-testid=api-aliases]');

  // the filter narrows to one operation, whose details say what to send
  await page.fill('[data-testid=api-filter]', 'GET /api/atelier/jobs/{id}/logs'.split(' ')[1]);
  await until(async () => (await rows().count()) === 1, 'one operation for the logs path');
  const op = rows().first();
  assert.equal(await op.getAttribute('data-method'), 'get');
  assert.equal(await op.locator('td.api-role').innerText().then((t) => t.trim().split(/\s/)[0]), 'viewer');
  await op.locator('[data-testid=api-toggle]').click();
  const detail = page.locator('[data-testid=api-detail]').first();
  await detail.waitFor();
  assert.match(await detail.textContent(), /operationId\s*logs/);
  assert.match(await detail.textContent(), /parameters\s*id \(path\)/);
  await page.fill('[data-testid=api-filter]', 'no such operation at all');
  await until(async () => (await rows().count()) === 0, 'no operation');
  assert.match(await page.textContent('[data-testid=api-sections]'), /No operation matches/);

  await page.fill('[data-testid=api-filter]', '');
  await until(async () => (await rows().count()) === folded, 'the full list again');
  await checkLayout(page, { label: 'API (/api)' });
  await fullShot(page, '/tmp/studio-api.png');
  assert.deepEqual(errors, []);
});
