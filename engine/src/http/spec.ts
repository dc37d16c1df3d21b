// Loads spec/openapi.yaml — the contract — and turns each operation into the Fastify schema that
// validates its requests. Routes are registered by operationId, so a route the spec does not
// describe cannot exist, and a change of the contract changes validation with it.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface Operation {
  operationId: string;
  method: string;
  /** Fastify-style path (`/v1/instances/:id`). */
  url: string;
  schema: { params?: object; querystring?: object; body?: object };
  /** Request media types with a schema (JSON) or without (streams). */
  bodyTypes: string[];
  /** The spec's requestBody.required (false: the body may be left out). */
  bodyRequired: boolean;
  /** Success and error response schemas by status, for the contract tests. */
  responses: Record<string, Record<string, object | undefined>>;
}

export interface Contract {
  raw: Record<string, unknown>;
  operations: Map<string, Operation>;
}

type Obj = Record<string, unknown>;

export function loadContract(path: string): Contract {
  const raw = parse(readFileSync(path, 'utf8')) as Obj;
  const deref = (node: unknown, seen: string[] = []): unknown => {
    if (Array.isArray(node)) return node.map((n) => deref(n, seen));
    if (!node || typeof node !== 'object') return node;
    const o = node as Obj;
    if (typeof o.$ref === 'string') {
      const ref = o.$ref;
      if (seen.includes(ref)) throw new Error(`recursive $ref ${ref} in the spec`);
      const target = ref.replace(/^#\//, '').split('/').reduce<unknown>((acc, k) => (acc as Obj)?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], raw);
      if (target === undefined) throw new Error(`unresolved $ref ${ref} in the spec`);
      const { $ref: _ignored, ...rest } = o;
      return { ...(deref(target, [...seen, ref]) as Obj), ...(deref(rest, seen) as Obj) };
    }
    const out: Obj = {};
    for (const [k, v] of Object.entries(o)) out[k] = deref(v, seen);
    return out;
  };

  const operations = new Map<string, Operation>();
  const paths = (raw.paths ?? {}) as Record<string, Obj>;
  for (const [path, item] of Object.entries(paths)) {
    const shared = (item.parameters as Obj[] | undefined) ?? [];
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method] as Obj | undefined;
      if (!op) continue;
      const params = (deref([...shared, ...((op.parameters as Obj[]) ?? [])]) as Obj[]);
      const schema: Operation['schema'] = {};
      const pathParams = params.filter((p) => p.in === 'path');
      const queryParams = params.filter((p) => p.in === 'query');
      if (pathParams.length) schema.params = objectOf(pathParams, true);
      if (queryParams.length) schema.querystring = objectOf(queryParams, false);
      const requestBody = deref(op.requestBody) as Obj | undefined;
      const content = (requestBody?.content ?? {}) as Record<string, Obj>;
      const bodyTypes = Object.keys(content);
      if (content['application/json']?.schema) schema.body = content['application/json'].schema as object;
      const responses: Operation['responses'] = {};
      for (const [status, r] of Object.entries((deref(op.responses) ?? {}) as Record<string, Obj>)) {
        responses[status] = {};
        for (const [type, media] of Object.entries((r.content ?? {}) as Record<string, Obj>)) responses[status][type] = media.schema as object | undefined;
      }
      operations.set(String(op.operationId), {
        operationId: String(op.operationId),
        method: method.toUpperCase(),
        url: path.replace(/\{(\w+)\}/g, ':$1'),
        schema,
        bodyTypes,
        bodyRequired: requestBody?.required === true,
        responses,
      });
    }
  }
  return { raw, operations };
}

function objectOf(params: Obj[], allRequired: boolean): object {
  const properties: Obj = {};
  const required: string[] = [];
  for (const p of params) {
    properties[String(p.name)] = p.schema ?? { type: 'string' };
    if (p.required || allRequired) required.push(String(p.name));
  }
  return { type: 'object', properties, required, additionalProperties: allRequired ? false : true };
}
