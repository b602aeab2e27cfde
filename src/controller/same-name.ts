// Volumes that share a name, and how CreateVolume gets back to one.
//
// Cinder has no idempotency token: CreateVolume's guard against a second
// volume is the name lookup before its create. A create request still in
// Cinder's hands when its controller died (or lost its leadership) can land
// after the next controller has looked the name up, and then two volumes
// carry the name: one answered, one nobody knows (a leftover).
//
// A volume CreateVolume answered with may be in a PersistentVolume, so it is
// marked as such in Cinder (ANSWERED_METADATA_KEY) by the look below, and
// this process remembers the answer until then. A marked (or remembered)
// volume is never deleted here. (Marked at the look, not at the answer: one
// request less on the busy path, figure 2 of issue 7.)
//
// One rule (plan) decides what stays, in two places:
//   - CreateVolume's look-up, when it finds several volumes of its name;
//   - a look at the name two minutes after each answer (SameNameChecks), for
//     a leftover that landed after the answer.
// The answered volume stays; with none, the keeper() below. The others go
// only when nothing can be using them: unmarked, this cluster's, attached
// nowhere, idle, not migrating, and made within 10 minutes of the one kept
// (a leftover lands within a request's life; an idle PV of long ago does
// not qualify). Any other mix is left to an operator.
//
// Not covered, both from a controller that restarts or loses its leadership
// within two minutes of an answer, before its look: a leftover that lands
// then stays (a leak); and the answered volume is not marked yet, so a CO
// that repeats a CreateVolume it has already kept the answer of (the
// external-provisioner does not) may get the leftover instead, and the
// answered volume be deleted. Nor is a leftover of an answered volume that
// was deleted before its look: another controller may have answered with it
// since, and it is left (and logged) unless one volume of the name is marked.
import { setMaxListeners } from 'node:events';
import type { Logger } from '../log';
import type { Cloud, Volume } from '../openstack/types';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { internal } from '../csi/errors';
import { duplicatesMessage, findAllByName } from './by-name';
import { waitForVolume, type ControllerEnv, type Op } from './env';
import { ANSWERED_METADATA_KEY, CLUSTER_METADATA_KEY } from './params';
import { cinderTimeMs } from './views';

/** States in which a volume is not in use: being made, ready, or failed. */
const IDLE = ['creating', 'downloading', 'restoring-backup', 'available', 'error', 'error_restoring'];
/** Volumes of one name made further apart than this are not a crash's leftovers. */
const LEFTOVER_WINDOW_MS = 10 * 60_000;

/** Whether CreateVolume answered with this volume for its own name (see ANSWERED_METADATA_KEY). */
export function isAnswered(v: Volume): boolean {
  return v.metadata[ANSWERED_METADATA_KEY] === v.name;
}

/** Why this volume may be in use, or null when nothing can be using it. */
function claimedBecause(v: Volume, clusterId: string): string | null {
  if (isAnswered(v)) return 'was answered by an earlier CreateVolume';
  const cluster = v.metadata[CLUSTER_METADATA_KEY];
  if (cluster !== clusterId) return cluster === undefined ? 'carries no cluster mark' : `belongs to cluster '${cluster}'`;
  if (v.attachments.length > 0) return 'is attached';
  if (!IDLE.includes(v.status)) return `is '${v.status}'`;
  if (v.migrationStatus) return `is migrating ('${v.migrationStatus}')`;
  return null;
}

/** Whether nothing can be using this volume (and no CreateVolume answered with it). */
export function unclaimed(v: Volume, clusterId: string): boolean {
  return claimedBecause(v, clusterId) === null;
}

const isTransient = (v: Volume) => (WAIT.volumeAvailable.transient as readonly string[]).includes(v.status);
const rank = (v: Volume) => (v.status === 'available' ? 0 : v.status.startsWith('error') ? 2 : 1);
const before = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Of several volumes of one name, none of them answered, the one to keep:
 * an available one, then one still being made, then a failed one; among
 * equals the oldest, then the smallest ID (Cinder's created_at has whole
 * seconds). Plain string order, so every controller picks the same.
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

/**
 * What to keep and what to delete among volumes of one name. The answered
 * one is kept: `answeredId` (this process's answer, its mark perhaps not
 * written yet), else the one marked. Without one, the keeper, and only when
 * nothing of the name can be in use.
 */
