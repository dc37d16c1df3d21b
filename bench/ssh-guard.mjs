#!/usr/bin/env node
// What the SSH gateway's limits before a login (ssh/guard.ts) cost a login, A/B in one run:
//   guard: this checkout's engine;  base: an engine built without them (--base, a checkout);
//   floor: a bare ssh2 server in this process that accepts any key (no engine at all).
// Each sample is a fresh ssh2 connection: TCP, handshake, publickey login, 'ready', end — the part
// of a connection the guard touches. Samples alternate between the three so load hits all alike.
// Usage: FAAS_TEST_SUBNET=10.x.0.0/16 node bench/ssh-guard.mjs --base /work/main [--runs N]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, fmt, now, startEngine, stats } from './lib.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '100' }, base: { type: 'string' } } });
if (!values.base) throw new Error('--base <checkout without the guard, built> is required');
const runs = Number(values.runs);
const ssh2 = createRequire(join(REPO, 'sdk/typescript/package.json'))('ssh2');
const subnet = process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16';
const common = { FAAS_SUBNET: subnet, FAAS_SSH_PORT: '0', FAAS_NETNS_POOL: '0', FAAS_WARM_POOL: '0', FAAS_WARM_POOL_MAX: '0', FAAS_ROLLBACK_STANDBYS: '0' };
const dir = mkdtempSync('/tmp/faas-bench-sshguard-');
const key = join(dir, 'id');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
const privateKey = readFileSync(key);

const engines = {};
let floor;
try {
  engines.guard = await startEngine({ ...common, FAAS_NET_TAG: `tg${process.pid.toString(36).slice(-3)}` });
  engines.base = await startEngine({ ...common, FAAS_NET_TAG: `tb${process.pid.toString(36).slice(-3)}` }, join(values.base, 'engine/dist/src/main.js'));
  const ports = {};
  for (const [name, e] of Object.entries(engines)) {
    await e.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') });
    ports[name] = (await e.api('GET', '/v1/ssh/host')).body.port;
  }
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  floor = new ssh2.Server({ hostKeys: [hostKey] }, (c) => c.on('authentication', (ctx) => ctx.accept()).on('error', () => {}));
  await new Promise((r) => floor.listen(0, '127.0.0.1', r));
  ports.floor = floor.address().port;

  const login = (port) =>
    new Promise((resolve, reject) => {
      const t0 = now();
      const c = new ssh2.Client();
      c.once('ready', () => {
        const ms = now() - t0;
        c.end();
        resolve(ms);
      }).once('error', reject);
      c.connect({ host: '127.0.0.1', port, username: 'inst_bench', privateKey, hostVerifier: () => true });
    });
  const samples = { guard: [], base: [], floor: [] };
  for (const name of Object.keys(samples)) await login(ports[name]); // warm-up
  for (let i = 0; i < runs; i++) for (const name of Object.keys(samples)) samples[name].push(await login(ports[name]));
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
  for (const k of Object.keys(s)) console.log(`${`fresh ssh2 login, ${k}`.padEnd(28)} p50 ${fmt(s[k].p50)} ms  p95 ${fmt(s[k].p95)} ms`);
  console.log(`guard / base p50 ${(s.guard.p50 / s.base.p50).toFixed(2)}x  p95 ${(s.guard.p95 / s.base.p95).toFixed(2)}x; guard / floor p50 ${(s.guard.p50 / s.floor.p50).toFixed(2)}x`);
} finally {
  floor?.close();
  for (const e of Object.values(engines)) await e.close();
  rmSync(dir, { recursive: true, force: true });
}
