import type { FastifyRequest } from 'fastify';
import type { Metadata } from '../../core/types.js';

export type Q = Record<string, string | undefined> & { metadata?: Metadata; limit?: number };
export const params = (req: FastifyRequest) => req.params as { id: string; pid?: number };
export const query = (req: FastifyRequest) => (req.query ?? {}) as Q;
export const body = <T>(req: FastifyRequest) => (req.body ?? {}) as T;
export const bool = (v: unknown, dflt: boolean) => (v === undefined ? dflt : v === true || v === 'true');
export const listQuery = (q: Q) => ({ limit: Number(q.limit ?? 50), cursor: q.cursor, metadata: q.metadata });
