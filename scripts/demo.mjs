#!/usr/bin/env node
// The main job, end to end on this machine: start the engine, make a snapshot from the default
// image, start an instance, run a command, start a process that keeps a counter in memory,
// live-branch the instance 4 ways, show that every child still runs that process with its state
// and then diverges, and print the timings. Leaves nothing running that it started.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const STATE = process.env.FAAS_STATE_DIR ?? '/var/lib/faas';
const PORT = process.env.FAAS_PORT ?? '7440';
const URL_ = `http://127.0.0.1:${PORT}`;
const t = () => performance.now();
const ms = (a, b) => `${(b - a).toFixed(0)} ms`;
const say = (s) => console.log(s);

async function healthy() {
  try {
    return (await fetch(`${URL_}/v1/health`)).ok;
  } catch {
    return false;
  }
}

let engineProc = null;
if (!(await healthy())) {
  mkdirSync(STATE, { recursive: true });
  const log = openSync(join(STATE, 'engine.log'), 'a');
  engineProc = spawn(process.execPath, [join(REPO, 'engine/dist/src/main.js')], { env: { ...process.env, FAAS_STATE_DIR: STATE, FAAS_PORT: PORT }, stdio: ['ignore', log, log] });
  const t0 = t();
  while (!(await healthy())) {
    if (engineProc.exitCode !== null) throw new Error(`the engine exited; see ${join(STATE, 'engine.log')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  say(`engine started on ${URL_} in ${ms(t0, t())} (state in ${STATE})`);
} else {
  say(`using the engine already running on ${URL_}`);
}
const key = process.env.FAAS_API_KEY ?? JSON.parse(readFileSync(join(STATE, 'credentials.json'), 'utf8')).apiKey;

async function api(method, path, body) {
  const res = await fetch(URL_ + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${json?.error?.code}: ${json?.error?.message}`);
  return json;
}
const exec = (id, command) => api('POST', `/v1/instances/${id}/exec`, { command });

const started = [];
let snapshots = [];
try {
  let t0 = t();
  const snap = await api('POST', '/v1/snapshots', { metadata: { demo: 'true' } });
  snapshots.push(snap.id);
  say(`snapshot ${snap.id} from the default Debian image: booted, agent ready, checkpointed in ${ms(t0, t())} (${(snap.size / 2 ** 20).toFixed(1)} MB)`);

  t0 = t();
  const inst = await api('POST', '/v1/instances', { snapshotId: snap.id, metadata: { demo: 'true' } });
  started.push(inst.id);
  say(`instance ${inst.id} restored from it and ready in ${ms(t0, t())} at ${inst.network.ip}`);

  t0 = t();
  const r = await exec(inst.id, 'echo "hello from $(hostname), $(python3 --version)"');
  say(`exec: ${r.stdout.trim()}  (exit ${r.exitCode}, round trip ${ms(t0, t())})`);

  // A counter that lives only in a process's memory: each request adds one and returns the value.
  await exec(inst.id, `cat > /root/counter.py <<'PY'
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
  const bump = async (id) => Number((await exec(id, 'curl -s http://127.0.0.1:9000/')).stdout);
  for (let i = 0; i < 3; i++) await bump(inst.id);
  const before = await bump(inst.id);
  say(`background process in the parent keeps a counter in memory: ${before}`);

  t0 = t();
  const branch = await api('POST', `/v1/instances/${inst.id}/branch`, { count: 4, metadata: { demo: 'true' } });
  const tBranch = t();
  await Promise.all(branch.instances.map((c) => api('POST', `/v1/instances/${c.id}/exec`, { argv: ['true'] })));
  const tAnswer = t();
  started.push(...branch.instances.map((c) => c.id));
  snapshots.unshift(branch.snapshot.id);
  say(`\nlive branch ×4 of ${inst.id}: API returned in ${ms(t0, tBranch)}, every child answering in ${ms(t0, tAnswer)}`);

  for (const [i, c] of branch.instances.entries()) {
    const first = await bump(c.id);
    let last = first;
    for (let k = 0; k < i * 2; k++) last = await bump(c.id);
    say(`  child ${i + 1} ${c.id} @ ${c.network.ip}: counter continued at ${first} (parent was at ${before}), after ${i * 2} more requests: ${last}`);
  }
  say(`  parent ${inst.id}: counter ${await bump(inst.id)} — it kept running on its own`);
} finally {
  for (const id of started.reverse()) await api('DELETE', `/v1/instances/${id}`).catch(() => {});
  for (const id of snapshots) await api('DELETE', `/v1/snapshots/${id}?force=true`).catch(() => {});
  if (engineProc) {
    engineProc.kill('SIGTERM');
    await new Promise((r) => engineProc.once('exit', r));
    say('\nengine stopped; demo instances and snapshots removed');
  }
}
