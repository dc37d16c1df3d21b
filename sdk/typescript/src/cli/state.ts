// faas instance checkpoint|timeline|rollback|restart (StateOperations; see docs/state.md)
import type { Instance } from '../resources/instances.js';
import type { Snapshot } from '../resources/snapshots.js';
import type { TimelineEntry } from '../resources/state.js';
import { arg, int, metadataOption, pairs, str, type CommandGroup } from './command.js';
import { table, UsageError } from './output.js';

export const stateCommands: CommandGroup = {
  checkpoint: {
    usage: '<instance-id> [--name <n>] [--metadata k=v]…',
    summary: 'Checkpoint a running instance (it keeps running); moves the head of its timeline',
    options: { ...metadataOption, name: { type: 'string' } },
    async run(ctx) {
      const work = ctx.client().state.checkpoint(arg(ctx, 0, 'instance-id'), { name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata') });
      const snapshot = await ctx.out.progress('checkpointing', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  timeline: {
    usage: '<instance-id>',
    summary: "An instance's checkpoints, oldest first (inherited: from the snapshot it started from)",
    async run(ctx) {
      const entries = await ctx.client().state.timeline(arg(ctx, 0, 'instance-id'));
      ctx.out.result(entries, (list: TimelineEntry[]) =>
        table(['#', 'SNAPSHOT', 'NAME', 'INHERITED', 'FROM INSTANCE', 'CREATED'], list.map((e, i) => [list.length - i, e.snapshotId, e.name, e.inherited ? 'yes' : 'no', e.instanceId, e.createdAt])),
      );
    },
  },
  rollback: {
    usage: '<instance-id> [--steps N]',
    summary: 'Return the instance in place to a checkpoint: 1 (default) = the latest (the # column of timeline)',
    options: { steps: { type: 'string', short: 'n' } },
    async run(ctx) {
      const steps = int(ctx, 'steps') ?? 1;
      if (steps < 1) throw new UsageError('--steps must be 1 or more (1 = the latest checkpoint; see `faas instance timeline <id>`)');
      const work = ctx.client().state.rollback(arg(ctx, 0, 'instance-id'), steps);
      const instance = await ctx.out.progress(`rolling back ${steps} step${steps === 1 ? '' : 's'}`, work);
      ctx.out.result(instance, (i: Instance) => `${i.id} ${i.state}`);
    },
  },
  restart: {
    usage: '<instance-id> [--from-latest-checkpoint]',
    summary: 'Restore an instance again from its snapshot (or its latest checkpoint), same id',
    options: { 'from-latest-checkpoint': { type: 'boolean' } },
    async run(ctx) {
      const fromLatestCheckpoint = ctx.values['from-latest-checkpoint'] === true ? true : undefined;
      const work = ctx.client().instances.restart(arg(ctx, 0, 'instance-id'), { fromLatestCheckpoint });
      const instance = await ctx.out.progress('restarting', work);
      ctx.out.result(instance, (i: Instance) => `${i.id} ${i.state}`);
    },
  },
};
