// Notebooks in the Studio, on a real server with --notebook-python set to the venv's Python (jupyterlab,
// ipykernel, mlflow, pandas, matplotlib): the user's real JupyterLab inside the Studio (a cell typed,
// run and saved, logging to this server through mlflow, with Jupyter's token never reaching the
// browser), a server-side preview of an executed notebook (markdown, images, sandboxed HTML outputs
// whose scripts do not run, coloured tracebacks), a notebook run as a job from its preview with
// parameters (followed live), the runs list with a parameter diff, and a schedule created, seen
// firing and deleted from the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startServer, launchBrowser, until, fullShot, call, pythonBin, layoutProblems } from './harness.mjs';
import { checkLayout } from './layout.mjs';

let server, browser, page, ws;
const errors = [];
const labConsole = []; // JupyterLab's own console errors (inside its frame): reported, not failures
const blockedScripts = []; // Chromium's word that a sandboxed output's <script> did not run
const api = (method, path, body) => call(server.url, method, path, body);
const shot = (name) => fullShot(page, `/tmp/notebooks-${name}.png`, 6000);
const nbAt = (sel) => page.locator(sel);

/** An nbformat 4 notebook with a python3 kernelspec; cells are [type, source, tags?]. */
function notebook(cells) {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' },
    },
    cells: cells.map(([type, source, tags], i) => ({
      id: `cell-${i}`,
      cell_type: type,
      metadata: tags ? { tags } : {},
      source,
      ...(type === 'code' ? { execution_count: null, outputs: [] } : {}),
    })),
  }, null, 1);
}

// The notebook sections 3 and 4 run: a parameters cell, a print of it, and a pause so that the job
// is seen running.
const PARAM_NB = notebook([
  ['markdown', '# Parametrised'],
  ['code', 'alpha = 0.1', ['parameters']],
  ['code', 'print("alpha is", alpha)'],
  ['code', 'import time; time.sleep(2)'],
]);

/** Tables whose cells do not sit under their column headers (e.g. a `display:flex` <td>, which is no
 * table cell: two of them side by side end up sharing one column). */
async function misalignedCells(sel) {
  return page.locator(sel).evaluateAll((tables) => {
    const out = [];
    for (const t of tables) {
      const heads = [...t.querySelectorAll('thead th')].map((th) => th.getBoundingClientRect());
      for (const tr of t.querySelectorAll('tbody tr')) {
        const cells = [...tr.children];
        if (cells.some((c) => c.colSpan > 1)) continue;
        const rowTop = tr.getBoundingClientRect().top;
        cells.forEach((c, i) => {
          const r = c.getBoundingClientRect();
          const what = `${t.dataset.testid || t.className} row ${tr.dataset.testid || ''} cell ${i} (${c.className || c.textContent.trim().slice(0, 20)})`;
          if (getComputedStyle(c).display !== 'table-cell') out.push(`${what} is display:${getComputedStyle(c).display}`);
          if (heads[i] && Math.abs(r.left - heads[i].left) > 1) out.push(`${what} starts at x=${Math.round(r.left)}, its header at x=${Math.round(heads[i].left)}`);
          if (Math.abs(r.top - rowTop) > 1) out.push(`${what} starts ${Math.round(r.top - rowTop)}px below its row's top`);
        });
      }
    }
    return out;
  });
}

/** A screenshot of the whole page at `width`, in a viewport as tall as the document (lazy and
 * out-of-process frames below the fold are painted too). */
async function shotAt(width, path) {
  await page.setViewportSize({ width, height: 900 });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width, height: Math.min(6000, Math.max(900, height)) });
  await page.screenshot({ path });
  await page.setViewportSize({ width: 1360, height: 900 });
}

/** JupyterLab's token, read from the environment of the server's JupyterLab child (Linux). */
function jupyterToken(serverPid) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== serverPid) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      const t = env.find((e) => e.startsWith('JUPYTER_TOKEN='));
      if (t) return t.slice('JUPYTER_TOKEN='.length);
    } catch (_) { /* gone, or not ours */ }
  }
  return null;
}

