// The probe's fast path: on a device where every place the installed libblkid
// reads is zero, wipefs would find nothing, so it need not run. Anything
// non-zero in those places, an unchecked util-linux version, or a device
// unlike the checked ones sends the probe to wipefs, which names what is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  READ_PLACES,
  blkidTools,
  fastPathRanges,
  parseLibblkidVersion,
  parseWipefsVersion,
  placeRanges,
  toolsFor,
} from '../../src/node/blkid-places';
import { isBlank, probeDevice, readPlacesAreZero, splitRanges } from '../../src/node/probe';
import { deviceNumber } from '../../src/node/mount';
import { Sandbox, isRoot, ROOT_SKIP_REASON, toolsSkip, type LoopDevice } from './loop';
import { run, which } from '../../src/util/exec';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Why the fast-path tests cannot run here, or false. */
async function fastPathSkip(): Promise<string | false> {
  if (!isRoot()) return ROOT_SKIP_REASON;
  const { wipefs, libblkid, places } = await blkidTools();
  if (!places) return `util-linux ${wipefs ?? '?'} with libblkid ${libblkid ?? '?'} has no traced read places: the probe always runs wipefs here`;
  return false;
}

/** The fast path's ranges for a loop device, with the installed tools. */
async function rangesOf(loop: LoopDevice, size: number, tools?: Parameters<typeof fastPathRanges>[0]) {
  return fastPathRanges(tools ?? (await blkidTools()), '/sys', await deviceNumber(loop.path), size);
}

async function writeByte(device: string, position: number, value = 0x5a): Promise<void> {
  const handle = await open(device, 'r+');
  try {
    await handle.write(Buffer.from([value]), 0, 1, position);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

test('the versions come from wipefs --version and blkid -V, and both must be a traced one', () => {
  assert.equal(parseWipefsVersion('wipefs from util-linux 2.38.1\n'), '2.38.1');
  assert.equal(parseWipefsVersion('wipefs from util-linux 2.40\n'), '2.40');
  assert.equal(parseWipefsVersion('wipefs from util-linux 2.38.1-dirty\n'), null);
  assert.equal(parseWipefsVersion('wipefs (busybox)'), null);
  assert.equal(parseLibblkidVersion('blkid from util-linux 2.38.1  (libblkid 2.38.1, 04-Aug-2022)\n'), '2.38.1');
  assert.equal(parseLibblkidVersion('blkid from util-linux 2.38.1  (libblkid 2.38.1-12-gabc, 04-Aug-2022)\n'), null);
  assert.ok(toolsFor('2.38.1', '2.38.1').places);
  assert.equal(toolsFor('2.38.1', '2.39.3').places, null, 'wipefs and the loaded libblkid differ');
  assert.equal(toolsFor('9.99.9', '9.99.9').places, null);
  assert.equal(toolsFor('constructor', 'constructor').places, null);
  assert.equal(toolsFor(null, null).places, null);
});

test('the places of a 1 GiB device lie inside it, in order, apart', () => {
  for (const [version, places] of Object.entries(READ_PLACES)) {
    const ranges = placeRanges(places, GiB);
    for (let i = 0; i < ranges.length; i++) {
      const [start, length] = ranges[i];
      assert.ok(start >= 0 && start + length <= GiB, `${version}: place ${i} is outside the device`);
      if (i > 0) assert.ok(start >= ranges[i - 1][0] + ranges[i - 1][1], `${version}: place ${i} overlaps the one before`);
    }
    // Cut into reads, the bytes stay the same.
    const total = ranges.reduce((n, [, l]) => n + l, 0);
    assert.equal(splitRanges(ranges, 256 * 1024).reduce((n, [, l]) => n + l, 0), total);
    assert.ok(total < 2 * MiB, `${version}: ${total} bytes to read`);
  }
});

test('a fresh (sparse, all-zero) 1 GiB device takes the fast path and probes blank', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  assert.ok(await rangesOf(loop, GiB));
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
  assert.ok(isBlank(await probeDevice(loop.path, '/sys')));
});

test('one non-zero byte at either end of any place sends the probe to wipefs', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  const ranges = (await rangesOf(loop, GiB))!;
  for (const [start, length] of ranges) {
    for (const position of [start, start + length - 1]) {
      await writeByte(loop.path, position);
      assert.equal(await readPlacesAreZero(loop.path, '/sys'), false, `a byte at ${position} was not seen`);
      await writeByte(loop.path, position, 0);
    }
  }
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
});

test("checks running at once never see one another's data (read buffers are reused between checks)", async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const blank = await box.loopDevice(GiB);
  const dirty = await box.loopDevice(GiB);
  const ranges = (await rangesOf(dirty, GiB))!;
  // Data in the last chunk of every place: a check that shared buffers would see it on the blank device.
  for (const [start, length] of ranges) await writeByte(dirty.path, start + length - 1);
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all([blank, dirty, blank, dirty, blank].map((d) => readPlacesAreZero(d.path, '/sys')));
    assert.deepEqual(answers, [true, false, true, false, true], `round ${round}`);
  }
});

test('the fast path reads nothing beyond its places', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  const ranges = (await rangesOf(loop, GiB))!;
  // The byte before each place but the first (which starts at 0) and the byte after each but the last (which ends at the end).
  for (const [start] of ranges.slice(1)) await writeByte(loop.path, start - 1);
  for (const [start, length] of ranges.slice(0, -1)) await writeByte(loop.path, start + length);
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
});

test('a filesystem is found whichever path the probe takes', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(64 * MiB);
  await run('mkfs.ext4', ['-q', '-F', loop.path], { timeoutMs: 60_000 });
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), false);
  const contents = await probeDevice(loop.path, '/sys');
  assert.equal(contents.filesystem, 'ext4');
  assert.equal(isBlank(contents), false);
});

