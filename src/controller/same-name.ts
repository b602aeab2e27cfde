// Volumes that share a name, and how CreateVolume gets back to one.
//
// Cinder has no idempotency token: CreateVolume's guard against a second
// volume is the name lookup before its create. A create request still in
// Cinder's hands when its controller died (or lost its leadership) can land
// after the next controller has looked the name up, and then two volumes
// carry the name.
//
// The external-provisioner learns a volume's ID only from a CreateVolume
// answer, and asks for a name only until it has one. So of the volumes of one
// name that are this cluster's and that nothing uses (unattached, in no
// busy state), none but the one answered can be in a PersistentVolume. Two
// places act on that:
//   - the look-up of a CreateVolume (a retry: nothing was answered that the
//     provisioner kept) keeps the oldest and deletes the others;
//   - after answering, the controller looks at the name once more, later
//     (SameNameChecks), and deletes the others, the answered one kept, for a
//     create that landed after the answer.
// Any other mix (one attached, another cluster's) is left to an operator.
import type { Logger } from '../log';
import type { Cloud, Volume } from '../openstack/types';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { internal } from '../csi/errors';
import { duplicatesMessage, findAllByName } from './by-name';
import { waitForVolume, type ControllerEnv, type Op } from './env';
import { CLUSTER_METADATA_KEY } from './params';

/** States in which a volume is not in use: being made, ready, or failed. */
const IDLE = ['creating', 'downloading', 'restoring-backup', 'available', 'error', 'error_restoring'];

/** Whether nothing can be using this volume: it is this cluster's, attached nowhere, and in no busy state. */
export function unclaimed(v: Volume, clusterId: string): boolean {
  return claimedBecause(v, clusterId) === null;
}

/** Why this volume may be in use ('attached', ...), or null when nothing can be using it. */
function claimedBecause(v: Volume, clusterId: string): string | null {
  const cluster = v.metadata[CLUSTER_METADATA_KEY];
  if (cluster !== clusterId) return cluster === undefined ? 'carries no cluster mark' : `belongs to cluster '${cluster}'`;
  if (v.attachments.length > 0) return 'is attached';
  if (!IDLE.includes(v.status)) return `is '${v.status}'`;
  return null;
}

/**
 * Which of several volumes of one name to keep: a healthy one before a
 * failed one, then the oldest, then the smallest ID (Cinder's created_at may
 * have whole seconds only). Every controller that sees the same volumes
 * picks the same one.
 */
export function keeper(volumes: Volume[]): Volume {
  const failed = (v: Volume) => (v.status.startsWith('error') ? 1 : 0);
  return [...volumes].sort((a, b) => failed(a) - failed(b) || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))[0]!;
}

/**
 * CreateVolume's look-up: the volume of this name, or none. Several that
 * are all unclaimed come down to the keeper; otherwise INTERNAL, with the
 * IDs for an operator.
 */
export async function oneVolumeNamed(env: ControllerEnv, cloud: Cloud, name: string, op: Op): Promise<Volume | undefined> {
  const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
  if (named.length <= 1) return named[0];
  const claimed = named.flatMap((v) => {
    const why = claimedBecause(v, env.settings.clusterId);
    return why ? [`${v.id} ${why}`] : [];
  });
  if (claimed.length > 0) throw internal(`${duplicatesMessage(named, name, 'volume')} (the driver does not choose, as ${claimed.join(' and ')})`);
  const keep = keeper(named);
  await deleteExtra(cloud, named.filter((v) => v !== keep), op);
  env.logger.warn({ volume_id: keep.id, name, deleted: named.filter((v) => v !== keep).map((v) => v.id) }, 'several volumes had this name (a create that outlived its controller); kept the oldest');
  return keep;
}

/**
 * Delete volumes nobody uses, each once Cinder lets it be deleted (not
 * while it is being made). A failure is thrown: CreateVolume must not
 * answer while two volumes keep its name.
 */
async function deleteExtra(cloud: Cloud, extra: Volume[], op: Op): Promise<void> {
  for (const v of extra) {
    if ((WAIT.volumeAvailable.transient as readonly string[]).includes(v.status)) {
      // Its end state does not matter (failed ones are deleted too); only that it has one.
      await waitForVolume(cloud, v.id, { spec: WAIT.volumeAvailable }, op).catch((err: unknown) => {
        if (!isOpenStackError(err, 'state')) throw err;
      });
    }
    await cloud.blockStorage.deleteVolume(v.id, op).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
}

const CHECK_TIMEOUT_MS = 10 * 60_000;

export interface SameNameCheckOptions {
  /** When to look, counted from the answer. */
  delayMs: number;
  /** Runs `work` holding the name's slot in the in-flight registry (no CreateVolume of the name meanwhile). */
  exclusive(name: string, signal: AbortSignal, work: (signal: AbortSignal) => Promise<void>): Promise<void>;
  logger: Logger;
}

/**
 * The later look at the name of each volume CreateVolume answered with. A
 * create an earlier controller left in Cinder's hands lands within a
 * request's life (seconds, a minute at worst): one look two minutes on
 * catches it for one request per create, and an unused volume that lives
 * two minutes harms no one.
 */
export class SameNameChecks {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new AbortController();

  constructor(
    private readonly env: ControllerEnv,
    private readonly options: SameNameCheckOptions,
  ) {}

  schedule(cloud: Cloud, name: string, answeredId: string): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.check(cloud, name, answeredId);
    }, this.options.delayMs);
    // A look that cannot happen before the process ends is not worth keeping it alive for.
    timer.unref();
    this.timers.add(timer);
  }

  /** Cancel what is scheduled and what runs (the driver is stopping). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.running.abort();
  }

  private async check(cloud: Cloud, name: string, answeredId: string): Promise<void> {
    const { logger, exclusive } = this.options;
    try {
      await exclusive(name, this.running.signal, async (signal) => {
        // Bounded: a duplicate still being made is waited for, but not for ever.
        const op: Op = { signal: AbortSignal.any([signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]) };
        const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
        // Gone or going (deleted since, or a retry kept another): nothing here is ours to judge.
        if (!named.some((v) => v.id === answeredId)) return;
        const extra = named.filter((v) => v.id !== answeredId && unclaimed(v, this.env.settings.clusterId));
        if (extra.length === 0) return;
        await deleteExtra(cloud, extra, op);
        logger.warn(
          { volume_id: answeredId, name, deleted: extra.map((v) => v.id) },
          'deleted volumes of the same name as one CreateVolume answered with (a create that outlived its controller)',
        );
      });
    } catch (err) {
      if (this.running.signal.aborted) return;
      // ABORTED from the registry: a CreateVolume of the name runs, and its look-up does the same.
      logger.warn({ volume_id: answeredId, name, error: (err as Error).message }, 'could not check for other volumes of the name CreateVolume answered');
    }
  }
}
