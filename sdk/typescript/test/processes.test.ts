// Background processes: start, list, get, output (iterator, resume with since), stdin, wait, kill.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessNotFoundError, TimeoutError, type Instance } from '../src/index.js';
import { InstanceTracker, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
let instance: Instance;
before(async () => {
  instance = await tracker.start();
});
after(() => tracker.cleanup());

test('start, stdin, output and wait', async (t) => {
  const proc = await instance.processes.start('cat; echo done >&2', { tag: 'cat' });
  assert.ok(proc.pid > 0);
  assert.equal(proc.info.state, 'running');
  await proc.sendStdin('line one\n');
  await proc.sendStdin('line two\n');
  await proc.closeStdin();
  const finished = await proc.wait(10_000);
  assert.equal(finished.state, 'exited');
  assert.equal(finished.exitCode, 0);
  let stdout = '';
  let stderr = '';
  let lastSeq = 0;
  for await (const event of proc.output()) {
    if (event.type === 'stdout') stdout += event.data;
    if (event.type === 'stderr') stderr += event.data;
    if (event.type === 'stdout' || event.type === 'stderr') lastSeq = event.seq;
  }
  assert.equal(stdout, 'line one\nline two\n');
  assert.equal(stderr, 'done\n');
  // Resuming after the last chunk yields only the exit.
  const rest = [];
  for await (const event of proc.output({ since: lastSeq })) rest.push(event.type);
  assert.deepEqual(rest, ['exit']);
  const listed = await instance.processes.list();
  assert.ok(listed.some((p) => p.pid === proc.pid && p.info.tag === 'cat'));
});

test('follow live output, kill, and errors', async (t) => {
  const proc = await instance.processes.start('i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done');
  const ticks: string[] = [];
  for await (const event of proc.output({ follow: true })) {
    if (event.type === 'stdout') ticks.push(event.data);
    if (ticks.length >= 3) break;
  }
  assert.ok(ticks.join('').startsWith('tick 0'));
  await assert.rejects(proc.wait(100), TimeoutError);
  await proc.kill();
  const exited = await proc.wait(10_000);
  assert.equal(exited.state, 'exited');
  assert.equal((await instance.processes.get(proc.pid)).info.state, 'exited');
  await assert.rejects(instance.processes.get(999_999), ProcessNotFoundError);
});
