// The HTTP boundary held to its promises (docs/security/api.md): every answer — routed or not,
// made by Node, Fastify or a handler, replayed or fresh — carries the error envelope and an
// X-Request-Id equal to its requestId; 500s are logged under that id; inputs are taken as typed,
// NUL bytes and bad Idempotency-Keys are refused; transient refusals are never replayed; admission
// counts what is already live or starting; a snapshot deleted under starts never leaves an
// instance on missing files; the terminal never echoes a credential; `curl --http2` is served.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEngine, type ApiResponse, type TestEngine } from './harness.js';

type Res = { status: number; headers: Headers | Record<string, string>; body: any };

const header = (res: Res, name: string) => (res.headers instanceof Headers ? res.headers.get(name) : res.headers[name]) ?? null;

/** The envelope with a requestId equal to X-Request-Id. */
function assertEnvelope(res: Res, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.error?.code, code, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.error.message, 'string', what);
  assert.ok('details' in res.body.error, what);
  assert.match(header(res, 'x-request-id') ?? '', /^req_[0-9a-f]+$/, `${what}: X-Request-Id`);
  assert.equal(res.body.error.requestId, header(res, 'x-request-id'), `${what}: requestId = X-Request-Id`);
}

/** One raw HTTP/1.1 exchange (for what fetch will not send), read until the server closes or the body is complete. */
function raw(url: string, request: string | Buffer): Promise<Res & { head: string; headers: Record<string, string> }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = split < 0 ? '' : text.slice(split + 4);
      const length = Number(headers['content-length'] ?? NaN);
      if (Number.isFinite(length)) rest = rest.slice(0, length);
      let body: any = rest;
      try {
        body = JSON.parse(rest);
      } catch {
        /* not JSON */
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body, head });
    };
    sock.on('data', (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, split));
      const upgraded = / 101 /.test(text.slice(0, 16));
      if (upgraded || (m && Buffer.byteLength(text.slice(split + 4), 'latin1') >= Number(m[1]))) {
        sock.destroy();
        finish();
      }
    });
    sock.on('end', finish);
    sock.on('error', (err) => (chunks.length ? finish() : reject(err)));
    sock.write(request);
  });
}

