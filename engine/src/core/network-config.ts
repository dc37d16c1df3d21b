// NetworkConfig as the API takes it (every field optional) -> the stored, normalized form (every
// default filled in, CIDRs canonical, host names lower case), with a 400 that says what to change
// for every entry the firewall could not enforce. No I/O: host names are resolved by the network
// policy service (services/network-policy.ts) when the policy is applied.
import { invalid } from './errors.js';
import type { EgressPolicy, NetworkConfig } from './types.js';

export interface NetworkConfigInput {
  egress?: { mode?: EgressPolicy['mode']; allow?: string[]; deny?: string[]; dns?: boolean };
}

export const DEFAULT_NETWORK_CONFIG: NetworkConfig = Object.freeze({
  egress: Object.freeze({ mode: 'allow-all', allow: [], deny: [], dns: true }),
}) as NetworkConfig;

/** A fresh copy of the default (records must not share arrays). */
export const defaultNetworkConfig = (): NetworkConfig => ({ egress: { mode: 'allow-all', allow: [], deny: [], dns: true } });

/** True when the config restricts nothing (no chain is needed for it). */
export const isUnrestricted = (c: NetworkConfig): boolean =>
  c.egress.mode === 'allow-all' && c.egress.deny.length === 0;

/** Validates and normalizes; `field` is the JSON pointer of the config in the request (for details). */
export function normalizeNetworkConfig(input: NetworkConfigInput | undefined, field = '/networkConfig'): NetworkConfig {
  const e = input?.egress ?? {};
  const mode = e.mode ?? 'allow-all';
  const allow = (e.allow ?? []).map((t, i) => normalizeTarget(t, `${field}/egress/allow/${i}`));
  const deny = (e.deny ?? []).map((t, i) => normalizeTarget(t, `${field}/egress/deny/${i}`));
  if (mode === 'deny-all' && deny.length) {
    throw invalid('egress.deny has no effect with mode deny-all (everything not in allow is blocked already): remove deny, or use mode allow-all', {
      field: `${field}/egress/deny`,
    });
  }
  return { egress: { mode, allow: unique(allow), deny: unique(deny), dns: e.dns ?? true } };
}

/** Whether a normalized target is a host name (otherwise an IPv4 CIDR). */
export const isHostName = (target: string): boolean => !target.includes('/');

/**
 * An IPv4 address (-> a.b.c.d/32), an IPv4 CIDR (host bits must be zero) or a host name
 * (-> lower case, no trailing dot). Anything else is a 400 naming the entry.
 */
export function normalizeTarget(raw: string, field: string): string {
  const t = raw.trim();
  const bad = (why: string) => invalid(`${field}: ${JSON.stringify(raw)} ${why}`, { field, value: raw });
  if (t.includes(':')) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) throw bad('is a URL: give the bare host name (e.g. "example.com"), without scheme, port or path');
    throw bad('is IPv6 or has a port: sandboxes speak IPv4 only (IPv6 is switched off for every sandbox), so give IPv4 addresses, IPv4 CIDRs or host names, without ports');
  }
  const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(t);
  if (cidr) {
    const octets = cidr[1].split('.').map(Number);
    if (octets.some((o) => o > 255)) throw bad('is not an IPv4 address: each of the four numbers must be 0-255');
    const bits = cidr[2] === undefined ? 32 : Number(cidr[2]);
    if (bits > 32) throw bad('has a prefix length above 32: use /0 to /32');
    const addr = toInt(octets);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if ((addr & mask) >>> 0 !== addr) {
      throw bad(`has host bits set: did you mean ${fromInt((addr & mask) >>> 0)}/${bits}?`);
    }
    return `${fromInt(addr)}/${bits}`;
  }
  if (/^[\d./]+$/.test(t)) throw bad('is not an IPv4 address or CIDR: write it as a.b.c.d or a.b.c.d/n');
  if (t.includes('*')) throw bad('has a wildcard: host names are resolved on the engine host when the policy is applied, so list each name (e.g. "api.example.com")');
  const name = t.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (name.length === 0 || name.length > 253 || !labels.every((l) => label.test(l))) {
    throw bad('is not a host name: use letters, digits and hyphens in dot-separated labels of 1-63 characters (no underscores, no leading or trailing hyphen)');
  }
  return name;
}

const toInt = (o: number[]) => ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
const fromInt = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const unique = (xs: string[]) => [...new Set(xs)];
