// The step cache (docs/step-cache.md) against real sandboxes: identical creates and steps are
// answered from the cache (same id, `cached: true`, the recorded result), anything that changes the
// content is a miss, `fresh` always runs, a deleted snapshot is never answered, concurrent
// identical creates share one boot, another API key never gets someone else's snapshot, and a
// streamed step's output arrives while the step still runs (shown by order, not by time: the step
// waits for a file the test writes only after it has seen the first chunk).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

interface SseEvent {
  event: string;
  data: any;
}

/** Reads a text/event-stream response event by event. */
async function* events(res: Response): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) };
    }
  }
}

describe('step cache', () => {
  let t: TestEngine;
  let root: any;
  let other: { id: string; secret: string };
  const as = (secret: string) => ({ headers: { authorization: `Bearer ${secret}` } });
  const step = (id: string, body: object, query = '') => t.api('POST', `/v1/snapshots/${id}/exec${query}`, body);
  const upload = (id: string, query: string, raw: Buffer, type = 'application/octet-stream', secret?: string) =>
    t.api('POST', `/v1/snapshots/${id}/upload?${query}`, undefined, { raw, headers: { 'content-type': type, ...(secret ? as(secret).headers : {}) } });
  const stream = (id: string, body: object, secret = t.key) =>
    fetch(`${t.url}/v1/snapshots/${id}/exec/stream`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const read = async (snapshotId: string, command: string) => {
    const inst = (await t.api('POST', '/v1/instances', { snapshotId })).body;
    try {
      return (await t.api('POST', `/v1/instances/${inst.id}/exec`, { command })).body.stdout;
    } finally {
      await t.api('DELETE', `/v1/instances/${inst.id}`);
    }
  };

  before(async () => {
    t = await startEngine();
    other = (await t.api('POST', '/v1/keys', { name: 'other-tenant' })).body;
  });
  after(async () => {
    await t?.close();
  });

  it('answers an identical create with the same root; fresh, other resources and other metadata boot anew', async () => {
    const first = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' } });
    assert.equal(first.status, 201);
    assert.equal(first.body.cached, false);
    root = first.body;
    const again = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' } });
    assert.equal(again.status, 200);
    assert.equal(again.body.cached, true);
    assert.equal(again.body.id, root.id);

    const fresh = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' }, fresh: true });
    assert.equal(fresh.status, 201);
    assert.notEqual(fresh.body.id, root.id);
    assert.equal(fresh.body.digest, root.digest, 'the same content, the same digest');

    const bigger = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' }, memory: 256 });
    assert.equal(bigger.status, 201);
    assert.notEqual(bigger.body.digest, root.digest, 'resources are content');

    const tagged = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' }, metadata: { team: 'x' } });
    assert.equal(tagged.status, 201, 'a hit never answers with metadata the caller did not ask for');
    assert.equal(tagged.body.digest, root.digest, 'metadata is not content');
    assert.deepEqual(tagged.body.metadata, { team: 'x' });
    assert.equal((await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' }, metadata: { team: 'x' } })).body.id, tagged.body.id);

    for (const s of [fresh.body, bigger.body, tagged.body]) assert.equal((await t.api('DELETE', `/v1/snapshots/${s.id}`)).status, 204);
  });

  it('shares one boot between concurrent identical creates', async () => {
    const config = { environment: { RUN: `concurrent-${process.pid}` } };
    const answers = await Promise.all([1, 2, 3].map(() => t.api('POST', '/v1/snapshots', config)));
    assert.deepEqual(new Set(answers.map((a) => a.body.id)).size, 1);
    assert.equal(answers.filter((a) => a.status === 201).length, 1, 'one boot, two joined it');
    const same = await t.api('GET', `/v1/snapshots?digest=${encodeURIComponent(answers[0].body.digest)}`);
    assert.equal(same.body.data.length, 1, 'exactly one snapshot was made');
    await t.api('DELETE', `/v1/snapshots/${answers[0].body.id}`);
  });

  it('never returns a deleted root', async () => {
    const config = { environment: { RUN: `deleted-${process.pid}` } };
    const made = (await t.api('POST', '/v1/snapshots', config)).body;
    assert.equal((await t.api('DELETE', `/v1/snapshots/${made.id}`)).status, 204);
    const again = await t.api('POST', '/v1/snapshots', config);
    assert.equal(again.status, 201);
    assert.notEqual(again.body.id, made.id);
    await t.api('DELETE', `/v1/snapshots/${again.body.id}`);
  });

  it('caches exec steps by command, env, cwd, user and stdin, not by timeout, and replays the recorded result', async () => {
    const cmd = { command: 'echo "$(id -un) $(pwd) ${X:-none}"; cat; if [ "$(id -u)" = 0 ]; then cat /proc/sys/kernel/random/uuid > /root/made; fi' };
    const first = await step(root.id, cmd);
    assert.equal(first.status, 201);
    assert.equal(first.body.cached, false);
    assert.equal(first.body.parentId, root.id);
    assert.match(first.body.stepResult.stdout, /^root \/root none\n$/);
    const hit = await step(root.id, { ...cmd, timeout: 60_000 });
    assert.equal(hit.status, 200);
    assert.equal(hit.body.cached, true);
    assert.equal(hit.body.id, first.body.id);
    assert.deepEqual(hit.body.stepResult, first.body.stepResult, 'the recorded result of the original run');

    const made = await read(first.body.id, 'cat /root/made');
    for (const variant of [{ env: { X: '1' } }, { cwd: '/tmp' }, { user: 'nobody', cwd: '/tmp' }, { stdin: 'in' }, { command: `${cmd.command} ` }]) {
      const miss = await step(root.id, { ...cmd, ...variant });
      assert.equal(miss.status, 201, JSON.stringify(variant));
      assert.notEqual(miss.body.id, first.body.id);
    }
    const fresh = await step(root.id, cmd, '?fresh=true');
    assert.equal(fresh.status, 201);
    assert.notEqual(fresh.body.id, first.body.id);
    assert.notEqual(await read(fresh.body.id, 'cat /root/made'), made, 'fresh really ran the step again');
  });

  it('does not cache a failing step, and never answers with a deleted child', async () => {
    const failing = { command: 'cat /proc/sys/kernel/random/uuid; exit 3' };
    const a = await step(root.id, failing);
    const b = await step(root.id, failing);
    assert.equal(a.status, 422);
    assert.equal(b.body.error.code, 'exec_failed');
    assert.notEqual(a.body.error.details.stdout, b.body.error.details.stdout, 'the second attempt ran again');

    const child = (await step(root.id, { command: 'echo to-delete' })).body;
    assert.equal((await t.api('DELETE', `/v1/snapshots/${child.id}`)).status, 204);
    const again = await step(root.id, { command: 'echo to-delete' });
    assert.equal(again.status, 201);
    assert.notEqual(again.body.id, child.id);
  });

  it('caches uploads by content, path, mode and format', async () => {
    const first = await upload(root.id, 'path=/root/data.txt', Buffer.from('v1\n'));
    assert.equal(first.status, 201);
    assert.equal(first.body.cached, false);
    const hit = await upload(root.id, 'path=/root/data.txt', Buffer.from('v1\n'));
    assert.equal(hit.status, 200);
    assert.equal(hit.body.id, first.body.id);
    assert.equal(hit.body.cached, true);
    for (const [query, body] of [['path=/root/data.txt', 'v2\n'], ['path=/root/other.txt', 'v1\n'], ['path=/root/data.txt&mode=0600', 'v1\n']]) {
      const miss = await upload(root.id, query, Buffer.from(body));
      assert.equal(miss.status, 201, query);
      assert.notEqual(miss.body.id, first.body.id);
    }
    assert.equal(await read(first.body.id, 'cat /root/data.txt; stat -c %a /root/data.txt'), 'v1\n644\n');
    assert.equal((await upload(root.id, 'path=/root/data.txt&fresh=true', Buffer.from('v1\n'))).status, 201);

    const dir = mkdtempSync('/tmp/faas-test-cache-tar-');
    try {
      writeFileSync(join(dir, 'a.txt'), 'tree\n');
      const tar = execFileSync('tar', ['-C', dir, '-cf', '-', 'a.txt']);
      const tree = await upload(root.id, 'path=/srv/app&format=tar', tar, 'application/x-tar');
      assert.equal(tree.status, 201);
      assert.equal((await upload(root.id, 'path=/srv/app&format=tar', tar, 'application/x-tar')).body.id, tree.body.id);
      assert.equal(await read(tree.body.id, 'cat /srv/app/a.txt'), 'tree\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an upload body of the wrong type with a 400, not a 500', async () => {
    const json = await t.api('POST', `/v1/snapshots/${root.id}/upload?path=/root/x`, {});
    assert.equal(json.status, 400);
    assert.match(json.body.error.message, /application\/octet-stream/);
    // The same held for the instance upload routes before (regression: they answered 500).
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: root.id })).body;
    try {
      for (const [method, path] of [['PUT', `/v1/instances/${inst.id}/files/write?path=/root/x`], ['PUT', `/v1/instances/${inst.id}/files/tar?path=/root`]]) {
        assert.equal((await t.api(method, path, {})).status, 400, path);
      }
    } finally {
      await t.api('DELETE', `/v1/instances/${inst.id}`);
    }
  });

  it('streams a step while it runs, then replays it from the cache', async () => {
    // The step cannot finish before the test has seen its first chunk: it waits for /root/go,
    // which the test writes into the step's sandbox only then.
    const body = { command: 'echo first; while [ ! -e /root/go ]; do sleep 0.05; done; echo second' };
    const res = await stream(root.id, body);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const seen: SseEvent[] = [];
    for await (const ev of events(res)) {
      seen.push(ev);
      if (ev.event === 'stdout' && ev.data.data.includes('first') && !seen.some((e) => e.event === 'go')) {
        const live = (await t.api('GET', '/v1/instances?metadata[faas.step]=exec&state=ready')).body.data;
        assert.equal(live.length, 1, 'the step is still running');
        await t.api('PUT', `/v1/instances/${live[0].id}/files/write?path=/root/go`, undefined, { raw: Buffer.from(''), headers: { 'content-type': 'application/octet-stream' } });
        seen.push({ event: 'go', data: null });
      }
    }
    const names = seen.map((e) => e.event);
    assert.deepEqual(names.slice(0, 2), ['stdout', 'go'], 'output arrived before the step ended');
    assert.equal(names.at(-1), 'snapshot');
    const out = seen.filter((e) => e.event === 'stdout').map((e) => e.data.data).join('');
    assert.equal(out, 'first\nsecond\n');
    const snap = seen.at(-1)!.data;
    assert.equal(snap.cached, false);
    assert.equal(snap.stepResult.stdout, 'first\nsecond\n');

    const replay: SseEvent[] = [];
    for await (const ev of events(await stream(root.id, body))) replay.push(ev);
    assert.deepEqual(replay.map((e) => e.event), ['stdout', 'snapshot']);
    assert.equal(replay[0].data.data, 'first\nsecond\n');
    assert.equal(replay[1].data.cached, true);
    assert.equal(replay[1].data.id, snap.id);
    // The one-shot route answers the same step from the same record.
    assert.equal((await step(root.id, body)).body.id, snap.id);

    const failed: SseEvent[] = [];
    for await (const ev of events(await stream(root.id, { command: 'echo bad; exit 5' }))) failed.push(ev);
    assert.deepEqual(failed.map((e) => e.event), ['stdout', 'error']);
    assert.equal(failed[1].data.error.code, 'exec_failed');
    assert.equal(failed[1].data.error.details.exitCode, 5);
  });

  it('kills a streamed step whose client leaves, and caches nothing of it', async () => {
    const children = async () => (await t.api('GET', `/v1/snapshots?parentId=${root.id}&limit=200`)).body.data.length;
    const before = await children();
    const abort = new AbortController();
    const res = await fetch(`${t.url}/v1/snapshots/${root.id}/exec/stream`, {
      method: 'POST', signal: abort.signal, headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'echo started; while true; do sleep 0.05; done' }),
    });
    for await (const ev of events(res)) {
      if (ev.event === 'stdout') break; // leaving the loop cancels the body: the client is gone
    }
    abort.abort();
    // The engine notices, kills the command and deletes the step's instance (order, not time).
    for (let i = 0; i < 400; i++) {
      const live = (await t.api('GET', '/v1/instances?metadata[faas.step]=exec&limit=200')).body.data.filter((x: any) => x.state !== 'stopped');
      if (live.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await t.api('GET', '/v1/instances?metadata[faas.step]=exec&state=ready')).body.data.length, 0, 'the step instance is gone');
    assert.equal(await children(), before, 'no child was made');
  });

  it('never crosses API keys, and refuses strangers', async () => {
    // Another key asking for the same root and the same steps gets its own, never these.
    const mine = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'step-cache' } }, as(other.secret));
    assert.equal(mine.status, 201);
    assert.notEqual(mine.body.id, root.id);
    const stepMine = await t.api('POST', `/v1/snapshots/${mine.body.id}/exec`, { command: 'echo to-delete' }, as(other.secret));
    assert.equal(stepMine.status, 201, 'nothing of the first key is a hit for the second');

    // The first key's snapshots are missing for it, on every step route.
    const missing = 'snap_doesnotexist';
    for (const id of [root.id, missing]) {
      const e = await t.api('POST', `/v1/snapshots/${id}/exec`, { command: 'true' }, as(other.secret));
      assert.equal(e.status, 404);
      assert.equal(e.body.error.code, 'snapshot_not_found');
      const s = await stream(id, { command: 'true' }, other.secret);
      assert.equal(s.status, 404);
      assert.equal((await s.json()).error.code, 'snapshot_not_found');
      const u = await upload(id, 'path=/root/x', Buffer.from('x'), 'application/octet-stream', other.secret);
      assert.equal(u.status, 404);
    }
    // Anonymous.
    for (const path of [`/v1/snapshots/${root.id}/exec`, `/v1/snapshots/${root.id}/exec/stream`, `/v1/snapshots/${root.id}/upload?path=/x`]) {
      const res = await fetch(t.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"command":"true"}' });
      assert.equal(res.status, 401, path);
    }
    await t.api('DELETE', `/v1/snapshots/${mine.body.id}?force=true`, undefined, as(other.secret));
  });

  it('keeps upload bodies where no other host user can read them', () => {
    const dir = join(t.config.stateDir, 'uploads');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const r = spawnSync('runuser', ['-u', 'nobody', '--', 'ls', dir], { encoding: 'utf8', cwd: '/' });
    assert.notEqual(r.status, 0, 'nobody cannot list the spool directory');
  });
});

describe('step cache across an engine restart', () => {
  it('answers from what it recorded before the restart', async () => {
    const stateDir = mkdtempSync('/tmp/faas-test-');
    let t: TestEngine | undefined = await startEngine({ stateDir });
    const netTag = t.config.netTag;
    const root = (await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'restart' } })).body;
    const step = (await t.api('POST', `/v1/snapshots/${root.id}/exec`, { command: 'echo kept' })).body;
    await t.engine.shutdown();
    try {
      t = await startEngine({ stateDir, env: { FAAS_NET_TAG: netTag } });
      const again = await t.api('POST', '/v1/snapshots', { environment: { SUITE: 'restart' } });
      assert.equal(again.body.id, root.id);
      assert.equal(again.body.cached, true);
      const hit = await t.api('POST', `/v1/snapshots/${root.id}/exec`, { command: 'echo kept' });
      assert.equal(hit.body.id, step.id);
      assert.deepEqual(hit.body.stepResult, step.stepResult, 'the recorded result survived');
    } finally {
      await t?.close();
    }
  });
});
