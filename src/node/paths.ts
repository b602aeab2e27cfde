// Paths arrive in requests and end up as arguments to mount and umount, so we
// accept only plain absolute paths: no control characters (NUL, newline), no
// '.' or '..' segments, no doubled slashes, within the kernel's PATH_MAX and
// NAME_MAX; and none that resolves to the root directory (a symlink to '/').
// A trailing slash is tolerated and dropped.
import path from 'node:path';
import { realpath } from 'node:fs/promises';
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

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
