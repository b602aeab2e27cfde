// Zones: nodes report their Nova (compute) availability zone under
// TOPOLOGY_ZONE_KEY; Cinder has its own zones. The `azMap` setting maps a
// compute AZ to the volume AZ its servers can attach from; an unmapped compute
// AZ maps to the volume AZ of the same name.
import type { TopologyRequirement__Output } from '../gen/csi/v1/TopologyRequirement';
import type { Topology } from '../gen/csi/v1/Topology';
import { TOPOLOGY_ZONE_KEY } from '../csi/constants';
import { resourceExhausted } from '../csi/errors';

export type AzMap = Readonly<Record<string, string>>;

export function volumeZoneFor(computeZone: string, azMap: AzMap): string {
  return Object.hasOwn(azMap, computeZone) ? azMap[computeZone] : computeZone;
}

/** The compute zones whose servers reach volumes in `volumeZone`. */
export function computeZonesFor(volumeZone: string, azMap: AzMap): string[] {
  const zones = Object.keys(azMap).filter((c) => azMap[c] === volumeZone);
  if (!Object.hasOwn(azMap, volumeZone)) zones.push(volumeZone);
  return zones.sort();
}

/** accessible_topology for a volume in `volumeZone` (empty when the zone is unknown). */
export function accessibleTopology(volumeZone: string | null | undefined, azMap: AzMap): Topology[] {
  if (!volumeZone) return [];
  return computeZonesFor(volumeZone, azMap).map((zone) => ({ segments: { [TOPOLOGY_ZONE_KEY]: zone } }));
}

function zonesOf(topologies: readonly { segments: Record<string, string> }[] | undefined): string[] {
  const out: string[] = [];
  for (const t of topologies ?? []) {
    const zone = t.segments?.[TOPOLOGY_ZONE_KEY];
    if (zone) out.push(zone);
  }
  return out;
}

/**
 * The volume AZ to ask Cinder for, or undefined to let Cinder choose.
 * Precedence: the StorageClass `availability` parameter (or the source's zone
 * for clones and restores), then the first preferred zone, then the first
 * requisite zone. Whatever is chosen must be reachable from a requisite zone
 * when the CO sent any.
 */
export function chooseVolumeZone(
  requirement: TopologyRequirement__Output | null | undefined,
  fixed: { zone: string; why: string } | undefined,
  azMap: AzMap,
): string | undefined {
  const requisite = zonesOf(requirement?.requisite);
  const preferred = zonesOf(requirement?.preferred);
  const reachable = new Set(requisite.map((z) => volumeZoneFor(z, azMap)));
  if (fixed) {
    if (requisite.length > 0 && !reachable.has(fixed.zone)) {
      // RESOURCE_EXHAUSTED is the spec's code for a valid topology that cannot be met; under
      // WaitForFirstConsumer it makes the provisioner reschedule the pod (INVALID_ARGUMENT would not).
      throw resourceExhausted(
        `${fixed.why} puts the volume in availability zone '${fixed.zone}', which no requisite zone (${requisite.join(', ')}) can attach; ` +
          `the pod needs a node that can (check the StorageClass's availability and allowedTopologies, or the driver's az_map setting (driver.controller.az_map))`,
      );
    }
    return fixed.zone;
  }
  for (const zone of preferred) {
    const volumeZone = volumeZoneFor(zone, azMap);
    if (requisite.length === 0 || reachable.has(volumeZone)) return volumeZone;
  }
  return requisite.length > 0 ? volumeZoneFor(requisite[0], azMap) : undefined;
}

/**
 * Why a volume in `volumeZone` does not meet the request's requisite zones
 * (none can attach it), or null when it does or nothing is required.
 */
export function zoneMismatch(volumeZone: string | null | undefined, requirement: TopologyRequirement__Output | null | undefined, azMap: AzMap): string | null {
  const requisite = zonesOf(requirement?.requisite);
  if (requisite.length === 0) return null;
  if (volumeZone && requisite.some((z) => volumeZoneFor(z, azMap) === volumeZone)) return null;
  return `is in availability zone '${volumeZone ?? 'unknown'}', which no requisite zone (${requisite.join(', ')}) can attach`;
}
