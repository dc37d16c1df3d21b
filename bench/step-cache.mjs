#!/usr/bin/env node
// The README's chain — `client.snapshots.create().then((s) => s.exec('python3 -m venv --without-pip /opt/env'))`
// — run cold (every create and step runs: OptimizationHints.reuseSnapshots false), warm (the same
// chain again: every step answered from the step cache) and, in the same run, the direct paths
// beside them: the same state made by hand (start the root, exec, snapshot the instance, delete
// it) and the floor of any two-call chain (two plain GETs of a snapshot). p50/p95, ms.
// Usage: node bench/step-cache.mjs [--quick] [--json out.json]
// (engine env: BENCH_ENGINE_ENV='{"FAAS_SUBNET":"…","FAAS_NET_TAG":"…"}'). Not a test.
import { readFileSync, writeFileSync } from 'node:fs';
import { FaaSClient } from '../sdk/typescript/dist/index.js';
import { fmt, now, settle, startEngine, stats } from './lib.mjs';

const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const COLD = quick ? 3 : 6;
const WARM = quick ? 20 : 60;
// The command of the README's chain, read from it so the bench measures what the README shows.
const STEP = /s\.exec\('([^']+)'\)/.exec(readFileSync(new URL('../README.md', import.meta.url), 'utf8'))[1];
const rows = [];

function row(name, samples) {
  const s = stats(samples);
  rows.push({ name, ...s });
  console.log(`${name.padEnd(58)} p50 ${fmt(s.p50).padStart(7)} ms  p95 ${fmt(s.p95).padStart(7)} ms  (n=${s.n})`);
}

const engine = await startEngine(process.env.BENCH_ENGINE_ENV ? JSON.parse(process.env.BENCH_ENGINE_ENV) : {});
const warmClient = new FaaSClient({ endpoint: engine.url, apiKey: engine.key });
const coldClient = new FaaSClient({ endpoint: engine.url, apiKey: engine.key, optimizationHints: { reuseSnapshots: false } });
const chain = (client) => client.snapshots.create().then((s) => s.exec(STEP));
try {
  // Cold: boot a root and run the step, every time. The fresh roots and children are deleted after
  // each rep so the disk does not fill.
  const cold = [];
  for (let i = 0; i < COLD; i++) {
    await settle();
    const t0 = now();
    const s = await chain(coldClient);
    cold.push(now() - t0);
    await coldClient.snapshots.delete(s.parentId, { force: true });
  }

  // Warm: the first run fills the cache (untimed), then every rep is a hit at every step.
  const filled = await chain(warmClient);
  const warm = [];
  for (let i = 0; i < WARM; i++) {
    const t0 = now();
    const s = await chain(warmClient);
    warm.push(now() - t0);
    if (s.id !== filled.id || !s.cached) throw new Error(`rep ${i}: not a hit (${s.id} vs ${filled.id})`);
  }

  // Direct: the same state by hand from the cached root (no boot, no cache): start, exec, snapshot, delete.
  const direct = [];
  for (let i = 0; i < COLD; i++) {
    await settle();
    const t0 = now();
    const inst = await warmClient.instances.start({ snapshotId: filled.parentId });
    await warmClient.execution.exec(inst.id, STEP);
    const snap = await warmClient.instances.snapshot(inst.id);
    await inst.delete();
    direct.push(now() - t0);
    await warmClient.snapshots.delete(snap.id, { force: true });
  }

  // Floor: two plain round trips, what any two-call chain costs at least.
  const floor = [];
  for (let i = 0; i < WARM; i++) {
    const t0 = now();
    await warmClient.snapshots.get(filled.parentId);
    await warmClient.snapshots.get(filled.id);
    floor.push(now() - t0);
  }

  console.log(`step cache — README chain: create() → exec('${STEP}')`);
  row('chain cold (boot + step, reuseSnapshots: false)', cold);
  row('direct: start root + exec + snapshot + delete', direct);
  row('chain warm (every step a cache hit)', warm);
  row('floor: two GETs of a snapshot', floor);
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2));
} finally {
  await engine.close();
}
