// faas instance start|list|get|stop|pause|resume|restart|delete|metrics|snapshot|branch (--name: named branches)
// (exec, shell and cp are in instance-io.ts; expose, hide and services in instance-services.ts)
import { CACHE_USAGE, cacheOptions, cachePolicyFrom } from './cache.js';
import type { Instance, InstanceMetrics, InstanceState } from '../resources/instances.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, int, metadataOption, pairs, str, type Command, type CommandGroup, type Context } from './command.js';
import { bytes, EXIT, table, UsageError } from './output.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';
import { FaaSError } from '../core/errors.js';
import { sleep } from '../core/retry.js';
import type * as api from '../generated/api.gen.js';
import { instanceIoCommands } from './instance-io.js';
import { showBranches } from './branches.js';
import { stateCommands } from './state.js';
import { bandwidthFrom, NETWORK_USAGE, networkCommand, networkConfigFrom, networkOptions } from './network.js';
import { instanceServiceCommands } from './instance-services.js';
import { forwardCommands } from './forward.js';
import { instanceSshCommands } from './ssh.js';

const INSTANCE_COLUMNS: Array<Column<Instance>> = [
  { header: 'ID', value: (i) => i.id },
  { header: 'STATE', value: (i) => i.state },
  { header: 'SNAPSHOT', value: (i) => i.snapshotId },
  { header: 'PARENT', value: (i) => i.parentInstanceId },
  { header: 'IP', value: (i) => i.network?.ip },
  { header: 'AGE', value: (i) => age(i.createdAt) },
  { header: 'TTL', value: (i) => (i.ttl === null ? null : `${i.ttl}s ${i.ttlAction}`) },
];
const showInstances = (list: Instance[]) => table(INSTANCE_COLUMNS.map((c) => c.header), list.map((i) => INSTANCE_COLUMNS.map((c) => c.value(i))));

function lifecycle(verb: 'stop' | 'pause' | 'resume', summary: string): Command {
  return {
    usage: '<instance-id>',
    summary,
    async run(ctx) {
      const instance = await ctx.client().instances[verb](arg(ctx, 0, 'instance-id'));
      ctx.out.result(instance, (i: Instance) => `${i.id} ${i.state}`);
    },
  };
}

const STATES: InstanceState[] = ['pending', 'ready', 'paused', 'stopping', 'stopped', 'error'];

function stateFilter(ctx: Context): InstanceState | undefined {
  const state = str(ctx, 'state');
  if (state !== undefined && !STATES.includes(state as InstanceState)) throw new UsageError(`--state must be one of ${STATES.join(', ')}`);
  return state as InstanceState | undefined;
}

/** `--wake-on http,ssh`: what resumes the instance when it is paused. */
function wakeOn(value: string | undefined): { http: boolean; ssh: boolean } | undefined {
  if (value === undefined) return undefined;
  const kinds = value.split(',').map((k) => k.trim()).filter(Boolean);
  const bad = kinds.filter((k) => k !== 'http' && k !== 'ssh');
  if (bad.length) throw new UsageError(`--wake-on takes http, ssh or both (comma-separated), got ${bad.join(', ')}`);
  return { http: kinds.includes('http'), ssh: kinds.includes('ssh') };
}

/** Each line of `data` after `prefix` (a chunk that ends mid-line gets its newline). */
function prefixLines(prefix: string, data: string): string {
  const lines = data.endsWith('\n') ? data.slice(0, -1).split('\n') : data.split('\n');
  return lines.map((l) => `${prefix}${l}\n`).join('');
}

