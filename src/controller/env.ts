// What every controller operation works with: the clouds and the settings.
// Cinder objects are waited for through each cloud's own waiter (it batches
// volume polls); Nova's attachment records, which that waiter does not
// cover, through one Waiter per cloud kept here (a waiter learns how long
// changes take on its cloud, so two clouds must not share one).
import type { Logger } from '../log';
import type { CallOptions, Cloud, Volume, WaitSpec } from '../openstack/types';
import { Waiter } from '../openstack/waiter';
import type { CloudSet } from './clouds';
import type { ControllerSettings } from './settings';

export interface ControllerEnv {
  clouds: CloudSet;
  settings: ControllerSettings;
  logger: Logger;
  /** For waits the cloud's own waiter does not offer (Nova attachments). */
  waiterFor(cloud: Cloud): Waiter;
  /** Looks at the name of each volume CreateVolume answered with later, and marks the volume; remembers the answers meanwhile (same-name.ts). */
  sameNameChecks?: { answer(cloud: Cloud, name: string, volume: Volume): void; answered(cloud: Cloud, name: string): string | undefined };
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

/**
 * Options for a create request: never cut off halfway. A create aborted
 * after it reached Cinder may still make the object, and a retry arriving
 * before that shows in Cinder's list would make a second one. Left to
 * finish (within the HTTP timeout), the request keeps the in-flight entry
 * alive, so such a retry joins it instead.
 */
export const UNINTERRUPTED: CallOptions = {};

export interface VolumeWait {
  spec: WaitSpec;
  /** What kind of change, for the waiter to learn its duration ('volume:attach'); none for a wait that starts part-way. */
  kind?: string;
  until?: (v: Volume) => boolean;
  failedIf?: (v: Volume) => string | null;
}

/** Wait on one Cinder volume through the cloud's waiter (null: it is gone and the spec counts that as done). */
export function waitForVolume(cloud: Cloud, volumeId: string, wait: VolumeWait, op: Op): Promise<Volume | null> {
  return cloud.waiter.volume(volumeId, wait.spec, { until: wait.until, failedIf: wait.failedIf, kind: wait.kind, signal: op.signal, deadline: op.deadline });
}