before(async () => {
  server = await startServer(['--notebook-python', pythonBin(), '--job-workers', '3']);
  ws = join(server.dataDir, 'workspaces', 'default');
  mkdirSync(ws, { recursive: true });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  // Errors of the Studio's own pages fail the suite; JupyterLab's (inside its frame) are reported.
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = (m.location() && m.location().url) || '';
    if (/^Blocked script execution in 'about:srcdoc'/.test(m.text())) blockedScripts.push(m.text());
    else if (where.includes('/notebooks/default/')) labConsole.push(m.text());
    else errors.push('console: ' + m.text() + ' @ ' + where);
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (labConsole.length) console.log('JupyterLab console errors (not failures):\n  ' + labConsole.join('\n  '));
  assert.deepEqual(errors, [], 'no errors in the Studio pages');
});

test('JupyterLab inside the Studio: a cell logs a run to this server, is saved, and the token stays out of the browser', async () => {
  writeFileSync(join(ws, 'lab.ipynb'), notebook([['code', '']]));
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (w) => urls.push(w.url()));

  await page.goto(server.url + '/notebooks?lab=lab.ipynb');
  const frameEl = nbAt('[data-testid=nb-lab-frame]');
  await frameEl.waitFor({ timeout: 60000 });
  const lab = page.frameLocator('[data-testid=nb-lab-frame]');
  const editor = lab.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content').first();
  await editor.waitFor({ timeout: 60000 });
  // the kernel of the notebook is up and idle
  const indicator = lab.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  await until(async () => {
    // a dialog (kernel choice, news) would swallow the keys: dismiss it
    const dialog = lab.locator('.jp-Dialog');
    if (await dialog.count()) await dialog.locator('.jp-mod-accept').first().click().catch(() => {});
    return (await indicator.getAttribute('data-status').catch(() => null)) === 'idle';
  }, 'an idle kernel in JupyterLab', 60000, 250);

  const code = 'import mlflow; mlflow.set_experiment("from-jupyterlab"); r = mlflow.start_run(run_name="lab-run"); ' +
    'mlflow.log_metric("lab_metric", 42); mlflow.end_run(); print("logged", r.info.run_id)';
  // On a loaded machine JupyterLab can still be settling when the editor first shows: type until the
  // cell holds the code (a lost keystroke or an autocompletion would make the run fail elsewhere).
  const cell = lab.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').first();
  await until(async () => {
    const text = (await editor.textContent().catch(() => '')) || '';
    if (text.replace(/\s+/g, ' ').includes(code)) return true;
    await editor.click();
    await page.keyboard.press('Control+a');
    await page.keyboard.press('Delete');
    await page.keyboard.type(code);
    await page.keyboard.press('Escape'); // closes a completer popup; leaves the cell in command mode
    return false;
  }, 'the code in the cell', 60000, 500);
  await editor.click();
  await page.keyboard.press('Shift+Enter');
  const output = cell.locator('.jp-OutputArea'); // stderr (mlflow's notes) and stdout
  // importing mlflow in a fresh kernel takes tens of seconds when CI's two cores are busy
  let seen = '';
  await until(async () => {
    seen = ((await output.textContent().catch(() => '')) || '') +
      ' [prompt ' + ((await cell.locator('.jp-InputPrompt').first().textContent().catch(() => '')) || '') + ']';
    return /logged [0-9a-f]{32}/.test(seen) || null;
  }, 'the cell\'s output', 150000, 250).catch((e) => { throw new Error(e.message + ' — the cell showed: ' + seen.slice(-600)); });
  const runId = /logged ([0-9a-f]{32})/.exec(await output.textContent())[1];
  await page.keyboard.press('Control+s');
  await until(() => {
    let nb;
    try { nb = JSON.parse(readFileSync(join(ws, 'lab.ipynb'), 'utf8')); } catch (_) { return false; } // mid-write
    return nb.cells[0].outputs.some((o) => (Array.isArray(o.text) ? o.text.join('') : o.text || '').includes('logged ' + runId));
  }, 'the saved notebook on disk with the output', 20000, 200);
  const saved = JSON.parse(readFileSync(join(ws, 'lab.ipynb'), 'utf8'));
  assert.match([].concat(saved.cells[0].source).join(''), /mlflow\.log_metric\("lab_metric", 42\)/);
  await shot('lab');
  assert.deepEqual(await layoutProblems(page, ['.page-head']), []);
  // JupyterLab fills the page below the Studio's header, without a scrollbar of the page's own
  const fb = await frameEl.boundingBox();
  const mainBox = await nbAt('main').boundingBox();
  assert.ok(fb.height >= 560, `the frame is ${fb.height}px tall`);
  assert.ok(fb.y + fb.height <= 900, `the frame ends at ${fb.y + fb.height}px, below the 900px window`);
  assert.ok(Math.abs(fb.x - mainBox.x) < 40 && fb.width > mainBox.width - 80, `the frame (${fb.x}+${fb.width}) spans <main> (${mainBox.x}+${mainBox.width})`);
  assert.ok(await page.evaluate(() => document.documentElement.scrollHeight <= window.innerHeight + 1), 'no page scrollbar around JupyterLab');

  // the kernel logged to this server
  const exp = await api('GET', '/api/2.0/mlflow/experiments/get-by-name?experiment_name=from-jupyterlab');
  assert.equal(exp.status, 200, JSON.stringify(exp.body));
  const expId = exp.body.experiment.experiment_id;
  const run = await api('GET', '/api/2.0/mlflow/runs/get?run_id=' + runId);
  assert.equal(run.status, 200);
  assert.equal(run.body.run.info.experiment_id, expId);
  assert.equal(run.body.run.info.run_name, 'lab-run');
  assert.equal(run.body.run.info.status, 'FINISHED');
  assert.deepEqual(run.body.run.data.metrics.map((m) => [m.key, m.value]), [['lab_metric', 42]]);

  // Jupyter's token: not in the frame's address, the pages' HTML, or any URL the browser asked for
  const token = jupyterToken(server.pid);
  const frame = page.frames().find((f) => f.url().includes('/notebooks/default/'));
  assert.ok(frame, 'the JupyterLab frame');
  assert.match(frame.url(), new RegExp('^' + server.url.replace(/[.]/g, '\\.') + '/notebooks/default/lab/tree/lab\\.ipynb'));
  const top = await page.content();
  const inner = await frame.content();
  for (const [what, text] of [['the frame URL', frame.url()], ['the page', top], ['the frame', inner], ...urls.map((u) => ['request ' + u, u])]) {
    assert.doesNotMatch(text, /[?&]token=/, what);
    if (token) assert.ok(!text.includes(token), `the token is in ${what}`);
  }
  assert.ok(urls.some((u) => u.startsWith(server.url.replace('http', 'ws') + '/notebooks/default/api/kernels/')), 'the kernel websocket went through the proxy');
  assert.ok(!urls.some((u) => !u.startsWith(server.url) && !u.startsWith(server.url.replace('http', 'ws')) && !u.startsWith('data:') && !u.startsWith('blob:')),
    'every request went to the Studio\'s origin: ' + urls.filter((u) => !u.startsWith(server.url) && !u.startsWith(server.url.replace('http', 'ws'))).slice(0, 5).join(', '));
  if (!token) console.log('note: JupyterLab\'s token could not be read from /proc; only "token=" was checked');
  page.removeAllListeners('request');
  page.removeAllListeners('websocket');

  // ... and the Studio's experiments page shows the run with its metric
  await page.goto(server.url + '/experiments');
  const expRow = nbAt(`[data-testid=experiment-row][data-experiment-id="${expId}"]`);
  await expRow.waitFor();
  assert.equal(await expRow.locator('[data-testid=experiment-link]').textContent(), 'from-jupyterlab');
  await expRow.locator('[data-testid=experiment-link]').click();
  const runRow = nbAt(`[data-testid=run-row][data-run-id="${runId}"]`);
  await runRow.waitFor();
  assert.equal(await runRow.locator('[data-testid=run-link]').textContent(), 'lab-run');
  assert.equal((await runRow.locator('td[data-col="metrics.lab_metric"]').textContent()).trim(), '42');
  await shot('lab-experiment');
});

