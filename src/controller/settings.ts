// What the controller service needs to know besides the clouds. The CLI builds
// this from the `driver:` section of the config; tests pass a Partial and let
// `controllerSettings` fill in the defaults.
import { createHash } from 'node:crypto';

export interface ControllerSettings {
  /**
   * Stored on every volume, snapshot and backup we create as the metadata key
   * `cinder.csi.openstack.org/cluster`, so operators can tell which cluster
   * owns what. Default 'kubernetes' (the config's default).
   */
  clusterId: string;
  /**
   * Compute availability zone -> volume availability zone. Nodes report
   * their Nova AZ as topology; Cinder may name its zones differently (often a
   * single 'nova'). A compute AZ not in the map is taken to have a volume AZ
   * of the same name. Default {}.
   */
  azMap: Record<string, string>;
  /** Volume type when the StorageClass names none; absent: Cinder's own default type. */
  defaultVolumeType?: string;
  /**
   * Report and honour the zone topology. Turn off for clouds where Nova
   * attaches volumes across zones (cross_az_attach) and nodes carry no zone
   * label: volumes then get no accessible_topology. Default true.
   */
  topology: boolean;
  /**
   * Key for the HMAC that signs ListVolumes/ListSnapshots tokens, so a token
   * we did not issue is refused with ABORTED. Default: derived from the
   * cluster ID, so every controller replica of one cluster accepts the
   * others' tokens after a leader change.
   */
  listTokenKey: string;
  /**
   * Page size asked of Cinder when a List call sets no max_entries. Cinder
   * caps pages at its osapi_max_limit (1000 by default) anyway. Default 1000.
   */
  listPageSize: number;
  /**
   * Most encoded bytes of entries in one ListVolumes answer when max_entries
   * is unset (the rest follows with next_token). gRPC clients refuse
   * messages over 4 MiB by default. Default 3.5 MiB.
   */
  listResponseBytes: number;
  /** Advertise the alpha GET_SNAPSHOT capability (GetSnapshot answers either way). Default false: csi-sanity rejects it. */
  advertiseGetSnapshot: boolean;
  /**
   * How long after answering CreateVolume to look again for other volumes of
   * its name (a create an earlier controller left in Cinder's hands; see
   * same-name.ts). Default 2 min.
   */
  sameNameCheckMs: number;
}

/** gRPC clients' default receive limit is 4 MiB: this leaves room for the token and framing. */
export const DEFAULT_LIST_RESPONSE_BYTES = 3.5 * 1024 * 1024;

export const DEFAULT_CLUSTER_ID = 'kubernetes';

export function controllerSettings(partial: Partial<ControllerSettings> = {}): ControllerSettings {
  const clusterId = partial.clusterId || DEFAULT_CLUSTER_ID;
  const listPageSize = partial.listPageSize ?? 1000;
  if (!Number.isInteger(listPageSize) || listPageSize < 1) {
    throw new Error(`listPageSize must be a positive integer, not ${listPageSize}`);
  }
  const listResponseBytes = partial.listResponseBytes ?? DEFAULT_LIST_RESPONSE_BYTES;
  if (!(listResponseBytes > 0)) throw new Error(`listResponseBytes must be positive, not ${listResponseBytes}`);
  return {
    clusterId,
    azMap: { ...(partial.azMap ?? {}) },
    defaultVolumeType: partial.defaultVolumeType || undefined,
    topology: partial.topology ?? true,
    listTokenKey:
      partial.listTokenKey || createHash('sha256').update(`cinder-csi list token\0${clusterId}`).digest('hex'),
    listPageSize,
    listResponseBytes,
    advertiseGetSnapshot: partial.advertiseGetSnapshot ?? false,
    sameNameCheckMs: partial.sameNameCheckMs ?? 120_000,
  };
}
