// What is on a block device. Formatting is only ever allowed on a device that
// the probe calls blank, so it looks at the disk itself, not at udev's
// database (which may be stale or absent in a container). One command, one
// fork: `wipefs --no-act` runs every libblkid prober (filesystems, partition
// tables, RAID, LVM, LUKS, swap, ...) and, unlike `blkid -p`, does not stop at
// the first match nor drop a signature whose checksum is bad, so it lists
// every signature on the device with its usage class. Beside it, in-process,
// the partitions the kernel has already found (sysfs).
//
// The fast path skips the fork for a new volume, which reads as zeros: when
// every place the installed libblkid reads is zero, wipefs would find nothing
// (blkid-places.ts says which places, and when that is known).
import { readdir, access, open } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';
import { blkidTools, fastPathRanges } from './blkid-places';
import { formatDeviceNumber } from './mount';
import { sysfsDeviceSectors } from './stats';

export interface DeviceContents {
  /** Filesystem type (a signature of usage "filesystem"), e.g. 'ext4', or null. */
  filesystem: string | null;
  /** Partition table type (usage "partition-table"), e.g. 'dos' or 'gpt', or null. */
  partitionTable: string | null;
  /** Every other signature found (swap, LVM2_member, crypto_LUKS, a second partition table type, ...). */
  otherSignatures: string[];
  /** Partitions the kernel lists under the device in sysfs. */
  partitions: string[];
  /** Several different filesystems were found: which one is real cannot be told. */
  ambivalent: boolean;
}

export interface Signature {
  type: string;
  /** libblkid's usage class: 'filesystem', 'partition-table', 'raid', 'crypto', 'other'. */
  usage: string;
  offset: string;
}

export async function probeDevice(device: string, sysfsRoot: string, signal?: AbortSignal): Promise<DeviceContents> {
  const [zero, partitions] = await Promise.all([readPlacesAreZero(device, sysfsRoot), sysfsPartitions(path.basename(device), sysfsRoot)]);
  if (zero) return classifySignatures([], partitions);
  const wipefs = await run('wipefs', ['--no-act', '--json', '--output', 'TYPE,USAGE,OFFSET', '--', device], { signal });
  return classifySignatures(parseWipefs(wipefs.stdout), partitions);
}

// ---- the fast path -----------------------------------------------------------

/** Reads of at most this size, PARALLEL_READS at a time on libuv's thread pool. */
const CHUNK_BYTES = 128 * 1024;
const PARALLEL_READS = 3;

/**
 * Read buffers kept between checks. Fresh memory for every check would cost a
 * page fault per 4 KiB as the kernel copies into it (~1.4 ms of a ~4.5 ms
 * check on a new 1 GiB volume here); one set per concurrent check is kept
 * (PARALLEL_READS x CHUNK_BYTES = 384 KiB), at most SPARE_SETS of them, and only
 * once the node has staged a volume.
 */
const SPARE_SETS = 2;
const spareBuffers: Buffer[][] = [];

function takeBuffers(): Buffer[] {
  return spareBuffers.pop() ?? Array.from({ length: PARALLEL_READS }, () => Buffer.allocUnsafeSlow(CHUNK_BYTES));
}

function giveBack(set: Buffer[]): void {
  if (spareBuffers.length < SPARE_SETS) spareBuffers.push(set);
}

/** True when the fast path applies and every place reads as zeros. Any problem answers false (wipefs decides). */
export async function readPlacesAreZero(device: string, sysfsRoot: string): Promise<boolean> {
  let handle;
  let buffers: Buffer[] | undefined;
  try {
    const tools = await blkidTools();
    if (!tools.places) return false;
    // The size and kind of the very device opened, not of whatever the path names later.
    handle = await open(device, 'r');
    const st = await handle.stat({ bigint: true });
    if (!st.isBlockDevice()) return false;
    const majMin = formatDeviceNumber(st.rdev);
    const sectors = await sysfsDeviceSectors(sysfsRoot, majMin);
    const ranges = sectors === null ? null : fastPathRanges(tools, sysfsRoot, majMin, sectors * 512);
    if (!ranges) return false;
    const file = handle;
    const chunks = splitRanges(ranges, CHUNK_BYTES);
    const set = (buffers = takeBuffers());
    // A few reads at a time (libuv's pool has four threads, shared with every other file call,
    // such as a stats RPC's); stop at the first chunk that is not zeros.
    for (let i = 0; i < chunks.length; i += PARALLEL_READS) {
      const reads = chunks.slice(i, i + PARALLEL_READS).map(async ([position, length], j) => {
        const { bytesRead } = await file.read(set[j], 0, length, position);
        return bytesRead === length && isZero(set[j], length);
      });
      const answers = await Promise.allSettled(reads);
      if (!answers.every((a) => a.status === 'fulfilled' && a.value)) return false;
    }
    // Grown while we read (an online resize): the end places moved.
    return (await sysfsDeviceSectors(sysfsRoot, majMin)) === sectors;
  } catch {
    return false;
  } finally {
    // Every read has settled here (allSettled), so no read still writes into these buffers.
    if (buffers) giveBack(buffers);
    await handle?.close();
  }
}

