// The node's first source of its instance identity: the config drive, a
// filesystem labelled config-2 holding openstack/latest/meta_data.json. Real
// filesystems on loop devices stand in for the one Nova attaches: ext4 here
// where the kernel must mount it, and the formats Nova really writes (iso9660
// from genisoimage, its default; vfat, config_drive_format = vfat).
//
// Every test that makes a config-2 filesystem is in this file: the test runner
// runs files in parallel, and a config-2 loop device made by another file
// would be found by these lookups.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdir, readFile, writeFile, readdir, open, rm, symlink } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { run } from '../../src/util/exec';
import { silentLogger } from '../../src/log';
import { createInstanceMetadata, findConfigDrive, readConfigDrive } from '../../src/openstack/metadata';
import { Sandbox, toolsSkip, type LoopDevice } from '../node/loop';
import { fakeCommand } from '../node/harness';

const root = process.getuid?.() === 0;

async function existingConfigDrive(): Promise<boolean> {
  for (const label of ['config-2', 'CONFIG-2']) {
    // No cache: blkid trusts a cache entry younger than 2 s, and the previous test's drive has just gone.
    const found = await run('blkid', ['-c', '/dev/null', '-t', `LABEL=${label}`, '-o', 'device'], { okCodes: [2] });
    if (found.stdout.trim() !== '') return true;
  }
  return false;
}

const UUID = '6e1c3a39-2b47-4d83-9f8e-0f6f5d8b1c2a';
/** Another instance's, where a drive's symlink would lead. */
const OTHER_UUID = '0b9d4f7e-5a3c-4e21-8d6b-7c1f2e3a4b5c';
/** meta_data.json as Nova writes it (trimmed): uuid, name, hostname, availability_zone, devices. */
const META_DATA = {
  uuid: UUID,
  name: 'worker-7',
  hostname: 'worker-7.novalocal',
  availability_zone: 'az-2',
  launch_index: 0,
  devices: [],
  project_id: '9f1c2b0e4d8a4b6f8e7d6c5b4a392817',
};

/** The files of a config drive, in a directory (genisoimage's input, or copied onto a mounted filesystem). */
async function driveTree(dir: string, metaData: object = META_DATA): Promise<void> {
  for (const version of ['2012-08-10', 'latest']) {
    await mkdir(path.join(dir, 'openstack', version), { recursive: true });
    await writeFile(path.join(dir, 'openstack', version, 'meta_data.json'), JSON.stringify(metaData));
  }
  await mkdir(path.join(dir, 'ec2', 'latest'), { recursive: true });
  await writeFile(path.join(dir, 'ec2', 'latest', 'meta-data.json'), JSON.stringify({ 'instance-id': 'i-00000007' }));
}

/** Nothing of ours stays mounted, and no private mount directory is left. */
async function assertNothingLeft(): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!/cinder-csi-configdrive-(?!test-)/.test(mountinfo), 'the config drive was unmounted');
  assert.ok(!(await readdir(os.tmpdir())).some((n) => /^cinder-csi-configdrive-(?!test-)/.test(n)), 'the mount directory was removed');
}

/** Mount `device` (as the test does, not as the driver does), or a skip reason when this kernel cannot mount its filesystem. */
async function mountOrSkip(t: TestContext, device: string, dir: string, options: string[] = []): Promise<boolean> {
  try {
    await run('mount', [...options, device, dir]);
    return true;
  } catch (err) {
    if (!/unknown filesystem type/.test((err as Error).message)) throw err;
    const fs = /unknown filesystem type '([^']+)'/.exec((err as Error).message)?.[1] ?? 'this filesystem';
    t.skip(`this kernel cannot mount ${fs} (no ${fs} in /proc/filesystems, no module to load)`);
    return false;
  }
}

