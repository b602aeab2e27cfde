// ControllerPublishVolume with readonly (PUBLISH_READONLY): Cinder's readonly
// flag is set before a read-only attach and cleared before a read-write one;
// a publish that would need the other flag while the volume is attached is
// refused (ALREADY_EXISTS on the same node, FAILED_PRECONDITION elsewhere).
// Over real gRPC against the simulator; with root, the simulated hypervisor
// attaches for real, so the read-only device is checked to refuse writes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open, readlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PUBLISH_CONTEXT } from '../../src/controller/publish';
import { BLOCK_RWX, Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

const isRoot = process.getuid?.() === 0;
const FLAG_ACTION = 'POST /volume/v3/{project}/volumes/{id}/action';

describe('ControllerPublishVolume readonly', () => {
  let h: ControllerHarness;
  let nodeA: string;
  let nodeB: string;
  before(async () => {
    h = await startController({ sim: { hypervisor: isRoot, instances: [{ name: 'node-a' }, { name: 'node-b' }] } });
    [nodeA, nodeB] = h.driver.sim.instances.map((i) => i.id);
  });
  after(() => h.stop());

  const publish = (volumeId: string, nodeId: string, readonly: boolean, extra: Record<string, unknown> = {}) =>
    h.rpc('ControllerPublishVolume', { volume_id: volumeId, node_id: nodeId, volume_capability: MOUNT_RWO, readonly, ...extra });
  const unpublish = (volumeId: string, nodeId: string) => h.rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeId });
  const volume = (id: string) => h.cloud.blockStorage.getVolume(id);
  /** How many volume actions (extend, retype, readonly flag) the driver sent since the last reset. */
  const actions = () => h.driver.sim.control.counters()[FLAG_ACTION] ?? 0;
  /** The block device the simulated hypervisor made for the volume on that node. */
  const device = (volumeId: string, nodeId: string) => {
    const inst = h.driver.sim.instances.find((i) => i.id === nodeId)!;
    return path.join(inst.deviceRoot, 'disk', 'by-id', `virtio-${volumeId.slice(0, 20)}`);
  };
  const writeTo = async (dev: string, data: Buffer) => {
    const fh = await open(dev, 'r+');
    try {
      await fh.write(data, 0, data.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
  };
  const roFlagOfLoop = async (dev: string) => readFileSync(`/sys/block/${path.basename(await readlink(dev))}/ro`, 'utf8').trim();

  it('read-only: sets the flag before the attach (one request), says readonly to the node; again is idempotent and sends nothing more', async () => {
    const id = await h.createVolume('pvc-ro');
    h.driver.sim.control.resetCounters();
    const res = await publish(id, nodeA, true);
    assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], 'true');
    assert.match(res.publish_context[PUBLISH_CONTEXT.devicePath], /^\/dev\/[a-z]+$/);
    assert.equal(actions(), 1, 'one os-update_readonly_flag');
    const v = await volume(id);
    assert.equal(v.status, 'in-use');
    assert.equal(v.metadata.readonly, 'True');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);

    h.driver.sim.control.resetCounters();
    const again = await publish(id, nodeA, true);
    assert.deepEqual(again.publish_context, res.publish_context);
    assert.equal(actions(), 0);
    await unpublish(id, nodeA);
  });

  it('read-write on a volume never flagged, or flagged False, sends no flag request', async () => {
    const id = await h.createVolume('pvc-rw-hot-path');
    h.driver.sim.control.resetCounters();
    const res = await publish(id, nodeA, false);
    assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], undefined);
    await unpublish(id, nodeA);
    assert.equal(actions(), 0);
    assert.equal((await volume(id)).metadata.readonly, undefined, 'never flagged');

    await h.cloud.blockStorage.setReadonlyFlag(id, false);
    h.driver.sim.control.resetCounters();
    await publish(id, nodeA, false);
    assert.equal(actions(), 0);
    await unpublish(id, nodeA);
  });

  it('read-write after a read-only publish clears the flag once the volume is unpublished', async () => {
    const id = await h.createVolume('pvc-ro-then-rw');
    await publish(id, nodeA, true);
    await unpublish(id, nodeA);
    assert.equal((await volume(id)).metadata.readonly, 'True', 'unpublish leaves the flag');
    h.driver.sim.control.resetCounters();
    const res = await publish(id, nodeA, false);
    assert.equal(actions(), 1);
    assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], undefined);
    const v = await volume(id);
    assert.equal(v.metadata.readonly, 'False');
    assert.equal(v.status, 'in-use');
    await unpublish(id, nodeA);
  });

  it('ALREADY_EXISTS for the other readonly on the node it is published to, either way round; nothing changes', async () => {
    for (const [first, second] of [
      [false, true],
      [true, false],
    ]) {
      const id = await h.createVolume(`pvc-incompatible-${first}`);
      const res = await publish(id, nodeA, first);
      h.driver.sim.control.resetCounters();
      const err = await expectCode(publish(id, nodeA, second), Code.ALREADY_EXISTS);
      assert.match(err.details, new RegExp(`already published to node ${nodeA} ${first ? 'read-only' : 'read-write'}`));
      assert.match(err.details, /unpublish it from this node first/);
      assert.equal(actions(), 0, 'no flag request');
      const v = await volume(id);
      assert.equal(v.status, 'in-use');
      assert.equal(v.metadata.readonly, first ? 'True' : undefined);
      assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
      // The compatible publish still answers as before.
      assert.deepEqual((await publish(id, nodeA, first)).publish_context, res.publish_context);
      await unpublish(id, nodeA);
    }
  });

  it('ALREADY_EXISTS too while an attach to this node with the other flag is still under way', async () => {
    h.driver.sim.control.setDurations({ attach: 1500 });
    try {
      const id = await h.createVolume('pvc-incompatible-pending');
      const late = await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA, volume_capability: MOUNT_RWO, readonly: true }, 300).then(
        () => assert.fail('cannot finish in time'),
        (e) => e,
      );
      assert.equal(late.code, Code.DEADLINE_EXCEEDED);
      assert.ok(['reserved', 'attaching'].includes((await volume(id)).status));
      await expectCode(publish(id, nodeA, false), Code.ALREADY_EXISTS);
      const res = await publish(id, nodeA, true);
      assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], 'true');
      await unpublish(id, nodeA);
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
  });

  it('multiattach: FAILED_PRECONDITION for the other readonly on a second node, saying what to do; the same readonly attaches', async () => {
    const id = await h.createVolume('pvc-ro-multi', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await publish(id, nodeA, true, { volume_capability: BLOCK_RWX });
    const err = await expectCode(publish(id, nodeB, false, { volume_capability: BLOCK_RWX }), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(`attached read-only to server ${nodeA}`));
    assert.match(err.details, /unpublished from every node/);
    let v = await volume(id);
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
    assert.equal(v.metadata.readonly, 'True');

    const res = await publish(id, nodeB, true, { volume_capability: BLOCK_RWX });
    assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], 'true');
    v = await volume(id);
    assert.deepEqual(v.attachments.map((a) => a.serverId).sort(), [nodeA, nodeB].sort());
    await unpublish(id, nodeA);
    await unpublish(id, nodeB);
  });

  it('FAILED_PRECONDITION for a read-only publish of a volume attached read-write to another node', async () => {
    const id = await h.createVolume('pvc-rw-elsewhere');
    await publish(id, nodeA, false);
    h.driver.sim.control.resetCounters();
    const err = await expectCode(publish(id, nodeB, true), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(nodeA));
    assert.equal(actions(), 0);
    assert.equal((await volume(id)).metadata.readonly, undefined);
    await unpublish(id, nodeA);
  });

  it('ABORTED when the flag must change but Cinder is busy with the volume', async () => {
    const id = await h.createVolume('pvc-ro-busy');
    h.driver.sim.control.setVolumeStatus(id, 'extending');
    try {
      h.driver.sim.control.resetCounters();
      const err = await expectCode(publish(id, nodeA, true), Code.ABORTED);
      assert.match(err.details, /'extending'/);
      assert.equal(actions(), 0);
    } finally {
      h.driver.sim.control.setVolumeStatus(id, 'available');
    }
    assert.equal((await volume(id)).metadata.readonly, undefined);
  });

  it('the read-only attachment is a read-only disk: writes through it fail; published read-write again, it takes writes', { skip: isRoot ? false : 'the simulated hypervisor needs root for loop devices' }, async () => {
    const id = await h.createVolume('pvc-ro-device');
    await publish(id, nodeA, true);
    const dev = device(id, nodeA);
    assert.equal(await roFlagOfLoop(dev), '1');
    await assert.rejects(writeTo(dev, Buffer.from('must not land')), (err: NodeJS.ErrnoException) => ['EROFS', 'EPERM', 'EACCES'].includes(err.code ?? ''));
    await unpublish(id, nodeA);

    await publish(id, nodeA, false);
    assert.equal(await roFlagOfLoop(dev), '0');
    await writeTo(dev, Buffer.from('writable'));
    await unpublish(id, nodeA);
  });
});
