// The in-process mount table (mountinfo.ts) and the in-process device reads
// (sysfs size, st_rdev numbers, partitions): parser cases from proc(5) lines,
// then the same answers as findmnt, blockdev and lsblk give on real loop
// devices and mounts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../src/util/exec';
import { MountTable, escapeMountinfo, parseMountinfo, parseMountinfoLine, unescapeMountinfo } from '../../src/node/mountinfo';
import { deviceNumber, findMountAt, isReadOnlyMount, listMounts } from '../../src/node/mount';
import { blockDeviceSize, sysfsDeviceSectors } from '../../src/node/stats';
import { probeDevice, classifySignatures, isBlank } from '../../src/node/probe';
import { isRoot, ROOT_SKIP_REASON, Sandbox, writeMbr } from './loop';

const MiB = 1024 ** 2;
const skip = isRoot() ? false : ROOT_SKIP_REASON;

test('mountinfo: fields of a plain line, optional fields up to the separator', () => {
  const m = parseMountinfoLine('36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue');
  assert.deepEqual(m, {
    target: '/mnt/parent',
    source: '/dev/root',
    fstype: 'ext3',
    vfsOptions: ['rw', 'noatime'],
    fsOptions: ['rw', 'errors=continue'],
    fsroot: '/mnt1',
    majMin: '98:0',
  });
  const none = parseMountinfoLine('22 1 253:1 / / rw,relatime - xfs /dev/vda1 rw,attr2,inode64');
  assert.equal(none?.target, '/');
  assert.equal(none?.fstype, 'xfs');
  assert.deepEqual(none?.fsOptions, ['rw', 'attr2', 'inode64']);
});

test('mountinfo: octal escapes in paths, source and options are undone; other backslashes stay', () => {
  assert.equal(unescapeMountinfo('/a\\040b\\011c\\012d\\134e'), '/a b\tc\nd\\e');
  assert.equal(unescapeMountinfo('/plain'), '/plain');
  assert.equal(unescapeMountinfo('/x\\9y'), '/x\\9y');
  const m = parseMountinfoLine(
    '100 30 7:3 /sub\\040dir /var/lib/kubelet/pods/p\\040q/volumes/my\\040vol rw,relatime shared:1 - ext4 /dev/my\\040disk rw,data=ordered',
  );
  assert.equal(m?.target, '/var/lib/kubelet/pods/p q/volumes/my vol');
  assert.equal(m?.fsroot, '/sub dir');
  assert.equal(m?.source, '/dev/my disk');
});

test('mountinfo: bind mounts show the filesystem root they bind, read-only mount vs read-only superblock', () => {
  const text = [
    '200 30 7:3 / /stage rw,relatime - ext4 /dev/loop3 rw',
    '201 30 7:3 / /pod/a ro,relatime - ext4 /dev/loop3 rw',
    '202 30 7:3 /dir /pod/b rw,relatime - ext4 /dev/loop3 ro,errors=remount-ro',
    '203 30 0:5 /loop3 /pod/blockfile rw,nosuid - devtmpfs udev rw,size=100k',
    '', // the file ends with a newline
  ].join('\n');
  const mounts = parseMountinfo(text);
  assert.equal(mounts.length, 4);
  const [stage, a, b, blockfile] = mounts;
  assert.equal(stage.fsroot, '/');
  assert.equal(isReadOnlyMount(stage), false);
  assert.equal(isReadOnlyMount(a), true);
  assert.deepEqual(a.fsOptions, ['rw'], 'a read-only bind leaves the superblock read-write');
  assert.equal(isReadOnlyMount(b), false);
  assert.ok(b.fsOptions.includes('ro'), 'the superblock went read-only while the mount is rw');
  assert.equal(b.fsroot, '/dir');
  assert.equal(blockfile.fstype, 'devtmpfs');
  assert.equal(blockfile.fsroot, '/loop3');
  assert.equal(blockfile.source, 'udev');
});

