// Which access modes and access types Cinder can honour, and the controller
// capabilities we advertise.
//
// A Cinder volume attaches to one server unless its volume type is
// multiattach. Several servers writing one ordinary filesystem corrupt it, so
// multi-node modes are offered only as a raw block device (the application,
// e.g. a cluster filesystem or database, coordinates writes).
import type { VolumeCapability__Output } from '../gen/csi/v1/VolumeCapability';
import type { ControllerServiceCapability } from '../gen/csi/v1/ControllerServiceCapability';
import type { VolumeType } from '../openstack/types';
import { SUPPORTED_FILESYSTEMS } from '../csi/constants';
import { mountFlagsProblem } from '../csi/mount-flags';

type AccessMode = NonNullable<VolumeCapability__Output['access_mode']>['mode'];

const SINGLE_NODE_MODES: readonly AccessMode[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
];
const MULTI_NODE_MODES: readonly AccessMode[] = ['MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER'];

export function accessModeOf(cap: VolumeCapability__Output): AccessMode | undefined {
  return cap.access_mode?.mode;
}

export function isMultiNode(cap: VolumeCapability__Output): boolean {
  const mode = accessModeOf(cap);
  return mode !== undefined && MULTI_NODE_MODES.includes(mode);
}

export function isBlock(cap: VolumeCapability__Output | null | undefined): boolean {
  return cap?.access_type === 'block';
}

/**
 * Why Cinder cannot honour `cap` on a volume whose multiattach-ness is given,
 * or null when it can. The reason is written for the operator.
 */
export function capabilityProblem(cap: VolumeCapability__Output, multiattach: boolean): string | null {
  const mode = accessModeOf(cap);
  if (cap.access_type !== 'block' && cap.access_type !== 'mount') {
    return 'a volume capability has no access type: it must ask for block or mount access';
  }
  if (mode === undefined || mode === 'UNKNOWN') return 'a volume capability has no access mode';
  // Refused here, before a volume is made and attached, rather than at NodeStageVolume.
  const fsType = cap.access_type === 'mount' ? cap.mount?.fs_type : undefined;
  if (fsType && !(SUPPORTED_FILESYSTEMS as readonly string[]).includes(fsType)) {
    return `fs_type ${JSON.stringify(fsType)} is not supported: the node plugin makes ${SUPPORTED_FILESYSTEMS.join(', ')} (the StorageClass parameter csi.storage.k8s.io/fstype)`;
  }
  // A StorageClass's mountOptions arrive here; one no node would mount with is refused before a volume is made.
  const flagsProblem = cap.access_type === 'mount' ? mountFlagsProblem(cap.mount?.mount_flags ?? []) : null;
  if (flagsProblem) return `${flagsProblem} (the StorageClass's mountOptions)`;
  if (SINGLE_NODE_MODES.includes(mode)) return null;
  if (!MULTI_NODE_MODES.includes(mode)) return `access mode ${String(mode)} is not supported`;
  if (!multiattach) {
    return `access mode ${mode} needs a Cinder volume type with multiattach="<is> True"; use ReadWriteOnce or such a volume type`;
  }
  // The node plugin mounts no filesystem on several nodes (src/node/capability.ts): ext4 and xfs are not
  // cluster filesystems, and even a read-only mount may replay a journal another node is writing.
  if (cap.access_type !== 'block') {
    return `access mode ${mode} is supported only with volumeMode: Block; an ordinary filesystem mounted on several nodes is corrupted`;
  }
  return null;
}

/** The first problem among `caps`, or null when all can be honoured. */
export function capabilitiesProblem(caps: readonly VolumeCapability__Output[], multiattach: boolean): string | null {
  for (const cap of caps) {
    const problem = capabilityProblem(cap, multiattach);
    if (problem) return problem;
  }
  return null;
}

/**
 * Cinder marks multiattach volume types with this extra spec. Undefined when
 * Cinder does not show this user the type's extra specs (before Xena): then
 * only the volume it makes tells.
 */
export function isMultiattachType(type: VolumeType): boolean | undefined {
  if (type.extraSpecs === null) return undefined;
  const spec = type.extraSpecs.multiattach;
  return typeof spec === 'string' && /^\s*<is>\s+true\s*$/i.test(spec);
}

const ADVERTISED = [
  'CREATE_DELETE_VOLUME',
  'PUBLISH_UNPUBLISH_VOLUME',
  'LIST_VOLUMES',
  'LIST_VOLUMES_PUBLISHED_NODES',
  'GET_VOLUME',
  'VOLUME_CONDITION',
  'GET_CAPACITY',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'CLONE_VOLUME',
  'EXPAND_VOLUME',
  'PUBLISH_READONLY',
  'MODIFY_VOLUME',
  // SINGLE_NODE_SINGLE_WRITER and SINGLE_NODE_MULTI_WRITER are accepted (SINGLE_NODE_MODES). With it the
  // external-provisioner and -attacher send ReadWriteOncePod as SINGLE_NODE_SINGLE_WRITER, as kubelet does.
  'SINGLE_NODE_MULTI_WRITER',
] as const;

/**
 * GetSnapshot always works; its capability (alpha in CSI 1.12) is advertised
 * only on request, because csi-sanity (csi-test v5) fails a driver that
 * reports a capability it does not know, and no Kubernetes sidecar uses it yet.
 */
export function controllerCapabilities(advertiseGetSnapshot = false): ControllerServiceCapability[] {
  const types: string[] = [...ADVERTISED];
  if (advertiseGetSnapshot) types.push('GET_SNAPSHOT');
  return types.map((type) => ({ type: 'rpc', rpc: { type: type as (typeof ADVERTISED)[number] } }));
}
