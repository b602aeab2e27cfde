// Making a filesystem. Callers format only a device that probe.ts found blank;
// mkfs.ext4 would happily overwrite an old filesystem without asking.
import { SUPPORTED_FILESYSTEMS } from '../csi/constants';
import { invalidArgument } from '../csi/errors';
import { onPath, run, TOOL_PACKAGES } from '../util/exec';

export type FsType = (typeof SUPPORTED_FILESYSTEMS)[number];
export const DEFAULT_FS_TYPE: FsType = 'ext4';

/** mkfs on a large volume takes minutes (discard, inode tables); it must not be cut short. */
const MKFS_TIMEOUT_MS = 20 * 60_000;

export function isSupportedFs(value: string): value is FsType {
  return (SUPPORTED_FILESYSTEMS as readonly string[]).includes(value);
}

/** The requested fs_type, or null when the request leaves it to us; anything unsupported is INVALID_ARGUMENT. */
export function parseFsType(value: string | null | undefined): FsType | null {
  if (!value) return null;
  if (!isSupportedFs(value)) {
    throw invalidArgument(`fs_type ${JSON.stringify(value)} is not supported; use one of ${SUPPORTED_FILESYSTEMS.join(', ')}`);
  }
  return value;
}

/**
 * mkfs deliberately ignores the caller's cancellation: killing it halfway
 * would leave a half-written filesystem that the next attempt would find
 * "not blank" and refuse. A retry joins the running attempt instead (InFlight).
 */
export async function makeFilesystem(device: string, fsType: FsType): Promise<void> {
  // No force flags: mkfs.xfs then refuses a device with any signature, a second guard behind the probe.
  await run(`mkfs.${fsType}`, ['-q', '--', device], { timeoutMs: MKFS_TIMEOUT_MS });
}

/** The mkfs of each supported filesystem that run() would not find, with its Debian package. */
export async function missingMkfs(): Promise<Array<{ fsType: FsType; command: string; package: string | undefined }>> {
  const found = await Promise.all(SUPPORTED_FILESYSTEMS.map(async (fsType) => ({ fsType, command: `mkfs.${fsType}`, ok: await onPath(`mkfs.${fsType}`) })));
  return found.filter((f) => !f.ok).map(({ fsType, command }) => ({ fsType, command, package: TOOL_PACKAGES[command] }));
}