test('mountinfo: stacked mounts, the later one is on top; malformed lines are skipped, not guessed', () => {
  const text = [
    '300 30 7:1 / /t rw - ext4 /dev/loop1 rw',
    'garbage',
    '301 30 7:1 / /u rw no-separator ext4 /dev/loop1 rw',
    '302 30 x:y / /v rw - ext4 /dev/loop1 rw',
    '303 30 7:2 / /t rw - xfs /dev/loop2 rw',
  ].join('\n');
  assert.deepEqual(
    parseMountinfo(text).map((m) => m.target),
    ['/t', '/t'],
  );
  const table = new MountTable(text);
  assert.equal(table.at('/t')?.source, '/dev/loop2');
  assert.equal(table.at('/u'), undefined);
  assert.equal(table.at('/v'), undefined);
  assert.deepEqual(table.all(), parseMountinfo(text));
});

test('mount table lookups: each finds exactly the field it asks for, never a look-alike in another field', () => {
  const text = [
    // "/a" as a mount point, as the root of a bind, and inside a longer path
    '400 30 8:1 / /a rw - ext4 /dev/sda1 rw',
    '401 30 8:1 /a /b rw - ext4 /dev/sda1 rw',
    '402 30 8:2 / /a/b rw - xfs /dev/sda2 rw',
    // a device number that is also a mount point's name, and an fstype spelled like a path
    '403 30 0:41 / /8:2 rw - tmpfs tmpfs rw',
    '404 30 0:5 /loop3 /pod/block\\040file rw - devtmpfs udev rw',
    '405 30 7:3 / /staging\\040with\\011tab\\134slash rw - ext4 /dev/loop3 rw',
    '406 30 8:2 / /a rw - xfs /dev/sda2 rw', // stacked on 400
    '', // the file ends with a newline
  ].join('\n');
  const table = new MountTable(text);
  assert.equal(table.at('/a')?.source, '/dev/sda2', 'the topmost of two stacked mounts');
  assert.equal(table.at('/b')?.fsroot, '/a');
  assert.equal(table.at('/a/b')?.fstype, 'xfs');
  assert.equal(table.at('/nowhere'), undefined);
  assert.equal(table.at('/pod/block file')?.fsroot, '/loop3');
  assert.equal(table.at('/staging with\ttab\\slash')?.majMin, '7:3');
  assert.deepEqual(
    table.ofDevice('8:2').map((m) => m.target),
    ['/a/b', '/a'],
  );
  assert.deepEqual(
    table.ofDevice('8:1').map((m) => m.target),
    ['/a', '/b'],
  );
  assert.deepEqual(table.ofDevice('9:9'), []);
  assert.deepEqual(
    table.ofType('tmpfs').map((m) => m.target),
    ['/8:2'],
  );
  assert.deepEqual(
    table.ofType('devtmpfs').map((m) => m.target),
    ['/pod/block file'],
  );
  assert.deepEqual(
    table.bindsOfType('devtmpfs').map((m) => m.target),
    ['/pod/block file'],
  );
  assert.deepEqual(table.bindsOfType('tmpfs'), [], 'a whole tmpfs is not a bind of part of one');
  assert.deepEqual(
    table.bindsOfType('ext4').map((m) => m.target),
    ['/b'],
  );
  // Every lookup agrees with a scan of the fully parsed table.
  const all = table.all();
  for (const m of all) {
    assert.deepEqual(table.at(m.target), all.filter((x) => x.target === m.target).at(-1));
    assert.deepEqual(table.ofDevice(m.majMin), all.filter((x) => x.majMin === m.majMin));
    assert.deepEqual(table.ofType(m.fstype), all.filter((x) => x.fstype === m.fstype));
    assert.deepEqual(table.bindsOfType(m.fstype), all.filter((x) => x.fstype === m.fstype && x.fsroot !== '/'));
  }
});