describe('API edges', () => {
  let t: TestEngine;
  const logged: { level: string; obj: any; msg?: string }[] = [];
  let snapId: string;
  let instId: string;
  const auth = () => ({ authorization: `Bearer ${t.key}` });

  before(async () => {
    t = await startEngine({
      // Small on purpose: admission is tested against these, not against the machine.
      env: { FAAS_MAX_INSTANCES: '6', FAAS_MAX_MEMORY_MB: '3072', FAAS_WARM_POOL: '0' },
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (obj, msg) => void logged.push({ level: 'error', obj, msg }),
      },
    });
    // Bodyless POST /v1/snapshots (no Content-Type, no body): the body is optional, so it is `{}`.
    const res = await fetch(`${t.url}/v1/snapshots`, { method: 'POST', headers: auth() });
    const body = await res.json();
    assert.equal(res.status, 201, JSON.stringify(body));
    snapId = body.id;
    instId = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('every answer made outside the handlers carries the envelope and X-Request-Id', async () => {
    const get = async (path: string, init: RequestInit = {}): Promise<ApiResponse> => {
      const res = await fetch(t.url + path, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text.startsWith('{') ? JSON.parse(text) : text };
    };
    assertEnvelope(await get('/v1/nothing-here', { headers: auth() }), 404, 'not_found', 'unknown route');
    assertEnvelope(await get('/v1/snapshots', { method: 'PATCH', headers: auth() }), 405, 'method_not_allowed', 'unknown method');
    assertEnvelope(await get('/v1/snapshots'), 401, 'unauthorized', 'no key');
    assertEnvelope(await get('/v1/snapshots/%zz', { headers: auth() }), 400, 'invalid_request', 'malformed %-escape (before routing)');
    assertEnvelope(await get(`/v1/snapshots/snap_${'a'.repeat(2000)}`, { headers: auth() }), 414, 'invalid_request', 'over-long path parameter');
    const big = await get('/v1/snapshots', { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(17 * 1024 * 1024) }) });
    assertEnvelope(big, 413, 'payload_too_large', 'body over the limit');
    // Docs: not JSON, but they still carry the id.
    for (const path of ['/docs', '/docs/redoc.standalone.js', '/v1/openapi.json']) {
      const res = await fetch(t.url + path, { headers: auth() });
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('x-request-id') ?? '', /^req_/, `${path}: X-Request-Id`);
    }
  });

  it('Node-level refusals (414 request line, 431 headers, malformed HTTP) carry the envelope', async () => {
    const longLine = await raw(t.url, `GET /v1/snapshots?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assertEnvelope(longLine, 414, 'invalid_request', 'request line over the header limit');
    const bigHeaders = await raw(t.url, `GET /v1/health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 40 }, (_, i) => `X-Pad-${i}: ${'b'.repeat(600)}\r\n`).join('')}\r\n`);
    assertEnvelope(bigHeaders, 431, 'invalid_request', 'headers over the limit');
    const garbage = await raw(t.url, 'NOT HTTP AT ALL\r\n\r\n');
    assertEnvelope(garbage, 400, 'invalid_request', 'malformed request');
    // `curl --http2-prior-knowledge`: the HTTP/2 preface is not HTTP/1.1.
    const preface = await raw(t.url, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assertEnvelope(preface, 400, 'invalid_request', 'HTTP/2 prior knowledge');
  });

  it('WebSocket refusals carry the envelope; other upgrade offers (h2c) are served as HTTP/1.1', async () => {
    const ws = (path: string, extra = '') =>
      raw(t.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
    assertEnvelope(await ws(`/v1/instances/${instId}/terminal`), 401, 'unauthorized', 'terminal without a key');
    assertEnvelope(await ws('/v1/instances/inst_nope/terminal', `Authorization: Bearer ${t.key}\r\n`), 404, 'instance_not_found', 'terminal of an unknown instance');
    // Without a key the route's existence is not revealed either: 401 before 404.
    assertEnvelope(await ws('/v1/instances/inst_nope/terminal'), 401, 'unauthorized', 'unknown terminal without a key');
    assertEnvelope(await ws('/v1/elsewhere', `Authorization: Bearer ${t.key}\r\n`), 404, 'not_found', 'WebSocket to a plain route');

    // `curl --http2` on cleartext: Upgrade: h2c with HTTP2-Settings. GET and a POST with a body.
    const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
    const health = await raw(t.url, `GET /v1/health HTTP/1.1\r\nHost: x\r\n${h2c}Connection: close\r\n\r\n`);
    assert.equal(health.status, 200, health.head);
    assert.equal(health.body.status, 'ok');
    assert.match(health.headers['x-request-id'] ?? '', /^req_/);
    const payload = JSON.stringify({ snapshotId: 'snap_doesnotexist' });
    const post = await raw(
      t.url,
      `POST /v1/instances HTTP/1.1\r\nHost: x\r\n${h2c}Authorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`,
    );
    assertEnvelope(post, 404, 'snapshot_not_found', 'h2c offer on a POST with a body: routed and its body read');
  });

  it('the terminal never selects (echoes) the API key offered as a subprotocol', async () => {
    const offer = (protocols: string) =>
      raw(
        t.url,
        `GET /v1/instances/${instId}/terminal?command=true HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ${protocols}\r\n\r\n`,
      );
    const alone = await offer(`bearer.${t.key}`);
    assert.equal(alone.status, 101, alone.head);
    assert.match(alone.headers['x-request-id'] ?? '', /^req_/, 'the 101 carries X-Request-Id');
    assert.ok(!alone.head.includes(t.key), `the 101 must not carry the key:\n${alone.head}`);
    const both = await offer(`faas-terminal, bearer.${t.key}`);
    assert.equal(both.status, 101, both.head);
    assert.equal(both.headers['sec-websocket-protocol'], 'faas-terminal');
    assert.ok(!both.head.includes(t.key));
  });

  it('JSON bodies are not coerced; query strings still are', async () => {
    const branch = await t.api('POST', `/v1/instances/${instId}/branch`, { count: '2' });
    assertEnvelope(branch, 400, 'invalid_request', '{"count":"2"}');
    assertEnvelope(await t.api('POST', '/v1/snapshots', { vcpus: '1' }), 400, 'invalid_request', '{"vcpus":"1"}');
    assertEnvelope(await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'true', timeout: '1000' }), 400, 'invalid_request', '{"timeout":"1000"}');
    assert.equal((await t.api('GET', '/v1/snapshots?limit=1')).status, 200, 'a numeric query parameter is still a number');
  });

  it('NUL bytes in names are a clear 400; in stdin data they are fine', async () => {
    const cwd = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'pwd', cwd: '/tmp\u0000x' });
    assertEnvelope(cwd, 400, 'invalid_request', 'NUL in cwd');
    assert.match(cwd.body.error.message, /NUL/);
    assert.equal(cwd.body.error.details.field, '/cwd');
    assertEnvelope(await t.api('POST', `/v1/instances/${instId}/exec`, { argv: ['echo', 'a\u0000b'] }), 400, 'invalid_request', 'NUL in argv');
    assertEnvelope(await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'env', env: { A: 'x\u0000y' } }), 400, 'invalid_request', 'NUL in env');
    assertEnvelope(await t.api('GET', `/v1/instances/${instId}/files/stat?path=${encodeURIComponent('/tmp/\u0000')}`), 400, 'invalid_request', 'NUL in a file path');
    const data = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'od -An -c', stdin: 'a\u0000b' });
    assert.equal(data.status, 200, JSON.stringify(data.body));
    assert.match(data.body.stdout, /a\s+\\0\s+b/);
  });

  it('a stdin write without a body is 400, not 500', async () => {
    const p = await t.api('POST', `/v1/instances/${instId}/processes`, { command: 'cat' });
    assert.equal(p.status, 201);
    const res = await fetch(`${t.url}/v1/instances/${instId}/processes/${p.body.pid}/stdin`, { method: 'POST', headers: auth() });
    assertEnvelope({ status: res.status, headers: res.headers, body: await res.json() }, 400, 'invalid_request', 'bodyless stdin');
    // A media type no route takes (schemathesis found text/plain: Fastify parsed it to a string and
    // the stdin route, which streams its body, failed with a 500).
    const typed = await fetch(`${t.url}/v1/instances/${instId}/processes/${p.body.pid}/stdin`, {
      method: 'POST', headers: { ...auth(), 'content-type': 'text/plain' }, body: 'abc',
    });
    assertEnvelope({ status: typed.status, headers: typed.headers, body: await typed.json() }, 400, 'invalid_request', 'text/plain stdin');
    await t.api('POST', `/v1/instances/${instId}/processes/${p.body.pid}/signal`, { signal: 'KILL' });
  });

  it('a 500 is logged under its request id and says where to look', async () => {
    const metrics = t.engine.services.metrics;
    const sample = metrics.sample;
    metrics.sample = () => {
      throw new Error('deliberate failure for the test');
    };
    try {
      const res = await t.api('GET', '/v1/metrics');
      assertEnvelope(res, 500, 'internal', 'unexpected error');
      assert.match(res.body.error.message, /log/);
      assert.ok(!JSON.stringify(res.body).includes('deliberate'), 'internals stay in the log');
      const entry = logged.find((l) => l.obj.requestId === res.body.error.requestId);
      assert.ok(entry, `no log entry for ${res.body.error.requestId}: ${JSON.stringify(logged)}`);
      assert.match(JSON.stringify(entry.obj), /deliberate failure/);
    } finally {
      metrics.sample = sample;
    }
  });

  it('Idempotency-Key: shape checked; only final answers replayed, under the new request id', async () => {
    const start = (key: string, body: unknown = { snapshotId: 'snap_doesnotexist' }) => t.api('POST', '/v1/instances?wait=false', body, { headers: { 'idempotency-key': key } });
    assertEnvelope(await start('k'.repeat(256)), 400, 'invalid_request', '256-character key');
    assertEnvelope(await start('a\tb'), 400, 'invalid_request', 'key with a control character');
    assertEnvelope(await start('caf\u00e9'), 400, 'invalid_request', 'non-ASCII key');

    // A final 404 is replayed, and the replay's body names the replay's own id.
    const key = `edge-${Date.now()}`;
    const first = await start(key);
    assertEnvelope(first, 404, 'snapshot_not_found', 'first');
    const again = await start(key);
    assertEnvelope(again, 404, 'snapshot_not_found', 'replay');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.notEqual(again.body.error.requestId, first.body.error.requestId);
  });

  it('admission counts memory held by live and starting instances', async () => {
    // 3072 MB budget, 512 MB held by instId: two 1024 MB starts fit, the rest are 429 with Retry-After.
    const tries = await Promise.all(
      Array.from({ length: 5 }, () => t.api('POST', '/v1/instances?wait=false', { snapshotId: snapId, resources: { memory: 1024 } })),
    );
    const ok = tries.filter((r) => r.status === 201);
    const busy = tries.filter((r) => r.status === 429);
    assert.equal(ok.length, 2, tries.map((r) => r.status).join(','));
    assert.equal(busy.length, 3);
    for (const r of busy) {
      assertEnvelope(r, 429, 'resource_limit', 'over the memory budget');
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(r.body.error.details.reason, 'memory');
    }
    await Promise.all(ok.map((r) => t.api('DELETE', `/v1/instances/${r.body.id}`)));
  });

  const liveCount = async () => {
    const m = (await t.api('GET', '/v1/metrics')).body.instances;
    return m.pending + m.ready + m.paused + m.stopping;
  };
  const startSmall = (headers: Record<string, string> = {}) => t.api('POST', '/v1/instances', { snapshotId: snapId, resources: { memory: 256 } }, { headers });

  it('concurrent branches cannot pass the live-instance cap together', async () => {
    // Cap 6, instId live. Two branches of 3 at once: 1 + 3 + 3 > 6, so exactly one is refused.
    const [a, b] = await Promise.all([
      t.api('POST', `/v1/instances/${instId}/branch`, { count: 3 }),
      t.api('POST', `/v1/instances/${instId}/branch`, { count: 3 }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [201, 429], `${JSON.stringify(a.body)} ${JSON.stringify(b.body)}`);
    assertEnvelope(a.status === 429 ? a : b, 429, 'resource_limit', 'the second branch');
    assert.ok((await liveCount()) <= 6);
    for (const i of (a.status === 201 ? a : b).body.instances) await t.api('DELETE', `/v1/instances/${i.id}`);
  });

  it('a restart is admitted like a start', async () => {
    // instId + 5 = the cap of 6; one stopped, its place taken, then its restart is over the cap.
    const five = await Promise.all([0, 1, 2, 3, 4].map(() => startSmall()));
    assert.deepEqual(five.map((r) => r.status), [201, 201, 201, 201, 201]);
    const [stopped, ...rest] = five.map((r) => r.body.id as string);
    assert.equal((await t.api('POST', `/v1/instances/${stopped}/stop`)).status, 200);
    const other = await startSmall();
    assert.equal(other.status, 201);
    assertEnvelope(await t.api('POST', `/v1/instances/${stopped}/restart`), 429, 'resource_limit', 'restart over the cap');
    assert.ok((await liveCount()) <= 6);
    for (const id of [stopped, ...rest, other.body.id]) await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('a 429 is not replayed under its Idempotency-Key: the retry runs once there is room', async () => {
    const five = await Promise.all([0, 1, 2, 3, 4].map(() => startSmall()));
    assert.deepEqual(five.map((r) => r.status), [201, 201, 201, 201, 201]);
    const key = `full-${Date.now()}`;
    const refused = await startSmall({ 'idempotency-key': key });
    assertEnvelope(refused, 429, 'resource_limit', 'over the cap');
    assert.equal(refused.headers.get('retry-after'), '1');
    await t.api('DELETE', `/v1/instances/${five[0].body.id}`);
    const retried = await startSmall({ 'idempotency-key': key });
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    assert.equal(retried.headers.get('idempotent-replayed'), null);
    // From now on the success is what the key replays.
    const replay = await startSmall({ 'idempotency-key': key });
    assert.equal(replay.status, 201);
    assert.equal(replay.body.id, retried.body.id);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    for (const id of [...five.slice(1).map((r) => r.body.id), retried.body.id]) await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('force-deleting a snapshot while instances start from it leaves none of them live', async () => {
    const snap = await t.api('POST', `/v1/instances/${instId}/snapshot`, {});
    assert.equal(snap.status, 201);
    const sid = snap.body.id;
    const startOne = () => t.api('POST', '/v1/instances?wait=false', { snapshotId: sid, resources: { memory: 256 } });
    // Restores in flight when the delete arrives, and starts that arrive while it runs.
    const early = await Promise.all([0, 1, 2].map(startOne));
    assert.deepEqual(early.map((r) => r.status), [201, 201, 201]);
    const deletion = t.api('DELETE', `/v1/snapshots/${sid}?force=true`);
    const late = await Promise.all([0, 1, 2, 3].map(startOne));
    const del = await deletion;
    assert.equal(del.status, 204, JSON.stringify(del.body));
    for (const r of late) assert.ok(r.status === 201 || r.status === 404 || r.status === 429, `${r.status} ${JSON.stringify(r.body)}`);
    const late201 = late.filter((r) => r.status === 201).map((r) => r.body.id as string);
    // Whatever was accepted settles; none of it may be live on files that are gone.
    for (const id of [...early.map((r) => r.body.id as string), ...late201]) {
      await t.api('GET', `/v1/instances/${id}/wait?state=stopped&timeout=60000`);
    }
    const list = await t.api('GET', `/v1/instances?snapshotId=${sid}&limit=200`);
    const live = list.body.data.filter((i: { state: string }) => ['pending', 'ready', 'paused', 'stopping'].includes(i.state));
    assert.deepEqual(live.map((i: { id: string; state: string }) => `${i.id}:${i.state}`), []);
    assertEnvelope(await t.api('GET', `/v1/snapshots/${sid}`), 404, 'snapshot_not_found', 'deleted snapshot');
    assertEnvelope(await startOne(), 404, 'snapshot_not_found', 'start after the delete');
  });
});
