// Exec in all its forms: plain, argv, batch, script, with snapshot, streamed (iterator, callbacks,
// cancellation by breaking out), and client.exec with its automatic throwaway instance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance, ExecStreamEvent } from '../src/index.js';
import { InstanceTracker, sharedSnapshotId, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
let instance: Instance;
before(async () => {
  instance = await tracker.start();
});
after(() => tracker.cleanup());

test('exec returns the result; a failing command is a normal result', async () => {
  const ok = await instance.exec('echo out; echo err >&2');
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.stdout, 'out\n');
  assert.equal(ok.stderr, 'err\n');
  assert.equal(typeof ok.duration, 'number');
  const failed = await client.execution.exec(instance.id, 'exit 7');
  assert.equal(failed.exitCode, 7);
  const argv = await instance.exec(['printf', '%s-%s', 'a b', 'c']);
  assert.equal(argv.stdout, 'a b-c');
  const withOptions = await instance.exec('pwd; echo $FOO; cat', { cwd: '/tmp', env: { FOO: 'bar' }, stdin: 'piped' });
  assert.equal(withOptions.stdout, '/tmp\nbar\npiped');
  const timedOut = await instance.exec('sleep 5', { timeout: 200 });
  assert.equal(timedOut.timedOut, true);
});

test('execBatch, stopOnError and execScript', async () => {
  const all = await instance.execBatch(['echo 1', { command: 'echo $X', env: { X: '2' } }, 'echo 3']);
  assert.deepEqual(all.map((r) => r.stdout), ['1\n', '2\n', '3\n']);
  const stopped = await client.execution.execBatch(instance.id, ['true', 'false', 'echo never'], { stopOnError: true });
  assert.equal(stopped.length, 2);
  const script = await instance.execScript('echo "$1-$2"\nexit 4', { args: ['x', 'y'] });
  assert.equal(script.stdout, 'x-y\n');
  assert.equal(script.exitCode, 4);
  const sh = await client.execution.execScript(instance.id, 'echo "$0"', { interpreter: '/bin/sh' });
  assert.equal(sh.exitCode, 0);
});

test('execWithSnapshot returns a snapshot carrying the change', async () => {
  const snapshot = await instance.execWithSnapshot('echo kept > /root/kept');
  assert.equal(snapshot.instanceId, instance.id);
  const child = tracker.track(await snapshot.start());
  assert.equal((await child.exec('cat /root/kept')).stdout, 'kept\n');
  await child.delete();
  await snapshot.delete({ force: true });
});

test('execStream as an async iterator yields start, output and exit in order', async () => {
  const events: ExecStreamEvent[] = [];
  for await (const event of instance.execStream('echo a; echo b >&2; sleep 0.2; echo c; exit 3')) events.push(event);
  assert.equal(events[0].type, 'start');
  assert.equal(events.at(-1)!.type, 'exit');
  const exit = events.at(-1) as Extract<ExecStreamEvent, { type: 'exit' }>;
  assert.equal(exit.exitCode, 3);
  const text = (type: string) => events.filter((e) => e.type === type).map((e) => (e as { data: string }).data).join('');
  assert.equal(text('stdout'), 'a\nc\n');
  assert.equal(text('stderr'), 'b\n');
});

test('execStream with callbacks, awaited for the collected result', async () => {
  const out: string[] = [];
  const err: string[] = [];
  let pid = 0;
  const result = await instance.execStream('echo x; echo y >&2', { onStart: (p) => (pid = p), onStdout: (d) => out.push(d), onStderr: (d) => err.push(d) });
  assert.ok(pid > 0);
  assert.equal(out.join(''), 'x\n');
  assert.equal(err.join(''), 'y\n');
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'x\n');
  assert.equal(result.pid, pid);
});

test('breaking out of the loop cancels the stream and the engine kills the command', async () => {
  const started = Date.now();
  for await (const event of instance.execStream('echo ready; sleep 30; echo never')) {
    if (event.type === 'stdout') break;
  }
  assert.ok(Date.now() - started < 10_000);
  // Give the engine a moment to notice the closed connection.
  let remaining = '';
  for (let i = 0; i < 20; i++) {
    remaining = (await instance.exec("ps -eo args | grep '^sleep 30' || true")).stdout;
    if (!remaining.trim()) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(remaining.trim(), '', 'sleep 30 should have been killed');
});

test('a stream can be consumed once', async () => {
  const stream = instance.execStream('true');
  await stream;
  await assert.rejects(async () => {
    for await (const _ of stream) void _;
  }, /only once/);
});

test('client.exec runs in an instance, a snapshot, or a throwaway default snapshot', async () => {
  assert.equal((await client.exec('echo here', instance)).stdout, 'here\n');
  assert.equal((await client.exec('echo snap', sharedSnapshotId())).stdout, 'snap\n');
  const before = (await client.instances.list()).length;
  const fresh = await client.exec('echo fresh > /root/f; cat /root/f');
  assert.equal(fresh.stdout, 'fresh\n');
  assert.equal((await client.instances.list()).length, before, 'the throwaway instance is deleted');
  assert.match(fresh.snapshotId ?? '', /^snap_/, 'without an instance the state after the command is kept');
  assert.equal((await client.exec('cat /root/f', fresh.snapshotId)).stdout, 'fresh\n');
});

test('client.branches: a Branch at a snapshot, checkout, commit, a named fork of its instance, list children', async () => {
  const b = await client.branch(sharedSnapshotId(), { name: `ts-main-${Date.now()}` });
  const made: string[] = [];
  try {
    assert.equal(b.head, sharedSnapshotId());
    assert.equal(b.instanceId, null);
    const inst = await b.checkout();
    made.push(inst.id);
    assert.equal(inst.state, 'ready');
    assert.equal((await client.branches.checkout(b)).id, inst.id, 'checkout reuses the live instance');
    await inst.exec('echo ts > /root/f');
    const snap = await b.commit('first');
    assert.equal(snap.metadata.message, 'first');
    assert.equal((await b.refresh()).head, snap.id);
    const forked = await client.branches.fork(inst, 2, { names: [`${b.name}-a`, `${b.name}-b`] });
    made.push(...forked.instances.map((k) => k.id));
    assert.equal(forked.branches?.length, 2);
    const kids = await client.branches.list(b).toArray();
    assert.deepEqual(new Set(kids.map((k) => k.id)), new Set(forked.branches!.map((k) => k.id)));
    assert.deepEqual(new Set(kids.map((k) => k.instanceId)), new Set(forked.instances.map((k) => k.id)));
    for (const k of kids) await k.delete();
  } finally {
    for (const id of made) await client.instances.delete(id).catch(() => undefined);
    await b.delete({ force: true });
  }
});
