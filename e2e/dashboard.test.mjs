// The Model Dashboard and model cards in the Studio (issue 15): an Autopilot model deployed with two
// weighted variants, real traffic, a data-quality schedule with an execution and a batch transform,
// all on one dashboard; then a model card's life on that version — created from lineage and the
// model-quality report, edited, sent back with a comment, approved — while the model requires an
// Approved card: deploying is refused before approval and goes through after. Layout at 1280 and 1920.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, newPage, ROOT, until, fullShot, call, waitJob, layoutProblems } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-dashboard-${name}.png`, 6000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);
const MODEL = 'penguins-species';
const CARD = `/models/${MODEL}/card/1`;
const OVERLAP = ['.md-grid', '.md-monitors', '.md-head', '.facts', '.md-fields', '.md-flow'];

let server, browser, page, automlJob;
const errors = [];

async function layoutAt(what) {
  for (const width of [1280, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(100);
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `${what} at ${width} px`);
  }
  await page.setViewportSize({ width: 1360, height: 900 });
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  const csv = readFileSync(join(ROOT, 'datasets', 'penguins.csv'));
  assert.equal((await api('PUT', '/api/atelier/datasets/penguins.csv', new Uint8Array(csv), { 'Content-Type': 'text/csv' })).status, 201);
  const r = await api('POST', '/api/atelier/automl', { dataset: 'penguins.csv', target: 'species', time_budget: 40, max_candidates: 2 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitJob(server.url, r.body.job.id, 150000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.result.model_name, MODEL);
  assert.ok(job.result.reports.model_quality, 'Autopilot wrote its model-quality report');
  automlJob = job;
  // a model nobody deployed
  assert.equal((await api('POST', '/api/2.0/mlflow/registered-models/create', { name: 'shelf-model' })).status, 200);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  // 4xx answers the tests provoke on purpose show up as failed resources
  const real = errors.filter((e) => !/Failed to load resource|EventSource/.test(e));
  assert.deepEqual(real, [], 'no uncaught errors in the pages');
});

test('the dashboard shows a deployed model: endpoints and traffic, monitors, batch transform, card', async () => {
  let r = await api('POST', '/api/atelier/endpoints', {
    name: 'penguins',
    variants: [{ name: 'main', model: `models:/${MODEL}/1`, weight: 3 }, { name: 'canary', model: `models:/${MODEL}/1`, weight: 1 }],
    data_capture: { sampling_percentage: 100 },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const lines = readFileSync(join(ROOT, 'datasets', 'penguins.csv'), 'utf8').trim().split('\n');
  const header = lines[0].split(',').slice(1).join(',');
  const t0 = Date.now() - 1000;
  for (const row of lines.slice(1, 9)) {
    const res = await fetch(server.url + '/endpoints/penguins/invocations', {
      method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: header + '\n' + row.split(',').slice(1).join(',') + '\n',
    });
    assert.equal(res.status, 200, await res.text());
  }
  // a data-quality schedule (yearly: no cron firing during the test) and one execution over that traffic
  r = await api('POST', '/api/atelier/monitoring-schedules', { name: 'penguins-dq', endpoint: 'penguins', cron: '0 0 1 1 *' });
  assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
  await until(async () => (await api('GET', '/api/atelier/endpoints/penguins/capture?from_ms=' + t0)).body.records.length >= 8, 'captured records');
  r = await api('POST', '/api/atelier/monitoring-schedules/penguins-dq/run', { window_start_ms: t0, window_end_ms: Date.now() + 1000 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const exec = await waitJob(server.url, r.body.job.id, 60000);
  assert.equal(exec.status, 'succeeded', JSON.stringify(exec));
  const alerting = (await api('GET', '/api/atelier/monitoring-schedules/penguins-dq')).body.schedule.alerting;
  // a batch transform of the same version
  r = await api('POST', '/api/atelier/jobs', { kind: 'batch-transform', spec: { model: `models:/${MODEL}/1`, dataset: 'penguins.csv' } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const batch = await waitJob(server.url, r.body.job.id, 60000);
  assert.equal(batch.status, 'succeeded', JSON.stringify(batch));

  await page.goto(server.url + '/dashboard');
  const m = page.locator(`[data-testid=dash-model][data-name="${MODEL}"]`);
  await m.waitFor();
  assert.equal(await m.getAttribute('data-in-production'), 'yes');
  assert.equal(await page.getAttribute('[data-testid=dash-model][data-name=shelf-model]', 'data-in-production'), 'no');
  assert.equal(await page.textContent('[data-testid=dash-count-models] b'), '2');
  assert.equal(await page.textContent('[data-testid=dash-count-production] b'), '1');
  // versions in production and their endpoint
  assert.match(await m.locator('[data-testid=dash-prod-version][data-version="1"]').textContent(), /^v1 → penguins No card$/);
  // endpoint, its traffic split (3:1) and this server's request counts
  const ep = m.locator('[data-testid=dash-endpoint][data-name=penguins]');
  assert.equal(await ep.locator('[data-testid=dash-endpoint-status]').textContent(), 'InService');
  assert.equal(await ep.locator('[data-variant=main] [data-testid=dash-share]').textContent(), '75 %');
  assert.equal(await ep.locator('[data-variant=canary] [data-testid=dash-share]').textContent(), '25 %');
  assert.equal(await ep.locator('[data-testid=traffic-bar] rect').count(), 2);
  const served = async (re) => {
    let total = 0;
    for (const t of await ep.locator('[data-testid=dash-requests]').allTextContents()) total += Number(re.exec(t)[1]);
    return total;
  };
  assert.equal(await served(/· (\d+) total/), 8, 'every invocation is counted on one variant or the other');
  assert.equal(await served(/^(\d+) in 5 min/), 8, 'and all of them are recent');
  // monitors: data quality scheduled with its execution and verdict; the others not scheduled
  const dq = m.locator('[data-testid=monitor-data_quality]');
  assert.equal(await dq.getAttribute('data-status'), 'Scheduled');
  assert.equal(await dq.getAttribute('data-alert'), alerting ? 'InAlert' : 'OK');
  assert.match(await dq.locator('[data-testid=monitor-last]').textContent(), /last: succeeded · (ok|violations)/);
  for (const k of ['model_quality', 'bias', 'explainability']) {
    assert.equal(await m.locator(`[data-testid=monitor-${k}]`).getAttribute('data-status'), 'NotScheduled', k);
    assert.match(await m.locator(`[data-testid=monitor-${k}]`).textContent(), /not scheduled/);
  }
  // the last batch transform, linked to its job
  assert.match(await m.locator('[data-testid=dash-batch]').textContent(), /succeeded.*344 rows/s);
  assert.equal(await m.locator('[data-testid=dash-batch] a').getAttribute('href'), '/jobs/' + batch.id);
  // no card yet, and the card link goes to the card page of the served version
  assert.equal(await m.locator('[data-testid=dash-card-status]').textContent(), 'No card');
  assert.equal(await m.locator('[data-testid=dash-card-link]').getAttribute('href'), CARD);
  // the filter
  await page.fill('[data-testid=dash-filter]', 'shelf');
  await until(async () => (await page.locator('[data-testid=dash-model]').count()) === 1, 'the filter');
  await page.fill('[data-testid=dash-filter]', '');
  await page.check('[data-testid=dash-only-production]');
  await until(async () => (await page.locator('[data-testid=dash-model]').count()) === 1, 'only models in production');
  assert.equal(await page.getAttribute('[data-testid=dash-model]', 'data-name'), MODEL);
  await page.uncheck('[data-testid=dash-only-production]');
  await shot('overview');
  await layoutAt('the dashboard');
  // one light call: the whole page came from /api/atelier/dashboard
  const d = (await api('GET', '/api/atelier/dashboard')).body;
  assert.deepEqual(d.monitor_types, ['data_quality', 'model_quality', 'bias', 'explainability']);
  assert.equal(d.models.find((x) => x.name === MODEL).last_batch_transform.id, batch.id);
});

test("a model card's life: deploy refused until the card is approved, then allowed", async () => {
  // from the version page to its card
  await page.goto(server.url + `/models/${MODEL}/versions/1`);
  await page.locator('[data-testid=lineage-card] a').click();
  await page.waitForURL('**' + CARD);
  await page.locator('[data-testid=card-missing]').waitFor();
  // the model requires an Approved card from now on
  await page.check('[data-testid=card-rule]');
  await until(async () => (await api('GET', `/api/atelier/model-card-requirements/${MODEL}`)).body.requirement.require_approved_card, 'the rule saved');
  // deploying without a card is refused with what to do
  await page.goto(server.url + `/models/${MODEL}/versions/1`);
  await page.fill('[data-testid=deploy-name]', 'gated');
  await page.click('[data-testid=deploy-button]');
  await page.locator('[data-testid=deploy-error]').waitFor();
  assert.match(await page.textContent('[data-testid=deploy-error]'), /requires an Approved model card.*v1 has no card: create one/);
  // create the card: training details from lineage, evaluation from the model-quality report
  await page.goto(server.url + CARD);
  await page.click('[data-testid=card-create]');
  await page.locator('[data-testid=card-status]').filter({ hasText: 'Draft' }).waitFor();
  assert.equal(await page.getAttribute('[data-testid=card-run]', 'href'), '/runs/' + automlJob.result.run_id);
  assert.equal(await page.getAttribute('[data-testid=card-job]', 'href'), '/autopilot/' + automlJob.id);
  assert.match(await page.textContent('[data-testid=card-datasets]'), /penguins\.csv/);
  assert.match(await page.textContent('[data-testid=card-eval-name]'), /Autopilot model-quality report/);
  assert.equal(await page.getAttribute('[data-testid=card-report]', 'href'), `/api/atelier/jobs/${automlJob.id}/reports/model_quality`);
  assert.ok((await page.locator('[data-testid=card-metric-bars] rect').count()) >= 2, 'evaluation metrics are plotted');
  assert.match(await page.textContent('[data-testid=card-value-risk_rating]'), /Unknown/);
  // still refused: the card is a Draft
  let r = await api('POST', '/api/atelier/endpoints', { name: 'gated', model: `models:/${MODEL}/1` });
  assert.equal(r.status, 400);
  assert.match(r.body.message, /card of v1 is Draft/);
  // fill it in
  await page.click('[data-testid=card-edit]');
  await page.locator('[data-testid=card-field-purpose_of_model]').waitFor();
  await layoutAt('the card form');
  await page.fill('[data-testid=card-field-purpose_of_model]', 'Tell penguin species apart from bill and flipper measurements.');
  await page.selectOption('[data-testid=card-field-risk_rating]', 'Low');
  await page.click('[data-testid=card-save]');
  await page.locator('[data-testid=card-value-risk_rating]').filter({ hasText: 'Low' }).waitFor();
  assert.match(await page.textContent('[data-testid=card-value-purpose_of_model]'), /penguin species/);
  // submit; the reviewer sends it back — a comment is required — then it goes through
  await page.click('[data-testid=card-submit]');
  await page.locator('[data-testid=card-status]').filter({ hasText: 'PendingReview' }).waitFor();
  assert.equal(await page.locator('[data-testid=card-edit]').count(), 0, 'only a Draft is edited');
  await page.click('[data-testid=card-request-changes]');
  await page.locator('[data-testid=card-error]').waitFor();
  assert.match(await page.textContent('[data-testid=card-error]'), /say which in 'comment'/);
  await page.fill('[data-testid=card-comment]', 'name the factors that affect it');
  // a change elsewhere refreshes the page live: what is being typed survives it
  await api('POST', '/api/2.0/mlflow/experiments/create', { name: 'unrelated-' + Date.now() });
  await page.waitForTimeout(1500);
  assert.equal(await page.inputValue('[data-testid=card-comment]'), 'name the factors that affect it');
  await page.click('[data-testid=card-request-changes]');
  await page.locator('[data-testid=card-status]').filter({ hasText: 'Draft' }).waitFor();
  await page.click('[data-testid=card-edit]');
  await page.fill('[data-testid=card-field-factors_affecting_model_efficiency]', 'Islands not in the training data.');
  await page.click('[data-testid=card-save]');
  await page.locator('[data-testid=card-value-factors_affecting_model_efficiency]').filter({ hasText: 'Islands' }).waitFor();
  await page.click('[data-testid=card-submit]');
  await page.locator('[data-testid=card-status]').filter({ hasText: 'PendingReview' }).waitFor();
  // an edit made on an old revision is refused (someone else changed the card)
  r = await api('PATCH', `/api/atelier/model-cards/${MODEL}/1`, { revision: 1, content: { intended_uses: { risk_rating: 'High' } } });
  assert.equal(r.status, 400);
  await page.click('[data-testid=card-approve]');
  await page.locator('[data-testid=card-status]').filter({ hasText: 'Approved' }).waitFor();
  // the history: who, from where, what, in order
  const rows = page.locator('[data-testid=card-history-row]');
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.status).reverse()),
    ['Draft', 'Draft', 'PendingReview', 'Draft', 'Draft', 'PendingReview', 'Approved']);
  assert.deepEqual([...new Set(await page.locator('[data-testid=card-history-who]').allTextContents())], ['local']);
  const history = (await api('GET', `/api/atelier/model-cards/${MODEL}/1`)).body.model_card.history;
  assert.ok(history.every((e) => e.address === '127.0.0.1'), JSON.stringify(history));
  assert.deepEqual(history[1].changes.fields.map((f) => [f.field, f.to]).sort(),
    [['intended_uses.purpose_of_model', 'Tell penguin species apart from bill and flipper measurements.'], ['intended_uses.risk_rating', 'Low']]);
  assert.equal(history[3].changes.comment, 'name the factors that affect it');
  assert.match(await page.textContent('[data-testid=card-history]'), /PendingReview → Draft: “name the factors that affect it”/);
  await shot('card');
  await layoutAt('the model card');
  // an Approved card no longer changes; the only way on is Archived
  r = await api('PATCH', `/api/atelier/model-cards/${MODEL}/1`, { content: { intended_uses: { risk_rating: 'High' } } });
  assert.equal(r.status, 400);
  assert.match(r.body.message, /only a Draft card's content changes/);
  r = await api('POST', `/api/atelier/model-cards/${MODEL}/1/status`, { status: 'Draft', comment: 'x' });
  assert.equal(r.status, 400);
  assert.match(r.body.message, /can only be Archived/);
  // now the deploy goes through, from the same form
  await page.goto(server.url + `/models/${MODEL}/versions/1`);
  await page.fill('[data-testid=deploy-name]', 'gated');
  await page.click('[data-testid=deploy-button]');
  await page.locator('[data-testid=deploy-done]').waitFor();
  // and the dashboard says so
  await page.goto(server.url + '/dashboard');
  const m = page.locator(`[data-testid=dash-model][data-name="${MODEL}"]`);
  await m.locator('[data-testid=dash-card-status]').filter({ hasText: 'Approved' }).waitFor();
  await m.locator('[data-testid=dash-rule]').waitFor();
  assert.equal(await m.locator('[data-testid=dash-endpoint]').count(), 2);
  assert.equal(await page.textContent('[data-testid=dash-count-approved] b'), '1');
  await layoutAt('the dashboard with two endpoints');
});
