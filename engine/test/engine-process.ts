// The real engine (dist/src/main.js) as a separate process, for tests that kill it: start, SIGKILL,
// graceful stop, a small API client, and an inventory of what it left on the host (sandboxes,
// namespaces, veths, cgroups, bundles, snapshot directories) to compare with its records.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadConfig } from '../src/config.js';
import { hostInterfaceOf } from '../src/network/netns.js';

export const RUNSC = loadConfig().runsc;
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export interface Inventory {
  sandboxes: { id: string; status: string }[];
  netns: string[];
  veths: string[];
  cgroups: string[];
  bundles: string[];
  snapshotDirs: string[];
  /** Sandbox ids with a file (state or lock) in the runsc root. */
  runscFiles: string[];
}

export class EngineProcess {
  proc: ChildProcess | null = null;
  /** Every reaper stand-in this object started (a restart replaces `proc`; the old one lives on). */
  private readonly standIns: ChildProcess[] = [];
  /** The engine's own pid (with `unreaped`, a grandchild of this process). */
  pid = 0;
  key = '';
  private stderr = '';

  /** unreaped: run the engine under a parent that never wait()s (`sleep`), as under a host init
   *  that does not reap, so a killed engine stays a zombie — the case that broke pid checks. */
  constructor(
    readonly stateDir: string,
    public port: number,
    readonly tag: string,
    readonly extraEnv: Record<string, string> = {},
    readonly unreaped = false,
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  private env() {
    return {
      ...process.env,
      FAAS_STATE_DIR: this.stateDir,
      FAAS_PORT: String(this.port),
      FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.210.0.0/16',
      FAAS_NET_TAG: this.tag,
      FAAS_NETNS_POOL: '1',
      FAAS_SSH_PORT: '0',
      FAAS_WARM_POOL: '1',
      ...this.extraEnv,
    };
  }

  /** Starts the engine and waits for /v1/health; throws with its stderr if it does not come up. */
  async start(timeoutMs = 120_000): Promise<void> {
    this.stderr = '';
    if (this.unreaped) {
      // sh prints the engine's pid, then becomes `sleep`, the engine's parent that never reaps it.
      this.proc = spawn('sh', ['-c', '"$0" "$1" >/dev/null & echo $!; exec sleep 86400', process.execPath, MAIN], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      this.standIns.push(this.proc);
      this.pid = await new Promise<number>((resolve, reject) => {
        this.proc!.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
        this.proc!.once('exit', () => reject(new Error('sh exited before the engine started')));
      });
    } else {
      this.proc = spawn(process.execPath, [MAIN], { env: this.env(), stdio: ['ignore', 'ignore', 'pipe'] });
      this.pid = this.proc.pid!;
    }
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d).slice(-8000)));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(2000) })).ok) break;
      } catch {
        /* not listening yet */
      }
      if (!this.running()) throw new Error(`the engine (pid ${this.pid}) exited during start-up; its stderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`the engine (pid ${this.pid}) did not come up in ${timeoutMs / 1000}s; its stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.key = JSON.parse(readFileSync(join(this.stateDir, 'credentials.json'), 'utf8')).apiKey;
  }

  /** The engine process exists and is not a zombie. */
  running(): boolean {
    return processState(this.pid) !== null && processState(this.pid) !== 'Z';
  }

  kill9(): void {
    process.kill(this.pid, 'SIGKILL');
  }

  /** SIGTERM (graceful: pools drained, instances keep running), then wait until it has exited. */
  async stop(): Promise<void> {
    if (!this.running()) return;
    process.kill(this.pid, 'SIGTERM');
    const deadline = Date.now() + 90_000;
    while (this.running()) {
      if (Date.now() > deadline) throw new Error(`engine pid ${this.pid} did not stop on SIGTERM`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * What `faas engine stop --clean` does once the engine is gone: its namespaces, firewall chains
   * (IPv4 and IPv6) and runsc mount go (a SIGTERMed or killed engine keeps them for a restart).
   * Every test's clean-up calls it, so a suite run leaves no rules on the host: ~50 chains left by
   * earlier runs sat on INPUT/OUTPUT and every loopback packet walked them (the proxy profile).
   */
  async clean(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (this.running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const r = spawnSync(process.execPath, [MAIN, 'clean'], { env: { ...this.env(), FAAS_SSH_PORT: 'off' }, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) console.error(`engine-process: clean of ${this.stateDir} (tag ${this.tag}) failed: ${r.stderr || r.error}`);
  }

  /** Ends the reaper stand-in (and so the zombie) of an unreaped engine. */
  release(): void {
    // All of them: a graceful stop leaves its stand-in sleeping too, and the next start replaced
    // `proc`; a stand-in left alive kept the test process from exiting (its pipes stay open).
    for (const p of this.standIns.splice(0)) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      p.stdout?.destroy();
      p.stderr?.destroy();
      p.unref();
    }
  }

  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  sandboxes(): string[] {
    return this.inventory().sandboxes.filter((s) => s.status === 'running' || s.status === 'paused').map((s) => s.id);
  }

  allSandboxes(): string[] {
    return this.inventory().sandboxes.map((s) => s.id);
  }

  namespaces(): string[] {
    return this.inventory().netns;
  }

  /** What exists on the host for this engine right now. */
  inventory(): Inventory {
    const out = execFileSync(RUNSC, [`--root=${join(this.stateDir, 'runsc')}`, 'list', '--format=json'], { encoding: 'utf8' });
    const sandboxes = ((JSON.parse(out || '[]') ?? []) as { id: string; status: string }[]).map((s) => ({ id: s.id, status: s.status }));
    const netns = ls('/var/run/netns').filter((n) => n.startsWith(`faas-${this.tag}-`));
    const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[];
    const veths = links.map((l) => l.ifname).filter((n) => n.startsWith(`fv${this.tag}`));
    const cgroups = new Set<string>();
    for (const ctl of ls('/sys/fs/cgroup')) for (const c of dirs(join('/sys/fs/cgroup', ctl, `faas-${this.tag}`))) cgroups.add(c);
    const runscFiles = new Set(ls(join(this.stateDir, 'runsc')).map((f) => /^(.+)_sandbox:\1\.(lock|state)$/.exec(f)?.[1]).filter((id): id is string => !!id));
    return { sandboxes, netns, veths, cgroups: [...cgroups], bundles: ls(join(this.stateDir, 'bundles')), snapshotDirs: ls(join(this.stateDir, 'snapshots')), runscFiles: [...runscFiles] };
  }

  /** The records, read from the state database (the engine may be stopped). */
  records(): { instances: { id: string; state: string; netns: string | null }[]; snapshots: { id: string; state: string }[] } {
    const db = new Database(join(this.stateDir, 'faas.db'), { readonly: true, fileMustExist: true });
    try {
      return {
        instances: db.prepare('SELECT id, state, netns FROM instances').all() as { id: string; state: string; netns: string | null }[],
        snapshots: db.prepare('SELECT id, state FROM snapshots').all() as { id: string; state: string }[],
      };
    } finally {
      db.close();
    }
  }
}

/** Expected host objects for a set of live records (hostInterfaceOf maps a namespace to its veth). */
export function expectedFor(live: { id: string; netns: string | null }[]) {
  const netns = live.map((i) => i.netns).filter((n): n is string => !!n);
  return { ids: live.map((i) => i.id).sort(), netns: [...netns].sort(), veths: netns.map((n) => hostInterfaceOf(n)!).sort() };
}

/** The state letter of /proc/<pid>/stat (R, S, Z, ...), or null when there is no such process. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

function dirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

function ls(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
