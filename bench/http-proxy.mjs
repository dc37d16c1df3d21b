#!/usr/bin/env node
// HTTP services: the engine's host-based proxy against a direct connection to the instance's IP,
// in the same run, to the same app (engine/test/service-app.ts, python3 in the sandbox).
//   - latency of a small GET (/who, ~1 KB) on a keep-alive connection: p50/p95 both ways and the
//     proxy's overhead (p50 proxy - p50 direct); the two paths alternate in blocks so drift of a
//     shared machine hits both alike;
//   - throughput of a 1 GiB download (BENCH_PROXY_MB), each way BENCH_PROXY_RUNS times (median).
// Targets (docs/benchmarks.md): overhead p50 <= 1 ms, proxy >= 90 % of direct throughput.
// Run as root from the repository root after `npm run build --workspaces`:
//   FAAS_TEST_SUBNET=10.101.0.0/16 node bench/http-proxy.mjs
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { startEngine, stats } from './lib.mjs';
import { startServiceApp } from '../engine/dist/test/service-app.js';

const N = Number(process.env.BENCH_PROXY_N ?? 2000);
const BLOCK = 100;
const MB = Number(process.env.BENCH_PROXY_MB ?? 1024);
const RUNS = Number(process.env.BENCH_PROXY_RUNS ?? 3);
const APP_PORT = 8080;
/** 'data' events the client saw per path (average read size = bytes / chunks). */
const chunks = { direct: 0, proxy: 0 };

/** One request on `agent`; resolves with [ms, bytes] once the body has been read to the end. */
function fetchOnce(way, agent, host, port, path, hostHeader) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host, port, path, agent, headers: hostHeader }, (res) => {
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
        chunks[way]++;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve([performance.now() - t0, bytes]) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const own = (name) => (process.env[name] ? { [name]: process.env[name] } : {});
// No warm pool: its background sandbox creation would share the 2 cores with the proxy's event
// loop (and not with the direct path) while the bench runs.
/**
 * CPU seconds (user + system) a process has used, with its children that have ended (the
 * `faas-agent splice` helpers of large bodies): what the proxy costs, whatever the load.
 */
const cpuSeconds = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};

const engine = await startEngine({ FAAS_WARM_POOL: '0', FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16', ...own('FAAS_NET_TAG'), ...own('FAAS_STATE_DIR') });
try {
  const snap = (await engine.api('POST', '/v1/snapshots', {})).body;
  const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id })).body;
  await startServiceApp((m, p, b) => engine.api(m, p, b), inst.id, APP_PORT);
  const svc = (await engine.api('PUT', `/v1/instances/${inst.id}/services/web`, { port: APP_PORT })).body;
  const engineUrl = new URL(engine.url);
  const paths = {
    direct: { host: inst.network.ip, port: APP_PORT, headers: {} },
    proxy: { host: '127.0.0.1', port: Number(engineUrl.port), headers: { host: `${new URL(svc.url).hostname}:${engineUrl.port}`, authorization: `Bearer ${engine.key}` } },
  };
  const agents = { direct: new Agent({ keepAlive: true, maxSockets: 1 }), proxy: new Agent({ keepAlive: true, maxSockets: 1 }) };
  const get = (way, path) => fetchOnce(way, agents[way], paths[way].host, paths[way].port, path, paths[way].headers);

  // Warm both paths (connections, the app's thread, the JIT).
  for (let i = 0; i < 200; i++) await get(i % 2 ? 'direct' : 'proxy', '/who');
  const samples = { direct: [], proxy: [] };
  for (let done = 0; done < N; done += BLOCK) {
    for (const way of done % (2 * BLOCK) ? ['proxy', 'direct'] : ['direct', 'proxy']) {
      for (let i = 0; i < BLOCK; i++) samples[way].push((await get(way, '/who'))[0]);
    }
  }
  const lat = { direct: stats(samples.direct), proxy: stats(samples.proxy) };

  const bytes = MB * 1024 * 1024;
  const rates = { direct: [], proxy: [] };
  const engineCpu = { direct: 0, proxy: 0 };
  chunks.direct = chunks.proxy = 0;
  for (let r = 0; r < RUNS; r++) {
    for (const way of r % 2 ? ['proxy', 'direct'] : ['direct', 'proxy']) {
      const cpu0 = cpuSeconds(engine.proc.pid);
      const [ms, got] = await get(way, `/big?n=${bytes}`);
      engineCpu[way] += cpuSeconds(engine.proc.pid) - cpu0;
      if (got !== bytes) throw new Error(`${way}: got ${got} of ${bytes} bytes`);
      rates[way].push(bytes / 1024 / 1024 / (ms / 1000));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const thr = { direct: median(rates.direct), proxy: median(rates.proxy) };

  const f = (x) => x.toFixed(3);
  console.log(`small GET (/who), keep-alive, n=${N} each, ms:`);
  console.log(`  direct to ${inst.network.ip}:${APP_PORT}   p50 ${f(lat.direct.p50)}  p95 ${f(lat.direct.p95)}`);
  console.log(`  through the proxy            p50 ${f(lat.proxy.p50)}  p95 ${f(lat.proxy.p95)}`);
  console.log(`  proxy overhead               p50 ${f(lat.proxy.p50 - lat.direct.p50)}  p95 ${f(lat.proxy.p95 - lat.direct.p95)}   (target p50 <= 1 ms)`);
  console.log(`download of ${MB} MiB, median of ${RUNS}, MiB/s:`);
  console.log(`  direct ${thr.direct.toFixed(0)} (${rates.direct.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`  proxy  ${thr.proxy.toFixed(0)} (${rates.proxy.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`  proxy/direct ${((100 * thr.proxy) / thr.direct).toFixed(1)} %   (target >= 90 %)`);
  const perGiB = (way) => (engineCpu[way] / RUNS / (MB / 1024)).toFixed(2);
  console.log(`  engine CPU (with its splice helpers) per GiB: proxy ${perGiB('proxy')} s, direct ${perGiB('direct')} s (the proxy's own cost; its throughput ceiling on one free core is ~1/that GiB/s)`);
  console.log(`  client's average read: direct ${(bytes * RUNS / chunks.direct / 1024).toFixed(1)} KiB, proxy ${(bytes * RUNS / chunks.proxy / 1024).toFixed(1)} KiB`);
  console.log(`  load average during the run: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  agents.direct.destroy();
  agents.proxy.destroy();
} finally {
  await engine.close();
}
