// NodeUnstageVolume: unmount the staged filesystem, or forget the raw block
// staging record, once nothing of the volume is published any more.
import type { CallContext } from '../csi/context';
import { failedPrecondition } from '../csi/errors';
import { run } from '../util/exec';
import type { Logger } from '../log';
import { deviceNumber, isBlockDevice, listMounts } from './mount';
import { requestPath, type NodeEnv } from './env';
import { unmountOwn, whyNotOurs } from './own-mounts';
import { detachUnusedViews, mountedTargets } from './block-publishes';

/** The work of a NodeUnstageVolume, in its in-flight slot (service.ts checked the request). */
export async function unstageVolume(env: NodeEnv, volumeId: string, stagingPath: string, signal: AbortSignal, ctx: CallContext): Promise<void> {
  const canonical = await requestPath(env, stagingPath, 'staging_target_path', 'staging');
  const mounts = await listMounts(signal);
  const staged = mounts.at(canonical);
  if (staged) {
    const why = await whyNotOurs(env, volumeId, canonical, staged, [], signal, ctx);
    if (why) throw failedPrecondition(`staging_target_path ${canonical} holds ${why}; volume ${volumeId} is not staged there, and it is left as it is`);
    const stillPublished = mounts.ofDevice(staged.majMin).filter((m) => m.target !== canonical);
    if (stillPublished.length > 0) {
      throw failedPrecondition(
        `volume ${volumeId} is still mounted at ${stillPublished.map((m) => m.target).join(', ')}; unpublish it first`,
      );
    }
    await syncBeforeUnmount(canonical, volumeId, signal, ctx.log);
    await unmountOwn(env, volumeId, canonical, 'staging_target_path', [staged.majMin], signal, ctx);
    if (await isBlockDevice(staged.source)) await flushBuffers(staged.source, signal);
    ctx.log.info({ stagingPath: canonical, device: staged.source }, 'unstaged volume');
  }
  const record = await env.store.get(volumeId);
  if (record && record.stagingPath === canonical) {
    const published = await mountedTargets(record, signal);
    if (published.length > 0) {
      throw failedPrecondition(`volume ${volumeId} is still published at ${published.join(', ')}; unpublish it first`);
    }
    if ((await isBlockDevice(record.device)) && (await deviceNumber(record.device)) === record.majMin) {
      await flushBuffers(record.device, signal);
    }
    await detachUnusedViews(env, record, signal, ctx);
    await env.store.remove(volumeId);
    ctx.log.info({ stagingPath: canonical, device: record.device }, 'unstaged raw block volume');
  }
}

/**
 * Write back what the pods wrote before the volume is unmounted and detached.
 * A failure is logged and the unstage goes on: Linux reports a failed
 * writeback once and drops the pages, so nothing is saved by refusing, and on
 * a disk that is gone (detached under the node) xfs fails every later sync,
 * which would keep the volume staged for ever.
 */
async function syncBeforeUnmount(mountPoint: string, volumeId: string, signal: AbortSignal, log: Logger): Promise<void> {
  try {
    await run('sync', ['-f', '--', mountPoint], { signal });
  } catch (err) {
    if (signal.aborted) throw err;
    log.warn({ volume_id: volumeId, mountPoint, err: (err as Error).message }, 'writing back the volume failed; data written since the last sync may be lost; unmounting anyway');
  }
}

async function flushBuffers(device: string, signal: AbortSignal): Promise<void> {
  await run('blockdev', ['--flushbufs', device], { signal });
}