test('a notebook previews without a kernel: markdown, images, sandboxed HTML whose scripts do not run, coloured errors', async () => {
  copyFileSync(join(ROOT, 'crates/nbrender/tests/fixtures/preview.ipynb'), join(ws, 'preview.ipynb'));
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.goto(server.url + '/notebooks?preview=' + encodeURIComponent('workspace:preview.ipynb'));
  const pv = nbAt('[data-testid=nb-preview]');
  await pv.locator('.nb').waitFor();
  assert.equal((await nbAt('h1.nb-title').textContent()).trim(), 'preview.ipynb');
  // markdown as elements
  assert.equal((await pv.locator('.nb-md h1').first().textContent()).trim(), 'Preview fixture');
  assert.deepEqual((await pv.locator('.nb-md ul li').allTextContents()).map((t) => t.trim()), ['alpha', 'beta', 'gamma']);
  assert.equal(await pv.locator('.nb-md ul li strong').textContent(), 'beta');
  const mdTable = pv.locator('.nb-md table');
  assert.deepEqual((await mdTable.locator('th').allTextContents()).map((t) => t.trim()), ['metric', 'value']);
  assert.deepEqual((await mdTable.locator('tbody tr').first().locator('td').allTextContents()).map((t) => t.trim()), ['accuracy', '0.91']);
  // streams
  assert.match(await pv.locator('.nb-stdout').textContent(), /hello from stdout/);
  assert.match(await pv.locator('.nb-stderr').textContent(), /warning on stderr/);
  // the matplotlib figure
  const img = pv.locator('img[src^="data:image/png"]');
  assert.equal(await img.count(), 1);
  await img.scrollIntoViewIfNeeded();
  assert.ok(await img.isVisible());
  await until(() => img.evaluate((i) => i.complete && i.naturalWidth > 0), 'the PNG decoded');
  const box = await img.boundingBox();
  assert.ok(box.width > 20 && box.height > 20, JSON.stringify(box));
  // HTML outputs in script-less sandboxed frames; the DataFrame's table is inside one
  const frames = pv.locator('iframe.nb-html');
  assert.equal(await frames.count(), 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(await frames.nth(i).getAttribute('sandbox'), '');
    await frames.nth(i).scrollIntoViewIfNeeded();
  }
  const df = page.frameLocator('iframe.nb-html >> nth=0');
  await df.locator('table').waitFor();
  assert.deepEqual((await df.locator('tbody tr').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim()), ['0 a 1.50', '1 b 2.25', '2 c 3.00']);
  const hi = page.frameLocator('iframe.nb-html >> nth=1');
  assert.equal(await hi.locator('b').textContent(), 'hi');
  // the frame is tall enough for its table (no inner scrollbar cutting it)
  const dfFrame = await frames.nth(0).boundingBox();
  const tableHeight = await df.locator('table').evaluate((t) => t.getBoundingClientRect().bottom);
  assert.ok(tableHeight <= dfFrame.height, `the DataFrame (${tableHeight}px) fits its frame (${dfFrame.height}px)`);
  // the traceback, coloured
  const err = pv.locator('.nb-error');
  assert.match(await err.textContent(), /ZeroDivisionError/);
  const colours = await err.locator('span[class*="ansi-"]').evaluateAll((ss) => ss.map((s) => getComputedStyle(s).color));
  const plain = await err.evaluate((e) => getComputedStyle(e).color);
  assert.ok(colours.length >= 2, 'ANSI spans in the traceback');
  assert.ok(colours.some((c) => c !== plain), `coloured spans (${[...new Set(colours)]} vs ${plain})`);
  const zde = err.locator('span[class*="ansi-red"]', { hasText: 'ZeroDivisionError' }).first();
  assert.equal(await zde.count(), 1);
  assert.match(await zde.evaluate((s) => getComputedStyle(s).color), /^rgb\((\d+), (\d+), (\d+)\)$/);
  const [r, g, b] = (await zde.evaluate((s) => getComputedStyle(s).color)).match(/\d+/g).map(Number);
  assert.ok(r > g + 60 && r > b + 60, `ZeroDivisionError in red (rgb ${r},${g},${b})`);
  // the <script> of the HTML output ran nowhere and left no trace
  assert.notEqual(await page.title(), 'pwned');
  const outputFrames = page.frames().filter((f) => f.url() === 'about:srcdoc');
  assert.equal(outputFrames.length, 2, 'both HTML outputs are frames of their own');
  for (const f of outputFrames) assert.equal(await f.title(), '', 'the output frame\'s title is untouched');
  let hiFrame = null;
  for (const f of outputFrames) if ((await f.content()).includes('<b>hi</b>')) hiFrame = f;
  assert.ok(hiFrame, 'the frame of the HTML output');
  // a script left in the sandboxed document (rather than stripped) must have been refused by Chromium
  if (await hiFrame.evaluate(() => document.querySelectorAll('script').length)) {
    await until(() => blockedScripts.length >= 1, 'Chromium to block the output\'s script', 5000);
  }
  assert.equal(await page.evaluate(() => [...document.querySelectorAll('script')].some((s) => /pwned/.test(s.textContent))), false);
  // (the cell's source shows the code, as code; nothing else may hold it)
  assert.equal(await page.evaluate(() => {
    const copy = document.documentElement.cloneNode(true);
    copy.querySelectorAll('.nb-source').forEach((e) => e.remove());
    copy.querySelectorAll('iframe').forEach((e) => e.removeAttribute('srcdoc'));
    return copy.innerHTML.includes('pwned') || Object.keys(window).some((k) => /pwned/.test(k));
  }), false, 'no trace of the script outside the sandboxed frames and the cell\'s source');
  // actions
  assert.equal(await nbAt('[data-testid=nb-preview-open]').getAttribute('href'), '/notebooks?lab=preview.ipynb');
  assert.equal(await nbAt('[data-testid=nb-preview-run]').textContent(), 'Run as job');

  await page.evaluate(() => window.scrollTo(0, 0));
  assert.deepEqual(await layoutProblems(page, ['.page-head']), [], 'layout at 1400x900');
  await checkLayout(page, { label: 'notebook preview' });
  await shotAt(1400, '/tmp/notebooks-preview.png');
  await page.setViewportSize({ width: 1024, height: 768 });
  assert.deepEqual(await layoutProblems(page, ['.page-head']), [], 'layout at 1024x768');
  await shotAt(1024, '/tmp/notebooks-preview-1024.png');
});

