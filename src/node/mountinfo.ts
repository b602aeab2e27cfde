// The kernel's mount table, read in-process from /proc/self/mountinfo instead
// of forking findmnt (a fork+exec costs milliseconds; this read costs a
// fraction of one). Nothing is cached: every caller reads the table afresh, so
// a mount made or removed by anyone between two calls is always seen.
//
// Each line (proc(5)):
//   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2) (3)   (4)   (5)         (6)        (7...)  -  (8)   (9)       (10)
// 1 mount ID, 2 parent ID, 3 major:minor of the filesystem's device, 4 root of
// the mount within the filesystem (a bind of a subtree or a file shows it), 5
// mount point, 6 per-mount options, 7 zero or more optional fields ended by a
// lone '-', 8 filesystem type, 9 source, 10 superblock options.
//
// The kernel escapes space, tab, newline and backslash in paths and in the
// source as a backslash and three octal digits (\040, \011, \012, \134), so
// fields never contain a space and lines never contain a newline.
import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** Mount point, unescaped. */
  target: string;
  /** The mounted device or filesystem name, unescaped (never with findmnt's "[/fsroot]" suffix). */
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

export const PROC_MOUNTINFO = '/proc/self/mountinfo';

/** Undo the kernel's octal escapes (\040 and friends); any other backslash is kept as it is. */
export function unescapeMountinfo(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\([0-3][0-7]{2})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parse one mountinfo line; null for a line that does not have the shape
 * proc(5) documents (a kernel adding fields after the separator is fine).
 */
export function parseMountinfoLine(line: string): MountEntry | null {
  const fields = line.split(' ');
  if (fields.length < 10) return null;
  // Optional fields (shared:N, master:N, propagate_from:N, unbindable) run up to a lone '-'.
  const sep = fields.indexOf('-', 6);
  if (sep < 0 || fields.length < sep + 4) return null;
  const majMin = fields[2];
  if (!/^\d+:\d+$/.test(majMin)) return null;
  return {
    target: unescapeMountinfo(fields[4]),
    source: unescapeMountinfo(fields[sep + 2]),
    fstype: unescapeMountinfo(fields[sep + 1]),
    vfsOptions: splitOptions(fields[5]),
    fsOptions: splitOptions(fields[sep + 3]),
    fsroot: unescapeMountinfo(fields[3]),
    majMin,
  };
}

/** Every mount in the table, in mount order (a later entry covers an earlier one at the same target). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const entry = parseMountinfoLine(line);
    if (entry) out.push(entry);
  }
  return out;
}

/**
 * Read and parse the mount table of this process's mount namespace. The read
 * is synchronous on purpose: procfs builds the text from kernel memory (no
 * disk, no network), so it cannot stall the way a filesystem can, and one
 * read() here costs less than the five thread-pool round trips (open, fstat,
 * read, read, close) of an asynchronous readFile, which is what a stats call
 * under load waits on.
 */
export async function readMountinfo(file = PROC_MOUNTINFO): Promise<MountEntry[]> {
  return parseMountinfo(readFileSync(file, 'utf8'));
}

function splitOptions(value: string): string[] {
  // Options are escaped like paths (a mount option can carry a path, e.g. an overlay's lowerdir).
  return value && value !== '-' ? value.split(',').map(unescapeMountinfo) : [];
}
