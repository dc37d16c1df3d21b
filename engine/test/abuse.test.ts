// The engine under abuse, run as a child process so its memory is its own: /proc/<pid>/status
// gives VmRSS (now) and VmHWM (peak). Driven: ten concurrent execs each printing 16 MiB of control
// bytes on stdout and on stderr (they took the engine from 207 MB to a 4.2 GB peak and 8 of them
// killed a 2 GB instance), 60 concurrent execs on one instance (all were accepted), and 10 MB
// deeply nested JSON bodies (four of them stalled /v1/health for 2 s). Asserted: the engine's peak
// RSS stays under RSS_BOUND_MB (docs/security/abuse.md), the instance is still `ready` and answers,
// results say `truncated`, 429s carry Retry-After, nested bodies are refused. Times are printed,
// never asserted.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { purge } from './harness.js';

/** The engine's peak resident memory through all of this, in MB (it idles at ~100 MB). */
export const RSS_BOUND_MB = 600;

const RUNSC = loadConfig().runsc;
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const MiB = 1024 * 1024;
const FLOOD = "head -c 16777216 /dev/zero | tr '\\0' '\\1'; head -c 16777216 /dev/zero | tr '\\0' '\\2' >&2";

/** Polls the URL every 20 ms until stdin closes, then prints the slowest answer in ms. */
const POLLER = `
let worst = 0, done = false;
process.stdin.on('end', () => (done = true)).resume();
(async () => {
  while (!done) {
    const t0 = performance.now();
    try { await (await fetch(process.argv[1])).text(); } catch {}
    worst = Math.max(worst, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(Math.round(worst));
})();`;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** CPU time the process has used (user + system), in ms: load-independent, unlike latencies. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
}

function memory(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), hwmMb: Math.round(kb('VmHWM') / 1024) };
}

