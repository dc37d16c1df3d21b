// Which snapshot images stay materialized (whole files in snapshots/<id>/, what runsc restores
// from) once they are also in the deduplicated ImageStore. A stored image's directory is only a
// cache: evicting it frees its bytes, and the next restore assembles it again from the chunks.
// An image that is not stored (deduplication off, or not stored yet: checkpoints are stored in a
// quiet moment after they are checksummed) is its only copy and is never evicted.
//
// What is evicted, in this order, whenever an image is stored, restored or deleted, and once a
// minute (never one a restore or checkpoint holds):
//   1. images whose snapshot says enableSnapshotCache: false, or whose files are larger than its
//      own cacheSize;
//   2. images not restored (nor made) for longer than their ttl (seconds; 0: no limit);
//   3. least recently used images until the materialized stored images together fit the engine's
//      cacheSize.
// A snapshot made with optimizationHints.lazyLoading: false is pinned: never evicted.
export interface CacheConfig {
  enableSnapshotCache: boolean;
  /** Bytes. Engine: all materialized stored images together. Snapshot: its own at most. */
  cacheSize: number;
  /** Seconds a materialized copy is kept after its last use; 0: no limit. */
  ttl: number;
  /** 0 (none) .. 9: deflate level of the chunks an image adds to the store. */
  compressionLevel: number;
  deduplication: boolean;
}

export interface OptimizationHints {
  reuseSnapshots: boolean;
  parallelExecution: boolean;
  lazyLoading: boolean;
  incrementalSnapshots: boolean;
}

/** What a snapshot was made with (only the fields given; the engine's config fills the rest). */
export interface SnapshotCachePolicy {
  cacheConfig?: Partial<CacheConfig>;
  optimizationHints?: Partial<OptimizationHints>;
}

export const DEFAULT_CACHE_CONFIG: CacheConfig = {
  enableSnapshotCache: true,
  cacheSize: 2 * 1024 ** 3,
  ttl: 0,
  compressionLevel: 0,
  deduplication: true,
};

export function cacheConfigFromEnv(env: NodeJS.ProcessEnv): CacheConfig {
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected an integer from ${min} to ${max}`);
    return n;
  };
  const bool = (name: string, dflt: boolean): boolean => {
    const raw = env[name];
    if (raw === undefined || raw === '') return dflt;
    if (['1', 'true', 'on'].includes(raw)) return true;
    if (['0', 'false', 'off'].includes(raw)) return false;
    throw new Error(`${name}=${raw}: expected true or false`);
  };
  return {
    enableSnapshotCache: bool('FAAS_CACHE_ENABLE', DEFAULT_CACHE_CONFIG.enableSnapshotCache),
    cacheSize: int('FAAS_CACHE_SIZE', DEFAULT_CACHE_CONFIG.cacheSize, 0, Number.MAX_SAFE_INTEGER),
    ttl: int('FAAS_CACHE_TTL', DEFAULT_CACHE_CONFIG.ttl, 0, 10 * 365 * 86_400),
    compressionLevel: int('FAAS_CACHE_COMPRESSION_LEVEL', DEFAULT_CACHE_CONFIG.compressionLevel, 0, 9),
    deduplication: bool('FAAS_CACHE_DEDUPLICATION', DEFAULT_CACHE_CONFIG.deduplication),
  };
}

/** The policy in force for one snapshot: its own fields over the engine's. */
export function effective(engine: CacheConfig, p: SnapshotCachePolicy | undefined): CacheConfig & { pinned: boolean } {
  const c = { ...engine, ...(p?.cacheConfig ?? {}) };
  // incrementalSnapshots: false asks for a whole image: the same as deduplication: false.
  if (p?.optimizationHints?.incrementalSnapshots === false) c.deduplication = false;
  return { ...c, pinned: p?.optimizationHints?.lazyLoading === false };
}

export interface CacheEntry {
  id: string;
  bytes: number;
  lastUsed: number;
  policy: CacheConfig & { pinned: boolean };
}

/** The ids to evict, in order, from the materialized stored images not in use (see the top). */
export function toEvict(entries: CacheEntry[], engineCacheSize: number, now: number): string[] {
  const out: string[] = [];
  const keep: CacheEntry[] = [];
  for (const e of entries) {
    if (e.policy.pinned) continue;
    const expired = e.policy.ttl > 0 && now - e.lastUsed > e.policy.ttl * 1000;
    if (!e.policy.enableSnapshotCache || e.bytes > e.policy.cacheSize || expired) out.push(e.id);
    else keep.push(e);
  }
  keep.sort((a, b) => a.lastUsed - b.lastUsed);
  let total = keep.reduce((n, e) => n + e.bytes, 0);
  for (const e of keep) {
    if (total <= engineCacheSize) break;
    out.push(e.id);
    total -= e.bytes;
  }
  return out;
}
