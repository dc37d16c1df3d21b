#!/usr/bin/env node
// The one thing the engine's fork of a parent holding memory does that the bare runsc CLI's does
// not (docs/benchmarks.md, "The engine above its floor at 1 GiB"): the engine's parent runs under
// a memory limit (cgroup v1 memory.limit_in_bytes = the instance's memory), and the page cache of
// the image the sentry writes is charged to that cgroup. Same bare parent, same CLI fork
// (checkpoint --leave-running + restore --background into a pre-created sandbox, until the child
// answers an exec), rep by rep with the parent's cgroup unlimited and limited like the engine's.
//
// Usage: node bench/memfork-cglimit.mjs [--mb 1024] [--reps 6]
// Env: FAAS_TEST_SUBNET (a /16; this uses its upper half).
import { readFileSync, writeFileSync } from 'node:fs';
import { BareRunsc, fmt, holder, stats } from './lib.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const MB = Number(arg('--mb', '1024'));
const REPS = Number(arg('--reps', '6'));
const net = (process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16').split('.').slice(0, 2).join('.');
// What the engine gives this parent (bench/memfork.mjs: memory max(1024, mb + 768)).
const LIMIT = Math.max(1024, MB + 768) * 2 ** 20;

const bare = new BareRunsc({ dirPrefix: '/tmp/faas-test-cglimit-bare-', net, slotBase: 8192 });
try {
  const parent = await bare.boot(holder(MB));
  const cg = `/sys/fs/cgroup/memory/faas-bare-${process.pid}/${parent}`;
  const failcnt = () => Number(readFileSync(`${cg}/memory.failcnt`, 'utf8'));
  const res = { unlimited: { total: [], checkpoint: [], restore: [], fails: [] }, limited: { total: [], checkpoint: [], restore: [], fails: [] } };
  for (let i = 0; i < REPS; i++) {
    for (const mode of i % 2 ? ['limited', 'unlimited'] : ['unlimited', 'limited']) {
      writeFileSync(`${cg}/memory.limit_in_bytes`, mode === 'limited' ? String(LIMIT) : '-1');
      const f0 = failcnt();
      const f = await bare.fork(parent, 1, true, ['--background']);
      const r = res[mode];
      r.total.push(f.total);
      r.checkpoint.push(f.checkpoint);
      r.restore.push(f.restore);
      r.fails.push(failcnt() - f0);
      console.log(`   rep ${i + 1} ${mode.padEnd(9)}: fork ${fmt(f.total)} ms (checkpoint ${fmt(f.checkpoint)}, restore+exec ${fmt(f.restore)}), failcnt +${failcnt() - f0}`);
    }
  }
  for (const [mode, r] of Object.entries(res)) {
    console.log(`${MB} MB parent, ${mode.padEnd(9)} p50: fork ${fmt(stats(r.total).p50)} ms, checkpoint ${fmt(stats(r.checkpoint).p50)}, restore+exec ${fmt(stats(r.restore).p50)}, failcnt +${stats(r.fails).p50}`);
  }
  console.log(`limited / unlimited (p50): fork ${(stats(res.limited.total).p50 / stats(res.unlimited.total).p50).toFixed(2)}, checkpoint ${(stats(res.limited.checkpoint).p50 / stats(res.unlimited.checkpoint).p50).toFixed(2)}, restore+exec ${(stats(res.limited.restore).p50 / stats(res.unlimited.restore).p50).toFixed(2)}`);
} finally {
  await bare.close().catch((err) => console.error(`bench: cleaning up: ${err.message}`));
}
