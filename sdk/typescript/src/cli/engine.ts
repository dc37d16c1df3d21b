// faas engine start|stop|status|logs: run a local engine from this repository in the background.
// start: `node <repo>/engine/dist/src/main.js`, detached, logs appended to $FAAS_STATE_DIR/engine.log,
// then wait for /v1/health; when it does not come up, print the engine's own reason from the log
// and what to do next. stop: SIGTERM to the pid in $FAAS_STATE_DIR/engine.pid (written by the
// engine itself), then wait for it to exit. A zombie counts as exited: a SIGKILLed engine that no
// one reaps stays one, and it holds nothing (the engine's lock is released by the kernel at exit).
// stop --clean: then `node main.js clean`, which stops the instances and removes the engine's
// sandboxes, namespaces, firewall chains and runsc mount.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, closeSync, statSync, createReadStream, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ENDPOINT, endpointFromHostPort, readCredentials, stateDir } from '../core/config.js';
import { sleep } from '../core/retry.js';
import { int, type CommandGroup, type Context } from './command.js';
import { FaaSClient } from '../client.js';
import { EXIT } from './output.js';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** The engine entry point: $FAAS_ENGINE_MAIN, else the one of the repository this CLI belongs to. */
export function engineMain(): string {
  return process.env.FAAS_ENGINE_MAIN ?? fileURLToPath(new URL('../../../../engine/dist/src/main.js', import.meta.url));
}

/** Where the local engine listens, found as the SDK finds it (FAAS_ENDPOINT, else FAAS_HOST/
 *  FAAS_PORT, else credentials.json, else port 7440), so `engine status` and `instance list`
 *  always talk to the same engine. */
export function localEndpoint(): string {
  const endpoint = process.env.FAAS_ENDPOINT || endpointFromHostPort() || readCredentials()?.endpoint || DEFAULT_ENDPOINT;
  return endpoint.replace(/\/+$/, '');
}

const logPath = () => join(stateDir(), 'engine.log');
const pidPath = () => join(stateDir(), 'engine.pid');

