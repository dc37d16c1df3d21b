// JSON request bodies with limits that cannot stall the event loop: a size limit per route (large
// only where the contract carries data inside JSON: exec stdin and scripts) and a nesting limit
// checked while the body arrives, before JSON.parse runs. Deeply nested bodies are refused without
// being buffered or parsed (the parser's prototype-poisoning scan and schema validation recurse
// through them); no request in the contract nests deeper than a handful of levels.
import type { FastifyInstance } from 'fastify';
import { FaasError } from '../core/errors.js';

/** Operations whose JSON bodies carry user data (stdin, scripts, batches): they get the big limit. */
export const EXEC_BODY_OPERATIONS = new Set(['exec', 'execStream', 'execBatch', 'execScript', 'execSnapshot', 'execSnapshotStream', 'startProcess']);

export interface JsonBodyLimits {
  execBodyMax: number;
  jsonBodyMax: number;
  jsonDepthMax: number;
}

export function bodyLimitOf(operationId: string, limits: JsonBodyLimits): number {
  return EXEC_BODY_OPERATIONS.has(operationId) ? limits.execBodyMax : limits.jsonBodyMax;
}

/** The 413 of a JSON body over its route's limit. */
export function bodyTooLarge(limit: number): FaasError {
  return new FaasError(
    'payload_too_large',
    `the request body is larger than this route's limit of ${limit} bytes; send large data with the file or tar upload routes instead of inside JSON`,
    { limit },
  );
}

/**
 * Reads JSON bodies chunk by chunk, counting bytes against the route's limit and nesting as the
 * bytes arrive: a 10 MB `[[[[…` is refused at byte 33, not buffered first. (Structural characters
 * are ASCII, which never occurs inside a multi-byte UTF-8 sequence, so bytes can be scanned.)
 */
export function registerJsonParser(app: FastifyInstance, depthMax: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (req, payload, done) => {
    const limit = req.routeOptions.bodyLimit;
    if (Number(req.headers['content-length']) > limit) return done(bodyTooLarge(limit), undefined);
    const scan = new NestingScan(depthMax);
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null, body?: unknown) => {
      payload.off('data', onData).off('end', onEnd).off('error', onError);
      done(err, body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(bodyTooLarge(limit));
      if (scan.feed(chunk)) {
        return finish(new FaasError('invalid_request', `the JSON body nests deeper than ${depthMax} levels; no request needs that many: flatten it`, { reason: 'too_deep', limit: depthMax }));
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      payload.off('data', onData).off('end', onEnd).off('error', onError);
      parse(req, Buffer.concat(chunks, size).toString('utf8'), done);
    };
    const onError = (err: Error) => finish(Object.assign(err, { statusCode: 400 }));
    payload.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

/** Tracks array/object nesting across chunks; feed() is true once it goes deeper than `max`. */
export class NestingScan {
  private depth = 0;
  private inString = false;
  private escaped = false;
  constructor(private readonly max: number) {}

  feed(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
      } else if (c === 0x22) {
        this.inString = true;
      } else if (c === 0x5b || c === 0x7b) {
        if (++this.depth > this.max) return true;
      } else if (c === 0x5d || c === 0x7d) {
        this.depth--;
      }
    }
    return false;
  }
}
