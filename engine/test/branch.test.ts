// Live branching with state: processes, memory and files carried into every child; children
// diverge; instances are isolated from one another and from the engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { START_COUNTER } from './counter-server.js';
import { startEngine, type TestEngine } from './harness.js';


describe('live branch', () => {
  let t: TestEngine;
  let snapId: string;
  const exec = async (id: string, command: string) => {
    const r = await t.api('POST', `/v1/instances/${id}/exec`, { command });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exitCode: number; stdout: string; stderr: string };
  };
  const bump = async (id: string) => Number((await exec(id, 'curl -s http://127.0.0.1:9000/')).stdout);

  before(async () => {
    t = await startEngine();
    snapId = (await t.api('POST', '/v1/snapshots', {})).body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('carries a running process with in-memory state into every child, which then diverge', async () => {
    const parent = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body.id;
    await exec(parent, START_COUNTER);
    for (let i = 0; i < 4; i++) await bump(parent);
    assert.equal(await bump(parent), 6, 'the warm-up request plus five');
    await exec(parent, 'echo from-parent > /root/before-branch');

    const res = await t.api('POST', `/v1/instances/${parent}/branch`, { count: 4 });
    assert.equal(res.status, 201);
    const { snapshot, instances } = res.body;
    assert.equal(instances.length, 4);
    assert.equal(snapshot.instanceId, parent);
    const kids: string[] = instances.map((i: any) => i.id);
    for (const k of instances) {
      assert.equal(k.state, 'ready');
      assert.equal(k.parentInstanceId, parent);
      assert.equal(k.snapshotId, snapshot.id);
    }
    assert.equal(new Set(instances.map((i: any) => i.network.ip)).size, 4, 'every child has its own address');
    // The branch's image is checksummed once the engine is quiet, not on the branch's path.
    assert.ok(snapshot.checksum === null || /^sha256:[0-9a-f]{64}$/.test(snapshot.checksum), String(snapshot.checksum));
    let sealed = snapshot.checksum;
    for (let i = 0; i < 100 && !sealed; i++) {
      await new Promise((r) => setTimeout(r, 50));
      sealed = (await t.api('GET', `/v1/snapshots/${snapshot.id}`)).body.checksum;
    }
    assert.match(sealed, /^sha256:[0-9a-f]{64}$/, 'sealed within 5 s');

    // Each child continues from the parent's in-memory count, then diverges.
    for (const [n, k] of kids.entries()) {
      let v = 0;
      for (let i = 0; i <= n; i++) v = await bump(k);
      assert.equal(v, 7 + n, `child ${n} continued from 6 and counted ${n + 1} more`);
    }
    assert.equal(await bump(parent), 7, 'the parent kept running on its own');
    for (const [n, k] of kids.entries()) assert.equal(await bump(k), 8 + n);

    // Files: written before the branch → in every child; written in one child → only there.
    for (const k of kids) assert.equal((await exec(k, 'cat /root/before-branch')).stdout, 'from-parent\n');
    await exec(kids[0], 'echo only-here > /root/child-file');
    assert.equal((await exec(kids[0], 'cat /root/child-file')).stdout, 'only-here\n');
    for (const k of [parent, ...kids.slice(1)]) assert.equal((await exec(k, 'test -e /root/child-file; echo $?')).stdout, '1\n');

    // Each child knows who it is.
    for (const k of kids) assert.equal((await exec(k, 'hostname')).stdout.trim(), k.replace('_', '-'));

    const listed = await t.api('GET', `/v1/instances?parentId=${parent}`);
    assert.deepEqual(new Set(listed.body.data.map((i: any) => i.id)), new Set(kids));
    for (const k of kids) await t.api('POST', `/v1/instances/${k}/stop`);
    await t.api('POST', `/v1/instances/${parent}/stop`);
  });

  it('isolates instances from each other and from the host', async () => {
    const a = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body;
    const b = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body;
    await exec(b.id, 'nohup python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 & sleep 0.5');
    assert.equal((await exec(b.id, 'curl -s -m 2 -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/')).stdout, '200', 'the server answers locally');
    const toB = await exec(a.id, `curl -s -m 2 -o /dev/null -w "%{http_code}" http://${b.network.ip}:8080/; echo " $?"`);
    assert.notEqual(toB.stdout.split(' ')[0], '200', 'instance A cannot reach instance B');
    const port = new URL(t.url).port;
    const hostIp = a.network.ip.replace(/\.(\d+)$/, (_: string, d: string) => `.${Number(d) - 1}`);
    const toHost = await exec(a.id, `curl -s -m 2 -o /dev/null -w "%{http_code}" http://${hostIp}:${port}/v1/health; echo " $?"`);
    assert.notEqual(toHost.stdout.split(' ')[0], '200', 'instance A cannot reach the engine through its gateway');
    await t.api('POST', `/v1/instances/${a.id}/stop`);
    await t.api('POST', `/v1/instances/${b.id}/stop`);
  });

  it('keeps the agent answering across 50 chained restores into new namespaces', async () => {
    let current = (await t.api('POST', '/v1/instances', { snapshotId: snapId })).body;
    await exec(current.id, 'echo 0 > /root/generation');
    const ips = new Set<string>([current.network.ip]);
    for (let gen = 1; gen <= 50; gen++) {
      const res = await t.api('POST', `/v1/instances/${current.id}/branch`, { count: 1 });
      assert.equal(res.status, 201, `generation ${gen}: ${JSON.stringify(res.body)}`);
      const child = res.body.instances[0];
      const r = await exec(child.id, 'n=$(($(cat /root/generation)+1)); echo $n > /root/generation; echo $n; hostname');
      assert.equal(r.stdout, `${gen}\n${child.id.replace('_', '-')}\n`);
      ips.add(child.network.ip);
      await t.api('DELETE', `/v1/instances/${current.id}`);
      // The snapshot of the previous generation is no longer needed.
      current = child;
    }
    assert.ok(ips.size >= 2, 'restores landed in fresh namespaces with fresh addresses');
    await t.api('POST', `/v1/instances/${current.id}/stop`);
  });
});