test('an untraced version, a small device or a size not in whole MiB goes to wipefs', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const traced = toolsFor('2.38.1', '2.38.1');
  const big = await box.loopDevice(GiB);
  assert.ok(await rangesOf(big, GiB, traced));
  assert.equal(await rangesOf(big, GiB, toolsFor('9.99.9', '9.99.9')), null);
  assert.equal(await rangesOf(big, GiB, toolsFor('2.38.1', null)), null);
  const odd = await box.loopDevice(GiB + 192 * 1024);
  assert.equal(await rangesOf(odd, GiB + 192 * 1024, traced), null);
  const small = await box.loopDevice(16 * MiB);
  assert.equal(await rangesOf(small, 16 * MiB, traced), null);
  assert.equal(await readPlacesAreZero(small.path, '/sys'), false);
  assert.ok(isBlank(await probeDevice(small.path, '/sys')), 'wipefs finds nothing on a blank small device');
});

test('a device with 4 KiB logical sectors goes to wipefs (its places were not traced)', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  await run('losetup', ['--sector-size', '4096', loop.path]);
  assert.equal(await readFile(`/sys/block/${loop.name}/queue/logical_block_size`, 'utf8').then((s) => s.trim()), '4096');
  assert.equal(await rangesOf(loop, GiB, toolsFor('2.38.1', '2.38.1')), null);
});

// The proof behind READ_PLACES: trace the very wipefs command the probe runs,
// on all-zero devices of the sizes the fast path takes, and check that every
// byte it reads from the device lies in a place the fast path reads.
test('wipefs reads nothing outside the places, on devices of 64 MiB to 100 GiB (strace)', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const noStrace = toolsSkip('strace');
  if (noStrace) return t.skip(noStrace);
  const strace = (await which('strace'))!;
  const tools = await blkidTools();
  const box = await Sandbox.create(t);
  for (const size of [64 * MiB, 65 * MiB, GiB, 10 * GiB, 100 * GiB]) {
    const loop = await box.loopDevice(size);
    const reads = await tracedReads(strace, box, loop);
    assert.ok(reads.length > 10, `only ${reads.length} reads of ${loop.path} traced: is the trace parsed right?`);
    const places = placeRanges(tools.places!, size);
    for (const [start, length] of reads) {
      const inside = places.some(([p, l]) => start >= p && start + length <= p + l);
      assert.ok(inside, `util-linux ${tools.wipefs} read ${length} bytes at ${start} (end - ${size - start}) of a ${size / MiB} MiB device, outside every place`);
    }
  }
  // Why sizes not in whole MiB are left to wipefs: some probers place their end labels by the size's remainder.
  const odd = await box.loopDevice(GiB + 192 * 1024);
  const oddPlaces = placeRanges(tools.places!, GiB + 192 * 1024);
  const outside = (await tracedReads(strace, box, odd)).filter(([s, l]) => !oddPlaces.some(([p, pl]) => s >= p && s + l <= p + pl));
  assert.ok(outside.length > 0, 'a device of 1 GiB + 192 KiB is read only in the places: the whole-MiB rule could be relaxed');
});

/** Every read of the loop device by the probe's wipefs command, as [position, length]. */
async function tracedReads(strace: string, box: Sandbox, loop: LoopDevice): Promise<Array<[number, number]>> {
  const log = path.join(box.root, `strace-${loop.name}.txt`);
  await run(strace, ['-y', '-e', 'trace=%desc', '-o', log, '--', 'wipefs', '--no-act', '--json', '--output', 'TYPE,USAGE,OFFSET', '--', loop.path]);
  return deviceReads(await readFile(log, 'utf8'), loop.path);
}

/**
 * [position, length] of every read of `device` in an `strace -y -e trace=%desc`
 * log, following each descriptor's file position (lseek + read, or pread64).
 * Any other call on the device that could read it (mmap, readv, sendfile, ...)
 * fails the parse rather than go unchecked.
 */
function deviceReads(log: string, device: string): Array<[number, number]> {
  const reads: Array<[number, number]> = [];
  const positions = new Map<string, number>();
  const dev = device.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const fd = String.raw`(\d+)<${dev}>`;
  const opened = new RegExp(String.raw`^(?:openat|open)\(.*"${dev}".*\)\s*=\s*${fd}`);
  const lseek = new RegExp(String.raw`^lseek\(${fd}, -?\d+, SEEK_(?:SET|CUR|END)\)\s*=\s*(\d+)`);
  const read = new RegExp(String.raw`^read\(${fd}, .*, (\d+)\)\s*=\s*(\d+)`);
  const pread = new RegExp(String.raw`^pread64\(${fd}, .*, (\d+), (\d+)\)\s*=\s*(\d+)`);
  // Calls on the device that do not read its data.
  const harmless = new RegExp(String.raw`^(?:close|fstat|newfstatat|statx|ioctl|fcntl|fadvise64|flock|fsync)\(${fd}`);
  for (const line of log.split('\n')) {
    if (!line.includes(`<${device}>`) && !line.includes(`"${device}"`)) continue;
    let m;
    if ((m = opened.exec(line))) positions.set(m[1], 0);
    else if ((m = lseek.exec(line))) positions.set(m[1], Number(m[2]));
    else if ((m = read.exec(line))) {
      const at = positions.get(m[1]) ?? 0;
      reads.push([at, Number(m[2])]);
      positions.set(m[1], at + Number(m[3]));
    } else if ((m = pread.exec(line))) reads.push([Number(m[3]), Number(m[2])]);
    else if (!harmless.test(line) && !/^(?:openat|open)\(/.test(line)) throw new Error(`a call on the device this parser does not follow: ${line}`);
  }
  return reads;
}
