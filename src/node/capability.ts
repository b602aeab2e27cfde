// The parts of a VolumeCapability the node service acts on, validated once.
import type { VolumeCapability__Output } from '../gen/csi/v1/VolumeCapability';
import { failedPrecondition, invalidArgument } from '../csi/errors';
import { mountFlagsProblem } from '../csi/mount-flags';
import { parseFsType, type FsType } from './format';

export type AccessMode =
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER';

export type ParsedCapability =
  | { access: 'mount'; mode: AccessMode; fsType: FsType | null; mountFlags: string[] }
  | { access: 'block'; mode: AccessMode };

const ACCESS_MODES: readonly AccessMode[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
];
const READ_ONLY_MODES: readonly AccessMode[] = ['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY'];


export function parseCapability(cap: VolumeCapability__Output | null | undefined, field = 'volume_capability'): ParsedCapability {
  if (!cap) throw invalidArgument(`${field} is required`);
  const mode = cap.access_mode?.mode;
  if (!mode || mode === 'UNKNOWN') throw invalidArgument(`${field}.access_mode is required`);
  // An enum value this CSI version does not define arrives as its number.
  if (!ACCESS_MODES.includes(mode)) throw invalidArgument(`${field}.access_mode ${String(mode)} is not a CSI access mode`);
  if (cap.access_type === 'block' || (cap.block && !cap.mount)) return { access: 'block', mode };
  if (cap.access_type !== 'mount' && !cap.mount) throw invalidArgument(`${field} must have access_type block or mount`);
  if (mode.startsWith('MULTI_NODE_')) {
    // ext4 and xfs are not cluster filesystems: two nodes mounting one corrupt it.
    throw failedPrecondition(`${field}: access mode ${mode} is only supported for raw block volumes`);
  }
  const mount = cap.mount;
  const mountFlags = mount?.mount_flags ?? [];
  const problem = mountFlagsProblem(mountFlags);
  if (problem) throw invalidArgument(`${field}.mount.${problem}`);
  return { access: 'mount', mode, fsType: parseFsType(mount?.fs_type), mountFlags: mountFlags.filter((f) => f !== '') };
}

export function isReadOnlyMode(mode: AccessMode): boolean {
  return READ_ONLY_MODES.includes(mode);
}

/**
 * Whether a second target on this node must be refused. We honour
 * SINGLE_NODE_SINGLE_WRITER (Kubernetes' ReadWriteOncePod). The legacy
 * SINGLE_NODE_WRITER is what older COs send for ReadWriteOnce, which allows
 * several pods on one node, so we treat it like SINGLE_NODE_MULTI_WRITER.
 */
export function allowsOneTargetOnly(mode: AccessMode): boolean {
  return mode === 'SINGLE_NODE_SINGLE_WRITER';
}

/** Mount options for staging: the requested flags, plus nouuid for xfs (clones share their source's UUID). */
export function stagingMountOptions(fsType: string, mountFlags: readonly string[]): string[] {
  const options = [...mountFlags];
  if (fsType === 'xfs' && !options.includes('nouuid')) options.push('nouuid');
  return options;
}

/**
 * What a filesystem on a read-only disk is mounted with, beside the staging options: 'ro', said
 * rather than left to mount's fallback; and no journal replay. A volume cloned from a snapshot of a
 * volume in use has a journal that needs recovery, which a disk that takes no writes cannot have,
 * and ext3/ext4 and xfs then refuse even a read-only mount. Without the replay the filesystem is
 * seen as of its last checkpoint, without the journal's last transactions.
 */
export function readOnlyDeviceMountOptions(fsType: string, options: readonly string[]): string[] {
  const extra = ['ro', fsType === 'xfs' ? 'norecovery' : fsType === 'ext3' || fsType === 'ext4' ? 'noload' : null];
  return extra.filter((o): o is string => o !== null && !options.includes(o));
}
