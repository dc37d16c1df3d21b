// The whole lifecycle against a real engine and real gVisor sandboxes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readSse, startEngine, type TestEngine } from './harness.js';

describe('lifecycle', () => {
  let t: TestEngine;
  let snapId: string;

  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('lists and gets images, including the default debootstrap image', async () => {
    const list = await t.api('GET', '/v1/images');
    assert.equal(list.status, 200);
    const img = list.body.data.find((i: any) => i.name === 'debian-bookworm');
    assert.ok(img, 'the default image is registered');
    const got = await t.api('GET', `/v1/images/${img.id}`);
    assert.equal(got.body.digest, img.digest);
    const md = await t.api('PUT', `/v1/images/${img.id}/metadata`, { team: 'core' });
    assert.deepEqual(md.body.metadata, { team: 'core' });
  });

  it('creates a snapshot from the default image (boot, agent ready, checkpoint)', async () => {
    const res = await t.api('POST', '/v1/snapshots', { vcpus: 1, memory: 512, diskSize: 1024, environment: { GREETING: 'hello' }, metadata: { suite: 'lifecycle' } });
    assert.equal(res.status, 201);
    assert.match(res.body.id, /^snap_/);
    assert.equal(res.body.parentId, null);
    assert.match(res.body.checksum, /^sha256:[0-9a-f]{64}$/);
    assert.ok(res.body.size > 0);
    assert.deepEqual(res.body.resources, { vcpus: 1, memory: 512, diskSize: 1024, maxProcesses: null, networkBandwidth: null });
    snapId = res.body.id;
    const got = await t.api('GET', `/v1/snapshots/${snapId}`);
    assert.equal(got.body.checksum, res.body.checksum);
  });

  it('lists snapshots with metadata and digest filters and cursor pagination', async () => {
    const extra = await t.api('POST', '/v1/snapshots', { metadata: { suite: 'lifecycle', n: '2' } });
    const third = await t.api('POST', '/v1/snapshots', { metadata: { suite: 'other' } });
    const bySuite = await t.api('GET', '/v1/snapshots?metadata[suite]=lifecycle');
    assert.deepEqual(new Set(bySuite.body.data.map((s: any) => s.id)), new Set([snapId, extra.body.id]));
    const byDigest = await t.api('GET', `/v1/snapshots?digest=${encodeURIComponent(third.body.digest)}`);
    assert.ok(byDigest.body.data.every((s: any) => s.digest === third.body.digest));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await t.api('GET', `/v1/snapshots?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      assert.ok(page.body.data.length <= 1);
      seen.push(...page.body.data.map((s: any) => s.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.equal(new Set(seen).size, 3);
    const md = await t.api('PUT', `/v1/snapshots/${third.body.id}/metadata`, { suite: 'renamed' });
    assert.deepEqual(md.body.metadata, { suite: 'renamed' });
    assert.equal((await t.api('DELETE', `/v1/snapshots/${third.body.id}`)).status, 204);
    assert.equal((await t.api('GET', `/v1/snapshots/${third.body.id}`)).status, 404);
  });

  it('starts an instance by restoring, runs commands, and reports metrics', async () => {
    const start = await t.api('POST', '/v1/instances', { snapshotId: snapId, metadata: { role: 'main' } });
    assert.equal(start.status, 201);
    const id = start.body.id;
    assert.equal(start.body.state, 'ready');
    // In the engine's subnet (the harness takes FAAS_TEST_SUBNET, default 10.210.0.0/16).
    assert.ok(start.body.network.ip.startsWith(t.config.subnet.split('.').slice(0, 2).join('.') + '.'), start.body.network.ip);

    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'echo "$GREETING from $(hostname)"; echo oops >&2; exit 3' });
    assert.equal(r.status, 200);
    assert.equal(r.body.exitCode, 3);
    assert.equal(r.body.stdout, `hello from ${id.replace('_', '-')}\n`);
    assert.equal(r.body.stderr, 'oops\n');
    assert.equal(typeof r.body.duration, 'number');

    const argv = await t.api('POST', `/v1/instances/${id}/exec`, { argv: ['python3', '-c', 'import sys; print(sys.stdin.read().upper())'], stdin: 'abc', cwd: '/tmp' });
    assert.equal(argv.body.stdout, 'ABC\n');

    const timed = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'sleep 5', timeout: 300 });
    assert.equal(timed.body.timedOut, true);

    const batch = await t.api('POST', `/v1/instances/${id}/exec/batch`, { commands: ['echo a', { command: 'pwd', cwd: '/etc' }, 'false', 'echo never'], stopOnError: true });
    assert.deepEqual(batch.body.results.map((x: any) => x.exitCode), [0, 0, 1]);
    assert.equal(batch.body.results[1].stdout, '/etc\n');

    const script = await t.api('POST', `/v1/instances/${id}/exec/script`, { script: 'set -e\nx=$1\necho "arg=$x"\n', args: ['42'] });
    assert.equal(script.body.stdout, 'arg=42\n');
    const py = await t.api('POST', `/v1/instances/${id}/exec/script`, { script: 'print(6*7)', interpreter: 'python3' });
    assert.equal(py.body.stdout, '42\n');

    const m = await t.api('GET', `/v1/instances/${id}/metrics`);
    assert.equal(m.status, 200);
    assert.ok(m.body.memory.usageBytes > 0, 'memory usage from the cgroup');
    assert.equal(m.body.memory.limitBytes, 512 * 1024 * 1024);
    assert.ok(m.body.processes.count >= 1);

    const list = await t.api('GET', '/v1/instances?state=ready&metadata[role]=main');
    assert.deepEqual(list.body.data.map((i: any) => i.id), [id]);
  });

  it('streams exec output as server-sent events', async () => {
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
    const res = await fetch(`${t.url}/v1/instances/${id}/exec/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'for i in 1 2 3; do echo line$i; sleep 0.05; done; echo err >&2; exit 7' }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = await readSse(res);
    assert.equal(events[0].event, 'start');
    const out = events.filter((e) => e.event === 'stdout').map((e) => e.data.data).join('');
    assert.equal(out, 'line1\nline2\nline3\n');
    assert.equal(events.filter((e) => e.event === 'stderr').map((e) => e.data.data).join(''), 'err\n');
    const exit = events[events.length - 1];
    assert.equal(exit.event, 'exit');
    assert.equal(exit.data.exitCode, 7);
    await t.api('POST', `/v1/instances/${id}/stop`);
  });

  it('kills a streamed command when the client disconnects', async () => {
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
    const ac = new AbortController();
    const res = await fetch(`${t.url}/v1/instances/${id}/exec/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo started; exec sleep 300' }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      const ps = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'pgrep -x sleep || true' });
      gone = ps.body.stdout.trim() === '';
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(gone, 'the sleep was killed after the client went away');
    await t.api('POST', `/v1/instances/${id}/stop`);
  });

  it('pauses, resumes, restarts, waits, snapshots and stops an instance', async () => {
    const id = (await t.api('POST', '/v1/instances?wait=false', { snapshotId: snapId })).body.id;
    const waited = await t.api('GET', `/v1/instances/${id}/wait?state=ready&timeout=30000`);
    assert.equal(waited.body.state, 'ready');

    await t.api('POST', `/v1/instances/${id}/exec`, { command: 'echo before > /root/f' });
    assert.equal((await t.api('POST', `/v1/instances/${id}/pause`)).body.state, 'paused');
    const blocked = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'true' });
    assert.equal(blocked.status, 409);
    assert.equal(blocked.body.error.code, 'instance_not_ready');
    assert.equal((await t.api('POST', `/v1/instances/${id}/resume`)).body.state, 'ready');
    assert.equal((await t.api('POST', `/v1/instances/${id}/exec`, { command: 'cat /root/f' })).body.stdout, 'before\n');

    const snap = await t.api('POST', `/v1/instances/${id}/snapshot`, { name: 'after-f', metadata: { k: 'v' } });
    assert.equal(snap.status, 201);
    assert.equal(snap.body.parentId, snapId);
    assert.equal(snap.body.instanceId, id);
    assert.equal((await t.api('POST', `/v1/instances/${id}/exec`, { command: 'echo still-running' })).body.stdout, 'still-running\n');

    // Restart restores the instance's own snapshot: files written since are gone.
    const restarted = await t.api('POST', `/v1/instances/${id}/restart`);
    assert.equal(restarted.body.state, 'ready');
    assert.equal((await t.api('POST', `/v1/instances/${id}/exec`, { command: 'test -e /root/f; echo $?' })).body.stdout, '1\n');

    const fromSnap = await t.api('POST', '/v1/instances', { snapshotId: snap.body.id });
    assert.equal((await t.api('POST', `/v1/instances/${fromSnap.body.id}/exec`, { command: 'cat /root/f' })).body.stdout, 'before\n');

    const stopped = await t.api('POST', `/v1/instances/${id}/stop`);
    assert.equal(stopped.body.state, 'stopped');
    assert.ok(stopped.body.stoppedAt);
    assert.equal((await t.api('POST', `/v1/instances/${id}/stop`)).body.state, 'stopped', 'stop is idempotent');
    assert.equal((await t.api('DELETE', `/v1/instances/${fromSnap.body.id}`)).status, 204);
    assert.equal((await t.api('GET', `/v1/instances/${fromSnap.body.id}`)).status, 404);
  });

  it('exec with snapshot returns the snapshot taken after the command', async () => {
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'echo v1 > /root/version', snapshot: true });
    assert.equal(r.body.exitCode, 0);
    assert.match(r.body.snapshotId, /^snap_/);
    const child = await t.api('POST', '/v1/instances', { snapshotId: r.body.snapshotId });
    assert.equal((await t.api('POST', `/v1/instances/${child.body.id}/exec`, { command: 'cat /root/version' })).body.stdout, 'v1\n');
    await t.api('POST', `/v1/instances/${child.body.id}/stop`);
    await t.api('POST', `/v1/instances/${id}/stop`);
  });

  it('chains steps on snapshots and caches a repeated step by digest', async () => {
    const s1 = await t.api('POST', `/v1/snapshots/${snapId}/exec`, { command: 'echo one > /root/chain' });
    assert.equal(s1.status, 201);
    assert.equal(s1.body.parentId, snapId);
    const s2 = await t.api('POST', `/v1/snapshots/${s1.body.id}/exec`, { command: 'echo two >> /root/chain' });
    assert.equal(s2.status, 201);
    const again = await t.api('POST', `/v1/snapshots/${snapId}/exec`, { command: 'echo one > /root/chain' });
    assert.equal(again.status, 200, 'the same step on the same parent is served from the cache');
    assert.equal(again.body.id, s1.body.id);
    const fail = await t.api('POST', `/v1/snapshots/${snapId}/exec`, { command: 'echo nope >&2; exit 4' });
    assert.equal(fail.status, 422);
    assert.equal(fail.body.error.code, 'exec_failed');
    assert.equal(fail.body.error.details.exitCode, 4);
    const inst = await t.api('POST', '/v1/instances', { snapshotId: s2.body.id });
    assert.equal((await t.api('POST', `/v1/instances/${inst.body.id}/exec`, { command: 'cat /root/chain' })).body.stdout, 'one\ntwo\n');
    await t.api('POST', `/v1/instances/${inst.body.id}/stop`);
  });

  it('serves a cached step only as a child of the very parent asked for', async () => {
    // Two roots made from the same recipe share a digest; their steps must not be confused.
    const a = (await t.api('POST', '/v1/snapshots', { metadata: { root: 'a' } })).body;
    const b = (await t.api('POST', '/v1/snapshots', { metadata: { root: 'b' } })).body;
    const stepA = await t.api('POST', `/v1/snapshots/${a.id}/exec`, { command: 'echo same > /root/s' });
    const stepB = await t.api('POST', `/v1/snapshots/${b.id}/exec`, { command: 'echo same > /root/s' });
    assert.equal(stepA.body.parentId, a.id);
    assert.equal(stepB.status, 201);
    assert.equal(stepB.body.parentId, b.id);
    assert.equal(stepB.body.digest, stepA.body.digest, 'equal recipes, equal digests');

    // Force-deleting a root deletes its subtree and stops the instances that depend on it.
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: stepA.body.id })).body;
    assert.equal((await t.api('DELETE', `/v1/snapshots/${a.id}`)).status, 409);
    assert.equal((await t.api('DELETE', `/v1/snapshots/${a.id}?force=true`)).status, 204);
    assert.equal((await t.api('GET', `/v1/snapshots/${stepA.body.id}`)).status, 404, 'the child went with it');
    assert.equal((await t.api('GET', `/v1/instances/${inst.id}`)).body.state, 'stopped');
    assert.equal((await t.api('GET', `/v1/snapshots/${stepB.body.id}`)).status, 200, 'the other chain is untouched');
    await t.api('DELETE', `/v1/snapshots/${b.id}?force=true`);
  });

  it('serves the contract and its rendered docs', async () => {
    const spec = await t.api('GET', '/v1/openapi.json');
    assert.equal(spec.body.openapi, '3.1.0');
    const docs = await fetch(`${t.url}/docs`, { headers: { authorization: `Basic ${Buffer.from(`x:${t.key}`).toString('base64')}` } });
    assert.equal(docs.status, 200);
    // Redoc from the engine's own files, started by a script file (no inline script under the CSP).
    assert.match(await docs.text(), /<script src="\/docs\/redoc\.standalone\.js"><\/script>/);
    const redoc = await fetch(`${t.url}/docs/redoc.standalone.js`, { headers: { authorization: `Basic ${Buffer.from(`x:${t.key}`).toString('base64')}` } });
    assert.equal(redoc.status, 200);
    assert.match(await redoc.text(), /Redoc/);
    const health = await fetch(`${t.url}/v1/health`);
    assert.equal(health.status, 200);
  });
});
