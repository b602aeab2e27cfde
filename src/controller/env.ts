// What every controller operation works with: the clouds, the settings, and
// one waiter per cloud (the waiter learns how long changes take on its
// cloud, so two clouds must not share one).
import type { Logger } from '../log';
import type { CallOptions, Cloud, Volume, WaitSpec } from '../openstack/types';
import { Waiter } from '../openstack/waiter';
import type { CloudSet } from './clouds';
import type { ControllerSettings } from './settings';

export interface ControllerEnv {
  clouds: CloudSet;
  settings: ControllerSettings;
  logger: Logger;
  waiterFor(cloud: Cloud): Waiter;
}

export function createEnv(clouds: CloudSet, settings: ControllerSettings, logger: Logger): ControllerEnv {
  const waiters = new Map<string, Waiter>();
  return {
    clouds,
    settings,
    logger,
    waiterFor(cloud) {
      let waiter = waiters.get(cloud.name);
      if (!waiter) {
        waiter = new Waiter({ logger: logger.child({ cloud: cloud.name }) });
        waiters.set(cloud.name, waiter);
      }
      return waiter;
    },
  };
}

/**
 * What an operation passes to every OpenStack call: the signal that bounds
 * it, and the deadline when the operation runs for one caller only (work
 * shared through the in-flight registry outlives its first caller's
 * deadline, so it goes by the signal alone).
 */
export type Op = CallOptions & { signal: AbortSignal };

export interface VolumeWait {
  spec: WaitSpec;
  /** What kind of change, for the waiter to learn its duration ('volume:attach'). */
  kind: string;
  /** For messages; 'volume <id>' when absent. */
  what?: string;
  until?: (v: Volume) => boolean;
}

/** Wait on one Cinder volume (null: it is gone and the spec counts that as done). */
export function waitForVolume(env: ControllerEnv, cloud: Cloud, volumeId: string, wait: VolumeWait, op: Op): Promise<Volume | null> {
  return env.waiterFor(cloud).waitFor({
    what: wait.what ?? `volume ${volumeId}`,
    spec: wait.spec,
    fetch: (o) => cloud.blockStorage.getVolume(volumeId, o),
    stateOf: (v) => v.status,
    until: wait.until,
    kind: wait.kind,
    signal: op.signal,
    deadline: op.deadline,
  });
}
