// Terminal (WebSocket) and engine events (SSE with Last-Event-ID resume).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FaaSClient, InstanceNotFoundError, UnauthorizedError, type FaaSEvent } from '../src/index.js';
import { InstanceTracker, requireEngine, sharedSnapshotId, testClient } from './helpers/env.js';

const client = testClient();
const tracker = new InstanceTracker(client);
after(() => {
  client.close();
  return tracker.cleanup();
});

test('terminal: run a command, read its output and exit code, resize', async (t) => {
  const instance = await tracker.start();
  const terminal = await instance.terminal({ command: 'stty size; echo hi-from-tty', cols: 100, rows: 30 });
  let output = '';
  for await (const chunk of terminal) output += chunk.toString('utf8');
  assert.match(output, /30 100/);
  assert.match(output, /hi-from-tty/);
  assert.equal(await terminal.exited, 0);

  const shell = await instance.terminal();
  let shellOutput = '';
  shell.on('data', (chunk: Buffer) => (shellOutput += chunk.toString('utf8')));
  // Typed once the login shell has printed something (its prompt), as a person would: a resize and
  // a command sent before bash started once read 24 80 in CI under heavy load (not reproduced in 8
  // quiet runs; noted in the stop note).
  while (shellOutput === '') await new Promise((r) => setTimeout(r, 20));
  shell.resize(120, 40);
  shell.write('stty size; exit 5\n');
  assert.equal(await shell.exited, 5);
  assert.match(shellOutput, /40 120/);
  await assert.rejects(client.terminals.open('inst_doesnotexist'), InstanceNotFoundError);
});

// Regression: output that arrived before anyone iterated (ws can deliver it in the same tick as
// 'open') was dropped, so a fast command's terminal looked empty.
test('terminal: output is kept until the caller starts reading', async () => {
  const instance = await tracker.start();
  const terminal = await instance.terminal({ command: 'echo early-bird' });
  await new Promise((r) => setTimeout(r, 300));
  let output = '';
  for await (const chunk of terminal) output += chunk.toString('utf8');
  assert.match(output, /early-bird/);
  assert.equal(await terminal.exited, 0);
});

test('events: on/once/off deliver engine events; stream resumes with lastEventId', async (t) => {
  const ready: FaaSEvent[] = [];
  const onReady = (e: FaaSEvent) => ready.push(e);
  const any: FaaSEvent[] = [];
  client.events.on('instance.ready', onReady);
  client.events.on('*', (e) => any.push(e));
  const first = new Promise<FaaSEvent>((resolve) => client.events.once('instance.ready', resolve));
  await client.events.connected();
  const instance = await tracker.start();
  const event = await first;
  assert.equal(event.resourceId, instance.id);
  for (let i = 0; i < 50 && !ready.some((e) => e.resourceId === instance.id); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(ready.some((e) => e.resourceId === instance.id));
  assert.ok(any.length >= ready.length);
  client.events.off('instance.ready', onReady);

  // Resume: events after a known sequence number, filtered by resource.
  const after = event.seq - 1;
  const replayed: FaaSEvent[] = [];
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  try {
    for await (const e of client.events.stream({ lastEventId: after, resourceId: instance.id, signal: controller.signal })) {
      replayed.push(e);
      if (e.seq >= event.seq) break;
    }
  } catch {
    /* aborted by the timer */
  } finally {
    clearTimeout(timer);
  }
  assert.ok(replayed.some((e) => e.seq === event.seq), 'the event after Last-Event-ID is replayed');
  client.events.close();
  void sharedSnapshotId;
});

test('events: a refused key stops the listener (no reconnect loop); connected() rejects and error handlers hear it', async () => {
  // Same behaviour as the Python SDK's test_listener_stops_on_401_and_reports_it.
  const stranger = new FaaSClient({ endpoint: requireEngine().endpoint, apiKey: 'not-a-key', maxRetries: 0 });
  const errors: unknown[] = [];
  stranger.events.on('error', (e) => errors.push(e));
  stranger.events.on('instance.ready', () => undefined);
  await assert.rejects(stranger.events.connected(), UnauthorizedError);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof UnauthorizedError);
  // Stopped for good: a later connected() rejects at once instead of waiting for a reconnect.
  await assert.rejects(stranger.events.connected(), UnauthorizedError);
  stranger.close();
});
