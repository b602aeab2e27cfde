// Pure parts of the node service: path validation, capability parsing,
// settings defaults, by-id names and serial matching. No root needed.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canonicalPath, confinedRequestPath, validatePath } from '../../src/node/paths';
import { parseCapability, readOnlyDeviceMountOptions, stagingMountOptions } from '../../src/node/capability';
import { parseFsType } from '../../src/node/format';
import { resolveNodeSettings, DEFAULT_MAX_VOLUMES_PER_NODE } from '../../src/node/settings';
import { byIdLinkNames, serialMatches, volumeEvidence } from '../../src/node/devices';
import { formatDeviceNumber } from '../../src/node/mount';
import type { VolumeCapability__Output } from '../../src/gen/csi/v1/VolumeCapability';
import { rejectsWithCode } from './context';

const ID = '0a1b2c3d-4e5f-6789-abcd-ef0123456789';

test('validatePath accepts plain absolute paths and drops one trailing slash', () => {
  assert.equal(validatePath('/var/lib/kubelet/x', 'target_path'), '/var/lib/kubelet/x');
  assert.equal(validatePath('/var/lib/kubelet/x/', 'target_path'), '/var/lib/kubelet/x');
});

test('validatePath rejects missing, relative, dotted, doubled-slash and NUL paths, naming the field', async () => {
  for (const bad of ['', 'relative/path', '/a/../b', '/a/./b', '/a//b', '/a\0b', '/', '..']) {
    await rejectsWithCode(Promise.resolve().then(() => validatePath(bad, 'staging_target_path')), status.INVALID_ARGUMENT, /staging_target_path/);
  }
});

test('canonicalPath resolves symlinks, also in the parent of a path that does not exist yet (a raw block target before publish)', async (t) => {
  const root = await realpath(await mkdtemp(path.join(tmpdir(), 'cinder-csi-paths-')));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'real'));
  await symlink(path.join(root, 'real'), path.join(root, 'link'));
  assert.equal(await canonicalPath(path.join(root, 'link')), path.join(root, 'real'));
  assert.equal(await canonicalPath(path.join(root, 'link', 'target')), path.join(root, 'real', 'target'));
  assert.equal(await canonicalPath(path.join(root, 'missing', 'target')), path.join(root, 'missing', 'target'), 'nothing to resolve');
});

test('a path to mount at, unmount from or remove goes through no symlink, itself included, except in and above kubelet\'s root directory', async (t) => {
  const root = await realpath(await mkdtemp(path.join(tmpdir(), 'cinder-csi-paths-')));
  t.after(() => rm(root, { recursive: true, force: true }));
  // The host's: kubelet's root directory is a link to a data disk's directory.
  const kubelet = path.join(root, 'var-lib-kubelet');
  await mkdir(path.join(root, 'data', 'kubelet', 'pods', 'uid', 'volumes'), { recursive: true });
  await symlink(path.join(root, 'data', 'kubelet'), kubelet);
  const rules = { kubeletRoot: kubelet, confine: false };
  const resolve = (p: string) => confinedRequestPath(p, 'target_path', 'target', rules);
  assert.equal(await resolve(path.join(kubelet, 'pods', 'uid', 'volumes', 'mount')), path.join(root, 'data', 'kubelet', 'pods', 'uid', 'volumes', 'mount'));
  assert.equal(await resolve(path.join(root, 'data', 'kubelet', 'pods', 'uid', 'volumes')), path.join(root, 'data', 'kubelet', 'pods', 'uid', 'volumes'), 'the real path too');
  assert.equal(await resolve(path.join(root, 'missing', 'mount')), path.join(root, 'missing', 'mount'), 'a path that does not exist yet');

  // Anyone's: a link in a directory (a pod's volume, say) to somewhere else, as the last part of the path or on the way.
  await mkdir(path.join(root, 'victim'));
  await symlink(path.join(root, 'victim'), path.join(kubelet, 'pods', 'uid', 'volumes', 'evil'));
  await symlink(path.join(root, 'nowhere'), path.join(root, 'dangling'));
  await symlink(path.join(root, 'loop'), path.join(root, 'loop'));
  for (const p of [
    path.join(kubelet, 'pods', 'uid', 'volumes', 'evil'),
    path.join(kubelet, 'pods', 'uid', 'volumes', 'evil', 'mount'),
    path.join(root, 'dangling', 'mount'),
    path.join(root, 'loop', 'mount'),
  ]) {
    await rejectsWithCode(resolve(p), status.INVALID_ARGUMENT, /target_path .* goes through a symlink/);
  }
});