const scene = {};

/** On a job's preview: waits for the end, recording the statuses the badge went through. */
async function followJob(id) {
  await page.waitForURL((u) => u.searchParams.get('preview') === 'job:' + id);
  const badge = nbAt('[data-testid=nb-job-status]');
  const seen = [];
  await until(async () => {
    const s = await badge.getAttribute('data-status', { timeout: 1000 }).catch(() => null);
    if (s && seen[seen.length - 1] !== s) seen.push(s);
    return s === 'succeeded' || s === 'failed' || s === 'cancelled';
  }, 'job ' + id + ' to end on its preview', 90000, 100);
  return seen;
}

test('a notebook runs as a job from its preview with parameters, followed live; the list shows the runs and diffs them', async () => {
  writeFileSync(join(ws, 'params.ipynb'), PARAM_NB);
  await page.goto(server.url + '/notebooks?preview=' + encodeURIComponent('workspace:params.ipynb') + '&run=1');
  const form = nbAt('[data-testid=nb-run-form]');
  await form.waitFor();
  await page.fill('[data-testid=nb-run-params]', 'alpha=0.7');
  await shot('run-form');
  await page.click('[data-testid=nb-run-submit]');
  await page.waitForURL(/preview=job%3A/);
  const id1 = new URL(page.url()).searchParams.get('preview').slice(4);
  const seen1 = await followJob(id1);
  const job1 = (await api('GET', '/api/atelier/jobs/' + id1)).body.job;
  assert.equal(job1.status, 'succeeded', job1.error);
  assert.deepEqual(seen1.filter((s) => s !== 'queued'), ['running', 'succeeded'], 'the badge went running → succeeded: ' + seen1);
  const pv = nbAt('[data-testid=nb-preview]');
  await until(async () => /alpha is 0\.7/.test(await pv.textContent()), 'the printed parameter in the output');
  assert.match(await pv.textContent(), /injected parameters/);
  assert.match(await nbAt('header.page-head .sub').textContent(), /alpha=0\.7/);
  assert.match(await nbAt('h1.nb-title').textContent(), /Run of params\.ipynb/);
  await shot('job-done');
  assert.deepEqual(await layoutProblems(page, ['.page-head']), []);

  // the executed notebook is the job run's artifact: the run page's artifact browser previews it
  await page.goto(server.url + '/runs/' + job1.progress.run_id);
  for (const p of ['output', 'output/notebook', 'output/notebook/params.ipynb']) {
    await page.click(`[data-testid=artifact-entry][data-path="${p}"]`);
  }
  await page.click('[data-testid=preview-notebook]');
  await until(async () => /alpha is 0\.7/.test((await nbAt('[data-testid=nb-preview]').textContent()) || ''), 'the run artifact previewed');
  await page.goto(server.url + '/notebooks?preview=' + encodeURIComponent('job:' + id1));
  await nbAt('[data-testid=nb-preview-run]').waitFor();

  // again, with another alpha, from the job's "Run again"
  await page.click('[data-testid=nb-preview-run]');
  await form.waitFor();
  await page.fill('[data-testid=nb-run-params]', 'alpha=0.9');
  await page.click('[data-testid=nb-run-submit]');
  await page.waitForURL((u) => /^job:/.test(u.searchParams.get('preview') || '') && u.searchParams.get('preview') !== 'job:' + id1);
  const id2 = new URL(page.url()).searchParams.get('preview').slice(4);
  const sources = (await api('GET', '/api/atelier/notebooks/runs')).body.runs.filter((r) => [id1, id2].includes(r.job_id)).map((r) => r.source);
  assert.deepEqual(sources, ['workspace:default/params.ipynb', 'workspace:default/params.ipynb'], 'both runs are of the workspace notebook');

  // the list: the workspace row follows the newest run live
  await page.goto(server.url + '/notebooks');
  const row = nbAt('[data-testid=nb-row][data-path="params.ipynb"]');
  await row.waitFor();
  const rowSeen = [];
  await until(async () => {
    const s = await row.locator('[data-testid=nb-run-status]').getAttribute('data-status', { timeout: 1000 }).catch(() => null);
    if (s && rowSeen[rowSeen.length - 1] !== s) rowSeen.push(s);
    const j = (await api('GET', '/api/atelier/jobs/' + id2)).body.job;
    return s === 'succeeded' && j.status === 'succeeded';
  }, 'the second run to succeed on the list', 90000, 150);
  assert.ok(rowSeen.length >= 2 && ['queued', 'running'].includes(rowSeen[0]), 'the row showed the second run while it ran: ' + rowSeen);
  assert.equal(await nbAt('[data-testid=nb-row][data-path="lab.ipynb"] [data-testid=nb-run-status]').count(), 0, 'lab.ipynb never ran');
  assert.match(await nbAt('[data-testid=nb-row][data-path="lab.ipynb"]').textContent(), /never run/);

  // the runs table has both; ticking them shows the parameter diff
  const r1 = nbAt(`[data-testid=nb-run-row][data-job="${id1}"]`);
  const r2 = nbAt(`[data-testid=nb-run-row][data-job="${id2}"]`);
  await r1.waitFor();
  await r2.waitFor();
  assert.match(await r1.locator('.nb-params').textContent(), /alpha=0\.7/);
  assert.match(await r2.locator('.nb-params').textContent(), /alpha=0\.9/);
  assert.equal(await r1.locator('[data-testid=nb-run-status]').getAttribute('data-status'), 'succeeded');
  await r1.locator('[data-testid=nb-pick]').check();
  await r2.locator('[data-testid=nb-pick]').check();
  const diff = nbAt('[data-testid=nb-diff]');
  await diff.waitFor();
  const alpha = diff.locator('[data-testid=nb-diff-row][data-param=alpha]');
  assert.match(await alpha.getAttribute('class'), /nb-changed/);
  const cells = (await alpha.locator('td').allTextContents()).map((t) => t.trim());
  assert.equal(cells[0], 'alpha');
  assert.deepEqual(cells.slice(1).sort(), ['0.7', '0.9']);
  assert.equal(await diff.locator('[data-testid=nb-diff-row]').count(), 1);
  assert.deepEqual(await diff.locator('[data-testid=nb-diff-status]').evaluateAll((b) => b.map((x) => x.dataset.status)), ['succeeded', 'succeeded']);
  await shot('list-diff');
  assert.deepEqual(await layoutProblems(page, ['.page-head', '.form-row']), []);
  await checkLayout(page, { label: 'notebooks: runs and their diff' });
  assert.deepEqual(await misalignedCells('table.nb-table, table.nb-diff'), []);
  scene.runs = [id1, id2];
});

