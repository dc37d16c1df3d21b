#!/usr/bin/env node
// Consistency checker for spec/openapi.yaml.
//
//   node spec/check.mjs [path/to/openapi.yaml]
//
// Needs the `yaml` and `ajv` packages, resolved from the repository's node_modules or, failing
// that, from the directory named by SPECCHECK_NODE_MODULES (e.g. a scratch `npm i yaml ajv`).
// Checks:
//   - the document parses, is OpenAPI 3.1.x, has info.title/version, servers, security
//   - every $ref is local and resolves
//   - every operation has a unique camelCase operationId, a summary, known tags, a 2xx/101 response
//   - path template parameters are declared (in: path, required) and vice versa
//   - every POST/PUT/PATCH/DELETE takes the Idempotency-Key parameter
//   - schemas use only the keywords the engine's Ajv (draft-07) setup supports, no recursion
//   - JSON request bodies reject unknown fields (additionalProperties is not true/absent)
//   - response schemas list nullable properties in `required`
//   - every schema (components and inline) compiles in Ajv draft-07 after inlining refs
//   - schema `examples`/`default` and JSON media-type `example`s validate against their schema
// Prints a summary; exits 1 on any problem.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

async function load(name) {
  try {
    return await import(name);
  } catch (err) {
    const dir = process.env.SPECCHECK_NODE_MODULES;
    if (!dir) throw new Error(`cannot load '${name}' (${err.message}); set SPECCHECK_NODE_MODULES`);
    return createRequire(join(resolve(dir), 'noop.js'))(name);
  }
}

const YAML = await load('yaml');
const ajvMod = await load('ajv');
const Ajv = ajvMod.default?.default ?? ajvMod.default ?? ajvMod;

const specPath = resolve(process.argv[2] ?? join(here, 'openapi.yaml'));
const problems = [];
const problem = (where, msg) => problems.push(`${where}: ${msg}`);

let doc;
try {
  doc = YAML.parse(readFileSync(specPath, 'utf8'), { prettyErrors: true, uniqueKeys: true });
} catch (err) {
  console.error(`FAIL ${specPath}: YAML parse error: ${err.message}`);
  process.exit(1);
}

// ---------------------------------------------------------------- top level
if (typeof doc?.openapi !== 'string' || !/^3\.1\.\d+$/.test(doc.openapi)) problem('openapi', `expected 3.1.x, got ${doc?.openapi}`);
if (!doc.info?.title || !doc.info?.version) problem('info', 'title and version are required');
if (!Array.isArray(doc.servers) || doc.servers.length === 0) problem('servers', 'at least one server');
if (!Array.isArray(doc.security) || doc.security.length === 0) problem('security', 'global security requirement missing');
for (const req of doc.security ?? []) {
  for (const name of Object.keys(req)) {
    if (!doc.components?.securitySchemes?.[name]) problem('security', `unknown security scheme ${name}`);
  }
}

