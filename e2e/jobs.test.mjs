// Jobs in the Studio: real processing and training jobs (the venv's Python logging through mlflow, and
// `sh -c`) on a real server. The list shows them running; a job's page follows its output while it
// runs (search, streams, download), draws its loss curve and system metrics with the Debugger's rule
// marks, stops it (Stopping / Stopped on the timeline), shows why a job failed, and starts a new job
// from "Run again with changes". Tuning, monitoring-execution and Autopilot job pages are checked
// from mocked job documents (page.route), since those kinds do not run in this suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, newPage, until, fullShot, call, pythonBin, uploadCode, waitJob, layoutProblems } from './harness.mjs';

let server, browser, page;
const errors = [];
const api = (method, path, body) => call(server.url, method, path, body);
const shot = (name) => fullShot(page, `/tmp/jobs-${name}.png`, 6000);
const scene = {};

const OVERLAP = ['.page-head', '.jb-card-head', '.facts', '.jb-charts', '.jb-chart-head', '.toolbar', '.grid2', '.form-row'];

// One line every 200 ms for 6 s (and a warning on stderr every 10 epochs), loss and val_loss per step
// through mlflow (start_run picks up the job's MLFLOW_RUN_ID); val_loss turns up from epoch 10.
const TRAIN = `
import os, sys, time
import mlflow
epochs = int(os.environ.get("SM_HP_EPOCHS", "30"))
lr = float(os.environ.get("SM_HP_LR", "0.1"))
print(f"training for {epochs} epochs at lr={lr}", flush=True)
with mlflow.start_run():
    for step in range(epochs):
        loss = 1.0 / (step + 1)
        val = loss * 1.05 if step < 10 else 0.2 + 0.02 * (step - 10)
        mlflow.log_metrics({"loss": loss, "val_loss": val}, step=step)
        print(f"epoch {step} loss={loss:.4f} val_loss={val:.4f}", flush=True)
        if step % 10 == 0:
            print(f"checkpoint warning at epoch {step}", file=sys.stderr, flush=True)
        time.sleep(0.2)
print("done", flush=True)
`;

async function submit(kind, spec) {
  const r = await api('POST', '/api/atelier/jobs', { kind, spec });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.job;
}
const jobOf = async (id) => (await api('GET', '/api/atelier/jobs/' + id)).body.job;
const attr = (sel, name) => page.getAttribute(sel, name);
const count = (sel) => page.locator(sel).count();

before(async () => {
  // a tuning job holds a worker while its trials run on the others
  server = await startServer(['--job-workers', '3']);
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  assert.deepEqual(errors, [], 'no page errors');
});

