// Browser sessions from the attacker's side (docs/security/web.md): what a request without a
// session, with a forged or ended one, or from another origin gets; the login limiter; the CSRF
// token; the key's revocation ending its sessions. The browser itself is driven in
// dashboard-browser.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { LoginLimiter, WebSessions } from '../src/services/web-sessions.js';
import { startEngine, type TestEngine } from './harness.js';

const run = promisify(execFile);
let t: TestEngine;
const NO_KEY = { authorization: '' };

async function login(key: string, headers: Record<string, string> = {}) {
  const r = await t.api('POST', '/v1/session', { key }, { headers: { ...NO_KEY, ...headers } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const cookie = /faas_session=[^;]+/.exec(r.headers.get('set-cookie') ?? '')![0];
  return { cookie, csrf: r.body.csrfToken as string, setCookie: r.headers.get('set-cookie')! };
}

describe('browser sessions', () => {
  before(async () => {
    t = await startEngine();
  });
  after(async () => t?.close());

  it('without a session: pages send a browser to /login, API callers get 401; the login page says where the key is', async () => {
    const page = await fetch(`${t.url}/dashboard`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), '/login?next=%2Fdashboard');
    const docs = await fetch(`${t.url}/docs`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(docs.headers.get('location'), '/login?next=%2Fdocs');
    assert.equal((await t.api('GET', '/dashboard', undefined, { headers: NO_KEY })).status, 401);
    const api = await t.api('GET', '/v1/instances', undefined, { headers: NO_KEY });
    assert.equal(api.status, 401);
    assert.match(api.body.error.message, /faas key show/);
    const form = await t.api('GET', '/login?next=/dashboard&error=invalid', undefined, { headers: NO_KEY });
    assert.equal(form.status, 200);
    assert.match(form.body, /faas key show/);
    assert.match(form.body, /credentials\.json/);
    assert.match(form.body, /not valid/);
    assert.match(form.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.doesNotMatch(form.body, /<script/);
  });

  it('the cookie is HttpOnly, SameSite=Strict and a random id (never the key); the session acts as its key', async () => {
    const { cookie, csrf, setCookie } = await login(t.key);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(t.key));
    const who = await t.api('GET', '/v1/session', undefined, { headers: { ...NO_KEY, cookie } });
    assert.equal(who.status, 200);
    assert.equal(who.body.csrfToken, csrf);
    assert.equal((await t.api('GET', '/v1/snapshots', undefined, { headers: { ...NO_KEY, cookie } })).status, 200);
    // With a bearer key there is no session to show.
    assert.equal((await t.api('GET', '/v1/session')).status, 404);
  });

  it('a forged cookie is refused; a logged-out one is refused', async () => {
    const forged = await t.api('GET', '/v1/snapshots', undefined, { headers: { ...NO_KEY, cookie: 'faas_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.details.reason, 'session_ended');
    const { cookie, csrf } = await login(t.key);
    const out = await t.api('DELETE', '/v1/session', undefined, { headers: { ...NO_KEY, cookie, 'x-faas-csrf': csrf } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await t.api('GET', '/v1/snapshots', undefined, { headers: { ...NO_KEY, cookie } })).status, 401);
  });

  it('a cookie change needs the CSRF token; a cookie request from another origin is refused (401: the cookie does not authenticate it)', async () => {
    const { cookie, csrf } = await login(t.key);
    const h = { ...NO_KEY, cookie };
    const noToken = await t.api('POST', '/v1/tokens', {}, { headers: h });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.error.details.reason, 'csrf');
    const wrongToken = await t.api('POST', '/v1/tokens', {}, { headers: { ...h, 'x-faas-csrf': csrf.slice(1) + 'x' } });
    assert.equal(wrongToken.status, 401);
    for (const hostile of [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }] as Record<string, string>[]) {
      const r = await t.api('POST', '/v1/tokens', {}, { headers: { ...h, 'x-faas-csrf': csrf, ...hostile } });
      assert.equal(r.status, 401, JSON.stringify(hostile));
      assert.equal(r.body.error.details.reason, 'cross_origin');
      // Reads too: another origin's page gets nothing with the cookie.
      assert.equal((await t.api('GET', '/v1/snapshots', undefined, { headers: { ...h, ...hostile } })).status, 401);
    }
    const ok = await t.api('POST', '/v1/tokens', {}, { headers: { ...h, 'x-faas-csrf': csrf, origin: t.url, 'sec-fetch-site': 'same-origin' } });
    assert.equal(ok.status, 201);
    // A form post from another page (urlencoded) is refused before its body is looked at.
    const form = await fetch(`${t.url}/v1/tokens`, { method: 'POST', headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    assert.equal(form.status, 401);
    // Form bodies are taken by the login route only.
    const elsewhere = await t.api('POST', '/v1/tokens', 'a=b', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(elsewhere.status, 400);
  });

  it('a login from another origin is refused (login CSRF); a form login redirects only to the engine’s pages', async () => {
    const r = await t.api('POST', '/v1/session', { key: t.key }, { headers: { ...NO_KEY, origin: 'http://evil.example' } });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('set-cookie'), null);
    const form = await fetch(`${t.url}/v1/session`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.url },
      body: new URLSearchParams({ key: t.key, next: '//evil.example/x' }).toString(),
    });
    assert.equal(form.status, 303);
    assert.equal(form.headers.get('location'), '/dashboard');
    const docs = await fetch(`${t.url}/v1/session`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: t.key, next: '/docs' }).toString(),
    });
    assert.equal(docs.headers.get('location'), '/docs');
    const bad = await fetch(`${t.url}/v1/session`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: 'nope', next: '/docs' }).toString(),
    });
    assert.equal(bad.headers.get('location'), '/login?error=invalid&next=%2Fdocs');
    assert.equal(bad.headers.get('set-cookie'), null);
  });

  it('revoking the key ends its sessions', async () => {
    const created = await t.api('POST', '/v1/keys', { name: 'web-revoke' });
    const { cookie } = await login(created.body.secret);
    assert.equal((await t.api('GET', '/v1/snapshots', undefined, { headers: { ...NO_KEY, cookie } })).status, 200);
    assert.equal((await t.api('DELETE', `/v1/keys/${created.body.id}`)).status, 204);
    assert.equal((await t.api('GET', '/v1/snapshots', undefined, { headers: { ...NO_KEY, cookie } })).status, 401);
  });

  it('a WebSocket with the cookie needs the engine’s own Origin', async () => {
    const { cookie } = await login(t.key);
    const ws = t.url.replace('http', 'ws') + '/v1/instances/inst_doesnotexist/terminal';
    const statusOf = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const s = new WebSocket(ws, ['faas-terminal'], { headers });
        s.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        s.on('open', () => resolve(101));
        s.on('error', () => resolve(-1));
      });
    assert.equal(await statusOf({ cookie, origin: 'http://evil.example' }), 401);
    assert.equal(await statusOf({ cookie }), 401); // no Origin: not a page of this engine
    assert.equal(await statusOf({ cookie: 'faas_session=forged' }), 401);
    // Past the cookie check with the own Origin: the instance simply does not exist.
    assert.equal(await statusOf({ cookie, origin: t.url }), 404);
  });

  it('the login is rate-limited per client address after 10 failures', async () => {
    // Earlier tests of this engine failed a login or two from this address too.
    let tries = 0;
    while ((await t.api('POST', '/v1/session', { key: `wrong-${tries}` }, { headers: NO_KEY })).status === 401) tries++;
    assert.ok(tries <= 10, `refused only after ${tries} failures`);
    // Now even the right key is refused from this address until the window passes.
    const limited = await t.api('POST', '/v1/session', { key: t.key }, { headers: NO_KEY });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.equal(limited.headers.get('set-cookie'), null);
  });

  it('the spec names the address it was asked at; the dashboard has a CSP; its assets are public and only its own files', async () => {
    const spec = await t.api('GET', '/v1/openapi.json');
    assert.deepEqual(spec.body.servers.map((s: { url: string }) => s.url), [t.url]);
    const page = await t.api('GET', '/dashboard');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.doesNotMatch(page.body, /<script>/);
    const js = await t.api('GET', '/dashboard/assets/app.js', undefined, { headers: NO_KEY });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await t.api('GET', '/dashboard/assets/..%2fpackage.json', undefined, { headers: NO_KEY })).status, 400);
    assert.equal((await t.api('GET', '/dashboard/assets/nothing.js', undefined, { headers: NO_KEY })).status, 404);
  });
});