test('with confine_paths, staging paths lie below kubelet\'s plugins/kubernetes.io/csi/ and targets below its pods/ or volumeDevices/publish/', async () => {
  const rules = { kubeletRoot: '/nonexistent/kubelet', confine: true };
  const csi = '/nonexistent/kubelet/plugins/kubernetes.io/csi';
  const ok: [string, 'staging' | 'target' | 'volume'][] = [
    [`${csi}/cinder.csi.openstack.org/0123abcd/globalmount`, 'staging'],
    [`${csi}/pv/pvc-1/globalmount`, 'staging'],
    [`${csi}/volumeDevices/staging/pvc-1`, 'staging'],
    ['/nonexistent/kubelet/pods/uid/volumes/kubernetes.io~csi/pvc-1/mount', 'target'],
    [`${csi}/volumeDevices/publish/pvc-1/uid`, 'target'],
    ['/nonexistent/kubelet/pods/uid/volumes/kubernetes.io~csi/pvc-1/mount', 'volume'],
    [`${csi}/volumeDevices/staging/pvc-1`, 'volume'],
  ];
  for (const [p, kind] of ok) assert.equal(await confinedRequestPath(p, 'path', kind, rules), p, `${kind} ${p}`);
  const refused: [string, 'staging' | 'target'][] = [
    ['/tmp/globalmount', 'staging'],
    ['/nonexistent/kubelet/pods/uid/volumes/kubernetes.io~csi/pvc-1/mount', 'staging'],
    [csi, 'staging'],
    ['/nonexistent/kubelet-other/plugins/kubernetes.io/csi/x/globalmount', 'staging'],
    ['/tmp/mount', 'target'],
    [`${csi}/cinder.csi.openstack.org/0123abcd/globalmount`, 'target'],
    ['/nonexistent/kubelet/pods', 'target'],
    ['/nonexistent/kubelet', 'target'],
  ];
  for (const [p, kind] of refused) {
    await rejectsWithCode(confinedRequestPath(p, `${kind}_path`, kind, rules), status.INVALID_ARGUMENT, new RegExp(`${kind}_path .* not in kubelet's directories`));
  }
  assert.equal(await confinedRequestPath('/tmp/mount', 'target_path', 'target', { ...rules, confine: false }), '/tmp/mount', 'off, any path');
});

const mountCap = (fs_type: string, mode = 'SINGLE_NODE_WRITER', mount_flags: string[] = []): VolumeCapability__Output =>
  ({ access_type: 'mount', mount: { fs_type, mount_flags, volume_mount_group: '' }, access_mode: { mode } }) as VolumeCapability__Output;

test('parseCapability: fs types, modes and flags', async () => {
  assert.deepEqual(parseCapability(mountCap('')), { access: 'mount', mode: 'SINGLE_NODE_WRITER', fsType: null, mountFlags: [] });
  assert.equal((parseCapability(mountCap('xfs')) as { fsType: string }).fsType, 'xfs');
  assert.equal(
    parseCapability({ access_type: 'block', block: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } } as VolumeCapability__Output).access,
    'block',
  );
  const attempt = (cap: VolumeCapability__Output | null) => Promise.resolve().then(() => parseCapability(cap));
  await rejectsWithCode(attempt(null), status.INVALID_ARGUMENT, /volume_capability is required/);
  await rejectsWithCode(attempt(mountCap('btrfs')), status.INVALID_ARGUMENT, /btrfs/);
  await rejectsWithCode(attempt(mountCap('ext4', 'UNKNOWN')), status.INVALID_ARGUMENT, /access_mode/);
  await rejectsWithCode(attempt(mountCap('ext4', 'MULTI_NODE_MULTI_WRITER')), status.FAILED_PRECONDITION, /raw block/);
  await rejectsWithCode(attempt(mountCap('ext4', 'SINGLE_NODE_WRITER', ['noatime,bind'])), status.INVALID_ARGUMENT, /bind/);
  await rejectsWithCode(
    attempt({ access_mode: { mode: 'SINGLE_NODE_WRITER' } } as VolumeCapability__Output),
    status.INVALID_ARGUMENT,
    /access_type/,
  );
});

test('parseFsType: empty means "ours to choose", others INVALID_ARGUMENT', async () => {
  assert.equal(parseFsType(''), null);
  assert.equal(parseFsType('ext3'), 'ext3');
  await rejectsWithCode(Promise.resolve().then(() => parseFsType('ntfs')), status.INVALID_ARGUMENT);
});

test('xfs is always mounted with nouuid; other filesystems get just the requested flags', () => {
  assert.deepEqual(stagingMountOptions('xfs', ['noatime']), ['noatime', 'nouuid']);
  assert.deepEqual(stagingMountOptions('ext4', ['noatime']), ['noatime']);
});

