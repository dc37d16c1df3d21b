// Snapshots: create/get/list/delete, the chaining of the SDK specification, clone and upload steps.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecFailedError, FaaSClient, ResourceLimitError, Snapshot, SnapshotPromise } from '../src/index.js';
import { InstanceTracker, sharedSnapshotId, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
const created: string[] = [];
after(async () => {
  await tracker.cleanup();
  for (const id of created.reverse()) await client.snapshots.delete(id, { force: true }).catch(() => undefined);
});

test('create, get, setMetadata, list by metadata with pagination, delete', async () => {
  const a = await client.snapshots.create({ metadata: { suite: 'snapshots' }, memory: 256 });
  const b = await client.snapshots.create({ metadata: { suite: 'snapshots' } });
  created.push(a.id, b.id);
  assert.ok(a instanceof Snapshot);
  assert.equal(a.resources.memory, 256);
  assert.equal((await client.snapshots.get(a.id)).checksum, a.checksum);
  const updated = await a.setMetadata({ suite: 'snapshots', tag: 'x' });
  assert.equal(updated.metadata.tag, 'x');
  const listed = await client.snapshots.list({ metadata: { suite: 'snapshots' }, pageSize: 1 }).toArray();
  assert.deepEqual(listed.map((s) => s.id).sort(), [a.id, b.id].sort());
  await b.delete();
  await assert.rejects(client.snapshots.get(b.id), { code: 'snapshot_not_found' });
});

test('chaining exactly as in the SDK specification', async () => {
  const instance = tracker.track(
    await client.snapshots
      .create()
      .then((s) => s.exec('echo a > /root/steps'))
      .then((s) => s.exec('echo b >> /root/steps'))
      .then((s) => client.instances.start({ snapshotId: s.id })),
  );
  created.push(instance.snapshotId);
  assert.equal((await instance.exec('cat /root/steps')).stdout, 'a\nb\n');
});

test('chain steps without awaits, step cache and parent links', async () => {
  const base = await client.snapshots.get(sharedSnapshotId());
  const chain = base.exec('echo one > /root/one').exec(['sh', '-c', 'echo two > /root/two']);
  assert.ok(chain instanceof SnapshotPromise);
  const last = await chain;
  const first = await client.snapshots.get(last.parentId!);
  created.push(last.id, first.id);
  assert.equal(first.parentId, base.id);
  // The same step on the same parent is the cached snapshot.
  const again = await base.exec('echo one > /root/one');
  assert.equal(again.id, first.id);
  assert.equal(again.digest, first.digest);
  const instance = tracker.track(await last.start());
  assert.equal((await instance.exec('cat /root/one /root/two')).stdout, 'one\ntwo\n');
  await instance.delete();
});

test('clone makes a new snapshot with the same state on the engine, restoring nothing', async () => {
  const source = await client.snapshots.exec(sharedSnapshotId(), 'echo cloned > /root/c');
  created.push(source.id);
  const copy = await client.snapshots.clone(source.id, { metadata: { copy: 'yes' } });
  created.push(copy.id);
  assert.notEqual(copy.id, source.id);
  assert.equal(copy.parentId, source.parentId, 'same lineage as the original');
  assert.deepEqual(copy.metadata, { copy: 'yes' });
  assert.equal((await client.instances.list({ snapshotId: source.id })).length, 0, 'no instance was started for it');
  const instance = tracker.track(await copy.start());
  assert.equal((await instance.exec('cat /root/c')).stdout, 'cloned\n');
});

test('upload as a chain step', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-upload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a.txt'), 'A');
  writeFileSync(join(dir, 'sub/b.txt'), 'B');
  const snapshot = await client.snapshots.get(sharedSnapshotId()).upload(dir, '/app').exec('cat /app/a.txt /app/sub/b.txt > /app/joined');
  created.push(snapshot.id, snapshot.parentId!);
  const instance = tracker.track(await snapshot.start());
  assert.equal((await instance.exec('cat /app/joined')).stdout, 'AB');
});

test('warm pool and engine metrics', async () => {
  const metrics = await client.metrics();
  assert.equal(typeof metrics.uptimeMs, 'number');
  const snapshot = await client.snapshots.exec(sharedSnapshotId(), 'echo pooled > /root/p');
  created.push(snapshot.id);
  assert.equal((await client.snapshots.setPool(snapshot.id, 1)).minInstances, 1);
  assert.equal((await client.snapshots.getPool(snapshot.id)).snapshotId, snapshot.id);
  assert.equal((await client.snapshots.setPool(snapshot.id, 0)).minInstances, 0);
  const capped = await client.snapshots.setPool(snapshot.id, { minInstances: 0, maxInstances: 1 });
  assert.equal(capped.maxInstances, 1);
  const one = tracker.track(await client.instances.start({ snapshotId: snapshot.id }));
  // 429 is retryable (POSTs carry an idempotency key); no retries, so the refusal shows at once.
  await assert.rejects(client.instances.start({ snapshotId: snapshot.id }, { maxRetries: 0 }), (e: unknown) => e instanceof ResourceLimitError && e.code === 'resource_limit');
  await one.stop();
  assert.equal((await client.snapshots.setPool(snapshot.id, 0)).maxInstances, null);
});