test('a schedule made from the page fires on its cron, shows its runs and is deleted', async () => {
  await page.goto(server.url + '/notebooks');
  await nbAt('[data-testid=nb-schedules]').waitFor();
  await nbAt('.nb-new-sched summary').click();
  await page.fill('[data-testid=nb-sched-name]', 'every-2s');
  await page.selectOption('[data-testid=nb-sched-notebook]', 'workspace:params.ipynb');
  await page.fill('[data-testid=nb-sched-cron]', '*/2 * * * * *');
  await page.fill('[data-testid=nb-sched-params]', 'alpha=0.3');
  await shot('schedule-form');
  assert.deepEqual(await layoutProblems(page, ['.page-head', '.form-row']), []);
  await page.click('[data-testid=nb-sched-save]');
  const row = nbAt('[data-testid=nb-sched-row][data-name="every-2s"]');
  await row.waitFor({ timeout: 10000 }).catch(async (e) => {
    throw new Error(e.message + ' — ' + (await nbAt('[data-testid=nb-sched-error]').textContent().catch(() => 'no error shown')));
  });
  assert.match(await row.textContent(), /params\.ipynb/);
  assert.equal((await row.locator('code').textContent()).trim(), '*/2 * * * * *');
  assert.match(await row.locator('.nb-params').textContent(), /alpha=0\.3/);
  await until(async () => (await row.locator('[data-testid=nb-sched-run][data-status=succeeded]').count()) >= 1, 'a succeeded run in the schedule\'s row', 60000, 200);
  const sched = (await api('GET', '/api/atelier/notebook-schedules/every-2s')).body;
  const done = sched.runs.find((r) => r.status === 'succeeded');
  assert.ok(done, JSON.stringify(sched.runs.map((r) => r.status)));
  assert.deepEqual(done.parameters, { alpha: 0.3 });
  assert.equal(done.schedule, 'every-2s');
  await shot('schedule');
  assert.deepEqual(await layoutProblems(page, ['.page-head']), []);
  await checkLayout(page, { label: 'notebooks: a schedule and its runs' });
  assert.deepEqual(await misalignedCells('[data-testid=nb-schedules] table, [data-testid=nb-workspace] table'), []);

  // Delete asks first
  const dialogs = [];
  page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  await row.locator('[data-testid=nb-sched-delete]').click();
  await row.waitFor({ state: 'detached', timeout: 10000 });
  assert.deepEqual(dialogs, ['Delete schedule every-2s?']);
  assert.equal((await api('GET', '/api/atelier/notebook-schedules/every-2s')).status, 404);
  assert.deepEqual((await api('GET', '/api/atelier/notebook-schedules')).body.schedules, []);
  // and it fires no more (a firing already under way when it was deleted may still land)
  const deletedAt = Date.now();
  await new Promise((r) => setTimeout(r, 3000)); // longer than the cron's period: a firing would show
  const late = (await api('GET', '/api/atelier/notebooks/runs?schedule=every-2s&limit=1000')).body.runs.filter((r) => r.created_ms > deletedAt + 500);
  assert.deepEqual(late.map((r) => r.job_id), [], 'no firing after the delete');
  await shot('schedule-deleted');
});

