// The read-only volume calls: ValidateVolumeCapabilities and
// ControllerGetVolume.
import type { ValidateVolumeCapabilitiesRequest__Output } from '../gen/csi/v1/ValidateVolumeCapabilitiesRequest';
import type { ValidateVolumeCapabilitiesResponse } from '../gen/csi/v1/ValidateVolumeCapabilitiesResponse';
import type { ControllerGetVolumeRequest__Output } from '../gen/csi/v1/ControllerGetVolumeRequest';
import type { ControllerGetVolumeResponse } from '../gen/csi/v1/ControllerGetVolumeResponse';
import type { Volume } from '../openstack/types';
import { isNotFound } from '../openstack/errors';
import { CsiError, notFound, requireField, requireId } from '../csi/errors';
import { capabilitiesProblem } from './capabilities';
import { locate, type Located } from './clouds';
import type { ControllerEnv, Op } from './env';
import { rethrow } from './os-errors';
import { parseMutableParams, parseVolumeParams } from './params';
import { csiVolume, publishedNodeIds, volumeCondition } from './views';

async function getExisting(located: Located, csiId: string, op: Op): Promise<Volume> {
  return located.cloud.blockStorage
    .getVolume(located.id, op)
    .catch(rethrow({ not_found: () => notFound(`volume ${csiId} does not exist in cloud '${located.cloud.name}'`) }));
}

export async function validateVolumeCapabilities(
  env: ControllerEnv,
  req: ValidateVolumeCapabilitiesRequest__Output,
  op: Op,
): Promise<ValidateVolumeCapabilitiesResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const caps = requireField(req.volume_capabilities, 'volume_capabilities');
  const volume = await getExisting(locate(env.clouds, csiId, req.secrets), csiId, op);
  // Parameters we would refuse at creation are not confirmed either.
  try {
    parseVolumeParams(req.parameters);
    parseMutableParams(req.mutable_parameters);
  } catch (err) {
    if (err instanceof CsiError) return { message: err.message };
    throw err;
  }
  const problem = capabilitiesProblem(caps, volume.multiattach);
  if (problem) return { message: `volume ${csiId}: ${problem}` };
  return {
    confirmed: {
      volume_context: req.volume_context,
      volume_capabilities: caps,
      parameters: req.parameters,
      mutable_parameters: req.mutable_parameters,
    },
  };
}

export async function controllerGetVolume(env: ControllerEnv, req: ControllerGetVolumeRequest__Output, op: Op): Promise<ControllerGetVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const { cloudName, volume } = await findVolume(env, csiId, op);
  return {
    // The ID as the CO knows it (a bare ID found in another cloud stays bare).
    volume: { ...csiVolume(env, cloudName, volume), volume_id: csiId },
    status: { published_node_ids: publishedNodeIds(volume), volume_condition: volumeCondition(volume) },
  };
}

/**
 * ControllerGetVolume carries no secrets to name a cloud, so a bare ID that
 * is not in the default cloud is looked for in the others (volumes the Go
 * plugin made in other clouds have bare IDs).
 */
async function findVolume(env: ControllerEnv, csiId: string, op: Op): Promise<{ cloudName: string; volume: Volume }> {
  const located = locate(env.clouds, csiId);
  const candidates = csiId.includes(':') ? [located.cloud.name] : env.clouds.names;
  for (const name of candidates) {
    const cloud = env.clouds.get(name)!;
    try {
      return { cloudName: name, volume: await cloud.blockStorage.getVolume(located.id, op) };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  throw notFound(`volume ${csiId} does not exist in ${candidates.length > 1 ? `any configured cloud (${candidates.join(', ')})` : `cloud '${located.cloud.name}'`}`);
}
