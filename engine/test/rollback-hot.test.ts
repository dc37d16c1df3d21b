// Hot rollback standbys (services/rollback-hot.ts) against real sandboxes: the head checkpoint is
// restored ahead and paused; a rollback to it resumes that sandbox behind the instance
// (server-timing `standby` 2). A running counter comes back at the checkpoint's value and counts on;
// a newer checkpoint replaces the hot one; the snapshot's files deleted or the snapshot deleted
// while hot; steps=2 takes the other path; a hot standby killed from outside falls back; the
// restored-but-not-yet-paused processes sit in a twin namespace from which nothing is reachable;
// stop/delete and an engine restart leave no sandbox, namespace, bundle or cgroup behind; and
// FAAS_ROLLBACK_HOT_MB=0 keeps the empty-standby path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, readFileSync, renameSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { purge, startEngine, type TestEngine } from './harness.js';
import { rollbackHelpers } from './rollback-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The counter of bench/rollback.mjs: its value lives in the shell's memory, written out every 0.1 s.
const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done';


describe('rollback via a hot standby (the head restored ahead and paused)', () => {
  let t: TestEngine;
  let stateDir: string;
  let root: string;
  const h = rollbackHelpers(() => t, () => root);
  const { exec, start, checkpoint, hotReady, sandboxes, twinsOf, pidsIn, cgroupExists, gone } = h;
  const rollback = async (id: string, steps = 1) => {
    const r = await h.rollback(id, steps);
    assert.ok(r.standby !== null, 'server-timing names the standby');
    return { inst: r.inst, standby: r.standby };
  };

  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-hot-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '2', FAAS_ROLLBACK_HOT_MB: '2048' } });
    const s = await t.api('POST', '/v1/snapshots', {});
    assert.equal(s.status, 201, JSON.stringify(s.body));
    root = s.body.id;
  });
  after(async () => {
    await t?.close();
    purge(stateDir);
  });

  it('a running counter comes back at the checkpoint\'s value and counts on; files, id and address kept; a newer checkpoint replaces the hot one; steps=2 still lands right', async () => {
    const inst = await start();
    const count = async () => Number((await exec(inst.id, 'cat /tmp/count 2>/dev/null || echo 0')).stdout);
    const until = async (ok: (n: number) => boolean) => {
      for (;;) {
        const n = await count();
        if (ok(n)) return n;
        await sleep(100);
      }
    };
    assert.equal((await t.api('POST', `/v1/instances/${inst.id}/processes`, { command: COUNTER })).status, 201);
    await exec(inst.id, 'echo v1 > /root/f');
    await until((n) => n >= 3);
    const ck1 = await checkpoint(inst.id);
    const atCheckpoint = await count();
    const hot = await hotReady(inst.id, ck1);
    // Paused: the standby's cgroup has the instance's limits already.
    const limit = Number(readFileSync(`/sys/fs/cgroup/memory/faas-${t.config.netTag}/${hot}/memory.limit_in_bytes`, 'utf8'));
    assert.equal(limit, t.engine.services.instances.get(inst.id).resources.memory * 1024 * 1024);
    await exec(inst.id, 'echo v2 > /root/f');
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v2\n', 'the live sandbox, not the standby, answers at the address');
    const later = await until((n) => n >= atCheckpoint + 15);

    const r = await rollback(inst.id);
    assert.equal(r.standby, 2, 'server-timing says hot');
    assert.equal(r.inst.id, inst.id);
    assert.equal(r.inst.ip, inst.ip, 'the address is kept');
    assert.equal(t.engine.services.instances.sandboxOf(inst.id), hot, 'the hot standby now backs the instance');
    const back = await count();
    assert.ok(back < later, `the counter went back (${back} < ${later})`);
    await until((n) => n > back); // counting on from the checkpoint's value
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v1\n', 'the checkpoint\'s files');

    // A second checkpoint: the hot standby of the first is stale once the new head is made hot.
    await exec(inst.id, 'echo v3 > /root/f');
    const ck2 = await checkpoint(inst.id);
    const hot2 = await hotReady(inst.id, ck2);
    assert.notEqual(hot2, hot);
    assert.equal([...t.engine.services.hot.ids()].filter((s) => s !== hot2 && !sandboxes().some((x) => x.id === s)).length, 0);
    await exec(inst.id, 'echo v4 > /root/f');
    const r2 = await rollback(inst.id);
    assert.equal(r2.standby, 2);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v3\n', 'the NEW head');

    // Two steps back: ck1, not the hot head (which stays for ck2's next use, then is stale).
    await hotReady(inst.id, ck2);
    const r3 = await rollback(inst.id, 2);
    assert.notEqual(r3.standby, 2, 'another target never takes the hot standby');
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'v1\n');
    assert.equal(r3.inst.ip, inst.ip);
    // The head is ck1 now: it is made hot again (and ck2's dropped).
    await hotReady(inst.id, ck1);
    const netns = inst.netns;
    const ids = [...t.engine.services.hot.ids(), t.engine.services.instances.sandboxOf(inst.id)];
    assert.equal((await t.api('DELETE', `/v1/instances/${inst.id}`)).status, 204);
    await gone(ids, netns);
    assert.equal(t.engine.services.hot.stats().ready, 0);
  });

  it('restored processes wait in a twin namespace nothing leaves; the hot sandbox holds no file of the image', async () => {
    const inst = await start();
    const hostIp = inst.ip.replace(/\d+$/, (d) => String(Number(d) - 1));
    let reached = 0;
    const server = createServer((c) => {
      reached++;
      c.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as AddressInfo).port;
    try {
      // A process that sends all the time (UDP to the gateway, TCP to a host server): it runs in
      // the hot standby for the few ms between its restore and its pause.
      const prober = `python3 -c "
import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    try:
        u.sendto(b'x', ('${hostIp}', ${port}))
        socket.create_connection(('${hostIp}', ${port}), timeout=0.01)
    except OSError:
        pass
    time.sleep(0.001)
"`;
      assert.equal((await t.api('POST', `/v1/instances/${inst.id}/processes`, { command: prober })).status, 201);
      await sleep(300);
      const ck = await checkpoint(inst.id);
      const hot = await hotReady(inst.id, ck);
      const twin = t.engine.services.hot.of(inst.id)!.twin;
      // Nothing left the twin namespace: its host end is down and took in no frame.
      const stat = (f: string) => readFileSync(`/sys/class/net/${twin.hostIf}/${f}`, 'utf8').trim();
      assert.equal(stat('operstate'), 'down');
      assert.equal(Number(stat('statistics/rx_packets')), 0, 'no frame from the restored processes reached the host');
      assert.equal(spawnSync('ip', ['-o', '-4', 'addr', 'show', 'dev', twin.hostIf], { encoding: 'utf8' }).stdout, '', 'and it has no address');
      // A namespace made as a twin is, probed with the host's own tools before any sandbox takes its
      // address: neither the gateway's host server nor the engine's API is reachable from it.
      const network = (t.engine.services.standbys as unknown as { d: { network: { twin(n: string): Promise<{ netns: string; hostIf: string }>; release(n: string): Promise<void> } } }).d.network;
      const probe = await network.twin(inst.netns);
      try {
        for (const p of [port, Number(new URL(t.url).port)]) {
          const r = spawnSync('ip', ['netns', 'exec', probe.netns, 'python3', '-c', `import socket; socket.create_connection(('${hostIp}', ${p}), timeout=2)`], { encoding: 'utf8' });
          assert.notEqual(r.status, 0, `the twin reached ${hostIp}:${p}`);
        }
        spawnSync('ip', ['netns', 'exec', probe.netns, 'python3', '-c', `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x', ('${hostIp}', ${port})) for _ in range(10)]`]);
        assert.equal(Number(readFileSync(`/sys/class/net/${probe.hostIf}/statistics/rx_packets`, 'utf8')), 0);
      } finally {
        await network.release(probe.netns);
      }
      assert.equal(reached, 0, 'the host server saw no connection from a twin');
      // Eager restore: no process in the hot standby's namespace has a file of the image open.
      const imageDir = join(stateDir, 'snapshots', ck);
      const pids = pidsIn(twin.netns);
      assert.ok(pids.length > 0);
      for (const pid of pids) {
        const open = readdirSync(`/proc/${pid}/fd`).map((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            return '';
          }
        });
        assert.deepEqual(open.filter((f) => f.startsWith(imageDir)), [], `pid ${pid} holds no image file`);
      }
      assert.ok(cgroupExists(hot));
      // Swapped in, the same prober reaches the host's interface again (the twin was the only wall).
      const r = await rollback(inst.id);
      assert.equal(r.standby, 2);
    } finally {
      server.close();
      await t.api('DELETE', `/v1/instances/${inst.id}`);
    }
  });

  it('from the attacker\'s side: another key, anonymous callers, root in another instance and the snapshot\'s key get nothing of a hot standby', async () => {
    const inst = await start();
    const other = await start();
    const ck = await checkpoint(inst.id);
    const hot = await hotReady(inst.id, ck);
    const twin = t.engine.services.hot.of(inst.id)!.twin;
    // Another API key and anonymous callers: the instance does not exist for them; nothing is touched.
    const key = (await t.api('POST', '/v1/keys', { name: 'hot-other' })).body;
    const as = { headers: { authorization: `Bearer ${key.secret}` } };
    for (const [m, path, body] of [['POST', 'rollback', { steps: 1 }], ['POST', 'restart', { fromLatestCheckpoint: true }], ['GET', 'timeline', undefined]] as const) {
      const r = await t.api(m, `/v1/instances/${inst.id}/${path}`, body, as);
      assert.equal(r.status, 404, `${m} ${path}: ${JSON.stringify(r.body)}`);
      const anon = await fetch(`${t.url}/v1/instances/${inst.id}/${path}`, { method: m, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      assert.equal(anon.status, 401);
    }
    assert.equal(t.engine.services.hot.of(inst.id)?.sandboxId, hot, 'the hot standby is untouched');
    // Root in another instance aims at the instance's address (the agent's port and others): the
    // live sandbox's firewall answers or not, but no frame ever enters the twin (its host end is down).
    await exec(other.id, `for p in 7070 22 80 8080; do python3 -c "import socket; socket.create_connection(('${inst.ip}', $p), timeout=1)" 2>/dev/null; done; ping -c 2 -W 1 ${inst.ip} >/dev/null 2>&1; true`);
    const tx = Number(readFileSync(`/sys/class/net/${twin.hostIf}/statistics/tx_packets`, 'utf8'));
    assert.equal(tx, 0, 'nothing was sent into the hot standby\'s namespace');
    // After the hot rollback the restored agent holds a fresh key: the snapshot's (shared by every
    // restore of it) opens nothing, and no key is in the API's answers.
    const snapKey = t.engine.services.snapshots.agentKeyOf(ck);
    const r = await rollback(inst.id);
    assert.equal(r.standby, 2);
    const health = await fetch(`http://${inst.ip}:7070/v1/health`, { headers: { authorization: `Bearer ${snapKey}` } }).then((x) => x.status, () => 0);
    assert.equal(health, 401, "the snapshot's key is refused by the swapped-in agent");
    const seen = JSON.stringify([(await t.api('GET', `/v1/instances/${inst.id}`)).body, (await t.api('GET', `/v1/instances/${inst.id}/timeline`)).body]);
    assert.ok(!seen.includes(snapKey!));
    await t.api('DELETE', `/v1/instances/${inst.id}`);
    await t.api('DELETE', `/v1/instances/${other.id}`);
  });

  it('a rollback that arrives while the hot restore of its target is under way waits for it (no second restore)', async () => {
    const inst = await start();
    await exec(inst.id, 'echo mid > /root/f');
    const ck = await checkpoint(inst.id);
    const making = (t.engine.services.hot as unknown as { making: Map<string, { snapshotId: string }> }).making;
    while (making.get(inst.id)?.snapshotId !== ck) await sleep(5);
    await exec(inst.id, 'echo after > /root/f').catch(() => undefined);
    const r = await rollback(inst.id);
    assert.equal(r.standby, 2, 'the restore under way was awaited and its standby swapped in');
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'mid\n');
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });

  it('the image files removed, or the snapshot deleted, while hot: rollbacks still land right', async () => {
    const inst = await start();
    await exec(inst.id, 'echo a > /root/f');
    const ck1 = await checkpoint(inst.id);
    await hotReady(inst.id, ck1);
    // The image cache evicted under it (as the image store does): the hot sandbox needs none of it.
    // (Moved aside, and back after it: the next rollbacks below restore ck1 cold from its files.)
    const files = join(stateDir, 'snapshots', ck1);
    renameSync(files, `${files}.away`);
    await exec(inst.id, 'echo b > /root/f');
    const r = await rollback(inst.id);
    renameSync(`${files}.away`, files);
    assert.equal(r.standby, 2);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'a\n');

    // A newer head deleted while hot: its standby goes with it, and steps=1 is the previous one.
    await exec(inst.id, 'echo c > /root/f');
    const ck2 = await checkpoint(inst.id);
    const hot2 = await hotReady(inst.id, ck2);
    assert.equal((await t.api('DELETE', `/v1/snapshots/${ck2}`)).status, 204);
    for (let i = 0; i < 300 && sandboxes().some((s) => s.id === hot2); i++) await sleep(100);
    assert.ok(!sandboxes().some((s) => s.id === hot2), 'the hot standby of a deleted snapshot is dropped');
    await exec(inst.id, 'echo d > /root/f');
    const back = await rollback(inst.id);
    assert.notEqual(back.standby, 2);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'a\n');
    assert.equal(back.inst.ip, inst.ip);
    await t.api('DELETE', `/v1/instances/${inst.id}`);
  });

  it('a hot standby killed from outside: the rollback falls back and still succeeds', async () => {
    const inst = await start();
    await exec(inst.id, 'echo one > /root/f');
    const ck = await checkpoint(inst.id);
    const hot = await hotReady(inst.id, ck);
    process.kill(sandboxes().find((s) => s.id === hot)!.pid, 'SIGKILL');
    await exec(inst.id, 'echo two > /root/f');
    const r = await rollback(inst.id);
    assert.notEqual(r.standby, 2);
    assert.equal(r.inst.ip, inst.ip);
    assert.notEqual(t.engine.services.instances.sandboxOf(inst.id), hot);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'one\n');
    const netns = inst.netns;
    await t.api('DELETE', `/v1/instances/${inst.id}`);
    await gone([hot], netns);
  });

  it('stop drops the hot standby; an engine restart leaves none (sandbox, twin namespace, bundle, cgroup)', async () => {
    const a = await start();
    const ckA = await checkpoint(a.id);
    const hotA = await hotReady(a.id, ckA);
    assert.equal((await t.api('POST', `/v1/instances/${a.id}/stop`)).status, 200);
    await gone([hotA], a.netns);

    const b = await start();
    await exec(b.id, 'echo kept > /root/f');
    const ckB = await checkpoint(b.id);
    const hotB = await hotReady(b.id, ckB);
    // A stop right before the engine's shutdown: the drop of its hot standby, begun in the
    // background, is finished by the shutdown (a SIGTERMed engine once left the twin behind).
    const c = await start();
    const ckC = await checkpoint(c.id);
    const hotC = await hotReady(c.id, ckC);
    assert.equal((await t.api('POST', `/v1/instances/${c.id}/stop`)).status, 200);
    const tag = t.config.netTag;
    await t.engine.shutdown(); // instances keep running; the hot standby is an orphan now
    assert.deepEqual(twinsOf(c.netns), [], "the stopped instance's twins are gone when shutdown returns");
    assert.ok(!sandboxes().some((s) => s.id === hotC));
    // Its sandbox is still there until the next engine's reconciler runs.
    t = await startEngine({ stateDir, env: { FAAS_NET_TAG: tag, FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '2', FAAS_ROLLBACK_HOT_MB: '2048' } });
    await gone([hotB], b.netns);
    await exec(b.id, 'echo later > /root/f');
    const r = await rollback(b.id);
    assert.equal(r.inst.ip, b.ip);
    assert.equal((await exec(b.id, 'cat /root/f')).stdout, 'kept\n');
    for (const i of [a, b, c]) await t.api('DELETE', `/v1/instances/${i.id}`);
  });
});

