#!/usr/bin/env node
// faas benchmark: p50/p95 over repeated runs, with the bare runsc CLI doing the same fork in the
// same run as the floor. Usage: node bench/run.mjs [--quick] [--json out.json]
// Not a test: numbers on a shared 2-core machine are noisy; read them side by side.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { BareRunsc, RUNSC, collectProfile, fmt, now, startEngine, stats, timedBranch, waitWarm } from './lib.mjs';

const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const REPS = quick ? 5 : 12;
const Ns = (process.env.BENCH_N ?? (quick ? '1,4,8' : '1,4,8,32')).split(',').map(Number);
const results = { machine: machine(), date: new Date().toISOString(), reps: REPS, rows: [] };

function machine() {
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const runsc = execFileSync(RUNSC, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return { cpu: cpus()[0]?.model, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel, runsc, node: process.version };
}

function row(name, samples, floors = {}, unit = 'ms') {
  const s = stats(samples);
  const r = { name, unit, ...s, floors: {} };
  let extra = '';
  for (const [label, f] of Object.entries(floors)) {
    const fs = stats(f);
    r.floors[label] = { p50: fs.p50, p95: fs.p95, ratio: s.p50 / fs.p50 };
    extra += `   | ${label} p50 ${fmt(fs.p50)} p95 ${fmt(fs.p95)} → ${(s.p50 / fs.p50).toFixed(2)}×`;
  }
  results.rows.push(r);
  console.log(`${name.padEnd(44)} p50 ${fmt(s.p50).padStart(6)} ${unit}  p95 ${fmt(s.p95).padStart(6)} ${unit}  (n=${s.n})${extra}`);
}

const engine = await startEngine(process.env.BENCH_ENGINE_ENV ? JSON.parse(process.env.BENCH_ENGINE_ENV) : {});
const bare = new BareRunsc();
try {
  console.log(`faas bench — ${results.machine.cores} cores, ${results.machine.cpu}, kernel ${results.machine.kernel}, ${results.machine.runsc}`);
  const snap = (await engine.api('POST', '/v1/snapshots', {})).body;

  // Start from snapshot (a restore, not a boot), until the instance is ready.
  {
    const t = [];
    for (let i = 0; i < REPS; i++) {
      const t0 = now();
      const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
      t.push(now() - t0);
      await engine.api('POST', `/v1/instances/${inst.id}/stop`);
      await new Promise((r) => setTimeout(r, 300)); // one start at a time: the warm pool refills in quiet moments
    }
    row('start from snapshot (cold restore)', t);
  }

  // Start from a snapshot with a pool of paused clones (minInstances): a resume, not a restore.
  {
    await engine.api('PUT', `/v1/snapshots/${snap.id}/pool`, { minInstances: 2 });
    const t = [];
    for (let i = 0; i < REPS; i++) {
      for (let k = 0; k < 200 && (await engine.api('GET', `/v1/snapshots/${snap.id}/pool`)).body.ready < 2; k++) await new Promise((r) => setTimeout(r, 50));
      const t0 = now();
      const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
      t.push(now() - t0);
      await engine.api('POST', `/v1/instances/${inst.id}/stop`);
    }
    row('start from a warm-pooled snapshot (resume)', t);
    await engine.api('PUT', `/v1/snapshots/${snap.id}/pool`, { minInstances: 0 });
  }

  const parent = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
  const WORKLOAD = 'nohup sh -c "while :; do sleep 1; done" >/dev/null 2>&1 &';
  await engine.api('POST', `/v1/instances/${parent.id}/exec`, { command: WORKLOAD });

  // Exec round trip of `true`, client to engine to agent and back.
  {
    const t = [];
    for (let i = 0; i < (quick ? 50 : 200); i++) {
      const t0 = now();
      await engine.api('POST', `/v1/instances/${parent.id}/exec`, { argv: ['true'] });
      t.push(now() - t0);
    }
    row('exec round trip (true)', t);
  }

  // Snapshot of a running instance (checkpoint --leave-running + checksum + commit).
  {
    const t = [];
    for (let i = 0; i < REPS; i++) {
      const t0 = now();
      await engine.api('POST', `/v1/instances/${parent.id}/snapshot`, {});
      t.push(now() - t0);
    }
    row('snapshot of a running instance', t);
  }

  // Live branch until every child answers an exec, against the bare CLI floor.
  const bareParent = await bare.boot(WORKLOAD);
  const profile = {};
  for (const n of Ns) {
    const t = [];
    const floor = [];
    const floorPre = [];
    const reps = n >= 32 ? Math.max(3, Math.floor(REPS / 4)) : REPS;
    for (let i = 0; i < reps; i++) {
      const { ms, res } = await timedBranch(engine, parent.id, n);
      t.push(ms);
      if (n === 1) collectProfile(profile, res.headers.get('server-timing'));
      await Promise.all(res.body.instances.map((c) => engine.api('DELETE', `/v1/instances/${c.id}`)));
      await engine.api('DELETE', `/v1/snapshots/${res.body.snapshot.id}?force=true`);
      await waitWarm(engine); // the floors run on a quiet machine, not beside the engine's refills
      floor.push((await bare.fork(bareParent, n)).total);
      floorPre.push((await bare.fork(bareParent, n, true)).total);
    }
    row(`live branch N=${n} (every child answers)`, t, { 'bare runsc, new ids': floor, 'bare runsc, pre-created': floorPre });
  }
  console.log('\nwhere a N=1 branch goes (engine server-timing, p50 ms):');
  for (const [k, v] of Object.entries(profile)) console.log(`  ${k.padEnd(12)} ${fmt(stats(v).p50)}`);
  results.profile = Object.fromEntries(Object.entries(profile).map(([k, v]) => [k, stats(v).p50]));

  // Memory per idle instance: the sandbox cgroup's charge (memory + writable layer + sentry).
  {
    const kids = (await engine.api('POST', `/v1/instances/${parent.id}/branch`, { count: 8 })).body.instances;
    await new Promise((r) => setTimeout(r, 2000));
    const per = kids.map((k) => Number(readFileSync(`/sys/fs/cgroup/memory/faas-${engine.tag}/${k.id}/memory.usage_in_bytes`, 'utf8')) / 2 ** 20);
    row('idle instance memory (cgroup charge)', per, {}, 'MB');
    for (const k of kids) await engine.api('DELETE', `/v1/instances/${k.id}`);
  }
  // Snapshot of a running instance carrying filesystem changes (the writable layer travels in the image).
  if (!quick) {
    for (const mb of [0, 100, 1024]) {
      const big = (await engine.api('POST', '/v1/snapshots', { memory: 4096 })).body;
      const inst = (await engine.api('POST', '/v1/instances', { snapshotId: big.id })).body;
      if (mb) await engine.api('POST', `/v1/instances/${inst.id}/exec`, { command: `head -c ${mb}M /dev/urandom > /root/blob`, timeout: 600000 });
      const t = [];
      for (let i = 0; i < 3; i++) {
        const t0 = now();
        const s = (await engine.api('POST', `/v1/instances/${inst.id}/snapshot`, {})).body;
        t.push(now() - t0);
        await engine.api('DELETE', `/v1/snapshots/${s.id}?force=true`);
      }
      row(`snapshot with ${mb} MB of file changes`, t);
      await engine.api('DELETE', `/v1/instances/${inst.id}`);
    }
  }
} finally {
  await bare.close().catch((err) => console.error(`bench: cleaning up the bare-runsc floor: ${err.message}`));
  await engine.close();
}

if (jsonOut) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(jsonOut, JSON.stringify(results, null, 2));
}