export async function health(endpoint = localEndpoint()): Promise<{ status: string; version: string; uptimeMs: number } | undefined> {
  try {
    const response = await fetch(`${endpoint}/v1/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok ? ((await response.json()) as { status: string; version: string; uptimeMs: number }) : undefined;
  } catch {
    return undefined;
  }
}

function readPid(): number | undefined {
  try {
    const pid = Number(readFileSync(pidPath(), 'utf8').trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Running, not a zombie. kill(pid, 0) alone also succeeds for a zombie nobody has reaped. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ...": the state letter follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The engine's reason, from the lines it appended to engine.log since `from`: its error lines
 *  (the start-up failure is one), else its last lines. */
export function startFailureReason(log: string): string[] {
  const lines = log.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const errors = lines.filter((l) => {
    if (!l.startsWith('{')) return true; // stderr: "faas engine failed to start: ...", stack traces
    try {
      const o = JSON.parse(l) as { level?: string; msg?: string; err?: string };
      return o.level === 'error';
    } catch {
      return true;
    }
  });
  return (errors.length ? errors : lines).slice(-8);
}

/** What to do next, from the reason the engine gave. */
export function startAdvice(reason: string): string {
  if (/another engine|holds .*engine\.lock/.test(reason)) return 'Another engine uses this state directory: `faas engine status` / `faas engine stop`, or set another FAAS_STATE_DIR.';
  if (/EADDRINUSE|address already in use/i.test(reason)) return 'The port is taken by another program: set FAAS_PORT to a free one (or stop that program), then `faas engine start` again.';
  if (/runsc not found|faas-agent not found|not built/i.test(reason)) return 'Install what is missing with `scripts/install.sh` (as root), then `faas engine start` again.';
  if (/EACCES|EPERM|permission|must run as root|Operation not permitted/i.test(reason)) return 'The engine needs root (runsc, network namespaces, cgroups): run `faas engine start` as root.';
  return 'Fix the cause above, then run `faas engine start` again; the whole log: `faas engine logs`.';
}

function readFrom(path: string, offset: number): string {
  try {
    const buf = readFileSync(path);
    return buf.subarray(Math.min(offset, buf.length)).toString('utf8');
  } catch {
    return '';
  }
}

/** Runs the engine's own clean-up (it knows its firewall chains and runsc's mounts). */
function cleanHost(): void {
  const main = engineMain();
  if (!existsSync(main)) throw new Error(`engine not built at ${main}: run \`npm run build --workspaces\` at the repository root, or set FAAS_ENGINE_MAIN`);
  const r = spawnSync(process.execPath, [main, 'clean'], { env: process.env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error((r.stderr || r.error?.message || `engine clean exited with ${r.status}`).trim());
}

/** Instances the engine runs now (pending, ready or paused), from its metrics; null when it cannot say. */
async function liveInstances(ctx: Context): Promise<number | null> {
  let client: FaaSClient | undefined;
  try {
    client = new FaaSClient({ endpoint: localEndpoint(), apiKey: ctx.values['api-key'] as string | undefined, maxRetries: 0, timeout: 5000 });
    const counts = (await client.metrics()).instances;
    return (counts.pending ?? 0) + (counts.ready ?? 0) + (counts.paused ?? 0);
  } catch {
    return null; // no key for it, or it does not answer: stop it all the same
  } finally {
    client?.close();
  }
}

export const engineCommands: CommandGroup = {
  start: {
    usage: '',
    summary: 'Start a local engine in the background (state in $FAAS_STATE_DIR, default /var/lib/faas)',
    async run(ctx) {
      const endpoint = localEndpoint();
      const running = await health(endpoint);
      if (running) {
        ctx.out.result({ running: true, alreadyRunning: true, endpoint, pid: readPid() ?? null, version: running.version }, () => `engine already running at ${endpoint}`);
        return;
      }
      const main = engineMain();
      if (!existsSync(main)) throw new Error(`engine not built at ${main}: run \`npm run build --workspaces\` at the repository root, or set FAAS_ENGINE_MAIN`);
      mkdirSync(stateDir(), { recursive: true });
      const logStart = existsSync(logPath()) ? statSync(logPath()).size : 0;
      const log = openSync(logPath(), 'a');
      const child = spawn(process.execPath, [main], { detached: true, stdio: ['ignore', log, log], env: process.env });
      closeSync(log);
      child.unref();
      let exited: string | null = null;
      child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
      const work = (async () => {
        const deadline = Date.now() + START_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const up = await health(endpoint);
          if (up) return up;
          if (exited) break;
          await sleep(200);
        }
        const reason = startFailureReason(readFrom(logPath(), logStart));
        const how = exited ? `the engine exited (${exited})` : `the engine is still not answering at ${endpoint} after ${START_TIMEOUT_MS / 1000}s (pid ${child.pid} left running)`;
        const text = reason.length ? reason.map((l) => `  ${l}`).join('\n') : '  (it wrote nothing to the log)';
        throw new Error(`the engine did not come up: ${how}. From ${logPath()}:\n${text}\n${startAdvice(reason.join('\n'))}`);
      })();
      const up = await ctx.out.progress('starting engine', work);
      ctx.out.result({ running: true, alreadyRunning: false, endpoint, pid: child.pid ?? null, version: up.version, log: logPath() }, () => `engine started at ${endpoint} (pid ${child.pid}, log ${logPath()})`);
    },
  },
  stop: {
    usage: '[--clean]',
    summary:
      'Stop the local engine (SIGTERM to the pid in $FAAS_STATE_DIR/engine.pid; instances keep running). ' +
      'With --clean, also stop every instance and remove what the engine put on the host outside $FAAS_STATE_DIR: ' +
      'sandboxes, network namespaces, its iptables/ip6tables chains and runsc\'s null-netns mount (safe to repeat)',
    options: { clean: { type: 'boolean' } },
    async run(ctx) {
      const clean = ctx.values.clean === true;
      const pid = readPid();
      const wasRunning = pid !== undefined && alive(pid);
      // Asked before the stop: the sandboxes outlive the engine, and a user who is not told finds
      // them (and their memory) still there much later.
      const live = wasRunning && !clean ? await liveInstances(ctx) : null;
      if (wasRunning) {
        process.kill(pid, 'SIGTERM');
        const deadline = Date.now() + STOP_TIMEOUT_MS;
        while (alive(pid) && Date.now() < deadline) await sleep(100);
        if (alive(pid)) throw new Error(`engine pid ${pid} did not exit within ${STOP_TIMEOUT_MS / 1000}s; see \`faas engine logs\``);
      }
      if (clean) await ctx.out.progress('cleaning up the host', Promise.resolve().then(cleanHost));
      const done = wasRunning ? `engine stopped (pid ${pid})` : `no engine running for ${stateDir()}`;
      const left = live === null ? '' : live === 0 ? '; no instances were running' :
        `; ${live} instance(s) keep running without it (unless it was started with FAAS_STOP_INSTANCES_ON_EXIT=1): ` +
        '`faas engine start` manages them again, `faas engine stop --clean` stops them all';
      ctx.out.result({ stopped: true, wasRunning, pid: wasRunning ? pid : null, cleaned: clean, liveInstances: live }, () =>
        clean ? `${done}; its instances, sandboxes, namespaces, firewall rules and mounts are removed` : `${done}${left}`,
      );
    },
  },
  status: {
    usage: '',
    summary: 'Is the local engine up? (exit code 3 when not)',
    async run(ctx) {
      const endpoint = localEndpoint();
      const up = await health(endpoint);
      const pid = readPid();
      const status = { running: up !== undefined, endpoint, pid: pid && alive(pid) ? pid : null, version: up?.version ?? null, uptimeMs: up?.uptimeMs ?? null, stateDir: stateDir() };
      ctx.out.result(status, () =>
        up ? `engine running at ${endpoint} (version ${up.version}, up ${Math.round(up.uptimeMs / 1000)}s)` : `engine not running at ${endpoint}; start it with \`faas engine start\``,
      );
      return up ? EXIT.ok : EXIT.unreachable;
    },
  },
  logs: {
    usage: '[--lines N] [--follow]',
    summary: 'Print the end of the engine log',
    options: { lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' } },
    async run(ctx) {
      const path = logPath();
      if (!existsSync(path)) throw new Error(`no log at ${path}; was the engine started with \`faas engine start\`?`);
      const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).slice(-(int(ctx, 'lines') ?? 50));
      if (ctx.out.json) return void ctx.out.result({ path, lines });
      process.stdout.write(lines.map((l) => `${l}\n`).join(''));
      if (ctx.values.follow !== true) return;
      let offset = statSync(path).size;
      await new Promise<void>(() => {
        watch(path, () => {
          const size = statSync(path).size;
          if (size > offset) createReadStream(path, { start: offset, end: size - 1 }).pipe(process.stdout, { end: false });
          offset = size;
        });
      });
    },
  },
};
