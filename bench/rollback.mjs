#!/usr/bin/env node
// Rollback benchmark: p50/p95 of `POST /v1/instances/{id}/rollback` (steps=1) until the instance
// answers an exec, on the default image, A/B in one run: engine A keeps the head checkpoint hot
// (services/rollback-hot.ts: restored ahead and paused; the rollback resumes it), engine B has hot
// standbys off (FAAS_ROLLBACK_HOT_MB=0: the checkpoint is restored on the call's path into an empty
// standby made ahead). Reps alternate A and B (which goes first alternates too), each after
// STANDBY_WAIT_MS so the standbys are made; server-timing `standby` says which path each rep took
// (2 hot, 1 empty standby, 0 made on the path) and rows are reported per path.
// Side by side in the same run, the bare runsc CLI by hand:
//   - delete + restore under the same id into a fresh network namespace, re-key, exec (in place, cold);
//   - a restore alone into a new id, and into a sandbox `runsc create`d before the clock (the floor
//     of the empty-standby path);
//   - the floor of the hot path: pause the old sandbox, resume one restored before the clock and
//     paused (`runsc restore` then `runsc pause`), re-key its agent, exec.
//
//   node bench/rollback.mjs [--reps N] [--json out.json]
// Env: FAAS_BENCH_SUBNET (default 10.240.0.0/16; its third octets 200+ are used by the bare floor;
// both engines share it: B is started once A's instance holds its slot, and neither takes a new slot
// afterwards: no warm pool, no namespace pool), FAAS_BENCH_TAG (default b<pid>; B adds `c`),
// FAAS_BENCH_TMP (temp dir prefix, default /tmp/faas-bench-).
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

// Neither engine takes a slot after its instance is up (see Env above): they share the subnet.
const quiet = { FAAS_WARM_POOL: '0', FAAS_NETNS_POOL: '0', FAAS_SSH_PORT: 'off' };
const tag = process.env.FAAS_BENCH_TAG ?? `b${process.pid.toString(36).slice(-3)}`;
const engine = await startEngine({ FAAS_STATE_DIR: mkdtempSync(tmp), FAAS_SUBNET: subnet, FAAS_NET_TAG: tag, ...quiet });
let engineOff = null;
const bare = new BareRunsc({ dirPrefix: tmp, net: `${a}.${b}` });
bare.slot = 200 * 64; // third octet 200 and up: clear of the engines' slots at the bottom of the subnet
const results = { reps: REPS, rows: {} };
const row = (name, samples) => {
  if (!samples.length) return;
  const s = stats(samples);
  results.rows[name] = s;
  console.log(`${name.padEnd(60)} p50 ${fmt(s.p50).padStart(6)}  p95 ${fmt(s.p95).padStart(6)} ms  (n=${s.n})`);
};
const PATHS = { 2: 'hot standby', 1: 'empty standby made ahead', 0: 'standby made on the path' };

