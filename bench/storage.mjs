// Disk for successive branches of a big parent, with and without the deduplicated image store
// (docs/storage.md), and what it costs a restore. One engine per mode, in the same run:
//   whole   FAAS_CACHE_DEDUPLICATION=false: every checkpoint kept as whole files (the engine before the store);
//   dedup   the store, FAAS_CACHE_SIZE=0: every materialized copy evicted once stored (the worst case
//           for restores, the best for disk).
// The parent holds PARENT_MB of written (random) memory; then BRANCHES times: it writes another
// CHANGE_MB, is live-branched (N=1, the child stopped at once). Disk is `du` of the state dir's
// snapshots/ and store/ once every image is stored. Restores (p50/p95 of REPS): a start from the
// last branch point while its files are whole, and (dedup) while they must be assembled first.
// Usage: node bench/storage.mjs [PARENT_MB=1024] [BRANCHES=10] [CHANGE_MB=10] [REPS=3]
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, now, settle, startEngine, stats } from './lib.mjs';

const [PARENT_MB = 1024, BRANCHES = 10, CHANGE_MB = 10, REPS = 3] = process.argv.slice(2).map(Number);
const SUBNET = process.env.FAAS_TEST_SUBNET ?? process.env.FAAS_BENCH_SUBNET ?? '10.240.0.0/16';
const MiB = 1024 * 1024;

const du = (dir) => Number(execFileSync('du', ['-sB1', dir]).toString().split('\t')[0]);

async function hold(e, inst, name, mb) {
  await e.api('POST', `/v1/instances/${inst}/processes`, {
    command: `python3 -c "import os,time; b=os.urandom(${mb}<<20); open('/tmp/${name}','w').write('held'); time.sleep(10**6)"`,
  });
  for (;;) {
    const r = await e.api('POST', `/v1/instances/${inst}/exec`, { command: `cat /tmp/${name} 2>/dev/null || true` });
    if (r.body.stdout === 'held') return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function until(e, id, want) {
  for (;;) {
    const s = (await e.api('GET', `/v1/snapshots/${id}`)).body;
    if (want(s.storage)) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function startStop(e, snapshotId) {
  await settle();
  const t0 = now();
  const inst = (await e.api('POST', '/v1/instances', { snapshotId })).body;
  await e.api('POST', `/v1/instances/${inst.id}/exec`, { command: 'true' });
  const ms = now() - t0;
  await e.api('POST', `/v1/instances/${inst.id}/stop`);
  return ms;
}

async function run(mode) {
  const env = mode === 'whole'
    ? { FAAS_CACHE_DEDUPLICATION: 'false' }
    : { FAAS_CACHE_SIZE: '0' };
  const e = await startEngine({
    ...env, FAAS_STATE_DIR: mkdtempSync('/tmp/faas-test-storage-bench-'), FAAS_SUBNET: SUBNET,
    FAAS_NET_TAG: `t${mode.slice(0, 1)}${process.pid.toString(36).slice(-3)}`, FAAS_WARM_POOL: '0',
  });
  try {
    const root = (await e.api('POST', '/v1/snapshots', { memory: PARENT_MB * 2 + 1024 })).body;
    const parent = (await e.api('POST', '/v1/instances', { snapshotId: root.id })).body.id;
    await hold(e, parent, 'parent', PARENT_MB);
    const points = [];
    const branchMs = [];
    for (let i = 0; i < BRANCHES; i++) {
      await hold(e, parent, `change${i}`, CHANGE_MB);
      const t0 = now();
      const b = (await e.api('POST', `/v1/instances/${parent}/branch`, { count: 1 })).body;
      branchMs.push(now() - t0);
      points.push(b.snapshot);
      await e.api('POST', `/v1/instances/${b.instances[0].id}/stop`);
    }
    const want = mode === 'whole' ? (s) => !s.deduplicated : (s) => s.deduplicated && !s.materialized;
    const tStore = now();
    for (const p of points) await until(e, p.id, want);
    const storeWait = now() - tStore;
    const disk = du(join(e.stateDir, 'snapshots')) + du(join(e.stateDir, 'store'));
    const last = points[points.length - 1];
    const lastInfo = (await e.api('GET', `/v1/snapshots/${last.id}`)).body;
    const restores = { whole: [], assembled: [] };
    for (let r = 0; r < REPS; r++) {
      if (mode === 'dedup') {
        // Evicted: this start assembles the image first.
        await until(e, last.id, (s) => !s.materialized);
        restores.assembled.push(await startStop(e, last.id));
      }
      // Whole files in place (dedup: the copy the previous start assembled, before its eviction).
      restores.whole.push(await startStop(e, last.id));
    }
    await e.api('POST', `/v1/instances/${parent}/stop`);
    return { mode, disk, imageBytes: points.reduce((n, p) => n + p.size, 0), branch: stats(branchMs), storeWait, last: lastInfo.storage, restores };
  } finally {
    await e.close();
  }
}

const results = [];
for (const mode of ['whole', 'dedup']) results.push(await run(mode));
console.log(`\n${BRANCHES} successive branches of a ${PARENT_MB} MB parent, each after writing ${CHANGE_MB} MB more`);
console.log('| mode | images written | disk used | branch p50 / p95 | restore, whole files p50 / p95 | restore, assembled first p50 / p95 |');
console.log('|---|---|---|---|---|---|');
for (const r of results) {
  const w = stats(r.restores.whole);
  const a = r.restores.assembled.length ? stats(r.restores.assembled) : null;
  console.log(`| ${r.mode} | ${(r.imageBytes / MiB).toFixed(0)} MiB | ${(r.disk / MiB).toFixed(0)} MiB | ${fmt(r.branch.p50)} / ${fmt(r.branch.p95)} ms | ${fmt(w.p50)} / ${fmt(w.p95)} ms | ${a ? `${fmt(a.p50)} / ${fmt(a.p95)} ms` : '—'} |`);
}
const d = results.find((r) => r.mode === 'dedup');
console.log(`\ndedup: last branch point shared ${(d.last.sharedBytes / MiB).toFixed(0)} MiB, exclusive ${(d.last.exclusiveBytes / MiB).toFixed(1)} MiB; all ${BRANCHES} stored ${(d.storeWait / 1000).toFixed(1)} s after the last branch`);
