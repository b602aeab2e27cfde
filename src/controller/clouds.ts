// The configured clouds and how a CSI ID says which one a resource lives in.
//
// Volume and snapshot IDs of the default cloud are the bare Cinder UUIDs, so
// PersistentVolumes and VolumeSnapshotContents made by the Go
// cinder-csi-plugin keep working. A resource in any other cloud gets the ID
// `<cloud>:<uuid>` (a UUID has no ':'; the cloud name may, so we split at the
// last one). A bare ID is looked up in the cloud named by the request's
// secret `cloud` when it has one (that is how the Go plugin finds volumes of
// other clouds), else in the default cloud.
import type { Cloud } from '../openstack/types';
import { invalidArgument } from '../csi/errors';

/** The secret key a StorageClass or VolumeSnapshotClass uses to pick a cloud. */
export const CLOUD_SECRET_KEY = 'cloud';

export interface CloudSet {
  /** The default cloud's name. */
  readonly defaultName: string;
  /** Every cloud name, the default first, then alphabetical: the order ListVolumes walks. */
  readonly names: readonly string[];
  get(name: string): Cloud | undefined;
}

export function createCloudSet(clouds: readonly Cloud[], defaultName: string = clouds[0]?.name ?? ''): CloudSet {
  if (clouds.length === 0) throw new Error('the controller needs at least one configured cloud');
  const byName = new Map<string, Cloud>();
  for (const cloud of clouds) {
    if (byName.has(cloud.name)) throw new Error(`cloud '${cloud.name}' is configured twice`);
    byName.set(cloud.name, cloud);
  }
  if (!byName.has(defaultName)) throw new Error(`the default cloud '${defaultName}' is not configured`);
  const others = [...byName.keys()].filter((n) => n !== defaultName).sort();
  return { defaultName, names: [defaultName, ...others], get: (name) => byName.get(name) };
}

/** A Cinder resource located in one cloud. */
export interface Located {
  cloud: Cloud;
  /** The Cinder UUID. */
  id: string;
}

/** The CSI ID for a Cinder UUID in `cloudName`. */
export function csiId(clouds: CloudSet, cloudName: string, uuid: string): string {
  return cloudName === clouds.defaultName ? uuid : `${cloudName}:${uuid}`;
}

function cloudNamed(clouds: CloudSet, name: string, from: string): Cloud {
  const cloud = clouds.get(name);
  if (!cloud) {
    const known = clouds.names.map((n) => `'${n}'`).join(', ');
    throw invalidArgument(`${from} names cloud '${name}', which is not configured (configured: ${known}); add it to the driver's cloud config`);
  }
  return cloud;
}

/** The cloud a new resource goes to: the secret `cloud`, else the default. */
export function cloudForSecrets(clouds: CloudSet, secrets: Record<string, string> | undefined): Cloud {
  const name = secrets?.[CLOUD_SECRET_KEY];
  return name ? cloudNamed(clouds, name, `the secret key '${CLOUD_SECRET_KEY}'`) : cloudNamed(clouds, clouds.defaultName, 'the config');
}

/** Where the resource with CSI ID `id` lives (see the file comment for the rules). */
export function locate(clouds: CloudSet, id: string, secrets?: Record<string, string>): Located {
  const colon = id.lastIndexOf(':');
  if (colon < 0) return { cloud: cloudForSecrets(clouds, secrets), id };
  const name = id.slice(0, colon);
  const uuid = id.slice(colon + 1);
  if (name === '' || uuid === '') throw invalidArgument(`'${id}' is not an ID this driver issued: expected <uuid> or <cloud>:<uuid>`);
  return { cloud: cloudNamed(clouds, name, `ID '${id}'`), id: uuid };
}
