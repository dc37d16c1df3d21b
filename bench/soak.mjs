#!/usr/bin/env node
// Soak: 8 clients loop start → exec → branch(2) → files write/read → stop (and forget) against one
// engine for a while (default 30 minutes), and the engine's footprint must stay flat.
//
//   node bench/soak.mjs [--minutes 30] [--clients 8] [--warmup 5] [--sample 5]
//
// Footprint: engine RSS, open fds (engine and its spawner helper), this engine's network
// namespaces, cgroups and runsc sandboxes, and the disk use of its state directory (du -x).
// Sampled under load every --sample minutes (for the picture), and "quiesced" — clients paused
// at the end of an iteration (none of their instances live), then 15 s for pools and timers to
// settle — at the end of warm-up (--warmup minutes, default 5: caches, pools, JIT and the SQLite
// WAL fill up first) and at the end. The verdict compares those two quiesced samples: each figure
// must not grow by more than 5 % (fd counts: by more than 2), and sandboxes, cgroups and
// namespaces beyond the engine's own pools (warm sandboxes, spare namespaces) must not grow at all.
// Traffic goes only to the engine on loopback. Subnet: FAAS_TEST_SUBNET (default 10.115.0.0/16).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEngine, stats, REPO, RUNSC } from './lib.mjs';

const { values: argv } = parseArgs({
  options: { minutes: { type: 'string' }, clients: { type: 'string' }, warmup: { type: 'string' }, sample: { type: 'string' } },
});
const MINUTES = Number(argv.minutes ?? process.env.FAAS_SOAK_MINUTES ?? 30);
const CLIENTS = Number(argv.clients ?? 8);
const WARMUP_MIN = Number(argv.warmup ?? Math.min(5, MINUTES / 6));
const SAMPLE_MIN = Number(argv.sample ?? Math.min(5, MINUTES / 6));
const SUBNET = process.env.FAAS_TEST_SUBNET ?? '10.115.0.0/16';
const TOLERANCE = 0.05;
const NETNS_POOL = 4; // FAAS_NETNS_POOL, set below

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

const stateDir = mkdtempSync('/tmp/faas-test-restart-soak-');
const tag = `ts${process.pid.toString(36).slice(-3)}`;
const engine = await startEngine({ FAAS_STATE_DIR: stateDir, FAAS_SUBNET: SUBNET, FAAS_NET_TAG: tag, FAAS_MAX_INSTANCES: '64', FAAS_NETNS_POOL: String(NETNS_POOL) });
const pid = engine.proc.pid;
log(`engine pid ${pid}, state ${engine.stateDir}, tag ${tag}, subnet ${SUBNET}; ${CLIENTS} clients for ${MINUTES} min (warm-up ${WARMUP_MIN} min)`);

