// The probe's fast path: a device whose first HEAD_BYTES and last TAIL_BYTES read as
// zeros holds no signature, and needs no wipefs. Anything non-zero at either
// end sends the probe to wipefs, which names what is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { HEAD_BYTES, TAIL_BYTES, edgeChunks, edgesAreZero, isBlank, probeDevice } from '../../src/node/probe';
import { Sandbox, isRoot, ROOT_SKIP_REASON } from './loop';
import { run } from '../../src/util/exec';

const skip = isRoot() ? false : ROOT_SKIP_REASON;
const MiB = 1024 * 1024;

async function writeByte(device: string, position: number): Promise<void> {
  const handle = await open(device, 'r+');
  try {
    await handle.write(Buffer.from([0x5a]), 0, 1, position);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

test('a fresh (sparse, all-zero) device has zero edges and probes blank', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(64 * MiB);
  assert.equal(await edgesAreZero(loop.path, '/sys'), true);
  assert.ok(isBlank(await probeDevice(loop.path, '/sys')));
});

test('one non-zero byte near the start or near the end is enough to leave the fast path', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const head = await box.loopDevice(64 * MiB);
  await writeByte(head.path, HEAD_BYTES - 1);
  assert.equal(await edgesAreZero(head.path, '/sys'), false);
  const tail = await box.loopDevice(64 * MiB);
  await writeByte(tail.path, 64 * MiB - TAIL_BYTES);
  assert.equal(await edgesAreZero(tail.path, '/sys'), false);
  // Data that no prober recognises is not a signature: wipefs finds nothing, and the device stays blank by that rule.
  assert.ok(isBlank(await probeDevice(tail.path, '/sys')));
});

test('a filesystem is found whichever path the probe takes', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(64 * MiB);
  await run('mkfs.ext4', ['-q', '-F', loop.path], { timeoutMs: 60_000 });
  assert.equal(await edgesAreZero(loop.path, '/sys'), false);
  const contents = await probeDevice(loop.path, '/sys');
  assert.equal(contents.filesystem, 'ext4');
  assert.equal(isBlank(contents), false);
});

test('a device smaller than two edges is read once, whole', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(1 * MiB);
  assert.equal(await edgesAreZero(loop.path, '/sys'), true);
  await writeByte(loop.path, 1 * MiB - 1);
  assert.equal(await edgesAreZero(loop.path, '/sys'), false);
});

test('the head edge reaches past the furthest place libblkid looks: a LUKS2 secondary header at 4 MiB', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(64 * MiB);
  await writeByte(loop.path, 4 * MiB + 5); // inside the magic of a secondary header at 4 MiB
  assert.equal(await edgesAreZero(loop.path, '/sys'), false);
});

test('edge chunks cover both edges once, and a small device whole', () => {
  const covered = (size: number) => {
    const chunks = edgeChunks(size);
    let next = 0;
    let bytes = 0;
    for (const [p, l] of chunks) {
      assert.ok(p >= next, `chunk at ${p} overlaps the one before`);
      next = p + l;
      bytes += l;
    }
    return { chunks, bytes };
  };
  const big = covered(1024 * MiB);
  assert.equal(big.bytes, HEAD_BYTES + TAIL_BYTES);
  assert.deepEqual(big.chunks[0], [0, big.chunks[0][1]]);
  const last = big.chunks[big.chunks.length - 1];
  assert.equal(last[0] + last[1], 1024 * MiB);
  assert.equal(covered(5 * MiB).bytes, 5 * MiB);
  assert.equal(covered(1 * MiB).bytes, 1 * MiB);
});
