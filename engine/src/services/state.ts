// StateOperations: an instance's history of checkpoints, and moving it back along that history in
// place. Git's words where they fit:
//   - a checkpoint (any snapshot of a running instance) is a commit; it records the checkpoint the
//     instance's state descended from when it was taken (`previous`, store/sqlite/lineage.ts);
//   - an instance's head is the checkpoint its current state descends from: its latest checkpoint,
//     or the one it was rolled back to, or (before any) the snapshot it was started from;
//   - the timeline is the chain from the head back through `previous` links, oldest first. It
//     crosses instances: a branch child's chain runs through its parent's checkpoints up to the
//     branch point (`inherited: true`), down to the root snapshot made from an image;
//   - rollback(steps) is `git reset --hard HEAD~(steps-1)`: steps=1 is the head itself (every
//     change since the latest checkpoint is dropped), steps=2 the entry before it. The target's
//     image is restored under the same instance id and becomes the head, so checkpoints taken
//     after it leave the timeline (they stay snapshots, like commits only the reflog still knows).
// Only snapshots the caller can see are listed or counted.
import { FaasError } from '../core/errors.js';
import { owns, type Principal } from '../core/principal.js';
import type { Instance, Snapshot } from '../core/types.js';
import type { LineageRepo } from '../store/sqlite/lineage.js';
import type { InstanceService } from './instances.js';
import type { Timings } from './sandboxes.js';
import type { SnapshotService } from './snapshots.js';

export interface TimelineEntry {
  snapshotId: string;
  name: string | null;
  createdAt: string;
  instanceId: string | null;
  inherited: boolean;
}

/** A chain longer than this is cut (it would take ~10k checkpoints; a cycle would be a bug). */
const MAX_DEPTH = 10_000;

export class StateService {
  constructor(
    private readonly instances: InstanceService,
    private readonly snapshots: SnapshotService,
    private readonly lineage: LineageRepo,
  ) {}

  timeline(id: string, who: Principal): { instanceId: string; head: string | null; data: TimelineEntry[] } {
    const inst = this.instances.get(id);
    const data = this.chain(inst, who).map((s) => ({
      snapshotId: s.id,
      name: s.name,
      createdAt: s.createdAt,
      instanceId: s.instanceId,
      inherited: s.instanceId !== inst.id,
    }));
    return { instanceId: id, head: data.at(-1)?.snapshotId ?? null, data };
  }

  /** The same instance returns to the checkpoint `steps` back (1: the head), in place. */
  rollback(id: string, steps: number, who: Principal, timings?: Timings): Promise<Instance> {
    return this.instances.restart(id, {
      timings,
      from: (inst) => this.target(inst, steps, who),
      restoring: (snapshotId) => this.restoring(id, snapshotId),
    });
  }

  /**
   * Restart: from the instance's own snapshot (its head goes back there: the timeline ends at it),
   * or with fromLatestCheckpoint from its head, the last entry of its timeline (rollback by 1),
   * which must be a checkpoint beyond the snapshot it was started from.
   */
  restart(id: string, fromLatestCheckpoint: boolean, who: Principal): Promise<Instance> {
    if (!fromLatestCheckpoint) return this.instances.restart(id, { restoring: () => this.lineage.setHead(id, null) });
    return this.instances.restart(id, {
      from: (inst) => {
        const head = this.chain(inst, who).at(-1)?.id;
        if (!head || head === inst.snapshotId) {
          throw noCheckpoint(
            `instance ${inst.id} has no checkpoint beyond the snapshot it was started from; take one with POST /v1/instances/${inst.id}/snapshot, or restart without fromLatestCheckpoint`,
            { id: inst.id, available: 0 },
          );
        }
        return head;
      },
      restoring: (snapshotId) => this.restoring(id, snapshotId),
    });
  }

  /**
   * The instance comes back as checkpoint `snapshotId`: its head moves there, and its agent's memory
   * (its hash cache: what it will not send again) is that checkpoint's, so the instance now needs
   * that checkpoint's blobs for as long as it lives, whatever happens to the checkpoint
   * (services/blob-gc.ts).
   */
  private restoring(id: string, snapshotId: string): void {
    this.lineage.setHead(id, snapshotId);
    this.snapshots.restoredInto(id, snapshotId);
  }

  private target(inst: Instance, steps: number, who: Principal): string {
    const chain = this.chain(inst, who);
    if (steps > chain.length) {
      throw noCheckpoint(
        `instance ${inst.id} has ${chain.length} checkpoint${chain.length === 1 ? '' : 's'} in its timeline; rollback by at most ${chain.length} step${chain.length === 1 ? '' : 's'} (GET /v1/instances/${inst.id}/timeline lists them)`,
        { id: inst.id, steps, available: chain.length },
      );
    }
    return chain[chain.length - steps].id;
  }

  /** The head and what it descends from, oldest first, as far as the records go. */
  private chain(inst: Instance, who: Principal): Snapshot[] {
    const out: Snapshot[] = [];
    const seen = new Set<string>();
    for (let id = this.lineage.headOf(inst.id); id && !seen.has(id) && seen.size < MAX_DEPTH; id = this.lineage.previousOf(id)) {
      seen.add(id);
      const s = this.snapshots.find(id);
      if (!s) break; // gone without a splice (a row from before history was kept)
      if (s.state === 'ready' && owns(who, s.owner)) out.push(s);
    }
    return out.reverse();
  }
}

const noCheckpoint = (message: string, details: Record<string, unknown>) => new FaasError('no_checkpoint', message, details);
