/*
 * The operator console: a page over the admin API, nothing else. Data from the server is
 * only ever put into the page as text (textContent, attributes set one by one), never as
 * HTML. The session is an HttpOnly cookie; write requests carry the session's CSRF token.
 */
'use strict';

(function () {
  const PLANS = {
    free: { users: 5, projects: 3, api_calls: 10000 },
    starter: { users: 20, projects: 10, api_calls: 100000 },
    pro: { users: 100, projects: 50, api_calls: 1000000 },
    enterprise: { users: null, projects: null, api_calls: null },
  };
  let csrf = null;
  let timer = null; // the current page's refresh, stopped when the page changes
  const charts = []; // uPlot instances of the current page, resized with the window

  /* ---- small helpers ------------------------------------------------------------- */

  // el('td', {class: 'x'}, 'text', otherNode): strings become text nodes, never HTML.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en'));
  const when = (t) => (t ? t.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—');

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || 'HTTP ' + status);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, body) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    const r = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (e) {
      json = null;
    }
    if (r.status === 401 && path !== '/console/session') {
      showSignIn('Your session has ended: sign in again.');
    }
    if (!r.ok) throw new Problem(r.status, json);
    return json;
  }

  // A result line: what was done, or the problem+json the server answered.
  function outcome(box, promise, done) {
    box.className = 'outcome';
    box.textContent = 'Working…';
    return promise.then(
      (v) => {
        box.className = 'outcome ok';
        box.textContent = typeof done === 'function' ? done(v) : done;
        return v;
      },
      (e) => {
        box.className = 'outcome problem';
        box.textContent = '';
        if (e instanceof Problem) {
          box.append(el('strong', {}, e.status + ' ' + (e.body.code || e.body.title || '')));
          box.append(' ' + (e.body.detail || e.message));
        } else {
          box.textContent = String(e.message || e);
        }
        throw e;
      }
    );
  }

  function bar(label, used, max) {
    const pct = max ? Math.min(100, (100 * used) / max) : 0;
    const fill = el('div', { class: 'fill' + (pct >= 90 ? ' hot' : pct >= 70 ? ' warm' : '') });
    fill.style.width = pct.toFixed(1) + '%';
    const id = 'bar-' + label.replace(/\W+/g, '-').toLowerCase();
    return el('div', { class: 'meter' },
      el('div', { class: 'meter-label', id }, label, el('span', {},
        fmt(used) + ' of ' + (max ? fmt(max) : 'unlimited'))),
      el('div', {
        class: 'bar', role: 'progressbar', 'aria-labelledby': id, 'aria-valuemin': 0,
        'aria-valuemax': max || 0, 'aria-valuenow': used,
      }, fill));
  }

  function table(caption, cols, rows, cells) {
    const head = el('tr', {}, cols.map((c) => el('th', { scope: 'col' }, c)));
    const body = rows.length
      ? rows.map((r) => el('tr', {}, cells(r).map((c) => el('td', {}, c))))
      : [el('tr', {}, el('td', { colspan: cols.length, class: 'empty' }, 'None'))];
    return el('div', { class: 'scroll' },
      el('table', {}, el('caption', {}, caption), el('thead', {}, head), el('tbody', {}, body)));
  }

  function chart(container, opts, data) {
    if (!window.uPlot) return;
    const width = Math.max(260, container.clientWidth - 8);
    const u = new window.uPlot(Object.assign({ width, height: 220 }, opts), data, container);
    charts.push({ u, container });
    return u;
  }
  window.addEventListener('resize', () => {
    for (const c of charts) c.u.setSize({ width: Math.max(260, c.container.clientWidth - 8), height: 220 });
  });

  const STALE = new Error('stale page');
  // mine: the route() that asked for this page; a later one wins
  function page(mine, title, ...kids) {
    if (mine !== shown) throw STALE;
    const p = $('page');
    p.textContent = '';
    p.append(el('h1', {}, title), ...kids);
    document.title = title + ' · tenantd console';
    return p;
  }

  /* ---- sign-in --------------------------------------------------------------------- */

  function showSignIn(message) {
    csrf = null;
    stop();
    $('page').textContent = '';
    $('nav').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    const err = $('signin-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token').focus();
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    input.value = ''; // the token is not kept anywhere on the page
    try {
      const s = await api('POST', '/console/session', { token });
      csrf = s.csrf_token;
      signedIn();
    } catch (e) {
      showSignIn(e.message);
    }
  });

  $('signout').addEventListener('click', async () => {
    await api('DELETE', '/console/session').catch(() => null);
    showSignIn('Signed out.');
  });

  function signedIn() {
    $('signin').hidden = true;
    $('nav').hidden = false;
    $('signout').hidden = false;
    if (!location.hash.startsWith('#/')) location.hash = '#/tenants';
    else route();
  }

  /* ---- routing --------------------------------------------------------------------- */

  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    for (const c of charts.splice(0)) c.u.destroy();
  }

  let shown = 0; // increases with each route(): a page that loaded late does not draw
  function route() {
    if (!csrf || !location.hash.startsWith('#/')) return;
    stop();
    const mine = ++shown;
    const [path, query] = location.hash.slice(2).split('?');
    const parts = path.split('/').map(decodeURIComponent);
    for (const a of document.querySelectorAll('#nav a')) {
      const here = a.dataset.page === parts[0] || (parts[0] === 'tenant' && a.dataset.page === 'tenants');
      if (here) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const pages = { tenants: tenantsPage, tenant: tenantPage, migrations: migrationsPage, servers: serversPage, live: livePage };
    const fn = pages[parts[0]] || tenantsPage;
    Promise.resolve(fn(parts.slice(1), new URLSearchParams(query || ''), mine)).catch((e) => {
      if (e === STALE) return;
      if (!(e instanceof Problem && e.status === 401)) page(mine, 'Something went wrong', el('p', { class: 'problem', role: 'alert' }, e.message));
    });
    $('main').focus({ preventScroll: true });
  }
  window.addEventListener('hashchange', route);

  /* ---- tenants --------------------------------------------------------------------- */

  function select(name, label, values, current) {
    const id = 'f-' + name;
    return el('div', { class: 'field' }, el('label', { for: id }, label),
      el('select', { id, name }, values.map(([v, t]) => el('option', { value: v, selected: v === current }, t))));
  }

  async function tenantsPage(_, q, mine) {
    const servers = await api('GET', '/admin/servers').then((s) => s.servers.map((x) => x.name), () => []);
    const any = [['', 'any']];
    const form = el('form', { class: 'filters', role: 'search', 'aria-label': 'Find tenants' },
      el('div', { class: 'field grow' }, el('label', { for: 'f-q' }, 'Search slug or name'),
        el('input', { id: 'f-q', name: 'q', type: 'search', value: q.get('q') || '', autocomplete: 'off' })),
      select('plan', 'Plan', any.concat(Object.keys(PLANS).map((p) => [p, p])), q.get('plan') || ''),
      select('status', 'Status', any.concat([['active', 'active'], ['suspended', 'suspended']]), q.get('status') || ''),
      select('isolation', 'Isolation', any.concat(['pool', 'schema', 'database'].map((p) => [p, p])), q.get('isolation') || ''),
      select('server', 'Server', any.concat(servers.map((s) => [s, s])), q.get('server') || ''),
      select('sort', 'Sort by', [['created', 'newest'], ['api_calls', 'API calls this month']], q.get('sort') || 'created'),
      el('button', { type: 'submit' }, 'Apply'));
    const results = el('div', { id: 'tenant-results', 'aria-live': 'polite' });
    page(mine, 'Tenants', form, results);
    const params = () => {
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
      return p;
    };
    // a late search (typing paused, or the field's change on leaving it for a link) must
    // not pull the page back once another page is open
    const live = () => form.isConnected && location.hash.startsWith('#/tenants');
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!live()) return;
      history.replaceState(null, '', '#/tenants?' + params().toString());
      load(params(), []);
    });
    form.addEventListener('change', (ev) => { if (ev.target.tagName === 'SELECT') form.requestSubmit(); });
    let typing = null;
    $('f-q').addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => { if (live()) form.requestSubmit(); }, 250);
    });

    // cursors: the stack of pages seen, for "Previous"
    async function load(p, stack, cursor) {
      const url = new URLSearchParams(p);
      url.set('limit', '25');
      if (cursor) url.set('cursor', cursor);
      const t0 = performance.now();
      let page_;
      try {
        page_ = await api('GET', '/admin/tenants?' + url.toString());
      } catch (e) {
        results.textContent = '';
        results.append(el('p', { class: 'problem', role: 'alert' }, e.message));
        return;
      }
      const ms = Math.round(performance.now() - t0);
      results.textContent = '';
      results.append(table('Tenants (' + page_.data.length + ' shown, ' + ms + ' ms)',
        ['Slug', 'Name', 'Plan', 'Status', 'Isolation', 'Server', 'API calls this month', 'Created'],
        page_.data, (t) => [
          el('a', { href: '#/tenant/' + encodeURIComponent(t.slug) }, t.slug),
          el('span', { class: 'name' }, t.name), t.plan,
          el('span', { class: 'badge ' + t.status }, t.status), t.isolation, t.server,
          fmt(t.api_calls_month), when(t.created_at)]));
      const nav = el('div', { class: 'pager' });
      if (stack.length) nav.append(el('button', { type: 'button', onclick: () => load(p, stack.slice(0, -1), stack[stack.length - 1] || undefined) }, 'Previous page'));
      if (page_.next_cursor) nav.append(el('button', { type: 'button', onclick: () => load(p, stack.concat([cursor || '']), page_.next_cursor) }, 'Next page'));
      results.append(nav);
    }
    await load(params(), []);
  }

  /* ---- one tenant ------------------------------------------------------------------ */

  async function tenantPage(parts, _, mine) {
    const slug = parts[0];
    const enc = encodeURIComponent(slug);
    const [t, daily, mig, users, audit, servers] = await Promise.all([
      api('GET', '/admin/tenants/' + enc),
      api('GET', '/admin/tenants/' + enc + '/usage'),
      api('GET', '/admin/tenants/' + enc + '/migration').catch(() => null),
      api('GET', '/admin/tenants/' + enc + '/users?limit=20').catch(() => ({ data: [] })),
      api('GET', '/admin/tenants/' + enc + '/audit-logs?limit=10').catch(() => ({ data: [] })),
      api('GET', '/admin/servers').then((s) => s.servers.map((x) => x.name), () => []),
    ]);
    const limits = PLANS[t.plan] || {};
    const u = t.usage || {};
    const chartBox = el('div', { class: 'chart', id: 'daily-chart', role: 'img', 'aria-label': 'API calls per day this month' });
    const facts = el('dl', { class: 'facts' });
    for (const [k, v] of [
      ['Slug', t.slug], ['Plan', t.plan], ['Status', t.status], ['Isolation', t.isolation],
      ['Server', t.server], ['Subscription expires', when(t.subscription_expires_at)], ['Created', when(t.created_at)],
      ['Schema version', mig ? mig.schema_version + ' of ' + mig.expected_version : '—'],
      ['Migration error', mig && mig.error ? mig.error : 'none'],
    ]) facts.append(el('dt', {}, k), el('dd', { class: k === 'Migration error' && mig && mig.error ? 'problem' : null }, v));
    const rows = Object.entries(u.rows || {});
    page(mine, t.name,
      el('p', { class: 'sub' }, el('span', { class: 'badge ' + t.status }, t.status), ' ', t.slug, ' · ', t.id),
      el('div', { class: 'grid' },
        el('section', { class: 'card', 'aria-labelledby': 'h-usage' }, el('h2', { id: 'h-usage' }, 'Usage against the ' + t.plan + ' plan'),
          bar('Users', u.users || 0, limits.users), bar('Projects', u.projects || 0, limits.projects),
          bar('API calls this month', u.api_calls_month || 0, limits.api_calls)),
        el('section', { class: 'card', 'aria-labelledby': 'h-facts' }, el('h2', { id: 'h-facts' }, 'Tenant'), facts)),
      el('section', { class: 'card', 'aria-labelledby': 'h-daily' }, el('h2', { id: 'h-daily' }, 'API calls per day, ' + daily.month), chartBox),
      actions(t, servers),
      el('div', { class: 'grid' },
        el('section', { class: 'card' }, u.rows ? table('Rows per table', ['Table', 'Rows'], rows, ([k, v]) => [k, fmt(v)])
          : el('p', { class: 'sub' }, 'Rows per table: not reported by this server.')),
        el('section', { class: 'card' }, table('Users', ['Email', 'Name', 'Role', 'Created'], users.data, (x) => [x.email, x.name, x.role, when(x.created_at)]))),
      el('section', { class: 'card' }, table('Recent audit entries', ['Time', 'Action', 'Entity', 'Entity id', 'Actor'], audit.data,
        (a) => [when(a.created_at), a.action, a.entity_type, a.entity_id, a.actor_id || '—'])));
    const days = daily.days || [];
    chart(chartBox, {
      scales: { x: { time: false } },
      axes: [{ label: 'day of ' + daily.month, incrs: [1, 2, 5, 10], values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? v : '')) }, { size: 60 }],
      series: [{ label: 'day' }, { label: 'API calls', stroke: '#2b6cb0', fill: 'rgba(43,108,176,0.35)', paths: window.uPlot && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.7, 40] }) : undefined }],
    }, [days.map((d) => Number(d.day.slice(8))), days.map((d) => d.api_calls)]);
  }

  function actions(t, servers) {
    const enc = encodeURIComponent(t.slug);
    const box = el('p', { class: 'outcome', id: 'action-result', role: 'status', 'aria-live': 'polite' });
    // redraw this tenant's page with the change, unless another page is open by then
    const reload = () => {
      const here = location.hash;
      setTimeout(() => { if (location.hash === here) route(); }, 600);
    };
    const patch = (body, what) => outcome(box, api('PATCH', '/admin/tenants/' + enc, body), what).then(reload, () => null);

    const suspend = el('button', { type: 'button', id: 'act-status', onclick: () =>
      patch({ status: t.status === 'active' ? 'suspended' : 'active' }, t.status === 'active' ? 'Suspended.' : 'Resumed.') },
    t.status === 'active' ? 'Suspend' : 'Resume');

    const plan = el('select', { id: 'act-plan' }, Object.keys(PLANS).map((p) => el('option', { value: p, selected: p === t.plan }, p)));
    const planForm = el('form', { class: 'inline', onsubmit: (ev) => { ev.preventDefault(); patch({ plan: plan.value }, 'Plan is now ' + plan.value + '.'); } },
      el('label', { for: 'act-plan' }, 'Plan'), plan, el('button', { type: 'submit' }, 'Change plan'));

    const exp = el('input', { id: 'act-expiry', type: 'date', value: t.subscription_expires_at ? t.subscription_expires_at.slice(0, 10) : '' });
    const expForm = el('form', { class: 'inline', onsubmit: (ev) => {
      ev.preventDefault();
      patch({ subscription_expires_at: exp.value ? exp.value + 'T00:00:00Z' : null }, exp.value ? 'Subscription expires ' + exp.value + '.' : 'Expiry cleared.');
    } }, el('label', { for: 'act-expiry' }, 'Subscription expires (empty: never)'), exp, el('button', { type: 'submit' }, 'Set expiry'));

    const iso = el('select', { id: 'act-isolation' }, ['pool', 'schema', 'database'].map((p) => el('option', { value: p, selected: p === t.isolation }, p)));
    const srv = el('select', { id: 'act-server' }, servers.map((s) => el('option', { value: s, selected: s === t.server }, s)));
    const progress = el('div', { class: 'move-progress', hidden: true }, el('progress', { 'aria-label': 'Move in progress' }), el('span', {}, ''));
    const moveForm = el('form', { class: 'inline', onsubmit: (ev) => {
      ev.preventDefault();
      const started = Date.now();
      progress.hidden = false;
      const tick = setInterval(() => { progress.lastChild.textContent = 'moving… ' + Math.round((Date.now() - started) / 1000) + ' s'; }, 250);
      outcome(box, api('POST', '/admin/tenants/' + enc + '/move', { isolation: iso.value, server: srv.value }),
        (r) => 'Moved: now ' + r.isolation + ' on ' + r.server + ' (' + ((Date.now() - started) / 1000).toFixed(1) + ' s).')
        .then(reload, () => null).finally(() => { clearInterval(tick); progress.hidden = true; });
    } }, el('label', { for: 'act-isolation' }, 'Isolation'), iso, el('label', { for: 'act-server' }, 'Server'), srv,
    el('button', { type: 'submit' }, 'Move'), progress);

    const confirm = el('input', { id: 'act-confirm', type: 'text', autocomplete: 'off', spellcheck: 'false' });
    const del = el('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete tenant');
    confirm.addEventListener('input', () => { del.disabled = confirm.value !== t.slug; });
    const delForm = el('form', { class: 'inline', onsubmit: (ev) => {
      ev.preventDefault();
      if (confirm.value !== t.slug) return;
      outcome(box, api('DELETE', '/admin/tenants/' + enc + '?confirm=' + encodeURIComponent(confirm.value)), 'Deleted.')
        .then(() => {
          const here = location.hash;
          setTimeout(() => { if (location.hash === here) location.hash = '#/tenants'; }, 800);
        }, () => null);
    } }, el('label', { for: 'act-confirm' }, 'Type ' + t.slug + ' to delete'), confirm, del);

    return el('section', { class: 'card actions', 'aria-labelledby': 'h-actions' }, el('h2', { id: 'h-actions' }, 'Actions'),
      el('div', { class: 'inline' }, suspend,
        el('a', { class: 'button', href: '/admin/tenants/' + enc + '/export', download: t.slug + '.ndjson' }, 'Download export')),
      planForm, expForm, moveForm, delForm, box);
  }

  /* ---- migrations ------------------------------------------------------------------ */

  async function migrationsPage(_, __, mine) {
    const m = await api('GET', '/admin/migrations');
    const versions = Object.entries(m.tenants_by_version || {}).sort((a, b) => a[0] - b[0]);
    const chartBox = el('div', { class: 'chart', role: 'img', 'aria-label': 'Tenants at each schema version' });
    const facts = el('dl', { class: 'facts' });
    for (const [k, v] of [['Tenant schema version expected', m.expected_version], ['Catalog version', m.catalog_version + ' of ' + m.catalog_expected_version],
      ['Tenants', fmt(m.tenants)], ['Pending (behind)', fmt(m.pending)], ['Failed', fmt((m.failed || []).length)], ['Last migrated', when(m.last_migrated_at)]])
      facts.append(el('dt', {}, k), el('dd', {}, v));
    page(mine, 'Migrations',
      el('div', { class: 'grid' }, el('section', { class: 'card' }, el('h2', {}, 'Fleet'), facts),
        el('section', { class: 'card' }, el('h2', {}, 'Tenants per schema version'), chartBox)),
      el('section', { class: 'card' }, table('Tenants per version', ['Version', 'Tenants'], versions, ([v, n]) => [v, fmt(n)])),
      el('section', { class: 'card' }, table('Failed tenants', ['Tenant', 'Isolation', 'Server', 'Version', 'Error'], m.failed || [],
        (f) => [el('a', { href: '#/tenant/' + encodeURIComponent(f.slug) }, f.slug), f.isolation, f.server, f.version, el('span', { class: 'problem' }, f.error)])));
    chart(chartBox, {
      scales: { x: { time: false } },
      axes: [{ label: 'version', incrs: [1, 2, 5, 10], values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? v : '')) }, { size: 60 }],
      series: [{ label: 'version' }, { label: 'tenants', stroke: '#2f855a', fill: 'rgba(47,133,90,0.35)', paths: window.uPlot && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.6, 60] }) : undefined }],
    }, [versions.map(([v]) => Number(v)), versions.map(([, n]) => n)]);
  }

  /* ---- servers and pools ----------------------------------------------------------- */

  async function serversPage(_, __, mine) {
    const holder = el('div', {});
    page(mine, 'Servers and pools', el('p', { class: 'sub' }, 'Refreshed every 2 seconds.'), holder);
    async function draw() {
      const s = await api('GET', '/admin/servers');
      const b = s.budget;
      holder.textContent = '';
      holder.append(el('p', {}, 'Budget per server: ' + b.in_flight_per_server + ' transactions in flight, ' + b.connections_per_server +
        ' connections, ' + b.tenant_pools + ' per-database pools; one tenant may hold ' + b.tenant_share_percent + '% of a pool.'));
      for (const x of s.servers) {
        holder.append(el('section', { class: 'card', 'aria-label': 'Server ' + x.name }, el('h2', {}, x.name),
          bar('In use (' + x.name + ')', x.in_use, b.in_flight_per_server),
          bar('Open connections (' + x.name + ')', x.open, b.connections_per_server),
          bar('Per-database pools (' + x.name + ')', x.tenant_pools, b.tenant_pools),
          table('Pool counters of ' + x.name, ['Waiting', 'LRU hits', 'LRU misses', 'LRU evictions', 'Connections opened', 'Tenants tracked', 'Open (avg)', 'Hold (avg)'],
            [x], (r) => [fmt(r.waiting), fmt(r.lru_hits), fmt(r.lru_misses), fmt(r.lru_evictions), fmt(r.connections_opened), fmt(r.tenants_tracked),
              (r.open_us / 1000).toFixed(1) + ' ms', (r.hold_us / 1000).toFixed(1) + ' ms'])));
      }
    }
    await draw();
    timer = setInterval(() => draw().catch(() => null), 2000);
  }

  /* ---- live ------------------------------------------------------------------------ */

  async function livePage(_, __, mine) {
    const rpsBox = el('div', { class: 'chart', role: 'img', 'aria-label': 'Requests per second and p99 latency, last 5 minutes' });
    const summary = el('p', { class: 'sub', 'aria-live': 'polite' });
    const top = el('div', {});
    page(mine, 'Live', summary, el('section', { class: 'card' }, el('h2', {}, 'Requests per second and p99 latency'), rpsBox),
      el('section', { class: 'card' }, el('h2', {}, 'Top tenants, last 5 minutes'), top));
    let u = null;
    async function draw() {
      const l = await api('GET', '/admin/live?seconds=300');
      const xs = l.per_second.map((s) => s.t);
      const data = [xs, l.per_second.map((s) => s.requests), l.per_second.map((s) => s.p99_us / 1000),
        l.per_second.map((s) => s.errors_4xx + s.errors_5xx)];
      if (!u) {
        u = chart(rpsBox, {
          scales: { x: { time: true }, ms: { auto: true } },
          axes: [{}, { label: 'req/s', size: 60 }, { scale: 'ms', side: 1, label: 'p99 ms', grid: { show: false }, size: 60 }],
          series: [{}, { label: 'requests/s', stroke: '#2b6cb0' }, { label: 'p99 ms', stroke: '#c05621', scale: 'ms' }, { label: 'errors/s', stroke: '#c53030' }],
        }, data);
      } else {
        u.setData(data);
      }
      const f = l.fleet;
      summary.textContent = 'Fleet, last ' + l.seconds + ' s: ' + (f.requests / l.seconds).toFixed(2) + ' requests/s, p99 ' +
        (f.p99_us / 1000).toFixed(1) + ' ms, ' + fmt(f.errors_4xx) + ' 4xx, ' + fmt(f.errors_5xx) + ' 5xx.';
      top.textContent = '';
      top.append(table('Top tenants by requests', ['Tenant', 'Requests/s', 'p99', '4xx', '5xx'], l.top_tenants,
        (t) => [el('a', { href: '#/tenant/' + encodeURIComponent(t.slug) }, t.slug), (t.requests / l.seconds).toFixed(2),
          (t.p99_us / 1000).toFixed(1) + ' ms', fmt(t.errors_4xx), fmt(t.errors_5xx)]));
    }
    await draw();
    timer = setInterval(() => draw().catch(() => null), 2000);
  }

  /* ---- start ----------------------------------------------------------------------- */

  api('GET', '/console/session').then(
    (s) => { if (s && s.csrf_token) { csrf = s.csrf_token; signedIn(); } else showSignIn(); },
    () => showSignIn());
})();
