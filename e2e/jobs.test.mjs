// Jobs in the Studio: real processing and training jobs (the venv's Python logging through mlflow, and
// `sh -c`) on a real server. The list shows them running; a job's page follows its output while it
// runs (search, streams, download), draws its loss curve and system metrics with the Debugger's rule
// marks, stops it (Stopping / Stopped on the timeline), shows why a job failed, and starts a new job
// from "Run again with changes". New job runs the repository's example scripts (examples/jobs) from
// the form (code files and a folder uploaded, a CSV uploaded as a dataset, a rule), and a trained
// model is registered in one click. Tuning, monitoring-execution and Autopilot job pages are checked
// from mocked job documents (page.route), since those kinds do not run in this suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer, launchBrowser, newPage, until, fullShot, call, pythonBin, uploadCode, waitJob, layoutProblems } from './harness.mjs';
import { checkLayout } from './layout.mjs';

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
const hasSystemMetrics = async (id) => {
  const runId = ((await jobOf(id)).progress || {}).run_id;
  if (!runId) return false;
  const run = (await api('GET', '/api/2.0/mlflow/runs/get?run_id=' + runId)).body.run;
  return (run.data.metrics || []).some((m) => m.key.startsWith('system/'));
};
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
        // a job that ended within its first sample (500 ms) has no system metrics, and no chart
        if (await hasSystemMetrics(path.split('/').pop())) {
          await until(async () => Number(await page.getAttribute('[data-testid=system-chart] .chart', 'data-points')) > 0, 'a system chart');
        }
      }
      if (name === 'train') await page.click('[data-testid=rerun-open]');
      const problems = await layoutProblems(page, OVERLAP);
      const cols = await page.evaluate(() => [...document.querySelectorAll('table th')].map((t) => t.textContent + ':' + Math.round(t.getBoundingClientRect().width)).join(' '));
      assert.deepEqual(problems, [], `${name} at ${width}px (${cols})`);
      // and e2e/layout.mjs's check at 1280, 1400 and 1920 px (no overlap, no token broken mid-token)
      if (width === 1360) await checkLayout(page, { label: `job ${name} (${path})` });
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

// ---------------------------------------------------------------- New job, Register model

// The repository's own example scripts, run through the New job form as a user would.
const EXAMPLES = join(ROOT, 'examples', 'jobs');
const newJob = {};

/** A CSV with columns a, b, label: `n` rows, some cells empty (prep.py drops those rows). */
function rawCsv(n) {
  const rows = ['a,b,label'];
  for (let i = 0; i < n; i++) {
    const a = ((i * 37) % 101) / 100, b = ((i * 53) % 97) / 96;
    const label = a + b > 1 ? 1 : 0;
    rows.push(`${i % 17 === 3 ? '' : a.toFixed(3)},${i % 23 === 5 ? '' : b.toFixed(3)},${label}`);
  }
  return rows.join('\n') + '\n';
}

