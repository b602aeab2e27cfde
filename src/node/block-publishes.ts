// A raw block volume's staging record lists its publishes (targets) and the
// read-only view each one bound, if any: which of them are still bound, and
// when a view may be detached.
import type { CallContext } from '../csi/context';
import { deviceNodeBinds, diskNamesAnotherVolume } from './devices';
import { deviceNumber, formatDeviceNumber, isBlockDevice, listMounts } from './mount';
import type { BlockStaging } from './staging-store';
import { readOnlyViewsOf, removeReadOnlyView } from './readonly-view';
import type { NodeEnv } from './env';
import { bigStatOrNull } from './fs-helpers';

export function targetPaths(record: BlockStaging | null): string[] {
  return record ? record.targets.map((t) => t.path) : [];
}

export async function mountedTargets(record: BlockStaging, signal: AbortSignal): Promise<string[]> {
  const mounts = await listMounts(signal);
  return targetPaths(record).filter((t) => mounts.at(t));
}

/**
 * Whether `view` may be detached for `target`: no other publish of the record
 * names it and nothing but `target` has it bound. Loop numbers restart at
 * reboot and staging records survive one, so a view name recorded for one
 * target can now be another target's live view of the same disk.
 */
export async function viewOnlyAt(view: string, target: string, record: BlockStaging, signal: AbortSignal): Promise<boolean> {
  if (record.targets.some((t) => t.path !== target && t.readOnlyView === view)) return false;
  const node = await bigStatOrNull(view);
  if (!node?.isBlockDevice()) return false; // nothing there to detach
  const binds = await deviceNodeBinds(await listMounts(signal), formatDeviceNumber(node.rdev));
  return binds.every((m) => m.target === target);
}

/**
 * Detach every read-only view of the record's disk that nothing uses: no
 * mount of it, no bind of its device node. A publish makes its view before
 * binding it and an unpublish detaches it after unbinding, so a plugin that
 * dies in between leaves a view that no record names and no bind shows. Run
 * only while this volume's operation holds InFlight, so no publish of ours
 * is between making its view and binding it.
 */
export async function detachUnusedViews(env: NodeEnv, record: BlockStaging, signal: AbortSignal, ctx: CallContext): Promise<void> {
  if (!(await isBlockDevice(record.device)) || (await deviceNumber(record.device)) !== record.majMin) return; // another disk has its name now
  // The same name and number, but another volume's disk (a stale record after a detach and attach): its views are not ours.
  if (await diskNamesAnotherVolume(record.device, record.volumeId, env.settings.sysfsRoot)) return;
  const views = await readOnlyViewsOf(record.device, signal);
  if (views.length === 0) return;
  const mounts = await listMounts(signal);
  for (const view of views) {
    const node = await bigStatOrNull(view);
    if (!node?.isBlockDevice()) continue;
    const majMin = formatDeviceNumber(node.rdev);
    if (mounts.ofDevice(majMin).length > 0 || (await deviceNodeBinds(mounts, majMin)).length > 0) continue;
    await removeReadOnlyView(view, record.device, signal);
    ctx.log.warn({ view, device: record.device }, 'detached a read-only view of the disk that nothing used (left by a publish or unpublish that died)');
  }
}