test('a running job is listed, and its page follows the output, the metrics and the rules live', async () => {
  const code = await uploadCode(server.url, { 'train.py': TRAIN });
  const up = await fetch(server.url + '/api/atelier/datasets/points.csv', { method: 'PUT', body: 'a,b\n1,2\n3,4\n' });
  assert.equal(up.status, 201, await up.text());
  const spec = {
    name: 'slow-train', command: [pythonBin(), 'train.py'], code, hyperparameters: { lr: '0.1', epochs: '30' }, inputs: { train: 'datasets/points.csv' },
    rules: ['Overfit:patience=3', 'LossNotDecreasing'], max_runtime_seconds: 600, stop_grace_seconds: 5,
  };
  // the Debugger's rules are part of the spec when the server knows them
  let r = await api('POST', '/api/atelier/jobs', { kind: 'training', spec });
  if (r.status === 400 && /rules/.test(r.body.message)) {
    scene.noRules = true;
    delete spec.rules;
    r = await api('POST', '/api/atelier/jobs', { kind: 'training', spec });
  }
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.job.id;
  scene.train = id;
  scene.trainSpec = spec;

  // the list shows it running, with its kind, owner and a live duration
  await page.goto(server.url + '/jobs');
  const row = page.locator(`[data-testid=job-row][data-id="${id}"]`);
  await until(async () => (await row.count()) && (await row.getAttribute('data-status')) === 'running', 'the running row');
  assert.equal(await row.locator('[data-testid=job-status]').getAttribute('data-status'), 'InProgress');
  assert.match(await row.textContent(), /slow-train/);
  assert.match(await row.textContent(), /Training/);
  assert.match(await row.textContent(), /local/);
  const d1 = await row.locator('[data-testid=job-duration]').textContent();
  await until(async () => (await row.locator('[data-testid=job-duration]').textContent()) !== d1, 'the duration to tick');
  // the kind filter
  await page.selectOption('[data-testid=kind-filter]', 'processing');
  await page.locator('[data-testid=jobs-empty]').waitFor();
  assert.match(page.url(), /\?kind=processing$/);
  await page.selectOption('[data-testid=kind-filter]', 'training');
  await row.waitFor();
  await shot('list-running');
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);

  // its page: lines appear while it runs
  await row.locator('[data-testid=job-link]').click();
  await page.waitForURL('**/jobs/' + id);
  await page.locator('[data-testid=log-view]').waitFor();
  const lines = () => count('[data-testid=log-line]');
  const running = async () => (await jobOf(id)).status === 'running';
  await until(async () => (await lines()) >= 3, 'the first lines', 30000, 100);
  const seen = await lines();
  assert.ok(await running(), 'the job still runs');
  assert.ok(seen < 32, `${seen} lines: not the whole output yet`);
  await until(async () => (await lines()) > seen + 2, 'more lines while it runs', 10000, 100);
  assert.ok(await running(), 'the new lines came while the job ran');
  assert.equal(await attr('[data-testid=job-status]', 'data-status'), 'InProgress');
  assert.equal(await page.locator('[data-testid=stop-job]').isEnabled(), true);
  // stderr lines are told apart
  assert.ok(await count('[data-testid=log-line][data-stream=stderr]') >= 1);
  assert.match(await page.locator('[data-testid=log-line][data-stream=stderr]').first().textContent(), /checkpoint warning at epoch 0/);
  // the loss curve and a system metric draw points while it runs
  const lossChart = page.locator('[data-testid=metric-chart][data-key=loss] .chart');
  await until(async () => Number(await lossChart.getAttribute('data-points')) >= 3, 'the loss curve', 20000);
  const cpu = page.locator('[data-testid=system-chart][data-chart=cpu] .chart');
  await until(async () => Number(await cpu.getAttribute('data-points')) >= 2, 'the CPU chart', 20000);
  const lossSeen = Number(await lossChart.getAttribute('data-points'));
  await until(async () => Number(await lossChart.getAttribute('data-points')) > lossSeen, 'the loss curve to grow', 20000);
  await shot('running');

  // the search box filters the lines (and marks the match)
  await page.fill('[data-testid=log-search]', 'epoch 1');
  await until(async () => (await attr('[data-testid=log-count]', 'data-shown')) !== (await attr('[data-testid=log-count]', 'data-total')), 'the filter');
  const shown = await page.locator('[data-testid=log-line]').allTextContents();
  assert.ok(shown.length >= 1);
  for (const t of shown) assert.match(t, /epoch 1/i);
  assert.ok(await count('[data-testid=log-line] mark') >= 1);
  await page.fill('[data-testid=log-search]', '');
  await page.click('[data-testid=log-stream-stderr]');
  for (const s of await page.locator('[data-testid=log-line]').evaluateAll((ls) => ls.map((l) => l.dataset.stream))) assert.equal(s, 'stderr');
  await page.click('[data-testid=log-stream-all]');

  // the end: Completed, every line, exit code 0, the timeline's phases
  const job = await waitJob(server.url, id, 90000);
  assert.equal(job.status, 'succeeded', job.error);
  await until(async () => (await attr('[data-testid=job-status]', 'data-status')) === 'Completed', 'Completed on the page');
  await until(async () => (await attr('[data-testid=logs]', 'data-done')) === 'true', 'the whole output');
  const total = (await jobOf(id)).progress.log_lines;
  assert.equal(Number(await attr('[data-testid=log-count]', 'data-total')), total);
  assert.equal(await page.locator('[data-testid=stop-job]').count(), 0, 'no Stop once it ended');
  // following keeps the newest line in view; scrolling up stops following, ticking Follow goes back down
  const atBottom = () => page.$eval('[data-testid=log-view]', (v) => v.scrollHeight > v.clientHeight && v.scrollHeight - v.scrollTop - v.clientHeight < 24);
  await until(atBottom, 'the view at the newest line');
  await page.$eval('[data-testid=log-view]', (v) => { v.scrollTop = 0; });
  await until(async () => !(await page.isChecked('[data-testid=log-follow]')), 'Follow off after scrolling up');
  await page.check('[data-testid=log-follow]');
  await until(atBottom, 'back at the newest line');
  assert.equal((await page.textContent('[data-testid=exit-code]')).trim(), '0');
  const phases = await page.locator('[data-testid=timeline-phase]').evaluateAll((ps) => ps.map((p) => p.dataset.status));
  for (const p of ['Queued', 'Downloading', 'Training', 'Uploading', 'Completed']) assert.ok(phases.includes(p), `${p} in ${phases}`);
  assert.ok(await count('[data-testid=timeline-entry]') >= 6);
  await until(async () => Number(await lossChart.getAttribute('data-points')) === 30, 'all 30 loss points', 20000);
  assert.equal(await page.getAttribute('[data-testid=run-link]', 'href'), '/runs/' + job.progress.run_id);
  // the input links to its dataset, the outputs to the run
  assert.equal(await page.getAttribute('[data-testid=input-row][data-name=train] [data-testid=source-link]', 'href'), '/api/2.0/mlflow-artifacts/artifacts/datasets/points.csv');
  assert.match(await page.textContent('[data-testid=outputs]'), /runs:\//);

  // the Debugger's rules: a table and a mark on the val_loss curve where Overfit fired
  if (!scene.noRules) {
    await page.locator('[data-testid=rules-table]').waitFor();
    const overfit = page.locator('[data-testid=rule-row][data-rule=Overfit]');
    await until(async () => (await overfit.getAttribute('data-status')) === 'IssuesFound', 'Overfit found issues');
    assert.match(await overfit.textContent(), /step 12/);
    assert.match(await overfit.textContent(), /alert/);
    const rules = (await jobOf(id)).progress.rules || (await jobOf(id)).result.rules;
    const fired = rules.find((x) => x.label === 'Overfit');
    const mark = page.locator('[data-testid=metric-chart][data-key=val_loss] [data-testid=rule-mark][data-rule=Overfit]');
    await until(async () => (await mark.count()) === 1, 'the Overfit mark on val_loss');
    assert.equal(await mark.getAttribute('data-x'), String(fired.trigger.step));
    assert.equal(await page.locator('[data-testid=metric-chart][data-key=loss] [data-testid=rule-mark][data-rule=Overfit]').count(), 0, 'not on loss');
    const phasesNow = await page.locator('[data-testid=timeline-entry]').evaluateAll((ps) => ps.map((p) => p.dataset.status));
    assert.ok(phasesNow.includes('RuleIssuesFound'), phasesNow.join());
    // a rule firing is a moment on the bar, not a phase: Training goes on through it
    assert.ok(await count('[data-testid=timeline-marker][data-status=RuleIssuesFound]') >= 1);
    assert.equal(await count('[data-testid=timeline-phase][data-status=RuleIssuesFound]'), 0);
    assert.equal(await count('[data-testid=timeline-phase][data-status=Training]'), 1);
    await page.locator('[data-testid=training-metrics]').screenshot({ path: '/tmp/jobs-training-metrics.png' });
    await page.locator('[data-testid=rules]').screenshot({ path: '/tmp/jobs-rules.png' });
  }
  await page.locator('[data-testid=timeline]').screenshot({ path: '/tmp/jobs-timeline.png' });

  // the whole output as a text file
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=log-download]')]);
  assert.match(download.suggestedFilename(), /^slow-train-.*\.log$/);
  const text = readFileSync(await download.path(), 'utf8');
  assert.match(text, /stdout epoch 29 loss=0\.0333/);
  assert.match(text, /stderr checkpoint warning at epoch 20/);
  assert.equal(text.trim().split('\n').length, total);
  await shot('done');
});

