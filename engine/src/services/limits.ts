// What the host can give. Two questions, asked up front rather than half way through a restore:
// - HostCapacity: could this one request ever fit? More CPUs than the machine has, more memory
//   than the engine may hand out, or a writable layer larger than the free disk: `resource_limit`
//   422 (retrying unchanged cannot help).
// - Admission: does it fit now, beside what live and starting instances already hold? Over the
//   live-instance cap or the memory budget: `resource_limit` 429 with Retry-After. The check and
//   the record it admits happen in one turn of the event loop (no await between), and a branch
//   reserves its children before it checkpoints, so concurrent starts cannot pass it together.
import { statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { FaasError } from '../core/errors.js';
import type { Resources } from '../core/types.js';

export class HostCapacity {
  /** The memory (MB) the engine may hand out to instances in all: FAAS_MAX_MEMORY_MB, or the machine's. */
  readonly memoryMb: number;

  /** @param diskPath where writable layers live (the engine's filestore directory) */
  constructor(
    private readonly diskPath: string,
    memoryMb?: number,
  ) {
    this.memoryMb = memoryMb && memoryMb > 0 ? memoryMb : Math.floor(totalmem() / 1024 / 1024);
  }

  freeDiskBytes(): number {
    try {
      const s = statfsSync(this.diskPath);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return 0;
    }
  }

  /** Returns `r` when the machine can give it; throws `resource_limit` otherwise. */
  check(r: Resources): Resources {
    const cores = availableParallelism();
    const memMb = this.memoryMb;
    if (r.vcpus > cores) {
      throw new FaasError('resource_limit', `vcpus ${r.vcpus} is more than this machine has (${cores})`, { requested: r.vcpus, available: cores });
    }
    if (r.memory > memMb) {
      throw new FaasError('resource_limit', `memory ${r.memory} MB is more than this engine may give all its instances together (${memMb} MB)`, { requested: r.memory, available: memMb });
    }
    const freeMb = Math.floor(this.freeDiskBytes() / 1024 / 1024);
    if (r.diskSize > freeMb) {
      throw new FaasError('resource_limit', `diskSize ${r.diskSize} MB is more than the engine's disk has free (${freeMb} MB)`, { requested: r.diskSize, available: freeMb });
    }
    return r;
  }
}

/** Slots held for records not inserted yet (a branch's children while the parent checkpoints). */
export interface Reservation {
  /** One reserved instance becomes a record: call in the same turn as the insert. */
  take(): void;
  /** Gives back what was not taken (the branch failed or finished). Idempotent. */
  release(): void;
}

export class Admission {
  private slots = 0;
  private memoryMb = 0;

  constructor(
    private readonly limits: { maxLiveInstances: number; capacity: HostCapacity },
    /** Instances holding a slot and memory: pending, ready, paused, stopping. */
    private readonly live: () => { resources: { memory: number } }[],
  ) {}

  /** Throws `resource_limit` 429 unless `count` more instances of `memoryMb` each fit now. */
  check(count: number, memoryMb: number): void {
    const live = this.live();
    const liveCount = live.length + this.slots;
    const max = this.limits.maxLiveInstances;
    if (liveCount + count > max) {
      throw new FaasError(
        'resource_limit',
        `at most ${max} live instances; ${liveCount} are live or starting. Stop one, or retry after Retry-After`,
        { live: liveCount, requested: count, max },
        { status: 429, retryAfterSeconds: 1 },
      );
    }
    const budget = this.limits.capacity.memoryMb;
    const used = live.reduce((n, i) => n + i.resources.memory, 0) + this.memoryMb;
    if (used + count * memoryMb > budget) {
      throw new FaasError(
        'resource_limit',
        `not enough memory left: live and starting instances hold ${used} of ${budget} MB and this needs ${count * memoryMb} MB more. Stop an instance, ask for less memory, or retry after Retry-After`,
        { reason: 'memory', usedMb: used, requestedMb: count * memoryMb, budgetMb: budget },
        { status: 429, retryAfterSeconds: 1 },
      );
    }
  }

  /** check(), then holds the slots and memory until taken or released. */
  reserve(count: number, memoryMb: number): Reservation {
    this.check(count, memoryMb);
    this.slots += count;
    this.memoryMb += count * memoryMb;
    let left = count;
    return {
      take: () => {
        if (left <= 0) throw new Error('reservation already used up');
        left--;
        this.slots--;
        this.memoryMb -= memoryMb;
      },
      release: () => {
        this.slots -= left;
        this.memoryMb -= left * memoryMb;
        left = 0;
      },
    };
  }
}