/** An instance running the counter, checkpointed once: what each rep rolls back to. */
async function counterInstance(e) {
  const snap = (await e.api('POST', '/v1/snapshots', {})).body;
  const inst = (await e.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
  await e.api('POST', `/v1/instances/${inst.id}/exec`, { command: WORKLOAD });
  const ck = (await e.api('POST', `/v1/instances/${inst.id}/snapshot`, { name: `bench-rollback-${process.pid}` })).body;
  results.checkpointBytes = ck.size; // what a hot standby counts against FAAS_ROLLBACK_HOT_MB
  return inst;
}

/** One timed rollback + exec; its time goes to `byPath` under the path server-timing names. */
async function timedRollback(e, id, byPath, profile) {
  await new Promise((r) => setTimeout(r, STANDBY_WAIT_MS));
  await settle();
  const t0 = now();
  const r = await e.api('POST', `/v1/instances/${id}/rollback`, { steps: 1 });
  await e.api('POST', `/v1/instances/${id}/exec`, { argv: ['true'] });
  const ms = now() - t0;
  let standby = 0;
  for (const part of (r.headers.get('server-timing') ?? '').split(',')) {
    const m = /^\s*(\w+);dur=([\d.]+)/.exec(part);
    if (m) (profile[m[1]] ??= []).push(Number(m[2]));
    if (m?.[1] === 'standby') standby = Number(m[2]);
  }
  (byPath[standby] ??= []).push(ms);
  return ms;
}

try {
  const inst = await counterInstance(engine);
  engineOff = await startEngine({ FAAS_STATE_DIR: mkdtempSync(tmp), FAAS_SUBNET: subnet, FAAS_NET_TAG: `${tag}c`, FAAS_ROLLBACK_HOT_MB: '0', ...quiet });
  const instOff = await counterInstance(engineOff);

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
  const dropBare = async (id, ns) => {
    await bare.runsc(['delete', '--force', id]);
    execFileSync('ip', ['netns', 'del', ns]);
    bare.netns = bare.netns.filter((n) => n !== ns);
  };
  // The bare "instance" to roll back: a restore of the checkpoint, as the engine's is after the first rep.
  const imageKey = bareKey;
  bareKey = await bareRestore(bareLive.id, bareLive, imageKey);
  bare.ids.push(bareLive.id);
  // The hot floor's running "instance" (paused and replaced each rep).
  let hotLive = { id: 'hl', ...bare.netnsUp() };
  await bareRestore(hotLive.id, hotLive, imageKey);
  bare.ids.push(hotLive.id);

  const hotOn = {};
  const hotOff = {};
  const onT = [];
  const offT = [];
  const bareT = [];
  const restoreOnlyT = [];
  const precreatedT = [];
  const hotFloorT = [];
  const profileOn = {};
  const profileOff = {};
  for (let i = 0; i < REPS; i++) {
    // A/B, alternating which goes first.
    const pair = [
      async () => onT.push(await timedRollback(engine, inst.id, hotOn, profileOn)),
      async () => offT.push(await timedRollback(engineOff, instOff.id, hotOff, profileOff)),
    ];
    for (const f of i % 2 ? pair.reverse() : pair) await f();

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
    await dropBare(id, slot.ns);

    // Bare restore into a sandbox created before the clock (\`runsc create\`): the floor of what the
    // engine's empty-standby swap restores into.
    const pre = bare.netnsUp();
    const pid = `rp${i}`;
    await bare.runsc(['create', `--bundle=${bare.bundle(pid, pre.ns)}`, pid], true);
    await settle();
    const t3 = now();
    await bareRestore(pid, pre, imageKey);
    precreatedT.push(now() - t3);
    await dropBare(pid, pre.ns);

    // The hot path's floor: a sandbox restored (eagerly) and paused before the clock; on the clock
    // the running one is paused, the restored one resumed, its agent re-keyed, an exec run.
    const hs = { id: `hs${i}`, ...bare.netnsUp() };
    await bare.runsc(['restore', '--detach', `--image-path=${img}`, `--bundle=${bare.bundle(hs.id, hs.ns)}`, hs.id], true);
    bare.ids.push(hs.id);
    await bare.runsc(['pause', hs.id]);
    await settle();
    const t4 = now();
    await bare.runsc(['pause', hotLive.id]);
    await bare.runsc(['resume', hs.id]);
    const key = randomBytes(32).toString('base64url');
    await bare.waitAgent(hs.ip, hs.id, key, imageKey);
    await (await bare.agentExec(hs.ip, key, { argv: ['true'] })).text();
    hotFloorT.push(now() - t4);
    await dropBare(hotLive.id, hotLive.ns);
    hotLive = hs;
  }
  console.log(`rollback (steps=1) on the default image, until the instance answers an exec — ${REPS} reps, A/B alternating; checkpoint ${(results.checkpointBytes / 2 ** 20).toFixed(1)} MB`);
  row('A: faas rollback, hot standbys on (default)', onT);
  for (const [k, v] of Object.entries(hotOn)) row(`   of which: ${PATHS[k]}`, v);
  row('B: faas rollback, FAAS_ROLLBACK_HOT_MB=0', offT);
  for (const [k, v] of Object.entries(hotOff)) row(`   of which: ${PATHS[k]}`, v);
  row('bare runsc: pause old + resume pre-restored paused + re-key + exec', hotFloorT);
  row('bare runsc: restore into a pre-created sandbox', precreatedT);
  row('bare runsc: restore alone, new id', restoreOnlyT);
  row('bare runsc: delete + restore, same id', bareT);
  const ratio = (x, y) => (results.rows[x] && results.rows[y] ? results.rows[x].p50 / results.rows[y].p50 : NaN);
  results.ratios = {
    'A/B p50': ratio('A: faas rollback, hot standbys on (default)', 'B: faas rollback, FAAS_ROLLBACK_HOT_MB=0'),
    'A/hot floor p50': ratio('A: faas rollback, hot standbys on (default)', 'bare runsc: pause old + resume pre-restored paused + re-key + exec'),
    'B/pre-created floor p50': ratio('B: faas rollback, FAAS_ROLLBACK_HOT_MB=0', 'bare runsc: restore into a pre-created sandbox'),
  };
  for (const [k, v] of Object.entries(results.ratios)) console.log(`ratio ${k.padEnd(24)} ${v.toFixed(2)}`);
  for (const [name, profile] of [['A', profileOn], ['B', profileOff]]) {
    console.log(`where a faas rollback goes, ${name} (server-timing, p50 ms):`);
    for (const [k, v] of Object.entries(profile)) console.log(`  ${k.padEnd(10)} ${fmt(stats(v).p50)}`);
    results[`profile${name}`] = Object.fromEntries(Object.entries(profile).map(([k, v]) => [k, stats(v).p50]));
  }
} finally {
  await bare.close().catch((err) => console.error(`bench: cleaning up the bare floor: ${err.message}`));
  await engineOff?.close();
  await engine.close();
}

if (values.json) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(values.json, JSON.stringify(results, null, 2));
}
