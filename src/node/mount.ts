// The mount table (through findmnt's JSON output) and the few mount
// operations the node service performs. Every command goes through run().
import { stat } from 'node:fs/promises';
import { run } from '../util/exec';

export interface MountEntry {
  target: string;
  /** The mounted device or filesystem name, without findmnt's "[/fsroot]" suffix. */
  source: string;
  fstype: string;
  /** Per-mount options: 'ro' here means this mount point is read-only. */
  vfsOptions: string[];
  /** Superblock options: 'ro' here means the filesystem itself is read-only (e.g. after errors). */
  fsOptions: string[];
  /** The directory (or file) of the filesystem that is mounted; '/' unless a bind of a subtree or a file. */
  fsroot: string;
  /** "major:minor" of the filesystem's device. */
  majMin: string;
}

const MOUNT_TIMEOUT_MS = 60_000;

interface FindmntRow {
  target: string;
  source: string;
  fstype: string;
  'vfs-options': string;
  'fs-options': string;
  fsroot: string;
  'maj:min': string;
}

/** Every mount in this mount namespace, in mount order (a later entry covers an earlier one at the same target). */
export async function listMounts(signal?: AbortSignal): Promise<MountEntry[]> {
  const { stdout } = await run('findmnt', ['-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,VFS-OPTIONS,FS-OPTIONS,FSROOT,MAJ:MIN'], {
    signal,
  });
  const rows = (JSON.parse(stdout) as { filesystems?: FindmntRow[] }).filesystems ?? [];
  return rows.map((r) => ({
    target: r.target,
    source: (r.source ?? '').replace(/\[.*\]$/, ''),
    fstype: r.fstype ?? '',
    vfsOptions: splitOptions(r['vfs-options']),
    fsOptions: splitOptions(r['fs-options']),
    fsroot: r.fsroot ?? '/',
    majMin: r['maj:min'] ?? '',
  }));
}

function splitOptions(value: string | null | undefined): string[] {
  return value ? value.split(',') : [];
}

/** The topmost mount at exactly `target`, if any. */
export function mountAt(mounts: readonly MountEntry[], target: string): MountEntry | undefined {
  for (let i = mounts.length - 1; i >= 0; i--) if (mounts[i].target === target) return mounts[i];
  return undefined;
}

export async function findMountAt(target: string, signal?: AbortSignal): Promise<MountEntry | undefined> {
  return mountAt(await listMounts(signal), target);
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
