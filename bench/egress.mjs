#!/usr/bin/env node
// What an egress policy and a bandwidth limit cost: a start with one (deny-all, three allowed
// CIDRs, one host name, 100 Mbit/s) against a plain start, interleaved in the same run, and a
// policy change on a running instance (PUT /v1/instances/{id}/network).
// Usage: node bench/egress.mjs [--quick]. Not a test: read the columns side by side.
// Environment: BENCH_SUBNET (default 10.240.0.0/16), BENCH_TAG (default b<pid>).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, fmt, now, settle, startEngine, stats } from './lib.mjs';

const REPS = process.argv.includes('--quick') ? 5 : 12;
const stateDir = mkdtempSync('/tmp/faas-test-netcfg-bench-');
const hostsFile = join(stateDir, 'egress-hosts');
writeFileSync(hostsFile, '192.0.2.10 api.bench.invalid\n');
const env = {
  FAAS_STATE_DIR: stateDir,
  FAAS_EGRESS_HOSTS_FILE: hostsFile,
  ...(process.env.BENCH_SUBNET ? { FAAS_SUBNET: process.env.BENCH_SUBNET } : {}),
  ...(process.env.BENCH_TAG ? { FAAS_NET_TAG: process.env.BENCH_TAG } : {}),
};
const engine = await startEngine(env);
const policy = {
  networkConfig: { egress: { mode: 'deny-all', allow: ['10.0.0.0/8', '192.168.0.0/16', '198.51.100.0/24', 'api.bench.invalid'] } },
  resources: { networkBandwidth: 100 },
};
const line = (name, s, floor) =>
  console.log(`${name.padEnd(40)} p50 ${fmt(s.p50).padStart(6)} ms  p95 ${fmt(s.p95).padStart(6)} ms  (n=${s.n})` +
    (floor ? `   | plain p50 ${fmt(floor.p50)} p95 ${fmt(floor.p95)} → +${fmt(s.p50 - floor.p50)} ms` : ''));
try {
  const snap = (await engine.api('POST', '/v1/snapshots', {})).body;
  const egress = { networkConfig: policy.networkConfig };
  const bandwidth = { resources: policy.resources };
  const variants = [['plain', {}], ['egress', egress], ['bandwidth', bandwidth], ['both', policy]];
  const t = Object.fromEntries(variants.map(([name]) => [name, []]));
  const change = [];
  for (let i = 0; i < REPS; i++) {
    for (const [name, body] of variants) {
      const t0 = now();
      const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.id, ...body })).body;
      t[name].push(now() - t0);
      if (name === 'both') {
        const t1 = now();
        await engine.api('PUT', `/v1/instances/${inst.id}/network`, { networkConfig: { egress: { mode: 'allow-all', deny: ['203.0.113.0/24'] } } });
        change.push(now() - t1);
      }
      await engine.api('POST', `/v1/instances/${inst.id}/stop`);
      await settle();
    }
  }
  const p = stats(t.plain);
  line('start, no policy', p);
  line('start, deny-all + 4 allows', stats(t.egress), p);
  line('start, 100 Mbit/s', stats(t.bandwidth), p);
  line('start, both', stats(t.both), p);
  line('PUT /network on a running instance', stats(change));
} finally {
  await engine.close();
  // The engine's chains and namespaces go too (the bench engine is stopped without --clean).
  execFileSync(process.execPath, [join(REPO, 'engine/dist/src/main.js'), 'clean'], {
    env: { ...process.env, ...env, FAAS_NET_TAG: env.FAAS_NET_TAG ?? engine.tag, FAAS_SUBNET: env.FAAS_SUBNET ?? '10.240.0.0/16' }, stdio: 'ignore',
  });
  rmSync(stateDir, { recursive: true, force: true });
}
