// What a schema refusal says to a person. Ajv's own text ("params/id must match pattern
// "^inst_[a-z0-9]+$"") shows a regex and not what to do; the message here names the kind of id
// that was expected, what the given value looks like instead (another kind of id, or a name), and
// where to find a right one. The Ajv errors stay in `details.errors` for programs, and
// `details.in` says which part of the request was refused (params, querystring, body, headers).

/** Id prefixes of the API and what they name, with where a user finds one. */
const ID_KINDS: Record<string, { kind: string; list: string }> = {
  inst: { kind: 'an instance id', list: '`faas instance list` (GET /v1/instances)' },
  snap: { kind: 'a snapshot id', list: '`faas snapshot list` (GET /v1/snapshots)' },
  img: { kind: 'an image id', list: '`faas image list` (GET /v1/images)' },
  br: { kind: 'a branch id', list: '`faas branch list` (GET /v1/branches)' },
  key: { kind: 'an API key id', list: '`faas key list` (GET /v1/keys)' },
  sshkey: { kind: 'an SSH key id', list: '`faas ssh-key list` (GET /v1/ssh-keys)' },
  evt: { kind: 'an event id', list: '`faas events` (GET /v1/events)' },
};

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** "^inst_[a-z0-9]+$" -> "inst"; undefined for a pattern that is not an id pattern. */
function idPrefix(pattern: unknown): string | undefined {
  const m = typeof pattern === 'string' ? /^\^([a-z]+)_\[a-z0-9\]\+\$$/.exec(pattern) : null;
  return m && ID_KINDS[m[1]] ? m[1] : undefined;
}

/** The value the error is about, read from the request part at its instancePath. */
function valueAt(part: unknown, instancePath: string | undefined): unknown {
  let value = part;
  for (const key of (instancePath ?? '').split('/').slice(1)) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  }
  return value;
}

function describeId(prefix: string, given: unknown): string {
  const { kind, list } = ID_KINDS[prefix];
  const expected = `expected ${kind} (${prefix}_…)`;
  if (typeof given !== 'string') return `${expected}; find one with ${list}`;
  const shown = JSON.stringify(given.length > 64 ? `${given.slice(0, 64)}…` : given);
  const other = /^([a-z]+)_[a-z0-9]+$/.exec(given);
  if (other && ID_KINDS[other[1]] && other[1] !== prefix) return `${expected}, got ${shown}, which is ${ID_KINDS[other[1]].kind}; find ${kind} with ${list}`;
  if (given.startsWith(`${prefix}_`)) return `${expected}, got ${shown}: an id is ${prefix}_ followed by lowercase letters and digits only; find one with ${list}`;
  return `${expected}, got ${shown}: names are not ids; find the id with ${list}`;
}

/** The readable form of one Ajv error; the field is named by where it sits in the request. */
export function validationMessage(context: string | undefined, errors: AjvError[], part: unknown): string {
  const first = errors[0];
  const where = `${context ?? 'request'}${first?.instancePath ?? ''}`;
  if (!first) return `${where} is invalid`;
  if (first.keyword === 'pattern') {
    const prefix = idPrefix(first.params?.pattern);
    if (prefix) return `${where}: ${describeId(prefix, valueAt(part, first.instancePath))}`;
    // Not an id: say the value has the wrong form without printing the expression.
    return `${where} is not in the accepted form; see this field's description in the API reference (/docs)`;
  }
  return `${where} ${first.message ?? 'is invalid'}`;
}
