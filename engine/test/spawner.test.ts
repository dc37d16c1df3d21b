// The spawner helper runs the engine's short-lived programs (runsc, ip). What the engine relies on:
// exit status and output come back, stdin input is delivered, a program that cannot start is an
// error, and a helper that dies fails the calls in flight and is replaced on the next call; when
// the engine dies, its helper finishes the programs it started before it exits, and the next engine
// can wait for it (else a half-done `runsc restore` could appear after the next reconcile).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { leftoverHelpers, Spawner, waitForLeftoverHelpers } from '../src/runtime/spawner.js';

describe('spawner', () => {
  const spawner = new Spawner();
  const dir = mkdtempSync('/tmp/faas-test-spawner-');
  after(() => {
    spawner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns exit status, stdout and stderr', async () => {
    const r = await spawner.run({ file: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] });
    assert.deepEqual(r, { code: 3, signal: null, stdout: 'out\n', stderr: 'err\n' });
  });

  it('feeds input to stdin', async () => {
    const r = await spawner.run({ file: 'cat', args: [], input: 'line one\nline two\n' });
    assert.equal(r.stdout, 'line one\nline two\n');
  });

  it('writes both streams to a log file, and returns at exit even if a child keeps the file open', async () => {
    const log = join(dir, 'x.log');
    const t0 = Date.now();
    const r = await spawner.run({ file: 'sh', args: ['-c', 'echo hello; (sleep 5 &) ; echo bye >&2'], logFile: log });
    assert.equal(r.code, 0);
    assert.ok(Date.now() - t0 < 4000, 'did not wait for the background sleep');
    assert.equal(readFileSync(log, 'utf8'), 'hello\nbye\n');
  });

  it('rejects when the program cannot be started', async () => {
    await assert.rejects(spawner.run({ file: '/nonexistent/program', args: [] }), /ENOENT/);
  });

  it('fails the calls in flight when the helper dies, then starts a new one', async () => {
    const pending = spawner.run({ file: 'sleep', args: ['5'] });
    await new Promise((r) => setTimeout(r, 200));
    const helperPid = (spawner as unknown as { child: { pid: number } }).child.pid;
    process.kill(helperPid, 'SIGKILL');
    await assert.rejects(pending, /helper exited/);
    const r = await spawner.run({ file: 'echo', args: ['again'] });
    assert.equal(r.stdout, 'again\n');
  });

  it('runs many calls at once', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => spawner.run({ file: 'echo', args: [String(i)] })));
    assert.deepEqual(results.map((r) => r.stdout), Array.from({ length: 20 }, (_, i) => `${i}\n`));
  });

  it('after the engine is SIGKILLed, its helper finishes the program in flight, then exits; the next engine can wait for it', async () => {
    const label = join(dir, 'runsc-root');
    const done = join(dir, 'finished');
    const started = join(dir, 'started');
    const module = fileURLToPath(new URL('../src/runtime/spawner.js', import.meta.url));
    // A stand-in engine: starts a program that takes a while through a labelled helper, then is killed.
    const engine = spawn(process.execPath, ['--input-type=module', '-e', `
      const { Spawner } = await import(${JSON.stringify(module)});
      const { existsSync } = await import('node:fs');
      new Spawner(${JSON.stringify(label)}).run({ file: 'sh', args: ['-c', 'touch ${started}; sleep 1.5; touch ${done}'] });
      const poll = setInterval(() => existsSync(${JSON.stringify(started)}) && (clearInterval(poll), process.stdout.write('running')), 10);
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => engine.stdout!.once('data', r));
    engine.kill('SIGKILL');
    await new Promise((r) => engine.once('exit', r));
    assert.equal(leftoverHelpers(label).length, 1, 'the dead engine\'s helper is still running its program');
    assert.equal(existsSync(done), false);
    assert.deepEqual(await waitForLeftoverHelpers(label, 30_000), [], 'the helper exits once the program is done');
    assert.equal(existsSync(done), true, 'the program ran to its end before the helper exited');
  });
});