export function plan(named: Volume[], clusterId: string, answeredId?: string): Plan {
  const marked = named.filter(isAnswered);
  const answered = named.find((v) => v.id === answeredId) ?? (marked.length === 1 ? marked[0] : undefined);
  const claimed = named.flatMap((v) => {
    const why = claimedBecause(v, clusterId);
    return why ? [`${v.id} ${why}`] : [];
  });
  const keep = answered ?? (claimed.length === 0 ? keeper(named) : undefined);
  if (!keep) return { keep, remove: [], problems: claimed };
  const remove: Volume[] = [];
  const problems: string[] = [];
  const keptAt = cinderTimeMs(keep.createdAt);
  for (const v of named) {
    if (v === keep) continue;
    const why = claimedBecause(v, clusterId);
    if (why) problems.push(`${v.id} ${why}`);
    else if (!(Math.abs(cinderTimeMs(v.createdAt) - keptAt) <= LEFTOVER_WINDOW_MS)) problems.push(`${v.id} was made more than 10 minutes apart from ${keep.id}`);
    else remove.push(v);
  }
  return { keep, remove, problems };
}

/**
 * CreateVolume's look-up: the volume of this name, or none. With several,
 * the plan's keep, once the leftovers that can be deleted are gone (a delete
 * the backend refuses puts a volume back); leftovers still being made are
 * left to the later look, so a retry never waits on them. Anything the plan
 * cannot settle is INTERNAL, with the IDs.
 */
export async function oneVolumeNamed(env: ControllerEnv, cloud: Cloud, name: string, op: Op): Promise<Volume | undefined> {
  const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
  if (named.length <= 1) return named[0];
  const { keep, remove, problems } = plan(named, env.settings.clusterId, env.sameNameChecks?.answered(cloud, name));
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
  /** When to look, counted from the answer (and between looks while leftovers remain). */
  delayMs: number;
  /**
   * Runs `work` holding the name's slot in the in-flight registry, so that
   * no CreateVolume of the name runs meanwhile (one that comes is ABORTED and
   * retried); `request` tells looks for different answers apart.
   */
  exclusive(name: string, request: unknown, signal: AbortSignal, work: (signal: AbortSignal) => Promise<void>): Promise<void>;
  logger: Logger;
}

/** Looks at one name at most this many times (leftovers still being made, refused deletes, the name busy). */
const MAX_LOOKS = 5;
/** Bounds the list, mark and deletes a look makes while it holds the name's slot. */
const SLOT_TIMEOUT_MS = 30_000;
/** Bounds the wait, outside the slot, until the deleted leftovers are gone. */
const GONE_TIMEOUT_MS = 5 * 60_000;

/**
 * The mark and the later look for each volume CreateVolume answered with.
 * A create an earlier controller left in Cinder's hands lands within a
 * request's life (seconds, a minute at worst): a look two minutes on catches
 * it for one request per create, and an unused volume that lives two
 * minutes harms no one.
 */
export class SameNameChecks {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new AbortController();
  /** Cloud and name (answerKey) -> the volume the latest CreateVolume of it answered with, while its look is due. */
  private readonly answers = new Map<string, Volume>();

  constructor(
    private readonly env: ControllerEnv,
    private readonly options: SameNameCheckOptions,
  ) {
    // Every running look waits on this signal through the in-flight registry.
    setMaxListeners(0, this.running.signal);
  }

  /** The volume ID this process answered with for the name, while its look is due. */
  answered(cloud: Cloud, name: string): string | undefined {
    return this.answers.get(answerKey(cloud, name))?.id;
  }

  /** CreateVolume answered with `volume` for `name`: remember it, and look at the name (and mark it) later. */
  answer(cloud: Cloud, name: string, volume: Volume): void {
    if (this.running.signal.aborted) return;
    this.answers.set(answerKey(cloud, name), volume);
    this.schedule(cloud, name, volume, 1);
  }

