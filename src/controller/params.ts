// StorageClass, VolumeSnapshotClass and VolumeAttributesClass parameters.
//
// StorageClass `parameters` (CreateVolume, GetCapacity, ValidateVolumeCapabilities):
//
// | key                              | value                           | effect |
// | -------------------------------- | ------------------------------- | ------ |
// | `type`                           | Cinder volume type name         | The volume's type. Default: the driver's `defaultVolumeType`, else Cinder's default type. Multi-node access modes need a type with `multiattach="<is> True"`. |
// | `availability`                   | Cinder availability zone        | Create the volume in this zone, whatever the pod's topology says (it must still be reachable from the requisite zones). |
// | `appendVolumeMetadata`           | JSON object of strings          | Extra Cinder metadata on every volume of the class (as in the Go plugin). The cluster key may be overridden; other reserved keys are kept. |
// | `csi.storage.k8s.io/pvc/name` ...| set by the external-provisioner | Every `csi.storage.k8s.io/*` key (with `--extra-create-metadata`: PVC name and namespace, PV name) is stored as volume metadata. |
// | `fsType` (any case)              | filesystem                      | The in-tree plugin's key, still common in StorageClasses. The external-provisioner reads it (deprecated) into the capability's fs_type and passes it on unchanged, so it is accepted and not read again here. |
//
// VolumeAttributesClass `parameters` (CreateVolume mutable_parameters, ControllerModifyVolume):
//
// | key    | value            | effect |
// | ------ | ---------------- | ------ |
// | `type` | Cinder volume type name | The volume's type. ControllerModifyVolume retypes with migration_policy on-demand. |
//
// VolumeSnapshotClass `parameters` (CreateSnapshot):
//
// | key                                   | value                   | effect |
// | ------------------------------------- | ----------------------- | ------ |
// | `type`                                | `snapshot` (default) or `backup` | A Cinder snapshot (fast, on the volume's backend) or a Cinder backup (a copy in the backup service, survives the backend; restores need microversion 3.47). |
// | `force-create`                        | `true` / `false` (default false) | Take the snapshot or backup of a volume that is attached (in-use). |
// | `incremental`                         | `true` / `false` (default false) | Backups only: an incremental backup on top of the volume's last full one. |
// | `availability`                        | availability zone       | Backups only: the backup service's zone (microversion 3.51; refused below). |
// | `backup-max-duration-seconds-per-gb`  | integer                 | Accepted for compatibility with the Go plugin; not used: a backup's CreateSnapshot answers once Cinder accepts it and reports ready_to_use when the upload is done. |
// | `csi.storage.k8s.io/volumesnapshot/name` ... | set by the external-snapshotter | Every `csi.storage.k8s.io/*` key (with `--extra-create-metadata`) is stored as snapshot or backup metadata. |
//
// Any other key is INVALID_ARGUMENT naming it: a typo in a class must not
// silently make volumes of the wrong kind.
import { SUPPORTED_FILESYSTEMS } from '../csi/constants';
import { invalidArgument } from '../csi/errors';

/** Metadata key carrying the cluster ID, the same key the Go plugin uses. */
export const CLUSTER_METADATA_KEY = 'cinder.csi.openstack.org/cluster';

/**
 * Metadata key set on a volume once CreateVolume has answered with it; its
 * value is the name it was answered for (a restore copies another volume's
 * metadata, whose mark then names another name). Such a volume may be in a
 * PersistentVolume: it is never deleted as a leftover (same-name.ts).
 */
export const ANSWERED_METADATA_KEY = 'cinder.csi.openstack.org/answered';

/**
 * Metadata key naming the backup a volume was restored from. Cinder's volume
 * record has snapshot_id and source_volid but no backup_id, and the
 * external-provisioner deletes a volume made for a PVC with a data source when
 * CreateVolume reports no content_source. A restore overwrites this key, so
 * the driver reads the volume's description first (volumeDescription);
 * volumes made before the description named the backup have only the key.
 */
