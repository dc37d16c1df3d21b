import { invalid } from '../../core/errors.js';
import type { Metadata, Page } from '../../core/types.js';

// Newest first; the cursor is the (created_at, id) of the last row served, opaque to clients.
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString());
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    /* fall through */
  }
  throw invalid('cursor is not one this engine issued', { cursor });
}

export interface Where {
  clauses: string[];
  params: unknown[];
}

export function metadataWhere(where: Where, metadata: Metadata | undefined): void {
  for (const [k, v] of Object.entries(metadata ?? {})) {
    where.clauses.push('json_extract(metadata, ?) = ?');
    where.params.push(`$."${k.replace(/"/g, '')}"`, v);
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
