// Writing one-shot exec results without building them whole. JSON writes a control byte as a
// 6-byte \u00XX escape, so a 1 MiB capped stdout can be a 6 MiB string, and stringify plus the
// socket's copy made ten such results ~350 MB at once. Output is escaped one slice at a time as the
// socket takes it instead; the engine holds the (capped) result, not its encoding.
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { ExecutionResult } from '../../core/types.js';

const SLICE = 64 * 1024;

/**
 * Sends `value` (a result, or `{results: [...]}`) as a JSON stream. With an Idempotency-Key (the
 * SDKs send one on every POST) idempotency.ts stores it deflated from the same stream.
 */
export function sendResults(reply: FastifyReply, value: ExecutionResult | { results: ExecutionResult[] }) {
  const chunks = 'results' in value ? batchChunks(value.results) : resultChunks(value);
  return reply.type('application/json').send(Readable.from(chunks, { objectMode: false }));
}

function* batchChunks(results: ExecutionResult[]): Generator<string> {
  yield '{"results":[';
  for (let i = 0; i < results.length; i++) {
    if (i > 0) yield ',';
    yield* resultChunks(results[i]);
  }
  yield ']}';
}

export function* resultChunks(r: ExecutionResult): Generator<string> {
  const { stdout, stderr, ...rest } = r;
  yield `${JSON.stringify(rest).slice(0, -1)},"stdout":"`;
  yield* escaped(stdout);
  yield '","stderr":"';
  yield* escaped(stderr);
  yield '"}';
}

/** JSON string contents of `s`, a slice at a time (never splitting a surrogate pair). */
function* escaped(s: string): Generator<string> {
  let i = 0;
  while (i < s.length) {
    let end = Math.min(i + SLICE, s.length);
    const last = s.charCodeAt(end - 1);
    if (end < s.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield JSON.stringify(s.slice(i, end)).slice(1, -1);
    i = end;
  }
}