describe('engine memory under abuse', () => {
  const stateDir = mkdtempSync('/tmp/faas-test-abuse-');
  const tag = `ta${process.pid.toString(36).slice(-3)}`;
  let proc: ChildProcess;
  let url = '';
  let key = '';
  let inst = '';
  const log: string[] = [];
  let cpuBefore = 0;

  const api = async (method: string, path: string, body?: unknown, raw?: string, idempotencyKey?: string) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    }).catch((err) => {
      throw new Error(`${method} ${path}: ${err.message} (${err.cause?.code ?? err.cause?.message})`);
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
  const note = (phase: string) => {
    const m = memory(proc.pid!);
    const cpu = cpuMs(proc.pid!);
    log.push(`${phase}: VmRSS ${m.rssMb} MB, VmHWM ${m.hwmMb} MB, engine CPU ${cpu - cpuBefore} ms`);
    cpuBefore = cpu;
    return m;
  };
  /**
   * Polls /v1/health from a separate process while `work` runs (this process is busy parsing 12 MB
   * results, which would pollute the number); returns the slowest answer in ms, reported only.
   */
  const healthDuring = async <T>(work: Promise<T>): Promise<[T, number]> => {
    const poller = spawn(process.execPath, ['-e', POLLER, `${url}/v1/health`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    poller.stdout!.on('data', (d) => (out += d));
    const exited = new Promise((r) => poller.once('exit', r));
    const result = await work.finally(() => poller.stdin!.end());
    await exited;
    return [result, Number(out.trim()) || 0];
  };

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    proc = spawn(process.execPath, [MAIN], {
      env: { ...process.env, FAAS_STATE_DIR: stateDir, FAAS_PORT: String(port), FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.210.0.0/16', FAAS_NET_TAG: tag, FAAS_NETNS_POOL: '1', FAAS_WARM_POOL: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; i < 600; i++) {
      try {
        if ((await fetch(`${url}/v1/health`)).ok) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    key = JSON.parse(readFileSync(join(stateDir, 'credentials.json'), 'utf8')).apiKey;
    const snap = await api('POST', '/v1/snapshots', { memory: 2048 });
    assert.equal(snap.status, 201, JSON.stringify(snap.body));
    const started = await api('POST', '/v1/instances', { snapshotId: snap.body.id });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    inst = started.body.id;
    note('idle, one 2 GB instance');
  });

  after(async () => {
    console.log(`# ${log.join('\n# ')}`);
    try {
      const live = await api('GET', '/v1/instances?limit=200');
      for (const i of live.body?.data ?? []) await api('POST', `/v1/instances/${i.id}/stop`);
    } catch {
      /* engine already gone */
    } finally {
      proc?.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      const out = execFileSync(RUNSC, [`--root=${join(stateDir, 'runsc')}`, 'list', '--format=json'], { encoding: 'utf8' });
      for (const s of (JSON.parse(out || '[]') ?? []) as { id: string }[]) execFileSync(RUNSC, [`--root=${join(stateDir, 'runsc')}`, 'delete', '--force', s.id]);
      for (const ns of readdirSync('/var/run/netns').filter((n) => n.startsWith(`faas-${tag}-`))) execFileSync('ip', ['netns', 'del', ns]);
      purge(stateDir);
    }
  });

  it('ten concurrent 2 x 16 MiB control-byte floods: capped, truncated, the instance survives', async () => {
    // Half carry an Idempotency-Key, as every SDK POST does: those results are also stored for replay.
    const keyOf = (i: number) => (i % 2 ? `abuse-${process.pid}-${i}` : undefined);
    const [results, worst] = await healthDuring(Promise.all(Array.from({ length: 10 }, (_, i) => api('POST', `/v1/instances/${inst}/exec`, { command: FLOOD }, undefined, keyOf(i)))));
    for (const r of results) {
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.truncated, true, 'a capped result says so');
      assert.equal(r.body.stdout, '\u0001'.repeat(MiB));
      assert.equal(r.body.stderr, '\u0002'.repeat(MiB));
      assert.equal(r.body.exitCode, 0, 'the command was drained, not killed');
    }
    log.push(`10 floods: slowest /v1/health ${worst} ms`);
    const replay = await api('POST', `/v1/instances/${inst}/exec`, { command: FLOOD }, undefined, keyOf(1));
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, results[1].body, 'the stored result replays whole');
    const m = note('after 10 floods');
    assert.ok(m.hwmMb < RSS_BOUND_MB, `engine peak RSS ${m.hwmMb} MB`);
    assert.equal((await api('GET', `/v1/instances/${inst}`)).body.state, 'ready');
  });

  it('60 concurrent floods on one instance: 16 run, the rest get 429 + Retry-After', async () => {
    const [results, worst] = await healthDuring(Promise.all(Array.from({ length: 60 }, () => api('POST', `/v1/instances/${inst}/exec`, { command: `sleep 2; ${FLOOD}` }))));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    log.push(`60 floods: ${ok.length} ran, ${refused.length} refused; slowest /v1/health ${worst} ms`);
    assert.ok(ok.length >= 1 && ok.length <= 16, `${ok.length} ran at once on one instance`);
    assert.ok(refused.length >= 44);
    for (const r of ok) assert.equal(r.body.truncated, true);
    for (const r of refused) {
      assert.equal(r.status, 429);
      assert.equal(r.body.error.code, 'resource_limit');
      assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    }
    const m = note('after 60 concurrent floods');
    assert.ok(m.hwmMb < RSS_BOUND_MB, `engine peak RSS ${m.hwmMb} MB`);
  });

  it('4 x 10 MB nested JSON bodies are refused while /v1/health answers', async () => {
    note('before nested bodies');
    const nested = '['.repeat(5_000_000) + ']'.repeat(5_000_000);
    const [results, worst] = await healthDuring(
      Promise.all([
        ...[1, 2, 3, 4].map(() => api('POST', `/v1/instances/${inst}/exec`, undefined, nested)),
        ...[1, 2, 3, 4].map(() => api('PUT', `/v1/instances/${inst}/metadata`, undefined, nested)),
      ]),
    );
    log.push(`8 x 10 MB nested bodies: slowest /v1/health ${worst} ms`);
    for (const r of results.slice(0, 4)) {
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.details.reason, 'too_deep', 'the exec route takes 16 MiB bodies, but not nested ones');
    }
    for (const r of results.slice(4)) {
      assert.equal(r.status, 413, JSON.stringify(r.body));
      assert.equal(r.body.error.details.limit, MiB);
    }
    const m = note('after nested bodies');
    assert.ok(m.hwmMb < RSS_BOUND_MB, `engine peak RSS ${m.hwmMb} MB`);
  });

  it('afterwards the instance is ready and answers, and the engine kept nothing', async () => {
    assert.equal((await api('GET', `/v1/instances/${inst}`)).body.state, 'ready');
    const r = await api('POST', `/v1/instances/${inst}/exec`, { command: 'echo alive' });
    assert.equal(r.body.stdout, 'alive\n');
    const m = note('at the end');
    assert.ok(m.hwmMb < RSS_BOUND_MB, `engine peak RSS ${m.hwmMb} MB over the whole run (bound ${RSS_BOUND_MB} MB)`);
  });
});
