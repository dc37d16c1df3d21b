#!/usr/bin/env node
// Rollback benchmark: p50/p95 of `POST /v1/instances/{id}/rollback` (steps=1) until the instance
// answers an exec, on the default image. The engine restores into a standby made ahead in a quiet
// moment (services/rollback-standby.ts): each rep waits STANDBY_WAIT_MS first so there is one, and
// the run reports how many reps found one (server-timing `standby`) and the p50/p95 of those that
// did not (the cold path: standby made on the call's path). Side by side in the same run, the bare
// runsc CLI doing the same by hand: delete the sandbox, restore the checkpoint image under the same id into a
// fresh network namespace, re-key the agent, exec. A second floor is a bare restore alone (a new
// id, no delete), what any in-place rollback costs at least.
//
//   node bench/rollback.mjs [--reps N] [--json out.json]
// Env: FAAS_BENCH_SUBNET (default 10.240.0.0/16; its third octets 200+ are used by the bare floor),
// FAAS_BENCH_TAG (default b<pid>), FAAS_BENCH_TMP (temp dir prefix, default /tmp/faas-bench-).
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BareRunsc, fmt, now, settle, startEngine, stats } from './lib.mjs';

const { values } = parseArgs({ options: { reps: { type: 'string' }, json: { type: 'string' } } });
const REPS = Number(values.reps ?? 30);
/** Time given to the engine between reps to make the next standby (it waits for restores to be quiet). */
const STANDBY_WAIT_MS = Number(process.env.FAAS_BENCH_STANDBY_WAIT_MS ?? 2000);
const subnet = process.env.FAAS_BENCH_SUBNET ?? '10.240.0.0/16';
const tmp = process.env.FAAS_BENCH_TMP ?? '/tmp/faas-bench-';
const [a, b] = subnet.split('.');
// A counter in memory, as in the tests: the rolled-back state has a live process to bring back.
const WORKLOAD = "nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done' >/dev/null 2>&1 &";

const engine = await startEngine({ FAAS_STATE_DIR: mkdtempSync(tmp), FAAS_SUBNET: subnet, ...(process.env.FAAS_BENCH_TAG ? { FAAS_NET_TAG: process.env.FAAS_BENCH_TAG } : {}) });
const bare = new BareRunsc({ dirPrefix: tmp, net: `${a}.${b}` });
bare.slot = 200 * 64; // third octet 200 and up: clear of the engine's slots at the bottom of the subnet
const results = { reps: REPS, rows: {} };
const row = (name, samples) => {
  const s = stats(samples);
  results.rows[name] = s;
  console.log(`${name.padEnd(48)} p50 ${fmt(s.p50).padStart(6)}  p95 ${fmt(s.p95).padStart(6)} ms  (n=${s.n})`);
};

try {
  const snap = (await engine.api('POST', '/v1/snapshots', {})).body;
  const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
  await engine.api('POST', `/v1/instances/${inst.id}/exec`, { command: WORKLOAD });
  await engine.api('POST', `/v1/instances/${inst.id}/snapshot`, { name: `bench-rollback-${process.pid}` });

  const bareId = await bare.boot(WORKLOAD);
  const img = join(bare.dir, 'checkpoint');
  await bare.runsc(['checkpoint', '--leave-running', `--image-path=${img}`, bareId]);
  let bareKey = bare.keys.get(bareId);
  let bareLive = { id: 'rb', ...bare.netnsUp() };
  const bareRestore = async (id, slot, imageKey) => {
    await bare.runsc(['restore', '--detach', `--image-path=${img}`, `--bundle=${bare.bundle(id, slot.ns)}`, id], true);
    const key = randomBytes(32).toString('base64url');
    await bare.waitAgent(slot.ip, id, key, imageKey);
    await (await bare.agentExec(slot.ip, key, { argv: ['true'] })).text();
    return key;
  };
  // The bare "instance" to roll back: a restore of the checkpoint, as the engine's is after the first rep.
  const imageKey = bareKey;
  bareKey = await bareRestore(bareLive.id, bareLive, imageKey);
  bare.ids.push(bareLive.id);

  const engineT = [];
  const bareT = [];
  const restoreOnlyT = [];
  const precreatedT = [];
  const profile = {};
  const coldT = [];
  const hotT = [];
  for (let i = 0; i < REPS; i++) {
    await new Promise((r) => setTimeout(r, STANDBY_WAIT_MS));
    await settle();
    const t0 = now();
    const r = await engine.api('POST', `/v1/instances/${inst.id}/rollback`, { steps: 1 });
    await engine.api('POST', `/v1/instances/${inst.id}/exec`, { argv: ['true'] });
    engineT.push(now() - t0);
    let standby = 0;
    for (const part of (r.headers.get('server-timing') ?? '').split(',')) {
      const m = /^\s*(\w+);dur=([\d.]+)/.exec(part);
      if (m) (profile[m[1]] ??= []).push(Number(m[2]));
      if (m?.[1] === 'standby') standby = Number(m[2]);
    }
    (standby ? hotT : coldT).push(now() - t0);

    // Bare: the same in place (same id, namespace made before the clock, as the engine's pool does).
    const next = bare.netnsUp();
    await settle();
    const t1 = now();
    await bare.runsc(['delete', '--force', bareLive.id]);
    bareKey = await bareRestore(bareLive.id, next, imageKey);
    bareT.push(now() - t1);
    execFileSync('ip', ['netns', 'del', bareLive.ns]);
    bare.netns = bare.netns.filter((ns) => ns !== bareLive.ns);
    bareLive = { id: bareLive.id, ...next };

    // Bare restore alone, into a new id.
    const slot = bare.netnsUp();
    const id = `ro${i}`;
    await settle();
    const t2 = now();
    await bareRestore(id, slot, imageKey);
    restoreOnlyT.push(now() - t2);
    await bare.runsc(['delete', '--force', id]);
    execFileSync('ip', ['netns', 'del', slot.ns]);
    bare.netns = bare.netns.filter((ns) => ns !== slot.ns);

    // Bare restore into a sandbox created before the clock (`runsc create`): the floor of what the
    // engine's swap restores into.
    const pre = bare.netnsUp();
    const pid = `rp${i}`;
    await bare.runsc(['create', `--bundle=${bare.bundle(pid, pre.ns)}`, pid], true);
    await settle();
    const t3 = now();
    await bareRestore(pid, pre, imageKey);
    precreatedT.push(now() - t3);
    await bare.runsc(['delete', '--force', pid]);
    execFileSync('ip', ['netns', 'del', pre.ns]);
    bare.netns = bare.netns.filter((ns) => ns !== pre.ns);
  }
  console.log(`rollback (steps=1) on the default image, until the instance answers an exec — ${REPS} reps`);
  row('faas rollback', engineT);
  if (hotT.length) row('  of which: into a standby made ahead', hotT);
  if (coldT.length) row('  of which: cold (standby made on the path)', coldT);
  row('bare runsc: delete + restore, same id', bareT);
  row('bare runsc: restore alone, new id', restoreOnlyT);
  row('bare runsc: restore into a pre-created sandbox', precreatedT);
  console.log('where a faas rollback goes (server-timing, p50 ms):');
  for (const [k, v] of Object.entries(profile)) console.log(`  ${k.padEnd(10)} ${fmt(stats(v).p50)}`);
  results.profile = Object.fromEntries(Object.entries(profile).map(([k, v]) => [k, stats(v).p50]));
} finally {
  await bare.close().catch((err) => console.error(`bench: cleaning up the bare floor: ${err.message}`));
  await engine.close();
}

if (values.json) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(values.json, JSON.stringify(results, null, 2));
}
