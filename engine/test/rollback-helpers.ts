// Helpers shared by the rollback tests (rollback-swap.test.ts, rollback-hot.test.ts): API calls that
// assert their status, and what runsc, `ip netns` and the cgroups say about an engine's sandboxes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sh, type TestEngine } from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function rollbackHelpers(get: () => TestEngine, root: () => string) {
  const exec = async (id: string, command: string) => {
    const r = await get().api('POST', `/v1/instances/${id}/exec`, sh(command));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { exitCode: number; stdout: string };
  };
  const start = async () => {
    const r = await get().api('POST', '/v1/instances', { snapshotId: root() });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return get().engine.services.instances.get(r.body.id) as { id: string; ip: string; netns: string };
  };
  const checkpoint = async (id: string) => {
    const r = await get().api('POST', `/v1/instances/${id}/snapshot`, {});
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as string;
  };
  /** Rolls back; returns the instance and server-timing's `standby` (2 hot, 1 empty made ahead, 0 on the path; null: not named). */
  const rollback = async (id: string, steps = 1) => {
    const r = await get().api('POST', `/v1/instances/${id}/rollback`, { steps });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const m = /standby;dur=(\d+)/.exec(r.headers.get('server-timing') ?? '');
    return { inst: get().engine.services.instances.get(r.body.id) as { id: string; ip: string; state: string }, standby: m ? Number(m[1]) : null };
  };
  /** Waits (no deadline but the test's) until `snapshotId` is held hot for the instance; its sandbox id. */
  const hotReady = async (id: string, snapshotId: string) => {
    for (;;) {
      const h = get().engine.services.hot.of(id);
      if (h?.snapshotId === snapshotId) return h.sandboxId;
      await sleep(100);
    }
  };
  const sandboxes = () => {
    const r = spawnSync(get().config.runsc, [`--root=${join(get().config.stateDir, 'runsc')}`, 'list', '--format=json'], { encoding: 'utf8' });
    return (JSON.parse(r.stdout || '[]') ?? []) as { id: string; pid: number; status: string }[];
  };
  const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`faas-${get().config.netTag}-`));
  const twinsOf = (netns: string) => namespaces().filter((n) => new RegExp(`^${netns}r[0-9a-z]+$`).test(n));
  const pidsIn = (netns: string) => spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  const cgroupExists = (sandboxId: string) => existsSync(`/sys/fs/cgroup/memory/faas-${get().config.netTag}/${sandboxId}`);
  /** Until no sandbox, bundle or cgroup of these ids and no twin of `netns` is left. */
  const gone = async (ids: string[], netns: string) => {
    const bundles = join(get().config.stateDir, 'bundles');
    const left = () => [
      ...sandboxes().filter((s) => ids.includes(s.id)).map((s) => `sandbox ${s.id}`),
      ...ids.filter((s) => existsSync(join(bundles, s))).map((s) => `bundle ${s}`),
      ...ids.filter(cgroupExists).map((s) => `cgroup ${s}`),
      ...twinsOf(netns).map((n) => `namespace ${n}`),
    ];
    for (let i = 0; i < 300 && left().length; i++) await sleep(100);
    assert.deepEqual(left(), []);
  };
  return { exec, start, checkpoint, rollback, hotReady, sandboxes, namespaces, twinsOf, pidsIn, cgroupExists, gone };
}
