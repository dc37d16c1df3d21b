// Checks every response the tests receive against spec/openapi.yaml: a route that answers with a
// status or a body the contract does not describe fails the test that made the call.
import AjvModule from 'ajv';
const Ajv = AjvModule.default ?? AjvModule;
import type { Contract, Operation } from '../src/http/spec.js';

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new WeakMap<object, ReturnType<typeof ajv.compile>>();

export function findOperation(contract: Contract, method: string, path: string): Operation | undefined {
  const clean = path.split('?')[0];
  for (const op of contract.operations.values()) {
    if (op.method !== method) continue;
    const re = new RegExp('^' + op.url.replace(/:(\w+)/g, '[^/]+') + '$');
    if (re.test(clean)) return op;
  }
  return undefined;
}

export function checkResponse(contract: Contract, method: string, path: string, status: number, contentType: string, body: unknown): void {
  const op = findOperation(contract, method, path);
  if (!op) {
    if (status === 404) return; // unknown route: the not_found envelope is checked by the tests
    throw new Error(`contract: ${method} ${path} is not in the spec`);
  }
  const byType = op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default;
  if (!byType) throw new Error(`contract: ${op.operationId} answered ${status}, which the spec does not list`);
  const type = contentType.split(';')[0].trim();
  if (!type || status === 204) return;
  if (!(type in byType)) throw new Error(`contract: ${op.operationId} ${status} answered ${type}; spec lists ${Object.keys(byType).join(', ')}`);
  const schema = byType[type];
  if (!schema || type !== 'application/json') return;
  let validate = compiled.get(schema);
  if (!validate) compiled.set(schema, (validate = ajv.compile(schema)));
  if (!validate(body)) {
    throw new Error(`contract: ${op.operationId} ${status} body does not match the spec: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 800)}`);
  }
}
