// Two people of different projects sign in to the same --require-auth server in two browsers:
// each sees only their own project's experiments (the switcher offers only their projects, and
// the other project's experiment is "not found" even by its URL); the server admin manages people
// and reads the audit log in Settings; sign-out ends the session. Settings pages keep their layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, until, mlflow } from './harness.mjs';
import { checkLayout } from './layout.mjs';

const PASSWORD = 'correct horse battery';
let server, browser, seedToken;
const errors = [];
const jobIds = {};
const runIds = {};

function cli(bin, dataDir, args, input) {
  return execFileSync(bin, [...args, '--data-dir', dataDir], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

before(async () => {
  server = await startServer(['--require-auth'], {
    prepare: (dir, bin) => {
      for (const [name, admin] of [['root', true], ['alice', false], ['bob', false]]) {
        cli(bin, dir, ['users', 'create', name, '--password-stdin', ...(admin ? ['--admin'] : [])], PASSWORD + '\n');
      }
      cli(bin, dir, ['projects', 'create', 'team-a', '--description', 'Churn']);
      cli(bin, dir, ['projects', 'create', 'team-b']);
      cli(bin, dir, ['projects', 'grant', 'team-a', 'alice', 'editor']);
      cli(bin, dir, ['projects', 'grant', 'team-b', 'bob', 'editor']);
      seedToken = cli(bin, dir, ['token', 'create', 'seed', '--role', 'admin']).trim().split('\n').pop();
    },
  });
  // each project gets its own experiment, through the real client inside the workspace
  process.env.MLFLOW_TRACKING_TOKEN = seedToken;
  for (const [ws, exp] of [['team-a', 'alpha-churn'], ['team-b', 'beta-fraud']]) {
    process.env.MLFLOW_WORKSPACE = ws;
    runIds[ws] = (await mlflow(server.url, 'new-run', exp, 'r1')).run_id;
  }
  delete process.env.MLFLOW_WORKSPACE;
  delete process.env.MLFLOW_TRACKING_TOKEN;
  // and its own job
  for (const ws of ['team-a', 'team-b']) {
    const r = await fetch(server.url + '/api/atelier/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${seedToken}`, 'X-MLFLOW-WORKSPACE': ws },
      body: JSON.stringify({ kind: 'processing', spec: { command: ['true'] } }),
    });
    const body = await r.text();
    assert.equal(r.status, 202, body);
    jobIds[ws] = JSON.parse(body).job.id;
  }
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function signIn(name) {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(name + ' pageerror: ' + e.message));
  await page.goto(server.url + '/');
  assert.match(page.url(), /\/login$/, 'signed out, the Studio sends people to the sign-in form');
  await page.fill('[data-testid=login-user]', name);
  await page.fill('[data-testid=login-password]', PASSWORD);
  await page.click('[data-testid=login-submit]');
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  return { ctx, page };
}

const experimentNames = (page) => page.$$eval('[data-testid=experiment-link]', (as) => as.map((a) => a.textContent));

test('each person sees only the work of their own projects', async () => {
  const ids = {};
  for (const [name, mine, theirs] of [['alice', 'alpha-churn', 'beta-fraud'], ['bob', 'beta-fraud', 'alpha-churn']]) {
    const { ctx, page } = await signIn(name);
    await until(async () => (await experimentNames(page)).includes(mine), `${name} to see ${mine}`);
    assert.ok(!(await experimentNames(page)).includes(theirs), `${name} must not see ${theirs}`);
    const options = await page.$$eval('[data-testid=project-switcher] option', (os) => os.map((o) => o.value));
    assert.deepEqual(options, [name === 'alice' ? 'team-a' : 'team-b']);
    assert.equal(await page.textContent('[data-testid=signed-in] .who-name'), name);
    ids[name] = await page.getAttribute(`[data-testid=experiment-row]:has-text("${mine}")`, 'data-experiment-id');
    // the jobs page lists their project's job only
    const [own, other] = name === 'alice' ? [jobIds['team-a'], jobIds['team-b']] : [jobIds['team-b'], jobIds['team-a']];
    await page.goto(server.url + '/jobs');
    await until(() => page.$(`[data-testid=job-row][data-id="${own}"]`), `${name} to see their job`);
    assert.equal(await page.$(`[data-testid=job-row][data-id="${other}"]`), null, `${name} must not see the other project's job`);
    await ctx.close();
  }
  // the other project's experiment, by its URL: not found, as one that does not exist
  const { ctx, page } = await signIn('alice');
  await page.goto(server.url + '/experiments/' + ids.bob);
  await until(() => page.$('[data-testid=not-found], [data-testid=error]'), 'the not-found message');
  const text = await page.textContent('main');
  assert.ok(!text.includes('beta-fraud'), text.slice(0, 300));
  // her run's artifacts preview and download inside her project (a link cannot send the
  // project header: it names the project as ?workspace=)
  await page.goto(server.url + '/runs/' + runIds['team-a']);
  await page.click('[data-testid=artifact-entry][data-path="notes.txt"]');
  await until(async () => /notes of r1/.test((await page.textContent('[data-testid=artifact-preview]')) || ''), 'the preview of notes.txt');
  const download = await page.getAttribute('[data-testid=artifact-download]', 'href');
  assert.match(download, /[?&]workspace=team-a/);
  const got = await page.evaluate((u) => fetch(u).then((r) => r.text()), download);
  assert.equal(got, 'notes of r1\n');
  // her account: her project and role; no People or Audit tabs
  await page.goto(server.url + '/settings');
  await page.waitForSelector('[data-testid=my-projects]');
  assert.match(await page.textContent('[data-testid=my-projects]'), /team-a\s*editor/);
  assert.equal(await page.$('[data-testid=settings-tab-people]'), null);
  // a token of her own, shown once
  await page.fill('[data-testid=token-name]', 'laptop');
  await page.click('[data-testid=token-create]');
  await page.waitForSelector('[data-testid=token-secret] code');
  assert.match(await page.textContent('[data-testid=token-secret] code'), /^atl_[0-9a-f]{64}$/);
  await page.waitForSelector('[data-testid=token-row][data-name=laptop]');
  await checkLayout(page, { label: 'settings (alice)' });
  // sign-out ends the session: the Studio asks for a sign-in again
  await page.click('[data-testid=sign-out]');
  await page.waitForURL(/\/login$/);
  await page.goto(server.url + '/experiments');
  assert.match(page.url(), /\/login$/);
  await ctx.close();
});

test('the server admin manages people and reads the audit log', async () => {
  const { ctx, page } = await signIn('root');
  await page.goto(server.url + '/settings/people');
  await page.waitForSelector('[data-testid=user-row][data-name=alice]');
  await page.fill('[data-testid=new-user-name]', 'carol');
  await page.fill('[data-testid=new-user-password]', PASSWORD);
  await page.click('[data-testid=user-create]');
  await page.waitForSelector('[data-testid=user-row][data-name=carol]');
  await checkLayout(page, { label: 'settings/people' });

  await page.goto(server.url + '/settings/projects');
  const card = '[data-testid=project-card][data-name=team-b]';
  await page.waitForSelector(card + ' [data-testid=member-row][data-user=bob]');
  await page.fill(card + ' [data-testid=member-user]', 'carol');
  await page.click(card + ' [data-testid=member-add]');
  await page.waitForSelector(card + ' [data-testid=member-row][data-user=carol]');
  await checkLayout(page, { label: 'settings/projects' });

  await page.goto(server.url + '/settings/audit');
  await page.waitForSelector('[data-testid=audit-row]');
  const actions = await page.$$eval('[data-testid=audit-row]', (rs) => rs.map((r) => r.dataset.action));
  for (const a of ['sign-in', 'POST /api/atelier/users', 'PUT /api/atelier/projects/{ws}/members/{user}', 'POST /api/atelier/tokens']) {
    assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
  }
  await page.fill('[data-testid=audit-actor]', 'alice');
  await until(async () => {
    const who = await page.$$eval('[data-testid=audit-row] td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
    return who.length > 0 && who.every((w) => w === 'alice');
  }, 'the audit table filtered to alice');
  await checkLayout(page, { label: 'settings/audit' });
  const href = await page.getAttribute('[data-testid=audit-export]', 'href');
  assert.match(href, /format=jsonl/);
  assert.match(href, /actor=alice/);
  await ctx.close();
  assert.deepEqual(errors, []);
});
