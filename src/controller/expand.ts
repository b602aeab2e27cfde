// ControllerExpandVolume: extend in Cinder and wait for the new size.
// Extending an attached (in-use) volume needs Cinder microversion 3.42.
import type { ControllerExpandVolumeRequest__Output } from '../gen/csi/v1/ControllerExpandVolumeRequest';
import type { ControllerExpandVolumeResponse } from '../gen/csi/v1/ControllerExpandVolumeResponse';
import { isOpenStackError } from '../openstack/errors';
import type { Cloud } from '../openstack/types';
import { WAIT } from '../openstack/waiter';
import { aborted, failedPrecondition, internal, invalidArgument, notFound, outOfRange, requireField, requireId } from '../csi/errors';
import { isBlock } from './capabilities';
import { locate } from './clouds';
import { waitForVolume, type ControllerEnv, type Op } from './env';
import { failureMessage, isExtendMessage } from './messages';
import { rethrow } from './os-errors';
import { perVolumeLimit } from './quota';
import { gibToBytes, sizeForRange } from './size';
import { isErrorState, volumeInError } from './volume-state';

/** Cinder's refusal of an extend for the volume's status: "Volume <id> status must be '{'status': 'in-use'}' to extend, currently detaching." */
const EXTEND_REFUSED_STATUS = /to extend, currently ([\w-]+)/;

export async function expandVolume(env: ControllerEnv, req: ControllerExpandVolumeRequest__Output, op: Op): Promise<ControllerExpandVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const range = requireField(req.capacity_range, 'capacity_range');
  // The spec: at least one of the two MUST be set (for CreateVolume the whole range may be absent; not here).
  if (!Number(range.required_bytes) && !Number(range.limit_bytes)) {
    throw invalidArgument('capacity_range needs required_bytes or limit_bytes: the size to grow the volume to');
  }
  const size = sizeForRange(range);
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const bs = cloud.blockStorage;
  // A raw block device needs nothing from the node: the new size is there once Cinder has it.
  const answer = (gib: number): ControllerExpandVolumeResponse => ({ capacity_bytes: gibToBytes(gib), node_expansion_required: !isBlock(req.volume_capability) });

  let volume = await bs.getVolume(id, op).catch(rethrow({ not_found: () => notFound(`volume ${csiId} does not exist in cloud '${cloud.name}'`) }));
  const limit = Number(range.limit_bytes);
  const requireWithinLimit = (gib: number) => {
    if (limit > 0 && gibToBytes(gib) > limit) {
      throw outOfRange(`volume ${csiId} already has ${gib} GiB (${gibToBytes(gib)} bytes), more than limit_bytes ${limit}; volumes do not shrink`);
    }
  };
  requireWithinLimit(volume.size);
  if (volume.size >= size && volume.status !== 'extending') return answer(volume.size);

  if (volume.status === 'in-use') {
    const features = await bs.features(op);
    if (!features.inUseExtend) {
      throw failedPrecondition(
        `volume ${csiId} is attached and this cloud's Cinder API (${features.microversion ?? `v${features.apiVersion}`}) cannot extend attached volumes ` +
          `(needs microversion 3.42): scale the workload down so the volume is detached, and the resize proceeds`,
      );
    }
  } else if (isErrorState(volume.status)) {
    throw volumeInError(csiId, volume.status, 'extend');
  } else if (volume.status !== 'available' && volume.status !== 'extending') {
    throw aborted(`volume ${csiId} is '${volume.status}'; it can be extended when Cinder has finished`);
  }

  // Asked here, or an earlier attempt's extend found under way (its size is not known).
  const asked = volume.status !== 'extending';
  if (asked) {
    await bs.extendVolume(id, size, op).catch(
      rethrow({
        // OUT_OF_RANGE, the spec's code for a capacity the plugin cannot give, and a final one for csi-resizer:
        // nothing is under way, and a final code lets the user lower the PVC's request again (recovery from
        // expansion failure); the resizer still retries, slowly, in case the quota is raised.
        over_quota: (m) => perVolumeLimit(m, size) ?? outOfRange(`Cinder refused to extend volume ${csiId} to ${size} GiB: ${m}; free space in the project or raise its quota`),
        bad_request: (m) => {
          // Cinder checks the status again as it extends: an attach or a detach begun since the look above
          // (they are not ordered with an expand) passes, and FAILED_PRECONDITION could be final for csi-resizer.
          const now = EXTEND_REFUSED_STATUS.exec(m)?.[1];
          if (now && isErrorState(now)) return volumeInError(csiId, now, 'extend');
          if (now) return aborted(`volume ${csiId} is '${now}' now; it can be extended when Cinder has finished (the CO retries): ${m}`);
          return failedPrecondition(`Cinder refused to extend volume ${csiId} to ${size} GiB: ${m}`);
        },
      }),
    );
  }
  try {
    const done = await waitForVolume(
      cloud,
      id,
      {
        spec: WAIT.volumeExtended,
        kind: 'volume:extend',
        until: (v) => v.size >= size,
        // Cinder marks the volume 'extending' before it answers, so one no longer extending and still
        // smaller was not extended: the scheduler found no backend for the new size and put it back.
        failedIf: (v) => (v.status !== 'extending' && v.size < size ? `is '${v.status}' at ${v.size} GiB again` : null),
      },
      op,
    );
    if (!done) throw notFound(`volume ${csiId} was deleted while it was being extended`);
    volume = done;
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    if (err.lastState === 'available' || err.lastState === 'in-use') throw await notExtended(env, cloud, csiId, id, size, asked, op);
    throw internal(`Cinder failed to extend volume ${csiId} to ${size} GiB (status '${err.lastState}'); check its backend, reset the state and the CO retries`);
  }
  // An earlier attempt's extend, joined above, may have asked for more than this request allows.
  requireWithinLimit(volume.size);
  return answer(volume.size);
}

/** The error for an extend that ended without the new size: put back by Cinder's scheduler, or an earlier, smaller one. */
async function notExtended(env: ControllerEnv, cloud: Cloud, csiId: string, id: string, size: number, asked: boolean, op: Op) {
  if (!asked) return aborted(`an extend of volume ${csiId} under way from an earlier attempt ended below ${size} GiB; the CO retries and asks for ${size} GiB`);
  const reason = await failureMessage(env, cloud, id, op, isExtendMessage);
  // OUT_OF_RANGE for the same reason as a quota refusal (see expandVolume).
  return outOfRange(
    `Cinder did not extend volume ${csiId} to ${size} GiB${reason ? ` (Cinder says: ${reason.userMessage})` : ''}: ` +
      `no backend could take the new size (capacity, or the backend is down); free capacity on the backend, and the CO retries`,
  );
}
