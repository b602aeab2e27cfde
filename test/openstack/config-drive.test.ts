// The node's first source of its instance identity: the config drive, a
// filesystem labelled config-2 holding openstack/latest/meta_data.json. A real
// labelled filesystem on a loop device stands in for the one Nova attaches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { run } from '../../src/util/exec';
import { silentLogger } from '../../src/log';
import { createInstanceMetadata, readConfigDrive } from '../../src/openstack/metadata';

const root = process.getuid?.() === 0;

async function existingConfigDrive(): Promise<boolean> {
  const found = await run('blkid', ['-t', 'LABEL=config-2', '-o', 'device'], { okCodes: [2] });
  return found.stdout.trim() !== '';
}

test('the instance identity is read from a config drive, which is left unmounted', { skip: root ? false : 'needs root: makes a loop device and mounts it' }, async (t) => {
  if (await existingConfigDrive()) return t.skip('this machine already has a config-2 filesystem');
  const work = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-configdrive-test-'));
  const image = path.join(work, 'config-2.img');
  await run('truncate', ['-s', '16M', image]);
  const device = (await run('losetup', ['--find', '--show', image])).stdout.trim();
  t.after(async () => {
    await run('losetup', ['-d', device]).catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  });
  await run('mkfs.ext4', ['-q', '-L', 'config-2', device], { timeoutMs: 60_000 });
  const mnt = path.join(work, 'mnt');
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
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!mountinfo.includes('cinder-csi-configdrive-'), 'the config drive was unmounted');
  assert.ok(!(await readdir(os.tmpdir())).some((n) => /^cinder-csi-configdrive-(?!test-)/.test(n)), 'the mount directory was removed');

  // With the config drive first in the order, the metadata service is never asked (its URL here answers nothing).
  const metadata = createInstanceMetadata({ order: ['configDrive', 'metadataService'], metadataUrl: 'http://127.0.0.1:9', logger: silentLogger });
  assert.equal((await metadata.identity()).instanceId, '6e1c3a39-2b47-4d83-9f8e-0f6f5d8b1c2a');
});