test('step cache: identical creates and steps are hits, fresh and reuseSnapshots: false run again', async () => {
  const config = { environment: { SUITE: 'ts-step-cache' } };
  const root = await client.snapshots.create(config);
  created.push(root.id);
  assert.equal(root.cached, false);
  const hit = await client.snapshots.create(config);
  assert.equal(hit.id, root.id);
  assert.equal(hit.cached, true);

  const step = await root.exec('echo out; echo err >&2');
  assert.equal(step.cached, false);
  assert.deepEqual({ stdout: step.stepResult?.stdout, stderr: step.stepResult?.stderr, exitCode: step.stepResult?.exitCode }, { stdout: 'out\n', stderr: 'err\n', exitCode: 0 });
  const again = await root.exec('echo out; echo err >&2');
  assert.equal(again.id, step.id);
  assert.equal(again.cached, true);
  assert.equal(again.stepResult?.stdout, 'out\n');
  const fresh = await root.exec('echo out; echo err >&2', { fresh: true });
  assert.notEqual(fresh.id, step.id);

  const noReuse = new FaaSClient({ endpoint: client.endpoint, apiKey: client.http.apiKey, optimizationHints: { reuseSnapshots: false } });
  const booted = await noReuse.snapshots.create(config);
  created.push(booted.id);
  assert.notEqual(booted.id, root.id);
  assert.equal(booted.cached, false);
  assert.notEqual((await noReuse.snapshots.exec(root.id, 'echo out; echo err >&2')).id, step.id);
});

test('onOutput gets the step output while it runs, and the recorded output on a hit', async () => {
  const command = 'echo first; while [ ! -e /root/go ]; do sleep 0.05; done; echo second';
  const seen: string[] = [];
  let released: Promise<unknown> | undefined;
  const snapshot = await client.snapshots.exec(sharedSnapshotId(), command, {
    onOutput: (data, stream) => {
      seen.push(`${stream}:${data}`);
      // Order, not time: the step waits for /root/go, written only once its first chunk is here.
      released ??= client.instances
        .list({ metadata: { 'faas.step': 'exec' }, state: 'ready' })
        .toArray()
        .then(([live]) => client.files.write(live.id, '/root/go', ''));
    },
  });
  created.push(snapshot.id);
  await released;
  assert.equal(seen[0], 'stdout:first\n');
  assert.equal(seen.join('').replace(/stdout:/g, ''), 'first\nsecond\n');
  assert.equal(snapshot.cached, false);

  const replayed: string[] = [];
  const hit = await client.snapshots.exec(sharedSnapshotId(), command, { onOutput: (data, stream) => replayed.push(`${stream}:${data}`) });
  assert.equal(hit.id, snapshot.id);
  assert.equal(hit.cached, true);
  assert.deepEqual(replayed, ['stdout:first\nsecond\n']);
  await assert.rejects(client.snapshots.exec(sharedSnapshotId(), 'echo no; exit 2', { onOutput: () => undefined }), ExecFailedError);
});

test('upload steps are cached by content', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'faas-upload-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f.txt'), 'one');
  const first = await client.snapshots.upload(sharedSnapshotId(), join(dir, 'f.txt'), '/root/f.txt');
  created.push(first.id);
  assert.equal(first.cached, false);
  assert.equal((await client.snapshots.upload(sharedSnapshotId(), join(dir, 'f.txt'), '/root/f.txt')).id, first.id);
  writeFileSync(join(dir, 'f.txt'), 'two');
  const changed = await client.snapshots.upload(sharedSnapshotId(), join(dir, 'f.txt'), '/root/f.txt');
  created.push(changed.id);
  assert.notEqual(changed.id, first.id);
  const instance = tracker.track(await changed.start());
  assert.equal((await instance.exec('cat /root/f.txt')).stdout, 'two');
});

test("the repository README's chain runs, and run again every step is a hit", async () => {
  const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
  const command = /client\.snapshots\.create\(\)\.then\(\(s\) => s\.exec\('([^']+)'\)\)/.exec(readme)?.[1];
  assert.ok(command, "README.md shows the create().then((s) => s.exec('…')) chain");
  const chain = () => client.snapshots.create().then((s) => s.exec(command));
  const first = await chain();
  created.push(first.id, first.parentId!);
  const again = await chain();
  assert.equal(again.id, first.id);
  assert.equal(again.cached, true);
  assert.equal((await client.snapshots.create()).cached, true, 'the root too');
});
