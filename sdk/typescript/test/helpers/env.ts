// Shared by the integration tests: a client for the engine that scripts/run-tests.mjs started,
// the one snapshot every file reuses, and a tracker that stops what a test started.
import { FaaSClient, Instance } from '../../src/index.js';

export function requireEngine(): { endpoint: string; apiKey: string; snapshotId: string } {
  const endpoint = process.env.FAAS_ENDPOINT;
  const apiKey = process.env.FAAS_API_KEY;
  const snapshotId = process.env.FAAS_TEST_SNAPSHOT;
  if (!endpoint || !apiKey || !snapshotId) throw new Error('run the tests with `npm test` (scripts/run-tests.mjs starts the engine)');
  return { endpoint, apiKey, snapshotId };
}

export function testClient(): FaaSClient {
  const { endpoint, apiKey } = requireEngine();
  return new FaaSClient({ endpoint, apiKey });
}

export const sharedSnapshotId = (): string => requireEngine().snapshotId;

/** Remembers instances a test started and deletes them all at the end (at most a few are alive). */
export class InstanceTracker {
  private readonly instances = new Set<string>();

  constructor(private readonly client: FaaSClient) {}

  track<T extends Instance | Instance[]>(value: T): T {
    for (const i of Array.isArray(value) ? value : [value]) this.instances.add(i.id);
    return value;
  }

  async start(metadata?: Record<string, string>): Promise<Instance> {
    return this.track(await this.client.instances.start({ snapshotId: sharedSnapshotId(), metadata }));
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.instances].map((id) => this.client.instances.delete(id).catch(() => undefined)));
    this.instances.clear();
  }
}


/** A local port nothing listens on (connections to it are refused). */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
