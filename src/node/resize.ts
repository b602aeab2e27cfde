// Growing a volume on the node after Cinder extended it. The hypervisor
// announces the new size to the guest (virtio-blk does it by itself, SCSI
// disks need a rescan); we then grow the filesystem online.
import { writeFile, access, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log';
import { run } from '../util/exec';
import { invalidArgument } from '../csi/errors';

/** resize2fs and xfs_growfs write metadata for every new block group; large growths take a while. */
const GROW_TIMEOUT_MS = 10 * 60_000;

/** Ask the kernel to re-read the size of a SCSI disk; a no-op for virtio-blk (no rescan file). */
export async function refreshDeviceSize(deviceName: string, sysfsRoot: string, log: Logger): Promise<void> {
  const rescan = path.join(sysfsRoot, 'block', deviceName, 'device', 'rescan');
  try {
    await access(rescan);
  } catch {
    return;
  }
  await writeFile(rescan, '1');
  log.debug({ device: deviceName }, 'rescanned device size');
}

/** Grow the filesystem mounted at `mountPath` (from `device`) to fill the device. */
export async function growFilesystem(
  device: string,
  fsType: string,
  mountPath: string,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<void> {
  switch (fsType) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      // Online resize of a mounted ext filesystem works on the device.
      await run('resize2fs', ['--', device], { timeoutMs: GROW_TIMEOUT_MS, signal });
      break;
    case 'xfs':
      // xfs grows only while mounted, and takes the mount point.
      await run('xfs_growfs', ['-d', '--', mountPath], { timeoutMs: GROW_TIMEOUT_MS, signal });
      break;
    default:
      throw invalidArgument(`cannot grow a ${fsType} filesystem`);
  }
  log.info({ device, fsType, mountPath }, 'grew filesystem');
}

/** The kernel's name (e.g. 'vdb') of block device "major:minor", from sysfs; null when sysfs does not know it. */
export async function deviceNameOf(majMin: string, sysfsRoot: string): Promise<string | null> {
  try {
    return path.basename(await realpath(path.join(sysfsRoot, 'dev', 'block', majMin)));
  } catch {
    return null;
  }
}
