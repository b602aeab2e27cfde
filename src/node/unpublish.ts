// NodeUnpublishVolume: unmount the volume's own mounts at the target, remove
// what the publish made there, and detach the read-only view it bound.
import type { Stats } from 'node:fs';
import { readdir, rmdir, unlink } from 'node:fs/promises';
import type { CallContext } from '../csi/context';
import { failedPrecondition } from '../csi/errors';
import { isKubeletTargetOf } from './paths';
import { deviceNumber, findMountAt, formatDeviceNumber } from './mount';
import type { BlockStaging } from './staging-store';
import { readOnlyViewOf, removeReadOnlyView } from './readonly-view';
import { kindOf } from './ownership';
import { discoverNow, requestPath, type NodeEnv } from './env';
import { bigStatOrNull, lstatOrNull } from './fs-helpers';
import { unmountOwn } from './own-mounts';
import { detachUnusedViews, viewOnlyAt } from './block-publishes';

/** The work of a NodeUnpublishVolume, in its in-flight slot (service.ts checked the request). */
export async function unpublishVolume(env: NodeEnv, volumeId: string, targetPath: string, signal: AbortSignal, ctx: CallContext): Promise<void> {
  const target = await requestPath(env, targetPath, 'target_path', 'target');
  const record = await env.store.get(volumeId);
  const published = record?.targets.find((t) => t.path === target);
  // Only the view bound here is detached: not a recorded name that no longer is what is bound here (after a
  // reboot it can be another target's view); a view bound here that the record does not name is one a publish
  // died before recording, or a stale record's.
  const view = record ? await viewBoundAt(env, target, record, published?.readOnlyView ?? null, signal) : null;
  const viewMajMin = view ? await deviceNumber(view).catch(() => null) : null;
  const own = [...(record ? [record.majMin] : []), ...(viewMajMin ? [viewMajMin] : [])];
  const unmounted = await unmountOwn(env, volumeId, target, 'target_path', own, signal, ctx);
  const left = await lstatOrNull(target);
  if (left) await removeTarget(env, volumeId, target, left, unmounted > 0 || published !== undefined, signal, ctx);
  if (record && view && (await viewOnlyAt(view, target, record, signal))) {
    await removeReadOnlyView(view, record.device, signal);
    if (view !== published?.readOnlyView) ctx.log.warn({ targetPath: target, view }, 'detached a read-only view that the record did not name');
  }
  if (record && published) {
    record.targets = record.targets.filter((t) => t !== published);
    await env.store.put(record);
  }
  // A retry after a plugin died between the unmount and the detach: the view is no longer bound here.
  if (record) await detachUnusedViews(env, record, signal, ctx);
  if (unmounted || left) ctx.log.info({ targetPath: target }, 'unpublished volume');
}

/**
 * Remove what a publish made at `target` once nothing is mounted there: the directory of a filesystem
 * publish or the empty file of a raw block one (publish.ts ensureDirectory, ensureFile), with rmdir or unlink, never
 * a recursive delete. `ours` when this call unmounted the volume from it or the raw block record names it;
 * a directory is also when kubelet's vol_data.json beside it names the volume, or the volume's disk is
 * attached here (a retry after a plugin died between the unmount and the rmdir). An empty directory or file
 * that may be ours but is not known to be is left, and the answer is OK: the volume is not published there.
 * What a publish never leaves (a file or directory with something in it, a device node, a socket, a FIFO)
 * is FAILED_PRECONDITION, and stays.
 */
async function removeTarget(env: NodeEnv, volumeId: string, target: string, left: Stats, ours: boolean, signal: AbortSignal, ctx: CallContext): Promise<void> {
  const notEmpty = () => failedPrecondition(`target_path ${target} is a directory with files in it that we did not put there; not removing it`);
  if (left.isDirectory()) {
    if (ours || (await isKubeletTargetOf(target, volumeId)) || (await discoverNow(env, volumeId, signal, ctx))) {
      await rmdir(target).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'ENOTEMPTY' ? notEmpty() : err;
      });
    } else if ((await readdir(target)).length > 0) {
      throw notEmpty();
    } else {
      ctx.log.info({ targetPath: target }, 'left an empty directory at target_path: nothing says a publish of this volume made it');
    }
  } else if (left.isFile()) {
    if (left.size !== 0) throw failedPrecondition(`${target} is a non-empty file that we did not create; not removing it`);
    if (ours) await unlink(target);
    else ctx.log.info({ targetPath: target }, 'left an empty file at target_path: nothing says a publish of this volume made it');
  } else {
    throw failedPrecondition(`target_path ${target} is ${kindOf(left)}, which a publish never makes; not removing it`);
  }
}

/**
 * The read-only view of the record's disk bound at `target`, or null: the
 * recorded one when it is what is bound there, else the view found by the
 * number of the device node bound there (a publish that died before
 * recording it, or a record whose view name is stale).
 */
async function viewBoundAt(env: NodeEnv, target: string, record: BlockStaging, recorded: string | null, signal: AbortSignal): Promise<string | null> {
  const node = await bigStatOrNull(target);
  if (!node?.isBlockDevice() || !(await findMountAt(target, signal))) return null;
  const bound = formatDeviceNumber(node.rdev);
  const recordedNode = recorded ? await bigStatOrNull(recorded) : null;
  if (recorded && recordedNode?.isBlockDevice() && formatDeviceNumber(recordedNode.rdev) === bound) return recorded;
  return readOnlyViewOf(bound, record.device, env.settings.sysfsRoot, signal);
}
