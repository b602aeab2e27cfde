// The kernel's mount table, read in-process from /proc/self/mountinfo instead
// of forking findmnt (a fork+exec costs milliseconds; this read costs a
// fraction of one). Nothing is cached: every caller reads the table afresh, so
// a mount made or removed by anyone between two calls is always seen.
//
// A busy Kubernetes node has hundreds of mounts (every pod's token, secrets and
// container root filesystems), and a lookup wants one or two of them. So a
// MountTable keeps the text and parses only the lines a lookup can match: a
// native substring search finds them (parsing a 1,000-line table takes ~3.5 ms
// in the node plugin's interpreter-only V8; a search, a few microseconds).
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

/** Escape a path the way the kernel writes it in mountinfo (the inverse of unescapeMountinfo for real paths). */
export function escapeMountinfo(p: string): string {
  return p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** One snapshot of the mount table. Lookups parse only the lines they can match. */
export class MountTable {
  private parsed: MountEntry[] | undefined;

  constructor(readonly text: string) {}

  /** Every mount, in mount order (a later entry covers an earlier one at the same target). */
  all(): MountEntry[] {
    return (this.parsed ??= parseMountinfo(this.text));
  }

  /** The topmost mount at exactly `target` (a canonical absolute path), if any. */
  at(target: string): MountEntry | undefined {
    let top: MountEntry | undefined;
    for (const m of this.linesWith(` ${escapeMountinfo(target)} `)) if (m.target === target) top = m;
    return top;
  }

  /** Mounts of the filesystem on device `majMin` ("major:minor"), in mount order. */
  ofDevice(majMin: string): MountEntry[] {
    return this.linesWith(` ${majMin} `).filter((m) => m.majMin === majMin);
  }

  /** Mounts of filesystems of type `fstype`, in mount order. */
  ofType(fstype: string): MountEntry[] {
    return this.linesWith(` - ${escapeMountinfo(fstype)} `).filter((m) => m.fstype === fstype);
  }

  /**
   * Mounts of type `fstype` that show part of their filesystem (a bind of a
   * subtree or of one file: fsroot is not '/'). A node has hundreds of whole
   * tmpfs mounts (every pod's secrets and token); their lines are not parsed.
   */
  bindsOfType(fstype: string): MountEntry[] {
    const partial = (line: string): boolean => !line.startsWith('/ ', nthSpace(line, 3) + 1);
    return this.linesWith(` - ${escapeMountinfo(fstype)} `, partial).filter((m) => m.fstype === fstype && m.fsroot !== '/');
  }

  /**
   * The parsed lines that contain `needle`, in order. Fields are separated by
   * single spaces and escaped (no field holds a space or a newline), so a field
   * searched for with a space on each side can only match a whole field; the
   * caller checks that it is the field it meant.
   */
  private linesWith(needle: string, keep?: (line: string) => boolean): MountEntry[] {
    const out: MountEntry[] = [];
    const text = this.text;
    let from = 0;
    for (;;) {
      const hit = text.indexOf(needle, from);
      if (hit < 0) return out;
      const start = text.lastIndexOf('\n', hit) + 1;
      const newline = text.indexOf('\n', hit);
      const end = newline < 0 ? text.length : newline;
      const line = text.slice(start, end);
      const entry = keep === undefined || keep(line) ? parseMountinfoLine(line) : null;
      if (entry) out.push(entry);
      from = end;
    }
  }
}

/** Index of the n-th space (1-based) in `line`, or -1. */
function nthSpace(line: string, n: number): number {
  let at = -1;
  for (let i = 0; i < n; i++) {
    at = line.indexOf(' ', at + 1);
    if (at < 0) return -1;
  }
  return at;
}

/**
 * Read the mount table of this process's mount namespace. The read is
 * synchronous on purpose: procfs builds the text from kernel memory (no disk,
 * no network), so it cannot stall the way a filesystem can, and one read()
 * here costs less than the five thread-pool round trips (open, fstat, read,
 * read, close) of an asynchronous readFile, which is what a stats call under
 * load waits on.
 */
export function readMountTable(file = PROC_MOUNTINFO): MountTable {
  return new MountTable(readFileSync(file, 'utf8'));
}

function splitOptions(value: string): string[] {
  // Options are escaped like paths (a mount option can carry a path, e.g. an overlay's lowerdir).
  return value && value !== '-' ? value.split(',').map(unescapeMountinfo) : [];
}
