// Who is calling: the API key a request authenticated as (directly, or through a token minted
// from it). Ownership rules live here so the HTTP guard, the event stream and the terminal agree.

export interface Principal {
  /** Id of the API key (`key_…`); a token acts as the key it was minted from. */
  keyId: string;
  /** Admin keys see and act on every record and manage keys. */
  admin: boolean;
  /** How the caller authenticated: tokens may not mint keys or further tokens. */
  via: 'key' | 'token';
}

/** Whether `who` may see a record owned by `owner` (null: made before keys existed; admins only). */
export function owns(who: Principal, owner: string | null): boolean {
  return who.admin || (owner !== null && owner === who.keyId);
}

/** The owner filter for lists: undefined (no filter) for admins. */
export function ownerFilter(who: Principal): string | undefined {
  return who.admin ? undefined : who.keyId;
}
