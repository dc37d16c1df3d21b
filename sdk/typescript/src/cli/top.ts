// The commands without an action word: faas prune, faas events, faas metrics.
import type * as api from '../generated/api.gen.js';
import type { Instance } from '../resources/instances.js';
import type { Snapshot } from '../resources/snapshots.js';
import type { FaaSEvent } from '../resources/events.js';
import { FaaSError } from '../core/errors.js';
import { metadataOption, pairs, str, type Command, type Context } from './command.js';
import { bytes, table, UsageError } from './output.js';

interface PruneReport {
  dryRun: boolean;
  instances: Array<{ id: string; state: string; deleted: boolean; error?: string }>;
  snapshots: Array<{ id: string; name: string | null; size: number; deleted: boolean; error?: string }>;
  freedBytes: number;
}

/**
 * The snapshots nothing needs once `gone` instances are deleted: no remaining instance started
 * from it, no snapshot made from it (children first, so whole unused chains go), no branch
 * diverged at or points its head at it. Named ones only with `all` (a name says someone keeps it).
 */
export function prunableSnapshots(snapshots: Snapshot[], instances: Instance[], gone: Set<string>, branches: Array<{ head: string; divergencePoint: string }>, all: boolean): Snapshot[] {
  const used = new Set<string>();
  for (const i of instances) if (!gone.has(i.id)) used.add(i.snapshotId);
  for (const b of branches) used.add(b.head).add(b.divergencePoint);
  const left = new Map(snapshots.map((s) => [s.id, s]));
  const order: Snapshot[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    const parents = new Set([...left.values()].map((s) => s.parentId).filter((p): p is string => p !== null));
    for (const s of [...left.values()]) {
      if (used.has(s.id) || parents.has(s.id) || (s.name !== null && !all)) continue;
      order.push(s);
      left.delete(s.id);
      changed = true;
    }
  }
  return order;
}

const failure = (error: unknown) => (error instanceof FaaSError ? `${error.code}: ${error.message}` : String((error as Error)?.message ?? error));

const prune: Command = {
  usage: '[--dry-run] [--all] [--metadata k=v]…',
  summary:
    'Delete stopped (and errored) instances and the snapshots nothing uses any more (not started from, no child, no branch; ' +
    'unnamed ones unless --all); --dry-run only lists them; --metadata limits it to resources with those labels',
  options: { ...metadataOption, 'dry-run': { type: 'boolean' }, all: { type: 'boolean' } },
  async run(ctx) {
    const client = ctx.client();
    const metadata = pairs(ctx, 'metadata');
    const dryRun = ctx.values['dry-run'] === true;
    const [instances, snapshots, branches] = await ctx.out.progress(
      'listing',
      Promise.all([client.instances.list().toArray(), client.snapshots.list({ metadata }).toArray(), client.branches.list().toArray()]),
    );
    const labelled = (m: Record<string, string>) => !metadata || Object.entries(metadata).every(([k, v]) => m[k] === v);
    const stopped = instances.filter((i) => (i.state === 'stopped' || i.state === 'error') && labelled(i.metadata));
    const candidates = prunableSnapshots(snapshots, instances, new Set(stopped.map((i) => i.id)), branches, ctx.values.all === true);
    const report: PruneReport = {
      dryRun,
      instances: stopped.map((i) => ({ id: i.id, state: i.state, deleted: false })),
      snapshots: candidates.map((s) => ({ id: s.id, name: s.name, size: s.size, deleted: false })),
      freedBytes: 0,
    };
    if (!dryRun) {
      const work = async () => {
        for (const entry of report.instances) {
          await client.instances.delete(entry.id).then(() => (entry.deleted = true), (e) => (entry.error = failure(e)));
        }
        // One at a time, children before parents: the order prunableSnapshots gave.
        for (const entry of report.snapshots) {
          await client.snapshots.delete(entry.id).then(() => (entry.deleted = true), (e) => (entry.error = failure(e)));
          if (entry.deleted) report.freedBytes += entry.size;
        }
      };
      await ctx.out.progress(`pruning ${report.instances.length} instance(s), ${report.snapshots.length} snapshot(s)`, work());
    }
    ctx.out.result(report, (r: PruneReport) => {
      const verb = r.dryRun ? 'would delete' : 'deleted';
      const lines = [
        ...r.instances.map((i) => (i.error ? `kept instance ${i.id}: ${i.error}` : `${verb} instance ${i.id} (${i.state})`)),
        ...r.snapshots.map((s) => (s.error ? `kept snapshot ${s.id}: ${s.error}` : `${verb} snapshot ${s.id}${s.name ? ` (${s.name})` : ''}, ${bytes(s.size)}`)),
      ];
      const total = r.dryRun ? r.snapshots.reduce((n, s) => n + s.size, 0) : r.freedBytes;
      lines.push(`${r.dryRun ? 'would free' : 'freed'} ${bytes(total)}${r.dryRun ? ' (run without --dry-run to delete)' : ''}`);
      return lines.join('\n');
    });
    return [...report.instances, ...report.snapshots].some((x) => x.error) ? 1 : 0;
  },
};

