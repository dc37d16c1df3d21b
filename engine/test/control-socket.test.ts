// Checkpoint, pause and resume go to the sandbox's control socket instead of the runsc CLI. These
// are the ways that can fail: no such sandbox, an image directory that is not empty, a sandbox
// killed before the call. Each must be a clear runtime error, never a hang, and leave the sandbox
// (when there is one) running.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FaasError } from '../src/core/errors.js';
import { RunscRuntime } from '../src/runtime/runsc/runsc.js';
import { startEngine, type TestEngine } from './harness.js';

describe('runsc control socket', () => {
  let t: TestEngine;
  let runtime: RunscRuntime;
  let instId: string;
  const scratch = mkdtempSync('/tmp/faas-test-images-');

  const runtimeError = (pattern: RegExp) => (err: unknown) => {
    assert.ok(err instanceof FaasError, `a FaasError, got ${String(err)}`);
    assert.equal(err.code, 'runtime_error');
    assert.match(err.message, pattern);
    return true;
  };

  before(async () => {
    t = await startEngine();
    const state = t.config.stateDir;
    runtime = new RunscRuntime({ binary: t.config.runsc, root: join(state, 'runsc'), filestoreDir: join(state, 'filestore'), logDir: join(state, 'logs') });
    const snap = (await t.api('POST', '/v1/snapshots', {})).body.id;
    instId = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
  });
  after(async () => {
    await t?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('checkpoints a running sandbox into the three image files and leaves it running', async () => {
    const dir = join(scratch, 'ok');
    await runtime.checkpoint(instId, dir, true);
    assert.deepEqual(readdirSync(dir).sort(), ['checkpoint.img', 'pages.img', 'pages_meta.img']);
    const r = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'echo alive' });
    assert.equal(r.body.stdout, 'alive\n');
  });

  it('names the sandbox when there is no control socket to talk to', async () => {
    await assert.rejects(runtime.pause('inst_doesnotexist'), runtimeError(/inst_doesnotexist is not running/));
    await assert.rejects(runtime.resume('inst_doesnotexist'), runtimeError(/inst_doesnotexist/));
    await assert.rejects(runtime.checkpoint('inst_doesnotexist', join(scratch, 'none'), true), runtimeError(/inst_doesnotexist/));
  });

  it('refuses an image directory that already has files, and the sandbox keeps running', async () => {
    const dir = join(scratch, 'taken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pages.img'), 'not mine');
    await assert.rejects(runtime.checkpoint(instId, dir, true), runtimeError(/exist/i));
    const r = await t.api('POST', `/v1/instances/${instId}/exec`, { command: 'echo still here' });
    assert.equal(r.body.stdout, 'still here\n');
  });

  it('a sandbox killed just before a snapshot gives a runtime error in the envelope, not a hang', async () => {
    const snap = (await t.api('GET', `/v1/instances/${instId}`)).body.snapshotId;
    const victim = (await t.api('POST', '/v1/instances', { snapshotId: snap })).body.id;
    const pid = JSON.parse(execFileSync(t.config.runsc, [`--root=${join(t.config.stateDir, 'runsc')}`, 'state', victim], { encoding: 'utf8' })).pid as number;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
    const res = await t.api('POST', `/v1/instances/${victim}/snapshot`, {});
    // Either the death watcher saw it first (the instance is `error`: a conflict) or the checkpoint
    // found the socket gone; both are answers, with the error envelope.
    assert.ok([409, 500, 502, 503].includes(res.status), `status ${res.status}`);
    assert.ok(['runtime_error', 'conflict', 'invalid_state'].includes(res.body.error.code), JSON.stringify(res.body));
    const listed = (await t.api('GET', '/v1/snapshots?limit=100')).body.data as { instanceId: string | null }[];
    assert.ok(!listed.some((s) => s.instanceId === victim), 'no snapshot row is left from the failed checkpoint');
  });
});
