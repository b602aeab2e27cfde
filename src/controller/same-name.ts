// Volumes that share a name, and how CreateVolume gets back to one.
//
// Cinder has no idempotency token: CreateVolume's guard against a second
// volume is the name lookup before its create. A create request still in
// Cinder's hands when its controller died (or lost its leadership) can land
// after the next controller has looked the name up, and then two volumes
// carry the name: one answered, one nobody knows (a leftover).
//
// One rule decides which stays (plan below), in two places:
//   - CreateVolume's look-up, when it finds several;
//   - a look at the name some time after CreateVolume answered (SameNameChecks),
//     for a leftover that landed after the answer.
// The volume this process answered with for the name stays, whatever its
// age: the CO may hold its ID, and the CSI spec wants the same volume for
// the same name. Without one, the best (plan's keeper) stays. The others go
// only when nothing can be using them: this cluster's, attached nowhere, in
// no busy state, and made within minutes of the one that stays (a leftover
// lands within a request's life; a PV's idle volume from long ago does not
// qualify). Any other mix is left to an operator.
//
// What is not covered: the answered IDs live in this process only, so a CO
// that repeats a CreateVolume it already had an answer for, across a
// controller restart, while a leftover exists, may get the other volume. The
// external-provisioner asks for a name only until it has kept an answer.
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
/** Volumes of one name made further apart than this are not a crash's leftovers. */
const LEFTOVER_WINDOW_MS = 10 * 60_000;

/** Why this volume may be in use, or null when nothing can be using it. */
function claimedBecause(v: Volume, clusterId: string): string | null {
  const cluster = v.metadata[CLUSTER_METADATA_KEY];
  if (cluster !== clusterId) return cluster === undefined ? 'carries no cluster mark' : `belongs to cluster '${cluster}'`;
  if (v.attachments.length > 0) return 'is attached';
  if (!IDLE.includes(v.status)) return `is '${v.status}'`;
  if (v.migrationStatus) return `is migrating ('${v.migrationStatus}')`;
  return null;
}

/** Whether nothing can be using this volume: this cluster's, attached nowhere, idle, not migrating. */
export function unclaimed(v: Volume, clusterId: string): boolean {
  return claimedBecause(v, clusterId) === null;
}

const isTransient = (v: Volume) => (WAIT.volumeAvailable.transient as readonly string[]).includes(v.status);
const rank = (v: Volume) => (v.status === 'available' ? 0 : v.status.startsWith('error') ? 2 : 1);
const before = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Of several volumes of one name, the one to keep when none was answered
 * here: an available one, then one still being made, then a failed one;
 * among equals the oldest, then the smallest ID (Cinder's created_at may
 * have whole seconds only). Plain string order, so every controller picks
 * the same from the same volumes.
 */
export function keeper(volumes: Volume[]): Volume {
  return [...volumes].sort((a, b) => rank(a) - rank(b) || before(a.createdAt, b.createdAt) || before(a.id, b.id))[0]!;
}

export interface Plan {
  keep: Volume | undefined;
  /** Leftovers to delete. */
  remove: Volume[];
  /** Why the rest cannot be deleted ('<id> is attached'); empty when everything but `keep` goes. */
  problems: string[];
}

/** What to keep and what to delete among volumes of one name; `answeredId`: the one this process answered with. */
export function plan(named: Volume[], clusterId: string, answeredId?: string): Plan {
  const answered = named.find((v) => v.id === answeredId);
  const claimed = named.flatMap((v) => {
    const why = claimedBecause(v, clusterId);
    return why ? [`${v.id} ${why}`] : [];
  });
  // Without an answer given here, the choice is safe only if no volume of the name can be in use.
  const keep = answered ?? (claimed.length === 0 ? keeper(named) : undefined);
  if (!keep) return { keep, remove: [], problems: claimed };
  const remove: Volume[] = [];
  const problems: string[] = [];
  const keptAt = Date.parse(keep.createdAt);
  for (const v of named) {
    if (v === keep) continue;
    const why = claimedBecause(v, clusterId);
    if (why) problems.push(`${v.id} ${why}`);
    else if (!(Math.abs(Date.parse(v.createdAt) - keptAt) <= LEFTOVER_WINDOW_MS)) problems.push(`${v.id} was made more than 10 minutes apart from ${keep.id}`);
    else remove.push(v);
  }
  return { keep, remove, problems };
}

/**
 * CreateVolume's look-up: the volume of this name, or none. With several,
 * the plan's keeper, once the leftovers that can be deleted are gone (a
 * delete the backend refuses puts a volume back, and it must not be back
 * beside the one answered); leftovers still being made are left to the
 * later look. Anything the plan cannot settle is INTERNAL, with the IDs.
 */
