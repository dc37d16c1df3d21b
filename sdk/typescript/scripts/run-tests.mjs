#!/usr/bin/env node
// Runs the test suite against a real engine that this script starts for the run: a temporary
// FAAS_STATE_DIR, its own subnet (FAAS_SUBNET, default 10.221.0.0/16) and a free port. It creates
// one snapshot that every test file reuses, runs `node --test` on the compiled tests, then stops
// the engine (with its instances) and removes the state directory.
//   node scripts/run-tests.mjs [test files…]   (default: every build-test/test/*.test.js)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const engineMain = process.env.FAAS_ENGINE_MAIN ?? resolve(packageDir, '../../engine/dist/src/main.js');
if (!existsSync(engineMain)) {
  console.error(`engine not built at ${engineMain}: run \`npm run build --workspaces\` at the repository root`);
  process.exit(1);
}

const freePort = () =>
  new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });

const stateDir = mkdtempSync(join(tmpdir(), 'faas-sdk-test-'));
const port = await freePort();
const endpoint = `http://127.0.0.1:${port}`;
const engineEnv = {
  ...process.env,
  FAAS_STATE_DIR: stateDir,
  FAAS_PORT: String(port),
  FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.221.0.0/16',
  FAAS_STOP_INSTANCES_ON_EXIT: '1',
  // Engines run side by side: the SSH gateway takes a free port (GET /v1/ssh/host says which).
  FAAS_SSH_PORT: '0',
};
delete engineEnv.FAAS_ENDPOINT;
delete engineEnv.FAAS_API_KEY;
const log = openSync(join(stateDir, 'engine.log'), 'a');
const engine = spawn(process.execPath, [engineMain], { env: engineEnv, stdio: ['ignore', log, log] });
let engineExited = false;
engine.once('exit', () => (engineExited = true));

async function teardown() {
  if (!engineExited) {
    engine.kill('SIGTERM');
    const deadline = Date.now() + 30_000;
    while (!engineExited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (!engineExited) engine.kill('SIGKILL');
  }
  // What `faas engine stop --clean` does: the engine's firewall chains and runsc's mount go too.
  spawnSync(process.execPath, [engineMain, 'clean'], { env: engineEnv, stdio: 'ignore' });
  spawnSync('umount', ['-l', join(stateDir, 'runsc/null-netns')], { stdio: 'ignore' });
  rmSync(stateDir, { recursive: true, force: true });
}

let exitCode = 1;
try {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${endpoint}/v1/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (engineExited || Date.now() > deadline) throw new Error(`test engine did not start; its log:\n${readFileSync(join(stateDir, 'engine.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { apiKey } = JSON.parse(readFileSync(join(stateDir, 'credentials.json'), 'utf8'));
  const created = await fetch(`${endpoint}/v1/snapshots`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ metadata: { purpose: 'sdk-tests' } }),
  });
  if (!created.ok) throw new Error(`could not create the shared test snapshot: ${await created.text()}`);
  const snapshot = await created.json();

  const testDir = join(packageDir, 'build-test/test');
  const all = process.argv.slice(2).length
    ? process.argv.slice(2)
    : readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(testDir, f));
  // The shared scenarios run first, in their own pass: some expect an engine with nothing else in
  // it yet (there is no route to delete an image, so the CLI test's imports would stay).
  const isConformance = (f) => f.endsWith('conformance.test.js');
  const passes = [all.filter(isConformance), all.filter((f) => !isConformance(f))].filter((p) => p.length > 0);
  const env = { ...process.env, FAAS_STATE_DIR: stateDir, FAAS_ENDPOINT: endpoint, FAAS_API_KEY: apiKey, FAAS_TEST_SNAPSHOT: snapshot.id, FAAS_PORT: String(port) };
  exitCode = 0;
  for (const files of passes) {
    // One file at a time: the machine has 2 cores and every file starts sandboxes.
    // The timeout also bounds each file as a whole: the conformance file holds every shared
    // scenario (24 of them, each booting sandboxes), so it gets more than one ordinary file.
    const timeout = files.some(isConformance) ? 1_200_000 : 180_000;
    const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', `--test-timeout=${timeout}`, ...files], { env, stdio: 'inherit', cwd: packageDir });
    if (result.status !== 0) exitCode = result.status ?? 1;
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
} finally {
  await teardown();
}
process.exit(exitCode);