describe('browser sessions: IPv6 addresses and the host user nobody', () => {
  let e: TestEngine;
  before(async () => {
    e = await startEngine();
  });
  after(async () => e?.close());

  it('an engine reached at an IPv6 literal knows its own origin (and names it as the spec server)', async () => {
    const host = '[::1]:7440'; // what a browser at http://[::1]:7440/ sends as Host and Origin
    // node:http, not fetch: fetch does not let a caller set Host.
    const send = (method: string, path: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${e.url}${path}`, { method, headers: { host, ...headers } }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const login = (origin: string) => send('POST', '/v1/session', { origin, 'content-type': 'application/json' }, JSON.stringify({ key: e.key }));
    assert.equal((await login(`http://${host}`)).status, 201);
    assert.equal((await login('http://[::1]:8080')).status, 403);
    const spec = await send('GET', '/v1/openapi.json', { authorization: `Bearer ${e.key}` });
    assert.equal(JSON.parse(spec.body).servers[0].url, `http://${host}`);
  });

  it('the host user nobody gets the login page or 401, never a session, without the key', async () => {
    // Asynchronously: the engine answering curl runs in this very process.
    const curl = async (...args: string[]) => (await run('runuser', ['-u', 'nobody', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', ...args], { encoding: 'utf8' })).stdout;
    assert.match(await curl('-H', 'accept: text/html', `${e.url}/dashboard`), /^303 .*\/login\?next=%2Fdashboard$/);
    assert.match(await curl('-H', 'cookie: faas_session=guessed', `${e.url}/v1/instances`), /^401/);
    assert.match(await curl('-H', 'content-type: application/json', '-d', '{"key":"faas_guess"}', `${e.url}/v1/session`), /^401/);
  });
});

describe('session and limiter clocks', () => {
  it('a session ends at its expiry; the limiter forgets failures after its window', () => {
    let now = 1_000_000;
    const sessions = new WebSessions(60, () => now);
    const s = sessions.create('secret', 'key_a');
    assert.equal(sessions.get(s.id)?.keyId, 'key_a');
    now += 59_999;
    assert.ok(sessions.get(s.id));
    now += 1;
    assert.equal(sessions.get(s.id), undefined);
    const limiter = new LoginLimiter(2, 1000, () => now);
    limiter.fail('a');
    limiter.fail('a');
    assert.ok(limiter.retryAfter('a') > 0);
    assert.equal(limiter.retryAfter('b'), 0);
    now += 1001;
    assert.equal(limiter.retryAfter('a'), 0);
  });
});
