// faas branch create|list|get|delete|checkout|commit
import type { Branch } from '../resources/branches.js';
import type { Instance } from '../resources/instances.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, metadataOption, pairs, str, type CommandGroup } from './command.js';
import { table } from './output.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';

const BRANCH_COLUMNS: Array<Column<Branch>> = [
  { header: 'ID', value: (b) => b.id },
  { header: 'NAME', value: (b) => b.name },
  { header: 'PARENT', value: (b) => b.parentId },
  { header: 'HEAD', value: (b) => b.head },
  { header: 'DIVERGED AT', value: (b) => b.divergencePoint },
  { header: 'INSTANCE', value: (b) => b.instanceId },
  { header: 'AGE', value: (b) => age(b.createdAt) },
];
export const showBranches = (list: Branch[]) => table(BRANCH_COLUMNS.map((c) => c.header), list.map((b) => BRANCH_COLUMNS.map((c) => c.value(b))));

export const branchCommands: CommandGroup = {
  create: {
    usage: '<snapshot-id> [--name <n>] [--metadata k=v]…',
    summary: 'Create a branch at a snapshot (nothing starts until checkout)',
    options: { ...metadataOption, name: { type: 'string' } },
    async run(ctx) {
      const branch = await ctx.client().branches.create(arg(ctx, 0, 'snapshot-id'), { name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata') });
      ctx.out.result(branch, (b: Branch) => b.id);
    },
  },
  list: {
    usage: `[--parent <branch-id>] [--name <n>] [--metadata k=v]… ${LIST_USAGE}`,
    summary: 'List branches (AGE since created)',
    options: { ...metadataOption, ...listOptions, parent: { type: 'string' }, name: { type: 'string' } },
    async run(ctx) {
      const filter = { parentId: str(ctx, 'parent'), name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata') };
      printList(ctx, await ctx.client().branches.list(filter), BRANCH_COLUMNS);
    },
  },
  get: {
    usage: '<branch-id>',
    summary: 'Show a branch',
    async run(ctx) {
      const branch = await ctx.client().branches.get(arg(ctx, 0, 'branch-id'));
      ctx.out.result(branch, (b: Branch) => showBranches([b]));
    },
  },
  delete: {
    usage: '<branch-id> [--force]',
    summary: 'Delete a branch record (its snapshots and instance stay; --force with child branches)',
    options: { force: { type: 'boolean' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'branch-id');
      await ctx.client().branches.delete(id, { force: ctx.values.force === true });
      ctx.out.result({ id, deleted: true }, () => `deleted ${id}`);
    },
  },
  checkout: {
    usage: '<branch-id>',
    summary: "The branch's live instance at its head (restored when there is none)",
    async run(ctx) {
      const work = ctx.client().branches.checkout(arg(ctx, 0, 'branch-id'));
      const instance = await ctx.out.progress('checking out', work);
      ctx.out.result(instance, (i: Instance) => `${i.id} ${i.state}`);
    },
  },
  commit: {
    usage: '<branch-id> [--message <text>] [--metadata k=v]…',
    summary: "Checkpoint the branch's checked-out instance and move the head to it",
    options: { ...metadataOption, message: { type: 'string', short: 'M' } },
    async run(ctx) {
      const work = ctx.client().branches.commit(arg(ctx, 0, 'branch-id'), { message: str(ctx, 'message'), metadata: pairs(ctx, 'metadata') });
      const snapshot = await ctx.out.progress('committing', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
};
