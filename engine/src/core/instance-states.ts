// Instance lifecycle:
//
//   pending ──restore ok──▶ ready ◀──resume── paused
//      │                     │  └──pause──────▶ │
//      │                     ├──restart──▶ pending
//      ▼                     ▼                  ▼
//    error ──stop──▶ stopping ──▶ stopped ──restart──▶ pending
//
// A sandbox that dies on its own moves ready/paused → error (with the reason). Stopping never
// touches the snapshot the instance came from.
import { FaasError } from './errors.js';
import type { Instance, InstanceState } from './types.js';

const ALLOWED: Record<string, InstanceState[]> = {
  exec: ['ready'],
  snapshot: ['ready', 'paused'],
  branch: ['ready', 'paused'],
  pause: ['ready'],
  resume: ['paused'],
  stop: ['pending', 'ready', 'paused', 'error', 'stopping', 'stopped'],
  restart: ['ready', 'paused', 'error', 'stopped'],
  metrics: ['ready', 'paused'],
  files: ['ready'],
};

export type InstanceAction = keyof typeof ALLOWED;

export function assertCan(instance: Instance, action: InstanceAction): void {
  if (!ALLOWED[action].includes(instance.state)) {
    throw new FaasError(
      'instance_not_ready',
      `instance ${instance.id} is ${instance.state}; ${action} needs ${ALLOWED[action].join(' or ')}`,
      { id: instance.id, state: instance.state, allowed: ALLOWED[action] },
    );
  }
}

/**
 * The instance left `ready` while a call ran. A failed one says why (e.g. out of memory), so the
 * caller reads the reason here instead of a bare state.
 */
export function notReadyNow(instance: Instance): FaasError {
  const why = instance.state === 'error' && instance.error ? `: ${instance.error}` : '';
  const oom = why !== '' && instance.error!.startsWith(OUT_OF_MEMORY);
  return new FaasError('instance_not_ready', `instance ${instance.id} is ${instance.state}${why}`, {
    id: instance.id,
    state: instance.state,
    ...(why ? { error: instance.error } : {}),
    ...(oom ? { reason: 'out_of_memory' } : {}),
  });
}

/** How an instance's `error` begins when the kernel killed its sandbox for memory (reconciler). */
export const OUT_OF_MEMORY = 'out of memory:';

export const isLive = (s: InstanceState) => s === 'pending' || s === 'ready' || s === 'paused' || s === 'stopping';