// ---------------------------------------------------------------- $ref resolution
const unescape = (s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~');
function resolvePointer(ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  let node = doc;
  for (const part of ref.slice(2).split('/').map(unescape)) {
    if (node === null || typeof node !== 'object' || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

let refCount = 0;
(function walk(node, path) {
  if (Array.isArray(node)) return node.forEach((v, i) => walk(v, `${path}/${i}`));
  if (node === null || typeof node !== 'object') return;
  if ('$ref' in node) {
    refCount++;
    if (typeof node.$ref !== 'string' || !node.$ref.startsWith('#/')) problem(path, `non-local $ref ${node.$ref}`);
    else if (resolvePointer(node.$ref) === undefined) problem(path, `unresolved $ref ${node.$ref}`);
  }
  for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
})(doc, '#');

// follows a chain of non-schema refs (parameters, responses, headers, requestBodies)
function deref(obj) {
  const seen = new Set();
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (seen.has(obj.$ref)) return undefined;
    seen.add(obj.$ref);
    obj = resolvePointer(obj.$ref);
  }
  return obj;
}

// ---------------------------------------------------------------- schema keyword whitelist
const ALLOWED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'minimum', 'maximum',
  'minLength', 'maxLength', 'minItems', 'maxItems', 'maxProperties', 'pattern', 'format', 'oneOf',
  'anyOf', 'description', 'default', 'examples', 'const', 'contentMediaType', '$ref', 'title',
  'propertyNames', 'not', 'uniqueItems',
]);
const TYPES = new Set(['string', 'integer', 'number', 'boolean', 'object', 'array', 'null']);
function checkKeywords(schema, where) {
  if (Array.isArray(schema)) return problem(where, 'schema is an array');
  if (schema === null || typeof schema !== 'object') return problem(where, 'schema is not an object');
  for (const [k, v] of Object.entries(schema)) {
    if (!ALLOWED.has(k)) problem(where, `keyword '${k}' is not allowed`);
    if (k === 'format' && v !== 'date-time') problem(where, `format '${v}' is not allowed (only date-time)`);
    if (k === '$ref' && Object.keys(schema).some((x) => x !== '$ref' && x !== 'description')) {
      problem(where, '$ref with sibling keywords (ignored by draft-07)');
    }
    if (k === 'type') {
      for (const t of [v].flat()) if (!TYPES.has(t)) problem(where, `unknown type '${t}'`);
    }
  }
  if (schema.properties) for (const [k, v] of Object.entries(schema.properties)) checkKeywords(v, `${where}/properties/${k}`);
  if (schema.items) checkKeywords(schema.items, `${where}/items`);
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') checkKeywords(schema.additionalProperties, `${where}/additionalProperties`);
  if (schema.propertyNames) checkKeywords(schema.propertyNames, `${where}/propertyNames`);
  if (schema.not) checkKeywords(schema.not, `${where}/not`);
  for (const key of ['oneOf', 'anyOf']) (schema[key] ?? []).forEach((s, i) => checkKeywords(s, `${where}/${key}/${i}`));
  if (schema.required && schema.properties) {
    for (const r of schema.required) {
      // a oneOf branch like {required:[command]} refers to the parent's properties
      if (!(r in schema.properties)) problem(where, `required '${r}' is not in properties`);
    }
  }
}

// replace every $ref by a deep copy of its target; detects recursion
function inline(schema, where, stack = []) {
  if (Array.isArray(schema)) return schema.map((s, i) => inline(s, `${where}/${i}`, stack));
  if (schema === null || typeof schema !== 'object') return schema;
  if (typeof schema.$ref === 'string') {
    if (stack.includes(schema.$ref)) throw new Error(`recursive $ref ${[...stack, schema.$ref].join(' -> ')}`);
    const target = resolvePointer(schema.$ref);
    if (target === undefined) throw new Error(`unresolved $ref ${schema.$ref}`);
    const { $ref, ...siblings } = schema;
    return { ...inline(target, schema.$ref, [...stack, schema.$ref]), ...siblings };
  }
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    // enum/const/default/examples are data, not schemas
    out[k] = ['enum', 'const', 'default', 'examples'].includes(k) ? v : inline(v, `${where}/${k}`, stack);
  }
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);

let compiled = 0;
function compile(schema, where) {
  checkKeywords(schema, where);
  let flat;
  try {
    flat = inline(schema, where);
  } catch (err) {
    problem(where, err.message);
    return undefined;
  }
  try {
    const validate = ajv.compile(flat);
    compiled++;
    checkValues(flat, validate, where);
    return { flat, validate };
  } catch (err) {
    problem(where, `Ajv draft-07 compile failed: ${err.message}`);
    return undefined;
  }
}

