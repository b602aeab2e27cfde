// Where libblkid looks on a device, for the blank check's fast path (probe.ts).
//
// libblkid decides only from the bytes it reads, and where it first reads does
// not depend on what it finds. So if every byte that a given util-linux reads
// on an all-zero device is zero on this device too, wipefs would run exactly as
// on the all-zero device and find nothing, and its fork can be saved. The
// places are listed per util-linux version and proven by an strace in
// test/node/probe.test.ts. Any other version, or a device unlike the ones
// traced, gets the real wipefs.
import { run } from '../util/exec';
import { sysfsAttribute } from './stats';

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
 * version (wipefs and libblkid both), rounded out to 4 KiB pages. Taken with
 * `strace -y -e trace=%desc wipefs --no-act --json -- DEV` on sparse loop
 * devices of 64 MiB to 100 GiB (512-byte sectors, sizes in whole MiB): the
 * same places on each. For util-linux 2.38.1 they are:
 * - the first 512.5 KiB: superblocks and labels (ext at 1 KiB, ISO 9660 and UDF
 *   at 32 KiB, btrfs at 64 KiB, ZFS L0/L1, LVM2, MD 1.1/1.2, LUKS2 secondary
 *   headers up to 512 KiB, ...);
 * - one sector each at 1, 2 and 4 MiB (VMFS, LUKS2 secondary headers);
 * - 24 bytes 1,543.5 KiB before the end;
 * - the last 512 KiB (GPT's backup header, MD 0.90/1.0, ZFS L2/L3, DRBD,
 *   nilfs2's second superblock).
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

/** The smallest device traced. A Cinder volume is at least 1 GiB. */
export const FAST_PATH_MIN_BYTES = 64 * MiB;
/**
 * Devices traced were whole MiB in size. Some probers place their end labels
 * by the size's remainder (ZFS aligns its last labels to 256 KiB), so other
 * sizes read elsewhere. A Cinder volume is whole GiB.
 */
export const FAST_PATH_SIZE_UNIT = 1 * MiB;

/** [position, length] of each place on a device of `size` bytes, in order. */
export function placeRanges(places: readonly ReadPlace[], size: number): Array<[number, number]> {
  return places
    .map((p): [number, number] => [p.from === 'start' ? p.offset : size - p.offset, p.length])
    .sort((a, b) => a[0] - b[0]);
}

export interface BlkidTools {
  /** util-linux version of wipefs ("wipefs from util-linux 2.38.1"), or null. */
  wipefs: string | null;
  /** Version of the libblkid library loaded at run time ("blkid -V": "libblkid 2.38.1"), or null. */
  libblkid: string | null;
  /** The places to read, when both versions are the same traced one; else null (always run wipefs). */
  places: readonly ReadPlace[] | null;
}

const VERSION = String.raw`(\d+(?:\.\d+)+)(?=[\s,)]|$)`;

/** "wipefs from util-linux 2.38.1" -> "2.38.1" (a suffixed build such as "2.38.1-dirty" is not 2.38.1). */
export function parseWipefsVersion(text: string): string | null {
  return new RegExp(String.raw`^wipefs from util-linux ${VERSION}`, 'm').exec(text)?.[1] ?? null;
}

/** "blkid from util-linux 2.38.1  (libblkid 2.38.1, 04-Aug-2022)" -> "2.38.1". */
export function parseLibblkidVersion(text: string): string | null {
  return new RegExp(String.raw`\(libblkid ${VERSION}`).exec(text)?.[1] ?? null;
}

export function toolsFor(wipefs: string | null, libblkid: string | null): BlkidTools {
  const places = wipefs !== null && wipefs === libblkid && Object.hasOwn(READ_PLACES, wipefs) ? READ_PLACES[wipefs] : null;
  return { wipefs, libblkid, places };
}

let known: BlkidTools | undefined;
let asking: Promise<BlkidTools> | undefined;

/**
 * The installed wipefs and libblkid versions. Asked once; an answer that lacks
 * either version is not kept, so a slow start-up does not turn the fast path
 * off for good (until then, and without it, the probe runs wipefs).
 */
export function blkidTools(): Promise<BlkidTools> {
  if (known) return Promise.resolve(known);
  asking ??= (async () => {
    const version = (args: string[], parse: (s: string) => string | null) =>
      run(args[0], args.slice(1), { timeoutMs: 10_000 }).then((r) => parse(r.stdout), () => null);
    const [wipefs, libblkid] = await Promise.all([
      version(['wipefs', '--version'], parseWipefsVersion),
      version(['blkid', '-V'], parseLibblkidVersion),
    ]);
    const tools = toolsFor(wipefs, libblkid);
    if (wipefs !== null && libblkid !== null) known = tools;
    asking = undefined;
    return tools;
  })();
  return asking;
}

/**
 * The places to read on block device `majMin` of `sizeBytes`, or null when
 * wipefs must run: no traced version, or a device unlike the traced ones
 * (small, not whole MiB, other than 512-byte logical sectors, zoned, or
 * removable, such as a CD-ROM, where libblkid also asks the drive).
 */
export function fastPathRanges(tools: BlkidTools, sysfsRoot: string, majMin: string, sizeBytes: number): Array<[number, number]> | null {
  if (!tools.places) return null;
  if (sizeBytes < FAST_PATH_MIN_BYTES || sizeBytes % FAST_PATH_SIZE_UNIT !== 0) return null;
  if (sysfsAttribute(sysfsRoot, majMin, 'queue/logical_block_size') !== '512') return null;
  const zoned = sysfsAttribute(sysfsRoot, majMin, 'queue/zoned');
  if (zoned !== null && zoned !== 'none') return null;
  if (sysfsAttribute(sysfsRoot, majMin, 'removable') !== '0') return null;
  return placeRanges(tools.places, sizeBytes);
}
