// client.parallel: fan work out over live branches. `map` branches one instance per item (in
// batches bounded by `concurrency`), runs `fn(item, child)` and stops the children; `race` keeps
// the first success and stops the losers; `all` and `pool` run task functions, all at once or
// `size` at a time. Results keep the order of the input.
import type { FaaSClient } from '../client.js';
import { idOf, type IdRef } from '../core/ids.js';
import type { Instance } from './instances.js';

/** A unit of work; `signal` aborts when the work is no longer wanted (a race was won, a sibling failed). */
export type Task<T> = (signal: AbortSignal) => Promise<T>;

/** A task bound to an instance, which is stopped if the task loses a race. */
export interface InstanceTask<T> {
  instance: Instance;
  run: (instance: Instance, signal: AbortSignal) => Promise<T>;
}

export interface MapOptions {
  /** The running instance to branch (object or id). */
  from: IdRef;
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
  instance?: Instance;
}

export class ParallelOperations {
  constructor(private readonly client: FaaSClient) {}

  async map<T, R>(items: readonly T[], fn: (item: T, instance: Instance) => Promise<R>, options: MapOptions): Promise<R[]> {
    const concurrency = Math.max(1, options.concurrency ?? 4);
    const results: R[] = new Array(items.length);
    for (let start = 0; start < items.length; start += concurrency) {
      const batch = items.slice(start, start + concurrency);
      const { instances } = await this.client.instances.branch(idOf(options.from), { count: batch.length, metadata: options.metadata });
      try {
        const settled = await Promise.allSettled(batch.map((item, i) => fn(item, instances[i])));
        settled.forEach((outcome, i) => {
          if (outcome.status === 'rejected') throw outcome.reason;
          results[start + i] = outcome.value;
        });
      } finally {
        await Promise.all(instances.map((child) => (options.cleanup === 'delete' ? child.delete() : child.stop()).catch(() => undefined)));
      }
    }
    return results;
  }

  /** First task to succeed wins; the others are aborted and their instances stopped. Rejects only if all fail. */
  async race<T>(tasks: ReadonlyArray<Task<T> | InstanceTask<T>>): Promise<RaceResult<T>> {
    if (tasks.length === 0) throw new Error('race needs at least one task');
    const controllers = tasks.map(() => new AbortController());
    const runs = tasks.map((task, index) => {
      const signal = controllers[index].signal;
      const promise = typeof task === 'function' ? task(signal) : task.run(task.instance, signal);
      return promise.then((value) => ({ value, index, instance: typeof task === 'function' ? undefined : task.instance }));
    });
    const winner = await Promise.any(runs);
    await Promise.all(
      tasks.map(async (task, index) => {
        if (index === winner.index) return;
        controllers[index].abort(new Error('lost the race'));
        if (typeof task !== 'function') await task.instance.stop().catch(() => undefined);
      }),
    );
    return winner;
  }

  /** Runs every task at once; on the first failure the others are aborted and it is thrown. */
  all<T>(tasks: ReadonlyArray<Task<T>>): Promise<T[]> {
    return this.pool(Math.max(1, tasks.length), tasks);
  }

  /** Runs tasks with at most `size` in flight; stops starting new ones after a failure. */
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
}
