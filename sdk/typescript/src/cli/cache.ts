// CacheConfig and OptimizationHints flags shared by `snapshot create`, `instance snapshot` and
// `instance branch` (docs/storage.md).
import type { CacheConfig } from '../resources/snapshots.js';
import type { OptimizationHints } from '../core/config.js';
import { int, type Context, type Options } from './command.js';

export const CACHE_USAGE =
  '[--no-dedup] [--compression-level 0-9] [--cache-size BYTES] [--cache-ttl S] [--no-snapshot-cache] [--pin] [--sequential]';

export const cacheOptions: Options = {
  'no-dedup': { type: 'boolean' },
  'compression-level': { type: 'string' },
  'cache-size': { type: 'string' },
  'cache-ttl': { type: 'string' },
  'no-snapshot-cache': { type: 'boolean' },
  pin: { type: 'boolean' },
  sequential: { type: 'boolean' },
};

/** The request's cacheConfig / optimizationHints from the flags (undefined when none is given). */
export function cachePolicyFrom(ctx: Context): { cacheConfig?: CacheConfig; optimizationHints?: OptimizationHints } {
  const cacheConfig: CacheConfig = {};
  if (ctx.values['no-dedup'] === true) cacheConfig.deduplication = false;
  const level = int(ctx, 'compression-level');
  if (level !== undefined) cacheConfig.compressionLevel = level;
  const size = int(ctx, 'cache-size');
  if (size !== undefined) cacheConfig.cacheSize = size;
  const ttl = int(ctx, 'cache-ttl');
  if (ttl !== undefined) cacheConfig.ttl = ttl;
  if (ctx.values['no-snapshot-cache'] === true) cacheConfig.enableSnapshotCache = false;
  const optimizationHints: OptimizationHints = {};
  if (ctx.values.pin === true) optimizationHints.lazyLoading = false;
  if (ctx.values.sequential === true) optimizationHints.parallelExecution = false;
  return {
    ...(Object.keys(cacheConfig).length ? { cacheConfig } : {}),
    ...(Object.keys(optimizationHints).length ? { optimizationHints } : {}),
  };
}

/** One line on a snapshot's disk use, for `snapshot get`. */
export function storageLine(s: { storage?: { deduplicated: boolean; materialized: boolean; sharedBytes?: number; exclusiveBytes?: number } }): string {
  const st = s.storage;
  if (!st) return '';
  if (!st.deduplicated) return `storage: whole files${st.materialized ? '' : ' (missing)'}`;
  const mb = (n = 0) => `${(n / 1048576).toFixed(1)} MiB`;
  return `storage: deduplicated, shared ${mb(st.sharedBytes)}, exclusive ${mb(st.exclusiveBytes)}${st.materialized ? ', cached whole' : ''}`;
}
