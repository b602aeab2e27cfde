// CreateSnapshot, DeleteSnapshot, ListSnapshots, GetSnapshot.
//
// A VolumeSnapshot is a Cinder snapshot, or with `type: backup` a Cinder
// backup whose ID serves as the snapshot ID (as in the Go plugin, so its
// VolumeSnapshotContents keep working).
//
// The spec: CreateSnapshot MUST block until the snapshot is cut, and
// ready_to_use false is for processing after the cut (an upload). A Cinder
// snapshot is cut somewhere inside 'creating' and there is no telling where,
// so CreateSnapshot waits for 'available' (a deadline that passes first is
// DEADLINE_EXCEEDED, and the snapshotter's retry finds the snapshot by name
// and waits on). ListSnapshots leaves out snapshots still 'creating'. A backup
// is taken from a volume Cinder holds still ('backing-up'), or from a
// temporary snapshot when forced: CreateSnapshot answers once Cinder has
// accepted it, with ready_to_use false until the copy is uploaded.
import type { CreateSnapshotRequest__Output } from '../gen/csi/v1/CreateSnapshotRequest';
import type { CreateSnapshotResponse } from '../gen/csi/v1/CreateSnapshotResponse';
import type { DeleteSnapshotRequest__Output } from '../gen/csi/v1/DeleteSnapshotRequest';
import type { DeleteSnapshotResponse } from '../gen/csi/v1/DeleteSnapshotResponse';
import type { ListSnapshotsRequest__Output } from '../gen/csi/v1/ListSnapshotsRequest';
import type { ListSnapshotsResponse, _csi_v1_ListSnapshotsResponse_Entry as Entry } from '../gen/csi/v1/ListSnapshotsResponse';
import type { GetSnapshotRequest__Output } from '../gen/csi/v1/GetSnapshotRequest';
import type { GetSnapshotResponse } from '../gen/csi/v1/GetSnapshotResponse';
import type { Snapshot as CsiSnapshot } from '../gen/csi/v1/Snapshot';
import type { Backup, Cloud, Snapshot, Volume } from '../openstack/types';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { aborted, alreadyExists, failedPrecondition, internal, invalidArgument, notFound, requireId, requireName, resourceExhausted, type CsiError } from '../csi/errors';
import { findOneByName } from './by-name';
import { failureMessage } from './messages';
import { locate } from './clouds';
import { UNINTERRUPTED, type ControllerEnv, type Op } from './env';
import { decodeListToken, encodeListToken } from './list-token';
import { rethrow, translate } from './os-errors';
import { collectEntries, type Segment } from './paging';
import { listSnapshotsEntrySize } from './wire-size';
import { ownedMetadata, parseSnapshotParams, type SnapshotParams } from './params';
import { cinderTimeMs, csiSnapshot } from './views';
import { isErrorState, volumeInError } from './volume-state';

type Kind = SnapshotParams['kind'];

/** A snapshot or backup in the shape both calls share. */
type Copy = Snapshot | Backup;

