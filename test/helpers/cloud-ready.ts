// Waits until the configured cloud can really make a volume, before the cloud
// suites start (scripts/run-tests.js --cloud runs this first).
//
// Why: a freshly started Cinder reports cinder-volume "up" before its
// scheduler has the backend's capabilities. cinder-scheduler only waits
// scheduler_driver_init_wait_time (60 s) for them; after that, and before the
// volume service's next periodic report (every periodic_interval, with a
// random start-up delay of up to periodic_fuzzy_delay), every create ends in
// 'error' with "No valid backend was found". The testbed's start.sh waits for
// the services, not for that, and a CI run once lost every cloud test to it.
//
// The probe makes a 1 GiB volume until one becomes 'available' and deletes
// every volume it made. Exit 0 when ready (or when no cloud is configured:
// the suites then skip with their own reason), 1 when the deadline passes.
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import { OpenStackError } from '../../src/openstack/errors';
import type { BlockStorage } from '../../src/openstack/types';
import { cloudConfigFromEnv } from '../openstack/cloud-env';

const DEADLINE_MS = Number(process.env.CLOUD_READY_TIMEOUT_MS ?? 180_000);
const POLL_MS = 1_000;
const RETRY_AFTER_ERROR_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The volume's final state after a create: 'available', 'error' or 'timeout'. */
async function settle(storage: BlockStorage, id: string, until: number): Promise<string> {
  while (Date.now() < until) {
    const { status } = await storage.getVolume(id);
    if (status === 'available' || status.startsWith('error')) return status;
    await sleep(POLL_MS);
  }
  return 'timeout';
}

async function removeQuietly(storage: BlockStorage, id: string): Promise<void> {
  try {
    await storage.deleteVolume(id);
  } catch (err) {
    if (!(err instanceof OpenStackError && err.kind === 'not_found')) {
      console.error(`cloud-ready: could not delete probe volume ${id}: ${(err as Error).message}`);
    }
  }
}

export async function waitUntilCloudCanCreateVolumes(): Promise<boolean> {
  const config = cloudConfigFromEnv();
  if (!config) return true;
  const cloud = createCloud(config, silentLogger);
  const started = Date.now();
  const until = started + DEADLINE_MS;
  let attempts = 0;
  try {
    while (Date.now() < until) {
      attempts += 1;
      const volume = await cloud.blockStorage.createVolume({ name: `cloud-ready-${randomUUID().slice(0, 8)}`, size: 1 });
      const state = await settle(cloud.blockStorage, volume.id, until);
      // Delete in every case; a volume still 'creating' cannot be deleted yet.
      if (state !== 'timeout') await removeQuietly(cloud.blockStorage, volume.id);
      if (state === 'available') {
        console.log(`cloud-ready: Cinder made a volume after ${attempts} attempt(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return true;
      }
      console.log(`cloud-ready: attempt ${attempts}: probe volume ended '${state}'; the scheduler may not know the backend yet`);
      await sleep(RETRY_AFTER_ERROR_MS);
    }
    console.error(
      `cloud-ready: Cinder made no usable volume in ${DEADLINE_MS / 1000} s (${attempts} attempts). ` +
        'Look at cinder-scheduler\'s log for "No valid backend" and at cinder-volume\'s for a driver that failed to start.',
    );
    return false;
  } finally {
    await cloud.close();
  }
}

if (require.main === module) {
  waitUntilCloudCanCreateVolumes().then(
    (ready) => process.exit(ready ? 0 : 1),
    (err: Error) => {
      console.error(`cloud-ready: ${err.message}`);
      process.exit(1);
    },
  );
}
