// client.parallel: fan work out over live branches — the same four operations in both SDKs
// (docs/sdk-behaviour.md):
//   map(items, fn, { source })  one child of `source` per item (`concurrency` alive at once), `fn(item, child)`
//   all(source, tasks)          one child per task, all at once; every child stopped after
//   race(source, tasks)         one child per task; the first success wins and keeps its child
//                               running, the losers' children are stopped; all failing → ParallelError
//   pool(size, tasks)           the primitive: plain tasks, at most `size` in flight
// Results keep the order of the input. Except in race, the first failure aborts the rest and is thrown.
import type { FaaSClient } from '../client.js';
import { ParallelError } from '../core/errors.js';
import { idOf, type IdRef } from '../core/ids.js';
import type { Instance } from './instances.js';

/** A unit of work for `pool`; `signal` aborts when the work is no longer wanted (a sibling failed). */
export type Task<T> = (signal: AbortSignal) => Promise<T>;

/** A unit of work for `all`/`race`, run on its own branch of the source; `signal` aborts when it lost or a sibling failed. */
export type BranchTask<T> = (instance: Instance, signal: AbortSignal) => Promise<T>;

export interface MapOptions {
  /** The running instance to branch (object or id). */
  source?: IdRef;
  /** @deprecated the old name of `source`. */
  from?: IdRef;
  /** Branches alive at once (default 4). */
  concurrency?: number;
  /** What happens to each child afterwards (default 'stop'). */
  cleanup?: 'stop' | 'delete';
  metadata?: Record<string, string>;
}

export interface RaceResult<T> {
  value: T;
  /** Index of the winning task. */
  index: number;
  /** The winner's child instance, still running: stop it when done. */
  instance: Instance;
}

export const DEFAULT_CONCURRENCY = 4;

export class ParallelOperations {
  constructor(private readonly client: FaaSClient) {}

  async map<T, R>(items: readonly T[], fn: (item: T, instance: Instance) => Promise<R>, options: MapOptions): Promise<R[]> {
    const source = options.source ?? options.from;
    if (source === undefined) throw new TypeError('parallel.map needs { source }: the running instance to branch');
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    const results: R[] = [];
    for (let start = 0; start < items.length; start += concurrency) {
      const batch = items.slice(start, start + concurrency);
      const values = await this.onBranches(source, batch.length, (child, i) => fn(batch[i], child), options);
      results.push(...values);
    }
    return results;
  }

  /** Runs every task on its own branch of `source`, all at once; every child is stopped after. */
  all<T>(source: IdRef, tasks: ReadonlyArray<BranchTask<T>>): Promise<T[]> {
    if (tasks.length === 0) return Promise.resolve([]);
    return this.onBranches(source, tasks.length, (child, i, signal) => tasks[i](child, signal), {});
  }

  /** First task to succeed wins (its child keeps running); the others are aborted and their children stopped. */
  async race<T>(source: IdRef, tasks: ReadonlyArray<BranchTask<T>>): Promise<RaceResult<T>> {
    if (tasks.length === 0) throw new TypeError('parallel.race needs at least one task');
    const { instances } = await this.client.instances.branch(idOf(source), { count: tasks.length });
    const controllers = tasks.map(() => new AbortController());
    const runs = tasks.map((task, index) => task(instances[index], controllers[index].signal).then((value) => ({ value, index, instance: instances[index] })));
    let winner: RaceResult<T>;
    try {
      winner = await Promise.any(runs);
    } catch (error) {
      await stopAll(instances);
      throw new ParallelError(`every one of the ${tasks.length} race tasks failed`, (error as AggregateError).errors);
    }
    controllers.forEach((c, i) => i !== winner.index && c.abort(new Error('lost the race')));
    await stopAll(instances.filter((_, i) => i !== winner.index));
    return winner;
  }

  /** Runs tasks with at most `size` in flight; stops starting new ones after a failure, which is thrown. */
  async pool<T>(size: number, tasks: ReadonlyArray<Task<T>>): Promise<T[]> {
    const controller = new AbortController();
    const results: T[] = new Array(tasks.length);
    let next = 0;
    const worker = async () => {
      while (next < tasks.length && !controller.signal.aborted) {
        const index = next++;
        try {
          results[index] = await tasks[index](controller.signal);
        } catch (error) {
          controller.abort(error);
          throw error;
        }
      }
    };
    const workers = Array.from({ length: Math.min(Math.max(1, size), tasks.length) }, worker);
    const settled = await Promise.allSettled(workers);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    return results;
  }

  /** Branches `source` into `count` children, runs `run` on each at once, then stops (or deletes) them all. */
  private async onBranches<R>(source: IdRef, count: number, run: (child: Instance, i: number, signal: AbortSignal) => Promise<R>, options: MapOptions): Promise<R[]> {
    const { instances } = await this.client.instances.branch(idOf(source), { count, metadata: options.metadata });
    try {
      return await this.pool(count, instances.map((child, i) => (signal: AbortSignal) => run(child, i, signal)));
    } finally {
      await Promise.all(instances.map((child) => (options.cleanup === 'delete' ? child.delete() : child.stop()).catch(() => undefined)));
    }
  }
}

function stopAll(instances: Instance[]): Promise<unknown> {
  // Cleanup must not hide the work's own result or error.
  return Promise.all(instances.map((child) => child.stop().catch(() => undefined)));
}
