// The probe's fast path: a device whose first and last EDGE_BYTES read as
// zeros holds no signature, and needs no wipefs. Anything non-zero at either
// end sends the probe to wipefs, which names what is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { EDGE_BYTES, edgesAreZero, isBlank, probeDevice } from '../../src/node/probe';
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
  await writeByte(head.path, EDGE_BYTES - 1);
  assert.equal(await edgesAreZero(head.path, '/sys'), false);
  const tail = await box.loopDevice(64 * MiB);
  await writeByte(tail.path, 64 * MiB - EDGE_BYTES);
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
