// Pools that take start-up off the critical path: pre-created sandboxes (always on) and paused
// clones of chosen snapshots (minInstances), which turn a start into a resume.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

describe('pools', () => {
  let t: TestEngine;
  let snapId: string;

  const waitPool = async (id: string, ready: number) => {
    for (let i = 0; i < 300; i++) {
      const p = await t.api('GET', `/v1/snapshots/${id}/pool`);
      if (p.body.ready === ready) return p.body;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`pool of ${id} never reached ${ready}`);
  };

  before(async () => {
    t = await startEngine({ env: { FAAS_WARM_POOL: '2' } });
    const base = (await t.api('POST', '/v1/snapshots', {})).body.id;
    snapId = (await t.api('POST', `/v1/snapshots/${base}/exec`, { command: 'echo pooled > /root/state' })).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('restores into pre-created sandboxes once a template is warm', async () => {
    const first = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    await t.api('POST', `/v1/instances/${first.body.id}/stop`);
    let warmHit = false;
    for (let i = 0; i < 20 && !warmHit; i++) {
      await new Promise((r) => setTimeout(r, 200)); // let the background refill run
      const res = await t.api('POST', '/v1/instances', { snapshotId: snapId });
      warmHit = /warm;dur=/.test(res.headers.get('server-timing') ?? '');
      assert.equal((await t.api('POST', `/v1/instances/${res.body.id}/exec`, { command: 'cat /root/state; hostname' })).body.stdout, `pooled\n${res.body.id.replace('_', '-')}\n`);
      await t.api('POST', `/v1/instances/${res.body.id}/stop`);
    }
    assert.ok(warmHit, 'a start used a pre-created sandbox');
  });

  it('keeps paused clones of a snapshot and starts instances by resuming them', async () => {
    const set = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 2 });
    assert.equal(set.status, 200);
    assert.equal(set.body.minInstances, 2);
    await waitPool(snapId, 2);
    const res = await t.api('POST', '/v1/instances', { snapshotId: snapId, metadata: { from: 'pool' } });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('server-timing') ?? '', /resume;dur=/, 'the start was a resume of a pooled clone');
    assert.equal(res.body.state, 'ready');
    assert.deepEqual(res.body.metadata, { from: 'pool' });
    const r = await t.api('POST', `/v1/instances/${res.body.id}/exec`, { command: 'cat /root/state; hostname' });
    assert.equal(r.body.stdout, `pooled\n${res.body.id.replace('_', '-')}\n`, 'state of the snapshot and its own identity');
    await waitPool(snapId, 2); // refilled in the background
    await t.api('POST', `/v1/instances/${res.body.id}/stop`);

    const drained = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 0 });
    assert.equal(drained.body.ready, 0);
    const bad = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 99 });
    assert.equal(bad.status, 400);
    assert.equal((await t.api('GET', '/v1/snapshots/snap_nope/pool')).status, 404);
  });

  it('grows a template\'s warm pool to the width of a recent branch', async () => {
    const parent = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body;
    const before = (await t.api('GET', '/v1/metrics')).body.warmPool;
    const b = await t.api('POST', `/v1/instances/${parent.id}/branch`, { count: 4 });
    assert.equal(b.status, 201);
    let after = (await t.api('GET', '/v1/metrics')).body.warmPool;
    // At least the branch's width (4, FAAS_WARM_POOL is 2); 5 when the parent's own start fell in
    // the same burst window (BURST_MS), which depends on how fast the machine is.
    assert.ok(after.target >= before.target + 2 && after.target <= before.target + 3, `this template now wants 4 or 5, not ${after.target - before.target + 2}`);
    for (let i = 0; i < 300 && after.ready < after.target; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = (await t.api('GET', '/v1/metrics')).body.warmPool;
    }
    assert.equal(after.ready, after.target, 'refilled to the new width in the background');
    const again = await t.api('POST', `/v1/instances/${parent.id}/branch`, { count: 4 });
    for (const c of again.body.instances) assert.equal(c.state, 'ready');
    await Promise.all([parent, ...b.body.instances, ...again.body.instances].map((i: { id: string }) => t.api('POST', `/v1/instances/${i.id}/stop`)));
  });

  it('caps the live instances of a snapshot at maxInstances, pooled starts included', async () => {
    const set = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 1, maxInstances: 2 });
    assert.equal(set.status, 200);
    assert.equal(set.body.maxInstances, 2);
    await waitPool(snapId, 1);
    const a = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.match(a.headers.get('server-timing') ?? '', /resume;dur=/, 'the first start took the pooled clone');
    const b = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(b.status, 201);
    const over = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, 'resource_limit');
    assert.deepEqual(over.body.error.details, { snapshotId: snapId, live: 2, maxInstances: 2 });
    const pool = (await t.api('GET', `/v1/snapshots/${snapId}/pool`)).body;
    assert.equal(pool.live, 2);
    await waitPool(snapId, 1); // the refused start did not use up the refilled clone

    await t.api('POST', `/v1/instances/${a.body.id}/stop`);
    const again = await t.api('POST', '/v1/instances', { snapshotId: snapId });
    assert.equal(again.status, 201, 'a stop makes room again');

    const inverted = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 3, maxInstances: 2 });
    assert.equal(inverted.status, 400);
    assert.equal(inverted.body.error.details.field, '/maxInstances');
    assert.equal((await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 0, maxInstances: 0 })).status, 400);
    const cleared = await t.api('PUT', `/v1/snapshots/${snapId}/pool`, { minInstances: 0 });
    assert.equal(cleared.body.maxInstances, null, 'the request replaces the whole setting');
    assert.equal((await t.api('POST', '/v1/instances', { snapshotId: snapId })).status, 201, 'no cap any more');
  });
});
