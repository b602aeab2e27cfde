// probe.ts on real loop devices: a device is blank only when no probe finds
// anything, whatever kind of signature it holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/util/exec';
import { isBlank, probeDevice, describeContents } from '../../src/node/probe';
import { isRoot, ROOT_SKIP_REASON, Sandbox, writeMbr } from './loop';

const MiB = 1024 ** 2;
const skip = isRoot() ? false : ROOT_SKIP_REASON;

test('probe: a fresh sparse device is blank', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  const c = await probeDevice(loop.path, '/sys');
  assert.ok(isBlank(c), describeContents(c));
});

test('probe: finds an ext4 filesystem', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  await run('mkfs.ext4', ['-q', loop.path]);
  const c = await probeDevice(loop.path, '/sys');
  assert.equal(c.filesystem, 'ext4');
  assert.equal(isBlank(c), false);
});

test('probe: finds a DOS partition table without any partition or filesystem', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  await writeMbr(loop.path);
  const c = await probeDevice(loop.path, '/sys');
  assert.equal(c.partitionTable, 'dos');
  assert.equal(c.filesystem, null);
  assert.equal(isBlank(c), false);
});

test('probe: finds a swap signature (not a filesystem, still not blank)', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  await run('mkswap', [loop.path]);
  const c = await probeDevice(loop.path, '/sys');
  assert.equal(c.filesystem, null);
  assert.ok(c.otherSignatures.includes('swap'), describeContents(c));
  assert.equal(isBlank(c), false);
});
