// Whose a mount is, for the calls that unmount (NodeUnstageVolume,
// NodeUnpublishVolume) or grow (NodeExpandVolume) what a volume_id and a path
// name together: only the volume's own mounts are touched. ownership.ts reads
// what the kernel shows; this file decides.
import type { CallContext } from '../csi/context';
import { failedPrecondition } from '../csi/errors';
import { volumeEvidence } from './devices';
import { deviceNumber, findMountAt, type MountEntry, unmount } from './mount';
import { readOnlyViewOf } from './readonly-view';
import { liveDisk, mountedDisk } from './ownership';
import { discoverNow, type NodeEnv } from './env';

/**
 * Why the mount `m` at `p` (a target or a staging path) is not volume `volumeId`'s, or null when it is, or
 * may be. It is when it is of the volume's disk (`own`: the raw block record's disk and the read-only view
 * bound here; or the disk discovery finds now) or of a read-only view of that disk. A mount of a disk that
 * is gone, or holds nothing (0 sectors), is taken as the volume's: kubelet unpublishes and unstages after the
 * volume was detached under it (kubelet-patterns.test.ts), nothing on the node says any more whose the disk
 * was, and unmounting it loses nothing. Anything else is not the volume's: a filesystem this driver never
 * mounts (tmpfs, overlay, NFS), a bind of part of a filesystem or of another kind of file, a live disk that
 * is not the volume's.
 */
export async function whyNotOurs(env: NodeEnv, volumeId: string, p: string, m: MountEntry, own: readonly string[], signal: AbortSignal, ctx: CallContext): Promise<string | null> {
  const disk = await mountedDisk(p, m);
  if (typeof disk === 'string') return disk;
  if (own.includes(disk.majMin)) return null;
  const found = await discoverNow(env, volumeId, signal, ctx);
  if (found && (await deviceNumber(found.path)) === disk.majMin) return null;
  if (found && disk.block && (await readOnlyViewOf(disk.majMin, found.path, env.settings.sysfsRoot, signal))) return null;
  const name = await liveDisk(disk.majMin, env.settings.sysfsRoot);
  if (name === null) return null;
  const evidence = await volumeEvidence(name, env.settings.deviceRoot, env.settings.sysfsRoot);
  const what = `${disk.block ? 'the block device' : 'a filesystem on'} ${name}${evidence ? ` (${evidence})` : ''}`;
  return `${what}, not the disk of volume ${volumeId}${found ? ` (${found.path})` : ', which is not attached here'}`;
}

/**
 * Unmount what is mounted at `p` (mounts can be stacked), each layer judged first (whyNotOurs). At one that
 * is not this volume's: FAILED_PRECONDITION, and it stays mounted. Answering OK would tell the CO that nothing
 * of the volume is there, and the CO (which sent a volume_id and a path that do not go together) would go on
 * as if the path were free; the refusal keeps it retrying and says why, for someone to look. Returns how many
 * mounts were removed.
 */
export async function unmountOwn(env: NodeEnv, volumeId: string, p: string, field: string, own: readonly string[], signal: AbortSignal, ctx: CallContext): Promise<number> {
  let removed = 0;
  for (let m = await findMountAt(p, signal); m; m = await findMountAt(p, signal)) {
    const why = await whyNotOurs(env, volumeId, p, m, own, signal, ctx);
    if (why) throw failedPrecondition(`${field} ${p} holds ${why}; that is no mount of volume ${volumeId}, and it is left as it is`);
    if (removed >= 8) throw new Error(`${p} is still mounted after ${removed} unmounts`);
    await unmount(p, signal);
    removed++;
  }
  return removed;
}