/** A loop device holding exactly the bytes of `image` (an ISO made by genisoimage). */
async function loopWithImage(box: Sandbox, image: string): Promise<LoopDevice> {
  const bytes = await readFile(image);
  const loop = await box.loopDevice(Math.ceil(bytes.length / 4096) * 4096);
  const fh = await open(loop.path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return loop;
}

/** An ISO 9660 config drive made the way Nova's configdrive.py makes one (genisoimage ... -V config-2). */
async function isoConfigDrive(box: Sandbox, metaData: object = META_DATA): Promise<LoopDevice> {
  const tree = path.join(box.root, 'iso-tree');
  await driveTree(tree, metaData);
  const image = path.join(box.root, 'configdrive.iso');
  await run('genisoimage', ['-o', image, '-ldots', '-allow-lowercase', '-allow-multidot', '-l', '-publisher', 'OpenStack Compute', '-quiet', '-J', '-r', '-V', 'config-2', tree]);
  return loopWithImage(box, image);
}

const NEEDS_ROOT = root ? false : 'needs root: makes a loop device and mounts it';

test('the instance identity is read from a config drive, which is left unmounted', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const device = (await box.loopDevice(16 * 1024 * 1024)).path;
  await run('mkfs.ext4', ['-q', '-L', 'config-2', device], { timeoutMs: 60_000 });
  const mnt = path.join(box.root, 'mnt');
  await mkdir(mnt);
  await run('mount', [device, mnt]);
  try {
    await mkdir(path.join(mnt, 'openstack', 'latest'), { recursive: true });
    const metaData = { uuid: '6e1c3a39-2b47-4d83-9f8e-0f6f5d8b1c2a', name: 'worker-7', availability_zone: 'az-2', hostname: 'worker-7' };
    await writeFile(path.join(mnt, 'openstack', 'latest', 'meta_data.json'), JSON.stringify(metaData));
  } finally {
    await run('umount', [mnt]);
  }

  const identity = await readConfigDrive(silentLogger);
  assert.deepEqual(
    { id: identity.instanceId, zone: identity.availabilityZone, name: identity.name, source: identity.source },
    { id: '6e1c3a39-2b47-4d83-9f8e-0f6f5d8b1c2a', zone: 'az-2', name: 'worker-7', source: 'config-drive' },
  );
  // Nothing stays mounted, and the private mount directory is gone.
  await assertNothingLeft();

  // With the config drive first in the order, the metadata service is never asked (its URL here answers nothing).
  const metadata = createInstanceMetadata({ order: ['configDrive', 'metadataService'], metadataUrl: 'http://127.0.0.1:9', logger: silentLogger });
  assert.equal((await metadata.identity()).instanceId, '6e1c3a39-2b47-4d83-9f8e-0f6f5d8b1c2a');
});

// Nova's vfat drive (config_drive_format = vfat) is made by mkfs.vfat -n config-2; the
// mkfs.vfat of some dosfstools versions (CentOS/RHEL 7) writes the label uppercase, and
// blkid matches labels case-sensitively. cloud-init looks for both (LP #1598783).
for (const label of ['CONFIG-2', 'config-2']) {
  test(`a vfat config drive labelled ${label} is found`, { skip: toolsSkip('mkfs.vfat') }, async (t) => {
    if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
    const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
    const disk = await box.loopDevice(64 * 1024 * 1024);
    await run('mkfs.vfat', ['-n', label, disk.path]);
    assert.equal(await findConfigDrive(), disk.path);
  });
}

test('a vfat config drive labelled CONFIG-2 is read whole, and left unmounted', { skip: toolsSkip('mkfs.vfat') }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const disk = await box.loopDevice(64 * 1024 * 1024);
  await run('mkfs.vfat', ['-n', 'CONFIG-2', disk.path]);
  // The test fills it through a mount of its own, where this kernel mounts vfat.
  const mnt = path.join(box.root, 'fill');
  await mkdir(mnt);
  if (!(await mountOrSkip(t, disk.path, mnt))) return;
  try {
    await driveTree(mnt);
  } finally {
    await run('umount', [mnt]);
  }
  const identity = await readConfigDrive(silentLogger);
  assert.deepEqual([identity.instanceId, identity.availabilityZone, identity.source], [UUID, 'az-2', 'config-drive']);
  await assertNothingLeft();
});

test('an iso9660 config drive made as Nova makes it (genisoimage -V config-2) is found', { skip: toolsSkip('genisoimage') }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const disk = await isoConfigDrive(box);
  assert.equal(await findConfigDrive(), disk.path);
});

test('an iso9660 config drive made as Nova makes it is read whole, and left unmounted', { skip: toolsSkip('genisoimage') }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const disk = await isoConfigDrive(box);
  // The driver mounts it without naming the type (mount asks libblkid): see whether this kernel can.
  const probe = path.join(box.root, 'probe');
  await mkdir(probe);
  if (!(await mountOrSkip(t, disk.path, probe, ['-o', 'ro']))) return;
  await run('umount', [probe]);
  const identity = await readConfigDrive(silentLogger);
  assert.deepEqual([identity.instanceId, identity.availabilityZone, identity.name], [UUID, 'az-2', 'worker-7']);
  await assertNothingLeft();
});

/** An ext4 config drive (this kernel mounts ext4 wherever these tests run) holding Nova's files, or what `files` puts there. */
async function ext4ConfigDrive(box: Sandbox, files: (dir: string) => Promise<void> = driveTree): Promise<LoopDevice> {
  const disk = await box.loopDevice(16 * 1024 * 1024);
  await run('mkfs.ext4', ['-q', '-L', 'config-2', disk.path], { timeoutMs: 60_000 });
  const fill = path.join(box.root, 'fill');
  await mkdir(fill, { recursive: true });
  await run('mount', [disk.path, fill]);
  try {
    await files(fill);
  } finally {
    await run('umount', [fill]);
  }
  return disk;
}

