// GetCapacity from the project's Cinder quota and usage: what is left of
// `gigabytes` and, when the volume type has its own quota, of
// `gigabytes_<type>` (the type a new volume would get: the StorageClass's, the
// driver's default, else Cinder's own default type); nothing when no more volumes may be made or the
// requested zone has no Cinder zone. maximum_volume_size honours
// `per_volume_gigabytes`.
//
// GetCapacity carries no secrets, so it reports the default cloud. A project
// without any limit has no number to report: we then answer
// UNLIMITED_CAPACITY_BYTES (2^53 - 1 bytes, ~8 PiB), which the scheduler
// reads as "plenty".
import type { GetCapacityRequest__Output } from '../gen/csi/v1/GetCapacityRequest';
import type { GetCapacityResponse } from '../gen/csi/v1/GetCapacityResponse';
import type { QuotaUsage } from '../openstack/types';
import { GiB, TOPOLOGY_ZONE_KEY } from '../csi/constants';
import { capabilitiesProblem, isMultiattachType } from './capabilities';
import type { ControllerEnv, Op } from './env';
import { parseVolumeParams } from './params';
import { volumeZoneFor } from './topology';
import { requireVolumeType } from './volume-types';

export const UNLIMITED_CAPACITY_BYTES = Number.MAX_SAFE_INTEGER;

const NOTHING: GetCapacityResponse = { available_capacity: 0 };

/** What is left of one quota resource; Infinity when unlimited or absent. */
export function remaining(quotas: Record<string, QuotaUsage>, resource: string): number {
  const q = quotas[resource];
  if (!q || q.limit < 0) return Infinity;
  return Math.max(0, q.limit - q.inUse - q.reserved);
}

export async function getCapacity(env: ControllerEnv, req: GetCapacityRequest__Output, op: Op): Promise<GetCapacityResponse> {
  const params = parseVolumeParams(req.parameters);
  const cloud = env.clouds.get(env.clouds.defaultName)!;
  const bs = cloud.blockStorage;
  const typeName = params.volumeType ?? env.settings.defaultVolumeType;
  const named = typeName ? await requireVolumeType(cloud, typeName, 'the StorageClass (or driver default)', op) : undefined;
  // As CreateVolume judges it: a volume of no named type is not taken for multiattach.
  if (req.volume_capabilities.length > 0 && capabilitiesProblem(req.volume_capabilities, named ? (isMultiattachType(named) ?? true) : false)) {
    return NOTHING;
  }

  const computeZone = env.settings.topology ? req.accessible_topology?.segments?.[TOPOLOGY_ZONE_KEY] : undefined;
  if (computeZone) {
    const zone = volumeZoneFor(computeZone, env.settings.azMap);
    if (params.availability && params.availability !== zone) return NOTHING;
    const zones = await bs.listAvailabilityZones(op);
    if (!zones.some((z) => z.name === zone && z.available)) return NOTHING;
  }

  // With no type named, Cinder gives the volume its default type, whose own quota binds it as well.
  const type = named ?? (await bs.getDefaultVolumeType(op)) ?? undefined;
  const quotas = await bs.getQuotaUsage(op);
  const suffix = type ? `_${type.name}` : undefined;
  if (remaining(quotas, 'volumes') < 1 || (suffix && remaining(quotas, `volumes${suffix}`) < 1)) return NOTHING;
  const freeGiB = Math.min(remaining(quotas, 'gigabytes'), suffix ? remaining(quotas, `gigabytes${suffix}`) : Infinity);
  const perVolume = quotas.per_volume_gigabytes;
  const perVolumeGiB = perVolume && perVolume.limit >= 0 ? perVolume.limit : Infinity;
  const largestGiB = Math.min(freeGiB, perVolumeGiB);
  return {
    available_capacity: freeGiB === Infinity ? UNLIMITED_CAPACITY_BYTES : freeGiB * GiB,
    maximum_volume_size: largestGiB === Infinity ? null : { value: largestGiB * GiB },
    minimum_volume_size: { value: GiB },
  };
}
