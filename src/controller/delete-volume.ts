// DeleteVolume: an unknown ID is success (the volume is gone, as asked); an
// attached volume is FAILED_PRECONDITION; otherwise delete and wait until
// Cinder no longer lists it, so the CO never forgets a volume Cinder failed
// to delete.
import type { DeleteVolumeRequest__Output } from '../gen/csi/v1/DeleteVolumeRequest';
import type { DeleteVolumeResponse } from '../gen/csi/v1/DeleteVolumeResponse';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { aborted, failedPrecondition, internal, requireId } from '../csi/errors';
import { locate } from './clouds';
import { waitForVolume, type ControllerEnv, type Op } from './env';
import { translate } from './os-errors';
import { publishedNodeIds } from './views';

/** Statuses in which Cinder is still working on the volume: retry later. */
const BUSY = ['creating', 'downloading', 'uploading', 'extending', 'retyping', 'backing-up', 'restoring-backup', 'maintenance', 'awaiting-transfer'];
const ATTACHED = ['in-use', 'reserved', 'attaching', 'detaching'];

export async function deleteVolume(env: ControllerEnv, req: DeleteVolumeRequest__Output, op: Op): Promise<DeleteVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const bs = cloud.blockStorage;
  // Delete straight away: Cinder itself refuses (400/409) a volume that is
  // attached, busy or has snapshots, and only then is the volume read to
  // say which. An unknown ID is success (the volume is gone, as asked).
  const refusal = await bs.deleteVolume(id, op).then(
    () => undefined,
    (err) => {
      if (isNotFound(err)) return null;
      if (isOpenStackError(err, 'bad_request') || isOpenStackError(err, 'conflict')) return err;
      throw err;
    },
  );
  if (refusal === null) return {};
  if (refusal) {
    let volume;
    try {
      volume = await bs.getVolume(id, op);
    } catch (err) {
      // Deleted by someone else in the meantime: what we wanted.
      if (isNotFound(err)) return {};
      throw err;
    }
    if (volume.attachments.length > 0 || ATTACHED.includes(volume.status)) {
      const nodes = publishedNodeIds(volume);
      throw failedPrecondition(
        `volume ${csiId} is ${volume.status}${nodes.length ? ` on server(s) ${nodes.join(', ')}` : ''}; it can be deleted once it is unpublished (detached)`,
      );
    }
    if (BUSY.includes(volume.status)) throw aborted(`volume ${csiId} is '${volume.status}'; it can be deleted when Cinder has finished`);
    // Cinder deletes a volume in 'error' but not one an earlier delete left in error_deleting.
    if (volume.status === 'error_deleting') {
      throw failedPrecondition(
        `an earlier delete of volume ${csiId} failed in Cinder's backend (status 'error_deleting'); find why, then ` +
          `'openstack volume set --state error ${id}' and the CO retries the delete`,
      );
    }
    // A delete already under way: wait for it like our own.
    if (volume.status !== 'deleting') {
      throw translate(refusal, {
        // Cinder answers 400 for a volume with snapshots, 409 for a state race.
        bad_request: (m) => failedPrecondition(`Cinder refused to delete volume ${csiId}: ${m}; delete its VolumeSnapshots first`),
        conflict: (m) => aborted(`Cinder refused to delete volume ${csiId} now: ${m}; the CO retries`),
      });
    }
  }
  try {
    await waitForVolume(cloud, id, { spec: WAIT.volumeDeleted, kind: 'volume:delete' }, op);
  } catch (err) {
    if (isOpenStackError(err, 'state') && err.lastState === 'available') {
      // Cinder's volume manager on VolumeIsBusy: the backend refused, and the volume is put back.
      throw failedPrecondition(
        `Cinder's backend refused to delete volume ${csiId} as busy and put it back to 'available' ` +
          `(on Ceph RBD: a client still has it open, or clones depend on it); the CO retries`,
      );
    }
    if (isOpenStackError(err, 'state')) {
      throw internal(`Cinder failed to delete volume ${csiId} (status '${err.lastState}'); check its backend, reset the state to 'error' and the CO retries the delete`);
    }
    throw err;
  }
  return {};
}
