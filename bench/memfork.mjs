#!/usr/bin/env node
// Branching a parent that holds memory (issue 15): parents holding 0, 256 MB and 1 GiB of written
// (non-zero) memory, live branch N=1/4/8 until every child answers an exec, beside the bare runsc
// CLI doing the same fork (checkpoint --leave-running + restore into pre-created sandboxes) in the
// same run, with and without lazy page loading (`runsc restore --background`), and the disk each
// branch point takes; then, per size, the restore side alone (one image restored eager and lazy by
// turns, until the child answers an exec). Not a test: figures on a shared 2-core machine are
// noisy; read them side by side.
//
// Usage: node bench/memfork.mjs [--reps 3] [--sizes 0,256,1024] [--ns 1,4,8] [--json out.json] [--per-rep]
// Env: FAAS_TEST_SUBNET (a /16: the engine allocates from its bottom, the bare floor from .128.0),
//      BENCH_ENGINE_ENV (JSON of extra engine environment, e.g. '{"FAAS_LAZY_RESTORE":"0"}').
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { BareRunsc, RUNSC, collectProfile, fmt, holder, startEngine, stats, timedBranch, waitWarm } from './lib.mjs';

const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const REPS = Number(arg('--reps', '3'));
const SIZES = arg('--sizes', '0,256,1024').split(',').map(Number);
const NS = arg('--ns', '1,4,8').split(',').map(Number);
const jsonOut = arg('--json', null);
const PER_REP = process.argv.includes('--per-rep');
const subnet = process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16';
const net = subnet.split('.').slice(0, 2).join('.');

const results = { machine: machine(), date: new Date().toISOString(), reps: REPS, rows: [], profile: {} };

function machine() {
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const runsc = execFileSync(RUNSC, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return { cpu: cpus()[0]?.model, cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), kernel, runsc, node: process.version };
}

