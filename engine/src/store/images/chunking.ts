// Where a checkpoint file is cut into chunks. runsc writes a sandbox's memory into pages.img in the
// order of its memory file, so one page allocated or freed early in the file moves every later page
// by 4 KiB. Measured on two successive checkpoints of one instance holding 256 MB (bench/storage.mjs
// notes): fixed 64 KiB or 1 MiB chunks shared nothing (831 of 836 MB unique), 4 KiB chunks shared
// everything unchanged (295 of 836 MB unique). Storing 4 KiB chunks one per file costs 262,144
// files per GiB, so cuts are made at page boundaries chosen by the pages' own content instead
// (content-defined chunking at page granularity): a cut falls after a page whose sampled words
// hash to 0 mod 256, so chunks average 1 MiB, and a shift by whole pages moves the cuts with the
// content — the chunks after the first cut past a change are the same bytes as before.
export const PAGE = 4096;
/** Cuts are never closer than this (runs of pages whose samples hash alike, e.g. zero pages). */
export const MIN_CHUNK = 64 * 1024;
/** …nor farther apart than this. */
export const MAX_CHUNK = 4 * 1024 * 1024;
const MASK = 0xff; // 1 in 256 pages ends a chunk: 1 MiB on average

/** A cheap hash of 16 words spread over the page: enough to place cuts, never used as an identity. */
function pageMark(buf: Buffer, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) {
    h ^= buf.readUInt32LE(off + i * 252 + 4);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h ^ (h >>> 15)) >>> 0;
}

/** Whether the chunk that now holds `len` bytes ends with the page at buf[off, off+PAGE). */
export function endsChunk(buf: Buffer, off: number, len: number): boolean {
  return len >= MAX_CHUNK || (len >= MIN_CHUNK && (pageMark(buf, off) & MASK) === 0);
}
