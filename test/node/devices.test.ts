// Device discovery on real loop devices: by-id links, the sysfs serial
// fallback (a temp sysfs root whose block/<name> is a real loop device name),
// hints that are never trusted alone, and devices in use elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { run } from '../../src/util/exec';
import { silentLogger } from '../../src/log';
import { diskNamesAnotherVolume, findVolumeDevice, refuseForeignUse, type DiscoveryOptions, type Ownership } from '../../src/node/devices';
import { isRoot, ROOT_SKIP_REASON, Sandbox, type LoopDevice } from './loop';
import { rejectsWithCode } from './context';

const MiB = 1024 ** 2;
const skip = isRoot() ? false : ROOT_SKIP_REASON;

function options(box: Sandbox, volumeId: string, extra: Partial<DiscoveryOptions> = {}): DiscoveryOptions {
  return {
    volumeId,
    deviceRoot: box.deviceRoot,
    sysfsRoot: path.join(box.root, 'sys'),
    timeoutMs: 300,
    signal: AbortSignal.timeout(30_000),
    log: silentLogger,
    ...extra,
  };
}

function ownership(box: Sandbox, ownTargets: string[] = []): Ownership {
  return { ownTargets: new Set(ownTargets), sysfsRoot: '/sys', kubeletRoot: box.kubeletDir };
}

/** A fake sysfs entry for a real loop device: serial plus the real "major:minor", and its node under deviceRoot. */
async function fakeSysfsDisk(box: Sandbox, loop: LoopDevice, serial: string | null): Promise<void> {
  const dir = path.join(box.root, 'sys', 'block', loop.name);
  await mkdir(dir, { recursive: true });
  if (serial !== null) await writeFile(path.join(dir, 'serial'), `${serial}\n`);
  await writeFile(path.join(dir, 'dev'), await readFile(`/sys/block/${loop.name}/dev`, 'utf8'));
  await symlink(loop.path, path.join(box.deviceRoot, loop.name));
}

test('discovery: the virtio by-id link resolves to the real device', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, loop);
  const found = await findVolumeDevice(options(box, volumeId));
  assert.equal(found.path, loop.path);
  assert.match(found.evidence, /by-id link virtio-/);
});

test('discovery: a by-id link is taken only when the disk it resolves to has no serial or its serial names the volume', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, loop);
  // A loop device has no serial, like a disk whose bus has none: the link alone decides.
  await fakeSysfsDisk(box, loop, null);
  assert.equal((await findVolumeDevice(options(box, volumeId))).path, loop.path);
  // A stale link (udev has not caught up with a detach and attach that reused the name): another volume's disk.
  const serialFile = path.join(box.root, 'sys', 'block', loop.name, 'serial');
  await writeFile(serialFile, randomUUID().slice(0, 20));
  await rejectsWithCode(findVolumeDevice(options(box, volumeId)), status.NOT_FOUND, /is it attached/);
  await writeFile(serialFile, volumeId.slice(0, 20));
  assert.equal((await findVolumeDevice(options(box, volumeId))).path, loop.path);
});

test('a disk names another volume only when its serial is known and names another', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  const sysfsRoot = path.join(box.root, 'sys');
  await fakeSysfsDisk(box, loop, null);
  assert.equal(await diskNamesAnotherVolume(loop.path, volumeId, sysfsRoot), false, 'no serial: cannot tell');
  const serialFile = path.join(sysfsRoot, 'block', loop.name, 'serial');
  await writeFile(serialFile, volumeId.slice(0, 20));
  assert.equal(await diskNamesAnotherVolume(loop.path, volumeId, sysfsRoot), false);
  await writeFile(serialFile, randomUUID().slice(0, 20));
  assert.equal(await diskNamesAnotherVolume(loop.path, volumeId, sysfsRoot), true);
});

test('discovery: SCSI and WWN links work too', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const a = randomUUID();
  const b = randomUUID();
  await symlink(loop.path, path.join(box.byIdDir, `scsi-0QEMU_QEMU_HARDDISK_${a}`));
  assert.equal((await findVolumeDevice(options(box, a))).path, loop.path);
  await symlink(loop.path, path.join(box.byIdDir, `wwn-0x${b.replace(/-/g, '')}`));
  assert.equal((await findVolumeDevice(options(box, b))).path, loop.path);
});

test('discovery: sysfs serial fallback, 20-character and full serials', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const short = await box.loopDevice(16 * MiB);
  const full = await box.loopDevice(16 * MiB);
  const other = await box.loopDevice(16 * MiB);
  const shortId = randomUUID();
  const fullId = randomUUID();
  await fakeSysfsDisk(box, short, shortId.slice(0, 20));
  await fakeSysfsDisk(box, full, fullId);
  await fakeSysfsDisk(box, other, randomUUID().slice(0, 20));
  assert.equal((await findVolumeDevice(options(box, shortId))).path, short.path);
  assert.equal((await findVolumeDevice(options(box, fullId))).path, full.path);
});