test('two filesystems labelled config-2 (a volume holding another VM\'s config drive, say): neither is trusted', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  await ext4ConfigDrive(box);
  await ext4ConfigDrive(box);
  assert.equal(await findConfigDrive(), null);
  await assert.rejects(readConfigDrive(silentLogger), /more than one/);
  await assertNothingLeft();
});

/**
 * A sysfs tree (as `driver.node.sysfs_root` would point to) in which the loop
 * devices `volumes` are the disks of Cinder volumes, as Nova attaches them: each
 * with the volume ID as its serial, shown the way `bus` shows it. A
 * `partitionOf` device is shown as a partition of such a disk instead.
 */
async function sysfsWithVolumes(
  box: Sandbox,
  volumes: { device: string; bus: 'virtio-blk' | 'virtio-scsi'; partitionOf?: string }[],
): Promise<string> {
  const sys = path.join(box.root, 'sys');
  await mkdir(path.join(sys, 'class', 'block'), { recursive: true });
  for (const [i, v] of volumes.entries()) {
    const id = `0f6c2a3e-9b1d-4c7e-8a5f-3d2b1c0e9f${String(i).padStart(2, '0')}`;
    const diskName = v.partitionOf ?? path.basename(v.device);
    const disk = path.join(sys, 'devices', `pci0000:00/0000:00:0${i}.0`, 'block', diskName);
    await mkdir(path.join(disk, 'device'), { recursive: true });
    if (v.bus === 'virtio-blk') await writeFile(path.join(disk, 'serial'), id.slice(0, 20));
    // VPD page 0x80: a four-byte header (qualifier, page code, length), then the serial.
    else await writeFile(path.join(disk, 'device', 'vpd_pg80'), Buffer.concat([Buffer.from([0, 0x80, 0, id.length]), Buffer.from(id)]));
    let node = disk;
    if (v.partitionOf) {
      node = path.join(disk, path.basename(v.device));
      await mkdir(node);
      await writeFile(path.join(node, 'partition'), '1\n');
    }
    await symlink(node, path.join(sys, 'class', 'block', path.basename(v.device)));
  }
  return sys;
}

test('a filesystem labelled config-2 on a Cinder volume (virtio-blk serial) is not read as the node\'s identity', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const onVolume = await ext4ConfigDrive(box);
  const sys = await sysfsWithVolumes(box, [{ device: onVolume.path, bus: 'virtio-blk' }]);
  assert.equal(await findConfigDrive(undefined, silentLogger, sys), null);
  await assert.rejects(readConfigDrive(silentLogger, undefined, sys), /outside Cinder volumes/);
  // Without the serial (the real sysfs: loop devices have none) it is the config drive.
  assert.equal(await findConfigDrive(undefined, silentLogger), onVolume.path);
  await assertNothingLeft();
});

test('beside the real config drive, one on a Cinder volume\'s partition (virtio-scsi serial) is passed over, and the real one read', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const real = await ext4ConfigDrive(box);
  const onVolume = await ext4ConfigDrive(box);
  const sys = await sysfsWithVolumes(box, [{ device: onVolume.path, bus: 'virtio-scsi', partitionOf: 'sdb' }]);
  assert.equal(await findConfigDrive(undefined, silentLogger, sys), real.path);
  const identity = await readConfigDrive(silentLogger, undefined, sys);
  assert.deepEqual([identity.instanceId, identity.source], [UUID, 'config-drive']);
  await assertNothingLeft();
});

/**
 * Runs `fn` with a stand-in for mount(8) first on PATH that runs the real one and then records the
 * mountinfo line of the mount it made; returns the lines, to see the options the kernel really applied.
 */
async function mountsMadeDuring(box: Sandbox, fn: () => Promise<void>): Promise<string[]> {
  const realMount = (await run('sh', ['-c', 'command -v mount'])).stdout.trim();
  const log = path.join(box.root, 'mounts.log');
  await writeFile(log, '');
  const recording = await fakeCommand(box, 'mount', `${realMount} "$@" || exit $?\nfor last; do :; done\ngrep " $last " /proc/self/mountinfo >> ${log}`);
  await recording(fn);
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}

/** The per-mount options (mountinfo's sixth field) of a mountinfo line. */
const mountOptions = (line: string) => line.split(' ')[5].split(',');

