#!/usr/bin/env node
// The SSH gateway against the direct paths, in one run on one engine (docs/benchmarks.md "SSH"):
//   1. `ssh <inst>@host true` on a fresh connection (OpenSSH, a new process each time)
//      vs `curl` POSTing the same command to the exec API (a new process and connection each time);
//   2. exec over an open SSH session (ssh2, one connection) vs the exec API over keep-alive;
//   3. `sftp` put of 1 GiB (OpenSSH) vs the same file streamed to the files API, and a local cp;
//   4. `sftp` get of the same file vs the files API's read.
// Usage: FAAS_TEST_SUBNET=10.x.0.0/16 node bench/ssh.mjs [--runs N] [--mb SIZE]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync, ftruncateSync, statSync, createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, fmt, now, startEngine, stats } from './lib.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, mb: { type: 'string', default: '1024' } } });
const runs = Number(values.runs);
const mb = Number(values.mb);
const ssh2 = createRequire(join(REPO, 'sdk/typescript/package.json'))('ssh2');

const tag = `t${process.pid.toString(36).slice(-4)}`;
const engine = await startEngine({
  FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.240.0.0/16',
  FAAS_NET_TAG: tag,
  FAAS_SSH_PORT: '0',
});
const dir = mkdtempSync('/tmp/faas-bench-ssh-');
// CPU seconds so far of the engine process and of this engine's sandboxes (their cgroup, v1): per
// GiB moved, a figure that a busy machine inflates far less than it does the rate.
const cpu = () => {
  const f = readFileSync(`/proc/${engine.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  let sandbox = NaN;
  try {
    sandbox = Number(readFileSync(`/sys/fs/cgroup/cpuacct/faas-${tag}/cpuacct.usage`, 'utf8')) / 1e9;
  } catch {}
  return { engine: (Number(f[11]) + Number(f[12])) / 100, sandbox };
};
const cpuLine = (what, c0, c1) => console.log(`${`  CPU s per GiB, ${what}`.padEnd(44)} engine ${((c1.engine - c0.engine) / (mb / 1024)).toFixed(2)}  sandboxes ${((c1.sandbox - c0.sandbox) / (mb / 1024)).toFixed(2)}`);
const rows = [];
const row = (name, ours, direct, unit = 'ms') => {
  rows.push({ name, ours, direct, unit });
  const f = (s) => (unit === 'ms' ? `p50 ${fmt(s.p50)} ms  p95 ${fmt(s.p95)} ms` : `${s.toFixed(0)} MB/s`);
  console.log(`${name.padEnd(44)} gateway: ${f(ours).padEnd(28)} direct: ${f(direct)}`);
};

try {
  const snap = await engine.api('POST', '/v1/snapshots', { diskSize: Math.max(4096, mb * 3) });
  const inst = (await engine.api('POST', '/v1/instances', { snapshotId: snap.body.id })).body;
  const host = (await engine.api('GET', '/v1/ssh/host')).body;
  const key = join(dir, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await engine.api('POST', '/v1/ssh-keys', { publicKey: readFileSync(`${key}.pub`, 'utf8') });
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${host.port} ${host.hostKey.publicKey}\n`);
  const sshOpts = [...(process.env.BENCH_SSH_CIPHER ? ['-c', process.env.BENCH_SSH_CIPHER] : []), '-F', '/dev/null', '-i', key, '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes'];
  const execUrl = `${engine.url}/v1/instances/${inst.id}/exec`;

  // 1. fresh connection, a new client process each time
  const timeProc = (cmd, args) => {
    const t0 = now();
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
    return now() - t0;
  };
  const sshFresh = [];
  const curlFresh = [];
  for (let i = 0; i < runs + 3; i++) {
    const a = timeProc('ssh', [...sshOpts, '-p', String(host.port), `${inst.id}@127.0.0.1`, 'true']);
    const b = timeProc('curl', ['-sf', '-o', '/dev/null', '-X', 'POST', '-H', `authorization: Bearer ${engine.key}`, '-H', 'content-type: application/json', '-d', '{"command":"true"}', execUrl]);
    if (i >= 3) sshFresh.push(a), curlFresh.push(b);
  }
  row('ssh host true, fresh connection', stats(sshFresh), stats(curlFresh));

  // 2. exec over one open connection
  const conn = new ssh2.Client();
  await new Promise((resolve, reject) => {
    conn.once('ready', resolve).once('error', reject);
    conn.once('ready', () => conn.setNoDelay(true));
    conn.connect({ host: '127.0.0.1', port: host.port, username: inst.id, privateKey: readFileSync(key), hostVerifier: () => true });
  });
  const sshExec = () =>
    new Promise((resolve, reject) => {
      const t0 = now();
      conn.exec('true', (err, ch) => {
        if (err) return reject(err);
        ch.on('close', () => resolve(now() - t0)).resume();
        ch.stderr.resume();
      });
    });
  const apiExec = async () => {
    const t0 = now();
    const res = await fetch(execUrl, { method: 'POST', headers: { authorization: `Bearer ${engine.key}`, 'content-type': 'application/json' }, body: '{"command":"true"}' });
    await res.text();
    return now() - t0;
  };
  const a = [];
  const b = [];
  for (let i = 0; i < runs * 3 + 5; i++) {
    const x = await sshExec();
    const y = await apiExec();
    if (i >= 5) a.push(x), b.push(y);
  }
  row('exec over an open session', stats(a), stats(b));
  conn.end();

  // 3. 1 GiB up: OpenSSH sftp vs the files API (streamed), plus a local copy for scale
  const big = join(dir, 'big');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, mb * 1024 * 1024); // zeros; nothing on the path compresses
  closeSync(fd);
  const upload = async (path) => {
    const res = await fetch(`${engine.url}/v1/instances/${inst.id}/files/write?path=${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${engine.key}`, 'content-type': 'application/octet-stream' },
      body: createReadStream(big),
      duplex: 'half',
    });
    if (!res.ok) throw new Error(`files API upload failed: ${res.status} ${await res.text()}`);
    await res.text();
  };
  // Untimed first: the first GiB written into a fresh sandbox also pays for growing its memory
  // (in one A/B run the first 1 GiB put ran at half the rate of the later ones): time no path with it.
  await upload('/root/warm');
  await engine.api('POST', `/v1/instances/${inst.id}/exec`, { command: 'rm -f /root/warm' });
  const sftp = (batch) => {
    writeFileSync(join(dir, 'batch'), batch);
    const c0 = cpu();
    const t0 = now();
    const r = spawnSync('sftp', [...sshOpts, '-P', String(host.port), '-b', join(dir, 'batch'), `${inst.id}@127.0.0.1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`sftp failed: ${r.stderr}`);
    return { rate: mb / ((now() - t0) / 1000), cpu: [c0, cpu()] };
  };
  const put = sftp(`put ${big} /root/big\n`);
  const get = sftp(`get /root/big ${big}.back\n`);
  rmSync(`${big}.back`, { force: true });
  await engine.api('POST', `/v1/instances/${inst.id}/exec`, { command: 'rm -f /root/big' });
  let c0 = cpu();
  let t0 = now();
  await upload('/root/big2');
  const apiRate = mb / ((now() - t0) / 1000);
  const cUp = [c0, cpu()];
  c0 = cpu();
  t0 = now();
  const down = await fetch(`${engine.url}/v1/instances/${inst.id}/files/read?path=/root/big2`, { headers: { authorization: `Bearer ${engine.key}` } });
  if (!down.ok) throw new Error(`files API read failed: ${down.status} ${await down.text()}`);
  let got = 0;
  for await (const chunk of down.body) got += chunk.length;
  if (got !== mb * 1024 * 1024) throw new Error(`files API read gave ${got} bytes`);
  const apiGetRate = mb / ((now() - t0) / 1000);
  const cDown = [c0, cpu()];
  await engine.api('POST', `/v1/instances/${inst.id}/exec`, { command: 'rm -f /root/big2' });
  row(`sftp put ${mb} MiB (vs files API upload)`, put.rate, apiRate, 'MB/s');
  cpuLine('sftp put', ...put.cpu);
  cpuLine('files API upload', ...cUp);
  row(`sftp get ${mb} MiB (vs files API read)`, get.rate, apiGetRate, 'MB/s');
  cpuLine('sftp get', ...get.cpu);
  cpuLine('files API read', ...cDown);
  t0 = now();
  execFileSync('cp', [big, `${big}.copy`]);
  console.log(`${'local cp of the same file'.padEnd(44)} ${(mb / ((now() - t0) / 1000)).toFixed(0)} MB/s (${statSync(big).size} bytes)`);
  console.log(JSON.stringify({ date: new Date().toISOString(), runs, mb, rows }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  await engine.close();
}