test('Stop ends a long job: Stopping, then Stopped, on the page and its timeline', async () => {
  const job = await submit('processing', { name: 'forever', command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.3; done'], stop_grace_seconds: 5 });
  scene.stopped = job.id;
  await page.goto(server.url + '/jobs/' + job.id);
  await until(async () => (await count('[data-testid=log-line]')) >= 3, 'ticks');
  assert.match(await page.textContent('[data-testid=job-secondary]'), /Processing/);
  await page.click('[data-testid=stop-job]');
  await until(async () => (await attr('[data-testid=job-status]', 'data-status')) === 'Stopped', 'Stopped', 30000);
  const entries = await page.locator('[data-testid=timeline-entry]').evaluateAll((ps) => ps.map((p) => p.dataset.status));
  assert.ok(entries.includes('Stopping'), entries.join());
  assert.equal(entries[entries.length - 1], 'Stopped');
  assert.ok(await count('[data-testid=timeline-phase][data-status=Stopping]') === 1);
  assert.ok(await count('[data-testid=timeline-phase][data-status=Stopped]') === 1);
  assert.match(await page.textContent('[data-testid=stop-reason]'), /cancelled by request/);
  assert.equal(await count('[data-testid=failure-reason]'), 0, 'a stop is no failure');
  assert.equal(await count('[data-testid=stop-job]'), 0);
  await shot('stopped');
  // the list says Stopped too
  await page.goto(server.url + '/jobs');
  await until(async () => (await page.locator(`[data-testid=job-row][data-id="${job.id}"] [data-testid=job-status]`).getAttribute('data-status')) === 'Stopped', 'Stopped in the list');
});

test('a failing job shows why: the failure reason, its stderr and the exit code', async () => {
  const job = await submit('processing', { name: 'bad-input', command: ['sh', '-c', 'echo starting; sleep 0.5; echo "bad input: column x is missing" >&2; exit 3'] });
  scene.failed = job.id;
  await page.goto(server.url + '/jobs/' + job.id);
  await page.locator('[data-testid=failure-reason]').waitFor({ timeout: 30000 });
  assert.equal(await attr('[data-testid=job-status]', 'data-status'), 'Failed');
  assert.match(await page.textContent('[data-testid=failure-message]'), /exited with status 3/);
  await until(async () => (await count('[data-testid=failure-stderr]')) === 1, 'the stderr lines');
  assert.match(await page.textContent('[data-testid=failure-stderr]'), /bad input: column x is missing/);
  assert.equal((await page.textContent('[data-testid=exit-code]')).trim(), '3');
  const entries = await page.locator('[data-testid=timeline-entry]').evaluateAll((ps) => ps.map((p) => p.dataset.status));
  assert.equal(entries[entries.length - 1], 'Failed');
  // the failure box comes before everything else on the page
  const box = await page.locator('[data-testid=failure-reason]').boundingBox();
  const logs = await page.locator('[data-testid=logs]').boundingBox();
  assert.ok(box.y < logs.y);
  assert.match(await page.locator('[data-testid=log-line][data-stream=stderr]').textContent(), /bad input/);
  await shot('failed');
});

test('"Run again with changes" starts a new job with the edited spec', async () => {
  await page.goto(server.url + '/jobs/' + scene.train);
  await page.locator('[data-testid=rerun-open]').waitFor();
  assert.equal(await page.locator('[data-testid=rerun-form]').isVisible(), false);
  // the header's "Run again…" opens the form at the end of the page
  await page.click('[data-testid=rerun-head]');
  const form = page.locator('[data-testid=rerun-form]');
  await form.waitFor();
  // prefilled from the spec
  assert.equal(await page.inputValue('[data-testid=rerun-name]'), 'slow-train');
  assert.equal(await page.inputValue('[data-testid=rerun-command]'), `${pythonBin()}\ntrain.py`);
  assert.equal(await page.inputValue('[data-testid=rerun-runtime]'), '600');
  const keys = await page.locator('[data-testid=hp-key]').evaluateAll((is) => is.map((i) => i.value));
  assert.deepEqual(keys.sort(), ['epochs', 'lr']);
  // a mistake is caught before anything is sent
  await page.fill('[data-testid=rerun-runtime]', '0');
  await page.click('[data-testid=rerun-submit]');
  await page.locator('[data-testid=rerun-error]').waitFor();
  assert.match(await page.textContent('[data-testid=rerun-error]'), /maximum runtime/);
  // edit: lr, fewer epochs, a new hyperparameter, another name and runtime
  const hpRows = page.locator('[data-testid=hp-row]');
  for (let i = 0; i < await hpRows.count(); i++) {
    const k = await hpRows.nth(i).locator('[data-testid=hp-key]').inputValue();
    if (k === 'lr') await hpRows.nth(i).locator('[data-testid=hp-value]').fill('0.05');
    if (k === 'epochs') await hpRows.nth(i).locator('[data-testid=hp-value]').fill('5');
  }
  await page.click('[data-testid=hp-add]');
  await hpRows.last().locator('[data-testid=hp-key]').fill('momentum');
  await hpRows.last().locator('[data-testid=hp-value]').fill('0.9');
  await page.fill('[data-testid=rerun-runtime]', '120');
  await page.fill('[data-testid=rerun-name]', 'slow-train-2');
  await shot('rerun-form');
  await page.click('[data-testid=rerun-submit]');
  await page.waitForURL((u) => /\/jobs\/[0-9a-f]+$/.test(u.pathname) && !u.pathname.endsWith(scene.train));
  const newId = page.url().split('/').pop();
  const job = await jobOf(newId);
  assert.equal(job.kind, 'training');
  assert.equal(job.name, 'slow-train-2');
  assert.deepEqual(job.spec.hyperparameters, { lr: '0.05', epochs: '5', momentum: '0.9' });
  assert.equal(job.spec.max_runtime_seconds, 120);
  assert.deepEqual(job.spec.command, scene.trainSpec.command);
  assert.equal(job.spec.code, scene.trainSpec.code);
  assert.deepEqual(job.spec.inputs, scene.trainSpec.inputs);
  if (!scene.noRules) assert.deepEqual(job.spec.rules, scene.trainSpec.rules);
  await page.locator('[data-testid=job-name]').waitFor();
  assert.equal(await page.textContent('[data-testid=job-name]'), 'slow-train-2');
  // the new job runs the new value
  const ended = await waitJob(server.url, newId, 60000);
  assert.equal(ended.status, 'succeeded', ended.error);
  await until(async () => /training for 5 epochs at lr=0\.05/.test(await page.textContent('[data-testid=log-view]')), 'the new value in the output');
});

test('layout: nothing overflows or overlaps at 1360 and 1024 px', async () => {
  const pages = [['list', '/jobs'], ['train', '/jobs/' + scene.train], ['failed', '/jobs/' + scene.failed], ['stopped', '/jobs/' + scene.stopped]];
  for (const width of [1360, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    for (const [name, path] of pages) {
      await page.goto(server.url + path);
      await page.locator(name === 'list' ? '[data-testid=jobs-table]' : '[data-testid=timeline-table]').waitFor();
      if (name !== 'list') {
        await until(async () => (await attr('[data-testid=logs]', 'data-done')) === 'true', 'the output');
        await until(async () => Number(await page.getAttribute('[data-testid=system-chart] .chart', 'data-points')) > 0, 'a system chart');
      }
      if (name === 'train') await page.click('[data-testid=rerun-open]');
      const problems = await layoutProblems(page, OVERLAP);
      const cols = await page.evaluate(() => [...document.querySelectorAll('table th')].map((t) => t.textContent + ':' + Math.round(t.getBoundingClientRect().width)).join(' '));
      assert.deepEqual(problems, [], `${name} at ${width}px (${cols})`);
      if (width === 1024) {
        // as tall as the document, so that the sticky navigation sits where a user sees it
        const height = await page.evaluate(() => document.documentElement.scrollHeight);
        await page.setViewportSize({ width, height: Math.min(6000, Math.max(900, height)) });
        await page.screenshot({ path: `/tmp/jobs-${name}-1024.png` });
        await page.setViewportSize({ width, height: 900 });
      }
    }
  }
  await page.setViewportSize({ width: 1360, height: 900 });
});

// One trial: val_loss from the sampled lr and depth (best near lr = 0.01), a few steps.
const TRIAL = `
import math, os, time
import mlflow
lr, depth = float(os.environ["SM_HP_LR"]), int(os.environ["SM_HP_DEPTH"])
with mlflow.start_run():
    for step in range(5):
        mlflow.log_metric("val_loss", (math.log10(lr) + 2) ** 2 + 0.1 * depth + 1.0 / (step + 1), step=step)
        time.sleep(0.1)
print("lr", lr, "depth", depth, flush=True)
`;

test('a tuning job shows its trials as they run, the best one, and the objective against each hyperparameter', async () => {
  const code = await uploadCode(server.url, { 'trial.py': TRIAL });
  const job = await submit('tuning', {
    training: { command: [pythonBin(), 'trial.py'], code },
    objective: { metric: 'val_loss', direction: 'minimize' },
    parameters: { lr: { type: 'continuous', min: 0.001, max: 1, scale: 'log' }, depth: { type: 'integer', min: 2, max: 6 } },
    strategy: 'random', max_jobs: 4, max_parallel_jobs: 2, seed: 3,
  });
  await page.goto(server.url + '/jobs/' + job.id);
  await page.locator('[data-testid=tuning-summary]').waitFor();
  await until(async () => (await count('[data-testid=trial-row]')) >= 1, 'the first trial', 60000);
  const ended = await waitJob(server.url, job.id, 120000);
  assert.equal(ended.status, 'succeeded', ended.error);
  const doc = ended.result && ended.result.trials ? ended.result : ended.progress;
  await until(async () => (await attr('[data-testid=job-status]', 'data-status')) === 'Completed', 'Completed on the page');
  await until(async () => (await count('[data-testid=trial-row]')) === 4, 'four trials');
  assert.equal(await count('[data-testid=trial-row][data-best=true]'), 1);
  assert.equal(await attr('[data-testid=trial-row][data-best=true]', 'data-job-id'), doc.best.job_id);
  assert.match(await page.textContent('[data-testid=best-summary]'), /val_loss = /);
  const withObjective = doc.trials.filter((t) => Number.isFinite(t.objective)).length;
  assert.equal(await attr('[data-testid=objective-scatter]', 'data-points'), String(withObjective));
  assert.ok(['depth', 'lr'].includes(await page.inputValue('[data-testid=tuning-param]')));
  await page.selectOption('[data-testid=tuning-param]', 'lr');
  assert.equal(await attr('[data-testid=objective-scatter]', 'data-points'), String(withObjective));
  await shot('tuning-real');
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);
  // a trial is a training job of its own, with a page of its own
  await page.click(`[data-testid=trial-row][data-job-id="${doc.best.job_id}"] [data-testid=trial-link]`);
  await page.waitForURL('**/jobs/' + doc.best.job_id);
  await page.locator('[data-testid=job-kind]').waitFor();
  assert.equal(await page.textContent('[data-testid=job-kind]'), 'Training');
  await until(async () => Number(await page.getAttribute('[data-testid=metric-chart][data-key=val_loss] .chart', 'data-points')) === 5, 'the trial\'s curve');
});

// ---------------------------------------------------------------- kinds this suite does not run

function mockJob(job) {
  return page.route(`**/api/atelier/jobs/${job.id}`, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ job }) }));
}
const base = (id, kind, name, extra) => Object.assign({
  id, kind, name, status: 'succeeded', primary_status: 'Completed', owner: 'local', attempt: 1, max_attempts: 1, worker: null,
  created_ms: Date.now() - 120000, started_ms: Date.now() - 119000, ended_ms: Date.now() - 1000, cancel_requested: false, error: null,
  secondary_statuses: [
    { at_ms: Date.now() - 120000, status: 'Queued', message: 'queued' },
    { at_ms: Date.now() - 119000, status: 'Starting', message: 'claimed' },
    { at_ms: Date.now() - 118000, status: kind === 'tuning' ? 'Tuning' : 'Processing', message: 'running' },
    { at_ms: Date.now() - 1000, status: 'Completed', message: 'completed' },
  ],
  spec: {}, progress: {}, result: {},
}, extra);

