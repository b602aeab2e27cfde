// Paths arrive in requests and end up as arguments to mount and umount, so we
// accept only plain absolute paths: no control characters (NUL, newline), no
// '.' or '..' segments, no doubled slashes, within the kernel's PATH_MAX and
// NAME_MAX; and none that resolves to the root directory (a symlink to '/').
// A trailing slash is tolerated and dropped.
//
// A path the node mounts onto, unmounts from or removes must also be the place
// it appears to be (confinedRequestPath): no symlink in it, except in and above
// kubelet's root directory, which the host may have put there; with
// driver.node.confine_paths, only kubelet's own directories.
import path from 'node:path';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { hasControlCharacter, invalidArgument, notFound, requireField } from '../csi/errors';

/** Linux's PATH_MAX (with the terminating NUL) and NAME_MAX, in bytes. */
const PATH_MAX = 4096;
const NAME_MAX = 255;

export function validatePath(value: string | null | undefined, field: string): string {
  const p = requireField(value, field);
  if (hasControlCharacter(p)) throw invalidArgument(`${field} must not contain control characters (NUL, newline), got ${JSON.stringify(p)}`);
  if (Buffer.byteLength(p) >= PATH_MAX) throw invalidArgument(`${field} is ${Buffer.byteLength(p)} bytes long; a path has fewer than ${PATH_MAX}`);
  if (!path.posix.isAbsolute(p)) throw invalidArgument(`${field} must be an absolute path, got ${JSON.stringify(p)}`);
  const trimmed = p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
  const segments = trimmed.split('/').slice(1);
  if (segments.some((s) => s === '..' || s === '.' || (s === '' && trimmed !== '/'))) {
    throw invalidArgument(`${field} must be a normalized path without '.' or '..' segments, got ${JSON.stringify(p)}`);
  }
  if (segments.some((s) => Buffer.byteLength(s) > NAME_MAX)) throw invalidArgument(`${field} has a component longer than ${NAME_MAX} bytes`);
  if (trimmed === '/') throw invalidArgument(`${field} must not be the root directory`);
  return trimmed;
}

/**
 * For calls that only look a volume up by its path (NodeGetVolumeStats,
 * NodeExpandVolume): a path that could never have been published, such as a
 * relative one, means the volume is not there, which the spec answers with
 * NOT_FOUND. A missing field is still INVALID_ARGUMENT.
 */
export function lookupPath(value: string | null | undefined, field: string, volumeId: string): string {
  requireField(value, field);
  try {
    return validatePath(value, field);
  } catch (e) {
    throw notFound(`volume ${volumeId} is not published at ${field} ${JSON.stringify(value)}: ${(e as Error).message}`);
  }
}

/**
 * The path with symlinks resolved, as the mount table shows it. A path that
 * does not exist yet (a raw block target before its file is made) gets its
 * parent resolved: the kernel mounts at the resolved path, and the path we
 * record must be the one we later find there. The path itself when its
 * parent does not exist either.
 */
export async function canonicalPath(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    try {
      return path.join(await realpath(path.dirname(p)), path.basename(p));
    } catch {
      return p;
    }
  }
}

/**
 * The canonical path of request field `field` (validated already), refused
 * when it resolves to the root directory (a symlink to '/'), as '/' itself is:
 * nothing is mounted over it or unmounted from it.
 */
export async function resolveRequestPath(p: string, field: string): Promise<string> {
  const resolved = await canonicalPath(p);
  if (resolved === '/') throw invalidArgument(`${field} ${p} resolves to the root directory (a symlink to /); it must not`);
  return resolved;
}

/** Which of kubelet's directories a request path may be in under driver.node.confine_paths. */
export type PathKind = 'staging' | 'target' | 'volume';

export interface PathRules {
  /** kubelet's root directory as configured (its --root-dir): it, and what is above it, may be reached through symlinks. */
  kubeletRoot: string;
  /** Accept only paths in kubelet's own directories for staging and publishing (CONFINED). */
  confine: boolean;
}

