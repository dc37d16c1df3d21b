// What the host can give: a request for more CPUs or memory than the machine has, or a writable
// layer larger than the free space of the disk that holds the filestores, is refused up front
// with `resource_limit` (422) rather than failing half way through a boot or a restore.
import { statfsSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { FaasError } from '../core/errors.js';
import type { Resources } from '../core/types.js';

export class HostCapacity {
  /** @param diskPath where writable layers live (the engine's filestore directory) */
  constructor(private readonly diskPath: string) {}

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
    const memMb = Math.floor(totalmem() / 1024 / 1024);
    if (r.vcpus > cores) {
      throw new FaasError('resource_limit', `vcpus ${r.vcpus} is more than this machine has (${cores})`, { requested: r.vcpus, available: cores });
    }
    if (r.memory > memMb) {
      throw new FaasError('resource_limit', `memory ${r.memory} MB is more than this machine has (${memMb} MB)`, { requested: r.memory, available: memMb });
    }
    const freeMb = Math.floor(this.freeDiskBytes() / 1024 / 1024);
    if (r.diskSize > freeMb) {
      throw new FaasError('resource_limit', `diskSize ${r.diskSize} MB is more than the engine's disk has free (${freeMb} MB)`, { requested: r.diskSize, available: freeMb });
    }
    return r;
  }
}
