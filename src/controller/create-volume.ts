// CreateVolume: idempotent by name, looked up in Cinder itself, so a retry
// after a crash or a missed deadline finds the volume the first attempt made
// instead of making a second one. (Concurrent retries inside this process are
// joined by the in-flight registry before they get here; a create that lands
// after the look-up is same-name.ts's.)
import type { CreateVolumeRequest__Output } from '../gen/csi/v1/CreateVolumeRequest';
import type { CreateVolumeResponse } from '../gen/csi/v1/CreateVolumeResponse';
import { NO_BACKEND_EVENT_ID, type CallOptions, type Cloud, type Volume } from '../openstack/types';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { alreadyExists, internal, invalidArgument, outOfRange, requireField, requireName, resourceExhausted, unavailable } from '../csi/errors';
import { capabilitiesProblem, isMultiNode, isMultiattachType } from './capabilities';
import { failureMessage } from './messages';
import { cloudForSecrets } from './clouds';
import { UNINTERRUPTED, waitForVolume, type ControllerEnv, type Op } from './env';
import { rethrow } from './os-errors';
import { perVolumeLimit, quotaAdvice } from './quota';
import { oneVolumeNamed } from './same-name';
import { CLUSTER_METADATA_KEY, ownedMetadata, parseMutableParams, parseVolumeParams, SOURCE_BACKUP_METADATA_KEY, volumeDescription } from './params';
import { fitsRange, gibToBytes, sizeForRange } from './size';
import { requestedSource, resolveSource, type ResolvedSource } from './source';
import { chooseVolumeZone, zoneMismatch } from './topology';
import { csiVolume, sourceBackupId } from './views';
import { requireVolumeType } from './volume-types';

/**
 * Cinder's refusals of a source in the wrong state (its create flow's
 * InvalidSnapshot and InvalidVolume: "Originating snapshot status must be one
 * of available values", "Unable to create a volume from an originating source
 * volume when its status is not one of available, in-use values").
 */
const SOURCE_BUSY = /originating (snapshot|source volume)/i;

