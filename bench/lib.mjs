// Shared helpers for the benchmarks: an engine in a child process on its own state directory,
// timing statistics, and the bare-runsc floor (the same fork done with the runsc CLI by hand).
import { randomBytes } from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, readdirSync, realpathSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTemplate, writeBundle } from '../engine/dist/src/runtime/runsc/bundle.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const CACHE = process.env.FAAS_CACHE_DIR ?? '/var/cache/faas';
export const RUNSC = process.env.FAAS_RUNSC ?? `${CACHE}/bin/runsc`;

export const now = () => performance.now();

/**
 * A pause before every timed section, engine and floors alike: the kernel tears down deleted
 * network namespaces and killed sandboxes asynchronously, and without it the engine's reps started
 * right after the pre-created floor's teardown while the floors started after the engine's refill
 * had settled — an asymmetry against the engine.
 */
export const settle = () => new Promise((r) => setTimeout(r, 300));

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, p50: q(0.5), p95: q(0.95), min: s[0], max: s[s.length - 1] };
}

export const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

export async function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}

/** Starts `node engine/dist/src/main.js` on a fresh state directory (or extraEnv.FAAS_STATE_DIR);
 *  returns a tiny client. */
/** `main`: another build's engine/dist/src/main.js, for A/B runs against the code without a change. */
export async function startEngine(extraEnv = {}, main = join(REPO, 'engine/dist/src/main.js')) {
  const stateDir = extraEnv.FAAS_STATE_DIR ?? mkdtempSync('/tmp/faas-bench-');
  const port = await freePort();
  const tag = `b${process.pid.toString(36).slice(-3)}`;
  // BENCH_ENGINE_NODE_ARGS: extra node flags for the engine alone (e.g. --cpu-prof to see where it spends).
  const nodeArgs = process.env.BENCH_ENGINE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const env = { ...process.env, FAAS_STATE_DIR: stateDir, FAAS_PORT: String(port), FAAS_SUBNET: '10.240.0.0/16', FAAS_NET_TAG: tag, FAAS_MAX_INSTANCES: '128', ...extraEnv };
  const proc = spawn(process.execPath, [...nodeArgs, main], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    try {
      if ((await fetch(`${url}/v1/health`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  const key = JSON.parse(readFileSync(join(stateDir, 'credentials.json'), 'utf8')).apiKey;
  const api = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    const parsed = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
    if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
    return { body: parsed, headers: res.headers };
  };
  return {
    url, key, stateDir, tag, api, proc,
    async close() {
      try {
        const live = await api('GET', '/v1/instances?limit=200');
        await Promise.all(live.body.data.filter((i) => i.state !== 'stopped').map((i) => api('POST', `/v1/instances/${i.id}/stop`).catch(() => {})));
      } catch (err) {
        console.error(`bench: could not stop instances before shutting the engine down: ${err.message}`);
      }
      // Always stop the engine: a bench that exits without it leaves it and its sandboxes running.
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      // What `faas engine stop --clean` does: a SIGTERMed engine keeps its namespaces and firewall
      // chains for a restart, and chains left on INPUT/OUTPUT slow every later run's loopback traffic.
      try {
        execFileSync(process.execPath, [main, 'clean'], { env: { ...env, FAAS_SSH_PORT: 'off' }, stdio: 'ignore', timeout: 120_000 });
      } catch (err) {
        console.error(`bench: could not clean the engine's namespaces and firewall chains (tag ${tag}): ${err.message}`);
      }
      try { execFileSync('umount', ['-l', join(stateDir, 'runsc', 'null-netns')], { stdio: 'ignore' }); } catch {}
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Waits until the engine's warm pool is refilled (it grows to a recent branch's width). */
export async function waitWarm(engine) {
  for (let i = 0; i < 600; i++) {
    const w = (await engine.api('GET', '/v1/metrics')).body.warmPool;
    if (w.ready >= w.target) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One live branch of `count` children, timed until every child answers an exec (after the warm
 *  pool is refilled and the machine has settled); returns the time and the branch's answer. */
export async function timedBranch(engine, parentId, count) {
  await waitWarm(engine);
  await settle();
  const t0 = now();
  const res = await engine.api('POST', `/v1/instances/${parentId}/branch`, { count });
  await Promise.all(res.body.instances.map((c) => engine.api('POST', `/v1/instances/${c.id}/exec`, { argv: ['true'] })));
  return { ms: now() - t0, res };
}

/** Adds each `name;dur=ms` of a server-timing header to acc[name]. */
export function collectProfile(acc, header) {
  for (const part of (header ?? '').split(',')) {
    const m = /\s*(\w+);dur=([\d.]+)/.exec(part);
    if (m) (acc[m[1]] ??= []).push(Number(m[2]));
  }
}

// ---------------------------------------------------------------------------------------------
// The floor: the same live fork done by hand with the runsc CLI, as the architecture measured it.
// Network namespaces are prepared before the clock starts (the engine keeps a pool too).

export class BareRunsc {
  /** `dirPrefix` and `net` (the first two octets of the veth addresses) let a run keep to its own
   *  temp dirs and address block on a shared machine. */
  constructor({ dirPrefix = '/tmp/faas-bare-', net = '10.241', slotBase = 0, restoreFlags = [] } = {}) {
    this.net = net;
    this.dir = mkdtempSync(dirPrefix);
    this.root = join(this.dir, 'root');
    /** First /30 slot used (slotBase 8192 starts at <net>.128.0, the upper half of a /16). */
    this.slot = slotBase;
    /** Extra `runsc restore` flags of every fork (e.g. --background), unless a fork names its own. */
    this.restoreFlags = restoreFlags;
    mkdirSync(this.root);
    mkdirSync(join(this.dir, 'fs'));
    this.global = [`--root=${this.root}`, '--platform=systrap', '--network=sandbox', `--overlay2=root:dir=${join(this.dir, 'fs')}`];
    this.rootfs = join(realpathSync(process.env.FAAS_DEFAULT_IMAGE ?? `${CACHE}/images/default`), 'rootfs');
    this.agentDir = join(this.dir, 'agent');
    mkdirSync(this.agentDir);
    execFileSync('cp', [join(REPO, 'agent/bin/faas-agent'), join(this.agentDir, 'faas-agent')]);
    this.ids = [];
    /** The key each booted parent's agent holds (children are re-keyed from it). */
    this.keys = new Map();
    this.netns = [];
  }

  netnsUp() {
    const k = this.slot++;
    const ns = `fbare-${process.pid % 1000}-${k}`;
    const host = `${this.net}.${Math.floor((k * 4) / 256)}.${(k * 4) % 256 + 1}`;
    const guest = `${this.net}.${Math.floor((k * 4) / 256)}.${(k * 4) % 256 + 2}`;
    const hostIf = `fbh${process.pid % 1000}x${k}`;
    execFileSync('ip', ['-batch', '-'], { input: `netns add ${ns}\nlink add ${hostIf} type veth peer name eth0 netns ${ns}\naddr add ${host}/30 dev ${hostIf}\nlink set ${hostIf} up\n` });
    execFileSync('ip', ['-n', ns, '-batch', '-'], { input: `addr add ${guest}/30 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via ${host}\n` });
    this.netns.push(ns);
    return { ns, ip: guest };
  }

  /** The very OCI spec the engine uses (same mounts, capabilities, cgroups), so the floor is the same fork. */
  bundle(id, ns) {
    const b = join(this.dir, 'bundles', id);
    const template = makeTemplate({ rootfs: this.rootfs, agentDir: this.agentDir, environment: {} });
    writeBundle(b, template, { netnsPath: `/var/run/netns/${ns}`, cgroupsPath: `/faas-bare-${process.pid}/${id}`, hostname: id });
    return b;
  }

  runsc(args, detached = false) {
    return new Promise((resolve, reject) => {
      const fd = openSync('/dev/null', 'w');
      const p = spawn(this.binary ?? RUNSC, [...this.global, ...args], { stdio: ['ignore', fd, detached ? fd : 'pipe'] });
      let err = '';
      p.stderr?.on('data', (d) => (err += d));
      p.on('exit', (code) => {
        closeSync(fd);
        code === 0 ? resolve() : reject(new Error(`runsc ${args[0]}: ${err || code}`));
      });
    });
  }

  /**
   * Waits for the agent and gives it its key, as the engine does: the first identity after a boot
   * sets it; after a restore it presents the image's key (`current`) and re-keys (spec/agent-protocol.md).
   */
  async waitAgent(ip, id, key, current = null) {
    const headers = { 'content-type': 'application/json', ...(current ? { authorization: `Bearer ${current}` } : {}) };
    const body = JSON.stringify({ instanceId: `inst_${id}`, key });
    for (;;) {
      try {
        const r = await fetch(`http://${ip}:7070/v1/identity`, { method: 'PUT', headers, body, signal: AbortSignal.timeout(1000) });
        await r.text();
        if (r.ok) return;
      } catch {}
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  agentExec(ip, key, spec) {
    return fetch(`http://${ip}:7070/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(spec) });
  }

  /** Boots a parent and starts `command` in it through its agent (the same workload as the engine's parent). */
  async boot(command) {
    const { ns, ip } = this.netnsUp();
    const id = `parent${this.ids.length}`;
    await this.runsc(['run', '--detach', `--bundle=${this.bundle(id, ns)}`, id], true);
    this.ids.push(id);
    const key = randomBytes(32).toString('base64url');
    this.keys.set(id, key);
    await this.waitAgent(ip, id, key);
    if (command) await (await this.agentExec(ip, key, { command })).text();
    return id;
  }

  /** checkpoint --leave-running, then restore N new sandboxes until each one's agent answers an exec. */
  async fork(parent, n, precreated = false, restoreFlags = this.restoreFlags, imageBase = this.dir) {
    const img = join(imageBase, `img-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const kids = Array.from({ length: n }, (_, i) => ({ id: `c${this.ids.length + i}-${Date.now() % 100000}`, ...this.netnsUp() }));
    if (precreated) await Promise.all(kids.map((k) => this.runsc(['create', `--bundle=${this.bundle(k.id, k.ns)}`, k.id], true)));
    await settle();
    const t0 = now();
    await this.runsc(['checkpoint', '--leave-running', `--image-path=${img}`, parent]);
    const t1 = now();
    const steps = { restoreCli: 0, agent: 0 };
    await Promise.all(
      kids.map(async (k) => {
        const bundle = precreated ? join(this.dir, 'bundles', k.id) : this.bundle(k.id, k.ns);
        await this.runsc(['restore', '--detach', ...restoreFlags, `--image-path=${img}`, `--bundle=${bundle}`, k.id], true);
        steps.restoreCli = Math.max(steps.restoreCli, now() - t1);
        const key = randomBytes(32).toString('base64url');
        await this.waitAgent(k.ip, k.id, key, this.keys.get(parent));
        steps.agent = Math.max(steps.agent, now() - t1);
        // The same finish line as the engine's: the child answers an exec (a fork+exec inside it).
        const r = await this.agentExec(k.ip, key, { argv: ['true'] });
        await r.text();
      }),
    );
    const t2 = now();
    const diskBytes = Number(execFileSync('du', ['-sb', img], { encoding: 'utf8' }).split('\t')[0]);
    this.ids.push(...kids.map((k) => k.id));
    for (const k of kids) await this.runsc(['delete', '--force', k.id]).catch(() => {});
    for (const k of kids) execFileSync('ip', ['netns', 'del', k.ns]);
    this.netns = this.netns.filter((ns) => !kids.some((k) => k.ns === ns));
    rmSync(img, { recursive: true, force: true });
    // restoreCli / agent: ms from the restore call until the slowest child's `runsc restore` returned
    // / its agent answered (the rest up to `restore` is its first exec).
    return { total: t2 - t0, checkpoint: t1 - t0, restore: t2 - t1, diskBytes, ...steps };
  }

  /** Restores image `img` (of `parent`) into a fresh pre-created sandbox until its agent answers
   *  an exec, with `restoreFlags`; returns the ms from the restore call on. */
  async restoreOnce(parent, img, restoreFlags) {
    const { ns, ip } = this.netnsUp();
    const id = `r${this.slot}-${Date.now() % 100000}`;
    await this.runsc(['create', `--bundle=${this.bundle(id, ns)}`, id], true);
    await settle();
    const t0 = now();
    await this.runsc(['restore', '--detach', ...restoreFlags, `--image-path=${img}`, `--bundle=${join(this.dir, 'bundles', id)}`, id], true);
    const key = randomBytes(32).toString('base64url');
    await this.waitAgent(ip, id, key, this.keys.get(parent));
    await (await this.agentExec(ip, key, { argv: ['true'] })).text();
    const ms = now() - t0;
    await this.runsc(['delete', '--force', id]).catch(() => {});
    execFileSync('ip', ['netns', 'del', ns]);
    this.netns = this.netns.filter((n) => n !== ns);
    return ms;
  }

  async close() {
    for (const id of this.ids) await this.runsc(['delete', '--force', id]).catch(() => {});
    for (const ns of this.netns) { try { execFileSync('ip', ['netns', 'del', ns]); } catch {} }
    try { execFileSync('umount', ['-l', join(this.root, 'null-netns')], { stdio: 'ignore' }); } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The parent's workload: a Python process holding `mb` MB of written memory (a 1 MiB random block
 * repeated, so every page is non-zero and the image cannot skip it), which prints the sha256 of
 * that memory once it is all written and then sleeps. The same command runs in the engine's parent
 * and the bare floor's.
 */
export const holder = (mb) =>
  `nohup python3 -c "import os,time,hashlib; b=bytearray(os.urandom(1<<20))*${mb}; open('/tmp/held','w').write(hashlib.sha256(b).hexdigest()); time.sleep(1e9)" >/dev/null 2>&1 & ` +
  `while [ ! -s /tmp/held ]; do sleep 0.05; done; cat /tmp/held`;
