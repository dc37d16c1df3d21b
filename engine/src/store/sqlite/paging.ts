import { invalid } from '../../core/errors.js';
import type { Metadata, Page } from '../../core/types.js';

// Newest first; the cursor is the position after the last row served: its created_at and id joined
// by `~` (the spec's Cursor pattern). Any well-formed position is valid, issued or not, so a client
// holding a cursor whose row was deleted since still gets the next page.
const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)~([a-z]+_[a-z0-9]+)$/;

export function encodeCursor(createdAt: string, id: string): string {
  return `${createdAt}~${id}`;
}

export function decodeCursor(cursor: string): [string, string] {
  const m = CURSOR.exec(cursor);
  if (!m) throw invalid('cursor must be the nextCursor of a previous page (<createdAt>~<id>)', { cursor });
  return [m[1], m[2]];
}

export interface Where {
  clauses: string[];
  params: unknown[];
}

export function metadataWhere(where: Where, metadata: Metadata | undefined): void {
  for (const [k, v] of Object.entries(metadata ?? {})) {
    // json_each compares the key as a value: a JSON path built from the key broke (500) on keys
    // with a backslash or NUL and matched the wrong key when it held a quote.
    where.clauses.push('EXISTS (SELECT 1 FROM json_each(metadata) WHERE json_each.key = ? AND json_each.value = ?)');
    where.params.push(k, v);
  }
}

export function pageQuery<Row extends { created_at: string; id: string }, T>(
  db: import('./db.js').Db,
  table: string,
  where: Where,
  limit: number,
  cursor: string | undefined,
  map: (r: Row) => T,
): Page<T> {
  const clauses = [...where.clauses];
  const params = [...where.params];
  if (cursor) {
    const [createdAt, id] = decodeCursor(cursor);
    clauses.push('(created_at < ? OR (created_at = ? AND id < ?))');
    params.push(createdAt, createdAt, id);
  }
  const sql = `SELECT * FROM ${table} ${clauses.length ? 'WHERE ' + clauses.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
  const rows = db.prepare(sql).all(...params, limit + 1) as Row[];
  const more = rows.length > limit;
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return { data: pageRows.map(map), nextCursor: more && last ? encodeCursor(last.created_at, last.id) : null };
}
