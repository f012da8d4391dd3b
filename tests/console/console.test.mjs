// Drives the operator console in Debian's headless Chromium against a running tenantd:
// sign-in, search, suspend (and the tenant's login refused), plan change, move, the tenant
// page's bars and chart, delete, a hostile tenant name, CSRF from another origin, and a
// screenshot of each page. Run by tests/integration/test_console.c, which starts tenantd
// and PostgreSQL; env: TD_BASE_URL, TD_ADMIN_TOKEN, TD_SHOT_DIR.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const base = process.env.TD_BASE_URL;
const token = process.env.TD_ADMIN_TOKEN;
const shots = process.env.TD_SHOT_DIR || 'console-shots';
fs.mkdirSync(shots, { recursive: true });
const started = Date.now();
const step = (s) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${s}`);

async function admin(method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

const rnd = Math.random().toString(36).slice(2, 8);
const slug = 'shop-' + rnd;
const owner = { email: 'owner@' + slug + '.test', password: 'correct-horse-1', name: 'Owner' };
const xss = '<img src=x onerror="window.__pwned=1;console.error(\'pwned\')"><script>window.__pwned=2</script>';
const long = 'L'.repeat(190) + ' ' + rnd;

async function login() {
  const r = await fetch(base + '/t/' + slug + '/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: owner.email, password: owner.password }),
  });
  return { status: r.status, json: await r.json() };
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'td-console-chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
let other; // the other origin's server
const page = ctx.pages()[0] || (await ctx.newPage());
try {
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });
  page.setDefaultTimeout(20000);

  step('tenants through the API');
  let r = await admin('POST', '/admin/tenants', { slug, name: 'Shop ' + rnd, owner });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  r = await admin('POST', '/admin/tenants', { slug: 'xss-' + rnd, name: xss });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  r = await admin('POST', '/admin/tenants', { slug: 'long-' + rnd, name: long, plan: 'pro' });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.equal((await login()).status, 200);

  step('the page and its headers');
  const resp = await page.goto(base + '/console');
  const h = resp.headers();
  assert.match(h['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['x-frame-options'], 'DENY');

  step('sign in');
  await page.fill('#token', 'not-the-token');
  await page.click('#signin-form button');
  await page.waitForSelector('#signin-error:not([hidden])');
  errors.length = 0; // the refused sign-in's 401 is logged by Chromium as a failed load
  await page.fill('#token', token);
  await page.click('#signin-form button');
  await page.waitForSelector('#tenant-results table');
  const cookies = await ctx.cookies(base);
  const c = cookies.find((x) => x.name === 'td_console');
  assert.ok(c, 'session cookie set');
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  assert.ok(c.expires > Date.now() / 1000, 'cookie expires');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href + document.cookie);
  assert.ok(!stored.includes(token), 'the token is nowhere the page can read');
  assert.equal(await page.inputValue('#token'), '');

  step('search finds the tenant');
  const only = (s) => page.waitForFunction((x) => {
    const rows = document.querySelectorAll('#tenant-results tbody tr');
    return rows.length === 1 && rows[0].textContent.includes(x);
  }, s);
  await page.fill('#f-q', 'shop ' + rnd); // by name
  await only(slug);
  await page.fill('#f-q', slug); // by slug
  await only(slug);
  await page.screenshot({ path: path.join(shots, 'tenants.png') });

  step('a hostile name is text');
  await page.fill('#f-q', rnd);
  await page.waitForFunction(() => document.querySelectorAll('#tenant-results tbody tr').length === 3);
  const hostile = await page.evaluate(() => ({
    pwned: window.__pwned,
    imgs: document.querySelectorAll('#page img, #page script').length,
    text: document.querySelector('#tenant-results').textContent,
  }));
  assert.equal(hostile.pwned, undefined, 'the payload ran');
  assert.equal(hostile.imgs, 0, 'the payload became elements');
  assert.ok(hostile.text.includes('<img src=x onerror='), 'the name is shown as text');
  await page.screenshot({ path: path.join(shots, 'tenants-hostile-names.png') });
  await page.click(`a[href="#/tenant/xss-${rnd}"]`);
  await page.waitForSelector('#daily-chart canvas');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.textContent('#page h1'), xss);

  step('the tenant page: bars and chart');
  // the previous tenant's page has the same elements: wait for this one's title
  const open = async (s, title) => {
    await page.evaluate((x) => { location.hash = '#/tenant/' + x; }, s);
    await page.waitForFunction((t) => document.querySelector('#page h1')?.textContent === t, title);
    await page.waitForSelector('#daily-chart canvas');
  };
  await open(slug, 'Shop ' + rnd);
  await page.waitForSelector('#h-usage');
  assert.equal(await page.locator('.meter .bar').count(), 3);
  const fills = await page.$$eval('.meter .fill', (xs) => xs.map((x) => x.getBoundingClientRect().width));
  assert.ok(fills[0] > 10, 'the users bar shows one of five users: ' + fills);
  const inked = await page.$eval('#daily-chart canvas', (cv) => {
    const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return { w: cv.width, h: cv.height, n };
  });
  assert.ok(inked.w > 200 && inked.h > 100 && inked.n > 500, 'chart drew: ' + JSON.stringify(inked));
  await page.screenshot({ path: path.join(shots, 'tenant.png'), fullPage: true });

  step('suspend, and the login is refused');
  await page.click('#act-status');
  await page.waitForSelector('#action-result.ok');
  assert.equal(await page.textContent('#action-result'), 'Suspended.');
  const denied = await login();
  assert.equal(denied.status, 403);
  assert.equal(denied.json.code, 'tenant_suspended');
  await page.waitForSelector('#act-status:text("Resume")');

  step('change the plan');
  await page.selectOption('#act-plan', 'starter');
  await page.click('#act-plan ~ button');
  await page.waitForSelector('#action-result.ok');
  assert.equal((await admin('GET', '/admin/tenants/' + slug)).json.plan, 'starter');
  await page.waitForSelector('dd:text("starter")');

  step('move it');
  await page.selectOption('#act-isolation', 'schema');
  await page.click('#act-server ~ button');
  await page.waitForSelector('#action-result.ok', { timeout: 60000 });
  assert.match(await page.textContent('#action-result'), /^Moved: now schema on main/);
  const moved = (await admin('GET', '/admin/tenants/' + slug)).json;
  assert.equal(moved.isolation, 'schema');
  assert.equal(moved.usage.users, 1);
  await page.waitForSelector('dd:text("schema")');

  step('resume, then export');
  await page.click('#act-status');
  await page.waitForSelector('#action-result.ok');
  assert.equal((await login()).status, 200);
  await page.waitForSelector('#act-status:text("Suspend")');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('a:text("Download export")')]);
  const first = fs.readFileSync(await dl.path(), 'utf8').split('\n')[0];
  assert.equal(JSON.parse(first).format, 'tenantd-export');

  step('CSRF: a write without the header is refused, also from another origin');
  assert.deepEqual(errors, [], 'console errors');
  const same = await page.evaluate(async (p) => {
    const x = await fetch(p, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: '{"name":"csrf"}' });
    return { status: x.status, body: await x.json() };
  }, '/admin/tenants/' + slug);
  assert.equal(same.status, 403);
  assert.equal(same.body.code, 'forbidden');
  other = http.createServer((_, res) => { res.setHeader('Content-Type', 'text/html'); res.end('<!doctype html><title>elsewhere</title>'); });
  await new Promise((ok) => other.listen(0, '127.0.0.1', ok));
  // 127.0.0.1 on another port: another origin but the same site, so SameSite does not
  // hold the cookie back and the CSRF token is what refuses the request
  const otherUrl = 'http://127.0.0.1:' + other.address().port + '/';
  const evil = await ctx.newPage();
  await evil.goto(otherUrl);
  const sent = await evil.evaluate(async (u) => {
    await fetch(u, { method: 'PATCH', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"name":"pwned"}' }).catch(() => null);
    await fetch(u + '/move', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"isolation":"pool"}' }).catch(() => null);
    return true;
  }, base + '/admin/tenants/' + slug);
  assert.ok(sent);
  await evil.close();
  errors.length = 0; // Chromium logs the deliberate 403 above as a failed load
  const after = (await admin('GET', '/admin/tenants/' + slug)).json;
  assert.equal(after.name, 'Shop ' + rnd, 'a request from another origin changed the tenant');
  assert.equal(after.isolation, 'schema', 'a request from another origin moved the tenant');

  step('delete with the slug typed');
  await open('long-' + rnd, long);
  assert.equal(await page.isDisabled('form:has(#act-confirm) button'), true);
  await page.fill('#act-confirm', 'long-' + rnd);
  await page.click('form:has(#act-confirm) button');
  await page.waitForSelector('#action-result.ok');
  assert.equal((await admin('GET', '/admin/tenants/long-' + rnd)).status, 404);
  await page.waitForFunction(() => location.hash.startsWith('#/tenants')); // back to the list
  await page.waitForSelector('#tenant-results table');

  step('the other pages');
  for (const [hash, file, sel] of [['#/migrations', 'migrations', '.chart canvas'], ['#/servers', 'servers', '.meter .bar'], ['#/live', 'live', '.chart canvas']]) {
    await page.evaluate((x) => { location.hash = x; }, hash);
    await page.waitForSelector(sel);
    assert.equal(await page.getAttribute('#nav a[aria-current="page"]', 'href'), hash);
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(shots, file + '.png'), fullPage: true });
  }
  assert.ok((await page.textContent('#page')).includes(slug), 'live lists the tenant that was just used');

  step('phone width');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => { location.hash = '#/tenants'; });
  await page.waitForSelector('#tenant-results table');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, 'the page is wider than the phone: ' + overflow);
  await page.screenshot({ path: path.join(shots, 'tenants-phone.png') });

  step('keyboard: the sections are reachable by Tab');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click('.brand');
  const reached = [];
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => document.activeElement.textContent.trim()));
  }
  assert.ok(reached.includes('Migrations') && reached.includes('Live'), 'tab order: ' + reached);

  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(errors, [], 'console errors');
  step('done; screenshots in ' + shots);
} catch (e) {
  await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => null);
  console.error('errors in the page:', errors);
  throw e;
} finally {
  await ctx.close();
  if (other) other.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