function helperPids() {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
const rssKb = (p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
const fds = (p) => readdirSync(`/proc/${p}/fd`).length;
const ls = (d) => { try { return readdirSync(d); } catch { return []; } };
const dirs = (d) => { try { return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { return []; } };

/** The engine's own pools (pre-created sandboxes, each with a namespace and cgroup) change size
 *  with the traffic; what is on the host beyond them and the spare namespaces must not grow. */
async function pools() {
  try {
    const m = (await api('GET', '/v1/metrics')).body;
    return { warmReady: m.warmPool?.ready ?? 0 };
  } catch {
    return { warmReady: 0 };
  }
}

/** runsc lock files of sandboxes that no longer exist (runsc delete leaves them). */
function runscLeftovers() {
  const files = ls(join(engine.stateDir, 'runsc'));
  return files.filter((f) => f.endsWith('.lock') && !files.includes(f.replace(/\.lock$/, '.state'))).length;
}

async function footprint(label) {
  const { warmReady } = await pools();
  const helpers = helperPids();
  const cgroups = new Set();
  for (const ctl of ls('/sys/fs/cgroup')) for (const c of dirs(join('/sys/fs/cgroup', ctl, `faas-${tag}`))) cgroups.add(c);
  const sandboxes = JSON.parse(execFileSync(RUNSC, [`--root=${join(engine.stateDir, 'runsc')}`, 'list', '--format=json'], { encoding: 'utf8' }) || '[]') ?? [];
  const du = (p) => Number(execFileSync('du', ['-sbx', p], { encoding: 'utf8' }).split('\t')[0]);
  const dbBytes = ['faas.db', 'faas.db-wal', 'faas.db-shm'].reduce((s, f) => { try { return s + readFileSync(join(engine.stateDir, f)).length; } catch { return s; } }, 0);
  return {
    label,
    atMin: Math.round((Date.now() - t0) / 600) / 100,
    rssMb: Math.round(rssKb(pid) / 102.4) / 10,
    helperRssMb: Math.round(helpers.reduce((s, p) => s + rssKb(p), 0) / 102.4) / 10,
    fds: fds(pid),
    helperFds: helpers.reduce((s, p) => s + fds(p), 0),
    netns: ls('/var/run/netns').filter((n) => n.startsWith(`faas-${tag}-`)).length,
    cgroups: cgroups.size,
    sandboxes: sandboxes.length,
    warmReady,
    sandboxesBeyondPools: sandboxes.length - warmReady,
    cgroupsBeyondPools: cgroups.size - warmReady,
    netnsBeyondPools: ls('/var/run/netns').filter((n) => n.startsWith(`faas-${tag}-`)).length - warmReady - NETNS_POOL,
    runscLeftovers: runscLeftovers(),
    diskMb: Math.round(du(engine.stateDir) / 1e5) / 10,
    dbMb: Math.round(dbBytes / 1e5) / 10,
    // Where the disk goes (MB): what grows, if anything.
    diskByDir: Object.fromEntries(['snapshots', 'filestore', 'logs', 'runsc', 'bundles', 'images', 'agents'].map((d) => [d, Math.round(du(join(engine.stateDir, d)) / 1e5) / 10])),
    iterations: done,
  };
}

// --- the clients ---------------------------------------------------------------------------
let done = 0;
const errors = new Map();
const iterMs = [];
let pauseRequested = false;
let stopRequested = false;
let paused = 0;
const wake = [];

const api = engine.api;
async function files(id, path, body) {
  const put = await fetch(`${engine.url}/v1/instances/${id}/files/write?path=${encodeURIComponent(path)}`, {
    method: 'PUT', headers: { authorization: `Bearer ${engine.key}`, 'content-type': 'application/octet-stream' }, body,
  });
  if (put.status !== 200) throw new Error(`files write → ${put.status} ${(await put.text()).slice(0, 200)}`);
  await put.text();
  const get = await fetch(`${engine.url}/v1/instances/${id}/files/read?path=${encodeURIComponent(path)}`, { headers: { authorization: `Bearer ${engine.key}` } });
  const text = await get.text();
  if (get.status !== 200 || text !== body) throw new Error(`files read → ${get.status}, ${text.length} bytes`);
}

async function iteration(client, n, snapshotId) {
  const made = [];
  let branchSnap = null;
  try {
    const inst = (await api('POST', '/v1/instances', { snapshotId })).body;
    made.push(inst.id);
    const r = (await api('POST', `/v1/instances/${inst.id}/exec`, { command: `echo c${client}-${n} > /root/mark; cat /root/mark` })).body;
    if (r.stdout !== `c${client}-${n}\n`) throw new Error(`exec: unexpected stdout ${JSON.stringify(r.stdout)}`);
    const br = (await api('POST', `/v1/instances/${inst.id}/branch`, { count: 2 })).body;
    branchSnap = br.snapshot.id;
    made.push(...br.instances.map((k) => k.id));
    await files(br.instances[0].id, '/root/soak.txt', `client ${client} iteration ${n}\n`.repeat(64));
    const k = (await api('POST', `/v1/instances/${br.instances[1].id}/exec`, { command: 'cat /root/mark' })).body;
    if (k.stdout !== `c${client}-${n}\n`) throw new Error('branch child lacks the parent\'s file');
  } finally {
    // stop, then forget (records of stopped instances would otherwise grow the database), then the
    // branch's image (each branch writes one).
    for (const id of made) await api('POST', `/v1/instances/${id}/stop`).catch(count);
    for (const id of made) await api('DELETE', `/v1/instances/${id}`).catch(count);
    if (branchSnap) await api('DELETE', `/v1/snapshots/${branchSnap}?force=true`).catch(count);
    // A branch that failed keeps the snapshot it made, and its error does not name it: find it by
    // its instance (the 30-minute run's disk growth was 4 of those, ~3.6 MB each).
    else if (made.length) {
      const snaps = (await api('GET', '/v1/snapshots?limit=200').catch(() => ({ body: { data: [] } }))).body.data;
      for (const s of snaps.filter((x) => x.instanceId === made[0])) await api('DELETE', `/v1/snapshots/${s.id}?force=true`).catch(count);
    }
  }
}

function count(err) {
  const key = String(err.message).replace(/inst_\w+|snap_\w+|req_\w+/g, '<id>').slice(0, 160);
  errors.set(key, (errors.get(key) ?? 0) + 1);
}

async function client(c, snapshotId) {
  for (let n = 0; !stopRequested; n++) {
    if (pauseRequested) {
      paused++;
      await new Promise((r) => wake.push(r));
      paused--;
      if (stopRequested) break;
    }
    const start = performance.now();
    try {
      await iteration(c, n, snapshotId);
      iterMs.push(performance.now() - start);
      done++;
    } catch (err) {
      count(err);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function quiesced(label) {
  pauseRequested = true;
  while (paused < CLIENTS) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 15_000));
  const f = await footprint(label);
  log(JSON.stringify(f));
  return f;
}
function resume() {
  pauseRequested = false;
  for (const w of wake.splice(0)) w();
}

// --- run --------------------------------------------------------------------------------------
// Ctrl-C / SIGTERM: stop the clients, then the engine with its instances (nothing left running).
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    log(`${sig}: stopping the clients and the engine`);
    stopRequested = true;
    resume();
    // Let the iterations in flight finish (each stops what it started), or an instance made after
    // close() listed them would outlive the engine.
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 120_000))]);
    await engine.close();
    process.exit(130);
  });
}
let loops = [];
const t0 = Date.now();
const samples = [await footprint('start (idle)')];
log(JSON.stringify(samples[0]));
const base = (await api('POST', '/v1/snapshots', {})).body;
loops = Array.from({ length: CLIENTS }, (_, c) => client(c, base.id));