test('a read-only disk is mounted ro and without journal replay: noload for ext3/ext4, norecovery for xfs', () => {
  assert.deepEqual(readOnlyDeviceMountOptions('ext4', ['noatime']), ['ro', 'noload']);
  assert.deepEqual(readOnlyDeviceMountOptions('ext3', []), ['ro', 'noload']);
  assert.deepEqual(readOnlyDeviceMountOptions('xfs', ['nouuid', 'ro']), ['norecovery']);
});

test('settings: documented defaults, never a zero attach limit', () => {
  const s = resolveNodeSettings({ nodeId: 'i-1' });
  assert.equal(s.maxVolumesPerNode, DEFAULT_MAX_VOLUMES_PER_NODE);
  assert.ok(s.maxVolumesPerNode > 0);
  assert.equal(s.deviceRoot, '/dev');
  assert.equal(s.sysfsRoot, '/sys');
  assert.equal(s.availabilityZone, null);
  assert.throws(() => resolveNodeSettings({ nodeId: 'i-1', maxVolumesPerNode: 0 }), /positive/);
  assert.throws(() => resolveNodeSettings({ nodeId: '' }), /nodeId/);
});

test('by-id names: virtio and SCSI, short and full serials, and the WWN', () => {
  assert.deepEqual(byIdLinkNames(ID), [
    'virtio-0a1b2c3d-4e5f-6789-a',
    `virtio-${ID}`,
    'scsi-0QEMU_QEMU_HARDDISK_0a1b2c3d-4e5f-6789-a',
    `scsi-0QEMU_QEMU_HARDDISK_${ID}`,
    'wwn-0x0a1b2c3d4e5f6789abcdef0123456789',
  ]);
});

test('serials match the whole ID or exactly the 20 characters virtio-blk keeps', () => {
  assert.ok(serialMatches(ID, ID));
  assert.ok(serialMatches(`${ID.slice(0, 20)}\n`, ID));
  assert.ok(!serialMatches(ID.slice(0, 19), ID), 'a shorter prefix is not virtio truncation');
  assert.ok(!serialMatches('', ID));
  assert.ok(!serialMatches('ffffffff-4e5f-6789-abcd-ef0123456789', ID));
});

test("a volume of another cloud (CSI ID '<cloud>:<uuid>') is found by its Cinder UUID, which its disk carries", () => {
  assert.deepEqual(byIdLinkNames(`east:${ID}`), byIdLinkNames(ID));
  assert.deepEqual(byIdLinkNames(`region:a:${ID}`), byIdLinkNames(ID), 'a cloud name may hold a colon');
  assert.ok(serialMatches(ID.slice(0, 20), `east:${ID}`));
  assert.ok(serialMatches(ID, `east:${ID}`));
  assert.ok(!serialMatches(`east:${ID}`.slice(0, 20), `east:${ID}`));
});

test("a disk is taken for a volume's by a serial or by-id link that is a volume ID, not by any serial or QEMU link", async (t: TestContext) => {
  const root = await mkdtemp(path.join(tmpdir(), 'cinder-csi-evidence-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dev = path.join(root, 'dev');
  const sys = path.join(root, 'sys');
  await mkdir(path.join(dev, 'disk', 'by-id'), { recursive: true });
  for (const name of ['sdb', 'sdc', 'vdb', 'nvme0n1']) {
    await writeFile(path.join(dev, name), '');
    await mkdir(path.join(sys, 'block', name), { recursive: true });
  }
  // virtio-scsi: an image or ephemeral disk, and a volume.
  await symlink('../../sdb', path.join(dev, 'disk', 'by-id', 'scsi-0QEMU_QEMU_HARDDISK_drive-scsi0-0-0-1'));
  await symlink('../../sdc', path.join(dev, 'disk', 'by-id', `scsi-0QEMU_QEMU_HARDDISK_${ID}`));
  await writeFile(path.join(sys, 'block', 'vdb', 'serial'), ID.slice(0, 20));
  await writeFile(path.join(sys, 'block', 'nvme0n1', 'serial'), 'S3EWNX0K123456');
  assert.equal(await volumeEvidence('sdb', dev, sys), null);
  assert.equal(await volumeEvidence('sdc', dev, sys), `by-id link scsi-0QEMU_QEMU_HARDDISK_${ID}`);
  assert.equal(await volumeEvidence('vdb', dev, sys), `serial ${ID.slice(0, 20)}`);
  assert.equal(await volumeEvidence('nvme0n1', dev, sys), null);
});

test('device numbers decode the Linux dev_t layout', () => {
  assert.equal(formatDeviceNumber(0x0700n), '7:0');
  assert.equal(formatDeviceNumber((259n << 8n) | 3n), '259:3');
  // minor 300 = 0x12c: the low byte stays in bits 0-7, the rest moves to bits 20 and up.
  assert.equal(formatDeviceNumber(0x800n | 0x2cn | (0x100n << 12n)), '8:300');
});
