/** Anything that names an instance or snapshot: its id, or an object carrying it (a resource). */
export type IdRef = string | { readonly id: string };

export function idOf(ref: IdRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

/** Path segment for an id, escaped so a malformed id cannot change the route. */
export function seg(ref: IdRef | number): string {
  return encodeURIComponent(typeof ref === 'number' ? String(ref) : idOf(ref));
}
