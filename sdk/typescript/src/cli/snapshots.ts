// faas snapshot create|list|get|delete|exec
import type { Command } from '../resources/execution.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, int, metadataOption, pairs, str, type CommandGroup, type Context } from './command.js';
import { bytes, table, UsageError } from './output.js';
import { bandwidthFrom, NETWORK_USAGE, networkConfigFrom, networkOptions } from './network.js';

const snapshotRow = (s: Snapshot) => [s.id, s.parentId, s.name, bytes(s.size), s.createdAt];
const showSnapshots = (list: Snapshot[]) => table(['ID', 'PARENT', 'NAME', 'SIZE', 'CREATED'], list.map(snapshotRow));

/**
 * One word is a shell command line (`exec <id> 'echo $HOME > f'`); several words are the program
 * and its arguments, run without a shell (`exec <id> -- python3 -c 'print(6*7)'`), as in
 * `docker exec` and `kubectl exec`.
 */
export function commandFrom(ctx: Context, from: number): Command {
  const words = ctx.args.slice(from);
  if (words.length === 0) throw new UsageError('missing <command>');
  return words.length === 1 ? words[0] : words;
}

export const snapshotCommands: CommandGroup = {
  create: {
    usage: `[--image <id>] [--name <n>] [--vcpus N] [--memory MB] [--disk MB] ${NETWORK_USAGE} [--env K=V]… [--metadata k=v]…`,
    summary: 'Boot an image and checkpoint it as a root snapshot',
    options: {
      ...metadataOption,
      ...networkOptions,
      image: { type: 'string' },
      name: { type: 'string' },
      vcpus: { type: 'string' },
      memory: { type: 'string' },
      disk: { type: 'string' },
      env: { type: 'string', multiple: true, short: 'e' },
    },
    async run(ctx) {
      const config = {
        imageId: str(ctx, 'image'),
        name: str(ctx, 'name'),
        vcpus: int(ctx, 'vcpus'),
        memory: int(ctx, 'memory'),
        diskSize: int(ctx, 'disk'),
        networkConfig: networkConfigFrom(ctx),
        networkBandwidth: bandwidthFrom(ctx),
        environment: pairs(ctx, 'env'),
        metadata: pairs(ctx, 'metadata'),
      };
      const snapshot = await ctx.out.progress('creating snapshot', ctx.client().snapshots.create(config).then((s) => s));
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  list: {
    usage: '[--metadata k=v]… [--digest sha256:…] [--image <id>] [--parent <id>]',
    summary: 'List snapshots',
    options: { ...metadataOption, digest: { type: 'string' }, image: { type: 'string' }, parent: { type: 'string' } },
    async run(ctx) {
      const filter = { metadata: pairs(ctx, 'metadata'), digest: str(ctx, 'digest'), imageId: str(ctx, 'image'), parentId: str(ctx, 'parent') };
      ctx.out.result(await ctx.client().snapshots.list(filter), showSnapshots);
    },
  },
  get: {
    usage: '<snapshot-id>',
    summary: 'Show a snapshot',
    async run(ctx) {
      const snapshot = await ctx.client().snapshots.get(arg(ctx, 0, 'snapshot-id'));
      ctx.out.result(snapshot, (s: Snapshot) => showSnapshots([s]));
    },
  },
  delete: {
    usage: '<snapshot-id> [--force]',
    summary: 'Delete a snapshot (--force also deletes what depends on it)',
    options: { force: { type: 'boolean' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'snapshot-id');
      await ctx.client().snapshots.delete(id, { force: ctx.values.force === true });
      ctx.out.result({ id, deleted: true }, () => `deleted ${id}`);
    },
  },
  exec: {
    usage: "<snapshot-id> ('<shell line>' | -- <program> [args…])",
    summary: 'Run a build step on a snapshot; prints the resulting snapshot',
    async run(ctx) {
      const id = arg(ctx, 0, 'snapshot-id');
      const step = ctx.client().snapshots.exec(id, commandFrom(ctx, 1)).then((s) => s);
      const snapshot = await ctx.out.progress('running step', step);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
};
