// A web page on another origin, opened in a real browser, tries to drive an open Atelier server the
// way a malicious site would: a form posting text/plain "JSON" (no preflight), a no-cors fetch, and a
// preflighted JSON fetch. None may delete the run; the Studio itself (same origin) still can, and
// its pages load under their Content-Security-Policy without a violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, newPage, until, call, mlflow } from './harness.mjs';

let server, browser, page, evil, evilUrl;
const errors = [];
const api = (method, path, body) => call(server.url, method, path, body);

function attackPage(target, runId) {
  const body = JSON.stringify({ run_id: runId });
  return `<!doctype html><html><body>
<form id="f" method="POST" action="${target}/api/2.0/mlflow/runs/delete" enctype="text/plain" target="sink">
  <input type="hidden" name='${body.slice(0, -1)}, "x": "' value='"}'>
</form>
<iframe name="sink"></iframe>
<script>
  window.results = {};
  fetch('${target}/api/2.0/mlflow/runs/delete', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '${body}' })
    .then(() => { window.results.nocors = 'sent'; }, (e) => { window.results.nocors = 'error ' + e; });
  fetch('${target}/api/2.0/mlflow/runs/delete', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '${body}' })
    .then((r) => { window.results.cors = 'status ' + r.status; }, (e) => { window.results.cors = 'blocked'; });
  fetch('${target}/api/2.0/mlflow/runs/get?run_id=${runId}')
    .then((r) => r.text()).then((t) => { window.results.read = t; }, () => { window.results.read = 'blocked'; });
  document.getElementById('f').submit();
  setTimeout(() => { window.results.formDone = true; }, 1500);
</script></body></html>`;
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await newPage(browser, errors);
});

after(async () => {
  if (browser) await browser.close();
  if (evil) await new Promise((r) => evil.close(r));
  if (server) await server.stop();
});

test('a page on another origin cannot delete a run, and cannot read answers', async () => {
  const { run_id: runId } = await mlflow(server.url, 'new-run', 'cross-site', 'victim');
  evil = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(attackPage(server.url, runId));
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  evilUrl = `http://127.0.0.1:${evil.address().port}`;
  const attacker = await browser.newPage();
  await attacker.goto(evilUrl);
  const results = await until(() => attacker.evaluate(() => {
    const r = window.results || {};
    return r.formDone && r.nocors && r.cors && r.read ? r : null;
  }), 'the attack page to finish');
  assert.equal(results.cors, 'blocked', 'the preflighted JSON call is refused');
  assert.equal(results.read, 'blocked', 'answers cannot be read cross-origin');
  await attacker.close();
  const got = await api('GET', `/api/2.0/mlflow/runs/get?run_id=${runId}`);
  assert.equal(got.status, 200);
  assert.equal(got.body.run.info.lifecycle_stage, 'active', 'the run survived every attempt');
  assert.match(server.log(), /refused a cross-origin request/, 'the server logged the refusal');
});

test('the Studio on its own origin still deletes, under its CSP, with no violation', async () => {
  const { run_id: runId } = await mlflow(server.url, 'new-run', 'same-origin', 'mine');
  const res = await page.goto(server.url + '/experiments');
  assert.match(res.headers()['content-security-policy'] || '', /script-src 'self'/);
  await page.waitForSelector('main#main');
  const status = await page.evaluate(async (id) => {
    const r = await fetch('/api/2.0/mlflow/runs/delete', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ run_id: id }) });
    return r.status;
  }, runId);
  assert.equal(status, 200);
  const got = await api('GET', `/api/2.0/mlflow/runs/get?run_id=${runId}`);
  assert.equal(got.body.run.info.lifecycle_stage, 'deleted');
  for (const path of ['/', '/models', '/endpoints', '/autopilot', '/jobs', '/monitor']) {
    // the live-update stream stays open, so "network idle" never comes: let each page render
    await page.goto(server.url + path);
    await page.waitForSelector('main#main');
    await page.waitForTimeout(600);
  }
  const csp = errors.filter((e) => /Content Security Policy/i.test(e));
  assert.deepEqual(csp, [], 'no page breaks its Content-Security-Policy');
});
