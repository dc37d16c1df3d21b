// Bearer API key on every route but health. /docs also takes HTTP Basic (any user, the key as
// password) so a browser can open it and prompt for the key.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { FaasError } from '../core/errors.js';

const PUBLIC = new Set(['/v1/health']);

export function makeAuth(apiKey: string) {
  const expected = Buffer.from(apiKey);
  const matches = (candidate: string) => {
    const b = Buffer.from(candidate);
    return b.length === expected.length && timingSafeEqual(b, expected);
  };
  return (req: FastifyRequest): void => {
    const path = req.url.split('?')[0];
    if (PUBLIC.has(path)) return;
    const header = req.headers.authorization ?? '';
    const [scheme, value] = header.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer' && value && matches(value)) return;
    if (path.startsWith('/docs') && scheme?.toLowerCase() === 'basic' && value) {
      const decoded = Buffer.from(value, 'base64').toString();
      if (matches(decoded.slice(decoded.indexOf(':') + 1))) return;
    }
    throw new FaasError(
      'unauthorized',
      header ? 'the API key is not valid for this engine' : 'missing API key: send Authorization: Bearer <key> (see `faas engine status`)',
      null,
    );
  };
}
