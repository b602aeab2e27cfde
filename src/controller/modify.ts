// ControllerModifyVolume: the mutable parameter `type` retypes the volume,
// letting Cinder migrate it to another backend when it must (on-demand).
import type { ControllerModifyVolumeRequest__Output } from '../gen/csi/v1/ControllerModifyVolumeRequest';
import type { ControllerModifyVolumeResponse } from '../gen/csi/v1/ControllerModifyVolumeResponse';
import { isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { aborted, failedPrecondition, internal, notFound, requireId, resourceExhausted, type CsiError } from '../csi/errors';
import { locate } from './clouds';
import { waitForVolume, type ControllerEnv, type Op } from './env';
import { rethrow } from './os-errors';
import { parseMutableParams } from './params';
import { isType, requireVolumeType } from './volume-types';
import { isErrorState, volumeInError } from './volume-state';

export async function modifyVolume(env: ControllerEnv, req: ControllerModifyVolumeRequest__Output, op: Op): Promise<ControllerModifyVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const wanted = parseMutableParams(req.mutable_parameters);
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const bs = cloud.blockStorage;
  const volume = await bs.getVolume(id, op).catch(rethrow({ not_found: () => notFound(`volume ${csiId} does not exist in cloud '${cloud.name}'`) }));
  // Nothing named, nothing to change. Kubernetes never sends that (a VolumeAttributesClass has at least
  // one parameter), but csi-sanity does by default and expects the volume checked and the call to succeed.
  if (!wanted.volumeType) return {};
  const type = await requireVolumeType(cloud, wanted.volumeType, 'the VolumeAttributesClass', op);
  if (isType(volume.volumeType, type) && volume.status !== 'retyping') return {};

  // Asked here, or a retype found under way from an earlier request (its new type is not shown).
  const asked = volume.status !== 'retyping';
  if (asked) {
    // An error state is final: waiting for it to pass, as ABORTED would have the CO do, never ends.
    if (isErrorState(volume.status)) throw volumeInError(csiId, volume.status, 'retype');
    if (volume.status !== 'available' && volume.status !== 'in-use') {
      throw aborted(`volume ${csiId} is '${volume.status}'; it can be retyped when Cinder has finished`);
    }
    await bs.retypeVolume(id, type.name, 'on-demand', op).catch(
      rethrow({
        over_quota: (m) => resourceExhausted(`Cinder refused to retype volume ${csiId} to '${type.name}': ${m}; raise the quota of that type`),
        bad_request: (m) => failedPrecondition(`Cinder refused to retype volume ${csiId} to '${type.name}': ${m}`),
      }),
    );
  }
  try {
    const done = await waitForVolume(cloud, id, { spec: WAIT.volumeRetyped, kind: 'volume:retype' }, op);
    if (!done) throw notFound(`volume ${csiId} was deleted while it was being retyped`);
    if (!isType(done.volumeType, type)) {
      // Nothing failed: that retype was another request's, which the CO abandoned for this one.
      if (!asked) throw earlierRetypeEnded(csiId, volume.volumeType, done.volumeType, type.name);
      throw internal(
        `Cinder did not retype volume ${csiId} to '${type.name}': it still has type '${done.volumeType}' (migration status '${done.migrationStatus ?? 'none'}'). ` +
          `Cinder's scheduler found no backend for that type or the migration failed; its scheduler and volume logs say which ` +
          `(it leaves no user message for this); the CO retries`,
      );
    }
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    throw internal(`Cinder failed to retype volume ${csiId}${asked ? ` to '${type.name}'` : ''} (status '${err.lastState}'); check its backend; the CO retries`);
  }
  return {};
}

/** ABORTED for a retype from an earlier request that ended on another type than this request's: the retry asks for its own. */
function earlierRetypeEnded(csiId: string, typeBefore: string | null, typeAfter: string | null, wanted: string): CsiError {
  const retry = `the CO retries, and the retry retypes it to '${wanted}'`;
  if (typeAfter !== typeBefore) return aborted(`a retype of volume ${csiId} to '${typeAfter}' from an earlier request was under way and has finished; ${retry}`);
  return aborted(`a retype of volume ${csiId} from an earlier request was under way and left its type '${typeAfter ?? 'none'}'; ${retry}`);
}
