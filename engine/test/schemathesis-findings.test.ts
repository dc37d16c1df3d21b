// Regression tests for what schemathesis (tests/schemathesis/run.py) found in the engine; each one
// failed before its fix. See docs/security/schemathesis.md.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

describe('schemathesis findings', () => {
  let t: TestEngine;
  const auth = () => ({ authorization: `Bearer ${t.key}` });
  /** node:http, because fetch refuses methods such as TRACE. */
  const send = (method: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((ok, fail) => {
      const req = request(t.url + path, { method, headers }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : null }));
      });
      req.on('error', fail);
      req.end();
    });

  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('a known path asked with a method it does not have is 405 with Allow, in the envelope', async () => {
    for (const [method, path, allow] of [
      ['DELETE', '/v1/instances', 'GET, HEAD, POST'],
      ['TRACE', '/v1/health', 'GET, HEAD'],
      ['PATCH', '/v1/snapshots/snap_abc/pool', 'GET, HEAD, PUT'],
      ['GET', '/v1/instances/inst_abc/exec', 'POST'],
      // Before its body is parsed: QUERY without Content-Type was a body-parser 400.
      ['QUERY', '/v1/metrics', 'GET, HEAD'],
      // A literal path item is not the templated one it also matches (/v1/images/{id}).
      ['GET', '/v1/images/import', 'POST'],
      ['OPTIONS', '/v1/images/import', 'POST'],
      // A path with a public operation (the login) answers a method it lacks with 405 before auth.
      ['TRACE', '/v1/session', 'GET, HEAD, POST, DELETE'],
    ] as const) {
      const res = await send(method, path, auth());
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.allow, allow, `${method} ${path}`);
      assert.equal(res.body.error.code, 'method_not_allowed');
      assert.deepEqual(res.body.error.details.allow, allow.split(', '));
      assert.equal(res.body.error.requestId, res.headers['x-request-id']);
    }
    // An unknown path stays 404, and without a key a protected path is still 401 first.
    assert.equal((await send('DELETE', '/v1/nothing', auth())).status, 404);
    assert.equal((await send('DELETE', '/v1/instances')).status, 401);
    assert.equal((await send('TRACE', '/v1/session')).status, 405);
    assert.equal((await send('DELETE', '/v1/session')).status, 401);
  });

  it('a metadata filter key is everything inside the brackets: empty or holding `]`, never dropped', async () => {
    // `metadata[]` did not match the key pattern and fell through as an unknown parameter, so a
    // repeated `metadata[]` (an array, which the schema refuses) was answered 200 with no filter.
    const repeated = await send('GET', '/v1/images?metadata%5B%5D=true&metadata%5B%5D=false', auth());
    assert.equal(repeated.status, 400, JSON.stringify(repeated.body));
    assert.equal(repeated.body.error.code, 'invalid_request');
    // One `metadata[]` is a filter on the empty key (matches nothing here), not "no filter".
    const empty = await send('GET', '/v1/images?metadata%5B%5D=x', auth());
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.data, []);
    const all = await send('GET', '/v1/images', auth());
    assert.ok(all.body.data.length > 0, 'the unfiltered list is not empty, so the empty one was filtered');
    // Names Object.prototype has are keys like any other: a filter on `constructor` or `toString`
    // was "already there" (400: must be string) and `__proto__` replaced the object's prototype.
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const r = await send('GET', `/v1/images?metadata%5B${key}%5D=x&metadata%5Bteam%5D=y`, auth());
      assert.equal(r.status, 200, `${key}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body.data, [], key);
    }
    // A nested filter (`metadata[a][b]=v`, an object for key a) is refused, not read as key "a][b".
    assert.equal((await send('GET', '/v1/images?metadata%5B__proto__%5D%5Bb%5D=1', auth())).status, 400);
    assert.equal((await send('GET', '/v1/images?metadata%5Ba%5D%5Bb%5D=1', auth())).status, 400);
    // One parameter in two shapes (`metadata=x&metadata[a]=b`) is refused, not a 500.
    assert.equal((await send('GET', '/v1/images?metadata=x&metadata%5Ba%5D=b', auth())).status, 400);
    assert.equal((await send('GET', '/v1/images?metadata%5Ba%5D=b&metadata=x', auth())).status, 400);
  });

  it('Last-Event-ID that is not a sequence number is 400, not a silent "from now on"', async () => {
    const res = await fetch(`${t.url}/v1/events`, { headers: { ...auth(), 'last-event-id': 'E' } });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.code, 'invalid_request');
    assert.equal(body.error.details.field, 'Last-Event-ID');
    // A number still resumes (the stream opens).
    const abort = new AbortController();
    const ok = await fetch(`${t.url}/v1/events`, { headers: { ...auth(), 'last-event-id': '0' }, signal: abort.signal });
    assert.equal(ok.status, 200);
    abort.abort();
  });

  it('any cursor of the documented form is a position (200); anything else is a schema 400', async () => {
    for (const kind of ['snapshots', 'instances', 'images']) {
      const page = await t.api('GET', `/v1/${kind}?cursor=2000-01-01T00:00:00.000Z~inst_0`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.deepEqual(page.body.data, []);
      const far = await t.api('GET', `/v1/${kind}?cursor=9999-12-31T23:59:59.999Z~zzz_zzz`);
      assert.equal(far.status, 200);
      const bad = await t.api('GET', `/v1/${kind}?cursor=0`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_request');
    }
  });

  it('a reused Idempotency-Key on PUT /v1/snapshots/{id}/pool is a documented 409', async () => {
    const headers = { 'idempotency-key': 'pool-key' };
    // The snapshot does not exist: the first answer (404) is stored, the second body conflicts.
    const first = await t.api('PUT', '/v1/snapshots/snap_nothere/pool', { minInstances: 0 }, { headers });
    assert.equal(first.status, 404);
    const second = await t.api('PUT', '/v1/snapshots/snap_nothere/pool', { minInstances: 1 }, { headers });
    assert.equal(second.status, 409); // the harness checks it against the spec: 409 must be listed
    assert.equal(second.body.error.details.reason, 'body_mismatch');
  });

  it('a metadata key __proto__ is refused with a message that says so (it is valid JSON)', async () => {
    const res = await t.api('PUT', '/v1/snapshots/snap_nothere/metadata', '{"team":"a","__proto__":"x"}');
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.match(res.body.error.message, /__proto__/);
  });

  it('metadata filters take any key: a backslash or a quote in it is no 500, a NUL a clear 400', async () => {
    // NUL is refused in every string of a request but stdin data (the spec's rule; boundary.ts).
    const nul = await t.api('GET', `/v1/images?metadata%5B${encodeURIComponent('n\u0000ul')}%5D=v`);
    assert.equal(nul.status, 400, JSON.stringify(nul.body));
    assert.match(nul.body.error.message, /NUL/);
    for (const key of ['a\\b', 'x"y', 'plain']) {
      const res = await t.api('GET', `/v1/images?metadata%5B${encodeURIComponent(key)}%5D=v`);
      assert.equal(res.status, 200, `${JSON.stringify(key)}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body.data, []);
    }
  });

  it('a metadata filter key given twice is refused, not reduced to its last value', async () => {
    const res = await t.api('GET', '/v1/images?metadata%5Bteam%5D=a&metadata%5Bteam%5D=b');
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal((await t.api('GET', '/v1/images?metadata%5Bteam%5D=a')).status, 200);
  });

  it('a pid beyond Linux\'s limit is refused by the schema', async () => {
    const res = await t.api('GET', '/v1/instances/inst_nothere/processes/311510404452326214811516928');
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal((await t.api('GET', '/v1/instances/inst_nothere/processes/4194304')).status, 404);
  });

  it('a signal name Linux does not have is refused by the schema, before the instance is looked up', async () => {
    const res = await t.api('POST', '/v1/instances/inst_nothere/processes/1/signal', { signal: 'SIGNOPE' });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal((await t.api('POST', '/v1/instances/inst_nothere/processes/1/signal', { signal: 'SIGTERM' })).status, 404);
    assert.equal((await t.api('POST', '/v1/instances/inst_nothere/processes/1/signal', { signal: 9 })).status, 404);
  });

  it('an environment variable name the agent cannot use is refused by the schema', async () => {
    for (const name of ['', 'A=B']) {
      const res = await t.api('POST', '/v1/instances/inst_nothere/exec', { command: 'true', env: { [name]: 'x' } });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_request');
    }
  });

  it('a wait that reaches the caller\'s timeout is 409 timeout (not a 5xx that clients retry); argv [""] exits 127', async () => {
    const snap = await t.api('POST', '/v1/snapshots', {});
    assert.equal(snap.status, 201, JSON.stringify(snap.body));
    const inst = await t.api('POST', '/v1/instances', { snapshotId: snap.body.id });
    assert.equal(inst.status, 201, JSON.stringify(inst.body));
    const id = inst.body.id;
    const wait = await t.api('GET', `/v1/instances/${id}/wait?state=stopped&timeout=50`);
    assert.equal(wait.status, 409, JSON.stringify(wait.body));
    assert.equal(wait.body.error.code, 'timeout');
    assert.equal(wait.body.error.details.state, 'ready');
    const proc = await t.api('POST', `/v1/instances/${id}/processes`, { command: 'sleep 30' });
    const pwait = await t.api('POST', `/v1/instances/${id}/processes/${proc.body.pid}/wait?timeout=50`);
    assert.equal(pwait.status, 409, JSON.stringify(pwait.body));
    assert.equal(pwait.body.error.code, 'timeout');
    assert.equal(pwait.body.error.details.state, 'running');
    // The spec allows an empty program name; it is a program that cannot be started, not a 400.
    const empty = await t.api('POST', `/v1/instances/${id}/exec`, { argv: [''] });
    assert.equal(empty.status, 200, JSON.stringify(empty.body));
    assert.equal(empty.body.exitCode, 127);
    assert.equal((await t.api('DELETE', `/v1/instances/${id}`)).status, 204);
  });
});
