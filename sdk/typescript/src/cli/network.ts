// The egress and bandwidth flags shared by `faas instance start|branch|network` and
// `faas snapshot create`: --deny-egress, --allow TARGET…, --deny TARGET…, --no-dns, --bandwidth MBIT.
// The engine validates the targets (IPv4, CIDR or host name) and answers what to fix.
import type { Instance, NetworkConfig } from '../resources/instances.js';
import { arg, str, type Command, type Context, type Options } from './command.js';
import { UsageError } from './output.js';

export const NETWORK_USAGE = '[--deny-egress] [--allow CIDR|HOST]… [--deny CIDR|HOST]… [--no-dns] [--bandwidth MBIT|none]';

export const networkOptions: Options = {
  'deny-egress': { type: 'boolean' },
  allow: { type: 'string', multiple: true },
  deny: { type: 'string', multiple: true },
  'no-dns': { type: 'boolean' },
  bandwidth: { type: 'string' },
};

const list = (ctx: Context, name: string): string[] | undefined => {
  const v = ctx.values[name];
  return Array.isArray(v) && v.length ? v : undefined;
};

/** The networkConfig the flags describe; undefined when no egress flag was given (inherit). */
export function networkConfigFrom(ctx: Context): NetworkConfig | undefined {
  const denyAll = ctx.values['deny-egress'] === true;
  const allow = list(ctx, 'allow');
  const deny = list(ctx, 'deny');
  const noDns = ctx.values['no-dns'] === true;
  if (!denyAll && !allow && !deny && !noDns) return undefined;
  return { egress: { mode: denyAll ? 'deny-all' : 'allow-all', allow, deny, ...(noDns ? { dns: false } : {}) } };
}

/** --bandwidth: Mbit/s, or `none` for no limit; undefined when not given (inherit). */
export function bandwidthFrom(ctx: Context): number | null | undefined {
  const raw = str(ctx, 'bandwidth');
  if (raw === undefined) return undefined;
  if (raw === 'none') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--bandwidth takes whole Mbit/s (1 or more) or "none", got ${JSON.stringify(raw)}`);
  return n;
}

const describe = (i: Instance) => {
  const e = i.networkConfig.egress;
  const parts = [`egress ${e.mode}`];
  if (e.allow.length) parts.push(`allow ${e.allow.join(',')}`);
  if (e.deny.length) parts.push(`deny ${e.deny.join(',')}`);
  if (!e.dns) parts.push('no dns');
  parts.push(i.resources.networkBandwidth === null ? 'bandwidth unlimited' : `bandwidth ${i.resources.networkBandwidth} Mbit/s`);
  return `${i.id} ${parts.join('; ')}`;
};

/** `faas instance network <id> …`: shows, or with flags replaces, a live instance's policy. */
export const networkCommand: Command = {
  usage: `<instance-id> ${NETWORK_USAGE}`,
  summary: 'Show or change an instance\'s egress policy and bandwidth (no flags: show)',
  options: networkOptions,
  async run(ctx) {
    const id = arg(ctx, 0, 'instance-id');
    const networkConfig = networkConfigFrom(ctx);
    const networkBandwidth = bandwidthFrom(ctx);
    const client = ctx.client();
    const instance = networkConfig === undefined && networkBandwidth === undefined
      ? await client.instances.get(id)
      : await client.instances.setNetwork(id, { networkConfig, networkBandwidth });
    ctx.out.result(instance, describe);
  },
};
