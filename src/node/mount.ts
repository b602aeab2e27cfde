// The mount table (read in-process from /proc/self/mountinfo, see
// mountinfo.ts) and the few mount operations the node service performs.
// Every command goes through run().
import { stat } from 'node:fs/promises';
import { run } from '../util/exec';
import { readMountTable, type MountEntry, type MountTable } from './mountinfo';

export type { MountEntry, MountTable } from './mountinfo';

const MOUNT_TIMEOUT_MS = 60_000;

/**
 * Every mount in this mount namespace, in mount order (a later entry covers an
 * earlier one at the same target). Read afresh on every call, never cached.
 */
export async function listMounts(signal?: AbortSignal): Promise<MountTable> {
  signal?.throwIfAborted();
  return readMountTable();
}

/** The topmost mount at exactly `target`, if any. */
export async function findMountAt(target: string, signal?: AbortSignal): Promise<MountEntry | undefined> {
  return (await listMounts(signal)).at(target);
}

export function isReadOnlyMount(m: MountEntry): boolean {
  return m.vfsOptions.includes('ro');
}

/** "major:minor" of a device node (from st_rdev), as findmnt and sysfs write it. */
export async function deviceNumber(devicePath: string): Promise<string> {
  const st = await stat(devicePath, { bigint: true });
  return formatDeviceNumber(st.rdev);
}

/** "major:minor" of the filesystem a path lives on (st_dev). */
export function formatDeviceNumber(dev: bigint): string {
  // The Linux encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor).
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

export async function isBlockDevice(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isBlockDevice();
  } catch {
    return false;
  }
}

export async function mountFilesystem(
  device: string,
  target: string,
  fsType: string,
  options: readonly string[],
  signal?: AbortSignal,
): Promise<void> {
  const args = ['-t', fsType];
  if (options.length > 0) args.push('-o', options.join(','));
  await run('mount', [...args, '--', device, target], { timeoutMs: MOUNT_TIMEOUT_MS, signal });
}

/**
 * Bind `source` (a directory or a device node) onto `target`. A read-only bind
 * needs a second step: the kernel ignores 'ro' on the initial MS_BIND.
 */
export async function bindMount(source: string, target: string, readOnly: boolean, signal?: AbortSignal): Promise<void> {
  await run('mount', ['--bind', '--', source, target], { timeoutMs: MOUNT_TIMEOUT_MS, signal });
  if (!readOnly) return;
  try {
    await run('mount', ['-o', 'remount,bind,ro', '--', target], { timeoutMs: MOUNT_TIMEOUT_MS, signal });
  } catch (err) {
    // Never leave a writable bind behind when read-only was asked for.
    await unmount(target).catch(() => undefined);
    throw err;
  }
}

export async function unmount(target: string, signal?: AbortSignal): Promise<void> {
  await run('umount', ['--', target], { timeoutMs: MOUNT_TIMEOUT_MS, signal });
}

/** Unmount until nothing is mounted at `target` (mounts can be stacked). Returns how many were removed. */
export async function unmountAll(target: string, signal?: AbortSignal): Promise<number> {
  let removed = 0;
  while (await findMountAt(target, signal)) {
    if (removed >= 8) throw new Error(`${target} is still mounted after ${removed} unmounts`);
    await unmount(target, signal);
    removed++;
  }
  return removed;
}
