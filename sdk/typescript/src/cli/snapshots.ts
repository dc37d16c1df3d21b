// faas snapshot create|list|get|delete|exec|upload|clone|diff|merge (creates and exec steps are answered from the step cache when they already ran)
import { CACHE_USAGE, cacheOptions, cachePolicyFrom, storageLine } from './cache.js';
import type { Command } from '../resources/execution.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, int, metadataOption, pairs, str, type CommandGroup, type Context } from './command.js';
import { bytes, table, UsageError } from './output.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';
import type * as api from '../generated/api.gen.js';
import { bandwidthFrom, NETWORK_USAGE, networkConfigFrom, networkOptions } from './network.js';

const SNAPSHOT_COLUMNS: Array<Column<Snapshot>> = [
  { header: 'ID', value: (s) => s.id },
  { header: 'PARENT', value: (s) => s.parentId },
  { header: 'NAME', value: (s) => s.name },
  { header: 'SIZE', value: (s) => bytes(s.size) },
  { header: 'AGE', value: (s) => age(s.createdAt) },
];
const showSnapshots = (list: Snapshot[]) => table(SNAPSHOT_COLUMNS.map((c) => c.header), list.map((s) => SNAPSHOT_COLUMNS.map((c) => c.value(s))));

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
    usage: `[--image <id>] [--name <n>] [--vcpus N] [--memory MB] [--disk MB] ${NETWORK_USAGE} [--env K=V]… [--metadata k=v]… [--fresh] ${CACHE_USAGE}`,
    summary: 'Boot an image and checkpoint it as a root snapshot (an identical one of yours is reused unless --fresh)',
    options: {
      ...metadataOption,
      ...networkOptions,
      ...cacheOptions,
      image: { type: 'string' },
      name: { type: 'string' },
      fresh: { type: 'boolean' },
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
        fresh: ctx.values.fresh === true || undefined,
        ...cachePolicyFrom(ctx),
      };
      const snapshot = await ctx.out.progress('creating snapshot', ctx.client().snapshots.create(config).then((s) => s));
      if (snapshot.cached) process.stderr.write(`cached: reusing your root snapshot with this configuration (--fresh boots a new one)\n`);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  list: {
    usage: `[--metadata k=v]… [--digest sha256:…] [--image <id>] [--parent <id>] ${LIST_USAGE}`,
    summary: 'List snapshots (AGE since created)',
    options: { ...metadataOption, ...listOptions, digest: { type: 'string' }, image: { type: 'string' }, parent: { type: 'string' } },
    async run(ctx) {
      const filter = { metadata: pairs(ctx, 'metadata'), digest: str(ctx, 'digest'), imageId: str(ctx, 'image'), parentId: str(ctx, 'parent') };
      printList(ctx, await ctx.client().snapshots.list(filter), SNAPSHOT_COLUMNS);
    },
  },
  get: {
    usage: '<snapshot-id>',
    summary: 'Show a snapshot',
    async run(ctx) {
      const snapshot = await ctx.client().snapshots.get(arg(ctx, 0, 'snapshot-id'));
      ctx.out.result(snapshot, (s: Snapshot) => [showSnapshots([s]), storageLine(s)].filter(Boolean).join('\n'));
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
  clone: {
    usage: '<snapshot-id> [--name <n>] [--metadata k=v]…',
    summary: 'Copy a snapshot on the engine without restoring it (shares its image files)',
    options: { ...metadataOption, name: { type: 'string' } },
    async run(ctx) {
      const work = ctx.client().snapshots.clone(arg(ctx, 0, 'snapshot-id'), { name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata') }).then((s) => s);
      const snapshot = await ctx.out.progress('cloning', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  exec: {
    usage: "<snapshot-id> [--fresh] ('<shell line>' | <program> [args…])",
    summary: "Run a build step on a snapshot; its output is printed (on stderr) as it runs; prints the resulting snapshot",
    options: { fresh: { type: 'boolean' } },
    passthroughAfter: 1,
    async run(ctx) {
      const id = arg(ctx, 0, 'snapshot-id');
      // The step's output goes to stderr as it comes, so stdout stays the snapshot (id or --json).
      const onOutput = (data: string) => void process.stderr.write(data);
      const snapshot = await ctx.client().snapshots.exec(id, commandFrom(ctx, 1), { fresh: ctx.values.fresh === true || undefined, onOutput }).then((s) => s);
      if (snapshot.cached) process.stderr.write(`cached: this step already ran on ${id}; its recorded output is shown above (--fresh runs it again)\n`);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  upload: {
    usage: '<snapshot-id> <local-path> <remote-path> [--fresh]',
    summary: 'Copy a local file or directory into a snapshot as a build step; prints the resulting snapshot',
    options: { fresh: { type: 'boolean' } },
    async run(ctx) {
      const [id, local, remote] = [arg(ctx, 0, 'snapshot-id'), arg(ctx, 1, 'local-path'), arg(ctx, 2, 'remote-path')];
      const step = ctx.client().snapshots.upload(id, local, remote, { fresh: ctx.values.fresh === true || undefined }).then((s) => s);
      const snapshot = await ctx.out.progress('uploading', step);
      if (snapshot.cached) process.stderr.write(`cached: this content was already uploaded there on ${id} (--fresh uploads it again)\n`);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  pool: {
    usage: '<snapshot-id> [--min N] [--max M | --no-max]',
    summary: 'Show the warm pool of paused clones kept for a snapshot; with --min (and --max) set it (--min 0 drains it; --max caps its live instances)',
    options: { min: { type: 'string' }, max: { type: 'string' }, 'no-max': { type: 'boolean' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'snapshot-id');
      const min = int(ctx, 'min');
      const max = int(ctx, 'max');
      if (min === undefined && (max !== undefined || ctx.values['no-max'] === true)) throw new UsageError('--max and --no-max go with --min N (the pool size to keep), e.g. `--min 2 --max 10`');
      const snapshots = ctx.client().snapshots;
      const work = min === undefined ? snapshots.getPool(id) : snapshots.setPool(id, { minInstances: min, maxInstances: ctx.values['no-max'] === true ? null : max });
      const pool = await ctx.out.progress(min === undefined ? 'reading pool' : 'setting pool', work);
      ctx.out.result(pool, (p: api.SnapshotPool) => table(['SNAPSHOT', 'MIN', 'MAX', 'READY', 'LIVE'], [[p.snapshotId, p.minInstances, p.maxInstances, p.ready, p.live]]));
    },
  },
};
