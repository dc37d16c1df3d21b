#!/usr/bin/env node
// Port forwards against the direct path, in the same run, on the same instance and servers:
//   connect: time from connect() to the first byte of a server that greets and closes
//            (forward: through the SDK's local listener, i.e. local accept + WebSocket upgrade +
//            the engine's connect to the instance; direct: the bench process, root, to <ip>:port)
//   download / upload: MiB/s of a bulk transfer each way (a server that sends N MiB; one that
//            reads to EOF and answers the count)
// Usage: node bench/port-forward.mjs [--connects 200] [--mib 256] [--runs 5]
//   FAAS_SUBNET / FAAS_NET_TAG / FAAS_STATE_DIR pick the engine's subnet (default 10.240.0.0/16),
//   tag and state directory.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FaaSClient } from '../sdk/typescript/dist/index.js';
import { fmt, REPO, settle, startEngine, stats } from './lib.mjs';

const { values } = parseArgs({ options: { connects: { type: 'string', default: '200' }, mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '5' } } });
const CONNECTS = Number(values.connects);
const MIB = Number(values.mib);
const RUNS = Number(values.runs);

const SERVERS = `
import socket, threading
blob = b"x" * (1 << 20)
def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(512)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
def hello(c):
    c.sendall(b"!")
    c.close()
def source(c):
    n = int(c.recv(32).strip())
    for _ in range(n):
        c.sendall(blob)
    c.close()
def sink(c):
    total = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        total += len(d)
    c.sendall(str(total).encode())
    c.close()
threading.Thread(target=serve, args=(8001, hello), daemon=True).start()
threading.Thread(target=serve, args=(8002, source), daemon=True).start()
serve(8003, sink)
`;

/** ms from connect() to the first byte. */
function firstByte(host, port) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect({ host, port });
    s.once('data', () => {
      resolve(performance.now() - t0);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/** MiB/s of receiving `mib` MiB from the source server. */
function download(host, port, mib) {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const t0 = performance.now();
    const s = connect({ host, port }, () => s.write(`${mib}\n`));
    s.on('data', (d) => (bytes += d.length));
    s.on('end', () => {
      if (bytes !== mib * 1024 * 1024) return reject(new Error(`download: got ${bytes} bytes`));
      resolve(mib / ((performance.now() - t0) / 1000));
    });
    s.on('error', reject);
  });
}

/** MiB/s of sending `mib` MiB to the sink server (until its count comes back). */
function upload(host, port, mib) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(1 << 20, 'y');
    let answer = '';
    const t0 = performance.now();
    const s = connect({ host, port }, async () => {
      for (let i = 0; i < mib; i++) if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      s.end();
    });
    s.on('data', (d) => (answer += d));
    s.on('end', () => {
      if (Number(answer) !== mib * 1024 * 1024) return reject(new Error(`upload: server counted ${answer}`));
      resolve(mib / ((performance.now() - t0) / 1000));
    });
    s.on('error', reject);
  });
}

const engineEnv = { FAAS_SUBNET: process.env.FAAS_SUBNET ?? '10.240.0.0/16', ...(process.env.FAAS_NET_TAG ? { FAAS_NET_TAG: process.env.FAAS_NET_TAG } : {}), ...(process.env.FAAS_STATE_DIR ? { FAAS_STATE_DIR: process.env.FAAS_STATE_DIR } : {}) };
const engine = await startEngine(engineEnv);
const client = new FaaSClient({ endpoint: engine.url, apiKey: engine.key });
const rows = [];
try {
  const snap = await client.snapshots.create({});
  const inst = await client.instances.start({ snapshotId: snap.id });
  const ip = (await engine.api('GET', `/v1/instances/${inst.id}`)).body.network.ip;
  await inst.files.write('/tmp/servers.py', SERVERS);
  await inst.processes.start('python3 /tmp/servers.py');
  for (let i = 0; i < 100; i++) {
    try {
      await firstByte(ip, 8001); // the three servers start together
      await settle();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const fHello = await client.network.portForward(inst, 0, 8001);
  const fSource = await client.network.portForward(inst, 0, 8002);
  const fSink = await client.network.portForward(inst, 0, 8003);
  // Warm-up (JIT, first WebSocket) outside the samples.
  for (let i = 0; i < 10; i++) {
    await firstByte(ip, 8001);
    await firstByte('127.0.0.1', fHello.localPort);
  }
  await settle();
  const cDirect = [];
  const cForward = [];
  for (let i = 0; i < CONNECTS; i++) {
    // Interleaved, so both paths see the same machine load.
    cDirect.push(await firstByte(ip, 8001));
    cForward.push(await firstByte('127.0.0.1', fHello.localPort));
  }
  rows.push(['connect to first byte (ms)', stats(cDirect), stats(cForward), fmt]);
  for (const [name, fn, fwd, port] of [['download (MiB/s)', download, fSource, 8002], ['upload (MiB/s)', upload, fSink, 8003]]) {
    const direct = [];
    const forward = [];
    for (let i = 0; i < RUNS; i++) {
      await settle();
      direct.push(await fn(ip, port, MIB));
      await settle();
      forward.push(await fn('127.0.0.1', fwd.localPort, MIB));
    }
    rows.push([name, stats(direct), stats(forward), (x) => x.toFixed(0)]);
  }
  await Promise.all([fHello.close(), fSource.close(), fSink.close()]);
} finally {
  client.close();
  await engine.close();
  // engine.close() stops the engine but leaves its firewall chains: remove them like `faas engine stop --clean`.
  execFileSync(process.execPath, [join(REPO, 'engine/dist/src/main.js'), 'clean'], { env: { ...process.env, ...engineEnv, FAAS_STATE_DIR: engine.stateDir, FAAS_NET_TAG: engineEnv.FAAS_NET_TAG ?? engine.tag }, stdio: 'ignore' });
  rmSync(engine.stateDir, { recursive: true, force: true });
}

console.log(`\nport forward vs direct to the instance IP (connects: ${CONNECTS}; transfers: ${RUNS} x ${MIB} MiB)`);
console.log('| measure | direct p50 / p95 | forward p50 / p95 |');
console.log('|---|---|---|');
for (const [name, d, f, show] of rows) console.log(`| ${name} | ${show(d.p50)} / ${show(d.p95)} | ${show(f.p50)} / ${show(f.p95)} |`);
console.log('(for MiB/s, p95 is the 95th percentile of the rates: the fastest runs; the slowest is min)');
for (const [name, d, f, show] of rows) console.log(`${name}: direct min ${show(d.min)} max ${show(d.max)}; forward min ${show(f.min)} max ${show(f.max)}`);
