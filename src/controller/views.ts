// Cinder objects as CSI messages: volumes, their status (published nodes,
// condition), snapshots and backups.
import type { Volume as CsiVolume } from '../gen/csi/v1/Volume';
import type { VolumeCondition } from '../gen/csi/v1/VolumeCondition';
import type { VolumeContentSource } from '../gen/csi/v1/VolumeContentSource';
import type { Snapshot as CsiSnapshot } from '../gen/csi/v1/Snapshot';
import type { Timestamp } from '../gen/google/protobuf/Timestamp';
import type { Backup, Snapshot, Volume } from '../openstack/types';
import { csiId } from './clouds';
import { backupInDescription, SOURCE_BACKUP_METADATA_KEY } from './params';
import type { ControllerEnv } from './env';
import { gibToBytes } from './size';
import { accessibleTopology } from './topology';

/** The content source a Cinder volume was made from, with CSI IDs. Backups count as snapshots (as in the Go plugin). */
export function contentSourceOf(env: ControllerEnv, cloudName: string, v: Volume): VolumeContentSource | null {
  const id = (uuid: string) => csiId(env.clouds, cloudName, uuid);
  if (v.snapshotId) return { type: 'snapshot', snapshot: { snapshot_id: id(v.snapshotId) } };
  const backupId = sourceBackupId(v);
  if (backupId) return { type: 'snapshot', snapshot: { snapshot_id: id(backupId) } };
  if (v.sourceVolumeId) return { type: 'volume', volume: { volume_id: id(v.sourceVolumeId) } };
  return null;
}

/**
 * The backup a volume was restored from: Cinder's backup_id where a cloud
 * reports one, else the backup its description names (volumeDescription:
 * the restore leaves it alone), else the driver's metadata key, for volumes
 * made before the description named the backup (the restore overwrites it,
 * and CreateVolume writes it again).
 */
export function sourceBackupId(v: Volume): string | null {
  return v.backupId ?? backupInDescription(v.description) ?? v.metadata[SOURCE_BACKUP_METADATA_KEY] ?? null;
}

/** volume_context key telling the node to grow the filesystem to its disk when it stages the volume (the Go plugin's key). */
export const RESIZE_REQUIRED_KEY = 'resizeRequired';

/**
 * The volume context, from what Cinder records of the volume alone, so that
 * CreateVolume, ListVolumes and ControllerGetVolume report the same (the
 * spec: a volume SHALL always report the same volume_context). A copy larger
 * than its source has the source's smaller filesystem, which the node must
 * grow; the volume does not say its source's size, and reading each source
 * would cost ListVolumes a request per volume and change the answer once the
 * source is deleted. So every volume made from a source asks for the growth,
 * which does nothing to a filesystem that fills its disk already.
 */
function volumeContextOf(source: VolumeContentSource | null): Record<string, string> {
  return source ? { [RESIZE_REQUIRED_KEY]: 'true' } : {};
}

export function csiVolume(env: ControllerEnv, cloudName: string, v: Volume): CsiVolume {
  const source = contentSourceOf(env, cloudName, v);
  return {
    volume_id: csiId(env.clouds, cloudName, v.id),
    capacity_bytes: gibToBytes(v.size),
    volume_context: volumeContextOf(source),
    content_source: source,
    accessible_topology: env.settings.topology ? accessibleTopology(v.availabilityZone, env.settings.azMap) : [],
  };
}

/** Node IDs (Nova server UUIDs) the volume is attached to. */
export function publishedNodeIds(v: Volume): string[] {
  return [...new Set(v.attachments.map((a) => a.serverId))].sort();
}

/**
 * Abnormal when Cinder reports an error state (error, error_extending,
 * error_restoring, ...) or a failed migration; the message says what to do.
 */
export function volumeCondition(v: Volume): VolumeCondition {
  if (v.status.startsWith('error')) {
    return {
      abnormal: true,
      message: `Cinder reports volume ${v.id} in status '${v.status}'; check the volume's backend and Cinder's messages ('openstack volume message list'), then reset its state or restore it from a snapshot`,
    };
  }
  if (v.migrationStatus === 'error') {
    return { abnormal: true, message: `the last migration (retype) of volume ${v.id} failed; check Cinder's messages and retry the retype` };
  }
  return { abnormal: false, message: `volume is ${v.status}` };
}

/** Milliseconds since the epoch of a Cinder time, '2024-01-02T03:04:05.000000' (UTC, no zone); NaN if unreadable. */
export function cinderTimeMs(t: string): number {
  const zoned = /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`;
  return Date.parse(zoned.replace(/(\.\d{3})\d+/, '$1'));
}

/** A Cinder time as a protobuf Timestamp, to the microsecond Cinder prints. */
export function timestampOf(created: string): Timestamp | null {
  if (!created) return null;
  const ms = cinderTimeMs(created);
  if (Number.isNaN(ms)) return null;
  const micros = /\.(\d+)/.exec(created)?.[1]?.padEnd(9, '0').slice(0, 9);
  return { seconds: Math.floor(ms / 1000), nanos: micros ? Number(micros) : (ms % 1000) * 1e6 };
}

export function csiSnapshot(env: ControllerEnv, cloudName: string, s: Snapshot | Backup): CsiSnapshot {
  return {
    snapshot_id: csiId(env.clouds, cloudName, s.id),
    source_volume_id: csiId(env.clouds, cloudName, s.volumeId),
    size_bytes: gibToBytes(s.size),
    creation_time: timestampOf(s.createdAt),
    ready_to_use: s.status === 'available',
  };
}
