// SIGKILL at a random moment of an 8-way branch (plus a plain start), several rounds, then start
// the engine again at once. The engine runs under a parent that never reaps it, so each killed
// engine stays a zombie while the next one starts: the case where a pid-liveness check refused
// 11 starts of 12. After every restart:
//  - the engine comes up (the lock died with the old process, zombie or not);
//  - every live record has its sandbox (running or paused);
//  - a branch works (children answer an exec with the parent's data);
//  - and after a graceful stop, nothing on the host lacks a record: no sandbox, netns, veth,
//    cgroup, bundle, runsc state/lock file or snapshot directory beyond what the live records and
//    snapshots own.
// The randomness is seeded; the seed is printed (FAAS_KILL_SEED=<n> repeats a run), and
// FAAS_KILL_ROUNDS sets the number of rounds (default 5).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EngineProcess, expectedFor, freePort, processState, RUNSC } from './engine-process.js';
import { purge } from './harness.js';

const ROUNDS = Number(process.env.FAAS_KILL_ROUNDS ?? 5);
const SEED = Number(process.env.FAAS_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so a failing round can be replayed exactly. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe(`engine SIGKILLed at random points of a branch (seed ${SEED})`, () => {
  const stateDir = mkdtempSync('/tmp/faas-test-killrounds-');
  const engine = new EngineProcess(stateDir, 0, `k${process.pid.toString(36).slice(-3)}r`, {}, true);
  const zombies: EngineProcess[] = [];

  after(async () => {
    try {
      if (!engine.running()) await engine.start().catch(() => undefined);
      const live = await engine.api('GET', '/v1/instances?limit=200').catch(() => null);
      for (const i of live?.body?.data ?? []) if (i.state !== 'stopped') await engine.api('POST', `/v1/instances/${i.id}/stop`).catch(() => undefined);
      await engine.stop().catch(() => undefined);
    } finally {
      for (const z of [...zombies, engine]) z.release();
      for (const s of engine.allSandboxes()) execFileSync(RUNSC, [`--root=${join(stateDir, 'runsc')}`, 'delete', '--force', s], { stdio: 'ignore' });
      for (const ns of engine.namespaces()) execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      // The engine's parent cgroups (a sandbox's cgroup can linger a moment after runsc delete).
      for (const ctl of readdirSync('/sys/fs/cgroup')) {
        const parent = join('/sys/fs/cgroup', ctl, `faas-${engine.tag}`);
        for (const dir of [...engine.inventory().cgroups.map((c) => join(parent, c)), parent]) {
          try {
            rmdirSync(dir);
          } catch {
            /* absent, or a combined controller already removed */
          }
        }
      }
      await engine.clean();
      purge(stateDir);
    }
  });

  it(`comes back after every kill, with host and records in agreement (${ROUNDS} rounds)`, async () => {
    console.log(`kill-restart: seed ${SEED} (repeat with FAAS_KILL_SEED=${SEED}), ${ROUNDS} rounds`);
    const random = rng(SEED);
    engine.port = await freePort();
    await engine.start();
    const snap = (await engine.api('POST', '/v1/snapshots', {})).body;
    assert.ok(snap.id, `snapshot created: ${JSON.stringify(snap)}`);
    const parent = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
    assert.equal((await engine.api('POST', `/v1/instances/${parent.id}/exec`, { command: 'echo precious > /root/data' })).status, 200);

    // One unkilled branch first: its duration bounds the random kill delays (the kill lands
    // anywhere from before the request is read to after the answer).
    const t0 = Date.now();
    const warm = await engine.api('POST', `/v1/instances/${parent.id}/branch`, { count: 8 });
    assert.equal(warm.status, 201, JSON.stringify(warm.body));
    const branchMs = Date.now() - t0;
    await stopAllBut(engine, [parent.id]);
    await deleteBranchImages(engine, parent.id);

    for (let round = 1; round <= ROUNDS; round++) {
      const delay = Math.floor(random() * branchMs * 1.2);
      const branching = engine.api('POST', `/v1/instances/${parent.id}/branch`, { count: 8 }).catch(() => null);
      const starting = engine.api('POST', '/v1/instances', { snapshotId: snap.id }).catch(() => null);
      await new Promise((r) => setTimeout(r, delay));
      const killed = engine.pid;
      engine.kill9();
      await Promise.all([branching, starting]);
      zombies.push(Object.assign(Object.create(EngineProcess.prototype), engine));
      const context = `round ${round}, kill after ${delay} ms of a ~${branchMs} ms branch (seed ${SEED})`;
      // Connections drop when the kernel closes its files; the rest of exit() may take a moment.
      for (let i = 0; i < 500 && processState(killed) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(processState(killed), 'Z', `${context}: the killed engine is an unreaped zombie (the case under test)`);

      await engine.start(); // throws with the engine's stderr if it does not come up
      const { instances } = engine.records();
      const running = new Set(engine.sandboxes());
      for (const i of instances.filter((x) => x.state === 'ready' || x.state === 'paused')) {
        assert.ok(running.has(i.id), `${context}: live record ${i.id} (${i.state}) has its sandbox`);
      }
      assert.deepEqual(instances.filter((x) => x.state === 'pending' || x.state === 'stopping').map((x) => x.id), [], `${context}: no start or stop left half-done`);

      const kids = await engine.api('POST', `/v1/instances/${parent.id}/branch`, { count: 2 });
      assert.equal(kids.status, 201, `${context}: a branch after the restart: ${JSON.stringify(kids.body)}`);
      for (const k of kids.body.instances) {
        const r = await engine.api('POST', `/v1/instances/${k.id}/exec`, { command: 'cat /root/data' });
        assert.equal(r.body.stdout, 'precious\n', `${context}: child ${k.id} has the parent's data`);
      }
      await stopAllBut(engine, [parent.id]);
      await deleteBranchImages(engine, parent.id);

      // Graceful stop drains the engine's own pools (spare namespaces, pre-created sandboxes);
      // whatever else is on the host must then belong to a record.
      await engine.stop();
      const records = engine.records();
      const live = records.instances.filter((x) => x.state === 'ready' || x.state === 'paused');
      const want = expectedFor(live);
      const host = engine.inventory();
      assert.deepEqual(sorted(host.sandboxes.map((s) => s.id)), want.ids, `${context}: sandboxes = live records`);
      assert.deepEqual(sorted(host.netns), want.netns, `${context}: network namespaces = those of live records`);
      assert.deepEqual(sorted(host.veths), want.veths, `${context}: veths = those of live records`);
      assert.deepEqual(sorted(host.cgroups), want.ids, `${context}: cgroups = live records`);
      assert.deepEqual(sorted(host.bundles), want.ids, `${context}: bundles = live records`);
      assert.deepEqual(sorted(host.runscFiles), want.ids, `${context}: runsc state and lock files = live records`);
      assert.deepEqual(sorted(host.snapshotDirs), sorted(records.snapshots.map((s) => s.id)), `${context}: snapshot directories = snapshot records`);
      await engine.start();
    }
  });
});

/** Stops every instance but `keep` (bounded memory over the rounds). */
async function stopAllBut(engine: EngineProcess, keep: string[]): Promise<void> {
  const list = (await engine.api('GET', '/v1/instances?limit=200')).body.data as { id: string; state: string }[];
  await Promise.all(
    list
      .filter((i) => !keep.includes(i.id) && i.state !== 'stopped')
      .map(async (i) => {
        const r = await engine.api('POST', `/v1/instances/${i.id}/stop`);
        assert.equal(r.status, 200, `stop ${i.id}: ${JSON.stringify(r.body)}`);
      }),
  );
}

/** Deletes the branch images of `parent` (they add up on disk over the rounds). */
async function deleteBranchImages(engine: EngineProcess, parent: string): Promise<void> {
  const list = (await engine.api('GET', '/v1/snapshots?limit=200')).body.data as { id: string; instanceId: string | null }[];
  for (const s of list.filter((x) => x.instanceId === parent)) {
    const r = await engine.api('DELETE', `/v1/snapshots/${s.id}?force=true`);
    assert.ok(r.status === 200 || r.status === 204 || r.status === 404, `delete ${s.id}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}
