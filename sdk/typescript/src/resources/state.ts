// client.state: the seed's StateOperations (checkpoint, restore, timeline, rollback), the same
// module as the Python SDK's `state`. Semantics (engine docs/state.md): a checkpoint is a snapshot
// of a running instance; the timeline is the chain of checkpoints its current state descends from
// (oldest first, inherited ones marked); rollback(steps) returns the SAME instance in place to the
// checkpoint `steps` back from the latest one, like `git reset --hard HEAD~(steps-1)`.
import type * as api from '../generated/api.gen.js';
import type { FaaSClient } from '../client.js';
import type { RequestOptions } from '../core/http.js';
import { idOf, seg, type IdRef } from '../core/ids.js';
import type { Instance, StartInstanceConfig } from './instances.js';
import type { Snapshot } from './snapshots.js';

export type TimelineEntry = api.TimelineEntry;

export interface CheckpointOptions {
  name?: string;
  metadata?: Record<string, string>;
  /** Seconds until the checkpoint expires. */
  ttl?: number;
}

export class StateOperations {
  constructor(private readonly client: FaaSClient) {}

  /** Snapshots the running instance (it keeps running); a name or options. Moves its timeline's head. */
  checkpoint(instance: IdRef, nameOrOptions?: string | CheckpointOptions, options?: RequestOptions): Promise<Snapshot> {
    const body = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {});
    return this.client.instances.snapshot(instance, body, options);
  }

  /** A NEW instance from a checkpoint (or any snapshot): `instances.start({snapshotId})`. To go back in place, use rollback. */
  restore(snapshot: IdRef, config: Omit<StartInstanceConfig, 'snapshotId'> = {}, options?: RequestOptions): Promise<Instance> {
    return this.client.instances.start({ ...config, snapshotId: idOf(snapshot) }, options);
  }

  /** The instance's checkpoints, oldest first; `inherited` marks those from the snapshot it started from and that snapshot's history. */
  async timeline(instance: IdRef, options?: RequestOptions): Promise<TimelineEntry[]> {
    const t = await this.client.http.request<api.Timeline>({ ...options, method: 'GET', path: `/v1/instances/${seg(instance)}/timeline` });
    return t.data;
  }

  /**
   * Returns the same instance in place to the checkpoint `steps` back: 1 (default) = the latest
   * checkpoint (drops every change since it), 2 = the one before, … NoCheckpointError (409) past the first.
   */
  rollback(instance: IdRef, steps = 1, options?: RequestOptions): Promise<Instance> {
    return this.client.instances.rollback(instance, steps, options);
  }
}
