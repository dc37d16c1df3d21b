// client.parallel: map over live branches, race with losers stopped, all and pool.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceTracker, testClient } from './helpers/env.js';

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
    { from: source, concurrency: 2, metadata: { via: 'map' } },
  );
  assert.deepEqual(results, ['base\na\n', 'base\nb\n', 'base\nc\n']);
  assert.equal(new Set(seen).size, 3);
  const children = await client.instances.list({ parentId: source.id }).toArray();
  assert.ok(children.every((c) => c.state === 'stopped'));
});

test('race keeps the first success and stops the losers', async () => {
  const { instances } = await (await tracker.start()).branch(2);
  tracker.track(instances);
  const [fast, slow] = instances;
  const winner = await client.parallel.race([
    { instance: slow, run: (i) => i.exec('sleep 20; echo slow').then((r) => r.stdout) },
    { instance: fast, run: (i) => i.exec('echo fast').then((r) => r.stdout) },
  ]);
  assert.equal(winner.value, 'fast\n');
  assert.equal(winner.index, 1);
  assert.equal(winner.instance?.id, fast.id);
  assert.equal((await client.instances.get(slow.id)).state, 'stopped');
  await assert.rejects(client.parallel.race([async () => Promise.reject(new Error('x'))]), AggregateError);
});

test('all and pool keep input order and bound concurrency', async () => {
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
  assert.deepEqual(await client.parallel.all([1, 2, 3].map(task)), [1, 2, 3]);
  let aborted = false;
  await assert.rejects(
    client.parallel.all([
      async () => Promise.reject(new Error('boom')),
      (signal) => new Promise((r) => signal.addEventListener('abort', () => ((aborted = true), r(0)))),
    ]),
    /boom/,
  );
  assert.ok(aborted, 'the sibling saw the abort');
});
