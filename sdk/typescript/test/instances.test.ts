// Instance lifecycle and listing against the real engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Instance, Snapshot } from '../src/index.js';
import { InstanceTracker, sharedSnapshotId, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
after(() => tracker.cleanup());

test('start, get, pause, resume, restart, stop and delete', async () => {
  const instance = await tracker.start({ suite: 'lifecycle' });
  assert.ok(instance instanceof Instance);
  assert.equal(instance.state, 'ready');
  assert.equal(instance.snapshotId, sharedSnapshotId());
  assert.deepEqual(instance.metadata, { suite: 'lifecycle' });

  assert.equal((await client.instances.get(instance.id)).id, instance.id);
  assert.equal((await instance.pause()).state, 'paused');
  assert.equal((await client.instances.resume(instance.id)).state, 'ready');
  await instance.exec('echo changed > /tmp/marker');
  assert.equal((await instance.restart()).state, 'ready');
  // restart restores the snapshot: changes since the restore are gone.
  assert.notEqual((await instance.exec('cat /tmp/marker')).exitCode, 0);
  assert.equal((await instance.stop()).state, 'stopped');
  assert.equal((await client.instances.stop(instance.id)).state, 'stopped'); // idempotent
  await instance.delete();
  await assert.rejects(client.instances.get(instance.id), { code: 'instance_not_found' });
});

test('waitUntilReady uses the server-side wait', async () => {
  const pending = tracker.track(await client.instances.start({ snapshotId: sharedSnapshotId(), wait: false }));
  const ready = await client.instances.waitUntilReady(pending.id, 30_000);
  assert.equal(ready.state, 'ready');
  assert.equal((await pending.waitUntilReady()).state, 'ready');
});

test('metrics, metadata, snapshot and branch', async () => {
  const instance = await tracker.start();
  const metrics = await instance.getMetrics();
  assert.equal(metrics.instanceId, instance.id);
  assert.ok(metrics.memory.limitBytes > 0);

  await instance.setMetadata({ team: 'sdk' });
  assert.deepEqual(instance.metadata, { team: 'sdk' });

  await instance.exec('echo parent > /root/who');
  const snapshot = await instance.snapshot({ metadata: { from: 'test' } });
  assert.ok(snapshot instanceof Snapshot);
  assert.equal(snapshot.instanceId, instance.id);
  assert.equal(snapshot.parentId, sharedSnapshotId());

  const { snapshot: branchSnap, instances } = await instance.branch({ count: 2, metadata: { role: 'child' } });
  tracker.track(instances);
  assert.equal(instances.length, 2);
  assert.ok(branchSnap.id.startsWith('snap_'));
  for (const child of instances) {
    assert.equal(child.parentInstanceId, instance.id);
    assert.equal(child.state, 'ready');
    assert.equal((await child.exec('cat /root/who')).stdout, 'parent\n');
  }
  const listed = await client.instances.list({ parentId: instance.id }).toArray();
  assert.deepEqual(listed.map((i) => i.id).sort(), instances.map((i) => i.id).sort());
  await Promise.all(instances.map((i) => i.delete()));
  await snapshot.delete({ force: true });
  await branchSnap.delete({ force: true });
});

test('list pages transparently with pageSize 1, by for-await, toArray and await', async () => {
  const [a, b, c] = [await tracker.start({ page: 'yes' }), await tracker.start({ page: 'yes' }), await tracker.start({ page: 'yes' })];
  const seen: string[] = [];
  for await (const instance of client.instances.list({ metadata: { page: 'yes' }, pageSize: 1 })) seen.push(instance.id);
  assert.deepEqual(seen.sort(), [a.id, b.id, c.id].sort());
  const pager = client.instances.list({ metadata: { page: 'yes' }, pageSize: 1 });
  let pages = 0;
  for await (const page of pager.pages()) {
    pages += 1;
    assert.equal(page.length, 1);
  }
  assert.equal(pages, 3);
  assert.equal((await client.instances.list({ metadata: { page: 'yes' }, pageSize: 2 }).toArray()).length, 3);
  assert.equal((await client.instances.list({ metadata: { page: 'yes' }, state: 'ready' })).length, 3);
  await Promise.all([a, b, c].map((i) => i.delete()));
});

test('`await using` stops the instance at the end of the scope', async () => {
  let id = '';
  {
    await using instance = tracker.track(await client.instances.start({ snapshotId: sharedSnapshotId() }));
    id = instance.id;
    assert.equal((await instance.exec('echo in-scope')).stdout, 'in-scope\n');
  }
  assert.equal((await client.instances.get(id)).state, 'stopped');
});