/**
 * Where kubelet puts staging and target paths, relative to its root directory
 * (pkg/volume/csi: csi_attacher.go makeDeviceMountPath
 * plugins/kubernetes.io/csi/<driver>/<sha256 of the volume handle>/globalmount, before
 * 1.24 plugins/kubernetes.io/csi/pv/<pv>/globalmount; csi_block.go
 * plugins/kubernetes.io/csi/volumeDevices/staging/<pv> and
 * plugins/kubernetes.io/csi/volumeDevices/publish/<pv>/<pod UID>; csi_mounter.go
 * pods/<pod UID>/volumes/kubernetes.io~csi/<pv>/mount). A path must lie below one of them.
 */
const STAGING_DIRS = ['plugins/kubernetes.io/csi'];
const TARGET_DIRS = ['pods', 'plugins/kubernetes.io/csi/volumeDevices/publish'];
const CONFINED: Record<PathKind, string[]> = { staging: STAGING_DIRS, target: TARGET_DIRS, volume: [...STAGING_DIRS, ...TARGET_DIRS] };

/** `p` relative to directory `dir` when it lies below it or is it; null otherwise. */
function below(p: string, dir: string): string | null {
  if (p === dir) return '';
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return p.startsWith(prefix) ? p.slice(prefix.length) : null;
}

/**
 * The path of request field `field` (validated already) as the mount table
 * shows it, for the calls that mount, unmount or remove there. INVALID_ARGUMENT
 * when it goes through a symlink, itself included: a symlink made inside a
 * volume (pods can write there) would take a mount, an unmount or a removal
 * anywhere on the node. The host's own symlinks in and above kubelet's root
 * directory (/var/lib/kubelet a link to a data disk, on some distributions)
 * are expected, so a path below the root is compared with the root's real
 * path. A path that does not exist yet is resolved as far as it exists; a
 * dangling symlink on the way is refused too. With `rules.confine`, the path
 * must also lie in kubelet's directories for `kind` (CONFINED).
 */
export async function confinedRequestPath(p: string, field: string, kind: PathKind, rules: PathRules): Promise<string> {
  const root = path.resolve(rules.kubeletRoot);
  const realRoot = await realpath(root).catch(() => root);
  const rel = below(p, root) ?? below(p, realRoot);
  if (rules.confine && (rel === null || !CONFINED[kind].some((dir) => (below(rel, dir) ?? '') !== ''))) {
    const allowed = CONFINED[kind].map((dir) => `${path.join(root, dir)}/`).join(' or ');
    throw invalidArgument(`${field} ${p} is not in kubelet's directories: this node accepts only paths below ${allowed} (driver.node.confine_paths)`);
  }
  const expected = rel === null ? p : path.join(realRoot, rel);
  const resolved = await resolveWithoutLinks(p, field);
  if (resolved !== expected) {
    throw invalidArgument(`${field} ${p} goes through a symlink (it leads to ${resolved}); only kubelet's root directory ${root} may be reached through one`);
  }
  if (resolved === '/') throw invalidArgument(`${field} ${p} resolves to the root directory; it must not`);
  return resolved;
}

/** `p` with its existing directories resolved (realpath); INVALID_ARGUMENT when `p` itself, or a dangling link on the way, is a symlink. */
async function resolveWithoutLinks(p: string, field: string): Promise<string> {
  const refuse = (link: string) => invalidArgument(`${field} ${p} goes through a symlink (${link}); request paths must be real paths`);
  if ((await lstat(p).catch(() => null))?.isSymbolicLink()) throw refuse(p);
  const rest: string[] = [path.basename(p)];
  for (let dir = path.dirname(p); ; dir = path.dirname(dir)) {
    try {
      return path.join(await realpath(dir), ...rest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw refuse(dir);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // Missing, or a symlink that leads nowhere: only the second is refused.
      if ((await lstat(dir).catch(() => null))?.isSymbolicLink()) throw refuse(dir);
      rest.unshift(path.basename(dir));
    }
  }
}

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/**
 * Whether `target` is kubelet's publish directory for `volumeId`: kubelet saves vol_data.json, with the
 * volume's handle, beside it (pkg/volume/csi/csi_mounter.go SetUpAt) and keeps it until the unpublish.
 */
export async function isKubeletTargetOf(target: string, volumeId: string): Promise<boolean> {
  try {
    const data = JSON.parse(await readFile(path.join(path.dirname(target), 'vol_data.json'), 'utf8')) as { volumeHandle?: unknown };
    return data.volumeHandle === volumeId;
  } catch {
    return false;
  }
}