const TAG = `t${process.pid.toString(36).slice(-4)}`;
const engine = await startEngine({
  FAAS_STATE_DIR: execFileSync('mktemp', ['-d', '/tmp/faas-test-memfork-bench-XXXXXX'], { encoding: 'utf8' }).trim(),
  FAAS_SUBNET: `${net}.0.0/16`, // the engine takes slots from the bottom; the bare floor uses .128.0 and up
  FAAS_NET_TAG: TAG,
  FAAS_MAX_MEMORY_MB: '0',
  FAAS_SSH_PORT: 'off',
  ...(process.env.BENCH_ENGINE_ENV ? JSON.parse(process.env.BENCH_ENGINE_ENV) : {}),
});
const bare = new BareRunsc({ dirPrefix: '/tmp/faas-test-memfork-bare-', net, slotBase: 8192 });
console.log(`faas memfork bench — ${results.machine.cores} cores, ${results.machine.cpu}, ${results.machine.runsc}, reps ${REPS}`);
try {
  for (const mb of SIZES) {
    const snap = (await engine.api('POST', '/v1/snapshots', { memory: Math.max(1024, mb + 768) })).body;
    const parent = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
    const sum = (await engine.api('POST', `/v1/instances/${parent.id}/exec`, { command: holder(mb), timeout: 600000 })).body.stdout.trim();
    const bareParent = await bare.boot(holder(mb));
    for (const n of NS) {
      const t = [], disk = [], floor = [], floorLazy = [], floorCk = [], floorLazyRestore = [];
      const timing = {};
      for (let i = 0; i < REPS; i++) {
        const { ms, res } = await timedBranch(engine, parent.id, n);
        t.push(ms);
        collectProfile(timing, res.headers.get('server-timing'));
        // --per-rep: each rep's whole branch beside its own server-timing laps (p50s of separate
        // laps taken from different reps do not add up; one rep's do).
        if (PER_REP) console.log(`   rep ${i + 1}: ${fmt(ms)} ms; ${res.headers.get('server-timing')}`);
        disk.push(Number(execFileSync('du', ['-sb', `${engine.stateDir}/snapshots/${res.body.snapshot.id}`], { encoding: 'utf8' }).split('\t')[0]) / 2 ** 20);
        // Every child holds the parent's memory, byte for byte (the first rep checks it).
        if (i === 0) {
          for (const c of res.body.instances) {
            const got = (await engine.api('POST', `/v1/instances/${c.id}/exec`, { argv: ['cat', '/tmp/held'] })).body.stdout.trim();
            if (got !== sum) throw new Error(`child ${c.id} lost its parent's memory record`);
          }
        }
        await Promise.all(res.body.instances.map((c) => engine.api('DELETE', `/v1/instances/${c.id}`)));
        await engine.api('DELETE', `/v1/snapshots/${res.body.snapshot.id}?force=true`);
        await waitWarm(engine);
        const f = await bare.fork(bareParent, n, true, []);
        floor.push(f.total);
        floorCk.push(f.checkpoint);
        const fl = await bare.fork(bareParent, n, true, ['--background']);
        floorLazy.push(fl.total);
        floorLazyRestore.push(fl.restore);
        if (PER_REP) console.log(`   rep ${i + 1} bare: eager ${fmt(f.total)} (checkpoint ${fmt(f.checkpoint)}), --background ${fmt(fl.total)} (checkpoint ${fmt(fl.checkpoint)}, restore+exec ${fmt(fl.restore)})`);
      }
      row(`${mb} MB parent, live branch N=${n}`, t, { 'bare runsc': floor, 'bare runsc --background': floorLazy }, { mb, n, diskMB: stats(disk).p50 });
      results.profile[`${mb}MB N=${n}`] = {
        engine: Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, stats(v).p50])),
        bare: { checkpoint: stats(floorCk).p50, restoreLazy: stats(floorLazyRestore).p50 },
      };
      console.log(`   server-timing p50: ${Object.entries(results.profile[`${mb}MB N=${n}`].engine).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}; bare checkpoint ${fmt(stats(floorCk).p50)}, bare lazy restore+exec ${fmt(stats(floorLazyRestore).p50)}; disk ${stats(disk).p50.toFixed(1)} MB`);
    }
    // The restore side alone: one image of the parent, restored eager and lazy by turns.
    {
      const img = `${bare.dir}/img-restore-only`;
      await bare.runsc(['checkpoint', '--leave-running', `--image-path=${img}`, bareParent]);
      const eager = [], lazy = [];
      for (let i = 0; i < REPS * 2; i++) {
        eager.push(await bare.restoreOnce(bareParent, img, []));
        lazy.push(await bare.restoreOnce(bareParent, img, ['--background']));
      }
      rmSync(img, { recursive: true, force: true });
      row(`${mb} MB image, bare restore --background`, lazy, { 'eager (no --background)': eager }, { mb, restoreOnly: true });
    }
    await engine.api('DELETE', `/v1/instances/${parent.id}`);
    await engine.api('DELETE', `/v1/snapshots/${snap.id}?force=true`);
    await bare.runsc(['delete', '--force', bareParent]).catch(() => {});
  }
} finally {
  await bare.close().catch((err) => console.error(`bench: cleaning up the bare-runsc floor: ${err.message}`));
  await engine.close();
  // A SIGTERMed engine keeps its firewall chains (a restart needs them); the bench's engine is gone
  // for good, so remove them (and anything else of its tag) the way `faas engine stop --clean` does.
  const tmp = execFileSync('mktemp', ['-d', '/tmp/faas-test-memfork-clean-XXXXXX'], { encoding: 'utf8' }).trim();
  execFileSync(process.execPath, [new URL('../engine/dist/src/main.js', import.meta.url).pathname, 'clean'], {
    env: { ...process.env, FAAS_STATE_DIR: tmp, FAAS_NET_TAG: TAG, FAAS_SUBNET: `${net}.0.0/16`, FAAS_SSH_PORT: 'off' }, stdio: 'ignore',
  });
  rmSync(tmp, { recursive: true, force: true });
}
if (jsonOut) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(jsonOut, JSON.stringify(results, null, 2));
}

function row(name, samples, floors, extra) {
  const s = stats(samples);
  const r = { name, unit: 'ms', ...s, ...extra, floors: {} };
  let line = '';
  for (const [label, f] of Object.entries(floors)) {
    const fs = stats(f);
    r.floors[label] = { p50: fs.p50, p95: fs.p95, ratio: s.p50 / fs.p50 };
    line += `  | ${label} p50 ${fmt(fs.p50)} p95 ${fmt(fs.p95)}`;
  }
  results.rows.push(r);
  console.log(`${name.padEnd(34)} p50 ${fmt(s.p50).padStart(6)} ms  p95 ${fmt(s.p95).padStart(6)} ms${line}`);
}
