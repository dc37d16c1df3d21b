// JSON request bodies with limits that cannot stall the event loop: a size limit per route (large
// only where the contract carries data inside JSON: exec stdin and scripts) and a nesting limit
// checked by one linear scan before JSON.parse runs. Deeply nested bodies are refused without being
// parsed (the parser's prototype-poisoning scan and schema validation recurse through them); no
// request in the contract nests deeper than a handful of levels.
import type { FastifyInstance } from 'fastify';
import { FaasError } from '../core/errors.js';

/** Operations whose JSON bodies carry user data (stdin, scripts, batches): they get the big limit. */
export const EXEC_BODY_OPERATIONS = new Set(['exec', 'execStream', 'execBatch', 'execScript', 'execSnapshot', 'startProcess']);

export interface JsonBodyLimits {
  execBodyMax: number;
  jsonBodyMax: number;
  jsonDepthMax: number;
}

export function bodyLimitOf(operationId: string, limits: JsonBodyLimits): number {
  return EXEC_BODY_OPERATIONS.has(operationId) ? limits.execBodyMax : limits.jsonBodyMax;
}

export function registerJsonParser(app: FastifyInstance, depthMax: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    if (nestingExceeds(text, depthMax)) {
      done(new FaasError('invalid_request', `the JSON body nests deeper than ${depthMax} levels; no request needs that many: flatten it`, { reason: 'too_deep', limit: depthMax }), undefined);
      return;
    }
    parse(req, text, done);
  });
}

/** True when arrays/objects nest deeper than `max`; stops at the first level too deep. */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
