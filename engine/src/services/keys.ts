// API keys and the short-lived tokens minted from them.
//
// Keys: `faas_` + 24 random bytes (192 bits). Only SHA-256(secret) is stored. A slow password hash
// (scrypt, argon2) protects low-entropy secrets against guessing after a database leak; these
// secrets are uniformly random, so one SHA-256 is already preimage-resistant beyond any search, and
// being deterministic it doubles as the lookup index: one indexed SELECT per request, then a
// constant-time comparison of the stored and computed digests.
//
// Tokens: `faastok.<keyId>.<expiry unix s>.<nonce>.<HMAC-SHA256>` signed with a 32-byte secret kept
// in the state directory (0600). Checking one needs no token table: the signature proves the
// engine minted it, the expiry is inside it, and the only lookup is the key's row by primary key
// (is it revoked?), so revoking a key ends its tokens at once. Rotating the file ends every token.
// A token acts as its key but cannot mint keys or further tokens: a leaked token dies at expiry.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { conflict, FaasError, forbidden } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Principal } from '../core/principal.js';
import { nowIso, type Page } from '../core/types.js';
import type { KeyRecord, KeyRepo } from '../store/sqlite/keys.js';

export const TOKEN_PREFIX = 'faastok.';
export const SCOPED_PREFIX = 'faassvc.';
export const DEFAULT_TOKEN_SECONDS = 3600;
export const MAX_TOKEN_SECONDS = 86_400;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export class KeyService {
  private readonly signingKey: Buffer;

  constructor(private readonly repo: KeyRepo, signingKeyPath: string, private readonly now: () => number = Date.now) {
    this.signingKey = loadOrCreateSecret(signingKeyPath);
  }

  /**
   * Makes the key from credentials.json an admin key named `bootstrap` if the engine does not know
   * it yet. On the first key ever (an install upgraded from the single-key engine) the records made
   * before keys existed become that key's.
   */
  bootstrap(secret: string): KeyRecord {
    const known = this.repo.byHash(sha256(secret));
    if (known) return known;
    const first = this.repo.count() === 0;
    const rec: KeyRecord = { id: newId('key'), name: 'bootstrap', admin: true, createdAt: nowIso(), revokedAt: null };
    this.repo.insert(rec, sha256(secret));
    if (first) this.repo.adoptOrphans(rec.id);
    return rec;
  }

  create(by: Principal, input: { name: string; admin?: boolean }): KeyRecord & { secret: string } {
    this.assertManager(by, 'create keys');
    const secret = `faas_${randomBytes(24).toString('base64url')}`;
    const rec: KeyRecord = { id: newId('key'), name: input.name, admin: input.admin ?? false, createdAt: nowIso(), revokedAt: null };
    this.repo.insert(rec, sha256(secret));
    return { ...rec, secret };
  }

  list(by: Principal, q: { limit: number; cursor?: string }): Page<KeyRecord> {
    this.assertManager(by, 'list keys');
    return this.repo.list(q);
  }

  revoke(by: Principal, id: string): void {
    this.assertManager(by, 'revoke keys');
    const rec = this.repo.get(id);
    if (!rec || rec.revokedAt) throw new FaasError('not_found', `key ${id} does not exist or is already revoked`, { id });
    if (rec.admin && this.repo.activeAdmins() <= 1) {
      throw conflict('this is the last admin key; create another admin key before revoking it', { id });
    }
    this.repo.revoke(id, nowIso());
  }

  mintToken(by: Principal, expiresIn = DEFAULT_TOKEN_SECONDS): { token: string; expiresAt: string; keyId: string } {
    if (by.via === 'token') throw forbidden('a token cannot mint tokens; mint from the API key itself', { via: 'token' });
    // Rounded up to the next second: a token lives at least `expiresIn` seconds, never less.
    const exp = Math.ceil(this.now() / 1000) + Math.min(Math.max(1, Math.floor(expiresIn)), MAX_TOKEN_SECONDS);
    const body = `${by.keyId}.${exp}.${randomBytes(9).toString('base64url')}`;
    return { token: `${TOKEN_PREFIX}${body}.${this.sign(body)}`, expiresAt: new Date(exp * 1000).toISOString(), keyId: by.keyId };
  }

  /** The principal a bearer value (key or token) stands for; throws 401 with a stable code. */
  authenticate(bearer: string): Principal {
    if (bearer.startsWith(TOKEN_PREFIX)) return this.fromToken(bearer.slice(TOKEN_PREFIX.length));
    const digest = sha256(bearer);
    const rec = this.repo.byHash(digest);
    if (!rec || !sameHex(rec.secretHash, digest)) throw unauthorized();
    if (rec.revokedAt) throw revoked(rec.id);
    return { keyId: rec.id, admin: rec.admin, via: 'key' };
  }

  private fromToken(rest: string): Principal {
    const parts = rest.split('.');
    if (parts.length !== 4) throw unauthorized();
    const [keyId, exp, nonce, sig] = parts;
    if (!sameHex(sig, this.sign(`${keyId}.${exp}.${nonce}`))) throw unauthorized();
    // Only a signed token gets past here, so its expiry and key id are the engine's own.
    if (Number(exp) * 1000 <= this.now()) {
      throw new FaasError('token_expired', 'the token has expired: mint a new one with POST /v1/tokens using the API key', { expiredAt: new Date(Number(exp) * 1000).toISOString() });
    }
    const rec = this.repo.get(keyId);
    if (!rec) throw unauthorized();
    if (rec.revokedAt) throw revoked(rec.id);
    return { keyId: rec.id, admin: rec.admin, via: 'token' };
  }

  /**
   * A token that opens one thing only (an HTTP service of one instance: `scope`), for links a browser
   * follows: `faassvc.<keyId>.<expiry>.<nonce>.<HMAC(scope|body)>`. The scope is signed but not
   * written in it, so a token for one scope fails the signature check under any other, and the
   * API never accepts it (it is not a `faastok.`). The key's row is looked up as for tokens, so
   * revoking the key ends it.
   */
  mintScoped(keyId: string, scope: string, expiresIn: number): { token: string; expiresAt: string } {
    const exp = Math.ceil(this.now() / 1000) + Math.min(Math.max(1, Math.floor(expiresIn)), MAX_TOKEN_SECONDS);
    const body = `${keyId}.${exp}.${randomBytes(9).toString('base64url')}`;
    return { token: `${SCOPED_PREFIX}${body}.${this.sign(`${scope}|${body}`)}`, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** The principal of a scoped token for exactly `scope` and its expiry; throws 401 otherwise. */
  verifyScoped(token: string, scope: string): { principal: Principal; expiresAt: number } {
    if (!token.startsWith(SCOPED_PREFIX)) throw unauthorized();
    const parts = token.slice(SCOPED_PREFIX.length).split('.');
    if (parts.length !== 4) throw unauthorized();
    const [keyId, exp, nonce, sig] = parts;
    if (!sameHex(sig, this.sign(`${scope}|${keyId}.${exp}.${nonce}`))) throw unauthorized();
    if (Number(exp) * 1000 <= this.now()) {
      throw new FaasError('token_expired', 'the link has expired: ask for a fresh one (its service\'s tokenUrl)', { expiredAt: new Date(Number(exp) * 1000).toISOString() });
    }
    const rec = this.repo.get(keyId);
    if (!rec) throw unauthorized();
    if (rec.revokedAt) throw revoked(rec.id);
    return { principal: { keyId: rec.id, admin: rec.admin, via: 'token' }, expiresAt: Number(exp) * 1000 };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.signingKey).update(body).digest('base64url');
  }

  private assertManager(by: Principal, what: string): void {
    if (!by.admin) throw forbidden(`only an admin key may ${what}`, { admin: false });
    if (by.via === 'token') throw forbidden(`a token cannot ${what}; use the admin API key itself`, { via: 'token' });
  }
}

const unauthorized = () => new FaasError('unauthorized', 'the API key or token is not valid for this engine');
const revoked = (id: string) => new FaasError('key_revoked', `key ${id} has been revoked; ask an admin for a new key`, { keyId: id });

/** The token signing secret: 32 random bytes, created once, readable by the engine's user only. */
function loadOrCreateSecret(path: string): Buffer {
  try {
    const hex = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  } catch {
    /* first start */
  }
  const key = randomBytes(32);
  writeFileSync(path, key.toString('hex') + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return key;
}

