// HTTP services through the engine's host-based proxy, with real clients (curl, Node's http with
// keep-alive, fetch as an SSE client, the `ws` WebSocket client) against a real app in a real
// sandbox: streaming both ways, 502 when nothing listens, wakeOn vs 409, auth from the attacker's
// side, survival across an engine restart, and a branch child with its own URL.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import type { LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { purge, startEngine, type TestEngine } from './harness.js';
import { startServiceApp } from './service-app.js';
import { SPLICE_MIN_BYTES } from '../src/http/body-splice.js';

const PORT = 8080;
// Async: the engine runs in this process, so a blocking child would block the engine it talks to.
const run = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { encoding: 'utf8' })).stdout;

/** `*.localhost` is loopback (RFC 6761); Node's resolver defers to glibc, which may not know that. */
export const loopback: LookupFunction = (_host, opts, cb) =>
  (opts as { all?: boolean }).all ? (cb as any)(null, [{ address: '127.0.0.1', family: 4 }]) : (cb as any)(null, '127.0.0.1', 4);

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
  json(): Promise<any>;
  body: IncomingMessage;
}

/** One request with Node's http client; `stream` leaves the body unread (res.body). */
function call(url: string, headers: Record<string, string> = {}, opts: { method?: string; stream?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers, lookup: loopback, agent: false }, (res) => {
      const answer = (text: string): Answer => ({ status: res.statusCode!, headers: res.headers, text, json: async () => JSON.parse(text), body: res });
      if (opts.stream) return resolve(answer(''));
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(answer(Buffer.concat(chunks).toString())));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP services', () => {
  const stateDir = mkdtempSync('/tmp/faas-test-svc-');
  let t: TestEngine;
  let id: string; // wakeOn.http, runs the app
  let other: string; // no wakeOn, runs the app too
  let snapshotId: string;

  before(async () => {
    t = await startEngine({ stateDir });
    snapshotId = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const a = await t.api('POST', '/v1/instances', { snapshotId, wakeOn: { http: true } });
    assert.equal(a.status, 201);
    assert.deepEqual(a.body.wakeOn, { http: true, ssh: false });
    id = a.body.id;
    other = (await t.api('POST', '/v1/instances', { snapshotId })).body.id;
    await startServiceApp(t.api, id, PORT);
    await startServiceApp(t.api, other, PORT);
  });
  after(async () => {
    await t?.engine.shutdown({ stopInstances: true, clean: true });
    purge(stateDir);
  });

  /** The host name a service answers on, and a URL through this engine's (random) port. */
  const host = (inst: string, name: string) => `${name}-${inst.replace('_', '-')}.localhost`;
  const port = () => new URL(t.url).port;
  const base = (inst: string, name: string) => `http://${host(inst, name)}:${port()}`;
  const bearer = () => ({ authorization: `Bearer ${t.key}` });
  /** A GET through the proxy; the connection goes to loopback as curl and browsers do for
   *  `*.localhost` (glibc here does not resolve it). */
  const get = (inst: string, name: string, path = '/who', headers: Record<string, string> = {}) => call(`${base(inst, name)}${path}`, headers);
  const expose = (inst: string, name: string, body: unknown) => t.api('PUT', `/v1/instances/${inst}/services/${name}`, body);

  it('exposes, lists (also on the instance), replaces and hides a service', async () => {
    const r = await expose(id, 'web', { port: PORT });
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'web');
    assert.equal(r.body.auth, 'api-key');
    assert.equal(r.body.tokenUrl, null);
    assert.equal(new URL(r.body.url).hostname, host(id, 'web'));
    const list = await t.api('GET', `/v1/instances/${id}/services`);
    assert.deepEqual(list.body.data.map((s: any) => s.name), ['web']);
    const inst = await t.api('GET', `/v1/instances/${id}`);
    assert.deepEqual(inst.body.services.map((s: any) => [s.name, s.port]), [['web', PORT]]);
    await expose(id, 'tmp', { port: 9 });
    assert.equal((await t.api('DELETE', `/v1/instances/${id}/services/tmp`)).status, 204);
    const gone = await t.api('DELETE', `/v1/instances/${id}/services/tmp`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'service_not_found');
    assert.equal((await get(id, 'tmp', '/', bearer())).status, 404);
  });

  it('refuses names that are not DNS labels and ports out of range, saying what is allowed', async () => {
    for (const name of ['Web', 'a_b', '-x', 'x-', 'a'.repeat(33)]) {
      const r = await expose(id, encodeURIComponent(name), { port: PORT });
      assert.equal(r.status, 400, name);
      assert.equal(r.body.error.code, 'invalid_request');
    }
    assert.equal((await expose(id, 'web', { port: 70000 })).status, 400);
    assert.equal((await expose(id, 'web', { port: PORT, auth: 'open' })).status, 400);
  });

  it('proxies curl by host name; the app sees its Host, X-Forwarded-*, and no faas credentials', async () => {
    await expose(id, 'web', { port: PORT });
    const out = await run('curl', ['-sS', '-H', `Authorization: Bearer ${t.key}`, '-H', 'Cookie: theme=dark; faas_svc=x', `${base(id, 'web')}/who?q=1`]);
    const seen = JSON.parse(out);
    assert.equal(seen.path, '/who?q=1');
    assert.equal(seen.headers.host, `${host(id, 'web')}:${port()}`);
    assert.equal(seen.headers['x-forwarded-host'], `${host(id, 'web')}:${port()}`);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers.cookie, 'theme=dark');
  });

  it('keeps connections alive on both sides', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const one = () =>
      new Promise<{ reused: boolean; peer: number }>((resolve, reject) => {
        const req = request(`${base(id, 'web')}/who`, { agent, headers: bearer(), lookup: loopback }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ reused: req.reusedSocket, peer: JSON.parse(text).peer }));
        });
        req.on('error', reject);
        req.end();
      });
    const a = await one();
    const b = await one();
    const c = await one();
    agent.destroy();
    assert.deepEqual([a.reused, b.reused, c.reused], [false, true, true]);
    // The app saw one connection from the engine for all three.
    assert.equal(b.peer, a.peer);
    assert.equal(c.peer, a.peer);
  });

  it('streams a request body and its echo as they flow (no buffering of either)', async () => {
    const res = await new Promise<{ text: string }>((resolve, reject) => {
      const req = request(`${base(id, 'web')}/echo`, { method: 'POST', headers: { ...bearer(), 'transfer-encoding': 'chunked' }, lookup: loopback }, (r: IncomingMessage) => {
        let text = '';
        r.on('data', (c) => {
          text += c;
          // The second chunk is sent only once the first came back: a proxy that waited for the
          // whole body (or the whole answer) would never get here.
          if (text === 'first;') req.end('second');
        });
        r.on('end', () => resolve({ text }));
      });
      req.on('error', reject);
      req.write('first;');
    });
    assert.equal(res.text, 'first;second');
  });

  it('streams a 16 MiB download intact', async () => {
    const r = await get(id, 'web', `/big?n=${16 << 20}`, bearer());
    assert.equal(r.status, 200);
    assert.equal(r.text.length, 16 << 20);
  });

  it('splices a large body (kernel to kernel), byte-exact, and the client\'s connection stays alive', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const one = (path: string) =>
      new Promise<{ reused: boolean; body: Buffer; status: number }>((resolve, reject) => {
        const req = request(`${base(id, 'web')}${path}`, { agent, headers: bearer(), lookup: loopback }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ reused: req.reusedSocket, body: Buffer.concat(chunks), status: res.statusCode! }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    const first = JSON.parse((await one('/who')).body.toString()).peer;
    const n = SPLICE_MIN_BYTES * 3 + 7;
    const big = await one(`/count?n=${n}`);
    assert.equal(big.status, 200);
    assert.equal(big.reused, true);
    assert.equal(big.body.length, n);
    const bad = big.body.findIndex((b, i) => b !== i % 251);
    assert.equal(bad, -1, `byte ${bad} is wrong`);
    const next = await one('/who');
    assert.equal(next.reused, true, 'the client keeps its connection after a spliced body');
    // The upstream connection is closed after a spliced body (its parser never saw the bytes), so
    // the app sees a new one: the sign that the body did not go through Node.
    assert.notEqual(JSON.parse(next.body.toString()).peer, first);
    // A body just under the threshold still goes through Node, on the kept upstream connection.
    const peer = JSON.parse((await one('/who')).body.toString()).peer;
    const small = await one(`/count?n=${SPLICE_MIN_BYTES - 1}`);
    assert.equal(small.body.findIndex((b, i) => b !== i % 251), -1);
    assert.equal(JSON.parse((await one('/who')).body.toString()).peer, peer);
    agent.destroy();
  });

  it('a client that goes away in the middle of a spliced body leaves the proxy working', async () => {
    const res = await call(`${base(id, 'web')}/big?n=${1 << 30}`, bearer(), { stream: true });
    assert.equal(res.status, 200);
    await new Promise<void>((resolve) => res.body.once('data', () => resolve()));
    res.body.destroy();
    const r = await get(id, 'web', `/big?n=${SPLICE_MIN_BYTES + 1}`, bearer());
    assert.equal(r.status, 200);
    assert.equal(r.text.length, SPLICE_MIN_BYTES + 1);
  });

  it('passes server-sent events through as they are sent', async () => {
    await t.api('POST', `/v1/instances/${id}/exec`, { command: 'rm -f /tmp/go' });
    const r = await call(`${base(id, 'web')}/sse`, { ...bearer(), accept: 'text/event-stream' }, { stream: true });
    assert.equal(r.headers['content-type'], 'text/event-stream');
    const events: string[] = [];
    let buf = '';
    for await (const value of r.body) {
      buf += Buffer.from(value).toString();
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        events.push(buf.slice(0, i).replace(/^data: /, ''));
        buf = buf.slice(i + 2);
        // The app sends the second event only after this: the first must arrive on its own.
        if (events.length === 1) await t.api('POST', `/v1/instances/${id}/exec`, { command: 'touch /tmp/go' });
      }
    }
    assert.deepEqual(events, ['one', 'two']);
  });

  it('passes WebSocket upgrades through (text and a 200 KiB binary message), and hiding closes them', async () => {
    await expose(id, 'wsock', { port: PORT });
    const ws = new WebSocket(`ws://${host(id, 'wsock')}:${port()}/ws`, { headers: bearer(), lookup: loopback });
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    const echo = (data: string | Buffer) => new Promise<Buffer>((resolve) => (ws.once('message', (d) => resolve(d as Buffer)), ws.send(data)));
    assert.equal((await echo('hello')).toString(), 'hello');
    const big = Buffer.alloc(200 * 1024, 7);
    assert.ok((await echo(big)).equals(big));
    const closed = new Promise((resolve) => ws.once('close', resolve));
    await t.api('DELETE', `/v1/instances/${id}/services/wsock`);
    await closed;
    const refused = await new Promise<number>((resolve) => {
      const again = new WebSocket(`ws://${host(id, 'wsock')}:${port()}/ws`, { headers: bearer(), lookup: loopback });
      again.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      again.once('open', () => resolve(101));
    });
    assert.equal(refused, 404);
  });

  it('answers 502 service_unreachable in the envelope when nothing listens on the port', async () => {
    await expose(id, 'dead', { port: 9999 });
    const r = await get(id, 'dead', '/', bearer());
    assert.equal(r.status, 502);
    const body = await r.json();
    assert.equal(body.error.code, 'service_unreachable');
    assert.equal(body.error.details.port, 9999);
    assert.equal(body.error.requestId, r.headers['x-request-id']);
  });

  it('resumes a paused instance on the first request with wakeOn.http, and answers 409 without it', async () => {
    await expose(other, 'web', { port: PORT });
    assert.equal((await t.api('POST', `/v1/instances/${id}/pause`)).body.state, 'paused');
    assert.equal((await t.api('POST', `/v1/instances/${other}/pause`)).body.state, 'paused');
    const woke = await get(id, 'web', '/who', bearer());
    assert.equal(woke.status, 200);
    assert.equal((await t.api('GET', `/v1/instances/${id}`)).body.state, 'ready');
    const refused = await get(other, 'web', '/who', bearer());
    assert.equal(refused.status, 409);
    assert.equal((await refused.json()).error.code, 'instance_not_ready');
    assert.equal((await t.api('GET', `/v1/instances/${other}`)).body.state, 'paused');
    await t.api('POST', `/v1/instances/${other}/resume`);
  });

  describe('auth, from the attacker\'s side', () => {
    let stranger: string;
    before(async () => {
      stranger = (await t.api('POST', '/v1/keys', { name: 'stranger' })).body.secret;
      await expose(id, 'web', { port: PORT });
      await expose(id, 'pub', { port: PORT, auth: 'none' });
      await expose(id, 'tok', { port: PORT, auth: 'token' });
      await expose(other, 'tok', { port: PORT, auth: 'token' });
    });

    it('api-key: no key is 401, another key is 404 (like a missing service), a token of the key works', async () => {
      assert.equal((await get(id, 'web')).status, 401);
      assert.equal((await get(id, 'web', '/who', { authorization: 'Bearer faas_forged' })).status, 401);
      const foreign = await get(id, 'web', '/who', { authorization: `Bearer ${stranger}` });
      assert.equal(foreign.status, 404);
      assert.equal((await foreign.json()).error.code, 'service_not_found');
      const token = (await t.api('POST', '/v1/tokens', { expiresIn: 60 })).body.token;
      assert.equal((await get(id, 'web', '/who', { authorization: `Bearer ${token}` })).status, 200);
    });

    it('the host user nobody gets 401 without the key', async () => {
      const out = await run('runuser', ['-u', 'nobody', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${base(id, 'web')}/who`]);
      assert.equal(out, '401');
    });

    it('none: anyone may use it, and a faas key sent along is not passed to the app', async () => {
      const r = await get(id, 'pub', '/who', { authorization: `Bearer ${stranger}` });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).headers.authorization, undefined);
      assert.equal((await get(id, 'pub')).status, 200);
      // The app's own credentials are the app's.
      const own = await (await get(id, 'pub', '/who', { authorization: 'Bearer app-secret' })).json();
      assert.equal(own.headers.authorization, 'Bearer app-secret');
      // Nor the dashboard's session cookie (a browser sends it to any server of the engine's host
      // name, whatever the port): the app gets its own cookies only.
      const jar = await (await get(id, 'pub', '/who', { cookie: 'faas_session=s3cr3t; app=1' })).json();
      assert.equal(jar.headers.cookie, 'app=1');
    });

    it('token: the link sets a host-only HttpOnly cookie and redirects to the clean URL; the app never sees either', async () => {
      const svc = (await t.api('GET', `/v1/instances/${id}/services/tok`)).body;
      assert.ok(svc.tokenUrl.startsWith(svc.url), svc.tokenUrl);
      const link = new URL(svc.tokenUrl);
      const r = await get(id, 'tok', `/who${link.search.replace('?', '?x=1&')}`);
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, '/who?x=1');
      const cookie = r.headers['set-cookie']![0];
      assert.match(cookie, /^faas_svc=faassvc\.[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
      assert.doesNotMatch(cookie, /Domain=/i);
      const jar = cookie.split(';')[0];
      const seen = await (await get(id, 'tok', '/who?x=1', { cookie: `${jar}; app=1` })).json();
      assert.equal(seen.headers.cookie, 'app=1');
      assert.equal(seen.path, '/who?x=1');
      // A non-GET with the link is served at once (no redirect), and gets the cookie too.
      const post = await call(`${base(id, 'tok')}/echo${link.search}`, {}, { method: 'POST' });
      assert.equal(post.status, 200);
      assert.match(String(post.headers['set-cookie']), /^faas_svc=faassvc\./);
      // Without link or cookie: 401; the API key still works.
      assert.equal((await get(id, 'tok')).status, 401);
      assert.equal((await get(id, 'tok', '/who', bearer())).status, 200);
    });

    it('token: a token for one service opens no other service, instance, or API route', async () => {
      const mine = new URL((await t.api('GET', `/v1/instances/${id}/services/tok`)).body.tokenUrl).searchParams.get('faas_token')!;
      const cookie = { cookie: `faas_svc=${mine}` };
      assert.equal((await get(other, 'tok', '/who', cookie)).status, 401); // same name, another instance
      assert.equal((await get(id, 'web', '/who', cookie)).status, 401); // same instance, another (api-key) service
      assert.equal((await get(other, 'tok', `/who?faas_token=${encodeURIComponent(mine)}`)).status, 401);
      const api = await fetch(`${t.url}/v1/instances`, { headers: { authorization: `Bearer ${mine}` } });
      assert.equal(api.status, 401);
      // A tampered token is refused too.
      assert.equal((await get(id, 'tok', '/who', { cookie: `faas_svc=${mine.slice(0, -2)}xx` })).status, 401);
      // A stranger's token for this service (minted through the stranger's own view) is refused:
      // the stranger cannot see the instance, so its key does not own it.
      assert.equal((await t.api('GET', `/v1/instances/${id}/services/tok`, undefined, { headers: { authorization: `Bearer ${stranger}` } })).status, 404);
    });

    it('routes of the service API are owner-checked: another key cannot list, expose or hide', async () => {
      const as = { headers: { authorization: `Bearer ${stranger}` } };
      assert.equal((await t.api('GET', `/v1/instances/${id}/services`, undefined, as)).status, 404);
      assert.equal((await t.api('PUT', `/v1/instances/${id}/services/evil`, { port: 22 }, as)).status, 404);
      assert.equal((await t.api('DELETE', `/v1/instances/${id}/services/web`, undefined, as)).status, 404);
      assert.equal((await fetch(`${t.url}/v1/instances/${id}/services`)).status, 401);
    });

    it('a host that names no possible service is 404, not the API', async () => {
      const r = await call(`http://nothing-here.localhost:${port()}/v1/instances`, bearer());
      assert.equal(r.status, 404);
      assert.equal((await r.json()).error.code, 'service_not_found');
    });
  });

  it('gives a branch child the parent\'s services under its own URL', async () => {
    const b = await t.api('POST', `/v1/instances/${id}/branch`, { count: 1 });
    assert.equal(b.status, 201);
    const child = b.body.instances[0];
    const web = child.services.find((s: any) => s.name === 'web');
    assert.equal(new URL(web.url).hostname, host(child.id, 'web'));
    assert.deepEqual(child.wakeOn, { http: true, ssh: false });
    // The app's process came along with the memory; the child's URL reaches the child.
    const r = await get(child.id, 'web', '/who', bearer());
    assert.equal(r.status, 200);
    await t.api('POST', `/v1/instances/${child.id}/exec`, { command: 'echo child > /tmp/whoami' });
    assert.equal((await t.api('GET', `/v1/instances/${id}/services/web`)).status, 200);
    await t.api('DELETE', `/v1/instances/${child.id}`);
    assert.equal((await get(child.id, 'web', '/who', bearer())).status, 404);
  });

  it('services and wakeOn survive an engine restart', async () => {
    await t.engine.shutdown();
    t = await startEngine({ stateDir });
    const list = await t.api('GET', `/v1/instances/${id}/services`);
    assert.ok(list.body.data.some((s: any) => s.name === 'web'));
    assert.deepEqual((await t.api('GET', `/v1/instances/${id}`)).body.wakeOn, { http: true, ssh: false });
    const r = await get(id, 'web', '/who', bearer());
    assert.equal(r.status, 200);
  });
});

