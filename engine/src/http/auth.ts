// Bearer API key or token on every route but health; the principal it stands for is put on the
// request for the ownership guard (ownership.ts) and the routes. /docs also takes HTTP Basic (any
// user, the key or token as password) so a browser can open it and prompt for the key.
import type { FastifyRequest } from 'fastify';
import { FaasError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { KeyService } from '../services/keys.js';

const PUBLIC = new Set(['/v1/health']);

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The bearer value of `Authorization: Bearer …`, or undefined. */
export function bearerOf(header: string | undefined): string | undefined {
  const [scheme, value] = (header ?? '').split(' ', 2);
  return scheme?.toLowerCase() === 'bearer' && value ? value : undefined;
}

export function makeAuth(keys: KeyService) {
  return (req: FastifyRequest): void => {
    const path = req.url.split('?')[0];
    if (PUBLIC.has(path)) return;
    const header = req.headers.authorization ?? '';
    let value = bearerOf(header);
    if (!value && path.startsWith('/docs') && header.toLowerCase().startsWith('basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString();
      value = decoded.slice(decoded.indexOf(':') + 1) || undefined;
    }
    if (!value) {
      throw new FaasError('unauthorized', header ? 'the API key or token is not valid for this engine' : 'missing API key: send Authorization: Bearer <key> (see `faas engine status`)', null);
    }
    req.principal = keys.authenticate(value);
  };
}

/** The caller; every authenticated route has one (health has none and never asks). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new FaasError('unauthorized', 'missing API key: send Authorization: Bearer <key>');
  return req.principal;
}
