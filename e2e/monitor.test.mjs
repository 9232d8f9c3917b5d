// Model Monitor in the Studio: an Autopilot model deployed with full data capture, a schedule created
// through the form, an empty window, a clean and a drifted window of real traffic; the pages show the
// alert, the executions over time, the drift series against its threshold, baseline-vs-current
// histograms, the violations and the webhook deliveries; retraining starts from the alert in one click.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, newPage, ROOT, until, fullShot, call } from './harness.mjs';
const shot = (name) => fullShot(page, `/tmp/studio-monitor-${name}.png`, 5000);
const api = (method, path, body, headers) => call(server.url, method, path, body, headers);

const DATASETS = join(ROOT, 'datasets');
let server, browser, page, hook;
const errors = [];
const hookCalls = [];
const scene = {};

async function waitJob(id, timeoutMs = 120000) {
  return until(async () => {
    const j = (await api('GET', '/api/atelier/jobs/' + id)).body.job;
    return j.status !== 'queued' && j.status !== 'running' ? j : null;
  }, 'job ' + id, timeoutMs);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const attr = (sel, name) => page.getAttribute(sel, name);

/** One invocation per row (CSV with a header, species dropped), each with an inference id. */
async function send(rows, header, tag) {
  for (let i = 0; i < rows.length; i++) {
    const res = await fetch(server.url + '/endpoints/penguins/invocations', {
      method: 'POST',
      headers: { 'Content-Type': 'text/csv', Accept: 'application/json', 'X-Atelier-Inference-Id': `${tag}-${i}` },
      body: header + '\n' + rows[i].slice(1).join(',') + '\n',
    });
    assert.equal(res.status, 200, await res.text());
  }
}
async function run(name, start, end) {
  const r = await api('POST', `/api/atelier/monitoring-schedules/${name}/run`, { window_start_ms: start, window_end_ms: end });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitJob(r.body.job.id, 60000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  return job;
}

before(async () => {
  // the webhook receiver below listens on loopback, which webhooks reach only when allowed
  server = await startServer(['--webhook-allowed-hosts', '127.0.0.1']);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
  // a webhook receiver that fails the first delivery, so the retry shows
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      hookCalls.push(body);
      res.writeHead(hookCalls.length === 1 ? 500 : 200).end();
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (hook) await new Promise((r) => hook.close(r));
  assert.deepEqual(errors, [], 'no page errors');
});

test('an Autopilot model serves penguins with every request captured', async () => {
  const csv = readFileSync(join(DATASETS, 'penguins.csv'));
  assert.equal((await api('PUT', '/api/atelier/datasets/penguins.csv', new Uint8Array(csv), { 'Content-Type': 'text/csv' })).status, 201);
  const r = await api('POST', '/api/atelier/automl', { dataset: 'penguins.csv', target: 'species', time_budget: 60, max_candidates: 3 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const job = await waitJob(r.body.job.id, 150000);
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.result.model_name, 'penguins-species');
  assert.ok(job.result.baseline, 'Autopilot stores a baseline with the model');
  const d = await api('POST', '/api/atelier/endpoints', { name: 'penguins', model: 'models:/penguins-species/1', data_capture: { sampling_percentage: 100 } });
  assert.equal(d.status, 200, JSON.stringify(d.body));
});

test('a schedule is created through the form; a bad cron is refused with what to fix', async () => {
  await page.goto(server.url + '/monitor');
  await page.locator('[data-testid=schedules-empty]').waitFor();
  assert.match(await page.textContent('[data-testid=schedules-empty]'), /No monitoring schedules yet/);
  // the only endpoint is picked and the name suggested from it
  await until(async () => (await page.inputValue('[data-testid=new-schedule-endpoint]')) === 'penguins', 'the endpoint choice');
  assert.equal(await page.inputValue('[data-testid=new-schedule-name]'), 'penguins-drift');
  assert.match(await page.textContent('[data-testid=endpoint-note]'), /penguins-species v1.*100 %/);
  assert.equal(await page.inputValue('[data-testid=new-schedule-cron]'), '0 * * * *');
  await page.fill('[data-testid=new-schedule-cron]', '61 * * * *');
  await page.click('[data-testid=create-schedule]');
  await page.locator('[data-testid=schedule-error]').waitFor();
  assert.match(await page.textContent('[data-testid=schedule-error]'), /minute/);
  // that refusal is a 400 in the console, as it should be
  assert.equal(errors.filter((e) => /status of 400/.test(e)).length, 1, errors.join('\n'));
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
  // yearly, so no cron firing lands in the middle of the test
  await page.fill('[data-testid=new-schedule-cron]', '0 0 1 1 *');
  await page.fill('[data-testid=new-schedule-webhook]', `http://127.0.0.1:${hook.address().port}/alerts`);
  await shot('form');
  await page.click('[data-testid=create-schedule]');
  await page.waitForURL(/\/monitor\/penguins-drift$/);
  await page.locator('[data-testid=executions-empty]').waitFor();
  assert.match(await page.textContent('[data-testid=executions-empty]'), /No executions yet.*Run now/);
  assert.equal(await attr('[data-testid=alert-state]', 'data-state'), 'unknown');
  assert.equal(await page.locator('[data-testid=retrain]').count(), 0, 'no Retrain without an alert');
});

test('Run now before any traffic gives a no-data window, shown as such', async () => {
  assert.match(page.url(), /\/monitor\/penguins-drift$/);
  await page.click('[data-testid=run-now]');
  await until(async () => (await attr('[data-testid=timeline-chart]', 'data-no-data')) === '1', 'the empty window on the timeline');
  await until(async () => (await page.locator('[data-testid=execution-row][data-status=no_data]').count()) === 1, 'the no-data row');
  assert.match(await page.textContent('[data-testid=features-empty]'), /No data in this window: no captured requests/);
  assert.match(await page.textContent('[data-testid=run-msg]'), /Queued:/);
  assert.equal(await page.locator('[data-testid=timeline-point][data-status=no_data]').count(), 1);
});

test('a clean and a drifted window: alert, drift series, histograms, violations, webhook', async () => {
  const lines = readFileSync(join(DATASETS, 'penguins.csv'), 'utf8').trim().split('\n');
  const header = lines[0].split(',').slice(1).join(',');
  const rows = lines.slice(1).map((l) => l.split(','));
  scene.rows = rows;
  const t0 = Date.now();
  await send(rows, header, 'same');
  await sleep(2500); // capture files are written about every second
  const t1 = Date.now();
  scene.cleanWindow = [t0, t1];
  // the same penguins, bills 12 mm longer, all on Dream
  const shifted = rows.map((r) => {
    const x = r.slice();
    x[1] = 'Dream';
    if (x[2] !== '' && Number.isFinite(Number(x[2]))) x[2] = (Number(x[2]) + 12).toFixed(1);
    return x;
  });
  await send(shifted, header, 'shifted');
  await sleep(2500);
  const t2 = Date.now();
  const clean = await run('penguins-drift', t0, t1);
  assert.equal(clean.result.status, 'ok', JSON.stringify(clean.result.violations));
  const drifted = await run('penguins-drift', t1, t2);
  assert.equal(drifted.result.status, 'violations');
  scene.clean = clean.id;
  scene.drifted = drifted.id;

  // the open page follows live: three executions, the newest alerting
  await until(async () => (await attr('[data-testid=timeline-chart]', 'data-executions')) === '3', 'three executions on the timeline');
  await until(async () => (await attr('[data-testid=alert-state]', 'data-state')) === 'alert', 'the alert');
  const tl = '[data-testid=timeline-chart]';
  assert.equal(await attr(tl, 'data-violations'), '1');
  assert.equal(await attr(tl, 'data-no-data'), '1');
  assert.equal(await page.locator(`${tl} [data-testid=timeline-point][data-status=violations]`).getAttribute('data-violations'), '2');
  assert.equal(await page.locator(`${tl} [data-testid=timeline-point][data-status=ok]`).count(), 1);

  // the drift statistic of bill_length_mm over the executions, against its threshold
  await page.selectOption('[data-testid=feature-select]', 'bill_length_mm');
  const dc = '[data-testid=drift-chart]';
  await until(async () => (await attr(dc, 'data-feature')) === 'bill_length_mm', 'the chosen feature');
  assert.equal(await attr(dc, 'data-points'), '2', 'one value per window with data');
  assert.equal(await attr(dc, 'data-threshold-points'), '2');
  assert.equal(await attr(dc, 'data-method'), 'ks');
  assert.equal(await page.locator(`${dc} [data-testid=threshold-line]`).count(), 1);
  assert.equal(await page.locator(`${dc} [data-testid=series]`).count(), 1);

  // histograms of baseline vs current for bill_length_mm: the current window sits to the right
  const hc = '[data-testid=hist-chart]';
  assert.equal(await attr(hc, 'data-feature'), 'bill_length_mm');
  assert.equal(await attr(hc, 'data-execution'), drifted.id);
  const bins = Number(await attr(hc, 'data-bins'));
  assert.ok(bins >= 5, `bins ${bins}`);
  const bars = async (series) => page.$$eval(`${hc} [data-testid=hist-bar][data-series=${series}]`, (bs) => bs.map((b) => Number(b.dataset.value)));
  const base = await bars('baseline'), cur = await bars('current');
  assert.equal(base.length, bins);
  assert.equal(cur.length, bins);
  const centre = (v) => v.reduce((a, x, i) => a + x * i, 0) / v.reduce((a, x) => a + x, 0);
  assert.ok(centre(cur) > centre(base) + 1, `current ${centre(cur)} vs baseline ${centre(base)}`);
  assert.ok(Math.abs(base.reduce((a, x) => a + x, 0) - 1) < 1e-6, 'baseline shares add up to 1');
  // hovering a bin tells both shares
  const box = await page.locator(`${hc} [data-testid=chart-overlay]`).boundingBox();
  await page.mouse.move(box.x + box.width * 0.95, box.y + box.height / 2);
  const tip = page.locator(`${hc} [data-testid=chart-tooltip]`);
  await tip.waitFor();
  assert.match(await tip.textContent(), /baseline.*%.*current.*%/);

  // the violations name exactly the shifted columns; the features table agrees
  const violated = await page.$$eval('[data-testid=violation-row]', (rs) => rs.map((r) => r.dataset.feature).sort());
  assert.deepEqual(violated, ['bill_length_mm', 'island']);
  assert.equal(await page.textContent('[data-testid=feature-row][data-name=bill_length_mm] [data-testid=drift-badge]'), 'drift');
  assert.equal(await page.textContent('[data-testid=feature-row][data-name=island] [data-testid=drift-badge]'), 'drift');
  assert.equal(await page.textContent('[data-testid=feature-row][data-name=bill_depth_mm] [data-testid=drift-badge]'), 'ok');
  // the webhook got the alert on its second attempt (the outbox retries after a backoff, off the
  // job workers), and the page shows both as they happen
  await until(async () => {
    const row = await page.$('[data-testid=delivery-row]');
    return row && /delivered.*500 → 200/.test(await row.textContent());
  }, 'the delivered webhook', 20000);
  assert.match(await page.textContent('[data-testid=delivery-row]'), /delivered.*500 → 200/);
  assert.ok(hookCalls.length >= 2 && JSON.parse(hookCalls[hookCalls.length - 1]).execution_id === drifted.id);
  await shot('schedule');

  // a click on the clean execution shows its window instead
  await page.click(`[data-testid=execution-row][data-id="${clean.id}"]`);
  await page.locator('[data-testid=violations-empty]').waitFor();
  assert.match(await page.textContent('[data-testid=violations-empty]'), /No violations in this window/);
  // (the schedule's list carries the newest histograms only: the page fetches this window's)
  await until(async () => (await attr(hc, 'data-execution')) === clean.id, 'the clean window\'s histogram');
  assert.match(page.url(), new RegExp('execution=' + clean.id));
  // and a feature picked from the table is plotted
  await page.click('[data-testid=feature-row][data-name=island]');
  await until(async () => (await attr(dc, 'data-feature')) === 'island', 'island plotted');
  assert.equal(await attr(dc, 'data-method'), 'chi2');
  assert.equal(await attr(hc, 'data-bins'), '3', 'one bar pair per island');
});

test('the list marks the alerting schedule', async () => {
  await page.goto(server.url + '/monitor');
  const row = page.locator('[data-testid=schedule-row][data-name=penguins-drift]');
  await row.waitFor();
  assert.equal(await row.locator('[data-testid=alert-badge]').textContent(), 'ALERT');
  assert.equal(await row.locator('[data-testid=execution-status]').getAttribute('data-status'), 'violations');
  assert.equal(await page.textContent('[data-testid=nav-monitor-alert]'), '1');
  await shot('list');
  // other pages carry the mark too
  await page.goto(server.url + '/endpoints');
  await until(async () => (await page.locator('[data-testid=nav-monitor-alert]').count()) === 1, 'the navigation mark');
});

test('from the alert, Retrain starts an Autopilot job and compares its model with the serving one', async () => {
  // ground truth for the clean traffic, so the captured requests can be trained on
  const labels = scene.rows.map((r, i) => JSON.stringify({ inferenceId: `same-${i}`, label: r[0] })).join('\n');
  const up = await api('POST', '/api/atelier/ground-truth/penguins', labels, { 'Content-Type': 'application/jsonlines' });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  assert.equal(up.body.matched, scene.rows.length);
  await page.goto(server.url + '/monitor/penguins-drift');
  await page.locator('[data-testid=retrain-box]').waitFor();
  assert.match(await page.textContent('[data-testid=retrain-box]'), /drift in .*bill_length_mm/);
  await page.fill('[data-testid=retrain-budget]', '20');
  await page.click('[data-testid=retrain]');
  const link = page.locator('[data-testid=retrain-job-link]');
  await link.waitFor();
  const href = await link.getAttribute('href');
  assert.match(href, /^\/autopilot\/[0-9a-f]{32}$/);
  await until(async () => (await attr('[data-testid=retrain-status]', 'data-status')) === 'succeeded', 'the retraining job', 120000);
  assert.match(await page.textContent('[data-testid=compare-serving]'), /penguins-species v1/);
  assert.match(await page.textContent('[data-testid=compare-new]'), /penguins-species v2/);
  const fresh = Number(await page.textContent('[data-testid=compare-new-score]'));
  assert.ok(fresh > 0.8, `retrained accuracy ${fresh}`);
  assert.match(await page.textContent('[data-testid=compare-serving] td.num'), /^0\.\d+/);
  await shot('retrain');
  // the job stays linked after a reload, and its page is the Autopilot one
  await page.reload();
  await page.locator('[data-testid=retrain-job-link]').waitFor();
  await page.click('[data-testid=retrain-job-link]');
  await page.waitForURL('**' + href);
  await until(async () => (await attr('[data-testid=job-status]', 'data-status')) === 'succeeded', 'the Autopilot page');
});

test('a model-quality schedule plots its score against the limit and the CBPE estimate', async () => {
  await page.goto(server.url + '/monitor');
  await page.locator('[data-testid=schedule-row]').first().waitFor();
  await until(async () => (await page.inputValue('[data-testid=new-schedule-endpoint]')) === 'penguins', 'the endpoint choice');
  await page.selectOption('[data-testid=new-schedule-kind]', 'model_quality');
  assert.equal(await page.inputValue('[data-testid=new-schedule-name]'), 'penguins-quality');
  await page.fill('[data-testid=new-schedule-cron]', '0 0 1 1 *');
  await page.selectOption('[data-testid=new-schedule-metric]', 'accuracy');
  await page.fill('[data-testid=new-schedule-threshold]', '0.02');
  await page.fill('[data-testid=new-schedule-baseline-score]', '0.99');
  await page.click('[data-testid=create-schedule]');
  await page.waitForURL(/\/monitor\/penguins-quality$/);
  const stored = (await api('GET', '/api/atelier/monitoring-schedules/penguins-quality')).body.schedule;
  assert.deepEqual([stored.kind, stored.metric, stored.threshold, stored.baseline_score], ['model_quality', 'accuracy', 0.02, 0.99]);
  const all = await run('penguins-quality', Date.now() - 3600e3, Date.now());
  assert.equal(all.result.labelled, scene.rows.length);
  const sc = '[data-testid=score-chart]';
  await until(async () => (await attr(sc, 'data-points-value')) === '1', 'the measured score');
  assert.equal(await attr(sc, 'data-threshold-points'), '1', 'the limit');
  assert.equal(await attr(sc, 'data-points-estimate'), '1', 'the CBPE estimate');
  assert.match(await page.textContent('[data-testid=cbpe-accuracy]'), /accuracy\s*0\.\d+ ± 0\.\d+.*95 % interval/);
  const acc = Number(await page.textContent('[data-testid=quality-metric][data-metric=accuracy] b'));
  assert.ok(acc > 0.9 && acc <= 1, `accuracy on labelled traffic ${acc}`);
  await shot('quality');
  // deleting it (after the confirmation) leads back to the list, without it
  page.once('dialog', (d) => d.accept());
  await page.click('[data-testid=delete-schedule]');
  await page.waitForURL(/\/monitor$/);
  await page.locator('[data-testid=schedule-row][data-name=penguins-drift]').waitFor();
  assert.equal(await page.locator('[data-testid=schedule-row][data-name=penguins-quality]').count(), 0);
});

test('a column the model does not read is reported apart and never alerts; p-values show their Holm adjustment', async () => {
  // a baseline that also profiles the target, which requests never carry
  const b = await api('POST', '/api/atelier/baselines', { dataset: 'penguins.csv', name: 'with-species' });
  assert.equal(b.status, 202, JSON.stringify(b.body));
  assert.equal((await waitJob(b.body.job.id, 60000)).status, 'succeeded');
  const c = await api('POST', '/api/atelier/monitoring-schedules', { name: 'with-species', endpoint: 'penguins', cron: '0 0 1 1 *', baseline: 'baselines/with-species' });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const [t0, t1] = scene.cleanWindow;
  const e = await run('with-species', t0, t1);
  assert.equal(e.result.status, 'ok', JSON.stringify(e.result));
  await page.goto(server.url + '/monitor/with-species');
  const species = '[data-testid=feature-row][data-name=species]';
  await page.locator(species).waitFor();
  assert.equal(await attr(species, 'data-used'), 'false');
  assert.match(await page.textContent(`${species} [data-testid=unused-note]`), /not used by the model/);
  // the finding on it sits in its own table; the window itself passed
  assert.equal(await page.locator('[data-testid=violation-row]').count(), 0);
  assert.match(await page.textContent('[data-testid=violations-empty]'), /No violations in this window/);
  assert.match(await page.textContent('[data-testid=unused-violations-head]'), /does not use · not alerted/);
  assert.ok(await page.locator('[data-testid=unused-violation-row][data-feature=species]').count() >= 1);
  assert.equal(await attr('[data-testid=alert-state]', 'data-state') === 'alert', false, 'no alert');
  // features the model reads come first, each p-value with its Holm-adjusted value under it
  const names = await page.$$eval('[data-testid=feature-row]', (rs) => rs.map((r) => r.dataset.name));
  assert.equal(names[names.length - 1], 'species', names.join(','));
  const bill = '[data-testid=feature-row][data-name=bill_length_mm]';
  assert.equal(await attr(bill, 'data-used'), 'true');
  assert.match(await page.textContent(`${bill} [data-testid=p-adjusted]`), /^Holm \d/);
  await shot('unused-columns');
});

test('an unknown schedule says so', async () => {
  await page.goto(server.url + '/monitor/no-such-schedule');
  await page.locator('[data-testid=schedule-load-error]').waitFor();
  assert.match(await page.textContent('[data-testid=schedule-load-error]'), /No monitoring schedule named 'no-such-schedule'/);
  assert.equal(errors.filter((e) => /status of 404/.test(e)).length, 1, errors.join('\n'));
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 404/.test(e)));
});