test('a failing notebook schedule marks the Notebooks link on every page until it is deleted', async () => {
  writeFileSync(join(ws, 'fails.ipynb'), notebook([['code', "raise RuntimeError('no data today')"]]));
  const r = await api('POST', '/api/atelier/notebook-schedules', { name: 'fails', source: 'workspace:fails.ipynb', cron: '*/2 * * * * *' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await until(async () => (await api('GET', '/api/atelier/notebook-schedules/fails')).body.status === 'failing', 'the schedule to be failing', 60000, 300);
  await page.goto(server.url + '/experiments');
  const mark = page.locator('[data-testid=nav-notebooks-alert]');
  await mark.waitFor();
  assert.equal(await mark.textContent(), '1');
  await page.goto(server.url + '/notebooks');
  const row = page.locator('[data-testid=nb-sched-row][data-name=fails]');
  await row.locator('[data-testid=nb-sched-failing]').waitFor();
  assert.equal((await api('DELETE', '/api/atelier/notebook-schedules/fails')).status, 200);
  // the mark is drawn from the schedules list every page asks for
  const listed = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/atelier/notebook-schedules');
  await page.goto(server.url + '/experiments');
  await listed;
  await page.locator('[data-testid=nav-experiments]').waitFor();
  await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
  assert.equal(await page.locator('[data-testid=nav-notebooks-alert]').count(), 0);
});