export async function createSnapshot(env: ControllerEnv, req: CreateSnapshotRequest__Output, op: Op): Promise<CreateSnapshotResponse> {
  const name = requireName(req.name, 'name');
  const sourceCsiId = requireId(req.source_volume_id, 'source_volume_id');
  const params = parseSnapshotParams(req.parameters);
  const { cloud, id: volumeId } = locate(env.clouds, sourceCsiId, req.secrets);
  const bs = cloud.blockStorage;
  const what = params.kind === 'backup' ? 'backup' : 'snapshot';

  // Both kinds share one namespace of snapshot names (and IDs): a name taken by the other kind is taken.
  const [snapshotNamed, backupNamed] = await Promise.all([
    findOneByName((q, o) => bs.listSnapshots(q, o), name, 'snapshot', op),
    findOneByName((q, o) => bs.listBackups(q, o), name, 'backup', op),
  ]);
  const [existing, otherKind] = params.kind === 'backup' ? [backupNamed, snapshotNamed] : [snapshotNamed, backupNamed];
  if (!existing && otherKind) {
    const other = params.kind === 'backup' ? 'snapshot' : 'backup';
    throw alreadyExists(
      `a Cinder ${other} named '${name}' already exists (${otherKind.id}, of volume ${otherKind.volumeId}), and this request asks for a ${what} of that name; ` +
        `one name stands for one VolumeSnapshot: set type: ${other} back in its VolumeSnapshotClass, or delete the ${other} ` +
        `('openstack volume ${other} delete ${otherKind.id}') if nothing uses it`,
    );
  }
  let copy: Copy;
  if (existing) {
    if (existing.volumeId !== volumeId) {
      throw alreadyExists(`a ${what} named '${name}' already exists (${existing.id}) for volume ${existing.volumeId}, not for ${sourceCsiId}`);
    }
    copy = existing;
  } else {
    const volume = await bs.getVolume(volumeId, op).catch(rethrow({ not_found: () => notFound(`source volume ${sourceCsiId} does not exist in cloud '${cloud.name}'`) }));
    const notNow = notCopyable(volume, sourceCsiId, what);
    if (notNow) throw notNow;
    copy = await startCopy(env, cloud, params, name, volumeId, sourceCsiId, op);
  }
  if (copy.status.startsWith('error')) {
    // A backup's ID went to the snapshotter with the first answer (ready_to_use false), and it keeps the
    // first ID it gets: a backup found by name is kept, so a new one is never made under an ID it never learns.
    if (params.kind === 'backup' && existing) {
      throw internal(
        `Cinder could not make backup ${copy.id} of volume ${copy.volumeId} (status '${copy.status}'; 'openstack volume backup show ${copy.id}' says why). ` +
          `It is kept, because the VolumeSnapshot already names it: delete the VolumeSnapshot to remove it, then take a new one`,
      );
    }
    await discardFailed(env, cloud, params.kind, copy, op);
  }
  if (params.kind === 'snapshot' && copy.status !== 'available' && !CUT_AND_BUSY.includes(copy.status)) copy = await untilCut(env, cloud, copy, op);
  return { snapshot: csiSnapshot(env, cloud.name, copy) };
}

/**
 * A snapshot Cinder made and is now using: a backup taken from it, or a revert of its volume to it.
 * It was cut (answered with ready_to_use false until it is 'available' again), and it is not a failure.
 */
const CUT_AND_BUSY: readonly string[] = ['backing-up', 'restoring'];

/** Wait until Cinder has made the snapshot: 'available'. One that fails is deleted, as at the start. */
async function untilCut(env: ControllerEnv, cloud: Cloud, snapshot: Copy, op: Op): Promise<Copy> {
  try {
    const done = await cloud.waiter.snapshot(snapshot.id, WAIT.snapshotAvailable, { kind: 'snapshot:create', signal: op.signal, deadline: op.deadline });
    if (!done) throw internal(`snapshot ${snapshot.id} of volume ${snapshot.volumeId} was deleted while Cinder was making it; the snapshotter retries`);
    return done;
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    return discardFailed(env, cloud, 'snapshot', { ...snapshot, status: err.lastState ?? 'error' }, op);
  }
}

/**
 * Why Cinder will not copy the volume now, from its status alone (Cinder copies only an 'available'
 * or 'in-use' volume), or null. ABORTED while one of Cinder's own operations holds the volume
 * (extending, backing-up, retyping, attaching...): the spec's "operation pending for volume", and
 * csi-snapshotter retries it, keeping its being-created annotation. UNAVAILABLE would say the plugin
 * or Cinder cannot be reached, which is not so. An error state is final: FAILED_PRECONDITION.
 */
function notCopyable(volume: Volume, csiId: string, what: Kind): CsiError | null {
  if (volume.status === 'available' || volume.status === 'in-use') return null;
  if (isErrorState(volume.status)) return volumeInError(csiId, volume.status, `take a ${what} of`);
  return aborted(`volume ${csiId} is '${volume.status}' in Cinder; the ${what} is taken when Cinder has finished, and the snapshotter retries`);
}

async function startCopy(env: ControllerEnv, cloud: Cloud, params: SnapshotParams, name: string, volumeId: string, csiId: string, op: Op): Promise<Copy> {
  const bs = cloud.blockStorage;
  const metadata = ownedMetadata(env.settings.clusterId, params.metadata);
  const description = 'Created by cinder-csi';
  try {
    if (params.kind === 'backup') {
      const created = await bs.createBackup(
        { volumeId, name, description, force: params.force, incremental: params.incremental, availabilityZone: params.availability, metadata },
        UNINTERRUPTED,
      );
      // Cinder answers a backup create with its ID and name only.
      return await bs.getBackup(created.id, op);
    }
    return await bs.createSnapshot({ volumeId, name, description, force: params.force, metadata }, UNINTERRUPTED);
  } catch (err) {
    if (isOpenStackError(err, 'bad_request')) throw await refusedCopy(cloud, params, volumeId, csiId, err.message, op);
    throw translate(err, {
      over_quota: (m) => resourceExhausted(`Cinder refused the ${params.kind}: ${m}; delete old VolumeSnapshots or raise the project's quota`),
    });
  }
}

