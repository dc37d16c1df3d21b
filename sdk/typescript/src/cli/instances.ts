// faas instance start|list|get|stop|pause|resume|restart|delete|metrics|snapshot|branch (--name: named branches)
// (exec, shell and cp are in instance-io.ts; expose, hide and services in instance-services.ts)
import { CACHE_USAGE, cacheOptions, cachePolicyFrom } from './cache.js';
import type { Instance, InstanceMetrics, InstanceState } from '../resources/instances.js';
import type { Snapshot } from '../resources/snapshots.js';
import { arg, int, metadataOption, pairs, str, type Command, type CommandGroup, type Context } from './command.js';
import { bytes, table, UsageError } from './output.js';
import { instanceIoCommands } from './instance-io.js';
import { showBranches } from './branches.js';
import { stateCommands } from './state.js';
import { bandwidthFrom, NETWORK_USAGE, networkCommand, networkConfigFrom, networkOptions } from './network.js';
import { instanceServiceCommands } from './instance-services.js';
import { forwardCommands } from './forward.js';
import { instanceSshCommands } from './ssh.js';

const instanceRow = (i: Instance) => [i.id, i.state, i.snapshotId, i.parentInstanceId, i.network?.ip, i.createdAt];
const showInstances = (list: Instance[]) => table(['ID', 'STATE', 'SNAPSHOT', 'PARENT', 'IP', 'CREATED'], list.map(instanceRow));

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

export const instanceCommands: CommandGroup = {
  start: {
    usage: `<snapshot-id> [--ttl S] [--vcpus N] [--memory MB] [--disk MB] ${NETWORK_USAGE} [--metadata k=v]… [--wake-on http,ssh] [--no-wait]`,
    summary: 'Start an instance from a snapshot',
    options: { ...metadataOption, ...networkOptions, ttl: { type: 'string' }, vcpus: { type: 'string' }, memory: { type: 'string' }, disk: { type: 'string' }, 'no-wait': { type: 'boolean' }, 'wake-on': { type: 'string' } },
    async run(ctx) {
      const resources = { vcpus: int(ctx, 'vcpus'), memory: int(ctx, 'memory'), diskSize: int(ctx, 'disk'), networkBandwidth: bandwidthFrom(ctx) };
      const hasResources = Object.values(resources).some((v) => v !== undefined);
      const instance = await ctx.client().instances.start({
        snapshotId: arg(ctx, 0, 'snapshot-id'),
        ttl: int(ctx, 'ttl'),
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
    usage: '[--state S] [--snapshot <id>] [--parent <id>] [--metadata k=v]…',
    summary: 'List instances',
    options: { ...metadataOption, state: { type: 'string' }, snapshot: { type: 'string' }, parent: { type: 'string' } },
    async run(ctx) {
      const filter = { state: stateFilter(ctx), snapshotId: str(ctx, 'snapshot'), parentId: str(ctx, 'parent'), metadata: pairs(ctx, 'metadata') };
      ctx.out.result(await ctx.client().instances.list(filter), showInstances);
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
    usage: '<instance-id>',
    summary: 'Stop an instance and forget it',
    async run(ctx) {
      const id = arg(ctx, 0, 'instance-id');
      await ctx.client().instances.delete(id);
      ctx.out.result({ id, deleted: true }, () => `deleted ${id}`);
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
    usage: `<instance-id> --count N [--name <branch>]… ${NETWORK_USAGE} [--metadata k=v]… ${CACHE_USAGE}`,
    summary: 'Live-branch a running instance into N copies (--name once per copy: each gets a Branch; they inherit its network policy unless flags say otherwise)',
    options: { ...metadataOption, ...networkOptions, ...cacheOptions, count: { type: 'string', short: 'n' }, name: { type: 'string', multiple: true } },
    async run(ctx) {
      const names = ctx.values.name as string[] | undefined;
      const count = int(ctx, 'count') ?? names?.length ?? 1;
      const work = ctx.client().instances.branch(arg(ctx, 0, 'instance-id'), {
        count, metadata: pairs(ctx, 'metadata'), names, networkConfig: networkConfigFrom(ctx), networkBandwidth: bandwidthFrom(ctx), ...cachePolicyFrom(ctx),
      });
      const result = await ctx.out.progress(`branching into ${count}`, work);
      const branches = (r: typeof result) => (r.branches ? `\n${showBranches(r.branches)}` : '');
      ctx.out.result(result, (r: typeof result) => `snapshot ${r.snapshot.id}\n${showInstances(r.instances)}${branches(r)}`);
    },
  },
  network: networkCommand,
  ...instanceIoCommands,
  ...stateCommands,
  ...instanceServiceCommands,
  ...forwardCommands,
  ...instanceSshCommands,
};