export async function createVolume(env: ControllerEnv, req: CreateVolumeRequest__Output, op: Op): Promise<CreateVolumeResponse> {
  const name = requireName(req.name, 'name');
  const caps = requireField(req.volume_capabilities, 'volume_capabilities');
  const params = parseVolumeParams(req.parameters);
  const mutable = parseMutableParams(req.mutable_parameters);
  const requested = requestedSource(req.volume_content_source);
  const cloud = cloudForSecrets(env.clouds, req.secrets);
  const bs = cloud.blockStorage;
  let size = sizeForRange(req.capacity_range);

  // Access modes: multi-node modes need a multiattach volume type.
  const typeName = mutable.volumeType ?? params.volumeType ?? env.settings.defaultVolumeType;
  const type = typeName ? await requireVolumeType(cloud, typeName, 'the StorageClass (or driver default)', op) : undefined;
  if (!type && caps.some(isMultiNode)) {
    throw invalidArgument(`multi-node access modes need a Cinder volume type with multiattach="<is> True": set the StorageClass parameter 'type'`);
  }
  // Unknown when Cinder hides the type's extra specs from this user (before Xena): the volume made tells.
  const multiattachType = type ? isMultiattachType(type) : false;
  const problem = capabilitiesProblem(caps, multiattachType ?? true);
  if (problem) throw invalidArgument(problem);

  // The name first: a retry must find the volume an earlier attempt made even while its source is busy
  // making it (a backup is 'restoring' throughout its restore), instead of being told to wait for the source.
  let volume = await oneVolumeNamed(env, cloud, name, op);
  const made = !volume;
  const source = await resolveSource(env, cloud, requested, op, { forExisting: !made });
  if (source) {
    if (size < source.size) {
      if (Number(req.capacity_range?.required_bytes ?? 0) > 0) {
        throw outOfRange(`the requested ${size} GiB is smaller than the source's ${source.size} GiB; request at least ${gibToBytes(source.size)} bytes`);
      }
      size = sizeForRange({ required_bytes: gibToBytes(source.size), limit_bytes: Number(req.capacity_range?.limit_bytes ?? 0) });
    }
  }

  const fixedZone = params.availability
    ? { zone: params.availability, why: `the StorageClass parameter availability=${params.availability}` }
    : source?.zone
      ? { zone: source.zone, why: `the ${source.kind} ${source.id} (Cinder copies within its zone)` }
      : undefined;
  const zone = env.settings.topology
    ? chooseVolumeZone(req.accessibility_requirements, fixedZone, env.settings.azMap)
    : params.availability;

  /** Why the volume's zone does not serve this request (the StorageClass's availability, the requisite zones), or null. */
  const placementProblem = (v: Volume): string | null =>
    (params.availability && v.availabilityZone !== params.availability
      ? `is in availability zone '${v.availabilityZone}', not in '${params.availability}' (the StorageClass's availability)`
      : null) ?? (env.settings.topology ? zoneMismatch(v.availabilityZone, req.accessibility_requirements, env.settings.azMap) : null);

  if (volume) {
    // The spec: the same name is OK only when the volume is compatible and accessible from accessibility_requirements.
    const mismatch = incompatibility(volume, { size: req.capacity_range, source, typeName: type?.name, typeId: type?.id }) ?? placementProblem(volume);
    if (mismatch) throw alreadyExists(`volume '${name}' already exists (${volume.id}) but ${mismatch}`);
    env.logger.debug({ volume_id: volume.id, name }, 'CreateVolume found the volume of this name');
  } else {
    volume = await bs
      .createVolume(
        {
          name,
          size,
          description: volumeDescription(source?.kind === 'backup' ? source.id : undefined),
          volumeType: type?.name,
          availabilityZone: zone,
          metadata: {
            ...ownedMetadata(env.settings.clusterId, params.metadata),
            ...(source?.kind === 'backup' ? { [SOURCE_BACKUP_METADATA_KEY]: source.id } : {}),
          },
          snapshotId: source?.kind === 'snapshot' ? source.id : undefined,
          sourceVolumeId: source?.kind === 'volume' ? source.id : undefined,
          backupId: source?.kind === 'backup' ? source.id : undefined,
        },
        UNINTERRUPTED,
      )
      .catch(
        rethrow({
          over_quota: (m) => perVolumeLimit(m, size) ?? resourceExhausted(`Cinder refused the ${size} GiB volume: ${m}; ${quotaAdvice(m)}`),
          bad_request: (m) => {
            // The source moved on since it was looked at (an attach, a detach, a backup began): it passes.
            if (SOURCE_BUSY.test(m)) {
              return unavailable(`Cinder cannot copy the source right now: ${m}; the new volume is created once the source is available (the CO retries)`);
            }
            // A zone taken from the node's topology that Cinder does not have: another node may do.
            if (zone !== undefined && !fixedZone && /availability.?zone/i.test(m)) {
              return resourceExhausted(`Cinder refused availability zone '${zone}' (from the node's topology): ${m}; map the node's zone with the driver's az_map setting (driver.controller.az_map)`);
            }
            return invalidArgument(`Cinder refused the volume: ${m}; check the StorageClass parameters (type, availability) and the driver's az_map setting (driver.controller.az_map)`);
          },
        }),
      );
  }
  volume = await awaitAvailable(env, cloud, volume, source, op);
  // Cinder may put a volume elsewhere than asked (allow_availability_zone_fallback, a type's
  // RESKEY:availability_zones): the first answer must agree with what a retry would find.
  const misplaced = made ? placementProblem(volume) : null;
  if (misplaced) {
    await discard(env, cloud, volume.id, 'it is in a zone the request cannot use', UNINTERRUPTED);
    throw resourceExhausted(`Cinder made volume ${volume.id} but it ${misplaced}; it was deleted (check Cinder's zone fallback and the volume type's zones)`);
  }
  if (source?.kind === 'backup' && volume.metadata[SOURCE_BACKUP_METADATA_KEY] !== source.id) {
    volume = await markRestored(env, cloud, volume, source.id, params.metadata);
  }
  if (multiattachType === undefined && caps.some(isMultiNode) && !volume.multiattach) {
    // One found by name is an earlier attempt of this very call (which ran out of time) when it carries this
    // cluster's mark and is attached nowhere: the provisioner never learnt its ID, so nobody else would delete it.
    const ours = made || (volume.metadata[CLUSTER_METADATA_KEY] === env.settings.clusterId && volume.attachments.length === 0);
    if (!ours) throw alreadyExists(`volume '${name}' already exists (${volume.id}) but is not multiattach, which multi-node access modes need`);
    await discard(env, cloud, volume.id, 'its type is not multiattach', UNINTERRUPTED);
    throw invalidArgument(
      `volume type '${type?.name}' is not multiattach, which multi-node access modes need (this cloud shows volume types' extra specs to admins only, ` +
        `so it showed on the volume made, ${volume.id}, which was deleted); use a type with multiattach="<is> True"`,
    );
  }

  // To be marked as answered (it may go into a PV), and the name looked at later: a create an
  // earlier controller left in Cinder's hands may land after the look-up above.
  env.sameNameChecks?.answer(cloud, name, volume);
  return { volume: csiVolume(env, cloud.name, volume) };
}

/**
 * Cinder's restore replaces the new volume's metadata with the one the
 * backed-up volume had (the backup drivers store it with the data), which
 * drops the keys CreateVolume wrote: the cluster's, the PVC's and the
 * backup's (which then names the backup the backed-up volume came from, if
 * any). Written again by whichever attempt finds the volume restored with
 * its backup key gone: the first attempt is abandoned at its caller's
 * deadline while a long restore runs, and only a retry sees the end. Which
 * backup it is a retry knows from the description (volumeDescription).
 */
async function markRestored(env: ControllerEnv, cloud: Cloud, volume: Volume, backupId: string, extra: Record<string, string>): Promise<Volume> {
  const metadata = { ...ownedMetadata(env.settings.clusterId, extra), [SOURCE_BACKUP_METADATA_KEY]: backupId };
  await cloud.blockStorage.setVolumeMetadata(volume.id, metadata, UNINTERRUPTED);
  return { ...volume, metadata: { ...volume.metadata, ...metadata } };
}

