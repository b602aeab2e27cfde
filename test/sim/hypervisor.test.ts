import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type Simulator } from '../../src/sim';
import { run } from '../../src/util/exec';
import { createReadOnlyView } from '../../src/node/readonly-view';
import { availableVolume, call, login, volumeStatus, waitFor, type Session } from './helpers';

const notRoot = process.getuid?.() !== 0 ? 'loop devices need root' : false;
const MiB = 1024 * 1024;

/** The loop devices whose backing file lies under `dir`, read from sysfs. */
function loopsBackedUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/sys/block')) {
    const f = `/sys/block/${name}/loop/backing_file`;
    if (name.startsWith('loop') && existsSync(f) && readFileSync(f, 'utf8').trim().startsWith(dir)) out.push(`/dev/${name}`);
  }
  return out;
}

async function writeAt(device: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(device, 'r+');
  try {
    await fh.write(data, 0, data.length, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readAt(device: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

describe('sim hypervisor (loop devices)', { skip: notRoot }, () => {
  let sim: Simulator;
  let s: Session;
  let server: string;
  let stateDir: string;
  before(async () => {
    sim = await startSimulator({ hypervisor: true, durations: { create: 5, attach: 5, detach: 5, extend: 5, snapshot: 5, delete: 5 } });
    s = await login(sim);
    server = sim.instances[0].id;
    stateDir = path.dirname(path.dirname(path.dirname(sim.instances[0].deviceRoot)));
  });
  after(() => sim.stop());

  const link = (volumeId: string) => path.join(sim.instances[0].deviceRoot, 'disk', 'by-id', `virtio-${volumeId.slice(0, 20)}`);
  const attach = async (id: string) => {
    const r = await call('POST', `${s.compute}/servers/${server}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
    assert.equal(r.status, 200, r.text);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
  };
  const detach = async (id: string) => {
    assert.equal((await call('DELETE', `${s.compute}/servers/${server}/os-volume_attachments/${id}`, { token: s.token })).status, 202);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'available');
  };

  it('attach makes a by-id link to a real block device; data survives detach and re-attach; extend grows it; snapshots carry data', async () => {
    assert.equal(sim.hypervisor, true);
    const id = await availableVolume(s, { size: 1 });
    await attach(id);
    const loop = await readlink(link(id));
    assert.match(loop, /^\/dev\/loop\d+$/);
    assert.ok((await stat(link(id))).isBlockDevice());
    assert.equal(Number(readFileSync(`/sys/block/${path.basename(loop)}/size`, 'utf8')) * 512, 1024 * MiB);
    const marker = Buffer.from(`cinder-csi sim ${id}`);
    await writeAt(link(id), MiB, marker);

    await detach(id);
    assert.equal(existsSync(link(id)), false, 'the link goes with the detach');
    assert.deepEqual(loopsBackedUnder(stateDir), [], 'the loop device is freed');

    await attach(id);
    assert.deepEqual(await readAt(link(id), MiB, marker.length), marker);

    const ext = await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, headers: { 'openstack-api-version': 'volume 3.42' }, body: { 'os-extend': { new_size: 2 } } });
    assert.equal(ext.status, 202);
    await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
    const newLoop = path.basename(await readlink(link(id)));
    assert.equal(Number(readFileSync(`/sys/block/${newLoop}/size`, 'utf8')) * 512, 2048 * MiB);

    const snap = await call('POST', `${s.volume}/snapshots`, { token: s.token, body: { snapshot: { volume_id: id, name: 'data', force: true } } });
    assert.equal(snap.status, 202);
    await waitFor(async () => (await call('GET', `${s.volume}/snapshots/${snap.body.snapshot.id}`, { token: s.token })).body.snapshot.status, (st) => st === 'available');
    const clone = await availableVolume(s, { snapshot_id: snap.body.snapshot.id, size: 3 });
    await attach(clone);
    assert.deepEqual(await readAt(link(clone), MiB, marker.length), marker);
    assert.equal(Number(readFileSync(`/sys/block/${path.basename(await readlink(link(clone)))}/size`, 'utf8')) * 512, 3072 * MiB);
    assert.equal(loopsBackedUnder(stateDir).length, 2);
  });

  it('a volume flagged readonly attaches as a read-only loop device: writes through it fail, reads work; cleared, it attaches writable', async () => {
    const id = await availableVolume(s, { size: 1 });
    const flag = async (readonly: boolean) =>
      assert.equal((await call('POST', `${s.volume}/volumes/${id}/action`, { token: s.token, body: { 'os-update_readonly_flag': { readonly } } })).status, 202);
    const marker = Buffer.from(`written before the read-only attach ${id}`);
    await attach(id);
    await writeAt(link(id), MiB, marker);
    await detach(id);

    await flag(true);
    await attach(id);
    const loop = path.basename(await readlink(link(id)));
    assert.equal(readFileSync(`/sys/block/${loop}/ro`, 'utf8').trim(), '1', 'the loop device is read-only');
    await assert.rejects(writeAt(link(id), 0, Buffer.from('must not land')), (err: NodeJS.ErrnoException) => err.code === 'EROFS' || err.code === 'EPERM' || err.code === 'EACCES');
    assert.deepEqual(await readAt(link(id), MiB, marker.length), marker, 'reads work');
    assert.deepEqual(await readAt(link(id), 0, 13), Buffer.alloc(13), 'nothing was written');
    await detach(id);

    await flag(false);
    await attach(id);
    assert.equal(readFileSync(`/sys/block/${path.basename(await readlink(link(id)))}/ro`, 'utf8').trim(), '0');
    await writeAt(link(id), 0, Buffer.from('writable again'));
    assert.deepEqual(await readAt(link(id), 0, 14), Buffer.from('writable again'));
    await detach(id);
  });

  it('stop() frees every loop device and removes its state', async () => {
    // Left attached by the previous test on purpose: stop() must clean them up.
    assert.ok(loopsBackedUnder(stateDir).length > 0, 'the previous test left loop devices attached');
    await sim.stop();
    // By backing file, not by name: other tests may bind a freed loop number again at once.
    assert.deepEqual(loopsBackedUnder(stateDir), []);
    assert.equal(existsSync(stateDir), false);
  });
});

describe('sim stopped while one of its disks is still mounted', { skip: notRoot }, () => {
  it('stop() names the mount and keeps the image behind it; unmounted, the loop device goes', async () => {
    const sim = await startSimulator({ hypervisor: true, durations: { create: 5, attach: 5 } });
    const stateDir = path.dirname(path.dirname(path.dirname(sim.instances[0].deviceRoot)));
    const mnt = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-sim-mnt-'));
    const viewTarget = `${mnt}-view`;
    let mounted = false;
    let view: string | undefined;
    try {
      const s = await login(sim);
      const id = await availableVolume(s, { size: 1 });
      const r = await call('POST', `${s.compute}/servers/${sim.instances[0].id}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
      assert.equal(r.status, 200, r.text);
      await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
      const device = await readlink(path.join(sim.instances[0].deviceRoot, 'disk', 'by-id', `virtio-${id.slice(0, 20)}`));
      await run('mkfs.ext4', ['-q', device]);
      await run('mount', [device, mnt]);
      mounted = true;
      await writeFile(path.join(mnt, 'kept'), 'still here');
      // A read-only raw block publish: a read-only view of the disk, its device node bound onto a file.
      view = await createReadOnlyView(device);
      await writeFile(viewTarget, '');
      await run('mount', ['--bind', view, viewTarget]);

      const { stillMounted } = await sim.stop();
      assert.deepEqual(stillMounted.sort(), [mnt, viewTarget].sort());
      assert.equal(await readFile(path.join(mnt, 'kept'), 'utf8'), 'still here', 'the mount still reads its image');
      assert.ok(existsSync(path.join(stateDir, 'volumes', `${id}.img`)), 'the image behind the mount is kept');

      await run('umount', [viewTarget]);
      await run('losetup', ['--detach', view]);
      view = undefined;
      await run('umount', [mnt]);
      mounted = false;
      await waitFor(async () => loopsBackedUnder(stateDir).length, (n) => n === 0);
    } finally {
      if (view) {
        await run('umount', [viewTarget]).catch(() => undefined);
        await run('losetup', ['--detach', view]).catch(() => undefined);
      }
      if (mounted) await run('umount', [mnt]).catch(() => undefined);
      await sim.stop();
      await rm(mnt, { recursive: true, force: true });
      await rm(viewTarget, { force: true });
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('sim without the hypervisor', () => {
  it('serves attachments without devices and says so', async () => {
    const sim = await startSimulator({ hypervisor: false, durations: { create: 5, attach: 5 } });
    try {
      assert.equal(sim.hypervisor, false);
      const s = await login(sim);
      const id = await availableVolume(s, { size: 1 });
      const r = await call('POST', `${s.compute}/servers/${sim.instances[0].id}/os-volume_attachments`, { token: s.token, body: { volumeAttachment: { volumeId: id } } });
      assert.equal(r.status, 200);
      await waitFor(() => volumeStatus(s, id), (st) => st === 'in-use');
      assert.equal(existsSync(path.join(sim.instances[0].deviceRoot, 'disk', 'by-id', `virtio-${id.slice(0, 20)}`)), false);
    } finally {
      await sim.stop();
    }
  });
});
