// The content source of a new volume: a snapshot, a volume to clone, or a
// backup (a VolumeSnapshot of `type: backup` whose snapshot ID is a Cinder
// backup ID, as with the Go plugin). It must exist in the same cloud and be
// ready.
import type { VolumeContentSource__Output } from '../gen/csi/v1/VolumeContentSource';
import type { Cloud } from '../openstack/types';
import { isNotFound } from '../openstack/errors';
import { invalidArgument, notFound, requireId, unavailable } from '../csi/errors';
import { locate } from './clouds';
import type { ControllerEnv, Op } from './env';

export interface ResolvedSource {
  kind: 'snapshot' | 'volume' | 'backup';
  /** The Cinder UUID. */
  id: string;
  /** GiB */
  size: number;
  /** The volume AZ the new volume should be in (Cinder clones and restores within the source's zone), when known. */
  zone?: string;
}

/**
 * States a source passes through and leaves by itself. An attach or a detach
 * counts: Kubernetes clones a PVC as soon as its last pod is gone, while Nova
 * may still be detaching it, and csi-provisioner retries INVALID_ARGUMENT
 * only every few minutes.
 */
const BUSY_STATES = [
  'creating',
  'reserved',
  'attaching',
  'detaching',
  'backing-up',
  'restoring',
  'restoring-backup',
  'downloading',
  'uploading',
  'extending',
  'retyping',
  'maintenance',
];

function notReady(what: string, status: string): Error {
  if (BUSY_STATES.includes(status)) return unavailable(`${what} is '${status}'; the new volume is created once it is available (the CO retries)`);
  // The spec's code for a source the plugin cannot create a volume from.
  return invalidArgument(`${what} is '${status}' and cannot be copied; use another source or repair it in Cinder`);
}

export interface ResolveOptions {
  /**
   * The volume of the request's name exists already (an earlier attempt made
   * it): the source is only compared with it, so its state does not matter.
   * It is busy while it is copied (a backup is 'restoring' all through its
   * restore), and the retry must answer with the volume, not wait for it.
   */
  forExisting: boolean;
}

/** The source a request names, checked before anything is asked of Cinder. */
export interface RequestedSource {
  kind: 'snapshot' | 'volume';
  /** The CSI ID. */
  id: string;
}

/**
 * The request's volume_content_source, or undefined for an empty volume. A
 * message that names neither a snapshot nor a volume is INVALID_ARGUMENT
 * (the spec: one of the type fields MUST be specified), never an empty
 * volume. On the wire that is an empty message: proto-loader decodes it as
 * {} with no `type`, where a set member, even empty, sets `type`.
 */
export function requestedSource(source: VolumeContentSource__Output | null | undefined): RequestedSource | undefined {
  if (!source) return undefined;
  const kind = source.type ?? (source.volume ? 'volume' : source.snapshot ? 'snapshot' : undefined);
  if (kind === 'volume') return { kind, id: requireId(source.volume?.volume_id, 'volume_content_source.volume.volume_id') };
  if (kind === 'snapshot') return { kind, id: requireId(source.snapshot?.snapshot_id, 'volume_content_source.snapshot.snapshot_id') };
  throw invalidArgument(
    'volume_content_source names neither a snapshot nor a volume; give snapshot.snapshot_id or volume.volume_id, or leave it out for an empty volume',
  );
}

export async function resolveSource(
  env: ControllerEnv,
  cloud: Cloud,
  source: RequestedSource | undefined,
  op: Op,
  opts: ResolveOptions,
): Promise<ResolvedSource | undefined> {
  if (!source) return undefined;
  if (source.kind === 'volume') return resolveVolume(env, cloud, source.id, op, opts);
  return resolveSnapshotOrBackup(env, cloud, source.id, op, opts);
}

function sameCloud(env: ControllerEnv, cloud: Cloud, csiId: string, what: string): string {
  const located = locate(env.clouds, csiId, { cloud: cloud.name });
  if (located.cloud.name !== cloud.name) {
    throw invalidArgument(`${what} ${csiId} is in cloud '${located.cloud.name}' but the new volume goes to cloud '${cloud.name}'; Cinder cannot copy between clouds`);
  }
  return located.id;
}

async function resolveVolume(env: ControllerEnv, cloud: Cloud, csiId: string, op: Op, opts: ResolveOptions): Promise<ResolvedSource> {
  const id = sameCloud(env, cloud, csiId, 'source volume');
  const volume = await cloud.blockStorage.getVolume(id, op).catch((err) => {
    throw isNotFound(err) ? notFound(`source volume ${csiId} does not exist`) : err;
  });
  if (!opts.forExisting && volume.status !== 'available' && volume.status !== 'in-use') throw notReady(`source volume ${csiId}`, volume.status);
  return { kind: 'volume', id, size: volume.size, zone: volume.availabilityZone || undefined };
}

async function resolveSnapshotOrBackup(env: ControllerEnv, cloud: Cloud, csiId: string, op: Op, opts: ResolveOptions): Promise<ResolvedSource> {
  const id = sameCloud(env, cloud, csiId, 'snapshot');
  const bs = cloud.blockStorage;
  try {
    const snapshot = await bs.getSnapshot(id, op);
    if (!opts.forExisting && snapshot.status !== 'available') throw notReady(`snapshot ${csiId}`, snapshot.status);
    // Cinder restores a snapshot in its volume's zone; the volume may be gone.
    const zone = await bs.getVolume(snapshot.volumeId, op).then(
      (v) => v.availabilityZone || undefined,
      (err) => {
        if (isNotFound(err)) return undefined;
        throw err;
      },
    );
    return { kind: 'snapshot', id, size: snapshot.size, zone };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const backup = await bs.getBackup(id, op).catch((err) => {
    throw isNotFound(err) ? notFound(`snapshot ${csiId} does not exist (neither as a Cinder snapshot nor as a backup)`) : err;
  });
  if (opts.forExisting) return { kind: 'backup', id, size: backup.size };
  if (backup.status !== 'available') throw notReady(`backup ${csiId}`, backup.status);
  const features = await bs.features(op);
  if (!features.volumeFromBackup) {
    throw invalidArgument(
      `restoring backup ${csiId} needs Cinder API microversion 3.47, but this cloud offers ${features.microversion ?? `v${features.apiVersion}`}; restore it with 'openstack volume backup restore' instead`,
    );
  }
  return { kind: 'backup', id, size: backup.size };
}
