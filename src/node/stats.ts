// Usage and health of a mounted volume.
import { existsSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';
import type { VolumeUsage } from '../gen/csi/v1/VolumeUsage';
import type { VolumeCondition } from '../gen/csi/v1/VolumeCondition';
import { deviceNumber, type MountEntry } from './mount';

/** Bytes and inodes of the filesystem mounted at `mountPath`. */
export async function filesystemUsage(mountPath: string): Promise<VolumeUsage[]> {
  const s = await statfs(mountPath);
  return [
    {
      unit: 'BYTES',
      total: s.blocks * s.bsize,
      available: s.bavail * s.bsize,
      used: (s.blocks - s.bfree) * s.bsize,
    },
    { unit: 'INODES', total: s.files, available: s.ffree, used: s.files - s.ffree },
  ];
}

/**
 * Size in bytes of a block device (or of a device node bound onto a file),
 * from the kernel's own record: st_rdev gives "major:minor", and
 * <sysfs>/dev/block/<major:minor>/size is the capacity in 512-byte sectors
 * (always 512, whatever the logical block size) - the same number
 * BLKGETSIZE64 returns, without forking blockdev. When sysfs does not know
 * the device (a sysfs root without it), blockdev answers instead.
 */
export async function blockDeviceSize(device: string, sysfsRoot: string, signal?: AbortSignal): Promise<number> {
  const majMin = await deviceNumber(device);
  const sectors = await sysfsDeviceSectors(sysfsRoot, majMin);
  if (sectors !== null) return sectors * 512;
  // blockdev does not accept '--'; `device` is an absolute path, so it cannot read as an option.
  const { stdout } = await run('blockdev', ['--getsize64', device], { signal });
  const size = Number(stdout.trim());
  if (!Number.isSafeInteger(size)) throw new Error(`blockdev --getsize64 ${device} printed ${JSON.stringify(stdout)}`);
  return size;
}

/**
 * One attribute of block device `majMin` ("major:minor") in sysfs, trimmed,
 * or null when there is none. Read synchronously, like the mount table: sysfs
 * answers from kernel memory, so one read() is cheaper than the thread-pool
 * round trips of an asynchronous readFile.
 */
export function sysfsAttribute(sysfsRoot: string, majMin: string, name: string): string | null {
  try {
    return readFileSync(path.join(sysfsRoot, 'dev', 'block', majMin, name), 'utf8').trim();
  } catch {
    return null;
  }
}

/** Capacity in 512-byte sectors of block device `majMin` from sysfs; null when sysfs has no such device. */
export async function sysfsDeviceSectors(sysfsRoot: string, majMin: string): Promise<number | null> {
  const text = sysfsAttribute(sysfsRoot, majMin, 'size');
  if (text === null) return null;
  const sectors = Number(text);
  if (!Number.isSafeInteger(sectors) || sectors < 0) throw new Error(`sysfs size of block device ${majMin} reads ${JSON.stringify(text)}`);
  return sectors;
}

/** Whether the kernel still has the block device `majMin` ("major:minor"); sysfs, read in-process. */
export function deviceExists(sysfsRoot: string, majMin: string): boolean {
  return existsSync(path.join(sysfsRoot, 'dev', 'block', majMin));
}

export const HEALTHY: VolumeCondition = { abnormal: false, message: 'volume is mounted and healthy' };

/**
 * The usage reported with an abnormal condition when none can be read. CSI
 * makes usage optional, but kubelet (pkg/volume/csi/csi_client.go) takes a
 * response without any as a failed call and drops its volume_condition, so
 * the condition would never reach the pod's events.
 */
export const UNKNOWN_USAGE: VolumeUsage[] = [{ unit: 'BYTES', total: 0, available: 0, used: 0 }];

/**
 * The condition of a mounted filesystem. A filesystem whose superblock went
 * read-only while this mount point is read-write went read-only on its own,
 * which ext4 and xfs do after I/O or metadata errors.
 */
export function filesystemCondition(mount: MountEntry, sysfsRoot: string): VolumeCondition {
  if (!deviceExists(sysfsRoot, mount.majMin)) {
    return { abnormal: true, message: `device ${mount.source} (${mount.majMin}) of the mount at ${mount.target} has vanished` };
  }
  if (mount.fsOptions.includes('ro') && mount.vfsOptions.includes('rw')) {
    return { abnormal: true, message: `filesystem on ${mount.source} went read-only (after I/O or filesystem errors?)` };
  }
  return HEALTHY;
}