/** Delete a volume this call made and cannot answer with; a failure is logged (the next attempt finds it by name). */
async function discard(env: ControllerEnv, cloud: Cloud, id: string, why: string, op: CallOptions): Promise<void> {
  await cloud.blockStorage.deleteVolume(id, op).catch((err: unknown) => {
    if (!isNotFound(err)) env.logger.warn({ volume_id: id, why, error: (err as Error).message }, 'could not delete a volume CreateVolume cannot answer with');
  });
}

interface Wanted {
  size: Parameters<typeof fitsRange>[1];
  source: ResolvedSource | undefined;
  typeName?: string;
  typeId?: string;
}

/** Why an existing volume does not match the request, or null when it does. */
function incompatibility(v: Volume, wanted: Wanted): string | null {
  if (!fitsRange(v.size, wanted.size)) return `has ${v.size} GiB, outside the requested capacity range`;
  const src = wanted.source;
  const backupId = sourceBackupId(v);
  const has = v.snapshotId ? `snapshot ${v.snapshotId}` : v.sourceVolumeId ? `volume ${v.sourceVolumeId}` : backupId ? `backup ${backupId}` : 'no source';
  if (!src) {
    if (v.snapshotId || v.sourceVolumeId || backupId) return `was made from ${has}, not empty`;
  } else if (src.kind === 'snapshot' && v.snapshotId !== src.id) {
    return `was made from ${has}, not snapshot ${src.id}`;
  } else if (src.kind === 'volume' && v.sourceVolumeId !== src.id) {
    return `was made from ${has}, not volume ${src.id}`;
  } else if (src.kind === 'backup' && (v.snapshotId || v.sourceVolumeId || (backupId !== null && backupId !== src.id))) {
    // The description names the backup whatever the restore did to the metadata (volumeDescription). A
    // volume made before it did has only the metadata key, which a restore may have dropped: unmarked matches.
    return `was made from ${has}, not backup ${src.id}`;
  }
  if (wanted.typeName && v.volumeType && v.volumeType !== wanted.typeName && v.volumeType !== wanted.typeId) {
    return `has volume type '${v.volumeType}', not '${wanted.typeName}'`;
  }
  return null;
}

/**
 * Wait until the volume is available. A volume that ends in an error state
 * is deleted (so the retry starts clean) and the call fails with the reason.
 * A volume found by name that is already past creation (in-use, extending,
 * ...) is returned as it is: only an error state ever leads to a delete.
 */
async function awaitAvailable(env: ControllerEnv, cloud: Cloud, volume: Volume, source: ResolvedSource | undefined, op: Op): Promise<Volume> {
  const bs = cloud.blockStorage;
  const creating = (WAIT.volumeAvailable.transient as readonly string[]).includes(volume.status);
  if (!creating && !volume.status.startsWith('error')) return volume;
  let failedState = volume.status;
  if (creating) {
    try {
      const kind = source ? `volume:create-from-${source.kind}` : 'volume:create';
      const ready = await waitForVolume(cloud, volume.id, { spec: WAIT.volumeAvailable, kind }, op);
      if (ready) return ready;
    } catch (err) {
      if (!isOpenStackError(err, 'state')) throw err;
      failedState = err.lastState ?? 'unknown';
    }
    if (!failedState.startsWith('error')) {
      // Not a failure of the create: it disappeared, or moved on (attached already).
      return bs.getVolume(volume.id, op).catch(
        rethrow({ not_found: () => internal(`volume ${volume.id} was deleted while it was being created; the CO retries`) }),
      );
    }
  }
  // Deleted first, whatever else happens (the caller's deadline may be near); Cinder keeps its
  // messages about a volume after the volume is gone, so why it failed is read afterwards.
  await discard(env, cloud, volume.id, 'it failed in Cinder', op);
  const reason = await failureMessage(env, cloud, volume.id, op);
  if (reason?.eventId === NO_BACKEND_EVENT_ID) {
    // CSI's answer for "no room to provision": RESOURCE_EXHAUSTED, which the provisioner reports and retries.
    throw resourceExhausted(
      `Cinder could not place volume ${volume.id} (${volume.size} GiB${volume.volumeType ? `, type ${volume.volumeType}` : ''}` +
        `${volume.availabilityZone ? `, zone ${volume.availabilityZone}` : ''}): ${reason.userMessage} ` +
        `No backend accepts it (capacity, volume type or zone): free capacity on the backend, or ask for another type or zone. The volume was deleted`,
    );
  }
  throw internal(
    `Cinder could not create volume ${volume.id}: it went to '${failedState}'` +
      (reason
        ? ` (Cinder says: ${reason.userMessage})`
        : ` (usually no backend had room, or the ${source ? `${source.kind} copy` : 'backend'} failed; 'openstack volume message list' says why)`) +
      `. The volume was deleted; the CO retries`,
  );
}