test('a tuning job with an early-stopped trial (mocked document)', async () => {
  const trials = [
    { job_id: 'aaaa0001', run_id: 'r1', params: { lr: '0.1', depth: '3' }, status: 'succeeded', objective: 0.42, stopped_early: false },
    { job_id: 'aaaa0002', run_id: 'r2', params: { lr: '0.01', depth: '5' }, status: 'succeeded', objective: 0.31, stopped_early: false },
    { job_id: 'aaaa0003', run_id: 'r3', params: { lr: '0.3', depth: '4' }, status: 'cancelled', objective: 0.9, stopped_early: true },
    { job_id: 'aaaa0004', run_id: null, params: { lr: '0.05', depth: '6' }, status: 'failed', objective: null, stopped_early: false },
  ];
  const doc = { objective: { metric: 'val_loss', direction: 'minimize' }, trials, best: { job_id: 'aaaa0002', run_id: 'r2', objective: 0.31, params: { lr: '0.01', depth: '5' } }, parent_run_id: 'p1' };
  await mockJob(base('tune-1', 'tuning', 'tune-<b>lr</b>', { spec: { trial: { kind: 'training' } }, progress: doc, result: doc }));
  await page.goto(server.url + '/jobs/tune-1');
  await page.locator('[data-testid=trials-table]').waitFor();
  assert.equal(await page.textContent('[data-testid=job-name]'), 'tune-<b>lr</b>', 'names are text');
  assert.equal(await count('[data-testid=trial-row]'), 4);
  assert.equal(await count('[data-testid=trial-row][data-best=true]'), 1);
  assert.equal(await attr('[data-testid=trial-row][data-best=true]', 'data-job-id'), 'aaaa0002');
  assert.equal(await count('[data-testid=stopped-early]'), 1);
  assert.equal(await attr('[data-testid=trial-row][data-job-id=aaaa0001] [data-testid=trial-link]', 'href'), '/jobs/aaaa0001');
  assert.match(await page.textContent('[data-testid=best-summary]'), /0\.31/);
  assert.equal(await attr('[data-testid=objective-scatter]', 'data-points'), '3');
  assert.equal(await attr('[data-testid=objective-chart]', 'data-points'), '7', '3 objectives and 4 best-so-far points');
  assert.equal(await page.inputValue('[data-testid=tuning-param]'), 'depth');
  await page.selectOption('[data-testid=tuning-param]', 'lr');
  assert.equal(await attr('[data-testid=objective-scatter]', 'data-points'), '3');
  await shot('tuning');
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);
  await page.goto('about:blank'); // before the mock goes: a live reload must not reach the server
  await page.unroute('**/api/atelier/jobs/tune-1');
});

