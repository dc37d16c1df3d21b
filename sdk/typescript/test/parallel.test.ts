// client.parallel: map/all/race over live branches of a source, pool over plain tasks (same
// signatures and errors as the Python SDK: docs/sdk-behaviour.md).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceTracker, testClient } from './helpers/env.js';
import { ParallelError } from '../src/index.js';

const client = testClient();
const tracker = new InstanceTracker(client);
after(() => tracker.cleanup());

test('map branches the source once per item, bounded by concurrency, and stops the children', async () => {
  const source = await tracker.start();
  await source.exec('echo base > /root/base');
  const seen: string[] = [];
  const results = await client.parallel.map(
    ['a', 'b', 'c'],
    async (item, child) => {
      seen.push(child.id);
      tracker.track(child);
      assert.equal(child.parentInstanceId, source.id);
      return (await child.exec(`cat /root/base; echo ${item}`)).stdout;
    },
    { source, concurrency: 2, metadata: { via: 'map' } },
  );
  assert.deepEqual(results, ['base\na\n', 'base\nb\n', 'base\nc\n']);
  assert.equal(new Set(seen).size, 3);
  const children = await client.instances.list({ parentId: source.id }).toArray();
  assert.ok(children.every((c) => c.state === 'stopped'));
});

test('race branches the source per task, keeps the first success running and stops the losers', async () => {
  const source = await tracker.start();
  const winner = await client.parallel.race(source, [
    (i) => (tracker.track(i), i.exec('sleep 20; echo slow').then((r) => r.stdout)),
    (i) => (tracker.track(i), i.exec('echo fast').then((r) => r.stdout)),
  ]);
  assert.equal(winner.value, 'fast\n');
  assert.equal(winner.index, 1);
  assert.equal(winner.instance.parentInstanceId, source.id);
  assert.equal((await client.instances.get(winner.instance.id)).state, 'ready');
  const others = (await client.instances.list({ parentId: source.id }).toArray()).filter((c) => c.id !== winner.instance.id);
  assert.ok(others.every((c) => c.state === 'stopped'), JSON.stringify(others.map((c) => c.state)));
  await winner.instance.stop();
  // Every task failing is one ParallelError carrying each error in task order (as in Python).
  const failed = await client.parallel
    .race(source, [async () => Promise.reject(new Error('a')), async () => Promise.reject(new Error('b'))])
    .then(() => undefined, (e: unknown) => e);
  assert.ok(failed instanceof ParallelError);
  assert.equal(failed.code, 'parallel_failed');
  assert.deepEqual(failed.errors.map((e) => (e as Error).message), ['a', 'b']);
});

test('all runs each task on its own branch and stops them all', async () => {
  const source = await tracker.start();
  const ids = await client.parallel.all(source, [async (i) => i.id, async (i) => i.id]);
  assert.equal(new Set(ids).size, 2);
  for (const id of ids) assert.equal((await client.instances.get(id)).state, 'stopped');
  assert.deepEqual(await client.parallel.all(source, []), []);
});

test('pool keeps input order, bounds concurrency and aborts siblings on a failure', async () => {
  let inFlight = 0;
  let peak = 0;
  const task = (n: number) => async () => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 20 * (5 - n)));
    inFlight -= 1;
    return n;
  };
  assert.deepEqual(await client.parallel.pool(2, [1, 2, 3, 4].map(task)), [1, 2, 3, 4]);
  assert.equal(peak, 2);
  let aborted = false;
  await assert.rejects(
    client.parallel.pool(2, [
      async () => Promise.reject(new Error('boom')),
      (signal) => new Promise((r) => signal.addEventListener('abort', () => ((aborted = true), r(0)))),
    ]),
    /boom/,
  );
  assert.ok(aborted, 'the sibling saw the abort');
});
