import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Opaque, URL-safe, prefixed ids (`inst_k3…`). 16 chars of base36 ≈ 82 bits. */
export function newId(prefix: 'img' | 'snap' | 'inst' | 'br' | 'evt' | 'req' | 'op' | 'key' | 'sshkey' | 'sbx'): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return `${prefix}_${out}`;
}