test('mountinfo escapes: escapeMountinfo writes paths as the kernel does, and unescapeMountinfo reads them back', () => {
  for (const p of ['/plain', '/with space', '/tab\there', '/new\nline', '/back\\slash', '/all \t\n\\four']) {
    assert.doesNotMatch(escapeMountinfo(p), /[ \t\n]/);
    assert.equal(unescapeMountinfo(escapeMountinfo(p)), p);
  }
  assert.equal(escapeMountinfo('/a b'), '/a\\040b');
  assert.equal(escapeMountinfo('/a\\b'), '/a\\134b');
});

interface FindmntRow {
  target: string;
  source: string;
  fstype: string;
  'vfs-options': string;
  'fs-options': string;
  fsroot: string;
  'maj:min': string;
}

test('mountinfo: the live table reads as findmnt reads it, with spaces, binds and read-only binds in it', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  await run('mkfs.ext4', ['-q', loop.path]);
  const staging = path.join(box.kubeletDir, 'staging with space');
  const sub = path.join(staging, 'sub\tdir');
  const bindRw = path.join(box.kubeletDir, 'pod a', 'mount');
  const bindRo = path.join(box.kubeletDir, 'pod\\b', 'mount');
  const fileTarget = path.join(box.kubeletDir, 'block file');
  await mkdir(staging, { recursive: true });
  await run('mount', ['-t', 'ext4', '--', loop.path, staging]);
  await mkdir(sub);
  await mkdir(bindRw, { recursive: true });
  await mkdir(bindRo, { recursive: true });
  await writeFile(fileTarget, '');
  await run('mount', ['--bind', '--', sub, bindRw]);
  await run('mount', ['--bind', '--', staging, bindRo]);
  await run('mount', ['-o', 'remount,bind,ro', '--', bindRo]);
  await run('mount', ['--bind', '--', loop.path, fileTarget]);

  const ours = await listMounts();
  const { stdout } = await run('findmnt', ['-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,VFS-OPTIONS,FS-OPTIONS,FSROOT,MAJ:MIN']);
  const rows = (JSON.parse(stdout) as { filesystems: FindmntRow[] }).filesystems;
  const theirs = rows.map((r) => ({
    target: r.target,
    source: (r.source ?? '').replace(/\[.*\]$/, ''),
    fstype: r.fstype,
    vfsOptions: r['vfs-options'].split(','),
    fsOptions: r['fs-options'].split(','),
    fsroot: r.fsroot,
    majMin: r['maj:min'],
  }));
  // findmnt prints a device-mapper or bind source by its canonical name; compare what the node service acts on.
  const key = (m: { target: string; fstype: string; vfsOptions: string[]; fsOptions: string[]; fsroot: string; majMin: string }) =>
    JSON.stringify([m.target, m.fstype, m.vfsOptions, m.fsOptions, m.fsroot, m.majMin]);
  // Only our own mounts: other test files mount and unmount concurrently, between the two reads.
  const mine = (m: { target: string }) => m.target === box.root || m.target.startsWith(`${box.root}/`);
  const ourRows = ours.all().filter(mine).map(key);
  assert.equal(ourRows.length, 4);
  assert.deepEqual(ourRows, theirs.filter(mine).map(key));

  const majMin = await deviceNumber(loop.path);
  const st = await findMountAt(staging);
  assert.equal(st?.majMin, majMin);
  assert.equal(st?.source, loop.path);
  assert.equal(st?.fsroot, '/');
  const rw = await findMountAt(bindRw);
  assert.equal(rw?.fsroot, '/sub\tdir');
  assert.equal(isReadOnlyMount(rw!), false);
  const ro = await findMountAt(bindRo);
  assert.equal(isReadOnlyMount(ro!), true);
  assert.ok(ro?.fsOptions.includes('rw'), 'the superblock of a read-only bind stays rw');
  const file = await findMountAt(fileTarget);
  assert.ok(file, 'a device node bound onto a file is in the table');
  assert.equal(file?.fsroot, `/${loop.name}`);
  for (const m of ours.all().filter(mine)) assert.deepEqual(ours.at(m.target), ours.all().filter((x) => x.target === m.target).at(-1));
});