  /** Cancel what is scheduled and what runs (the driver is stopping). */
  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.running.abort();
  }

  private async mark(cloud: Cloud, volume: Volume, name: string, op: Op): Promise<boolean> {
    try {
      await cloud.blockStorage.setVolumeMetadata(volume.id, { [ANSWERED_METADATA_KEY]: name }, op);
      return true;
    } catch (err) {
      // The next look tries again; meanwhile this process remembers the answer.
      if (!this.running.signal.aborted) this.options.logger.warn({ volume_id: volume.id, name, error: (err as Error).message }, 'could not mark the volume CreateVolume answered with');
      return false;
    }
  }

  private schedule(cloud: Cloud, name: string, volume: Volume, look: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.look(cloud, name, volume, look);
    }, this.options.delayMs);
    // A look that cannot happen before the process ends is not worth keeping it alive for.
    timer.unref();
    this.timers.add(timer);
  }

  private async look(cloud: Cloud, name: string, answered: Volume, look: number): Promise<void> {
    const { logger, exclusive } = this.options;
    // A newer answer for the name has its own look.
    const key = answerKey(cloud, name);
    if (this.answers.get(key) !== answered) return;
    let deleted: Volume[] = [];
    let again = false;
    /** The answered volume is marked, or gone: nothing left to remember it for. */
    let settled = false;
    try {
      await exclusive(name, { name, answered: answered.id }, this.running.signal, async (signal) => {
        // A signal, not a deadline: the waiter and the retries stop on it (a deadline only stops retries).
        const op: Op = { signal: AbortSignal.any([signal, AbortSignal.timeout(SLOT_TIMEOUT_MS)]) };
        const named = await findAllByName((q, o) => cloud.blockStorage.listVolumes(q, o), name, op);
        const current = named.find((v) => v.id === answered.id);
        settled = !current || isAnswered(current) || (await this.mark(cloud, current, name, op));
        if (!settled) again = true;
        const { keep, remove, problems } = current ? plan(named, this.env.settings.clusterId, answered.id) : planWithoutAnswer(named, this.env.settings.clusterId);
        if (problems.length > 0) logger.warn({ volume_id: answered.id, name, problems }, 'other volumes have the name CreateVolume answered; left alone');
        if (!keep) return;
        deleted = remove.filter((v) => !isTransient(v));
        for (const v of deleted) await deleteLeftover(cloud, v, name, op);
        if (deleted.length < remove.length) again = true;
      });
      // Outside the slot: waiting here must not hold back a CreateVolume of the name.
      const op: Op = { signal: AbortSignal.any([this.running.signal, AbortSignal.timeout(GONE_TIMEOUT_MS)]) };
      for (const v of deleted) await untilGone(cloud, v, name, op);
      if (deleted.length > 0) logger.warn({ volume_id: answered.id, name, deleted: deleted.map((v) => v.id) }, 'deleted leftovers of the same name as a volume CreateVolume answered with');
    } catch (err) {
      if (this.running.signal.aborted) return;
      // ABORTED from the registry (a CreateVolume of the name runs), a refused delete, the cloud unreachable.
      again = true;
      logger.warn({ volume_id: answered.id, name, error: (err as Error).message }, 'could not look for leftovers of the name CreateVolume answered');
    }
    if (again && look < MAX_LOOKS) return this.schedule(cloud, name, answered, look + 1);
    if (again) logger.warn({ volume_id: answered.id, name }, `gave up looking for leftovers of the name after ${MAX_LOOKS} looks; list the volumes named '${name}' and delete all but ${answered.id}`);
    // Not marked: remembered for as long as this process runs, so that no look-up here prefers a leftover.
    if (settled && this.answers.get(key) === answered) this.answers.delete(key);
  }
}

/** One name may be used in two clouds (a StorageClass's secrets choose the cloud). */
function answerKey(cloud: Cloud, name: string): string {
  return `${cloud.name}\0${name}`;
}

/**
 * The answered volume is gone (deleted before the look). Another controller
 * may have answered with one of the others since (a retry after a
 * leadership change), its mark not written yet: only a marked one is kept,
 * and with none, nothing is deleted.
 */
function planWithoutAnswer(named: Volume[], clusterId: string): Plan {
  const marked = named.filter(isAnswered);
  if (marked.length === 1) return plan(named, clusterId, marked[0]!.id);
  const problems = named.length > 0 ? [`the answered volume is gone and ${marked.length === 0 ? 'none' : 'more than one'} of ${named.map((v) => v.id).join(', ')} is marked answered`] : [];
  return { keep: undefined, remove: [], problems };
}
