// A read-only view of a block device, for read-only raw block publishes.
//
// A read-only bind mount does not stop writes through a device node: the
// kernel checks mount flags only for regular files. Setting the disk itself
// read-only (BLKROSET) would affect every other publish of it on this node.
// A read-only loop device over the disk is enforced by the kernel (writes fail
// with EPERM) and belongs to this one target.
import path from 'node:path';
import { run } from '../util/exec';
import { deviceNumber, isBlockDevice } from './mount';
import { deviceNameOf } from './resize';
import { sysfsAttribute } from './stats';

// losetup (like blockdev) does not accept '--'; every path we pass is absolute, so none reads as an option.

interface LosetupList {
  loopdevices?: { name: string; 'back-file': string | null; ro: boolean | string }[];
}

export async function createReadOnlyView(device: string, signal?: AbortSignal): Promise<string> {
  const { stdout } = await run('losetup', ['--read-only', '--find', '--show', device], { signal });
  return stdout.trim();
}

/** losetup's rows: every loop device, or only `view`'s (none when it is not an attached loop device). */
async function loopRows(view?: string, signal?: AbortSignal): Promise<NonNullable<LosetupList['loopdevices']>> {
  const args = ['--list', '--json', '--output', 'NAME,BACK-FILE,RO'];
  const result = await run('losetup', view ? [...args, view] : args, { signal, okCodes: [1] });
  if (result.code !== 0 || !result.stdout.trim()) return [];
  return (JSON.parse(result.stdout) as LosetupList).loopdevices ?? [];
}

/** The device a loop view reads from, or null when `view` is not an attached loop device. */
export async function viewBackingDevice(view: string, signal?: AbortSignal): Promise<string | null> {
  const [row] = await loopRows(view, signal);
  return row?.['back-file']?.trim() ?? null;
}

/** Every read-only loop device that reads from `device`: the views of it, whoever made them. */
export async function readOnlyViewsOf(device: string, signal?: AbortSignal): Promise<string[]> {
  const rows = await loopRows(undefined, signal);
  return rows.filter((r) => r['back-file']?.trim() === device && (r.ro === true || r.ro === '1')).map((r) => r.name);
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
  return (await viewBackingDevice(view, signal)) === device ? view : null;
}

/** Detach our view, after checking it still is a view of `device` (loop numbers are reused). */
export async function removeReadOnlyView(view: string, device: string, signal?: AbortSignal): Promise<void> {
  if ((await viewBackingDevice(view, signal)) !== device) return;
  await run('losetup', ['--detach', view], { signal });
}

/** A loop view does not follow its backing device's growth by itself. Only our view of `device` is touched (loop numbers are reused). */
export async function refreshViewSize(view: string, device: string, signal?: AbortSignal): Promise<void> {
  if ((await viewBackingDevice(view, signal)) !== device) return;
  await run('losetup', ['--set-capacity', view], { signal });
}
