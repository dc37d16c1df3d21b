#!/usr/bin/env node
// The main job, end to end on this machine, through the TypeScript SDK: start the engine, make a
// snapshot from the default image, start an instance, run a command, start a process that keeps a
// counter in memory, live-branch the instance 4 ways, show that every child still runs that
// process with its state and then diverges, and print the timings. Leaves nothing running that it
// started.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaaSClient } from '../sdk/typescript/dist/index.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const STATE = process.env.FAAS_STATE_DIR ?? '/var/lib/faas';
const PORT = process.env.FAAS_PORT ?? '7440';
const ENDPOINT = `http://127.0.0.1:${PORT}`;
const now = () => performance.now();
const ms = (a, b) => `${(b - a).toFixed(0)} ms`;
const say = (s = '') => console.log(s);
const timings = [];
const timed = async (label, fn) => {
  const t0 = now();
  const out = await fn();
  timings.push([label, now() - t0]);
  return out;
};

async function healthy() {
  try {
    return (await fetch(`${ENDPOINT}/v1/health`)).ok;
  } catch {
    return false;
  }
}

let engine = null;
if (!(await healthy())) {
  mkdirSync(STATE, { recursive: true });
  const log = openSync(join(STATE, 'engine.log'), 'a');
  engine = spawn(process.execPath, [join(REPO, 'engine/dist/src/main.js')], { env: { ...process.env, FAAS_STATE_DIR: STATE, FAAS_PORT: PORT }, stdio: ['ignore', log, log] });
  const t0 = now();
  while (!(await healthy())) {
    if (engine.exitCode !== null) throw new Error(`the engine exited; see ${join(STATE, 'engine.log')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  say(`engine started on ${ENDPOINT} in ${ms(t0, now())} (state in ${STATE})`);
} else {
  say(`using the engine already running on ${ENDPOINT}`);
}

// No key in the code: the SDK finds the local engine's credentials on its own.
const client = new FaaSClient({ endpoint: ENDPOINT });
const started = [];
const snapshots = [];
try {
  const snap = await timed('snapshot from the default image', () => client.snapshots.create({ metadata: { demo: 'true' } }));
  snapshots.push(snap.id);
  say(`snapshot ${snap.id}: booted the default Debian image, agent ready, checkpointed (${(snap.size / 2 ** 20).toFixed(1)} MB)`);

  const inst = await timed('start an instance (restore)', () => snap.start({ metadata: { demo: 'true' } }));
  started.push(inst);
  say(`instance ${inst.id} restored from it, ready at ${inst.network.ip}`);

  const hello = await timed('exec round trip', () => inst.exec('echo "hello from $(hostname), $(python3 --version)"'));
  say(`exec: ${hello.stdout.trim()} (exit ${hello.exitCode})`);

  // A counter that lives only in a process's memory: each request adds one and returns the value.
  await inst.exec(`cat > /root/counter.py <<'PY'
import http.server
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global n; n += 1; b = str(n).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', 9000), H).serve_forever()
PY
nohup python3 /root/counter.py >/dev/null 2>&1 &
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9000/ && break; sleep 0.05; done`);
  const bump = async (i) => Number((await i.exec('curl -s http://127.0.0.1:9000/')).stdout);
  for (let i = 0; i < 3; i++) await bump(inst);
  const before = await bump(inst);
  say(`a background process in the parent keeps a counter in memory: ${before}`);

  const t0 = now();
  const branch = await client.instances.branch(inst, { count: 4, metadata: { demo: 'true' } });
  const tReturned = now();
  await Promise.all(branch.instances.map((c) => c.exec(['true'])));
  const tAnswering = now();
  timings.push(['live branch x4 (API returned)', tReturned - t0], ['live branch x4 (every child answering)', tAnswering - t0]);
  started.push(...branch.instances);
  snapshots.unshift(branch.snapshot.id);
  say(`\nlive branch x4 of ${inst.id}: returned in ${ms(t0, tReturned)}, every child answering in ${ms(t0, tAnswering)}`);
  for (const [i, c] of branch.instances.entries()) {
    const first = await bump(c);
    let last = first;
    for (let k = 0; k < i * 2; k++) last = await bump(c);
    say(`  child ${i + 1} ${c.id} @ ${c.network.ip}: counter continued at ${first} (parent was at ${before}); after ${i * 2} more requests: ${last}`);
  }
  say(`  parent ${inst.id}: counter ${await bump(inst)} (it kept running on its own)`);

  say('\ntimings');
  for (const [label, t] of timings) say(`  ${label.padEnd(40)} ${t.toFixed(0).padStart(6)} ms`);
} finally {
  for (const i of started.reverse()) await i.delete().catch(() => {});
  for (const id of snapshots) await client.snapshots.delete(id, { force: true }).catch(() => {});
  client.close();
  if (engine) {
    engine.kill('SIGTERM');
    await new Promise((r) => engine.once('exit', r));
    say('\nengine stopped; the demo\'s instances and snapshots were removed');
  }
}