// Regression: the proxy's idle keep-alive connections were pooled by ip:port for the whole engine.
// A restart (or a delete and a new start) gives the address to a new sandbox, which answered the
// stale connection's next request with a reset: a 502 for a server that was up. Namespace and
// warm pools off, so the restarted instance gets its old slot (the lowest free one) back.
describe('HTTP services across a sandbox that reuses an address', () => {
  let t: TestEngine;
  before(async () => {
    t = await startEngine({ env: { FAAS_NETNS_POOL: '0', FAAS_WARM_POOL: '0' } });
  });
  after(async () => {
    await t?.close();
  });

  it('drops an instance\'s pooled connections when its sandbox goes', async () => {
    const snapshotId = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const parent = (await t.api('POST', '/v1/instances', { snapshotId })).body.id;
    await startServiceApp(t.api, parent, PORT);
    // A snapshot with the app running: every restore of it serves at once.
    const withApp = (await t.api('POST', `/v1/instances/${parent}/snapshot`, {})).body.id;
    await t.api('DELETE', `/v1/instances/${parent}`);
    const urlOf = (id: string) => `http://web-${id.replace('_', '-')}.localhost:${new URL(t.url).port}/who`;
    const auth = { authorization: `Bearer ${t.key}` };
    const first = (await t.api('POST', '/v1/instances', { snapshotId: withApp })).body;
    await t.api('PUT', `/v1/instances/${first.id}/services/web`, { port: PORT });
    assert.equal((await call(urlOf(first.id), auth)).status, 200); // leaves an idle connection in the pool
    // Its sandbox goes and the next one takes the freed slot, so the same address (a restart no
    // longer waits for its old namespace, so it does not reuse it reliably).
    await t.api('DELETE', `/v1/instances/${first.id}`);
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: withApp })).body;
    assert.equal(inst.network.ip, first.network.ip, 'precondition: the new sandbox has the same address');
    await t.api('PUT', `/v1/instances/${inst.id}/services/web`, { port: PORT });
    const url = urlOf(inst.id);
    const again = await call(url, auth);
    assert.equal(again.status, 200, again.text);
  });
});
