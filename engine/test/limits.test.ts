// Resource limits against real sandboxes: memory (cgroup) kills the sandbox, not the engine, and
// the instance reports `error`; diskSize bounds the writable layer (ENOSPC inside) without
// breaking snapshots; impossible requests are refused; metrics report usage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEngine, type TestEngine } from './harness.js';

describe('limits', () => {
  let t: TestEngine;
  before(async () => {
    t = await startEngine();
  });
  after(async () => {
    await t?.close();
  });

  it('a full writable layer gives ENOSPC inside, and the snapshot still works and restores', async () => {
    const snap = (await t.api('POST', '/v1/snapshots', { diskSize: 64 })).body;
    assert.equal(snap.resources.diskSize, 64);
    const id = (await t.api('POST', '/v1/instances', { snapshotId: snap.id })).body.id;
    const fill = await t.api('POST', `/v1/instances/${id}/exec`, { command: 'dd if=/dev/zero of=/root/fill bs=1M count=200 2>&1; sync' });
    assert.match(fill.body.stdout, /No space left on device/);
    const m = await t.api('GET', `/v1/instances/${id}/metrics`);
    assert.ok(m.body.disk.usedBytes > 50 * 2 ** 20, `disk used ${m.body.disk.usedBytes}`);
    const up = await t.api('PUT', `/v1/instances/${id}/files/write?path=/root/more.bin`, undefined, { headers: { 'content-type': 'application/octet-stream' }, raw: Buffer.alloc(8 << 20) as any });
    assert.equal(up.status, 422);
    assert.equal(up.body.error.code, 'resource_limit');
    const full = await t.api('POST', `/v1/instances/${id}/snapshot`, {});
    assert.equal(full.status, 201);
    const clone = (await t.api('POST', '/v1/instances', { snapshotId: full.body.id })).body;
    assert.equal(clone.state, 'ready');
    const size = await t.api('POST', `/v1/instances/${clone.id}/exec`, { command: 'stat -c %s /root/fill; rm /root/fill; dd if=/dev/zero of=/root/x bs=1M count=20 2>&1 | tail -1' });
    assert.match(size.body.stdout, /^\d+\n.*copied/s, size.body.stdout);
    const other = await t.api('POST', '/v1/instances', { snapshotId: full.body.id, resources: { diskSize: 2048 } });
    assert.equal(other.status, 400);
    await t.api('DELETE', `/v1/instances/${clone.id}`);
    await t.api('DELETE', `/v1/instances/${id}`);
  });

  it('enforces maxProcesses per instance: forks beyond it fail, other instances are unaffected', async () => {
    const snap = (await t.api('POST', '/v1/snapshots', {})).body;
    assert.equal(snap.resources.maxProcesses, null);
    const limited = await t.api('POST', '/v1/instances', { snapshotId: snap.id, resources: { maxProcesses: 40 } });
    assert.equal(limited.status, 201, JSON.stringify(limited.body));
    assert.equal(limited.body.resources.maxProcesses, 40);
    const free = (await t.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
    const script = 'ok=0; for i in $(seq 100); do if sleep 3 2>/dev/null & then ok=$((ok+1)); fi; done; echo $(jobs -p | wc -l); kill $(jobs -p) 2>/dev/null; true';
    const capped = await t.api('POST', `/v1/instances/${limited.body.id}/exec`, { argv: ['bash', '-c', script] });
    const n = Number(capped.body.stdout.trim());
    assert.ok(n < 40, `at most 40 tasks for root in the limited instance, got ${n} background processes (stderr: ${capped.body.stderr.slice(-200)})`);
    const uncapped = await t.api('POST', `/v1/instances/${free.id}/exec`, { argv: ['bash', '-c', script] });
    assert.equal(Number(uncapped.body.stdout.trim()), 100, 'no limit where none was asked for');
    const invalid = await t.api('POST', '/v1/instances', { snapshotId: snap.id, resources: { maxProcesses: 1 } });
    assert.equal(invalid.status, 400);
    await t.api('POST', `/v1/instances/${limited.body.id}/stop`);
    await t.api('POST', `/v1/instances/${free.id}/stop`);
  });

  it('refuses more disk, memory or CPUs than the machine has', async () => {
    for (const body of [{ diskSize: 1048576 }, { memory: 262144 }, { vcpus: 64 }]) {
      const r = await t.api('POST', '/v1/snapshots', body);
      assert.equal(r.status, 422, JSON.stringify(body));
      assert.equal(r.body.error.code, 'resource_limit');
    }
  });

  it('exceeding memory kills the sandbox (not the engine): state error, instance.error event, metrics', async () => {
    const snap = (await t.api('POST', '/v1/snapshots', { memory: 256 })).body.id;
    const started = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body;
    const id = started.id;
    // Traffic only to an address of a namespace this engine made: the instance's own gateway
    // (the host side of its veth, where the firewall drops it).
    const gateway = started.network.ip.replace(/\.(\d+)$/, (_: string, d: string) => `.${Number(d) - 1}`);
    const m = await t.api('GET', `/v1/instances/${id}/metrics`);
    assert.equal(m.body.memory.limitBytes, 256 * 2 ** 20);
    assert.ok(m.body.processes.count >= 1);
    await t.api('POST', `/v1/instances/${id}/exec`, { command: `curl -s -m 2 http://${gateway}:9 >/dev/null || true` });
    assert.ok((await t.api('GET', `/v1/instances/${id}/metrics`)).body.network.txBytes > 0);
    const events = fetch(`${t.url}/v1/events?types=instance.error&resourceId=${id}`, { headers: { authorization: `Bearer ${t.key}` } });
    const hog = await t.api('POST', `/v1/instances/${id}/exec`, { command: "python3 -c 'x=[bytearray(1<<20) for _ in range(2000)]; print(len(x))'", timeout: 30_000 });
    assert.notEqual(hog.body?.exitCode, 0, 'the hog did not get 2 GB');
    const deadline = Date.now() + 10_000;
    let inst: any;
    do {
      await new Promise((r) => setTimeout(r, 250));
      inst = (await t.api('GET', `/v1/instances/${id}`)).body;
    } while (inst.state !== 'error' && Date.now() < deadline);
    assert.equal(inst.state, 'error', JSON.stringify({ inst, hog: hog.body }));
    assert.match(inst.error, /memory|killed|exited/);
    const res = await events;
    const reader = (res.body as any).getReader();
    let text = '';
    while (!text.includes('event: instance.error')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.equal((await t.api('GET', '/v1/health')).status, 200, 'the engine is fine');
    const em = await t.api('GET', '/v1/metrics');
    assert.ok(em.body.instances.error >= 1);
  });
});
