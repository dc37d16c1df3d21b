// Lifetimes: instance ttl (stop / pause), autoStop when idle, snapshot expiry (kept while depended
// on), and a ttl that runs out while the engine is down.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { purge, startEngine, type TestEngine } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lifetimes', () => {
  let t: TestEngine | undefined;
  // Every engine a test starts, closed here even when its test failed half-way (a failed test's
  // engine left open kept the file's process alive until the runner's 10-minute timeout).
  const engines: TestEngine[] = [];
  after(async () => {
    for (const e of engines) await e.close().catch(() => undefined);
  });

  it('applies ttl stop/pause, autoStop after idle, and snapshot expiry', async () => {
    t = await startEngine({ env: { FAAS_IDLE_SECONDS: '2' } });
    engines.push(t);
    const snap = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const stopper = (await t.api('POST', '/v1/instances', { snapshotId: snap, ttl: 2 })).body.id;
    const pauser = (await t.api('POST', '/v1/instances', { snapshotId: snap, ttl: 2, ttlAction: 'pause' })).body.id;
    const idle = (await t.api('POST', '/v1/instances', { snapshotId: snap, autoStop: true })).body.id;
    const busy = (await t.api('POST', '/v1/instances', { snapshotId: snap, autoStop: true })).body.id;
    const keep = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
    // `busy` keeps being used: an exec every 500 ms for 4 s.
    for (let i = 0; i < 8; i++) {
      await t.api('POST', `/v1/instances/${busy}/exec`, { command: 'true' });
      await sleep(500);
    }
    const state = async (id: string) => (await t!.api('GET', `/v1/instances/${id}`)).body.state;
    assert.equal(await state(stopper), 'stopped');
    assert.equal(await state(pauser), 'paused');
    assert.equal(await state(idle), 'stopped');
    assert.equal(await state(busy), 'ready');
    assert.equal(await state(keep), 'ready');
    // The pause fires once: a resumed instance stays up.
    await t.api('POST', `/v1/instances/${pauser}/resume`);
    await sleep(500);
    assert.equal(await state(pauser), 'ready');

    // Snapshot ttl: an expired snapshot with a live instance is kept until the instance stops.
    // The depended-on snapshot gets 5 s, so starting `user` from it (a restore, slow on a loaded
    // machine) happens well before it expires; CI once took over a second between a 1 s ttl's
    // snapshot and the start, and the start found the snapshot gone.
    const child = await t.api('POST', `/v1/instances/${keep}/snapshot`, { ttl: 5 });
    assert.ok(child.body.expiresAt);
    const started = await t.api('POST', '/v1/instances', { snapshotId: child.body.id });
    assert.equal(started.status, 201, `the start from the snapshot before it expired: ${JSON.stringify(started.body)}`);
    const user = started.body.id;
    const lone = await t.api('POST', `/v1/instances/${keep}/snapshot`, { ttl: 1 });
    const expired = Math.max(Date.parse(child.body.expiresAt), Date.parse(lone.body.expiresAt));
    await sleep(Math.max(0, expired - Date.now()) + 1800);
    assert.equal((await t.api('GET', `/v1/snapshots/${lone.body.id}`)).status, 404, 'expired snapshot deleted');
    assert.equal((await t.api('GET', `/v1/snapshots/${child.body.id}`)).status, 200, 'kept while an instance depends on it');
    await t.api('POST', `/v1/instances/${user}/stop`);
    await sleep(300);
    assert.equal((await t.api('GET', `/v1/snapshots/${child.body.id}`)).status, 404, 'deleted once nothing depends on it');
    await t.close();
    t = undefined;
  });

  it('stops an instance whose ttl ran out while the engine was down', async () => {
    const stateDir = mkdtempSync('/tmp/faas-test-');
    const first = await startEngine({ stateDir });
    engines.push(first);
    const snap = (await first.api('POST', '/v1/snapshots', {})).body.id;
    const id = (await first.api('POST', '/v1/instances', { snapshotId: snap, ttl: 3 })).body.id;
    await first.engine.shutdown(); // instances keep running; the engine is gone
    await sleep(3200);
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: first.config.netTag } });
    engines.push(t);
    await sleep(500);
    const after = await t.api('GET', `/v1/instances/${id}`);
    assert.equal(after.body.state, 'stopped');
    await t.close();
    t = undefined;
    purge(stateDir);
  });
});