test('a monitoring execution links back to its schedule; an Autopilot job goes to its own page', async () => {
  await mockJob(base('mon-1', 'monitoring-execution', 'penguins-drift', {
    spec: { schedule: 'penguins-drift', window_start_ms: Date.now() - 3600e3, window_end_ms: Date.now() },
    result: { schedule: 'penguins-drift', endpoint: 'penguins', kind: 'data_quality', captured_requests: 40, status: 'violations', violation_count: 1,
      violations: [{ feature_name: 'bill_length_mm', constraint_check_type: 'baseline_drift_check', description: 'KS p-value 0.001 < 0.05' }] },
  }));
  await page.goto(server.url + '/jobs/mon-1');
  await page.locator('[data-testid=open-schedule]').waitFor();
  assert.equal(await attr('[data-testid=open-schedule]', 'href'), '/monitor/penguins-drift');
  assert.equal(await attr('[data-testid=schedule-link]', 'href'), '/monitor/penguins-drift');
  assert.equal(await count('pre.json'), 0, 'no raw JSON');
  assert.equal(await count('[data-testid=violations-table] tbody tr'), 1);
  await shot('monitoring');
  await page.goto('about:blank'); // before the mock goes: a live reload must not reach the server
  await page.unroute('**/api/atelier/jobs/mon-1');
  await mockJob(base('auto-1', 'automl', 'penguins.csv → species', { spec: { dataset: 'penguins.csv', target: 'species', time_budget: 60 } }));
  await page.goto(server.url + '/jobs/auto-1');
  await page.waitForURL('**/autopilot/auto-1');
  await page.locator('[data-testid=leaderboard], .empty').first().waitFor();
  await page.goto('about:blank'); // before the mock goes: a live reload must not reach the server
  await page.unroute('**/api/atelier/jobs/auto-1');
});