describe('rollback with hot standbys off (FAAS_ROLLBACK_HOT_MB=0)', () => {
  let t: TestEngine;
  let stateDir: string;
  let root: string;
  const { exec, start, checkpoint, rollback } = rollbackHelpers(() => t, () => root);
  before(async () => {
    stateDir = mkdtempSync('/tmp/faas-test-hotoff-');
    t = await startEngine({ stateDir, env: { FAAS_WARM_POOL: '1', FAAS_ROLLBACK_STANDBYS: '2', FAAS_ROLLBACK_HOT_MB: '0' } });
    root = (await t.api('POST', '/v1/snapshots', {})).body.id;
  });
  after(async () => {
    await t?.close();
    purge(stateDir);
  });

  it('takes the empty standby (server-timing 1) and holds nothing hot', async () => {
    const inst = await start();
    await exec(inst.id, 'echo x > /root/f');
    await checkpoint(inst.id);
    while (t.engine.services.standbys.stats().ready === 0) await sleep(100);
    await exec(inst.id, 'echo y > /root/f');
    const r = await rollback(inst.id);
    assert.equal(r.standby, 1);
    assert.equal(r.inst.ip, inst.ip);
    assert.equal(t.engine.services.hot.stats().ready, 0);
    assert.equal((await exec(inst.id, 'cat /root/f')).stdout, 'x\n');
  });
});
