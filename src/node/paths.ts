// Paths arrive in requests and end up as arguments to mount and umount, so we
// accept only plain absolute paths: no NUL, no '.' or '..' segments, no
// doubled slashes. A trailing slash is tolerated and dropped.
import path from 'node:path';
import { realpath } from 'node:fs/promises';
import { invalidArgument, requireField } from '../csi/errors';

export function validatePath(value: string | null | undefined, field: string): string {
  const p = requireField(value, field);
  if (p.includes('\0')) throw invalidArgument(`${field} must not contain NUL`);
  if (!path.posix.isAbsolute(p)) throw invalidArgument(`${field} must be an absolute path, got ${JSON.stringify(p)}`);
  const trimmed = p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
  const segments = trimmed.split('/').slice(1);
  if (segments.some((s) => s === '..' || s === '.' || (s === '' && trimmed !== '/'))) {
    throw invalidArgument(`${field} must be a normalized path without '.' or '..' segments, got ${JSON.stringify(p)}`);
  }
  if (trimmed === '/') throw invalidArgument(`${field} must not be the root directory`);
  return trimmed;
}

/** The path with symlinks resolved, as the mount table shows it; the path itself when it does not exist. */
export async function canonicalPath(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return p;
  }
}

export function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