// examples and defaults (at every level) must validate against the schema they sit on
function checkValues(flat, validate, where) {
  (function walk(s, w) {
    if (!s || typeof s !== 'object' || Array.isArray(s)) return;
    const v = s === flat ? validate : ajv.compile(s);
    for (const [i, ex] of (s.examples ?? []).entries()) {
      if (!v(ex)) problem(`${w}/examples/${i}`, `example does not validate: ${ajv.errorsText(v.errors)}`);
    }
    if ('default' in s && !v(s.default)) problem(`${w}/default`, `default does not validate: ${ajv.errorsText(v.errors)}`);
    for (const [k, p] of Object.entries(s.properties ?? {})) walk(p, `${w}/properties/${k}`);
    if (s.items) walk(s.items, `${w}/items`);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${w}/additionalProperties`);
    for (const key of ['oneOf', 'anyOf']) (s[key] ?? []).forEach((b, i) => walk(b, `${w}/${key}/${i}`));
  })(flat, where);
}

// nullable properties are always present: they must be listed in `required`
function checkResponseRequired(flat, where, seen = new Set()) {
  if (!flat || typeof flat !== 'object' || seen.has(flat)) return;
  seen.add(flat);
  if (flat.properties) {
    const req = new Set(flat.required ?? []);
    for (const [k, p] of Object.entries(flat.properties)) {
      const types = [p.type].flat();
      if (types.includes('null') && !req.has(k)) problem(where, `nullable property '${k}' is not required`);
      checkResponseRequired(p, `${where}/properties/${k}`, seen);
    }
  }
  if (flat.items) checkResponseRequired(flat.items, `${where}/items`, seen);
}

// ---------------------------------------------------------------- components
const schemas = doc.components?.schemas ?? {};
for (const [name, schema] of Object.entries(schemas)) compile(schema, `#/components/schemas/${name}`);
for (const [name, p] of Object.entries(doc.components?.parameters ?? {})) {
  if (p.schema) compile(p.schema, `#/components/parameters/${name}/schema`);
}
for (const [name, h] of Object.entries(doc.components?.headers ?? {})) {
  if (h.schema) compile(h.schema, `#/components/headers/${name}/schema`);
}

const mediaChecked = new WeakSet();
function checkContent(content, where, { request }) {
  for (const [type, media] of Object.entries(content ?? {})) {
    if (!media.schema) {
      problem(`${where}/${type}`, 'media type without schema');
      continue;
    }
    if (mediaChecked.has(media)) continue;
    mediaChecked.add(media);
    const c = compile(media.schema, `${where}/${type}/schema`);
    if (!c) continue;
    if (type === 'application/json') {
      if ('example' in media && !c.validate(media.example)) {
        problem(`${where}/${type}/example`, `example does not validate: ${ajv.errorsText(c.validate.errors)}`);
      }
      if (request) {
        const t = [c.flat.type].flat();
        if (t.includes('object') && (c.flat.additionalProperties === undefined || c.flat.additionalProperties === true)) {
          problem(`${where}/${type}`, 'JSON request body must not accept unknown fields (additionalProperties)');
        }
      } else {
        checkResponseRequired(c.flat, `${where}/${type}/schema`);
      }
    }
  }
}
for (const [name, r] of Object.entries(doc.components?.responses ?? {})) {
  checkContent(r.content, `#/components/responses/${name}/content`, { request: false });
  if (!r.headers?.['X-Request-Id']) problem(`#/components/responses/${name}`, 'missing X-Request-Id header');
}

// ---------------------------------------------------------------- operations
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const MUTATING = new Set(['post', 'put', 'patch', 'delete']);
const tagNames = new Set((doc.tags ?? []).map((t) => t.name));
const operationIds = new Map();
let opCount = 0;

for (const [path, item] of Object.entries(doc.paths ?? {})) {
  const templ = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const method of METHODS) {
    const op = item[method];
    if (!op) continue;
    opCount++;
    const where = `${method.toUpperCase()} ${path}`;
    const id = op.operationId;
    if (!id) problem(where, 'missing operationId');
    else {
      if (!/^[a-z][A-Za-z0-9]*$/.test(id)) problem(where, `operationId '${id}' is not camelCase`);
      if (operationIds.has(id)) problem(where, `operationId '${id}' also used by ${operationIds.get(id)}`);
      operationIds.set(id, where);
    }
    if (!op.summary) problem(where, 'missing summary');
    if (!Array.isArray(op.tags) || op.tags.length === 0) problem(where, 'missing tags');
    for (const t of op.tags ?? []) if (!tagNames.has(t)) problem(where, `tag '${t}' is not declared in top-level tags`);

    const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(deref);
    const seenParams = new Set();
    for (const p of params) {
      if (!p) { problem(where, 'unresolvable parameter'); continue; }
      const key = `${p.in}:${p.name}`;
      if (seenParams.has(key)) problem(where, `duplicate parameter ${key}`);
      seenParams.add(key);
      if (p.in === 'path') {
        if (p.required !== true) problem(where, `path parameter '${p.name}' must be required`);
        if (!templ.includes(p.name)) problem(where, `path parameter '${p.name}' is not in the path`);
      }
      if (!p.schema) problem(where, `parameter '${p.name}' has no schema`);
    }
    for (const name of templ) {
      if (!params.some((p) => p?.in === 'path' && p.name === name)) problem(where, `path parameter '${name}' is not declared`);
    }
    for (const p of op.parameters ?? []) {
      if (!p.$ref && p.schema) compile(p.schema, `${where} parameter ${p.name}`);
    }
    if (MUTATING.has(method) && !seenParams.has('header:Idempotency-Key')) problem(where, 'missing Idempotency-Key parameter');

    if (op.requestBody) {
      const body = deref(op.requestBody);
      if (!body?.content) problem(where, 'requestBody without content');
      else checkContent(body.content, `${where} requestBody`, { request: true });
    }

    const responses = op.responses ?? {};
    const codes = Object.keys(responses);
    if (!codes.some((c) => /^(2\d\d|101)$/.test(c))) problem(where, 'no success response');
    if (op.security?.length !== 0 && !codes.includes('401')) problem(where, 'authenticated operation without 401');
    // A reused Idempotency-Key with another body (or while the first call runs) is 409 on any route.
    if (seenParams.has('header:Idempotency-Key') && !codes.includes('409')) problem(where, 'takes Idempotency-Key but does not document 409 conflict');
    for (const [code, resp0] of Object.entries(responses)) {
      const resp = deref(resp0);
      if (!resp) { problem(where, `response ${code} does not resolve`); continue; }
      if (!resp.description) problem(where, `response ${code} without description`);
      if (!resp.headers?.['X-Request-Id']) problem(where, `response ${code} without X-Request-Id header`);
      if (/^[45]/.test(code)) {
        const s = resp.content?.['application/json']?.schema;
        if (!s || s.$ref !== '#/components/schemas/Error') problem(where, `error response ${code} must use the Error schema`);
        if (code === '429' && !resp.headers?.['Retry-After']) problem(where, '429 without Retry-After');
      }
      if (!resp0.$ref) checkContent(resp.content, `${where} response ${code}`, { request: false });
      for (const [h, hv] of Object.entries(resp0.$ref ? {} : resp.headers ?? {})) {
        if (!hv.$ref && hv.schema) compile(hv.schema, `${where} response ${code} header ${h}`);
      }
    }
  }
}

// every component schema is used somewhere (a stale schema is a sign of a typo)
const refsText = JSON.stringify(doc);
for (const name of Object.keys(schemas)) {
  if (!refsText.includes(`"#/components/schemas/${name}"`)) problem(`#/components/schemas/${name}`, 'schema is never referenced');
}

// ---------------------------------------------------------------- summary
console.log(`spec:        ${specPath}`);
console.log(`openapi:     ${doc.openapi}  (${doc.info?.title} ${doc.info?.version})`);
console.log(`paths:       ${Object.keys(doc.paths ?? {}).length}`);
console.log(`operations:  ${opCount} (${operationIds.size} unique operationIds)`);
console.log(`schemas:     ${Object.keys(schemas).length} components, ${compiled} schema compilations in Ajv draft-07`);
console.log(`\$refs:       ${refCount} checked`);
if (problems.length) {
  console.log(`\nFAIL: ${problems.length} problem(s)`);
  for (const p of problems) console.log(`  - ${p}`);
  process.exit(1);
}
console.log('\nOK');