export const instanceCommands: CommandGroup = {
  start: {
    usage: `<snapshot-id> [--ttl S|none] [--vcpus N] [--memory MB] [--disk MB] ${NETWORK_USAGE} [--metadata k=v]… [--wake-on http,ssh] [--no-wait]`,
    summary: 'Start an instance from a snapshot',
    options: { ...metadataOption, ...networkOptions, ttl: { type: 'string' }, vcpus: { type: 'string' }, memory: { type: 'string' }, disk: { type: 'string' }, 'no-wait': { type: 'boolean' }, 'wake-on': { type: 'string' } },
    async run(ctx) {
      const resources = { vcpus: int(ctx, 'vcpus'), memory: int(ctx, 'memory'), diskSize: int(ctx, 'disk'), networkBandwidth: bandwidthFrom(ctx) };
      const hasResources = Object.values(resources).some((v) => v !== undefined);
      const instance = await ctx.client().instances.start({
        snapshotId: arg(ctx, 0, 'snapshot-id'),
        // Without --ttl the engine's default lifetime applies (FAAS_INSTANCE_TTL); `none` asks for no limit.
        ttl: str(ctx, 'ttl') === 'none' ? null : int(ctx, 'ttl'),
        metadata: pairs(ctx, 'metadata'),
        resources: hasResources ? resources : undefined,
        networkConfig: networkConfigFrom(ctx),
        wait: ctx.values['no-wait'] === true ? false : undefined,
        wakeOn: wakeOn(str(ctx, 'wake-on')),
      });
      ctx.out.result(instance, (i: Instance) => i.id);
    },
  },
  list: {
    usage: `[--state S] [--snapshot <id>] [--parent <id>] [--metadata k=v]… ${LIST_USAGE}`,
    summary: 'List instances (AGE since created; a stopped one has no IP: its address is free for others)',
    options: { ...metadataOption, ...listOptions, state: { type: 'string' }, snapshot: { type: 'string' }, parent: { type: 'string' } },
    async run(ctx) {
      const filter = { state: stateFilter(ctx), snapshotId: str(ctx, 'snapshot'), parentId: str(ctx, 'parent'), metadata: pairs(ctx, 'metadata') };
      printList(ctx, await ctx.client().instances.list(filter), INSTANCE_COLUMNS);
    },
  },
  get: {
    usage: '<instance-id>',
    summary: 'Show an instance',
    async run(ctx) {
      const instance = await ctx.client().instances.get(arg(ctx, 0, 'instance-id'));
      ctx.out.result(instance, (i: Instance) => showInstances([i]));
    },
  },
  stop: lifecycle('stop', 'Stop an instance (it can be restarted)'),
  pause: lifecycle('pause', 'Freeze every process of an instance'),
  resume: lifecycle('resume', 'Unfreeze a paused instance'),
  delete: {
    usage: '<instance-id>…',
    summary: 'Stop instances and forget them (each named one; exit 1 when any could not be deleted)',
    async run(ctx) {
      arg(ctx, 0, 'instance-id');
      const results: Array<{ id: string; deleted: boolean; error?: { code: string; message: string } }> = [];
      for (const id of ctx.args) {
        try {
          await ctx.client().instances.delete(id);
          results.push({ id, deleted: true });
        } catch (error) {
          // One id alone keeps the usual error report (and its exit code 3 when unreachable).
          if (ctx.args.length === 1) throw error;
          const e = error instanceof FaaSError ? error : undefined;
          results.push({ id, deleted: false, error: { code: e?.code ?? 'cli_error', message: (error as Error)?.message ?? String(error) } });
        }
      }
      const failed = results.filter((r) => !r.deleted);
      ctx.out.result(results.length === 1 ? results[0] : results, () =>
        results.map((r) => (r.deleted ? `deleted ${r.id}` : `not deleted ${r.id}: ${r.error!.message}`)).join('\n'),
      );
      return failed.length ? EXIT.engineError : EXIT.ok;
    },
  },
  metrics: {
    usage: '<instance-id>',
    summary: 'Resource usage of an instance',
    async run(ctx) {
      const m = await ctx.client().instances.getMetrics(arg(ctx, 0, 'instance-id'));
      ctx.out.result(m, (x: InstanceMetrics) =>
        table(
          ['CPU(s)', 'MEMORY', 'PEAK', 'LIMIT', 'PROCS', 'DISK', 'RX', 'TX'],
          [[x.cpu.usageSeconds.toFixed(2), bytes(x.memory.usageBytes), bytes(x.memory.peakBytes), bytes(x.memory.limitBytes), x.processes.count, bytes(x.disk.usedBytes), bytes(x.network.rxBytes), bytes(x.network.txBytes)]],
        ),
      );
    },
  },
  snapshot: {
    usage: `<instance-id> [--name <n>] [--metadata k=v]… ${CACHE_USAGE}`,
    summary: 'Checkpoint a running instance into a snapshot (storage flags: docs/storage.md)',
    options: { ...metadataOption, ...cacheOptions, name: { type: 'string' } },
    async run(ctx) {
      const work = ctx.client().instances.snapshot(arg(ctx, 0, 'instance-id'), { name: str(ctx, 'name'), metadata: pairs(ctx, 'metadata'), ...cachePolicyFrom(ctx) });
      const snapshot = await ctx.out.progress('snapshotting', work);
      ctx.out.result(snapshot, (s: Snapshot) => s.id);
    },
  },
  branch: {
    usage: `<instance-id> (--count N | --name <branch>…) ${NETWORK_USAGE} [--metadata k=v]… ${CACHE_USAGE}`,
    summary: 'Live-branch a running instance into N copies (--name once per copy: each gets a Branch; they inherit its network policy unless flags say otherwise)',
    options: { ...metadataOption, ...networkOptions, ...cacheOptions, count: { type: 'string', short: 'n' }, name: { type: 'string', multiple: true } },
    async run(ctx) {
      const names = ctx.values.name as string[] | undefined;
      // No silent default: a typo'd or forgotten --count would quietly make one copy.
      const count = int(ctx, 'count') ?? names?.length;
      if (count === undefined) throw new UsageError('say how many copies: --count N (or one --name per copy), e.g. `faas instance branch <id> --count 1`');
      const work = ctx.client().instances.branch(arg(ctx, 0, 'instance-id'), {
        count, metadata: pairs(ctx, 'metadata'), names, networkConfig: networkConfigFrom(ctx), networkBandwidth: bandwidthFrom(ctx), ...cachePolicyFrom(ctx),
      });
      const result = await ctx.out.progress(`branching into ${count}`, work);
      const branches = (r: typeof result) => (r.branches ? `\n${showBranches(r.branches)}` : '');
      ctx.out.result(result, (r: typeof result) => `snapshot ${r.snapshot.id}\n${showInstances(r.instances)}${branches(r)}`);
    },
  },
  logs: {
    usage: '<instance-id> [--tail N] [--since SEQ] [--follow]',
    summary:
      "The instance log: background processes' output (stdout here, stderr to stderr, each line after its pid) and when each started and exited; " +
      '--follow keeps printing new entries (polls each second) until Ctrl-C',
    options: { tail: { type: 'string', short: 'n' }, since: { type: 'string' }, follow: { type: 'boolean', short: 'f' } },
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      const instances = ctx.client().instances;
      const follow = ctx.values.follow === true;
      const print = (entries: api.InstanceLogEntry[]) => {
        for (const e of entries) {
          if (ctx.out.json && follow) process.stdout.write(`${JSON.stringify(e)}\n`);
          else if (!ctx.out.json) (e.stream === 'stderr' ? process.stderr : process.stdout).write(prefixLines(`${e.pid}${e.stream === 'agent' ? '*' : ''} | `, e.data));
        }
      };
      let logs = await instances.logs(id, { tail: int(ctx, 'tail'), since: int(ctx, 'since') });
      if (ctx.out.json && !follow) return void ctx.out.result(logs);
      print(logs.entries);
      if (!follow) return;
      let stop = false;
      const onInterrupt = () => (stop = true);
      process.once('SIGINT', onInterrupt);
      try {
        while (!stop) {
          await sleep(1000);
          if (stop) break;
          logs = await instances.logs(id, { since: logs.nextSeq });
          print(logs.entries);
        }
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    },
  },
  network: networkCommand,
  ...instanceIoCommands,
  ...stateCommands,
  ...instanceServiceCommands,
  ...forwardCommands,
  ...instanceSshCommands,
};