test('the config drive is mounted read-only, nosuid, nodev and noexec', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  await ext4ConfigDrive(box);
  const made = await mountsMadeDuring(box, async () => {
    assert.equal((await readConfigDrive(silentLogger)).instanceId, UUID);
  });
  assert.equal(made.length, 1, made.join('\n'));
  for (const option of ['ro', 'nosuid', 'nodev', 'noexec']) assert.ok(mountOptions(made[0]).includes(option), `${option} in ${made[0]}`);
  await assertNothingLeft();
});

test('a meta_data.json that is a symlink on the drive is refused, and what it leads to is never read', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const elsewhere = path.join(box.root, 'host-meta_data.json');
  await writeFile(elsewhere, JSON.stringify({ ...META_DATA, uuid: OTHER_UUID }));
  await ext4ConfigDrive(box, async (dir) => {
    await driveTree(dir);
    await rm(path.join(dir, 'openstack', 'latest', 'meta_data.json'));
    await symlink(elsewhere, path.join(dir, 'openstack', 'latest', 'meta_data.json'));
  });
  await assert.rejects(readConfigDrive(silentLogger), /openstack\/latest\/meta_data\.json on the config drive .* is a symlink/);
  await assertNothingLeft();
});

test('a meta_data.json under a symlinked directory on the drive is refused, and what it leads to is never read', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const elsewhere = path.join(box.root, 'host-dir');
  await mkdir(elsewhere);
  await writeFile(path.join(elsewhere, 'meta_data.json'), JSON.stringify({ ...META_DATA, uuid: OTHER_UUID }));
  await ext4ConfigDrive(box, async (dir) => {
    await driveTree(dir);
    await rm(path.join(dir, 'openstack', 'latest'), { recursive: true });
    await symlink(elsewhere, path.join(dir, 'openstack', 'latest'));
  });
  await assert.rejects(readConfigDrive(silentLogger), /openstack\/latest\/ on the config drive .* is a symlink/);
  await assertNothingLeft();
});

test('a meta_data.json that is not JSON is refused, and the error quotes none of it', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  await ext4ConfigDrive(box, async (dir) => {
    await mkdir(path.join(dir, 'openstack', 'latest'), { recursive: true });
    await writeFile(path.join(dir, 'openstack', 'latest', 'meta_data.json'), 'admin_pass=hunter2, not JSON at all');
  });
  const err = await readConfigDrive(silentLogger).then(
    () => assert.fail('read as an identity'),
    (e: Error) => e,
  );
  assert.match(err.message, /meta_data\.json on the config drive .* is not a JSON object/);
  assert.doesNotMatch(err.message, /admin|hunter2/);
  await assertNothingLeft();
});

// cloud-init reads a config drive where it is already mounted (util.mount_cb), and people
// mount it by hand (mount /dev/disk/by-label/config-2 /mnt/config): read-write, for vfat.
// The kernel refuses a second, read-only mount of a filesystem mounted read-write.
test('a config drive already mounted read-write here is read, and that mount is left as it was', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const disk = await ext4ConfigDrive(box);
  const theirs = path.join(box.root, 'mnt-config');
  await mkdir(theirs);
  await run('mount', [disk.path, theirs]);
  const made = await mountsMadeDuring(box, async () => {
    const identity = await readConfigDrive(silentLogger);
    assert.deepEqual([identity.instanceId, identity.availabilityZone], [UUID, 'az-2']);
  });
  assert.equal(made.length, 1, made.join('\n'));
  for (const option of ['nosuid', 'nodev', 'noexec']) assert.ok(mountOptions(made[0]).includes(option), `ours is ${option} too: ${made[0]}`);
  await assertNothingLeft();
  const mine = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.split(' ')[4] === theirs);
  assert.equal(mine.length, 1, 'the existing mount is still there');
  assert.match(mine[0].split(' ')[5], /^rw\b/, 'and still read-write');
  await writeFile(path.join(theirs, 'still-writable'), 'x');
});

test('a config drive mounted read-write in another mount namespace (the host, seen from the pod) is read', { skip: NEEDS_ROOT }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const box = await Sandbox.create(t, 'cinder-csi-configdrive-test-');
  const disk = await ext4ConfigDrive(box);
  const theirs = path.join(box.root, 'host-mnt-config');
  await mkdir(theirs);
  // The other namespace's mount lives as long as its sleeping process.
  const host = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', `mount "$0" "$1" && echo mounted && exec sleep 120`, disk.path, theirs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => host.once('exit', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      host.stdout.once('data', () => resolve());
      host.once('exit', (code) => reject(new Error(`unshare exited with ${code} before mounting`)));
    });
    assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(theirs), 'that mount is not visible here');
    const identity = await readConfigDrive(silentLogger);
    assert.deepEqual([identity.instanceId, identity.availabilityZone], [UUID, 'az-2']);
    await assertNothingLeft();
  } finally {
    host.kill('SIGKILL');
    await exited;
  }
});
