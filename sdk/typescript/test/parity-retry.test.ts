// The retry policy against the shared table tests/conformance/retry-policy.json, which the Python
// SDK's tests/test_parity_retry.py checks too: both SDKs retry the same answers after the same waits.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { errorFromBody, networkError } from '../src/core/errors.js';
import { retryDecision } from '../src/core/retry.js';

interface Case {
  name: string;
  method: string;
  idempotencyKey?: boolean;
  status?: number;
  code?: string;
  detailsKey?: 'own' | 'other';
  network?: boolean;
  attempt: number;
  maxRetries?: number;
  retryAfter?: string;
  retry: boolean;
  delaySeconds?: number;
  delaySecondsAtMost?: number;
  backoffBase?: number;
}

const table = JSON.parse(readFileSync(fileURLToPath(new URL('../../../../tests/conformance/retry-policy.json', import.meta.url)), 'utf8')) as { cases: Case[] };

/** 'past-date' / 'future-date-3s' become HTTP dates; anything else is sent as written. */
function header(value: string | undefined): string | undefined {
  if (value === 'past-date') return new Date(Date.now() - 3_600_000).toUTCString();
  const ahead = /^future-date-(\d+)s$/.exec(value ?? '');
  return ahead ? new Date(Date.now() + Number(ahead[1]) * 1000).toUTCString() : value;
}

for (const c of table.cases) {
  test(`retry policy: ${c.name}`, () => {
    const ownKey = 'key-own';
    const idempotencyKey = c.method === 'POST' ? (c.idempotencyKey ? ownKey : undefined) : undefined;
    const details = c.detailsKey ? { key: c.detailsKey === 'own' ? ownKey : 'key-other' } : undefined;
    const error = c.network ? networkError('unreachable') : errorFromBody({ code: c.code, message: 'scripted', details }, c.status);
    for (const random of [() => 0, () => 0.999]) {
      const ms = retryDecision(error, { method: c.method, idempotencyKey, attempt: c.attempt, maxRetries: c.maxRetries ?? 2, retryAfter: header(c.retryAfter) }, random);
      assert.equal(ms !== undefined, c.retry, `retry? ${ms}`);
      if (ms === undefined) continue;
      const seconds = ms / 1000;
      if (c.delaySeconds !== undefined) assert.equal(seconds, c.delaySeconds);
      if (c.delaySecondsAtMost !== undefined) assert.ok(seconds >= 0 && seconds <= c.delaySecondsAtMost, `${seconds}`);
      if (c.backoffBase !== undefined) assert.ok(seconds >= 0.75 * c.backoffBase - 0.001 && seconds <= c.backoffBase, `${seconds}`);
    }
  });
}
