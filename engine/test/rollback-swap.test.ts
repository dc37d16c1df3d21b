// Rollback by sandbox swap (services/rollback-standby.ts, sandbox-swap.ts) against real sandboxes:
// the instance keeps its id, address, namespace and a server listening in it; exactly one sandbox
// backs it afterwards (the swapped-out one is deleted); and the failure paths: the standby killed
// from outside, the checkpoint deleted while a standby waits, a rollback past the latest checkpoint,
// the engine killed mid-swap (reconciled to one sandbox and the target's state, nothing leaked),
// and standbys switched off (FAAS_ROLLBACK_STANDBYS=0: the cold path, still in place). Hot standbys
// are off here (FAAS_ROLLBACK_HOT_MB=0) so the empty standby is what is tested; rollback-hot.test.ts has them.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { purge, sh, startEngine, type TestEngine } from './harness.js';
import { rollbackHelpers } from './rollback-helpers.js';

describe('rollback: swapping the sandbox behind an instance', () => {
  let t: TestEngine;
  let stateDir: string;
  let root: string;

  const h = rollbackHelpers(() => t, () => root);
  const { exec, start, checkpoint, sandboxes, namespaces } = h;
  const rollback = async (id: string, steps = 1) => (await h.rollback(id, steps)).inst;
  const sandboxOf = (id: string) => t.engine.services.instances.sandboxOf(id);
  /** Waits (no deadline but the test's) until the instance's standby has been made in the background. */
  const standbyReady = async () => {
    while (t.engine.services.standbys.stats().ready === 0) await new Promise((r) => setTimeout(r, 100));
    return [...t.engine.services.standbys.ids()][0];
  };

  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-rbswap-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '2', FAAS_ROLLBACK_HOT_MB: '0' } });
    const s = await t.api('POST', '/v1/snapshots', {});
    assert.equal(s.status, 201, JSON.stringify(s.body));
    root = s.body.id;
  });
  after(async () => {
    await t?.close();
    purge(stateDir);
  });

  it('keeps the id, address, namespace and a listening server; one sandbox backs it afterwards', async () => {
    const inst = await start();
    // A server started before the checkpoint is back after the rollback at the same address.
    await exec(inst.id, 'echo v1 > /root/f');
    const p = await t.api('POST', `/v1/instances/${inst.id}/processes`, { command: 'cd /root && exec python3 -m http.server 8123 --bind 0.0.0.0' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    const serving = await exec(inst.id, "for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8123))' 2>/dev/null && echo up && break; sleep 0.1; done");
    assert.equal(serving.stdout, 'up\n', 'the server listens before the checkpoint');
    assert.equal(await (await fetch(`http://${inst.ip}:8123/f`)).text(), 'v1\n', 'the server answers before the rollback');
    await checkpoint(inst.id);
    const standby = await standbyReady();
    await exec(inst.id, 'echo v2 > /root/f');
    const netns = t.engine.services.instances.get(inst.id).netns;
    const oldSandbox = sandboxOf(inst.id);

    const r = await rollback(inst.id);
    assert.equal(r.id, inst.id);
    assert.equal(r.ip, inst.ip, 'the address is kept');
    assert.equal(sandboxOf(inst.id), standby, 'the standby now backs the instance');
    assert.notEqual(standby, oldSandbox);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v1\n');
    const body = await (await fetch(`http://${inst.ip}:8123/f`)).text();
    assert.equal(body, 'v1\n', 'the server in the checkpoint answers at the kept address');
    if (netns) assert.ok(namespaces().includes(netns), 'the namespace name is kept');
    // The swapped-out sandbox is deleted in the background: wait for it, then only one is left.
    while (sandboxes().some((s) => s.id === oldSandbox)) await new Promise((res) => setTimeout(res, 100));
    assert.ok(sandboxes().some((s) => s.id === standby));

    // A second rollback swaps again (from a standby made after the first).
    const next = await standbyReady();
    const again = await rollback(inst.id);
    assert.equal(again.ip, inst.ip);
    assert.equal(sandboxOf(inst.id), next);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v1\n');
    const del = await t.api('DELETE', `/v1/instances/${inst.id}`);
    assert.equal(del.status, 204, JSON.stringify(del.body));
    while (sandboxes().some((s) => s.id === next || s.id === standby)) await new Promise((res) => setTimeout(res, 100));
    if (netns) assert.ok(!namespaces().includes(netns), 'the slot went with the instance');
  });

  it('from the sandbox\'s root after a swap: the host stays out of reach (the firewall follows the slot\'s interface)', async () => {
    const inst = await start();
    const hostIp = inst.ip.replace(/\d+$/, (d) => String(Number(d) - 1));
    let reached = 0;
    const server = createServer((c) => {
      reached++;
      c.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as AddressInfo).port;
    const probe = `python3 -c "import socket; socket.create_connection(('${hostIp}', ${port}), timeout=2)" 2>/dev/null; echo $?`;
    try {
      await checkpoint(inst.id);
      await standbyReady();
      await rollback(inst.id);
      assert.notEqual((await exec(inst.id, probe)).stdout, '0\n', 'a connection to the host from the swapped-in sandbox fails');
      assert.equal(reached, 0);
    } finally {
      server.close();
      await t.api('DELETE', `/v1/instances/${inst.id}`);
    }
  });

  it('a standby killed from outside is not used: the rollback makes one on its path', async () => {
    const inst = await start();
    await exec(inst.id, 'echo one > /root/f');
    await checkpoint(inst.id);
    const standby = await standbyReady();
    const pid = sandboxes().find((s) => s.id === standby)!.pid;
    process.kill(pid, 'SIGKILL');
    await exec(inst.id, 'echo two > /root/f');
    const r = await rollback(inst.id);
    assert.equal(r.ip, inst.ip);
    assert.notEqual(sandboxOf(inst.id), standby);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'one\n');
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });

  it('the checkpoint deleted while a standby waits, and a rollback past the latest: both still land right', async () => {
    const inst = await start();
    await exec(inst.id, 'echo a > /root/f');
    await checkpoint(inst.id);
    await exec(inst.id, 'echo b > /root/f');
    const second = await checkpoint(inst.id);
    await standbyReady();
    // A standby holds no image: the latest checkpoint can go, and steps=1 is then the first.
    assert.equal((await t.api('DELETE', `/v1/snapshots/${second}`)).status, 204);
    await exec(inst.id, 'echo c > /root/f');
    assert.equal((await rollback(inst.id)).ip, inst.ip);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'a\n');
    // Older than the head: two steps back is the root snapshot (a fresh restore of it).
    await standbyReady();
    await rollback(inst.id, 2);
    assert.equal((await exec(inst.id, 'cat /root/f 2>/dev/null; echo end')).stdout, 'end\n');
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });

  it('an engine killed mid-swap comes back with one sandbox, the target\'s state, and no twin namespace left', async () => {
    const inst = await start();
    await exec(inst.id, 'echo target > /root/k');
    const ck = await checkpoint(inst.id);
    await exec(inst.id, 'echo later > /root/k');
    const tag = t.config.netTag;
    await rollback(inst.id); // now a swapped-in sandbox (an id of its own) backs it
    await exec(inst.id, 'echo later > /root/k');
    const old = sandboxOf(inst.id);
    assert.notEqual(old, inst.id);
    await t.engine.shutdown(); // the instance's sandbox keeps running
    // What a kill between the swap's record write and its end leaves: the record `pending`, naming
    // a new sandbox and the target as head; the old sandbox still running; a twin namespace.
    const twin = `faas-${tag}-999r0zz`;
    spawnSync('ip', ['netns', 'add', twin]);
    const db = new Database(join(stateDir, 'faas.db'));
    db.prepare("UPDATE instances SET state = 'pending', head_id = ?, sandbox_id = 'sbx_killedmidswap' WHERE id = ?").run(ck, inst.id);
    db.close();
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: tag, FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '2', FAAS_ROLLBACK_HOT_MB: '0' } });
    assert.equal((await t.api('GET', `/v1/instances/${inst.id}/wait?state=ready&timeout=60000`)).status, 200);
    assert.equal((await exec(inst.id, 'cat /root/k')).stdout, 'target\n');
    const ids = sandboxes().map((s) => s.id);
    assert.ok(!ids.includes(old), 'the old sandbox is gone');
    assert.ok(ids.includes(sandboxOf(inst.id)), 'the record names a sandbox that runs');
    assert.ok(!ids.includes('sbx_killedmidswap'));
    const standbys = t.engine.services.standbys.ids();
    assert.deepEqual(ids.filter((s) => s !== sandboxOf(inst.id) && !standbys.has(s) && (s === inst.id || s.startsWith('sbx_'))), [], 'no other sandbox of the instance');
    assert.ok(!namespaces().includes(twin), 'the twin namespace was swept');
    assert.ok(!existsSync(join(stateDir, 'bundles', old)) || sandboxOf(inst.id) === old);
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });
});

describe('rollback with standbys off (FAAS_ROLLBACK_STANDBYS=0)', () => {
  let t: TestEngine;
  let stateDir: string;
  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-rbcold-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '0' } });
  });
  after(async () => {
    await t?.close();
    purge(stateDir);
  });

  it('restores cold under the instance\'s own id, in place', async () => {
    const root = (await t.api('POST', '/v1/snapshots', {})).body.id;
    const inst = (await t.api('POST', '/v1/instances', { snapshotId: root })).body;
    await t.api('POST', `/v1/instances/${inst.id}/exec`, sh('echo x > /root/f'));
    await t.api('POST', `/v1/instances/${inst.id}/snapshot`, {});
    await t.api('POST', `/v1/instances/${inst.id}/exec`, sh('echo y > /root/f'));
    const r = await t.api('POST', `/v1/instances/${inst.id}/rollback`, { steps: 1 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(t.engine.services.instances.sandboxOf(inst.id), inst.id);
    assert.equal(t.engine.services.standbys.stats().ready, 0);
    assert.equal((await t.api('POST', `/v1/instances/${inst.id}/exec`, sh('cat /root/f'))).body.stdout, 'x\n');
  });
});
