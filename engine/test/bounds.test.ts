// Bounds on what one client can make the engine hold (in-process engine, real sandboxes): the
// one-shot output cap and its batch budget, concurrency limits per instance and per API key with
// 429 + Retry-After, JSON size and nesting limits, and no listener left on a keep-alive socket per
// request. The memory these bounds buy is measured on a child engine in abuse.test.ts.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Client } from 'undici';
import { readSse, startEngine, type ApiResponse, type TestEngine } from './harness.js';

describe('bounds', () => {
  let t: TestEngine;
  let a: string;
  let b: string;
  const sockets: Socket[] = [];

  before(async () => {
    t = await startEngine({ env: { FAAS_EXEC_OUTPUT_MAX: '1000', FAAS_INSTANCE_CONCURRENCY: '3', FAAS_CREDENTIAL_CONCURRENCY: '4' } });
    t.engine.app.server.on('connection', (s: Socket) => sockets.push(s));
    const snap = (await t.api('POST', '/v1/snapshots', {})).body.id;
    a = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
    b = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  const busy = (r: ApiResponse) => {
    assert.equal(r.status, 429, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'resource_limit');
    assert.equal(r.body.error.details.reason, 'too_many_requests');
    assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'a 429 says when to retry');
  };

  it('caps one-shot output, says so, names the stream route, and the stream has it all', async () => {
    const r = await t.api('POST', `/v1/instances/${a}/exec`, { command: "head -c 5000 /dev/zero | tr '\\0' x; echo done >&2" });
    assert.equal(r.status, 200);
    assert.equal(r.body.truncated, true);
    assert.equal(r.body.stdout, 'x'.repeat(1000));
    assert.equal(r.body.stderr, 'done\n', 'the command ran to its end');
    assert.equal(r.body.exitCode, 0);
    const small = await t.api('POST', `/v1/instances/${a}/exec`, { command: "printf '\\001ok\\377'" });
    assert.equal(small.body.truncated, false);
    assert.equal(small.body.stdout, '\u0001ok\uFFFD', 'control bytes kept, invalid UTF-8 replaced');
    const res = await fetch(`${t.url}/v1/instances/${a}/exec/stream`, {
      method: 'POST', headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: "head -c 5000 /dev/zero | tr '\\0' x" }),
    });
    // Results are written as a stream; with an Idempotency-Key a repeat replays the same body.
    const keyed = () => t.api('POST', `/v1/instances/${a}/exec`, { command: "head -c 3000 /dev/zero | tr '\\0' '\\1'; date +%N" }, { headers: { 'idempotency-key': `bounds-${process.pid}` } });
    const first = await keyed();
    const again = await keyed();
    assert.equal(first.body.stdout, '\u0001'.repeat(1000));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
    const streamed = (await readSse(res)).filter((e) => e.event === 'stdout').map((e) => e.data.data).join('');
    assert.equal(streamed.length, 5000, 'execStream is not capped');
  });

  it('holds a batch to one output budget', async () => {
    const r = await t.api('POST', `/v1/instances/${a}/exec/batch`, {
      commands: ["head -c 600 /dev/zero | tr '\\0' a", "head -c 600 /dev/zero | tr '\\0' b", 'echo after'],
    });
    const [one, two, three] = r.body.results;
    assert.equal(one.stdout.length, 600);
    assert.equal(one.truncated, false);
    assert.equal(two.stdout, 'b'.repeat(400), 'the second gets what is left of 1000');
    assert.equal(two.truncated, true);
    assert.equal(three.stdout, '');
    assert.equal(three.truncated, true, 'the budget is spent, and the result says so');
    assert.equal(three.exitCode, 0, 'the command still ran');
  });

  it('answers 429 + Retry-After beyond the per-instance and the per-key limit', async () => {
    const sleep = (id: string) => t.api('POST', `/v1/instances/${id}/exec`, { command: 'sleep 2' });
    // 5 at once on one instance with a limit of 3.
    const one = await Promise.all(Array.from({ length: 5 }, () => sleep(a)));
    assert.equal(one.filter((r) => r.status === 200).length, 3);
    for (const r of one.filter((r) => r.status !== 200)) {
      busy(r);
      assert.equal(r.body.error.details.scope, 'instance');
      assert.match(r.body.error.message, /exec\/stream/, 'the message names the streaming route');
    }
    // 3 + 2 on two instances: the key's limit of 4 is reached first.
    const both = await Promise.all([a, a, a, b, b].map(sleep));
    assert.equal(both.filter((r) => r.status === 200).length, 4);
    const refused = both.filter((r) => r.status !== 200);
    refused.forEach(busy);
    assert.ok(refused.some((r) => r.body.error.details.scope === 'credential'), JSON.stringify(refused.map((r) => r.body.error.details)));
    // Files count too: with four sleeps holding the key's slots, a stat is refused. (Sent once the
    // sleeps hold their slots; a fast stat sent beside them could finish before the last arrives.)
    const held = [a, a, a, b].map((id) => t.api('POST', `/v1/instances/${id}/exec`, { command: 'sleep 5' }));
    const probe = async () => (await t.api('POST', `/v1/instances/${b}/exec`, { command: 'true' })).status;
    for (let i = 0; i < 40 && (await probe()) !== 429; i++) await new Promise((r) => setTimeout(r, 100));
    const stat = await t.api('GET', `/v1/instances/${b}/files/stat?path=/`);
    busy(stat);
    assert.equal(stat.body.error.details.scope, 'credential');
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
    // The slots come back.
    assert.equal((await t.api('POST', `/v1/instances/${b}/exec`, { command: 'true' })).status, 200);
    // A wait holds no slot.
    const p = (await t.api('POST', `/v1/instances/${a}/processes`, { command: 'sleep 2' })).body.pid;
    const waits = Promise.all([1, 2, 3, 4].map(() => t.api('POST', `/v1/instances/${a}/processes/${p}/wait`)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await t.api('POST', `/v1/instances/${a}/exec`, { command: 'true' })).status, 200);
    for (const w of await waits) assert.equal(w.body.state, 'exited');
  });

  it('kills a one-shot command whose client went away', async () => {
    const abort = new AbortController();
    const gone = fetch(`${t.url}/v1/instances/${b}/exec`, {
      method: 'POST', signal: abort.signal, headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'sleep 37' }),
    }).catch(() => 'aborted');
    const running = async () => (await t.api('POST', `/v1/instances/${b}/exec`, { command: 'pgrep -x sleep || true' })).body.stdout.trim();
    while (!(await running())) await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    assert.equal(await gone, 'aborted');
    let left = await running();
    for (let i = 0; i < 100 && left; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = await running();
    }
    assert.equal(left, '', 'the command was killed when its client left, not left running (and holding nothing)');
  });

  it('refuses large and deeply nested JSON with the envelope; exec keeps its large limit', async () => {
    const big = await t.api('PUT', `/v1/instances/${a}/metadata`, { x: 'y'.repeat(2 << 20) });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');
    assert.equal(big.body.error.details.limit, 1 << 20);
    const nested = await t.api('POST', `/v1/instances/${a}/exec`, `{"command":"true","env":${'['.repeat(40)}${']'.repeat(40)}}`);
    assert.equal(nested.status, 400);
    assert.equal(nested.body.error.code, 'invalid_request');
    assert.equal(nested.body.error.details.reason, 'too_deep');
    // Brackets inside strings are text, not nesting.
    const text = await t.api('POST', `/v1/instances/${a}/exec`, { argv: ['printf', '%s', '['.repeat(100) + '\\"{'] });
    assert.equal(text.body.stdout, '['.repeat(100) + '\\"{');
    const stdin = await t.api('POST', `/v1/instances/${a}/exec`, { command: 'wc -c', stdin: 'z'.repeat(4 << 20) });
    assert.equal(stdin.body.stdout.trim(), String(4 << 20), 'exec stdin inside JSON may exceed the 1 MiB JSON limit');
  });

  it('leaves no listener on a keep-alive socket per files or wait request', async () => {
    await t.api('PUT', `/v1/instances/${a}/files/write?path=/root/k.txt`, undefined, { headers: { 'content-type': 'application/octet-stream' }, raw: Buffer.from('k') });
    const p = (await t.api('POST', `/v1/instances/${a}/processes`, { command: 'true' })).body.pid;
    await t.api('POST', `/v1/instances/${a}/processes/${p}/wait`);
    const client = new Client(t.url, { pipelining: 1 });
    const seen = sockets.length;
    const auth = { authorization: `Bearer ${t.key}` };
    const round = async () => {
      const read = await client.request({ method: 'GET', path: `/v1/instances/${a}/files/read?path=/root/k.txt`, headers: auth });
      assert.equal(await read.body.text(), 'k');
      const tar = await client.request({ method: 'GET', path: `/v1/instances/${a}/files/tar?path=/root/k.txt`, headers: auth });
      await tar.body.arrayBuffer();
      const wait = await client.request({ method: 'POST', path: `/v1/instances/${a}/processes/${p}/wait`, headers: auth });
      assert.equal(((await wait.body.json()) as any).state, 'exited');
    };
    await round();
    assert.equal(sockets.length, seen + 1, 'one keep-alive connection');
    const socket = sockets.at(-1)!;
    const before = socket.listenerCount('close');
    for (let i = 0; i < 100; i++) await round();
    assert.equal(sockets.length, seen + 1, 'still the same connection');
    assert.equal(socket.listenerCount('close'), before, `300 requests left ${socket.listenerCount('close') - before} close listeners on the socket`);
    await client.close();
  });
});
