// cgroup v1 (this machine's hybrid layout): runsc creates <controller>/<cgroupsPath> for each
// sandbox from the spec. Limits are written here rather than in the spec because a restore must
// reproduce its checkpoint's spec exactly, while resources differ per instance.
import { readFileSync, readdirSync, rmdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Resources } from '../core/types.js';

const ROOT = '/sys/fs/cgroup';
const CPU_PERIOD_US = 100_000;

export class Cgroups {
  constructor(private readonly parent: string) {}

  pathOf(id: string): string {
    return `/${this.parent}/${id}`;
  }

  apply(id: string, r: Resources): void {
    const p = this.pathOf(id);
    write('memory', p, 'memory.limit_in_bytes', String(r.memory * 1024 * 1024));
    write('cpu', p, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
    write('cpu', p, 'cpu.cfs_quota_us', String(r.vcpus * CPU_PERIOD_US));
  }

  metrics(id: string): { cpuSeconds: number; memoryBytes: number; memoryLimit: number; memoryPeak: number } {
    const p = this.pathOf(id);
    return {
      cpuSeconds: Number(read('cpuacct', p, 'cpuacct.usage')) / 1e9,
      memoryBytes: Number(read('memory', p, 'memory.usage_in_bytes')),
      memoryLimit: Number(read('memory', p, 'memory.limit_in_bytes')),
      memoryPeak: Number(read('memory', p, 'memory.max_usage_in_bytes')),
    };
  }

  /** Whether the kernel's OOM killer killed a task of this cgroup (memory.oom_control `oom_kill`,
   *  cgroup v1): then a sandbox that exited on its own ran out of its memory limit. */
  oomKilled(id: string): boolean {
    const m = /^oom_kill (\d+)$/m.exec(readRaw('memory', this.pathOf(id), 'memory.oom_control'));
    return m !== null && Number(m[1]) > 0;
  }

  /** Removes this engine's parent cgroup in every controller where it is empty (at shutdown; with
   *  instances still running it stays, and the kernel refuses to remove a cgroup in use anyway). */
  removeParentIfEmpty(): void {
    let controllers: string[] = [];
    try {
      controllers = readdirSync(ROOT);
    } catch {
      return;
    }
    for (const ctl of controllers) {
      try {
        rmdirSync(join(ROOT, ctl, this.parent));
      } catch {
        /* absent, in use, or a combined controller already removed */
      }
    }
  }

  /** Ids that have a cgroup under this engine's parent in any controller. */
  list(): string[] {
    const ids = new Set<string>();
    for (const ctl of safeReaddir(ROOT)) {
      for (const e of safeReaddir(join(ROOT, ctl, this.parent))) {
        try {
          if (statSync(join(ROOT, ctl, this.parent, e)).isDirectory()) ids.add(e);
        } catch {
          /* gone meanwhile */
        }
      }
    }
    return [...ids];
  }

  /** Removes a sandbox's cgroup in every controller (runsc delete does this; a crash may not). The
   *  kernel refuses while a process is still in it: that one is left, and reported by list(). */
  remove(id: string): void {
    for (const ctl of safeReaddir(ROOT)) {
      try {
        rmdirSync(join(ROOT, ctl, this.parent, id));
      } catch {
        /* absent here, or still in use */
      }
    }
  }

  exists(id: string): boolean {
    return existsSync(join(ROOT, 'memory', this.pathOf(id)));
  }
}

function write(ctl: string, path: string, file: string, value: string): void {
  try {
    writeFileSync(join(ROOT, ctl, path, file), value);
  } catch {
    /* controller missing on this host: the limit is best effort, metrics still report usage */
  }
}

function readRaw(ctl: string, path: string, file: string): string {
  try {
    return readFileSync(join(ROOT, ctl, path, file), 'utf8');
  } catch {
    return '';
  }
}

function read(ctl: string, path: string, file: string): string {
  try {
    return readFileSync(join(ROOT, ctl, path, file), 'utf8').trim();
  } catch {
    return '0';
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
