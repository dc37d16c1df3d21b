// Retry policy, against a tiny local HTTP server (the only place the engine is not used): which
// requests repeat, how long they wait, the Idempotency-Key reuse, Retry-After, the 401 refresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaaSClient, NetworkError, InvalidRequestError, ResourceLimitError, InternalError, ConflictError } from '../src/index.js';
import { retryDelayMs, parseRetryAfter, isRetryableRequest } from '../src/core/retry.js';
import { closedPort } from './helpers/env.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function withServer(handler: Handler, body: (endpoint: string, requests: IncomingMessage[]) => Promise<void>): Promise<void> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    req.resume();
    req.on('end', () => handler(req, res, requests.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const sendError = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}, details: unknown = null) => {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_test', ...headers });
  res.end(JSON.stringify({ error: { code, message: code, details, requestId: 'req_test' } }));
};
const sendJson = (res: ServerResponse, value: unknown) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

test('a POST sent without an Idempotency-Key is never repeated', async () => {
  await withServer(
    (_req, res) => sendError(res, 503, 'internal'),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k', maxRetries: 3 });
      await assert.rejects(client.http.request({ method: 'POST', path: '/v1/x', json: {}, idempotencyKey: null }), InternalError);
      assert.equal(requests.length, 1);
      assert.equal(requests[0].headers['idempotency-key'], undefined);
    },
  );
});

test('a POST is retried with the same generated Idempotency-Key', async () => {
  await withServer(
    (_req, res, n) => (n < 3 ? sendError(res, 500, 'internal') : sendJson(res, { ok: true })),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      assert.deepEqual(await client.http.request({ method: 'POST', path: '/v1/x', json: {} }), { ok: true });
      assert.equal(requests.length, 3);
      const keys = new Set(requests.map((r) => r.headers['idempotency-key']));
      assert.equal(keys.size, 1);
      assert.match(String([...keys][0]), /^[0-9a-f-]{36}$/);
    },
  );
});

test('two logical calls get two different keys', async () => {
  await withServer(
    (_req, res) => sendJson(res, {}),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      await client.http.request({ method: 'POST', path: '/v1/x', json: {} });
      await client.http.request({ method: 'POST', path: '/v1/x', json: {} });
      assert.notEqual(requests[0].headers['idempotency-key'], requests[1].headers['idempotency-key']);
    },
  );
});

test('Retry-After is honoured on 429', async () => {
  await withServer(
    (_req, res, n) => (n === 1 ? sendError(res, 429, 'resource_limit', { 'retry-after': '1' }) : sendJson(res, { ok: 1 })),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      const started = Date.now();
      await client.http.request({ method: 'GET', path: '/v1/x' });
      assert.equal(requests.length, 2);
      assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started} ms`);
    },
  );
});

test('a 429 whose retries run out surfaces ResourceLimitError with retryAfter', async () => {
  await withServer(
    (_req, res) => sendError(res, 429, 'resource_limit', { 'retry-after': '0' }),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k', maxRetries: 2 });
      const error = await client.http.request({ method: 'GET', path: '/v1/x' }).catch((e) => e);
      assert.ok(error instanceof ResourceLimitError);
      assert.equal(error.retryAfter, 0);
      assert.equal(error.statusCode, 429);
      assert.equal(requests.length, 3);
    },
  );
});

test('other 4xx are not retried', async () => {
  await withServer(
    (_req, res) => sendError(res, 400, 'invalid_request'),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      await assert.rejects(client.http.request({ method: 'GET', path: '/v1/x' }), InvalidRequestError);
      assert.equal(requests.length, 1);
    },
  );
});

test('409 is retried only when it is our own key still in progress', async () => {
  await withServer(
    (req, res, n) => (n === 1 ? sendError(res, 500, 'internal') : n === 2 ? sendError(res, 409, 'conflict', {}, { key: req.headers['idempotency-key'] }) : sendJson(res, { ok: 1 })),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      await client.http.request({ method: 'POST', path: '/v1/x', json: {} });
      assert.equal(requests.length, 3);
    },
  );
  await withServer(
    (_req, res) => sendError(res, 409, 'conflict', {}, { instances: ['inst_a'] }),
    async (endpoint, requests) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k' });
      await assert.rejects(client.http.request({ method: 'DELETE', path: '/v1/x' }), ConflictError);
      assert.equal(requests.length, 1);
    },
  );
});

test('connection refused is a NetworkError after the retries', async () => {
  const client = new FaaSClient({ endpoint: `http://127.0.0.1:${await closedPort()}`, apiKey: 'k', maxRetries: 1 });
  const error = await client.health().catch((e) => e);
  assert.ok(error instanceof NetworkError, String(error));
  assert.equal(error.code, 'network_error');
  assert.match(error.message, /faas engine start/);
});

test('the per-call timeout gives a NetworkError, and an abort signal rejects with its reason', async () => {
  await withServer(
    () => undefined, // never answers
    async (endpoint) => {
      const client = new FaaSClient({ endpoint, apiKey: 'k', maxRetries: 0 });
      const error = await client.http.request({ method: 'GET', path: '/v1/x', timeout: 200 }).catch((e) => e);
      assert.ok(error instanceof NetworkError);
      assert.match(error.message, /200 ms/);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('user gave up')), 100);
      await assert.rejects(client.http.request({ method: 'GET', path: '/v1/x', signal: controller.signal }), /user gave up/);
    },
  );
});

test('401 calls the tokenProvider once and retries with the new key', async () => {
  await withServer(
    (req, res) => (req.headers.authorization === 'Bearer fresh' ? sendJson(res, { ok: 1 }) : sendError(res, 401, 'unauthorized')),
    async (endpoint, requests) => {
      let calls = 0;
      const client = new FaaSClient({ endpoint, apiKey: 'stale', tokenProvider: async () => (calls++, 'fresh') });
      assert.deepEqual(await client.http.request({ method: 'GET', path: '/v1/x' }), { ok: 1 });
      assert.equal(calls, 1);
      assert.equal(requests.length, 2);
    },
  );
});

test('backoff doubles from 0.5 s to at most 8 s, with at most 25% jitter', () => {
  assert.equal(retryDelayMs(0, undefined, () => 0), 500);
  assert.equal(retryDelayMs(1, undefined, () => 0), 1000);
  assert.equal(retryDelayMs(10, undefined, () => 0), 8000);
  assert.equal(retryDelayMs(0, undefined, () => 1), 375);
  assert.equal(retryDelayMs(0, '3'), 3000);
  assert.equal(retryDelayMs(0, '3600'), undefined); // too long: give the error back instead
  assert.equal(parseRetryAfter('abc'), undefined);
  assert.equal(isRetryableRequest('POST', false, true), false);
  assert.equal(isRetryableRequest('POST', true, true), true);
  assert.equal(isRetryableRequest('PUT', false, false), false);
});