/**
 * What to tell the operator when Cinder refused to start a copy (400). Its words name a status or a
 * rule; what helps depends on the volume's status now, and for an incremental backup on the volume's
 * backups.
 */
async function refusedCopy(cloud: Cloud, params: SnapshotParams, volumeId: string, csiId: string, cinderSays: string, op: Op): Promise<CsiError> {
  const refused = `Cinder refused the ${params.kind} of volume ${csiId}: ${cinderSays}`;
  const volume = await cloud.blockStorage.getVolume(volumeId, op).catch(() => null);
  if (!volume) return failedPrecondition(refused);
  // The status may have moved between the look before the request and Cinder's own.
  const notNow = notCopyable(volume, csiId, params.kind);
  if (notNow) return notNow;
  if (volume.status === 'in-use' && !params.force) {
    return failedPrecondition(`${refused}; the volume is attached: set force-create: "true" in the VolumeSnapshotClass to take it anyway`);
  }
  if (params.kind === 'backup' && params.incremental) return (await noParentBackup(cloud, volumeId, csiId, refused, op).catch(() => null)) ?? failedPrecondition(refused);
  return failedPrecondition(refused);
}

/** An incremental backup Cinder refused: it builds on the volume's newest backup, which must be there and available. */
async function noParentBackup(cloud: Cloud, volumeId: string, csiId: string, refused: string, op: Op): Promise<CsiError> {
  const backups: Backup[] = [];
  let marker: string | undefined;
  do {
    const page = await cloud.blockStorage.listBackups({ volumeId, marker }, op);
    backups.push(...page.items.filter((b) => b.volumeId === volumeId));
    marker = page.items.length > 0 ? page.next : undefined;
  } while (marker);
  if (backups.length === 0) {
    return failedPrecondition(
      `${refused}; volume ${csiId} has no backup for an incremental one to build on: take a full backup first ` +
        `(with a VolumeSnapshotClass without incremental: "true"), and the snapshotter retries`,
    );
  }
  const newest = backups.reduce((a, b) => (cinderTimeMs(b.createdAt) > cinderTimeMs(a.createdAt) ? b : a));
  const builtOn = `${refused}; Cinder builds it on the volume's newest backup, ${newest.id}, which is '${newest.status}'`;
  if (isErrorState(newest.status)) return failedPrecondition(`${builtOn}: delete that backup (or take a full backup), and the snapshotter retries`);
  // Being made, restored from or deleted: that ends by itself.
  if (newest.status !== 'available') return aborted(`${builtOn}; the snapshotter retries when Cinder has finished with it`);
  return failedPrecondition(refused);
}

/** A snapshot or backup that failed is deleted, so the snapshotter's next call starts a new one. */
async function discardFailed(env: ControllerEnv, cloud: Cloud, kind: Kind, copy: Copy, op: Op): Promise<never> {
  const bs = cloud.blockStorage;
  await (kind === 'backup' ? bs.deleteBackup(copy.id, op) : bs.deleteSnapshot(copy.id, op)).catch((e) => {
    if (!isNotFound(e)) env.logger.warn({ snapshot_id: copy.id, error: (e as Error).message }, 'could not delete the failed snapshot; the next attempt will');
  });
  // Cinder's scheduler turns a snapshot down for want of room on the backend without a user message
  // (its create_snapshot sets 'error' and only notifies), and the volume manager's message for a driver
  // failure is the generic "Snapshot failed to create.": nothing tells lack of space from other failures,
  // so this stays INTERNAL rather than RESOURCE_EXHAUSTED, and names both places to look.
  const why =
    kind === 'snapshot'
      ? `'openstack volume message list' and the cinder-volume log say why; Cinder's scheduler leaves no message when no backend has room for a snapshot, so check the backend's free capacity too`
      : `'openstack volume message list' says why`;
  throw internal(`Cinder could not make ${kind} ${copy.id} of volume ${copy.volumeId} (status '${copy.status}'; ${why}). It was deleted; the snapshotter retries`);
}

