#!/usr/bin/env node
// The default image's recipe against its predecessor, side by side in one run (issue 16 added
// python3-venv, pip, build-essential and Node.js): its size on disk, and what a bigger root
// filesystem could slow down — a boot to a first snapshot, a start from a snapshot, and a live
// branch of a tiny parent (a fresh default instance; every child answers an exec).
// One engine per image, in rounds old, new, new, old (one /16 for both: one engine at a time), so
// load on a shared machine falls on both alike.
// Usage: node bench/default-image.mjs OLD_IMAGE_DIR NEW_IMAGE_DIR [--reps N]
//   e.g. node bench/default-image.mjs /var/cache/faas/images/debian-bookworm-r3 /var/cache/faas/images/debian-bookworm-r4
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, fmt, now, settle, startEngine, stats } from './lib.mjs';

const [oldDir, newDir] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!oldDir || !newDir) {
  console.error('usage: node bench/default-image.mjs OLD_IMAGE_DIR NEW_IMAGE_DIR [--reps N]');
  process.exit(2);
}
const reps = process.argv.includes('--reps') ? Number(process.argv[process.argv.indexOf('--reps') + 1]) : 8;
const subnet = process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16';
const sides = [oldDir, newDir].map((dir) => ({
  dir,
  mb: Number(execFileSync('du', ['-sm', join(dir, 'rootfs')], { encoding: 'utf8' }).split('\t')[0]),
  t: { boot: [], start: [], branch1: [], branch4: [] },
}));

async function branch(engine, parent, count) {
  const t0 = now();
  const res = await engine.api('POST', `/v1/instances/${parent}/branch`, { count });
  await Promise.all(res.body.instances.map((c) => engine.api('POST', `/v1/instances/${c.id}/exec`, { argv: ['true'] })));
  const ms = now() - t0;
  await Promise.all(res.body.instances.map((c) => engine.api('DELETE', `/v1/instances/${c.id}`)));
  return ms;
}

async function round(side, count) {
  const env = { FAAS_DEFAULT_IMAGE: side.dir, FAAS_STATE_DIR: mkdtempSync('/tmp/faas-test-bench-image-'), FAAS_SUBNET: subnet, FAAS_NET_TAG: 'tbimg', FAAS_WARM_POOL: '2', FAAS_SSH_PORT: '0' };
  const engine = await startEngine(env);
  const { t } = side;
  try {
    for (let rep = 0; rep < count; rep++) {
      await settle();
      let t0 = now();
      // Distinct metadata makes every boot a new root (the step cache would answer a repeat).
      const snap = (await engine.api('POST', '/v1/snapshots', { metadata: { rep: String(rep) } })).body;
      t.boot.push(now() - t0);
      await settle();
      t0 = now();
      const parent = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
      t.start.push(now() - t0);
      await settle();
      t.branch1.push(await branch(engine, parent.id, 1));
      await settle();
      t.branch4.push(await branch(engine, parent.id, 4));
      await engine.api('DELETE', `/v1/instances/${parent.id}`);
    }
  } finally {
    await engine.close();
    // The engine's firewall chains and namespaces (by tag): what `faas engine stop --clean` removes.
    const dir = mkdtempSync('/tmp/faas-test-bench-image-');
    execFileSync(process.execPath, [join(REPO, 'engine/dist/src/main.js'), 'clean'], { env: { ...process.env, ...env, FAAS_STATE_DIR: dir }, stdio: 'ignore' });
    try { execFileSync('umount', ['-l', join(dir, 'runsc', 'null-netns')], { stdio: 'ignore' }); } catch {}
    rmSync(dir, { recursive: true, force: true });
  }
}

const half = Math.ceil(reps / 2);
for (const side of [sides[0], sides[1], sides[1], sides[0]]) await round(side, half);
{
  const [o, n] = sides;
  console.log(`default image, old vs new (${2 * half} reps each, rounds old, new, new, old; p50 / p95 ms)`);
  console.log(`${'rootfs size (MB)'.padEnd(40)} ${String(o.mb).padStart(16)}   ${String(n.mb).padStart(16)}`);
  for (const [key, label] of [['boot', 'boot to first snapshot'], ['start', 'start from snapshot'], ['branch1', 'live branch N=1 of a tiny parent'], ['branch4', 'live branch N=4 of a tiny parent']]) {
    const so = stats(o.t[key]), sn = stats(n.t[key]);
    console.log(`${label.padEnd(40)} ${`${fmt(so.p50)} / ${fmt(so.p95)}`.padStart(16)}   ${`${fmt(sn.p50)} / ${fmt(sn.p95)}`.padStart(16)}`);
  }
  console.log(`old: ${o.dir}\nnew: ${n.dir}`);
}