export async function oneVolumeNamed(env: ControllerEnv, cloud: Cloud, name: string, op: Op): Promise<Volume | undefined> {
  const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
  if (named.length <= 1) return named[0];
  const { keep, remove, problems } = plan(named, env.settings.clusterId, env.sameNameChecks?.answered(name));
  if (!keep || problems.length > 0) {
    throw internal(`${duplicatesMessage(named, name, 'volume')} (the driver does not choose, as ${problems.join(' and ')})`);
  }
  const now = remove.filter((v) => !isTransient(v));
  for (const v of now) await deleteLeftover(cloud, v, name, op);
  for (const v of now) await untilGone(cloud, v, name, op);
  env.logger.warn({ volume_id: keep.id, name, deleted: now.map((v) => v.id), left: remove.filter(isTransient).map((v) => v.id) }, 'several volumes had this name (a create that outlived its controller); kept one');
  return keep;
}

async function deleteLeftover(cloud: Cloud, v: Volume, name: string, op: Op): Promise<void> {
  await cloud.blockStorage.deleteVolume(v.id, op).catch((err: unknown) => {
    if (isNotFound(err)) return;
    if (isOpenStackError(err, 'bad_request') || isOpenStackError(err, 'conflict')) {
      throw internal(`volume ${v.id}, a leftover of the same name '${name}', could not be deleted: ${(err as Error).message}; delete it by hand`);
    }
    throw err;
  });
}

async function untilGone(cloud: Cloud, v: Volume, name: string, op: Op): Promise<void> {
  await waitForVolume(cloud, v.id, { spec: WAIT.volumeDeleted, kind: 'volume:delete' }, op).catch((err: unknown) => {
    if (!isOpenStackError(err, 'state')) throw err;
    throw internal(`volume ${v.id}, a leftover of the same name '${name}', was not deleted (Cinder put it to '${err.lastState}'); delete it by hand`);
  });
}

export interface SameNameCheckOptions {
  /** When to look, counted from the answer (and between looks while a leftover is still being made). */
  delayMs: number;
  /**
   * Runs `work` holding the name's slot in the in-flight registry, so that
   * no CreateVolume of the name runs meanwhile (one that comes is ABORTED and
   * retried); `request` tells looks for different answers apart.
   */
  exclusive(name: string, request: unknown, signal: AbortSignal, work: (signal: AbortSignal) => Promise<void>): Promise<void>;
  logger: Logger;
}

/** Looks at one name at most this many times (a leftover still being made, or the name busy). */
const MAX_LOOKS = 5;

/**
 * The later look at the name of each volume CreateVolume answered with. A
 * create an earlier controller left in Cinder's hands lands within a
 * request's life (seconds, a minute at worst): one look two minutes on
 * catches it for one request per create, and an unused volume that lives
 * two minutes harms no one. Until its look is done, the answered ID is
 * what plan() keeps for the name.
 */
export class SameNameChecks {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new AbortController();
  /** Name -> the volume ID the latest CreateVolume of it answered with, while a look is due. */
  private readonly answers = new Map<string, string>();

  constructor(
    private readonly env: ControllerEnv,
    private readonly options: SameNameCheckOptions,
  ) {}

  /** The volume this process answered with for the name, while its look is due. */
  answered(name: string): string | undefined {
    return this.answers.get(name);
  }

  schedule(cloud: Cloud, name: string, answeredId: string, looks = 0): void {
    if (this.running.signal.aborted) return;
    this.answers.set(name, answeredId);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.look(cloud, name, answeredId, looks + 1);
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

  private async look(cloud: Cloud, name: string, answeredId: string, looks: number): Promise<void> {
    const { logger, exclusive } = this.options;
    // A newer answer for the name has its own look.
    if (this.answers.get(name) !== answeredId) return;
    let again = false;
    try {
      await exclusive(name, { name, answeredId }, this.running.signal, async (signal) => {
        const op: Op = { signal };
        const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
        const { keep, remove, problems } = plan(named, this.env.settings.clusterId, answeredId);
        // Gone or going (deleted since): nothing here is ours to judge.
        if (keep?.id !== answeredId) return;
        if (problems.length > 0) logger.warn({ volume_id: answeredId, name, problems }, 'other volumes have the name CreateVolume answered; left alone');
        const now = remove.filter((v) => !isTransient(v));
        for (const v of now) await deleteLeftover(cloud, v, name, op);
        // Not waited for here: the name's slot is held, and CreateVolume of the name would be ABORTED meanwhile.
        again = now.length < remove.length;
        if (now.length > 0) {
          logger.warn({ volume_id: answeredId, name, deleted: now.map((v) => v.id) }, 'deleted leftovers of the same name as a volume CreateVolume answered with');
        }
      });
    } catch (err) {
      if (this.running.signal.aborted) return;
      // ABORTED from the registry (a CreateVolume of the name runs) or a failure: look again later.
      again = true;
      logger.warn({ volume_id: answeredId, name, error: (err as Error).message }, 'could not look for other volumes of the name CreateVolume answered');
    }
    if (again && looks < MAX_LOOKS) this.schedule(cloud, name, answeredId, looks);
    else if (this.answers.get(name) === answeredId) this.answers.delete(name);
  }
}