const events: Command = {
  usage: '[--follow] [--type T]… [--resource <id>] [--since SEQ]',
  summary: 'Print the engine events it still keeps (instance.ready, snapshot.created, …); --follow prints new ones as they come (from now, or after --since SEQ) until Ctrl-C',
  options: { follow: { type: 'boolean', short: 'f' }, type: { type: 'string', multiple: true }, resource: { type: 'string' }, since: { type: 'string' } },
  async run(ctx: Context) {
    const follow = ctx.values.follow === true;
    const since = str(ctx, 'since');
    if (since !== undefined && !/^\d+$/.test(since)) throw new UsageError(`--since takes an event sequence number (the SEQ column), got ${JSON.stringify(since)}`);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    // The engine replays the events it still keeps after `since` (all of them from 0), then
    // streams new ones. Without --follow, stop once the replay is over: the first quiet moment.
    let quiet: NodeJS.Timeout | undefined;
    const arm = () => {
      if (follow) return;
      clearTimeout(quiet);
      quiet = setTimeout(stop, 500);
    };
    const printed: FaaSEvent[] = [];
    try {
      const stream = ctx.client().events.stream({ types: ctx.values.type as string[] | undefined, resourceId: str(ctx, 'resource'), lastEventId: since ?? (follow ? undefined : 0), signal: controller.signal, onOpen: arm });
      for await (const event of stream) {
        arm();
        if (ctx.out.json && !follow) printed.push(event);
        else if (ctx.out.json) process.stdout.write(`${JSON.stringify(event)}\n`);
        else process.stdout.write(`${event.seq}\t${event.createdAt}\t${event.type}\t${event.resourceId}\n`);
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    } finally {
      clearTimeout(quiet);
      process.off('SIGINT', stop);
    }
    if (ctx.out.json && !follow) ctx.out.result(printed);
  },
};

const metrics: Command = {
  usage: '',
  summary: 'Engine-wide counts and usage: instances by state, snapshots, images, warm pool, host',
  async run(ctx) {
    const m = await ctx.client().metrics();
    ctx.out.result(m, (x: api.EngineMetrics) => {
      const states = Object.entries(x.instances).map(([state, n]) => `${state} ${n}`).join(', ');
      return table(['WHAT', 'VALUE'], [
        ['uptime', `${Math.round(x.uptimeMs / 1000)}s`],
        ['instances', states],
        ['snapshots', `${x.snapshots.count} (${bytes(x.snapshots.bytes)})`],
        ['images', x.images.count],
        ['warm pool', JSON.stringify(x.warmPool)],
        ['host', JSON.stringify(x.host)],
        ['engine', JSON.stringify(x.engine)],
      ]);
    });
  },
};

export const topCommands: Record<string, Command> = { prune, events, metrics };
