// Looking up Cinder volume types by name (or ID, as Cinder accepts either).
import type { Cloud, VolumeType } from '../openstack/types';
import { invalidArgument } from '../csi/errors';
import type { Op } from './env';

export async function requireVolumeType(cloud: Cloud, nameOrId: string, where: string, op: Op): Promise<VolumeType> {
  const types = await cloud.blockStorage.listVolumeTypes(op);
  const found = types.find((t) => t.name === nameOrId) ?? types.find((t) => t.id === nameOrId);
  if (!found) {
    const names = types.map((t) => `'${t.name}'`).join(', ') || 'none';
    throw invalidArgument(`${where} names volume type '${nameOrId}', which cloud '${cloud.name}' does not have (it has ${names})`);
  }
  return found;
}

/** Whether the volume's current type is `wanted` (the volume carries the type name; a class may give the ID). */
export function isType(current: string | null, wanted: VolumeType): boolean {
  return current === wanted.name || current === wanted.id;
}