export const SOURCE_BACKUP_METADATA_KEY = 'cinder.csi.openstack.org/source-backup';

const DESCRIPTION = 'Created by cinder-csi';
const FROM_BACKUP = ' from backup ';

/**
 * The description CreateVolume gives a volume; one restored from a backup
 * names it. Cinder's restore replaces the new volume's metadata with the
 * backed-up volume's, SOURCE_BACKUP_METADATA_KEY among it, which then names
 * the backup that volume was restored from, if any. It leaves the
 * description (and name) of a volume that has a name: only one without, or
 * with the 'restore_backup_<id>' name a restore gives the volume it makes,
 * takes the backed-up volume's (the backup drivers' _restore_vol_base_meta).
 * So the description tells the backup at every moment, and a retry that
 * finds the volume after the restore knows it for its own.
 */
export function volumeDescription(backupId?: string): string {
  return backupId ? `${DESCRIPTION}${FROM_BACKUP}${backupId}` : DESCRIPTION;
}

/** The backup a description of volumeDescription names, or null. */
export function backupInDescription(description: string): string | null {
  return description.startsWith(DESCRIPTION + FROM_BACKUP) ? description.slice(DESCRIPTION.length + FROM_BACKUP.length) || null : null;
}

/** Keys the Kubernetes sidecars add; they become metadata. */
const SIDECAR_PREFIX = 'csi.storage.k8s.io/';

export interface VolumeParams {
  volumeType?: string;
  availability?: string;
  /** Metadata to store on the volume besides the cluster ID. */
  metadata: Record<string, string>;
}

export interface SnapshotParams {
  kind: 'snapshot' | 'backup';
  force: boolean;
  incremental: boolean;
  availability?: string;
  metadata: Record<string, string>;
}

export interface MutableParams {
  volumeType?: string;
}

const VOLUME_KEYS = ['type', 'availability', 'appendVolumeMetadata'];
const SNAPSHOT_KEYS = ['type', 'force-create', 'incremental', 'availability', 'backup-max-duration-seconds-per-gb'];
const MUTABLE_KEYS = ['type'];

/**
 * The external-provisioner takes a StorageClass key spelled `fstype` in any
 * case as the deprecated form of `csi.storage.k8s.io/fstype`, but unlike the
 * prefixed key it leaves it in the parameters it sends.
 */
const LEGACY_FSTYPE_KEY = 'fstype';

function rejectUnknown(params: Record<string, string>, known: readonly string[], where: string, ignored: readonly string[] = []): void {
  for (const key of Object.keys(params)) {
    if (known.includes(key) || key.startsWith(SIDECAR_PREFIX) || ignored.includes(key.toLowerCase())) continue;
    const supported = [...known, ...(ignored.includes(LEGACY_FSTYPE_KEY) ? ['fsType'] : [])];
    throw invalidArgument(
      `unknown ${where} parameter '${key}'; supported: ${supported.map((k) => `'${k}'`).join(', ')} and the sidecars' '${SIDECAR_PREFIX}*' keys`,
    );
  }
}

/**
 * The filesystem keys are the provisioner's to read (into the capability's
 * fs_type, which is checked there), but a value no node can make is refused
 * here too, for callers that send the class's parameters as they are.
 */
function checkFsTypeKeys(params: Record<string, string>, where: string): void {
  for (const [key, value] of Object.entries(params)) {
    if (key.toLowerCase() !== LEGACY_FSTYPE_KEY && key !== `${SIDECAR_PREFIX}fstype`) continue;
    if (value.trim() !== '' && !(SUPPORTED_FILESYSTEMS as readonly string[]).includes(value.trim())) {
      throw invalidArgument(`${where} parameter '${key}' is ${JSON.stringify(value)}: the node plugin makes ${SUPPORTED_FILESYSTEMS.join(', ')}`);
    }
  }
}