interface Found {
  kind: Kind;
  copy: Copy;
}

/** The snapshot or backup with this Cinder ID, or undefined. */
async function findCopy(cloud: Cloud, id: string, op: Op): Promise<Found | undefined> {
  const bs = cloud.blockStorage;
  try {
    return { kind: 'snapshot', copy: await bs.getSnapshot(id, op) };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    return { kind: 'backup', copy: await bs.getBackup(id, op) };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return undefined;
}

const STILL_CREATING: readonly string[] = [...WAIT.snapshotAvailable.transient, ...WAIT.backupAvailable.transient];

export async function deleteSnapshot(env: ControllerEnv, req: DeleteSnapshotRequest__Output, op: Op): Promise<DeleteSnapshotResponse> {
  const csiId = requireId(req.snapshot_id, 'snapshot_id');
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const found = await findCopy(cloud, id, op);
  if (!found) return {};
  const { kind, copy } = found;
  const bs = cloud.blockStorage;
  if (STILL_CREATING.includes(copy.status)) await settle(cloud, kind, id, op);
  if (copy.status !== 'deleting') {
    await (kind === 'backup' ? bs.deleteBackup(id, op) : bs.deleteSnapshot(id, op)).catch(async (err) => {
      if (isNotFound(err)) return;
      if (isOpenStackError(err, 'bad_request')) throw await refusedDelete(cloud, found, csiId, err.message, op);
      throw translate(err, { conflict: (m) => aborted(`Cinder cannot delete ${kind} ${csiId} right now: ${m}; the CO retries`) });
    });
  }
  const waitOpts = { kind: `${kind}:delete`, signal: op.signal, deadline: op.deadline };
  try {
    if (kind === 'backup') await cloud.waiter.backup(id, WAIT.backupDeleted, waitOpts);
    else await cloud.waiter.snapshot(id, WAIT.snapshotDeleted, waitOpts);
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    if (kind === 'snapshot' && err.lastState === 'available') {
      // Cinder's volume manager on SnapshotIsBusy: the backend refused, the snapshot is put back, and a message says so.
      const reason = await failureMessage(env, cloud, id, op);
      throw failedPrecondition(
        `Cinder's backend refused to delete snapshot ${csiId} as busy and put it back to 'available'` +
          `${reason ? ` (Cinder says: ${reason.userMessage})` : ''}; volumes made from it may still depend on it; the CO retries`,
      );
    }
    throw internal(`Cinder failed to delete ${kind} ${csiId} (status '${err.lastState}'); check the backend or backup service, then reset its state; the CO retries`);
  }
  return {};
}

/**
 * What to tell the CO when Cinder refused a delete (400): Cinder deletes only an 'available' or
 * 'error' copy that nothing builds on, and what to do depends on the copy as it is now. ABORTED
 * while one of Cinder's own operations holds it (a backup taken from the snapshot, a restore from
 * it): the spec's "operation pending for snapshot", over by itself. FAILED_PRECONDITION for what
 * needs someone: incremental backups that build on it (the spec's "snapshot in use"), or an
 * earlier delete that failed, which Cinder never retries until its state is reset.
 */
async function refusedDelete(cloud: Cloud, found: Found, csiId: string, cinderSays: string, op: Op): Promise<CsiError> {
  const { kind } = found;
  const refused = `Cinder refused to delete ${kind} ${csiId}: ${cinderSays}`;
  const copy = (await findCopy(cloud, found.copy.id, op).catch(() => undefined))?.copy ?? found.copy;
  if (copy.status === 'error_deleting') {
    return failedPrecondition(
      `an earlier delete of ${kind} ${csiId} failed in Cinder (status 'error_deleting'); find why, then ` +
        `'openstack volume ${kind} set --state error ${copy.id}' and the CO retries the delete`,
    );
  }
  if (copy.status === 'available' && 'hasDependentBackups' in copy && copy.hasDependentBackups) {
    return failedPrecondition(`${refused}; incremental backups build on it: delete their VolumeSnapshots first, and the CO retries`);
  }
  if (copy.status !== 'available' && !isErrorState(copy.status)) {
    const using = copy.status === 'backing-up' ? 'a backup is being taken from it' : copy.status === 'restoring' ? 'a volume is being restored from it' : 'Cinder is working on it';
    return aborted(`${refused}; it is '${copy.status}' (${using}), and the CO retries when Cinder has finished`);
  }
  return failedPrecondition(refused);
}

/**
 * Cinder deletes a snapshot or backup only once it is no longer being made:
 * wait for that (an error state is fine too, it can be deleted).
 */
async function settle(cloud: Cloud, kind: Kind, id: string, op: Op): Promise<void> {
  const waitOpts = { kind: `${kind}:create`, signal: op.signal, deadline: op.deadline };
  try {
    if (kind === 'backup') await cloud.waiter.backup(id, WAIT.backupAvailable, waitOpts);
    else await cloud.waiter.snapshot(id, WAIT.snapshotAvailable, waitOpts);
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
  }
}

export async function getSnapshot(env: ControllerEnv, req: GetSnapshotRequest__Output, op: Op): Promise<GetSnapshotResponse> {
  const csiId = requireId(req.snapshot_id, 'snapshot_id');
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const found = await findCopy(cloud, id, op);
  if (!found) throw notFound(`snapshot ${csiId} does not exist in cloud '${cloud.name}' (neither as a Cinder snapshot nor as a backup)`);
  return { snapshot: csiSnapshot(env, cloud.name, found.copy) };
}

export async function listSnapshots(env: ControllerEnv, req: ListSnapshotsRequest__Output, op: Op): Promise<ListSnapshotsResponse> {
  if (req.max_entries < 0) throw invalidArgument(`max_entries must not be negative, not ${req.max_entries}`);
  // Optional filters; one that names nothing lists nothing, one that cannot be an ID is refused.
  if (req.snapshot_id) requireId(req.snapshot_id, 'snapshot_id');
  if (req.source_volume_id) requireId(req.source_volume_id, 'source_volume_id');
  if (req.snapshot_id) return { entries: (await oneSnapshot(env, req, op)).map((snapshot) => ({ snapshot })), next_token: '' };

  const key = env.settings.listTokenKey;
  const start = req.starting_token ? decodeListToken(req.starting_token, 'snapshots', key) : undefined;
  // With a source volume, only its cloud can hold its snapshots.
  const source = req.source_volume_id ? locate(env.clouds, req.source_volume_id, req.secrets) : undefined;
  const cloudNames = source ? [source.cloud.name] : env.clouds.names;
  const segments: Segment<Copy>[] = cloudNames.flatMap((name): Segment<Copy>[] => {
    const bs = env.clouds.get(name)!.blockStorage;
    const volumeId = source?.id;
    return [
      { cloud: name, collection: 'snapshot', list: (q, o) => bs.listSnapshots({ ...q, volumeId }, o) },
      { cloud: name, collection: 'backup', list: (q, o) => bs.listBackups({ ...q, volumeId }, o) },
    ];
  });
  const limits = { limit: req.max_entries > 0 ? req.max_entries : Infinity, pageSize: env.settings.listPageSize, maxBytes: env.settings.listResponseBytes };
  // Cinder's volume filter is applied here too, in case a backend ignores it.
  const toEntry = (segment: Segment<Copy>, item: Copy): Entry | null =>
    (source && item.volumeId !== source.id) || notCutYet(segment.collection, item) ? null : { snapshot: csiSnapshot(env, segment.cloud, item) };
  const { entries, next } = await collectEntries(segments, start, limits, toEntry, listSnapshotsEntrySize, op);
  return { entries, next_token: next ? encodeListToken({ list: 'snapshots', ...next }, key) : '' };
}

/** The spec: ListSnapshots SHALL NOT list a snapshot being created and not cut yet (a Cinder snapshot still 'creating'). */
function notCutYet(collection: Segment<Copy>['collection'], item: Copy): boolean {
  return collection === 'snapshot' && item.status === 'creating';
}

/** ListSnapshots by snapshot_id: that one, or nothing. */
async function oneSnapshot(env: ControllerEnv, req: ListSnapshotsRequest__Output, op: Op): Promise<CsiSnapshot[]> {
  const { cloud, id } = locate(env.clouds, req.snapshot_id, req.secrets);
  const found = await findCopy(cloud, id, op);
  if (!found || notCutYet(found.kind, found.copy)) return [];
  if (req.source_volume_id) {
    const source = locate(env.clouds, req.source_volume_id, req.secrets);
    if (source.cloud.name !== cloud.name || source.id !== found.copy.volumeId) return [];
  }
  return [csiSnapshot(env, cloud.name, found.copy)];
}