/** The files under a run's artifact folder `sub`, as paths relative to it. */
async function runFiles(runId, sub) {
  const run = (await api('GET', '/api/2.0/mlflow/runs/get?run_id=' + runId)).body.run;
  const root = run.info.artifact_uri.replace(/^mlflow-artifacts:\/*/, '').replace(/\/+$/, '');
  const res = await api('GET', '/api/2.0/mlflow-artifacts/artifacts?path=' + encodeURIComponent(root + '/' + sub));
  return (res.body.files || []).map((f) => f.path.split('/').pop());
}

test('New job: a processing job from the form runs examples/jobs/prep.py on a CSV uploaded from the form', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-newjob-'));
  const csvName = `raw-${Date.now().toString(36)}.csv`;
  const csv = join(dir, csvName);
  writeFileSync(csv, rawCsv(300));
  const before = (await api('GET', '/api/atelier/jobs?limit=500')).body.jobs.length;

  await page.goto(server.url + '/jobs');
  await page.click('[data-testid=new-job]');
  await page.waitForURL('**/jobs/new');
  await page.locator('[data-testid=new-job-form]').waitFor();
  assert.equal(await page.getAttribute('[data-testid=new-kind-processing]', 'aria-pressed'), 'true');
  assert.equal(await page.locator('[data-testid=new-outputs-card]').isVisible(), true);
  assert.equal(await page.locator('[data-testid=new-register-model]').isVisible(), false, 'registering is for training jobs');
  await page.fill('[data-testid=new-name]', 'prep-form');
  // the code: one file
  await page.setInputFiles('[data-testid=code-files]', join(EXAMPLES, 'prep.py'));
  await page.locator('[data-testid=code-file][data-path="prep.py"]').waitFor();
  assert.equal(await page.getAttribute('[data-testid=new-command]', 'placeholder'), 'python\nprep.py', 'the command is suggested from the code');
  await page.fill('[data-testid=new-command]', [pythonBin(), 'prep.py', '--target', 'label'].join('\n'));
  // the input: a local CSV uploaded as a new dataset
  const row = page.locator('[data-testid=input-row]').first();
  await row.locator('[data-testid=input-name]').fill('raw');
  await row.locator('[data-testid=input-mode]').selectOption('file');
  await row.locator('[data-testid=input-file]').setInputFiles(csv);
  assert.equal(await row.locator('[data-testid=input-dataset-name]').inputValue(), csvName);
  assert.equal(await row.locator('[data-testid=input-name]').inputValue(), 'raw', 'a typed name is kept');
  await page.fill('[data-testid=new-outputs]', 'clean');
  // the command line that does the same
  const line = `atelier jobs run --kind processing --name prep-form --input raw=${csvName} --output clean -- ${pythonBin()} prep.py --target label`;
  await until(async () => (await page.textContent('[data-testid=cli-preview]')) === line, 'the CLI line');
  await fullShot(page, '/tmp/jobs-new-processing.png');
  for (const width of [1360, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `the form at ${width}px`);
  }
  await page.setViewportSize({ width: 1024, height: await page.evaluate(() => document.documentElement.scrollHeight) });
  await page.screenshot({ path: '/tmp/jobs-new-processing-1024.png' });
  await page.setViewportSize({ width: 1360, height: 900 });

  // what is sent, and the progress shown while it is
  const puts = [];
  const onRequest = (r) => { if (r.method() === 'PUT') puts.push(new URL(r.url()).pathname); };
  page.on('request', onRequest);
  const progress = [];
  await page.exposeFunction('__jobsNewProgress', (t) => progress.push(t));
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid=upload-progress-text]');
    new MutationObserver(() => window.__jobsNewProgress(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.click('[data-testid=new-submit]');
  await page.waitForURL((u) => /\/jobs\/[0-9a-f]+$/.test(u.pathname), { timeout: 20000 });
  page.off('request', onRequest);
  const id = page.url().split('/').pop();
  const job = await jobOf(id);
  assert.equal(job.kind, 'processing');
  assert.deepEqual(puts, [`/api/2.0/mlflow-artifacts/artifacts/${job.spec.code}/prep.py`, `/api/atelier/datasets/${csvName}`]);
  assert.ok(progress.some((t) => /^Uploading 1 of 2: prep\.py/.test(t)), progress.join(' | '));
  assert.ok(progress.some((t) => /^Uploading 2 of 2: dataset raw-/.test(t)), progress.join(' | '));
  assert.equal(job.name, 'prep-form');
  assert.deepEqual(job.spec.command, [pythonBin(), 'prep.py', '--target', 'label']);
  assert.deepEqual(job.spec.inputs, { raw: 'datasets/' + csvName });
  assert.deepEqual(job.spec.outputs, ['clean']);
  assert.match(job.spec.code, /^jobs-code\/[0-9a-f]{32}$/);
  assert.equal((await api('GET', '/api/atelier/jobs?limit=500')).body.jobs.length, before + 1, 'one job');
  const datasets = (await api('GET', '/api/atelier/datasets')).body.datasets;
  assert.ok(datasets.some((d) => d.name === csvName && d.size === readFileSync(csv).length), 'the CSV is a dataset');
  await page.locator('[data-testid=job-name]').waitFor();
  assert.equal(await page.textContent('[data-testid=job-name]'), 'prep-form');
  const ended = await waitJob(server.url, id, 60000);
  assert.equal(ended.status, 'succeeded', ended.error);
  newJob.prepRun = ended.result.run_id;
  newJob.csvName = csvName;
  const files = await runFiles(newJob.prepRun, 'output/clean');
  assert.ok(files.includes('train.csv') && files.includes('test.csv'), files.join(', '));
  await until(async () => (await count('[data-testid=output-row][data-name=clean] [data-testid=output-file]')) === 2, 'the outputs on the page');
  assert.match(await page.textContent('[data-testid=log-view]'), /read 300 rows from 1 file\(s\)/);
  assert.equal(await count('[data-testid=model-card]:visible'), 0, 'no model for a processing job');
  rmSync(dir, { recursive: true, force: true });
});

test('New job: a training job from a picked folder runs examples/jobs/train.py with a rule; Register model in one click', async () => {
  assert.ok(newJob.prepRun, 'the processing job ran');
  // a folder as a user's project: the script, plus what is left out as the CLI does
  const dir = mkdtempSync(join(tmpdir(), 'atelier-newjob-'));
  const project = join(dir, 'sgd');
  mkdirSync(join(project, '__pycache__'), { recursive: true });
  mkdirSync(join(project, '.git'), { recursive: true });
  copyFileSync(join(EXAMPLES, 'train.py'), join(project, 'train.py'));
  writeFileSync(join(project, '__pycache__', 'train.cpython-311.pyc'), 'x');
  writeFileSync(join(project, '.git', 'HEAD'), 'ref: refs/heads/main\n');

  await page.goto(server.url + '/jobs/new');
  await page.locator('[data-testid=new-job-form]').waitFor();
  await page.click('[data-testid=new-kind-training]');
  assert.equal(await page.locator('[data-testid=new-outputs-card]').isVisible(), false, 'outputs are for processing jobs');
  assert.equal(await page.locator('[data-testid=new-register-model]').isVisible(), true);
  await page.fill('[data-testid=new-name]', 'sgd-form');
  await page.setInputFiles('[data-testid=code-folder]', project);
  await page.locator('[data-testid=code-file][data-path="train.py"]').waitFor();
  assert.equal(await count('[data-testid=code-file]'), 1, 'hidden folders and __pycache__ are left out');
  assert.match(await page.textContent('[data-testid=code-skipped]'), /Left out 2/);
  await page.fill('[data-testid=new-command]', [pythonBin(), 'train.py', '--target', 'label'].join('\n'));
  const row = page.locator('[data-testid=input-row]').first();
  await row.locator('[data-testid=input-name]').fill('train');
  await row.locator('[data-testid=input-mode]').selectOption('uri');
  const source = `runs:/${newJob.prepRun}/output/clean`;
  // the outputs of earlier jobs are suggested
  assert.ok(await page.locator(`#jn-uri-suggestions option[value="${source}"]`).count() === 1, 'the prep output is suggested');
  await row.locator('[data-testid=input-uri]').fill(source);
  await page.locator('[data-testid=hp-key]').first().fill('epochs');
  await page.locator('[data-testid=hp-value]').first().fill('5');
  await page.click('[data-testid=rule-add]');
  await page.locator('[data-testid=rule-input]').first().fill('LossNotDecreasing');
  assert.equal(await page.getAttribute('[data-testid=rule-input]', 'list'), 'jn-rule-names');
  assert.equal(await count('#jn-rule-names option'), 15);
  await page.fill('[data-testid=new-runtime]', '10');
  await page.selectOption('[data-testid=new-runtime-unit]', 'minutes');
  const line = `atelier jobs run --kind training --name sgd-form --input train=${source} --hyperparameter epochs=5 --rule LossNotDecreasing --max-runtime 600 --code sgd -- ${pythonBin()} train.py --target label`;
  await until(async () => (await page.textContent('[data-testid=cli-preview]')) === line, 'the CLI line');
  await fullShot(page, '/tmp/jobs-new-training.png');
  assert.deepEqual(await layoutProblems(page, OVERLAP), []);

  await page.click('[data-testid=new-submit]');
  await page.waitForURL((u) => /\/jobs\/[0-9a-f]+$/.test(u.pathname), { timeout: 20000 });
  const id = page.url().split('/').pop();
  const job = await jobOf(id);
  assert.equal(job.kind, 'training');
  assert.deepEqual(job.spec.inputs, { train: source });
  assert.deepEqual(job.spec.hyperparameters, { epochs: '5' });
  assert.deepEqual(job.spec.rules, ['LossNotDecreasing']);
  assert.equal(job.spec.max_runtime_seconds, 600);
  assert.equal(job.spec.register_model, undefined);
  const ended = await waitJob(server.url, id, 60000);
  assert.equal(ended.status, 'succeeded', ended.error);
  const runId = ended.result.run_id;
  // the loss curve and the rule
  await until(async () => Number(await page.getAttribute('[data-testid=metric-chart][data-key=loss] .chart', 'data-points')) === 5, 'the loss curve');
  await page.locator('[data-testid=rule-row][data-rule=LossNotDecreasing]').waitFor();
  // Register model: the name is the job's, one click registers a version of the run's model/
  const modelName = `sgd-form-${Date.now().toString(36)}`;
  await page.locator('[data-testid=register-model]').waitFor();
  assert.equal(await page.inputValue('[data-testid=register-name]'), 'sgd-form');
  await page.locator('[data-testid=model-card]').scrollIntoViewIfNeeded();
  await page.screenshot({ path: '/tmp/jobs-new-register.png' });
  await page.fill('[data-testid=register-name]', modelName);
  await page.click('[data-testid=register-model]');
  await page.locator('[data-testid=registered-version]').waitFor();
  assert.equal(await attr('[data-testid=registered-version]', 'data-version'), '1');
  assert.equal(await attr('[data-testid=registered-model-link]', 'href'), '/models/' + modelName);
  const res = await api('GET', `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent(`name='${modelName}'`)}`);
  assert.equal(res.body.model_versions.length, 1, JSON.stringify(res.body));
  const mv = res.body.model_versions[0];
  assert.equal(mv.run_id, runId);
  assert.equal(mv.source, `runs:/${runId}/model`);
  await shot('new-trained');
  await page.screenshot({ path: '/tmp/jobs-new-trained-top.png' });
  // registered already: the page says so instead of offering the button again
  await page.reload();
  await page.locator('[data-testid=model-registered]').waitFor();
  assert.equal(await count('[data-testid=register-model]'), 0);
  for (const width of [1360, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    assert.deepEqual(await layoutProblems(page, OVERLAP), [], `the trained job at ${width}px`);
  }
  await page.setViewportSize({ width: 1360, height: 900 });
  // the link opens the model
  await page.click('[data-testid=registered-model-link]');
  await page.waitForURL('**/models/' + modelName);
  rmSync(dir, { recursive: true, force: true });
});

test('New job: the server\'s 400 is shown beside the form (an unknown rule names the known ones) and no job is created', async () => {
  const before = (await api('GET', '/api/atelier/jobs?limit=500')).body.jobs.length;
  await page.goto(server.url + '/jobs/new');
  await page.locator('[data-testid=new-job-form]').waitFor();
  // mistakes the form catches itself, before anything is sent
  await page.click('[data-testid=new-submit]');
  await page.locator('[data-testid=new-job-error]').waitFor();
  assert.match(await page.textContent('[data-testid=new-job-error]'), /Give the command to run/);
  assert.match(await page.textContent('[data-testid=new-command-card] [data-testid=card-error]'), /Give the command/, 'the card to fix is marked');
  await page.click('[data-testid=new-kind-training]');
  await page.fill('[data-testid=new-command]', 'sh\n-c\nexit 0');
  await page.click('[data-testid=rule-add]');
  await page.locator('[data-testid=rule-input]').first().fill('Overfitting:patience=3');
  await page.click('[data-testid=new-submit]');
  await until(async () => /unknown rule/.test(await page.textContent('[data-testid=new-job-errors]')), 'the server\'s message');
  const msg = await page.textContent('[data-testid=new-job-error]');
  assert.match(msg, /Overfitting/);
  assert.match(msg, /known rules: .*LossNotDecreasing.*Overfit/);
  assert.match(await page.textContent('[data-testid=new-rules] [data-testid=card-error]'), /unknown rule/);
  assert.equal(await count('[data-testid=card-error]'), 1, 'only the rules are marked now');
  assert.match(page.url(), /\/jobs\/new$/, 'the form stays');
  assert.equal(await page.isEnabled('[data-testid=new-submit]'), true);
  assert.equal((await api('GET', '/api/atelier/jobs?limit=500')).body.jobs.length, before, 'no job');
  await fullShot(page, '/tmp/jobs-new-error.png');
  assert.equal(errors.filter((e) => /status of 400/.test(e)).length, 1, errors.join('\n'));
  errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
  // fixed, the same form starts the job; its input is the dataset uploaded earlier, picked from the list
  await page.locator('[data-testid=rule-input]').first().fill('Overfit:patience=3');
  const row = page.locator('[data-testid=input-row]').first();
  await row.locator('[data-testid=input-name]').fill('data');
  await row.locator('[data-testid=input-dataset]').selectOption(newJob.csvName);
  await page.click('[data-testid=new-submit]');
  await page.waitForURL((u) => /\/jobs\/[0-9a-f]+$/.test(u.pathname));
  assert.equal((await api('GET', '/api/atelier/jobs?limit=500')).body.jobs.length, before + 1);
  const job = await jobOf(page.url().split('/').pop());
  assert.deepEqual(job.spec.rules, ['Overfit:patience=3']);
  assert.deepEqual(job.spec.inputs, { data: 'datasets/' + newJob.csvName });
  assert.equal(job.spec.code, undefined, 'no code, no folder');
  await waitJob(server.url, job.id, 30000);
});