function nonEmpty(params: Record<string, string>, key: string, where: string): string | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (value.trim() === '') throw invalidArgument(`${where} parameter '${key}' is empty; remove it or give a value`);
  return value.trim();
}

export function parseBool(params: Record<string, string>, key: string, where: string): boolean {
  const value = params[key];
  if (value === undefined || value === '') return false;
  const lower = value.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalidArgument(`${where} parameter '${key}' must be 'true' or 'false', not '${value}'`);
}

function sidecarMetadata(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith(SIDECAR_PREFIX)) out[key] = value;
  }
  return out;
}

/** The JSON object of `appendVolumeMetadata`, merged under the sidecars' keys. */
function appendedMetadata(json: string | undefined, key: string, where: string): Record<string, string> {
  if (json === undefined || json.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw invalidArgument(`${where} parameter '${key}' must be a JSON object of strings, e.g. {"team":"storage"}; it is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidArgument(`${where} parameter '${key}' must be a JSON object of strings, e.g. {"team":"storage"}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw invalidArgument(`${where} parameter '${key}': the value of '${k}' must be a string`);
    out[k] = v;
  }
  return out;
}

export function parseVolumeParams(params: Record<string, string> | undefined): VolumeParams {
  const p = params ?? {};
  const where = 'StorageClass';
  rejectUnknown(p, VOLUME_KEYS, where, [LEGACY_FSTYPE_KEY]);
  checkFsTypeKeys(p, where);
  return {
    volumeType: nonEmpty(p, 'type', where),
    availability: nonEmpty(p, 'availability', where),
    // The sidecars' keys win over appended ones: they describe this very PVC.
    metadata: { ...appendedMetadata(p.appendVolumeMetadata, 'appendVolumeMetadata', where), ...sidecarMetadata(p) },
  };
}

export function parseMutableParams(params: Record<string, string> | undefined): MutableParams {
  const p = params ?? {};
  const where = 'VolumeAttributesClass';
  for (const key of Object.keys(p)) {
    // csi-resizer's --extra-modify-metadata adds the PVC's and PV's names under the sidecars' prefix.
    if (key.startsWith(SIDECAR_PREFIX)) continue;
    if (!MUTABLE_KEYS.includes(key)) {
      throw invalidArgument(`unknown ${where} parameter '${key}'; the only mutable parameter is 'type' (the Cinder volume type)`);
    }
  }
  return { volumeType: nonEmpty(p, 'type', where) };
}

export function parseSnapshotParams(params: Record<string, string> | undefined): SnapshotParams {
  const p = params ?? {};
  const where = 'VolumeSnapshotClass';
  rejectUnknown(p, SNAPSHOT_KEYS, where);
  const kind = nonEmpty(p, 'type', where) ?? 'snapshot';
  if (kind !== 'snapshot' && kind !== 'backup') {
    throw invalidArgument(`${where} parameter 'type' must be 'snapshot' or 'backup', not '${kind}'`);
  }
  const incremental = parseBool(p, 'incremental', where);
  const availability = nonEmpty(p, 'availability', where);
  if (kind === 'snapshot' && (incremental || availability !== undefined)) {
    throw invalidArgument(`${where} parameters 'incremental' and 'availability' apply only to type 'backup'`);
  }
  const maxDuration = p['backup-max-duration-seconds-per-gb'];
  if (maxDuration !== undefined && !/^\d+$/.test(maxDuration.trim())) {
    throw invalidArgument(`${where} parameter 'backup-max-duration-seconds-per-gb' must be a whole number of seconds`);
  }
  return { kind, force: parseBool(p, 'force-create', where), incremental, availability, metadata: sidecarMetadata(p) };
}

/** The metadata we put on a new volume, snapshot or backup. */
export function ownedMetadata(clusterId: string, extra: Record<string, string>): Record<string, string> {
  // The cluster key may be overridden through appendVolumeMetadata (as in the
  // Go plugin), so it goes first.
  return { [CLUSTER_METADATA_KEY]: clusterId, ...extra };
}
