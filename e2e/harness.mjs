// Shared plumbing for the Studio browser tests: start the Atelier server on a free port with a fresh
// data dir, drive the real MLflow Python client, and launch Debian's Chromium through playwright-core.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLIENT = join(ROOT, 'e2e', 'mlflow_client.py');

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitHealthy(url, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`atelier exited with code ${proc.exitCode}`);
    try {
      const res = await fetch(url + '/health');
      if (res.status === 200) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url}/health did not answer 200 within ${timeoutMs} ms`);
}

/**
 * Starts `atelier serve` (ATELIER_BIN, default target/debug/atelier) on a free port with a fresh
 * data dir, with `extraArgs` after the others (e.g. ['--webhook-allowed-hosts', '127.0.0.1']);
 * `prepare(dataDir, bin)` runs first.
 * ATELIER_URL points the tests at an already running server instead (for development).
 */
export async function startServer(extraArgs = [], { prepare } = {}) {
  if (process.env.ATELIER_URL) {
    const url = process.env.ATELIER_URL.replace(/\/$/, '');
    await waitHealthy(url, null, 10000);
    return { url, log: () => '', stop: async () => {} };
  }
  const bin = resolve(ROOT, process.env.ATELIER_BIN || 'target/debug/atelier');
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run cargo build -p atelier (or set ATELIER_BIN)`);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'atelier-e2e-'));
  // (e.g. `atelier users create …` on the data dir before a --require-auth server starts)
  if (prepare) await prepare(dataDir, bin);
  const proc = spawn(bin, ['serve', '--port', String(port), '--data-dir', dataDir, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, proc, 20000);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(e.message + '\n--- server output ---\n' + output);
  }
  return {
    url,
    dataDir,
    pid: proc.pid,
    log: () => output,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs e2e/mlflow_client.py with the real mlflow client; resolves with its JSON answer. */
export function mlflow(url, ...args) {
  const python = resolve(ROOT, process.env.ATELIER_PYTHON || '.venv/bin/python');
  return new Promise((ok, fail) => {
    execFile(python, [CLIENT, url, ...args], {
      env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', PYTHONUNBUFFERED: '1' },
      timeout: 120000,
    }, (err, stdout, stderr) => {
      if (err) return fail(new Error(`mlflow client ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (!line) return fail(new Error(`mlflow client printed no JSON:\n${stdout}\n${stderr}`));
      ok(JSON.parse(line));
    });
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A new page that records uncaught page errors and failed console errors into `errors`. */
export async function newPage(browser, errors) {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  return page;
}

/** Polls fn until it returns a truthy value (or throws after timeoutMs with the last value). */
export async function until(fn, what, timeoutMs = 30000, everyMs = 150) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
}

/** Screenshot of the whole page, rendered in a viewport as tall as the document (so that sticky and
 * fixed elements sit where a user sees them), then back to the normal viewport. */
export async function fullShot(page, path, maxHeight = 5000) {
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1360, height: Math.min(maxHeight, Math.max(900, height)) });
  await page.screenshot({ path });
  await page.setViewportSize({ width: 1360, height: 900 });
}

/** A request to the server's API: JSON bodies (or raw strings / bytes) in, `{status, body}` out. */
export async function call(baseUrl, method, path, body, headers) {
  const raw = typeof body === 'string' || body instanceof Uint8Array;
  const res = await fetch(baseUrl + path, {
    method,
    headers: headers || (body === undefined ? {} : { 'Content-Type': 'application/json' }),
    body: body === undefined ? undefined : (raw ? body : JSON.stringify(body)),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** The Python with mlflow installed (ATELIER_PYTHON, default .venv/bin/python), as an absolute path. */
export function pythonBin() {
  return resolve(ROOT, process.env.ATELIER_PYTHON || '.venv/bin/python');
}

/** Uploads `files` ({ name: text }) as a job's code folder through the artifact API; returns the folder. */
export async function uploadCode(baseUrl, files) {
  const folder = `jobs-code/${randomUUID().replace(/-/g, '')}`;
  for (const [name, text] of Object.entries(files)) {
    const res = await fetch(`${baseUrl}/api/2.0/mlflow-artifacts/artifacts/${folder}/${name}`, { method: 'PUT', body: text });
    if (res.status !== 200) throw new Error(`upload of ${name}: HTTP ${res.status} ${await res.text()}`);
  }
  return folder;
}

/** Waits until the job has ended (succeeded, failed or cancelled); resolves with it. */
export async function waitJob(baseUrl, id, timeoutMs = 120000) {
  return until(async () => {
    const j = (await call(baseUrl, 'GET', '/api/atelier/jobs/' + id)).body.job;
    return j.status !== 'queued' && j.status !== 'running' ? j : null;
  }, 'job ' + id + ' to end', timeoutMs, 200);
}

/**
 * Layout problems of the page as it is now: the document wider than the viewport, an element inside
 * <main> sticking out of it, an element that clips or scrolls sideways (scrollWidth > clientWidth;
 * text cut with an ellipsis on purpose is fine), and visible children of `overlapParents` (CSS
 * selectors) whose boxes overlap. An empty list means the layout holds.
 */
export async function layoutProblems(page, overlapParents = []) {
  return page.evaluate((parents) => {
    const out = [];
    const de = document.documentElement;
    if (de.scrollWidth > de.clientWidth + 1) out.push(`the document is ${de.scrollWidth}px wide in a ${de.clientWidth}px viewport`);
    const main = document.querySelector('main');
    const mr = main.getBoundingClientRect();
    const name = (e) => e.tagName.toLowerCase() + (e.dataset && e.dataset.testid ? `[data-testid=${e.dataset.testid}]` : '') +
      (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/).join('.') : '');
    const visible = (e) => {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || e.closest('[hidden]')) return false;
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.height > 0;
    };
    for (const e of main.querySelectorAll('*')) {
      if (e.closest('svg') || e.closest('.tooltip') || !visible(e)) continue;
      const cs = getComputedStyle(e);
      const r = e.getBoundingClientRect();
      const scroller = e.parentElement && e.parentElement.closest('.table-wrap, [data-scroll-x]');
      if (!scroller && (r.right > mr.right + 1 || r.left < mr.left - 1)) out.push(`${name(e)} sticks out of <main> (${Math.round(r.left)}–${Math.round(r.right)} vs ${Math.round(mr.left)}–${Math.round(mr.right)})`);
      if (cs.overflowX !== 'visible' && cs.textOverflow !== 'ellipsis' && e.scrollWidth > e.clientWidth + 1) {
        out.push(`${name(e)} overflows sideways (${e.scrollWidth} > ${e.clientWidth})`);
      }
    }
    for (const sel of parents) {
      for (const p of document.querySelectorAll(sel)) {
        const kids = [...p.children].filter(visible).map((k) => [k, k.getBoundingClientRect()]);
        for (let i = 0; i < kids.length; i++) {
          for (let j = i + 1; j < kids.length; j++) {
            const [a, ra] = kids[i], [b, rb] = kids[j];
            const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
            const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
            if (w > 1 && h > 1) out.push(`${name(a)} and ${name(b)} overlap in ${sel}`);
          }
        }
      }
    }
    return out;
  }, overlapParents);
}