test('sysfs reads: device numbers and sizes match lsblk and blockdev on loop devices, and follow a resize', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const a = await box.loopDevice(48 * MiB);
  const b = await box.loopDevice(16 * MiB + 4096 * 3);
  for (const loop of [a, b]) {
    const { stdout } = await run('lsblk', ['-dn', '-o', 'MAJ:MIN', loop.path]);
    const majMin = await deviceNumber(loop.path);
    assert.equal(majMin, stdout.trim());
    const size = await blockDeviceSize(loop.path, '/sys');
    const bd = Number((await run('blockdev', ['--getsize64', loop.path])).stdout.trim());
    assert.equal(size, bd);
    assert.equal(await sysfsDeviceSectors('/sys', majMin), bd / 512);
  }
  assert.notEqual(await deviceNumber(a.path), await deviceNumber(b.path));
  await box.grow(a, 80 * MiB);
  assert.equal(await blockDeviceSize(a.path, '/sys'), 80 * MiB);
  // A sysfs root that does not know the device: blockdev answers instead.
  assert.equal(await sysfsDeviceSectors(box.root, await deviceNumber(a.path)), null);
  assert.equal(await blockDeviceSize(a.path, box.root), 80 * MiB);
});

test('probe: one wipefs call sees a partition table; partitions come from sysfs entries holding a partition file', { skip }, async (t) => {
  const box = await Sandbox.create(t);
  const loop = await box.loopDevice(32 * MiB);
  await writeMbr(loop.path);
  // This kernel may not scan loop partitions, so the sysfs side is a sysfs root of our own shaped like the kernel's.
  const sysfs = path.join(box.root, 'sys');
  const disk = path.join(sysfs, 'block', loop.name);
  await mkdir(path.join(disk, 'holders'), { recursive: true });
  await mkdir(path.join(disk, `${loop.name}-not-a-partition`), { recursive: true });
  const before = await probeDevice(loop.path, sysfs);
  assert.equal(before.partitionTable, 'dos');
  assert.deepEqual(before.partitions, []);
  assert.equal(isBlank(before), false);
  await mkdir(path.join(disk, `${loop.name}p1`));
  await writeFile(path.join(disk, `${loop.name}p1`, 'partition'), '1\n');
  const after = await probeDevice(loop.path, sysfs);
  assert.deepEqual(after.partitions, [`${loop.name}p1`]);
  assert.equal(isBlank(after), false);
});

test('probe classification: every signature makes a device non-blank; two different filesystems are ambivalent', () => {
  assert.ok(isBlank(classifySignatures([], [])));
  assert.equal(isBlank(classifySignatures([], ['vdb1'])), false);
  const ext4 = classifySignatures([{ type: 'ext4', usage: 'filesystem', offset: '0x438' }], []);
  assert.equal(ext4.filesystem, 'ext4');
  assert.equal(ext4.ambivalent, false);
  const gpt = classifySignatures(
    [
      { type: 'gpt', usage: 'partition-table', offset: '0x200' },
      { type: 'gpt', usage: 'partition-table', offset: '0x3ffffe00' },
      { type: 'PMBR', usage: 'partition-table', offset: '0x1fe' },
    ],
    [],
  );
  assert.equal(gpt.partitionTable, 'gpt');
  assert.deepEqual(gpt.otherSignatures, ['PMBR']);
  const both = classifySignatures(
    [
      { type: 'xfs', usage: 'filesystem', offset: '0x0' },
      { type: 'ext4', usage: 'filesystem', offset: '0x438' },
    ],
    [],
  );
  assert.equal(both.ambivalent, true);
  assert.equal(isBlank(both), false);
  const unknownUsage = classifySignatures([{ type: 'something', usage: 'whatever', offset: '0x0' }], []);
  assert.equal(isBlank(unknownUsage), false);
  assert.deepEqual(unknownUsage.otherSignatures, ['something']);
});
