// Shared plumbing for the Studio browser tests: start the Atelier server on a free port with a fresh
// data dir, drive the real MLflow Python client, and launch Debian's Chromium through playwright-core.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
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
 * data dir, with `extraArgs` after the others (e.g. ['--webhook-allowed-hosts', '127.0.0.1']).
 * ATELIER_URL points the tests at an already running server instead (for development).
 */
export async function startServer(extraArgs = []) {
  if (process.env.ATELIER_URL) {
    const url = process.env.ATELIER_URL.replace(/\/$/, '');
    await waitHealthy(url, null, 10000);
    return { url, log: () => '', stop: async () => {} };
  }
  const bin = resolve(ROOT, process.env.ATELIER_BIN || 'target/debug/atelier');
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run cargo build -p atelier (or set ATELIER_BIN)`);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'atelier-e2e-'));
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
