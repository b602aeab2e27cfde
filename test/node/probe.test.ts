// The probe's fast path: on a device where every place the installed libblkid
// reads is zero, wipefs would find nothing, so it need not run. Anything
// non-zero in those places, an unchecked util-linux version, or a device
// unlike the checked ones sends the probe to wipefs, which names what is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  READ_PLACES,
  fastPathRanges,
  installedWipefsVersion,
  isBlank,
  parseUtilLinuxVersion,
  parseWipefs,
  placeRanges,
  probeDevice,
  readPlacesAreZero,
  splitRanges,
} from '../../src/node/probe';
import { Sandbox, isRoot, ROOT_SKIP_REASON } from './loop';
import { run, which } from '../../src/util/exec';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Why the fast-path tests cannot run here, or false. */
async function fastPathSkip(): Promise<string | false> {
  if (!isRoot()) return ROOT_SKIP_REASON;
  const version = await installedWipefsVersion();
  if (version === null || !Object.hasOwn(READ_PLACES, version)) {
    return `the installed util-linux (${version ?? 'unknown'}) has no checked read places: the probe always runs wipefs here`;
  }
  return false;
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

test('the util-linux version is read from wipefs --version', () => {
  assert.equal(parseUtilLinuxVersion('wipefs from util-linux 2.38.1\n'), '2.38.1');
  assert.equal(parseUtilLinuxVersion('wipefs from util-linux 2.40\n'), '2.40');
  assert.equal(parseUtilLinuxVersion('wipefs (busybox)'), null);
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
  assert.ok(await fastPathRanges(loop.path, '/sys', await installedWipefsVersion()));
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
  assert.ok(isBlank(await probeDevice(loop.path, '/sys')));
});

test('one non-zero byte at either end of any place sends the probe to wipefs', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  const ranges = (await fastPathRanges(loop.path, '/sys', await installedWipefsVersion()))!;
  for (const [start, length] of ranges) {
    for (const position of [start, start + length - 1]) {
      await writeByte(loop.path, position);
      assert.equal(await readPlacesAreZero(loop.path, '/sys'), false, `a byte at ${position} was not seen`);
      await writeByte(loop.path, position, 0);
    }
  }
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
});

test('bytes between the places are not read, and wipefs agrees that they hold no signature', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  const ranges = (await fastPathRanges(loop.path, '/sys', await installedWipefsVersion()))!;
  // The first byte after each place but the last (which ends at the device's end).
  for (const [start, length] of ranges.slice(0, -1)) await writeByte(loop.path, start + length);
  assert.equal(await readPlacesAreZero(loop.path, '/sys'), true);
  const wipefs = await run('wipefs', ['--no-act', '--json', '--', loop.path]);
  assert.deepEqual(parseWipefs(wipefs.stdout), []);
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

test('an unchecked util-linux version or a small device goes to wipefs', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const big = await box.loopDevice(GiB);
  assert.equal(await fastPathRanges(big.path, '/sys', '9.99.9'), null);
  assert.equal(await fastPathRanges(big.path, '/sys', null), null);
  assert.equal(await fastPathRanges(big.path, '/sys', 'constructor'), null);
  const small = await box.loopDevice(16 * MiB);
  assert.equal(await fastPathRanges(small.path, '/sys', '2.38.1'), null);
  assert.equal(await readPlacesAreZero(small.path, '/sys'), false);
  assert.ok(isBlank(await probeDevice(small.path, '/sys')), 'wipefs finds nothing on a blank small device');
});

test('a device with 4 KiB logical sectors goes to wipefs (its places were not checked)', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(GiB);
  await run('losetup', ['--sector-size', '4096', loop.path]);
  assert.equal(await readFile(`/sys/block/${loop.name}/queue/logical_block_size`, 'utf8').then((s) => s.trim()), '4096');
  assert.equal(await fastPathRanges(loop.path, '/sys', '2.38.1'), null);
});

// The proof behind READ_PLACES: trace the very wipefs command the probe runs,
// on all-zero devices of several sizes, and check that every byte it reads
// from the device lies in a place the fast path reads.
test('wipefs reads nothing outside the places, on 1, 10 and 100 GiB devices (strace)', async (t) => {
  const skip = await fastPathSkip();
  if (skip) return t.skip(skip);
  const strace = await which('strace');
  if (!strace) return t.skip('strace is not installed (.ci/run installs it)');
  const version = (await installedWipefsVersion())!;
  const box = await Sandbox.create(t);
  for (const size of [GiB, 10 * GiB, 100 * GiB]) {
    const loop = await box.loopDevice(size);
    const log = path.join(tmpdir(), `probe-strace-${process.pid}-${loop.name}.txt`);
    await run(strace, ['-y', '-e', 'trace=lseek,read,pread64,preadv,preadv2,readv', '-o', log, '--',
      'wipefs', '--no-act', '--json', '--output', 'TYPE,USAGE,OFFSET', '--', loop.path]);
    const reads = deviceReads(await readFile(log, 'utf8'), loop.path);
    assert.ok(reads.length > 10, `only ${reads.length} reads of ${loop.path} traced: is the trace parsed right?`);
    const places = placeRanges(READ_PLACES[version], size);
    for (const [start, length] of reads) {
      const inside = places.some(([p, l]) => start >= p && start + length <= p + l);
      assert.ok(inside, `util-linux ${version} read ${length} bytes at ${start} (end - ${size - start}) of a ${size / GiB} GiB device, outside every place`);
    }
  }
});

/** [position, length] of every read of `device` in an `strace -y` log (lseek + read, or pread64). */
function deviceReads(log: string, device: string): Array<[number, number]> {
  const reads: Array<[number, number]> = [];
  let position = 0;
  const fd = String.raw`\d+<${device.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}>`;
  const lseek = new RegExp(String.raw`^lseek\(${fd}, (-?\d+), SEEK_(SET|CUR|END)\)\s*=\s*(\d+)`);
  const read = new RegExp(String.raw`^read\(${fd}, .*, (\d+)\)\s*=\s*(\d+)`);
  const pread = new RegExp(String.raw`^pread64\(${fd}, .*, (\d+), (\d+)\)\s*=\s*(\d+)`);
  const vectored = new RegExp(String.raw`^p?readv2?\(${fd},`);
  for (const line of log.split('\n')) {
    let m;
    if ((m = lseek.exec(line))) position = Number(m[3]);
    else if ((m = read.exec(line))) {
      reads.push([position, Number(m[1])]);
      position += Number(m[2]);
    } else if ((m = pread.exec(line))) reads.push([Number(m[2]), Number(m[1])]);
    else if (vectored.test(line)) throw new Error(`a vectored read this parser does not follow: ${line}`);
  }
  return reads;
}
