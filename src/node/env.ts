// What every node operation works with: the node's settings and the record
// of raw block stagings (a raw block volume has no mount to be found by),
// built once per service; and the two ways an operation reaches the machine
// through them: the path a request names, as the mount table shows it, and
// the volume's disk.
import type { CallContext } from '../csi/context';
import { CsiError } from '../csi/errors';
import type { NodeSettings } from './settings';
import { DEFAULT_DISCOVERY_TIMEOUT_MS } from './settings';
import { confinedRequestPath, type PathKind } from './paths';
import { findVolumeDevice, PUBLISH_CONTEXT_DEVICE_PATH, type FoundDevice } from './devices';
import { StagingStore } from './staging-store';

export interface NodeEnv {
  settings: NodeSettings;
  /** Raw block stagings and their publishes, kept in settings.stateDir. */
  store: StagingStore;
}

export function createNodeEnv(settings: NodeSettings): NodeEnv {
  return { settings, store: new StagingStore(settings.stateDir) };
}

/** A path this call mounts onto, unmounts from or removes, as the mount table shows it (paths.ts confinedRequestPath). */
export const requestPath = (env: NodeEnv, p: string, field: string, kind: PathKind): Promise<string> =>
  confinedRequestPath(p, field, kind, { kubeletRoot: env.settings.kubeletRoot, confine: env.settings.confinePaths ?? false });

export async function discover(
  env: NodeEnv,
  volumeId: string,
  publishContext: Record<string, string> | undefined,
  signal: AbortSignal,
  ctx: CallContext,
  timeoutMs = env.settings.discoveryTimeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS,
): Promise<FoundDevice> {
  const found = await findVolumeDevice({
    volumeId,
    hint: publishContext?.[PUBLISH_CONTEXT_DEVICE_PATH] || undefined,
    deviceRoot: env.settings.deviceRoot,
    sysfsRoot: env.settings.sysfsRoot,
    timeoutMs,
    signal,
    log: ctx.log,
  });
  ctx.annotate({ device: found.path });
  return found;
}

/** The volume's disk as a stage would find it now, without waiting; null when it is not attached here. */
export async function discoverNow(env: NodeEnv, volumeId: string, signal: AbortSignal, ctx: CallContext): Promise<FoundDevice | null> {
  return discover(env, volumeId, undefined, signal, ctx, 0).catch((err: unknown) => {
    if (err instanceof CsiError) return null;
    throw err;
  });
}
