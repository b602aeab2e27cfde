// What a mount at a volume's path is, for the calls that unmount or remove
// there (NodeUnpublishVolume, NodeUnstageVolume) and the one that binds a
// staging mount (NodePublishVolume): a request's volume_id and path are the
// caller's word, the mount table and the disks are the machine's. The service
// decides whose a disk is (own-mounts.ts whyNotOurs); this file reads what the
// kernel shows.
import type { BigIntStats, Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { formatDeviceNumber, type MountEntry } from './mount';
import { isSupportedFs } from './format';
import { deviceNameOf } from './resize';
import { sysfsDeviceSectors } from './stats';

/** The disk a mount of ours would be of: its number, and whether a device node is bound (raw block) rather than a filesystem mounted. */
export interface MountedDisk {
  majMin: string;
  block: boolean;
}

/**
 * The disk mounted at `p` (where `m` is the topmost mount), in the two shapes
 * this driver mounts: a whole filesystem of a kind it stages (staging mounts
 * and their binds at filesystem targets), or a block device node bound onto a
 * file (raw block targets). Anything else is described, for the refusal: a
 * tmpfs, an overlay or an NFS mount, a bind of a subdirectory or of one file.
 * When `p` cannot be stat'ed (a filesystem whose disk has gone can fail with
 * EIO), the mount table alone decides.
 */
export async function mountedDisk(p: string, m: MountEntry): Promise<MountedDisk | string> {
  const node = await stat(p, { bigint: true }).catch(() => null);
  if (node?.isBlockDevice()) return { majMin: formatDeviceNumber(node.rdev), block: true };
  if (!isSupportedFs(m.fstype)) return `a ${m.fstype} filesystem (${m.source})`;
  if (node && !node.isDirectory()) return `a bind of ${kindOf(node)} from ${m.source}`;
  if (m.fsroot !== '/') return `a bind of ${m.fsroot} of the filesystem on ${m.source}, not a whole filesystem`;
  return { majMin: m.majMin, block: false };
}

/**
 * The kernel's name of disk `majMin` while it can hold data; null when no disk
 * has that number any more (detached: its mounts stay until unmounted) or it
 * has no medium (0 sectors).
 */
export async function liveDisk(majMin: string, sysfsRoot: string): Promise<string | null> {
  const sectors = await sysfsDeviceSectors(sysfsRoot, majMin).catch(() => null);
  if (!sectors) return null;
  return deviceNameOf(majMin, sysfsRoot);
}

/** What kind of file `s` is, for messages: 'a directory', 'a character device', ... */
export function kindOf(s: Stats | BigIntStats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFile()) return 'a regular file';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isSocket()) return 'a socket';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSymbolicLink()) return 'a symlink';
  return 'a file of unknown kind';
}
