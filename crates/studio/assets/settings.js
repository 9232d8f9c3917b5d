// Atelier Studio: Settings (registered into window.AtelierStudio.pages).
// /settings           your account: who you are, your projects and roles, your API tokens, password
// /settings/people    server admins: users, their projects and roles; add, make admin, delete
// /settings/projects  projects (MLflow workspaces) and their members; a project's admins manage members
// /settings/audit     server admins: the audit log, filtered, exported as JSON Lines
// Everything goes through /api/atelier/{me,users,projects/…/members,tokens,audit} and
// /api/3.0/mlflow/workspaces; the server decides who may do what, this page only hides what a
// caller cannot use.
(function () {
  'use strict';
  const S = window.AtelierStudio;
  if (!S) return;
  const { h, append, replace, request, errorBox, tok, fmtDate, fmtAgo, main, pages } = S;
  const A = '/api/atelier/';
  const enc = encodeURIComponent;
  const ROLES = ['viewer', 'editor', 'admin'];

  function tabs(active, me) {
    const items = [['account', 'Account', '/settings'], ['projects', 'Projects', '/settings/projects']];
    if (me.admin) items.push(['people', 'People', '/settings/people'], ['audit', 'Audit log', '/settings/audit']);
    return h('nav', { class: 'settings-tabs', 'data-testid': 'settings-tabs' },
      items.map(([k, label, href]) => h('a', { href, class: k === active ? 'active' : null, 'data-testid': 'settings-tab-' + k }, label)));
  }
  function head(title, sub) {
    return h('header', { class: 'page-head' }, h('h1', {}, title), sub ? h('span', { class: 'sub' }, sub) : null);
  }
  function field(label, input) { return h('label', { class: 'field' }, h('span', {}, label), input); }
  function roleSelect(value, testid) {
    return h('select', { 'data-testid': testid }, ROLES.map((r) => h('option', { value: r, selected: r === value }, r)));
  }
  /** A form's submit: runs `act`, shows its error in `out`, re-renders on success. */
  function onSubmit(form, out, act) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      replace(out);
      try { await act(); } catch (e) { replace(out, errorBox(e, 'settings-error')); }
    });
  }
  function table(cols, rows, testid) {
    return h('table', { class: 'data', 'data-testid': testid },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'None yet.'))));
  }

  // ------------------------------------------------------------ account

  async function account(me) {
    const open = me.name === 'local';
    const tokensCard = h('section', { class: 'card', 'data-testid': 'my-tokens' });
    const renderTokens = async () => {
      const res = await request('GET', A + 'tokens');
      const mine = (res.tokens || []).filter((t) => me.admin ? true : t.user === me.name);
      const out = h('div');
      const name = h('input', { type: 'text', required: true, placeholder: 'laptop, ci, notebook…', 'data-testid': 'token-name' });
      const role = roleSelect('viewer', 'token-role');
      const days = h('input', { type: 'number', min: 1, max: 3650, placeholder: 'never', 'data-testid': 'token-days' });
      const form = h('form', { class: 'form-row', 'data-testid': 'token-form' },
        field('Name', name), field('At most', role), field('Expires in days', days),
        h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'token-create' }, 'Create token'));
      onSubmit(form, out, async () => {
        const body = { name: name.value.trim(), role: role.value };
        if (days.value) body.expires_in_days = Number(days.value);
        const made = await request('POST', A + 'tokens', body);
        await renderTokens();
        tokensCard.append(h('div', { class: 'card secret-once', 'data-testid': 'token-secret' },
          h('b', {}, 'Token “' + made.name + '” — copy it now, it is not shown again:'), h('code', {}, made.token),
          h('span', { class: 'muted' }, 'Use it as MLFLOW_TRACKING_TOKEN (with MLFLOW_WORKSPACE for a project).')));
      });
      const rows = mine.map((t) => {
        const revoke = h('button', { type: 'button', class: 'btn', 'data-testid': 'token-revoke' }, 'Revoke');
        revoke.onclick = async () => {
          if (!confirm('Revoke token “' + t.name + '”? Programs using it stop working.')) return;
          try { await request('DELETE', A + 'tokens/' + enc(t.name)); await renderTokens(); } catch (e) { replace(out, errorBox(e)); }
        };
        return h('tr', { 'data-testid': 'token-row', 'data-name': t.name },
          h('td', {}, tok(t.name)), h('td', {}, t.user ? tok(t.user) : h('span', { class: 'muted' }, 'service')), h('td', {}, t.role),
          h('td', {}, fmtAgo(t.created)), h('td', {}, t.expires ? fmtDate(t.expires) : h('span', { class: 'muted' }, 'never')), h('td', {}, revoke));
      });
      replace(tokensCard, h('div', { class: 'card-head' }, h('h2', {}, me.admin ? 'API tokens (everyone’s)' : 'Your API tokens')),
        table(['Name', 'User', 'At most', 'Created', 'Expires', ''], rows, 'tokens-table'), open ? null : form, out);
    };
    const projects = (me.projects || []).map((p) => h('tr', {}, h('td', {}, tok(p.project)), h('td', {}, p.role)));
    const pw = h('section', { class: 'card', 'data-testid': 'password-card' });
    if (!open) {
      const p1 = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, 'data-testid': 'password-new' });
      const p2 = h('input', { type: 'password', autocomplete: 'new-password', required: true, 'data-testid': 'password-again' });
      const out = h('div');
      const form = h('form', { class: 'form-row' }, field('New password', p1), field('Again', p2),
        h('button', { type: 'submit', class: 'btn' }, 'Change password'));
      onSubmit(form, out, async () => {
        if (p1.value !== p2.value) throw new Error('The two passwords differ.');
        await request('PATCH', A + 'users/' + enc(me.name), { password: p1.value });
        location.assign('/login'); // a new password ends every session, this one too
      });
      append(pw, h('div', { class: 'card-head' }, h('h2', {}, 'Password')),
        h('p', { class: 'muted' }, 'Changing it signs you out everywhere.'), form, out);
    }
    replace(main, head('Settings', open ? 'This server is open (no sign-in): you are its local admin.' : null), tabs('account', me),
      h('section', { class: 'card', 'data-testid': 'me' },
        h('div', { class: 'card-head' }, h('h2', {}, tok(me.name)), me.admin ? h('span', { class: 'badge', 'data-testid': 'me-admin' }, 'server admin') : null),
        me.admin && !projects.length ? h('p', { class: 'muted' }, 'A server admin acts as admin in every project.') : table(['Project', 'Your role'], projects, 'my-projects')),
      tokensCard, open ? null : pw);
    await renderTokens();
  }

  // ------------------------------------------------------------ people (server admins)

  async function people(me) {
    const out = h('div');
    const render = async () => {
      const res = await request('GET', A + 'users');
      const rows = (res.users || []).map((u) => {
        const admin = h('input', { type: 'checkbox', checked: u.admin, disabled: u.name === me.name, 'aria-label': 'server admin', 'data-testid': 'user-admin' });
        admin.onchange = async () => {
          try { await request('PATCH', A + 'users/' + enc(u.name), { admin: admin.checked }); } catch (e) { replace(out, errorBox(e)); admin.checked = !admin.checked; }
        };
        const del = h('button', { type: 'button', class: 'btn', disabled: u.name === me.name, 'data-testid': 'user-delete' }, 'Delete');
        del.onclick = async () => {
          if (!confirm('Delete ' + u.name + ' with their tokens, sessions and roles?')) return;
          try { await request('DELETE', A + 'users/' + enc(u.name)); await render(); } catch (e) { replace(out, errorBox(e)); }
        };
        const out2 = h('button', { type: 'button', class: 'btn', 'data-testid': 'user-sign-out' }, 'Sign out');
        out2.onclick = async () => {
          try { const r = await request('DELETE', A + 'users/' + enc(u.name) + '/sessions'); out2.textContent = r.ended + ' ended'; } catch (e) { replace(out, errorBox(e)); }
        };
        return h('tr', { 'data-testid': 'user-row', 'data-name': u.name },
          h('td', {}, tok(u.name)), h('td', {}, admin), h('td', {}, u.has_password ? 'password' : h('span', { class: 'muted' }, 'tokens only')),
          h('td', {}, (u.projects || []).map((p) => h('span', { class: 'badge' }, p.project + ': ' + p.role)).reduce((a, b) => a.concat([b, ' ']), [])),
          h('td', {}, fmtAgo(u.created)), h('td', {}, out2, ' ', del));
      });
      const name = h('input', { type: 'text', required: true, 'data-testid': 'new-user-name' });
      const pass = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'none: tokens only', 'data-testid': 'new-user-password' });
      const adm = h('input', { type: 'checkbox', 'data-testid': 'new-user-admin' });
      const form = h('form', { class: 'form-row', 'data-testid': 'user-form' }, field('Name', name), field('Password', pass),
        h('label', { class: 'field' }, h('span', {}, 'Server admin'), adm), h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'user-create' }, 'Add user'));
      onSubmit(form, out, async () => {
        const body = { name: name.value.trim(), admin: adm.checked };
        if (pass.value) body.password = pass.value;
        await request('POST', A + 'users', body);
        await render();
      });
      replace(main, head('Settings'), tabs('people', me),
        h('section', { class: 'card flush' }, table(['Name', 'Server admin', 'Sign-in', 'Projects', 'Added', ''], rows, 'users-table')),
        h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Add someone')), form, out));
    };
    await render();
  }

  // ------------------------------------------------------------ projects

  async function projectsPage(me) {
    const out = h('div');
    const render = async () => {
      const res = await request('GET', '/api/3.0/mlflow/workspaces');
      const mine = Object.fromEntries((me.projects || []).map((p) => [p.project, p.role]));
      const cards = await Promise.all((res.workspaces || []).map(async (w) => {
        const canManage = me.admin || mine[w.name] === 'admin';
        let members = [];
        let err = null;
        try { members = (await request('GET', A + 'projects/' + enc(w.name) + '/members')).members || []; } catch (e) { err = e; }
        const rows = members.map((m) => {
          const role = roleSelect(m.role, 'member-role');
          role.disabled = !canManage;
          role.onchange = async () => {
            try { await request('PUT', A + 'projects/' + enc(w.name) + '/members/' + enc(m.user), { role: role.value }); } catch (e) { replace(out, errorBox(e)); }
          };
          const rm = canManage ? h('button', { type: 'button', class: 'btn', 'data-testid': 'member-remove' }, 'Remove') : null;
          if (rm) rm.onclick = async () => {
            try { await request('DELETE', A + 'projects/' + enc(w.name) + '/members/' + enc(m.user)); await render(); } catch (e) { replace(out, errorBox(e)); }
          };
          return h('tr', { 'data-testid': 'member-row', 'data-user': m.user }, h('td', {}, tok(m.user)), h('td', {}, role), h('td', {}, rm));
        });
        let add = null;
        if (canManage) {
          const user = h('input', { type: 'text', required: true, placeholder: 'user name', 'data-testid': 'member-user' });
          const role = roleSelect('viewer', 'member-new-role');
          add = h('form', { class: 'form-row', 'data-testid': 'member-form' }, field('Add', user), field('Role', role),
            h('button', { type: 'submit', class: 'btn', 'data-testid': 'member-add' }, 'Give role'));
          onSubmit(add, out, async () => {
            await request('PUT', A + 'projects/' + enc(w.name) + '/members/' + enc(user.value.trim()), { role: role.value });
            await render();
          });
        }
        return h('section', { class: 'card', 'data-testid': 'project-card', 'data-name': w.name },
          h('div', { class: 'card-head' }, h('h2', {}, tok(w.name)), w.description ? h('span', { class: 'muted' }, w.description) : null),
          err ? errorBox(err) : table(['Member', 'Role', ''], rows, 'members-table'), add);
      }));
      let create = null;
      if (me.admin) {
        const name = h('input', { type: 'text', required: true, pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?', placeholder: 'team-a', 'data-testid': 'project-name' });
        const desc = h('input', { type: 'text', placeholder: 'optional', 'data-testid': 'project-description' });
        create = h('form', { class: 'form-row', 'data-testid': 'project-form' }, field('Name', name), field('Description', desc),
          h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'project-create' }, 'Create project'));
        onSubmit(create, out, async () => {
          await request('POST', '/api/3.0/mlflow/workspaces', { name: name.value.trim(), description: desc.value.trim() || undefined });
          await render();
        });
        create = h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'New project')),
          h('p', { class: 'muted' }, 'A project is an MLflow workspace: mlflow.set_workspace("name") or MLFLOW_WORKSPACE selects it.'), create);
      }
      replace(main, head('Settings'), tabs('projects', me), out, cards, create);
    };
    await render();
  }

  // ------------------------------------------------------------ audit (server admins)

  async function audit(me) {
    const actor = h('input', { type: 'search', placeholder: 'anyone', 'data-testid': 'audit-actor' });
    const proj = h('input', { type: 'search', placeholder: 'any', 'data-testid': 'audit-project' });
    const action = h('input', { type: 'search', placeholder: 'e.g. sign-in, DELETE, endpoints', 'data-testid': 'audit-action' });
    const body = h('div', { 'data-testid': 'audit-body' });
    const exportLink = h('a', { class: 'btn', 'data-testid': 'audit-export', download: 'atelier-audit.jsonl' }, 'Export JSON Lines');
    const params = () => {
      const p = new URLSearchParams();
      if (actor.value.trim()) p.set('actor', actor.value.trim());
      if (proj.value.trim()) p.set('project', proj.value.trim());
      if (action.value.trim()) p.set('action', action.value.trim());
      return p;
    };
    const render = async () => {
      const p = params();
      const x = new URLSearchParams(p); x.set('format', 'jsonl');
      exportLink.href = A + 'audit?' + x.toString();
      p.set('limit', '200');
      try {
        const res = await request('GET', A + 'audit?' + p.toString());
        const rows = (res.records || []).map((r) => h('tr', { 'data-testid': 'audit-row', 'data-action': r.action },
          h('td', { class: 'nowrap' }, fmtDate(r.at_ms)), h('td', {}, tok(r.actor)), h('td', {}, tok(r.project || '—')),
          h('td', {}, tok(r.action)), h('td', {}, tok(r.target)),
          h('td', {}, h('span', { class: 'badge' + (r.status >= 400 ? ' FAILED' : '') }, String(r.status || 'cli'))),
          h('td', {}, tok(r.address || '')),
          h('td', { class: 'audit-detail' }, tok(r.detail && Object.keys(r.detail).length ? JSON.stringify(r.detail) : ''))));
        replace(body, table(['When', 'Who', 'Project', 'Action', 'Target', 'Answer', 'From', 'Fields'], rows, 'audit-table'));
      } catch (e) {
        replace(body, errorBox(e, 'audit-error'));
      }
    };
    let t = null;
    for (const i of [actor, proj, action]) i.oninput = () => { clearTimeout(t); t = setTimeout(render, 250); };
    replace(main, head('Settings', 'Every change, sign-in and failed sign-in: append-only.'), tabs('audit', me),
      h('div', { class: 'toolbar' }, field('Who', actor), field('Project', proj), field('Action or target', action), h('span', { class: 'spacer' }), exportLink),
      h('section', { class: 'card flush' }, body));
    await render();
  }

  async function withMe(fn) {
    replace(main, head('Settings'), h('div', { class: 'loading' }, 'Loading…'));
    let me;
    try { me = await request('GET', A + 'me'); } catch (e) { replace(main, head('Settings'), errorBox(e, 'settings-error')); return; }
    try { await fn(me); } catch (e) { replace(main, head('Settings'), tabs('', me), errorBox(e, 'settings-error')); }
  }
  pages.settings = () => withMe(account);
  pages['settings-item'] = () => {
    const which = main.dataset.id;
    const fn = { people, projects: projectsPage, audit }[which];
    if (!fn) {
      replace(main, head('Settings'), errorBox(new Error('No settings page “' + which + '”: see Account, Projects, People or Audit log.'), 'settings-error'));
      return;
    }
    withMe(fn);
  };
})();
