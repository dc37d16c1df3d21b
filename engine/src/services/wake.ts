// wakeOn: what may resume a paused instance on its own. A paused instance is frozen (its processes
// stopped, its memory kept); a request for one of its HTTP services (`http`) or an SSH connection
// through the gateway (`ssh`) resumes it first when the instance allows it, and is refused with
// `409 instance_not_ready` otherwise. Kept in its own table (migration 8); children of a branch
// inherit it (HttpServices.inherit).
import { FaasError } from '../core/errors.js';
import type { Instance } from '../core/types.js';
import type { HttpServiceRepo, WakeOn } from '../store/sqlite/http-services.js';
import type { InstanceService } from './instances.js';

export type WakeKind = keyof WakeOn;

export class Wake {
  /** One resume per instance at a time: concurrent first requests share it. */
  private readonly waking = new Map<string, Promise<unknown>>();

  constructor(private readonly repo: HttpServiceRepo, private readonly instances: InstanceService) {}

  get(instanceId: string): WakeOn {
    return this.repo.wakeOn(instanceId);
  }

  set(instanceId: string, w: Partial<WakeOn> | undefined): void {
    this.repo.setWakeOn(instanceId, { http: w?.http ?? false, ssh: w?.ssh ?? false });
  }

  /**
   * The instance, `ready`: resumed first when it is paused and wakes on `kind`. Throws
   * `instance_not_ready` (409) when it is paused and does not, or is in any state but ready/paused.
   */
  async ensureAwake(instanceId: string, kind: WakeKind): Promise<Instance> {
    let inst = this.instances.get(instanceId);
    if (inst.state === 'paused') {
      if (!this.get(instanceId)[kind]) {
        throw new FaasError(
          'instance_not_ready',
          `instance ${instanceId} is paused and does not wake on ${kind}: resume it (faas instance resume ${instanceId}) or start it with wakeOn.${kind}`,
          { id: instanceId, state: 'paused', wakeOn: kind },
        );
      }
      let resuming = this.waking.get(instanceId);
      if (!resuming) {
        resuming = this.instances.resume(instanceId).finally(() => this.waking.delete(instanceId));
        this.waking.set(instanceId, resuming);
      }
      // Another caller may have resumed it between our read and the resume (409 then): the state
      // read below is what counts.
      await resuming.catch(() => undefined);
      inst = this.instances.get(instanceId);
    }
    if (inst.state !== 'ready' || !inst.ip) {
      throw new FaasError('instance_not_ready', `instance ${instanceId} is ${inst.state}; its services answer only while it is ready`, { id: instanceId, state: inst.state });
    }
    return inst;
  }
}
