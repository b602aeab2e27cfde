// A read-only view of a block device, for read-only raw block publishes.
//
// A read-only bind mount does not stop writes through a device node: the
// kernel checks mount flags only for regular files. Setting the disk itself
// read-only (BLKROSET) would affect every other publish of it on this node.
// A read-only loop device over the disk is enforced by the kernel (writes fail
// with EPERM) and belongs to this one target.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';
import { deviceNumber, formatDeviceNumber, isBlockDevice } from './mount';
import { deviceNameOf } from './resize';
import { sysfsAttribute } from './stats';

// losetup (like blockdev) does not accept '--'; every path we pass is absolute, so none reads as an option.

/**
 * Which file a loop device reads from is told by the file's identity, never
 * by its path: losetup's BACK-FILE is the path as the mount namespace that
 * opened it saw it, and after a restart of the plugin's container (a new
 * namespace, with the host's /dev mounted again) the same device node reads
 * as '/vdb', not '/dev/vdb'. The filesystem's device number and the inode
 * (BACK-MAJ:MIN, BACK-INO, from the kernel's loop status) are the same in
 * every namespace, and a disk attached again gets a new device node, so a
 * new inode.
 */
interface LosetupRow {
  name: string;
  ro: boolean | string;
  'back-ino': number | string | null;
  'back-maj:min': string | null;
}

interface LosetupList {
  loopdevices?: LosetupRow[];
}

export async function createReadOnlyView(device: string, signal?: AbortSignal): Promise<string> {
  const { stdout } = await run('losetup', ['--read-only', '--find', '--show', device], { signal });
  return stdout.trim();
}

/** losetup's rows: every loop device, or only `view`'s (none when it is not an attached loop device). */
async function loopRows(view?: string, signal?: AbortSignal): Promise<LosetupRow[]> {
  const args = ['--list', '--json', '--output', 'NAME,RO,BACK-INO,BACK-MAJ:MIN'];
  const result = await run('losetup', view ? [...args, view] : args, { signal, okCodes: [1] });
  if (result.code !== 0 || !result.stdout.trim()) return [];
  return (JSON.parse(result.stdout) as LosetupList).loopdevices ?? [];
}

/** "maj:min/inode" of the file a row's loop device reads from, or null. */
function backingIdentity(row: LosetupRow | undefined): string | null {
  const majMin = row?.['back-maj:min']?.trim();
  const ino = row?.['back-ino'];
  return majMin && ino !== null && ino !== undefined && String(ino).trim() !== '' ? `${majMin}/${String(ino).trim()}` : null;
}

/** "maj:min/inode" of the device node at `device` (the node itself, not the disk it names), or null when there is none. */
async function nodeIdentity(device: string): Promise<string | null> {
  const st = await stat(device, { bigint: true }).catch(() => null);
  return st ? `${formatDeviceNumber(st.dev)}/${st.ino}` : null;
}

/** Whether loop device `view` reads from the device node `device`. */
async function isViewOf(view: string, device: string, signal?: AbortSignal): Promise<boolean> {
  const [rows, identity] = await Promise.all([loopRows(view, signal), nodeIdentity(device)]);
  return identity !== null && backingIdentity(rows[0]) === identity;
}

/** Every read-only loop device that reads from `device`: the views of it, whoever made them. */
export async function readOnlyViewsOf(device: string, signal?: AbortSignal): Promise<string[]> {
  const [rows, identity] = await Promise.all([loopRows(undefined, signal), nodeIdentity(device)]);
  if (identity === null) return [];
  return rows.filter((r) => backingIdentity(r) === identity && (r.ro === true || r.ro === '1')).map((r) => r.name);
}

/**
 * The read-only view of `device` that block device `majMin` is, or null. A
 * publish that bound a view and died before recording it leaves one at its
 * target; the retry finds it by the number of the device node bound there.
 */
export async function readOnlyViewOf(majMin: string, device: string, sysfsRoot: string, signal?: AbortSignal): Promise<string | null> {
  const name = await deviceNameOf(majMin, sysfsRoot);
  if (!name || sysfsAttribute(sysfsRoot, majMin, 'ro') !== '1') return null;
  const view = path.join('/dev', name); // where losetup makes its devices
  if (!(await isBlockDevice(view)) || (await deviceNumber(view)) !== majMin) return null;
  return (await isViewOf(view, device, signal)) ? view : null;
}

/** Detach our view, after checking it still is a view of `device` (loop numbers are reused). */
export async function removeReadOnlyView(view: string, device: string, signal?: AbortSignal): Promise<void> {
  if (!(await isViewOf(view, device, signal))) return;
  await run('losetup', ['--detach', view], { signal });
}

/** A loop view does not follow its backing device's growth by itself. Only our view of `device` is touched (loop numbers are reused). */
export async function refreshViewSize(view: string, device: string, signal?: AbortSignal): Promise<void> {
  if (!(await isViewOf(view, device, signal))) return;
  await run('losetup', ['--set-capacity', view], { signal });
}