test('the list keeps its layout with every kind, long names and errors (mocked list)', async () => {
  const kinds = ['processing', 'training', 'tuning', 'automl', 'batch-transform', 'monitoring-execution', 'monitoring-baseline'];
  const jobs = kinds.map((kind, i) => base('m' + i, kind, i % 2 ? 'a-very-long-job-name-' + 'x'.repeat(40) : kind + ' job', i === 2
    ? { status: 'running', primary_status: 'InProgress', ended_ms: null, progress: { trials: [{ objective: 0.3 }], best: { objective: 0.3 } } }
    : i === 4 ? { status: 'failed', primary_status: 'Failed', error: 'the model version models:/churn/7 does not exist: ' + 'a long explanation '.repeat(8) } : {}));
  jobs[1].owner = 'a-service-account-with-a-long-name';
  jobs[0].progress = { last_line: 'x'.repeat(300) };
  jobs[0].status = 'running';
  jobs[0].primary_status = 'InProgress';
  await page.route('**/api/atelier/jobs?*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ jobs }) }));
  for (const width of [1360, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(server.url + '/jobs');
    await until(async () => (await count('[data-testid=job-row]')) === kinds.length, 'every kind');
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `the list at ${width}px`);
  }
  // Autopilot jobs link to their own page, the others here
  assert.equal(await attr('[data-testid=job-row][data-kind=automl] [data-testid=job-link]', 'href'), '/autopilot/m3');
  assert.equal(await attr('[data-testid=job-row][data-kind=monitoring-execution] [data-testid=job-link]', 'href'), '/jobs/m5');
  await page.screenshot({ path: '/tmp/jobs-list-kinds-1024.png' });
  await page.setViewportSize({ width: 1360, height: 900 });
  await page.unroute('**/api/atelier/jobs?*');
});
