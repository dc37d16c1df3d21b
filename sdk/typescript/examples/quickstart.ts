// Typed-usage check (compiled with `tsc --noEmit -p tsconfig.examples.json` by the tests): the
// main flows written as a user would, against the package's public types.
import { FaaSClient, InstanceNotReadyError, type ExecutionResult, type Instance, type Snapshot } from '@faas/sdk';

export async function quickstart(client = new FaaSClient()): Promise<ExecutionResult> {
  // Chain build steps; each returns a new Snapshot (cached by the engine per step).
  const snapshot: Snapshot = await client.snapshots.create({ memory: 512 }).exec('echo hello > /greeting').exec(['sh', '-c', 'cat /greeting']);
  await using instance: Instance = await snapshot.start({ metadata: { example: 'quickstart' } });
  try {
    return await instance.exec('cat /greeting', { timeout: 10_000 });
  } catch (error) {
    if (error instanceof InstanceNotReadyError) console.error('state was', error.details?.state);
    throw error;
  }
}

export async function seedChain(client: FaaSClient): Promise<Instance> {
  // The exact shape of the SDK specification's example.
  return client.snapshots
    .create()
    .then((s) => s.exec('npm --version || true'))
    .then((s) => s.upload('./src', '/app'))
    .then((s) => s.exec('ls /app'))
    .then((s) => client.instances.start({ snapshotId: s.id }));
}

export async function listing(client: FaaSClient): Promise<string[]> {
  const ids: string[] = [];
  for await (const instance of client.instances.list({ state: 'ready', pageSize: 10 })) ids.push(`${instance.id} ${instance.state}`);
  const all: Snapshot[] = await client.snapshots.list().toArray();
  const images = await client.images.list();
  return [...ids, ...all.map((s) => s.id), ...images.map((i) => i.name)];
}
