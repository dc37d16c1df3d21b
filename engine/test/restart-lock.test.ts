// One engine per state directory, held by a kernel-released lock (store/state-lock.ts):
//  - a second engine on the same directory is refused with a message that says what to do, in
//    process and as a process (exit 2, which the systemd unit does not restart);
//  - the lock is free again after a graceful shutdown, and right after SIGKILL even while the
//    killed engine is an unreaped zombie (the pid check it replaces refused exactly that);
//  - `faas engine start` prints the engine's reason from engine.log and the next step;
//  - `faas engine start` works right after SIGKILL of an engine it started, and `faas engine
//    stop` does not mistake the dead engine's zombie for a running one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../src/engine.js';
import { StateDirLockedError } from '../src/store/state-lock.js';
import { EngineProcess, freePort, processState } from './engine-process.js';
import { purge, startEngine, testConfig } from './harness.js';

const CLI = fileURLToPath(new URL('../../../sdk/typescript/dist/cli/main.js', import.meta.url));
// Start/stop only: no pools, so no sandbox is ever made.
const IDLE = { FAAS_WARM_POOL: '0', FAAS_NETNS_POOL: '0' };

function faas(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, FAAS_ENDPOINT: '', FAAS_API_KEY: '', ...env }, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('one engine per state directory', () => {
  it('refuses a second engine on the same state directory, and frees the lock on shutdown', async () => {
    const t = await startEngine({ env: IDLE });
    const dir = t.config.stateDir;
    try {
      await assert.rejects(createEngine(testConfig(dir, IDLE)), (err: Error) => {
        assert.ok(err instanceof StateDirLockedError, String(err));
        assert.match(err.message, /another engine \(pid \d+, per engine.pid\)|another engine holds/);
        assert.match(err.message, /faas engine stop/);
        return true;
      });
      // As a process: exit 2 (the unit's RestartPreventExitStatus) with the reason on stderr.
      const second = spawnSync(process.execPath, [fileURLToPath(new URL('../src/main.js', import.meta.url))], {
        env: { ...process.env, ...IDLE, FAAS_STATE_DIR: dir, FAAS_PORT: String(await freePort()), FAAS_SUBNET: t.config.subnet, FAAS_NET_TAG: 'tzz' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(second.status, 2, second.stderr);
      assert.match(second.stderr, /faas engine failed to start: another engine .*holds .*engine\.lock/);
      assert.equal((await t.api('GET', '/v1/health')).status, 200, 'the first engine is untouched');
    } finally {
      await t.engine.shutdown();
    }
    // The same tag as the first: its clean shutdown removes the chains both left.
    const again = await createEngine(testConfig(dir, { ...IDLE, FAAS_NET_TAG: t.config.netTag }));
    await again.shutdown({ stopInstances: true, clean: true });
    purge(dir);
  });

  it('starts right after SIGKILL while the killed engine is still an unreaped zombie', async () => {
    const dir = mkdtempSync('/tmp/faas-test-lock-');
    const first = new EngineProcess(dir, await freePort(), 'tlk1', IDLE, true);
    const second = new EngineProcess(dir, await freePort(), 'tlk1', IDLE);
    try {
      await first.start();
      assert.equal(Number(readFileSync(join(dir, 'engine.pid'), 'utf8')), first.pid, 'engine.pid names the engine');
      first.kill9();
      for (let i = 0; i < 100 && processState(first.pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(processState(first.pid), 'Z', 'the killed engine is a zombie: its parent never reaps it');
      await second.start();
      assert.equal(processState(first.pid), 'Z', 'still a zombie while the new engine runs');
      assert.equal((await second.api('GET', '/v1/health')).status, 200);
    } finally {
      await second.stop().catch(() => undefined);
      first.release();
      await second.clean();
      purge(dir);
    }
  });

  it('faas engine start prints the engine\'s reason and the next step when the engine cannot start', async () => {
    const t = await startEngine({ env: IDLE });
    try {
      const env = { ...IDLE, FAAS_STATE_DIR: t.config.stateDir, FAAS_PORT: String(await freePort()), FAAS_SUBNET: t.config.subnet, FAAS_NET_TAG: 'tzy' };
      const r = faas(['engine', 'start'], env);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /the engine did not come up: the engine exited \(exit code 2\)/);
      assert.match(r.stderr, /faas engine failed to start: another engine/, 'the reason, from engine.log');
      assert.match(r.stderr, /Another engine uses this state directory: `faas engine status` \/ `faas engine stop`/, 'what to do next');
    } finally {
      await t.close();
    }
  });

  it('faas engine start works right after SIGKILL of an engine it started; stop sees it is gone', async () => {
    const dir = mkdtempSync('/tmp/faas-test-lock-');
    const env = { ...IDLE, FAAS_STATE_DIR: dir, FAAS_PORT: String(await freePort()), FAAS_SUBNET: process.env.FAAS_TEST_SUBNET ?? '10.210.0.0/16', FAAS_NET_TAG: 'tlk2' };
    try {
      const started = faas(['engine', 'start', '--json'], env);
      assert.equal(started.code, 0, started.stderr);
      const pid = JSON.parse(started.stdout).pid as number;
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 100 && !['Z', null].includes(processState(pid)); i++) await new Promise((r) => setTimeout(r, 20));
      const stopped = faas(['engine', 'stop', '--json'], env);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(JSON.parse(stopped.stdout).wasRunning, false, 'a killed engine (gone or a zombie) is not running');
      const again = faas(['engine', 'start', '--json'], env);
      assert.equal(again.code, 0, `start right after SIGKILL: ${again.stderr}`);
      assert.equal(JSON.parse(again.stdout).alreadyRunning, false);
      assert.equal(JSON.parse(faas(['engine', 'stop', '--json'], env).stdout).wasRunning, true);
    } finally {
      faas(['engine', 'stop', '--clean'], env);
      purge(dir);
    }
  });
});