test('discovery: a device node that is not the disk sysfs describes is not returned', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const described = await box.loopDevice(16 * MiB);
  const impostor = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  const dir = path.join(box.root, 'sys', 'block', described.name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'serial'), volumeId);
  await writeFile(path.join(dir, 'dev'), await readFile(`/sys/block/${described.name}/dev`, 'utf8'));
  // deviceRoot/<name> points at another disk (a stale node reusing the name).
  await symlink(impostor.path, path.join(box.deviceRoot, described.name));
  await rejectsWithCode(findVolumeDevice(options(box, volumeId)), status.NOT_FOUND);
});

test('discovery: two disks with the same 20-character serial are refused, not guessed', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const a = await box.loopDevice(16 * MiB);
  const b = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  await fakeSysfsDisk(box, a, volumeId.slice(0, 20));
  await fakeSysfsDisk(box, b, volumeId.slice(0, 20));
  await rejectsWithCode(findVolumeDevice(options(box, volumeId)), status.FAILED_PRECONDITION, /several disks/);
});

test('discovery: the publish_context hint is not trusted alone', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  // A real block device, but nothing says it holds this volume.
  await fakeSysfsDisk(box, loop, null);
  const started = Date.now();
  await rejectsWithCode(findVolumeDevice(options(box, volumeId, { hint: loop.path })), status.NOT_FOUND, /is it attached/);
  assert.ok(Date.now() - started >= 300, 'polled until the timeout');
  // Another volume's serial on the hinted device: still refused.
  await writeFile(path.join(box.root, 'sys', 'block', loop.name, 'serial'), randomUUID());
  await rejectsWithCode(findVolumeDevice(options(box, volumeId, { hint: loop.path })), status.NOT_FOUND);
  // Its own serial: accepted, through the hint.
  await writeFile(path.join(box.root, 'sys', 'block', loop.name, 'serial'), volumeId.slice(0, 20));
  const found = await findVolumeDevice(options(box, volumeId, { hint: loop.path }));
  assert.equal(found.path, loop.path);
  assert.match(found.evidence, /hint/);
});

test('discovery: waits for a device that appears while it polls', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  const pending = findVolumeDevice(options(box, volumeId, { timeoutMs: 10_000 }));
  setTimeout(() => void box.linkVirtio(volumeId, loop), 400);
  assert.equal((await pending).path, loop.path);
});

test('use check: a device mounted for something else is refused', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, loop);
  await run('mkfs.ext4', ['-q', loop.path]);
  const elsewhere = await mkdtemp(path.join(box.root, 'other-volume-'));
  const ours = path.join(box.root, 'our-staging');
  await mkdir(ours);
  await run('mount', [loop.path, elsewhere]);
  try {
    const found = await findVolumeDevice(options(box, volumeId));
    await rejectsWithCode(refuseForeignUse(found, volumeId, ownership(box, [ours])), status.FAILED_PRECONDITION, /in use elsewhere: mounted at/);
  } finally {
    await run('umount', [elsewhere]);
    await rm(elsewhere, { recursive: true });
  }
  // Mounted at our own staging path: that is this volume, already staged.
  await run('mount', [loop.path, ours]);
  try {
    await refuseForeignUse(await findVolumeDevice(options(box, volumeId)), volumeId, ownership(box, [ours]));
  } finally {
    await run('umount', [ours]);
  }
});

/** A file bound onto by the device node, as a raw block publish makes one. */
async function bindDeviceOnto(loop: LoopDevice, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, '');
  await run('mount', ['--bind', loop.path, file]);
}

test('use check: kubelet mapping a raw block publish is not foreign use; the device bound anywhere else is', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(16 * MiB);
  const volumeId = randomUUID();
  await box.linkVirtio(volumeId, loop);
  const found = await findVolumeDevice(options(box, volumeId));
  const volumeDevices = path.join(box.kubeletDir, 'plugins', 'kubernetes.io', 'csi', 'volumeDevices');
  // <kubelet-root>/plugins/kubernetes.io/csi/volumeDevices/<pv>/dev/<podUID>, where MapBlockVolume binds our target.
  await bindDeviceOnto(loop, path.join(volumeDevices, 'pv-1', 'dev', randomUUID()));
  await refuseForeignUse(found, volumeId, ownership(box));
  // Another file under kubelet's tree (here where kubelet would ask another driver to publish) is not a map.
  const elsewhere = path.join(volumeDevices, 'publish', 'pv-2', randomUUID());
  await bindDeviceOnto(loop, elsewhere);
  await rejectsWithCode(refuseForeignUse(found, volumeId, ownership(box)), status.FAILED_PRECONDITION, /bound onto .*publish\/pv-2/);
  // Unless it is one of this volume's own targets.
  await refuseForeignUse(found, volumeId, ownership(box, [elsewhere]));
  // With kubelet's root elsewhere, the map is not kubelet's either.
  await rejectsWithCode(
    refuseForeignUse(found, volumeId, { ...ownership(box, [elsewhere]), kubeletRoot: path.join(box.root, 'other-kubelet') }),
    status.FAILED_PRECONDITION,
    /bound onto .*volumeDevices\/pv-1\/dev\//,
  );
});
