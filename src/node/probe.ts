// What is on a block device. Formatting is only ever allowed on a device that
// the probe calls blank, so it looks at the disk itself, not at udev's
// database (which may be stale or absent in a container). One command, one
// fork: `wipefs --no-act` runs every libblkid prober (filesystems, partition
// tables, RAID, LVM, LUKS, swap, ...) and, unlike `blkid -p`, does not stop at
// the first match nor drop a signature whose checksum is bad, so it lists
// every signature on the device with its usage class. Beside it, in-process,
// the partitions the kernel has already found (sysfs).
//
// The fast path skips the fork for a new volume, which reads as zeros. libblkid
// decides only from the bytes it reads, and where it reads first does not
// depend on what it finds. So if every byte a given libblkid version reads on an
// all-zero device is zero on this device too, wipefs would run exactly as on
// the all-zero device and find nothing. Those places are listed per util-linux
// version (READ_PLACES, checked by an strace in test/node/probe.test.ts); with
// any other version, or a device unlike the ones checked, wipefs always runs.
import { readFileSync } from 'node:fs';
import { readdir, access, open } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';
import { deviceNumber } from './mount';
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

/** The C locale: output that does not depend on the node's language settings (and no locale files to load). */
const WIPEFS_ENV = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' });

export async function probeDevice(device: string, sysfsRoot: string, signal?: AbortSignal): Promise<DeviceContents> {
  const [zero, partitions] = await Promise.all([readPlacesAreZero(device, sysfsRoot), sysfsPartitions(path.basename(device), sysfsRoot)]);
  if (zero) return classifySignatures([], partitions);
  const wipefs = await run('wipefs', ['--no-act', '--json', '--output', 'TYPE,USAGE,OFFSET', '--', device], { signal, env: WIPEFS_ENV() });
  return classifySignatures(parseWipefs(wipefs.stdout), partitions);
}

// ---- the fast path -----------------------------------------------------------

/** A byte range, from the start of the device or back from its end. */
export interface ReadPlace {
  from: 'start' | 'end';
  /** Bytes from the start, or bytes back from the end to the place's first byte. */
  offset: number;
  length: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Every byte `wipefs --no-act` reads on an all-zero device, by util-linux
 * version, rounded out to 4 KiB pages. Taken with
 * `strace -e trace=lseek,read,pread64 wipefs --no-act --json -- DEV` on
 * sparse loop devices of 1, 10 and 100 GiB (512-byte sectors, not zoned): the
 * same places on each. What is read there (util-linux 2.38.1): the first
 * 512.5 KiB (superblocks and labels: ext at 1 KiB, ISO 9660 and UDF at 32 KiB,
 * btrfs at 64 KiB, ZFS L0/L1, LVM2, MD 1.1/1.2, LUKS2 secondary headers up to
 * 512 KiB, ...); one sector each at 1, 2 and 4 MiB (VMFS, LUKS2 secondary
 * headers); 24 bytes 1,543.5 KiB before the end; and the last 512 KiB (GPT's
 * backup header, MD 0.90/1.0, ZFS L2/L3, DRBD, nilfs2's second superblock).
 * A version not listed here always runs wipefs.
 */
export const READ_PLACES: Readonly<Record<string, readonly ReadPlace[]>> = {
  '2.38.1': [
    { from: 'start', offset: 0, length: 516 * KiB },
    { from: 'start', offset: 1 * MiB, length: 4 * KiB },
    { from: 'start', offset: 2 * MiB, length: 4 * KiB },
    { from: 'start', offset: 4 * MiB, length: 4 * KiB },
    { from: 'end', offset: 1544 * KiB, length: 4 * KiB },
    { from: 'end', offset: 512 * KiB, length: 512 * KiB },
  ],
};

/**
 * Devices at least this large have every place apart (the checked devices
 * were 1 GiB and up; a Cinder volume is at least 1 GiB). A smaller one is
 * probed by wipefs.
 */
export const FAST_PATH_MIN_BYTES = 64 * MiB;

/** [position, length] of each place on a device of `size` bytes, in order. */
export function placeRanges(places: readonly ReadPlace[], size: number): Array<[number, number]> {
  return places
    .map((p): [number, number] => [p.from === 'start' ? p.offset : size - p.offset, p.length])
    .sort((a, b) => a[0] - b[0]);
}

/** "wipefs from util-linux 2.38.1" -> "2.38.1". */
export function parseUtilLinuxVersion(text: string): string | null {
  return /util-linux\s+(\d+(?:\.\d+)+)/.exec(text)?.[1] ?? null;
}

let wipefsVersion: Promise<string | null> | undefined;

/**
 * The util-linux version of the wipefs on PATH, asked once per process (null
 * when it cannot be told). The node service asks at start-up, so the first
 * stage does not wait for it.
 */
export function installedWipefsVersion(): Promise<string | null> {
  wipefsVersion ??= run('wipefs', ['--version'], { env: WIPEFS_ENV(), timeoutMs: 10_000 }).then(
    (r) => parseUtilLinuxVersion(r.stdout),
    () => null,
  );
  return wipefsVersion;
}

/**
 * The places to read on this device for the fast path, or null when wipefs
 * must run: an unchecked util-linux version, a small device, or a device unlike
 * the checked ones (other than 512-byte logical sectors, or zoned, where some
 * probers read elsewhere).
 */
export async function fastPathRanges(device: string, sysfsRoot: string, version: string | null): Promise<Array<[number, number]> | null> {
  const places = version !== null && Object.hasOwn(READ_PLACES, version) ? READ_PLACES[version] : null;
  if (!places) return null;
  const majMin = await deviceNumber(device);
  const sectors = await sysfsDeviceSectors(sysfsRoot, majMin);
  if (sectors === null || sectors * 512 < FAST_PATH_MIN_BYTES) return null;
  const queue = path.join(sysfsRoot, 'dev', 'block', majMin, 'queue');
  if (readSysfs(path.join(queue, 'logical_block_size')) !== '512') return null;
  const zoned = readSysfs(path.join(queue, 'zoned'));
  if (zoned !== null && zoned !== 'none') return null;
  return placeRanges(places, sectors * 512);
}

function readSysfs(file: string): string | null {
  try {
    // sysfs answers from kernel memory: one read() beats a thread-pool round trip.
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Reads of at most this size, PARALLEL_READS at a time on libuv's thread pool. */
const CHUNK_BYTES = 256 * KiB;
const PARALLEL_READS = 3;

/** True when the fast path applies and every place reads as zeros. Any read problem answers false (wipefs decides). */
export async function readPlacesAreZero(device: string, sysfsRoot: string): Promise<boolean> {
  let handle;
  try {
    const ranges = await fastPathRanges(device, sysfsRoot, await installedWipefsVersion());
    if (!ranges) return false;
    handle = await open(device, 'r');
    const file = handle;
    const chunks = splitRanges(ranges, CHUNK_BYTES);
    // A few reads at a time (libuv's pool has four threads, shared with every other file call,
    // such as a stats RPC's); stop at the first chunk that is not zeros.
    for (let i = 0; i < chunks.length; i += PARALLEL_READS) {
      const reads = chunks.slice(i, i + PARALLEL_READS).map(async ([position, length]) => {
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(buffer, 0, length, position);
        return bytesRead === length && isZero(buffer);
      });
      const answers = await Promise.allSettled(reads);
      if (!answers.every((a) => a.status === 'fulfilled' && a.value)) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
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

function isZero(buffer: Buffer): boolean {
  for (let offset = 0; offset < buffer.length; offset += ZEROS.length) {
    const end = Math.min(offset + ZEROS.length, buffer.length);
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
