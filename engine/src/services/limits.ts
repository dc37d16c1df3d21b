// Host-side checks of resource requests that the schema cannot make: disk. (vCPUs and memory are
// checked against the machine in snapshots.ts checkResources.)
import { statfsSync } from 'node:fs';
import { FaasError } from '../core/errors.js';

/** Where writable layers live (the engine's filestore directory); set by the composition root. */
export const diskRoot = { path: '/' };

export function freeDiskBytes(path = diskRoot.path): number {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return 0;
  }
}

/** A writable layer that could not fit on the disk holding it is refused up front. */
export function checkDiskFree(diskSizeMb: number): void {
  const freeMb = Math.floor(freeDiskBytes() / 1024 / 1024);
  if (diskSizeMb > freeMb) {
    throw new FaasError('resource_limit', `diskSize ${diskSizeMb} MB is more than the engine's disk has free (${freeMb} MB)`, { requested: diskSizeMb, available: freeMb });
  }
}
