// faas snapshot diff|merge and faas branch diff|merge|rebase: a diff prints like `git diff --stat`
// followed by the patches; --json prints the BranchDiff as the engine answers it.
import type { BranchDiff, FileChange, MergeStrategy } from '../resources/diff.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, metadataOption, pairs, str, type CommandGroup, type Context } from './command.js';
import { UsageError } from './output.js';

const diffOptions = { stat: { type: 'boolean' }, 'no-patch': { type: 'boolean' } } as const;
const strategyOptions = {
  strategy: { type: 'string' },
  ours: { type: 'string', multiple: true },
  theirs: { type: 'string', multiple: true },
} as const;

/** `--strategy fail|ours|theirs`, and `--ours PATH` / `--theirs PATH` for single paths. */
function strategyOf(ctx: Context): MergeStrategy | undefined {
  const s = str(ctx, 'strategy');
  if (s !== undefined && !['fail', 'ours', 'theirs'].includes(s)) throw new UsageError(`--strategy must be fail, ours or theirs (not ${JSON.stringify(s)})`);
  const paths: Record<string, 'ours' | 'theirs'> = {};
  for (const side of ['ours', 'theirs'] as const) for (const p of (ctx.values[side] as string[] | undefined) ?? []) paths[p] = side;
  if (!Object.keys(paths).length) return s as MergeStrategy | undefined;
  return { paths, default: (s ?? 'fail') as 'fail' | 'ours' | 'theirs' };
}

const label: Record<FileChange['change'], string> = { added: 'A', modified: 'M', deleted: 'D', typeChanged: 'T' };

/** The human form: one stat line per path, a summary, then every patch (unless --stat). */
export function formatDiff(d: BranchDiff, patches: boolean): string {
  const width = Math.min(60, Math.max(0, ...d.files.map((f) => f.path.length)));
  const lines = d.files.map((f) => {
    const what =
      f.diff !== null
        ? `${f.insertions + f.deletions} ${'+'.repeat(Math.min(f.insertions, 30))}${'-'.repeat(Math.min(f.deletions, 30))}`
        : f.diffOmitted === 'mode_only'
          ? `mode ${f.modeBefore?.toString(8)} → ${f.modeAfter?.toString(8)}`
          : f.type === 'symlink'
            ? `-> ${f.symlinkTargetAfter ?? '(deleted)'}`
            : f.type === 'file'
              ? `${f.diffOmitted ?? 'binary'} ${f.sizeBefore ?? 0} → ${f.sizeAfter ?? 0} bytes`
              : f.type;
    return ` ${label[f.change]} ${JSON.stringify(f.path).slice(1, -1).padEnd(width)} | ${what}`;
  });
  const t = d.totals;
  lines.push(` ${t.files} file(s) changed (${t.added} added, ${t.modified} modified, ${t.deleted} deleted, ${t.typeChanged} type changed), ${t.insertions} insertion(s)(+), ${t.deletions} deletion(s)(-)`);
  if (patches) for (const f of d.files) if (f.diff) lines.push('', f.diff.trimEnd());
  return lines.join('\n');
}

const showDiff = (ctx: Context) => (d: BranchDiff) => formatDiff(d, ctx.values.stat !== true && ctx.values['no-patch'] !== true);

/** A diff command: `fetch(a, b, textDiffs)` answers the BranchDiff of its two arguments. */
function diffCommand(names: [string, string], summary: string, fetch: (ctx: Context, a: string, b: string, textDiffs: boolean) => Promise<BranchDiff>): CommandGroup[string] {
  return {
    usage: `<${names[0]}> <${names[1]}> [--stat]`,
    summary,
    options: diffOptions,
    async run(ctx) {
      const d = await fetch(ctx, arg(ctx, 0, names[0]), arg(ctx, 1, names[1]), ctx.values.stat !== true || ctx.out.json);
      ctx.out.result(d, showDiff(ctx));
    },
  };
}

export const snapshotDiffCommands: CommandGroup = {
  diff: diffCommand(
    ['base-snapshot', 'target-snapshot'],
    'Show what changed in the files from one snapshot to another (like git diff --stat plus patches)',
    (ctx, a, b, textDiffs) => ctx.client().snapshots.diff(a, b, { textDiffs }),
  ),
  merge: {
    usage: '<snapshot> <snapshot>… [--strategy fail|ours|theirs] [--ours PATH]… [--theirs PATH]… [--name N] [--metadata k=v]…',
    summary: "Three-way merge of snapshots' files onto the first (its memory and processes); prints the new snapshot",
    options: { ...strategyOptions, ...metadataOption, name: { type: 'string' } },
    async run(ctx) {
      if (ctx.args.length < 2) throw new UsageError('merge needs at least two snapshots');
      const work = ctx.client().snapshots.merge(ctx.args, { strategy: strategyOf(ctx), name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata') }).then((s) => s);
      const snapshot = await ctx.out.progress('merging', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
};

export const branchDiffCommands: CommandGroup = {
  diff: diffCommand(
    ['branch', 'branch-or-snapshot'],
    "Show what changed from a branch's head to another branch's head or a snapshot",
    (ctx, a, b, textDiffs) => ctx.client().branches.diff(a, b, { textDiffs }),
  ),
  merge: {
    usage: '<branch> <branch>… [--strategy fail|ours|theirs] [--ours PATH]… [--theirs PATH]… [--message M]',
    summary: "Merge branches into the first one (its head moves to the result); prints the new head",
    options: { ...strategyOptions, ...metadataOption, message: { type: 'string' } },
    async run(ctx) {
      if (ctx.args.length < 2) throw new UsageError('merge needs at least two branches');
      const work = ctx.client().branches.merge(ctx.args, { strategy: strategyOf(ctx), message: str(ctx, 'message'), metadata: pairs(ctx, 'metadata') });
      const snapshot = await ctx.out.progress('merging', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  rebase: {
    usage: '<branch> <onto-branch-or-snapshot> [--strategy fail|ours|theirs] [--ours PATH]… [--theirs PATH]…',
    summary: "Replay a branch's changes onto another branch's head or a snapshot; prints the moved branch",
    options: strategyOptions,
    async run(ctx) {
      const work = ctx.client().branches.rebase(arg(ctx, 0, 'branch'), arg(ctx, 1, 'onto'), { strategy: strategyOf(ctx) });
      const branch = await ctx.out.progress('rebasing', work);
      ctx.out.result(branch, (b: { id: string; head: string }) => `${b.id} head ${b.head}`);
    },
  },
};
