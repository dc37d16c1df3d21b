#!/usr/bin/env node
// Generates src/generated/api.gen.ts from spec/openapi.yaml: one TypeScript type per schema in
// components/schemas, the route table (operationId -> method + path) and the event maps of the
// server-sent-event routes. The hand-written SDK imports these types so the contract has one
// source of truth.
//
//   node scripts/generate-types.mjs           write the file
//   node scripts/generate-types.mjs --check   regenerate to a temp file; exit 1 if it differs (CI)
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const specPath = process.env.FAAS_SPEC ?? resolve(packageDir, '../../spec/openapi.yaml');
const outPath = join(packageDir, 'src/generated/api.gen.ts');

const spec = parse(readFileSync(specPath, 'utf8'));
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'];

function refName(ref) {
  const prefix = '#/components/schemas/';
  if (!ref.startsWith(prefix)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(prefix.length);
}

function jsDoc(text, indent) {
  if (!text) return '';
  const oneLine = String(text).replace(/\s+/g, ' ').trim().replace(/\*\//g, '*\\/');
  return `${indent}/** ${oneLine} */\n`;
}

function literal(value) {
  return JSON.stringify(value);
}

function propertyKey(name) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : literal(name);
}

// Renders a schema as a TypeScript type expression.
function typeOf(schema, indent) {
  if (!schema || Object.keys(schema).length === 0) return 'unknown';
  if (schema.$ref) return refName(schema.$ref);
  if (schema.const !== undefined) return literal(schema.const);
  if (schema.enum) return schema.enum.map(literal).join(' | ');
  if (schema.oneOf && !schema.properties) return schema.oneOf.map((s) => typeOf(s, indent)).join(' | ');
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const rendered = types.map((t) => typeOfPrimitive(t, schema, indent));
  return [...new Set(rendered)].join(' | ');
}

function typeOfPrimitive(type, schema, indent) {
  switch (type) {
    case 'null':
      return 'null';
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const item = typeOf(schema.items, indent);
      return /[|&]/.test(item) ? `Array<${item}>` : `${item}[]`;
    }
    case 'object':
    case undefined:
      return objectType(schema, indent);
    default:
      throw new Error(`unsupported type ${type}`);
  }
}

function objectType(schema, indent) {
  const props = schema.properties ?? {};
  const names = Object.keys(props);
  if (names.length === 0) {
    const extra = schema.additionalProperties;
    return extra && typeof extra === 'object' ? `Record<string, ${typeOf(extra, indent)}>` : 'Record<string, unknown>';
  }
  const required = new Set(schema.required ?? []);
  const inner = indent + '  ';
  const lines = names.map((name) => {
    const prop = props[name];
    const optional = required.has(name) ? '' : '?';
    return `${jsDoc(prop.description, inner)}${inner}${propertyKey(name)}${optional}: ${typeOf(prop, inner)};`;
  });
  return `{\n${lines.join('\n')}\n${indent}}`;
}

// A schema whose oneOf members only list `required` (e.g. ExecRequest: exactly one of command or
// argv) becomes the shared optional fields intersected with a union of the required variants.
function isRequiredVariantUnion(schema) {
  return schema.properties && schema.oneOf?.every((m) => Object.keys(m).length === 1 && Array.isArray(m.required));
}

function renderSchema(name, schema) {
  const doc = jsDoc(schema.description, '');
  if (isRequiredVariantUnion(schema)) {
    const base = { ...schema, oneOf: undefined, required: schema.required ?? [] };
    const variants = schema.oneOf.map((member) => {
      const fields = member.required.map((field) => `${propertyKey(field)}: ${typeOf(schema.properties[field], '')}`);
      return `(${name}Fields & { ${fields.join('; ')} })`;
    });
    return (
      `/** Fields shared by every variant of {@link ${name}}. */\nexport interface ${name}Fields ${objectType(base, '')}\n\n` +
      `${doc}export type ${name} = ${variants.join(' | ')};\n`
    );
  }
  const isPlainObject = (schema.type === 'object' || schema.type === undefined) && schema.properties;
  if (isPlainObject) return `${doc}export interface ${name} ${objectType(schema, '')}\n`;
  return `${doc}export type ${name} = ${typeOf(schema, '')};\n`;
}

function renderOperations() {
  const lines = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!op) continue;
      lines.push(`  ${op.operationId}: { method: ${literal(method.toUpperCase())}, path: ${literal(path)} },`);
    }
  }
  return `/** Every route of the engine, by operationId. */\nexport const operations = {\n${lines.join('\n')}\n} as const;\n\nexport type OperationId = keyof typeof operations;\n`;
}

function pascal(id) {
  return id[0].toUpperCase() + id.slice(1);
}

// For each text/event-stream response: an interface from event name to the type of its data.
function renderEventMaps() {
  const out = [];
  for (const item of Object.values(spec.paths)) {
    for (const method of HTTP_METHODS) {
      const op = item[method];
      const events = op?.responses?.['200']?.content?.['text/event-stream']?.['x-sse-events'];
      if (!events) continue;
      const fields = Object.entries(events).map(([event, schema]) =>
        event.startsWith('<') ? `  [eventType: string]: ${typeOf(schema, '  ')};` : `  ${propertyKey(event)}: ${typeOf(schema, '  ')};`,
      );
      out.push(`/** Event name -> data of the \`${op.operationId}\` stream. */\nexport interface ${pascal(op.operationId)}Events {\n${fields.join('\n')}\n}\n`);
    }
  }
  return out.join('\n');
}

function render() {
  const schemas = Object.entries(spec.components.schemas).map(([name, schema]) => renderSchema(name, schema));
  return [
    '// GENERATED by scripts/generate-types.mjs from spec/openapi.yaml. Do not edit by hand:',
    '// change the spec and run `npm run generate` (CI runs `npm run check-generated`).',
    `// API version ${spec.info.version}.`,
    '/* eslint-disable */',
    '',
    schemas.join('\n'),
    renderOperations(),
    renderEventMaps(),
  ].join('\n');
}

const generated = render();
if (process.argv.includes('--check')) {
  // Regenerate into a temp file first, as CI does, then compare with the committed one.
  const dir = mkdtempSync(join(tmpdir(), 'faas-gen-'));
  try {
    const tempPath = join(dir, 'api.gen.ts');
    writeFileSync(tempPath, generated);
    let committed = '';
    try {
      committed = readFileSync(outPath, 'utf8');
    } catch {
      /* missing counts as different */
    }
    if (committed !== readFileSync(tempPath, 'utf8')) {
      console.error(`${outPath} is out of date with ${specPath}; run \`npm run generate\` in sdk/typescript.`);
      process.exit(1);
    }
    console.log('generated types are up to date');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  writeFileSync(outPath, generated);
  console.log(`wrote ${outPath}`);
}
