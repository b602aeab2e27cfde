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
// The probe makes a 1 GiB volume until one becomes 'available', and deletes
// every volume it made. Exit 0 when ready (or when the suites will skip for
// want of a cloud: they say why), 1 when the deadline passes.
import { randomUUID } from 'node:crypto';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import { OpenStackError } from '../../src/openstack/errors';
import type { BlockStorage } from '../../src/openstack/types';
import { cloudConfigFromEnv, cloudSkipReason } from '../openstack/cloud-env';

const POLL_MS = 1_000;
const RETRY_AFTER_FAILURE_MS = 5_000;
/** After the deadline, how long a volume still being created is watched so that it can be deleted. */
const CLEANUP_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deadlineMs(env: NodeJS.ProcessEnv): number {
  const raw = env.CLOUD_READY_TIMEOUT_MS ?? '180000';
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`CLOUD_READY_TIMEOUT_MS must be a positive number of milliseconds, got ${JSON.stringify(raw)}`);
  return ms;
}

/** Errors worth another attempt: a cloud still starting answers 5xx, resets connections, or is slow. */
function transient(err: unknown): boolean {
  return err instanceof OpenStackError && ['unavailable', 'network', 'timeout', 'rate_limited', 'conflict'].includes(err.kind);
}

/** The volume's status once it stops changing ('available', 'error', ...), or null if it still changes at `until`. */
async function settle(storage: BlockStorage, id: string, until: number): Promise<string | null> {
  for (;;) {
    const { status } = await storage.getVolume(id);
    if (status === 'available' || status.startsWith('error')) return status;
    if (Date.now() >= until) return null;
    await sleep(POLL_MS);
  }
}

/** Delete a probe volume, waiting (up to CLEANUP_MS) for one still being created; say so when it cannot be. */
async function remove(storage: BlockStorage, id: string): Promise<void> {
  try {
    if ((await settle(storage, id, Date.now() + CLEANUP_MS)) === null) throw new Error('it is still being created');
    await storage.deleteVolume(id);
  } catch (err) {
    if (err instanceof OpenStackError && err.kind === 'not_found') return;
    console.error(`cloud-ready: probe volume ${id} is left behind (${(err as Error).message}); delete it by hand`);
  }
}

export async function waitUntilCloudCanCreateVolumes(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (cloudSkipReason(env)) return true;
  const config = cloudConfigFromEnv(env)!;
  const timeout = deadlineMs(env);
  const cloud = createCloud(config, silentLogger);
  const started = Date.now();
  const until = started + timeout;
  let attempts = 0;
  try {
    while (Date.now() < until) {
      attempts += 1;
      let id: string | undefined;
      let outcome: string;
      let ready = false;
      try {
        id = (await cloud.blockStorage.createVolume({ name: `cloud-ready-${randomUUID().slice(0, 8)}`, size: 1 })).id;
        const status = await settle(cloud.blockStorage, id, until);
        ready = status === 'available';
        outcome = status === null ? 'the probe volume is still being created at the deadline' : `the probe volume ended '${status}'`;
      } catch (err) {
        if (!transient(err)) throw err; // wrong credentials or endpoint: no point in waiting
        outcome = (err as Error).message;
      } finally {
        if (id) await remove(cloud.blockStorage, id);
      }
      if (ready) {
        console.log(`cloud-ready: Cinder made a volume after ${attempts} attempt(s), ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return true;
      }
      console.log(`cloud-ready: attempt ${attempts}: ${outcome}; the scheduler may not know its backend yet`);
      if (Date.now() + RETRY_AFTER_FAILURE_MS < until) await sleep(RETRY_AFTER_FAILURE_MS);
      else break;
    }
    console.error(
      `cloud-ready: Cinder made no usable volume in ${timeout / 1000} s (${attempts} attempts). ` +
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