const end = t0 + MINUTES * 60_000;
const warmupEnd = t0 + WARMUP_MIN * 60_000;
let baseline = null;
let nextSample = t0 + SAMPLE_MIN * 60_000;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, 1000));
  if (!baseline && Date.now() >= warmupEnd) {
    baseline = await quiesced('after warm-up (quiesced)');
    samples.push(baseline);
    resume();
  } else if (Date.now() >= nextSample) {
    const f = await footprint('under load');
    log(JSON.stringify(f), `errors so far: ${[...errors.values()].reduce((a, b) => a + b, 0)}`);
    samples.push(f);
    nextSample += SAMPLE_MIN * 60_000;
  }
}
const last = await quiesced('end (quiesced)');
samples.push(last);
stopRequested = true;
resume();
await Promise.all(loops);

// Flat = no growth beyond 5 % (a decrease is no leak). Counts that sit near zero (objects beyond
// the pools) must not grow at all; fd counts may differ by 2 (a keep-alive socket or two).
// runscLeftovers is information: the watcher sweeps lock files older than 60 s once a minute, so
// it holds up to ~2 minutes of deletions at any moment; the samples show whether it stays bounded.
const FIGURES = { rssMb: 'pct', helperRssMb: 'pct', fds: 'fd', helperFds: 'fd', diskMb: 'pct', sandboxesBeyondPools: 'zero', cgroupsBeyondPools: 'zero', netnsBeyondPools: 'zero', runscLeftovers: 'info', netns: 'info', cgroups: 'info', sandboxes: 'info' };
const verdict = Object.entries(FIGURES).map(([k, rule]) => {
  const a = baseline[k];
  const b = last[k];
  const grew = b - a;
  const flat = rule === 'info' ? true : rule === 'zero' ? grew <= 0 : rule === 'fd' ? grew <= Math.max(2, TOLERANCE * a) : grew <= TOLERANCE * a;
  return { figure: k, afterWarmup: a, end: b, change: a ? `${((grew / a) * 100).toFixed(1)} %` : `${grew >= 0 ? '+' : ''}${grew}`, flat: rule === 'info' ? null : flat };
});
const it = stats(iterMs);
const result = {
  when: new Date().toISOString(),
  minutes: MINUTES, clients: CLIENTS, warmupMinutes: WARMUP_MIN,
  iterations: done, errors: Object.fromEntries(errors),
  iterationMs: { p50: Math.round(it.p50), p95: Math.round(it.p95), max: Math.round(it.max) },
  samples, verdict, flat: verdict.every((v) => v.flat !== false),
  machine: { cores: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()), load: readFileSync('/proc/loadavg', 'utf8').trim() },
};
console.log('\n| figure | after warm-up | end | change | flat |\n|---|---|---|---|---|');
for (const v of verdict) console.log(`| ${v.figure} | ${v.afterWarmup} | ${v.end} | ${v.change} | ${v.flat === null ? '(pools, info)' : v.flat ? 'yes' : 'NO'} |`);
console.log(`\niterations ${done} (p50 ${result.iterationMs.p50} ms, p95 ${result.iterationMs.p95} ms), errors ${JSON.stringify(result.errors)}`);
console.log(`verdict: ${result.flat ? 'FLAT' : 'NOT FLAT'}`);
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(join(REPO, 'bench/results/soak-latest.json'), JSON.stringify(result, null, 2) + '\n');
await engine.close();
process.exit(result.flat ? 0 : 1);