/** Ranges cut into chunks of at most `chunk` bytes. */
export function splitRanges(ranges: ReadonlyArray<[number, number]>, chunk: number): Array<[number, number]> {
  const chunks: Array<[number, number]> = [];
  for (const [start, length] of ranges) {
    for (let p = start; p < start + length; p += chunk) chunks.push([p, Math.min(chunk, start + length - p)]);
  }
  return chunks;
}

/** A page of zeros to compare against: Buffer.compare is a native memcmp, ~20x a JS loop (and no JIT warm-up on a cold path). */
const ZEROS = Buffer.alloc(64 * 1024);

/** Whether the first `length` bytes of `buffer` are zeros. */
function isZero(buffer: Buffer, length: number): boolean {
  for (let offset = 0; offset < length; offset += ZEROS.length) {
    const end = Math.min(offset + ZEROS.length, length);
    if (buffer.compare(ZEROS, 0, end - offset, offset, end) !== 0) return false;
  }
  return true;
}

/** Sort wipefs's signatures into what the stage decision needs. */
export function classifySignatures(signatures: readonly Signature[], partitions: string[]): DeviceContents {
  const contents: DeviceContents = { filesystem: null, partitionTable: null, otherSignatures: [], partitions, ambivalent: false };
  for (const sig of signatures) {
    if (sig.usage === 'filesystem') {
      if (contents.filesystem === null) contents.filesystem = sig.type;
      else if (contents.filesystem !== sig.type) contents.ambivalent = true;
      // the same filesystem's signature twice (primary and backup superblock) is one filesystem
      else continue;
    } else if (isPartitionTableUsage(sig.usage) && contents.partitionTable === null) {
      contents.partitionTable = sig.type;
      continue;
    }
    if (sig.type !== contents.filesystem && sig.type !== contents.partitionTable && !contents.otherSignatures.includes(sig.type)) {
      contents.otherSignatures.push(sig.type);
    }
  }
  return contents;
}

/** wipefs writes 'partition-table'; accept the spelled-out form too. Anything unrecognised still counts as a signature. */
function isPartitionTableUsage(usage: string): boolean {
  return usage === 'partition-table' || usage === 'partition table';
}

/** True only when no probe found anything at all. */
export function isBlank(c: DeviceContents): boolean {
  return (
    !c.ambivalent && c.filesystem === null && c.partitionTable === null && c.otherSignatures.length === 0 && c.partitions.length === 0
  );
}

export function describeContents(c: DeviceContents): string {
  const parts: string[] = [];
  if (c.filesystem) parts.push(`a ${c.filesystem} filesystem`);
  if (c.partitionTable) parts.push(`a ${c.partitionTable} partition table`);
  if (c.partitions.length) parts.push(`partitions ${c.partitions.join(', ')}`);
  if (c.otherSignatures.length) parts.push(`signatures ${c.otherSignatures.join(', ')}`);
  if (c.ambivalent) parts.push('conflicting signatures');
  return parts.length ? parts.join(', ') : 'nothing';
}

export function parseWipefs(stdout: string): Signature[] {
  if (!stdout.trim()) return [];
  const parsed = JSON.parse(stdout) as { signatures?: { type?: string; usage?: string; offset?: string }[] };
  return (parsed.signatures ?? []).map((s) => ({ type: s.type || 'unknown', usage: s.usage || 'unknown', offset: s.offset ?? '' }));
}

/** Partition directories (those holding a 'partition' file) under <sysfsRoot>/block/<name>. */
async function sysfsPartitions(name: string, sysfsRoot: string): Promise<string[]> {
  const dir = path.join(sysfsRoot, 'block', name);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries.filter((e) => e.startsWith(name))) {
    try {
      await access(path.join(dir, entry, 'partition'));
      found.push(entry);
    } catch {
      // not a partition
    }
  }
  return found;
}

/** An xfs superblock: its magic, and sb_inprogress, which mkfs.xfs sets in its first superblock write and clears when it has finished. */
const XFS_MAGIC = Buffer.from('XFSB');
const XFS_SB_INPROGRESS_OFFSET = 126;

/**
 * Whether `device` starts with an xfs superblock that mkfs.xfs never finished
 * (it was interrupted): libblkid calls it xfs, but it is not a filesystem yet,
 * and the kernel refuses to mount it.
 */
export async function isUnfinishedXfs(device: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(device, 'r');
    const sb = Buffer.alloc(512);
    const { bytesRead } = await handle.read(sb, 0, sb.length, 0);
    return bytesRead === sb.length && sb.subarray(0, XFS_MAGIC.length).equals(XFS_MAGIC) && sb[XFS_SB_INPROGRESS_OFFSET] !== 0;
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}
