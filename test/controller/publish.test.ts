import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isNotFound } from '../../src/openstack/errors';
import { PUBLISH_CONTEXT } from '../../src/controller/publish';
import { BLOCK_RWX, Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('ControllerPublishVolume and ControllerUnpublishVolume', () => {
  let h: ControllerHarness;
  let nodeA: string;
  let nodeB: string;
  before(async () => {
    h = await startController({ sim: { instances: [{ name: 'node-a' }, { name: 'node-b' }], maxDiskDevices: 4 } });
    [nodeA, nodeB] = h.driver.sim.instances.map((i) => i.id);
  });
  after(() => h.stop());

  const publish = (volumeId: string, nodeId: string, extra: Record<string, unknown> = {}) =>
    h.rpc('ControllerPublishVolume', { volume_id: volumeId, node_id: nodeId, volume_capability: MOUNT_RWO, ...extra });
  const unpublish = (volumeId: string, nodeId: string) => h.rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: nodeId });
  const novaAttachments = (serverId: string) => h.cloud.compute.listVolumeAttachments(serverId);
  const assertAvailableAndDetachedFrom = async (volumeId: string, serverId: string) => {
    const v = await h.cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.status, 'available');
    assert.deepEqual(v.attachments, []);
    assert.ok(!(await novaAttachments(serverId)).some((a) => a.volumeId === volumeId), 'Nova keeps no record');
  };

  it('attaches, waits for in-use and hands the device to the node; the same call again gives the same answer', async () => {
    h.driver.sim.control.setDurations({ attach: 400 });
    try {
      const id = await h.createVolume('pvc-publish');
      const res = await publish(id, nodeA);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.status, 'in-use');
      assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
      assert.match(res.publish_context[PUBLISH_CONTEXT.devicePath], /^\/dev\/[a-z]+$/);
      assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], undefined);
      const again = await publish(id, nodeA);
      assert.deepEqual(again.publish_context, res.publish_context);
      await unpublish(id, nodeA);
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
  });

  it('picks up an attach that ran out of time instead of starting another', async () => {
    h.driver.sim.control.setDurations({ attach: 1500 });
    try {
      const id = await h.createVolume('pvc-publish-late');
      const err = await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA, volume_capability: MOUNT_RWO }, 300).then(
        () => assert.fail('cannot finish in time'),
        (e) => e,
      );
      assert.equal(err.code, Code.DEADLINE_EXCEEDED);
      h.driver.sim.control.resetCounters();
      let res: any;
      for (let attempt = 0; attempt < 5 && !res; attempt++) {
        res = await publish(id, nodeA).catch(async (e) => {
          assert.equal(e.code, Code.ABORTED, e.details);
          await new Promise((r) => setTimeout(r, 100));
        });
      }
      assert.ok(res.publish_context[PUBLISH_CONTEXT.devicePath]);
      const attachPosts = Object.entries(h.driver.sim.control.counters()).filter(([route]) => route.startsWith('POST') && route.includes('os-volume_attachments'));
      assert.deepEqual(attachPosts, [], 'no second attach request');
      await unpublish(id, nodeA);
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
  });

  it('publish and unpublish ask Nova only to attach, to detach and once whether its record is gone', async () => {
    const id = await h.createVolume('pvc-publish-requests');
    const novaRequests = () => {
      const counts = h.driver.sim.control.counters();
      const of = (route: string) => counts[route] ?? 0;
      return {
        getServer: of('GET /compute/v2.1/servers/{server}'),
        getAttachment: of('GET /compute/v2.1/servers/{server}/os-volume_attachments/{volume}'),
        listAttachments: of('GET /compute/v2.1/servers/{server}/os-volume_attachments'),
        attach: of('POST /compute/v2.1/servers/{server}/os-volume_attachments'),
        detach: of('DELETE /compute/v2.1/servers/{server}/os-volume_attachments/{volume}'),
      };
    };
    h.driver.sim.control.resetCounters();
    await publish(id, nodeA);
    assert.deepEqual(novaRequests(), { getServer: 0, getAttachment: 0, listAttachments: 0, attach: 1, detach: 0 });
    await unpublish(id, nodeA);
    assert.deepEqual(novaRequests(), { getServer: 0, getAttachment: 1, listAttachments: 0, attach: 1, detach: 1 });
    assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
  });

  it('passes readonly on to the node', async () => {
    const id = await h.createVolume('pvc-publish-ro');
    const res = await publish(id, nodeA, { readonly: true });
    assert.equal(res.publish_context[PUBLISH_CONTEXT.readonly], 'true');
    await unpublish(id, nodeA);
  });

  it('answers NOT_FOUND for an unknown volume or server, INVALID_ARGUMENT for missing fields', async () => {
    const id = await h.createVolume('pvc-publish-errors');
    await expectCode(publish('00000000-0000-4000-8000-000000000000', nodeA), Code.NOT_FOUND);
    const err = await expectCode(publish(id, '00000000-0000-4000-8000-00000000beef'), Code.NOT_FOUND);
    assert.match(err.details, /^node 00000000-0000-4000-8000-00000000beef: .*Nova server/);
    assert.match(err.details, /in the driver's project 'demo'.*the cluster's VMs must be in the driver's project/);
    await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, volume_capability: MOUNT_RWO }), Code.INVALID_ARGUMENT);
    await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA }), Code.INVALID_ARGUMENT);
    await expectCode(publish(id, nodeA, { volume_capability: BLOCK_RWX }), Code.INVALID_ARGUMENT);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
  });

  const until = async (cond: () => boolean) => {
    while (!cond()) await new Promise((r) => setTimeout(r, 1));
  };
  const attachPosts = () => h.driver.sim.control.counters()['POST /compute/v2.1/servers/{server}/os-volume_attachments'] ?? 0;
  /** The driver's next attach request reaches Nova's API at once, and is acted on `holdMs` later. */
  const holdNextAttach = (holdMs: number) =>
    h.driver.sim.control.addFault({ service: 'compute', method: 'POST', pathPattern: 'os-volume_attachments$', delayMs: holdMs, times: 1 });

  // A controller killed mid-publish leaves its attach with Nova; the CO's retry, on the next controller, reads the
  // volume 'available' and sends its own attach, which Nova refuses: the volume is attached (or being attached) to
  // this very node already.
  it("a publish whose attach Nova refuses because an earlier attach to this node got there first answers OK, with that attach's device", async () => {
    // The earlier attach still under way, and complete (Nova says "is already attached to instances: <node>" for both).
    for (const attachMs of [1000, 50]) {
      h.driver.sim.control.setDurations({ attach: attachMs });
      try {
        const id = await h.createVolume(`pvc-publish-raced-${attachMs}`);
        holdNextAttach(attachMs === 50 ? 600 : 200);
        const posts = attachPosts();
        const call = publish(id, nodeA);
        await until(() => attachPosts() > posts);
        await h.cloud.compute.attachVolume(nodeA, id); // the killed controller's, which Nova acts on first
        if (attachMs === 50) await waitForStatus(id, 'in-use');
        const res = await call;
        const v = await h.cloud.blockStorage.getVolume(id);
        assert.equal(v.status, 'in-use');
        assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
        assert.equal(res.publish_context[PUBLISH_CONTEXT.devicePath], v.attachments[0].device);
        await unpublish(id, nodeA);
      } finally {
        h.driver.sim.control.clearFaults();
        h.driver.sim.control.setDurations({ attach: 50 });
      }
    }
  });

  it('a publish whose attach Nova refuses because the volume was attached to another node meanwhile stays FAILED_PRECONDITION', async () => {
    const id = await h.createVolume('pvc-publish-raced-elsewhere');
    try {
      holdNextAttach(600);
      const posts = attachPosts();
      const call = publish(id, nodeA);
      await until(() => attachPosts() > posts);
      await h.cloud.compute.attachVolume(nodeB, id);
      await waitForStatus(id, 'in-use');
      const err = await expectCode(call, Code.FAILED_PRECONDITION);
      assert.match(err.details, new RegExp(`already attached to instances: ${nodeB}`));
      assert.deepEqual((await h.cloud.blockStorage.getVolume(id)).attachments.map((a) => a.serverId), [nodeB]);
    } finally {
      h.driver.sim.control.clearFaults();
    }
    await unpublish(id, nodeB);
  });

  it('a volume deleted between the look and the attach is NOT_FOUND naming the volume, not the node', async () => {
    const id = await h.createVolume('pvc-publish-deleted-meanwhile');
    try {
      holdNextAttach(400);
      const posts = attachPosts();
      const call = publish(id, nodeA);
      await until(() => attachPosts() > posts);
      await h.cloud.blockStorage.deleteVolume(id);
      const err = await expectCode(call, Code.NOT_FOUND);
      assert.match(err.details, new RegExp(`^volume ${id} does not exist in cloud .*Volume ${id} could not be found`));
      assert.doesNotMatch(err.details, /node|Nova server/);
    } finally {
      h.driver.sim.control.clearFaults();
    }
  });

  it('publishes to and unpublishes from a shelved-offloaded server (compute 2.20); an unpublish of a volume not attached there is OK', async () => {
    const server = await h.driver.sim.control.addInstance({ name: 'node-shelved' });
    const attached = await h.createVolume('pvc-shelved-attached');
    const other = await h.createVolume('pvc-shelved-other');
    await publish(attached, server.id);
    await h.driver.sim.control.shelveOffloadInstance(server.id);
    try {
      await unpublish(other, server.id);
      await unpublish(attached, server.id);
      await assertAvailableAndDetachedFrom(attached, server.id);
      const res = await publish(other, server.id);
      assert.deepEqual(res.publish_context, {}, 'Nova names a device only at unshelve');
      assert.deepEqual((await h.cloud.blockStorage.getVolume(other)).attachments.map((a) => a.serverId), [server.id]);
      await unpublish(other, server.id);
      await assertAvailableAndDetachedFrom(other, server.id);
    } finally {
      await h.driver.sim.control.deleteInstance(server.id);
    }
  });

  it('refuses a second server for a volume that is not multiattach', async () => {
    const id = await h.createVolume('pvc-publish-twice');
    await publish(id, nodeA);
    const err = await expectCode(publish(id, nodeB), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(nodeA));
    assert.deepEqual(await novaAttachments(nodeB), []);
    await unpublish(id, nodeA);
  });

  it('refuses a second server for a single-node access mode even when the volume type is multiattach', async () => {
    const id = await h.createVolume('pvc-publish-rwo-multi', { parameters: { type: 'multiattach' } });
    await publish(id, nodeA, { volume_capability: MOUNT_RWO });
    const err = await expectCode(publish(id, nodeB, { volume_capability: MOUNT_RWO }), Code.FAILED_PRECONDITION);
    assert.match(err.details, new RegExp(`published to node ${nodeA}`));
    assert.deepEqual(await novaAttachments(nodeB), []);
    await unpublish(id, nodeA);
  });

  it('attaches a multiattach volume to two servers at once (one after the other: Cinder reserves one attach at a time)', async () => {
    const id = await h.createVolume('pvc-publish-multi', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await Promise.all([publish(id, nodeA, { volume_capability: BLOCK_RWX }), publish(id, nodeB, { volume_capability: BLOCK_RWX })]);
    let v = await h.cloud.blockStorage.getVolume(id);
    assert.deepEqual(v.attachments.map((a) => a.serverId).sort(), [nodeA, nodeB].sort());
    await unpublish(id, nodeA);
    v = await h.cloud.blockStorage.getVolume(id);
    assert.equal(v.status, 'in-use');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeB]);
    await unpublish(id, nodeB);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
  });

  it('a repeat publish to a node already attached answers at once while another node attaches the volume', async () => {
    const id = await h.createVolume('pvc-publish-repeat-busy', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    const first = await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    h.driver.sim.control.setDurations({ attach: 1500 });
    try {
      await h.cloud.compute.attachVolume(nodeB, id, { multiattach: true }); // someone else's, still under way
      assert.notEqual((await h.cloud.blockStorage.getVolume(id)).status, 'in-use');
      const started = Date.now();
      const again = await publish(id, nodeA, { volume_capability: BLOCK_RWX });
      assert.ok(Date.now() - started < 700, `answered after ${Date.now() - started} ms: it waited for the other node's attach`);
      assert.deepEqual(again, first);
      assert.deepEqual((await novaAttachments(nodeA)).map((a) => a.volumeId), [id], 'the attachment to A is left alone');
      await h.cloud.waiter.volume(id, { target: ['in-use'], transient: ['reserved', 'attaching'] });
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
    await unpublish(id, '');
  });

  it("a publish whose attach completes as another server's attach of the multiattach volume begins answers OK: Cinder lists this node's attachment", async () => {
    const id = await h.createVolume('pvc-publish-then-other', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    const { control } = h.driver.sim;
    const status = () => control.inventory().volumes.find((v) => v.id === id)?.status;
    const volumeGets = () => control.counters()['GET /volume/v3/{project}/volumes/{id}'] ?? 0;
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise((r) => setTimeout(r, 1));
    };
    control.setDurations({ attach: 1000 });
    try {
      const call = publish(id, nodeA, { volume_capability: BLOCK_RWX });
      // The driver has looked at the attach under way: it saw 'attaching'.
      await until(() => status() === 'attaching');
      const looks = volumeGets();
      await until(() => volumeGets() > looks);
      // Its next looks are answered late, once another actor's attach to server B has reserved the volume
      // (Cinder then shows 'reserved', though A's attachment is complete and listed).
      control.addFault({ service: 'volume', method: 'GET', pathPattern: `/volumes/${id}$`, delayMs: 800, times: Infinity });
      control.setDurations({ attach: 3000 });
      await until(() => status() === 'in-use');
      await h.cloud.compute.attachVolume(nodeB, id, { multiattach: true });
      const res = await call;
      assert.equal(res.publish_context[PUBLISH_CONTEXT.devicePath], '/dev/vdb');
      control.clearFaults();
      await h.cloud.waiter.volume(id, { target: ['in-use'], transient: ['reserved', 'attaching'] });
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.deepEqual(v.attachments.map((a) => a.serverId).sort(), [nodeA, nodeB].sort(), "A's attachment was left alone");
    } finally {
      control.clearFaults();
      control.setDurations({ attach: 50 });
    }
    await unpublish(id, '');
  });

  it('unpublishes from one node while publishing to another, one after the other (Cinder detaches only an in-use volume)', async () => {
    const id = await h.createVolume('pvc-publish-swap', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    h.driver.sim.control.setDurations({ attach: 400 });
    try {
      await Promise.all([publish(id, nodeB, { volume_capability: BLOCK_RWX }), unpublish(id, nodeA)]);
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeB]);
    await unpublish(id, nodeB);
  });

  it('answers ABORTED (the CO retries) while someone else is attaching the multiattach volume', async () => {
    const id = await h.createVolume('pvc-publish-busy', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    h.driver.sim.control.setDurations({ attach: 800 });
    try {
      // Another actor (not this driver) attaches it to server B: Cinder holds it 'reserved', then 'attaching'.
      await h.cloud.compute.attachVolume(nodeB, id, { multiattach: true });
      const err = await expectCode(publish(id, nodeA, { volume_capability: BLOCK_RWX }), Code.ABORTED);
      assert.match(err.details, /is '(reserved|attaching)'; it can be attached when Cinder has finished/);
      await h.cloud.waiter.volume(id, { target: ['in-use'], transient: ['reserved', 'attaching'] });
      // Had the other attach begun between the driver's look and its request, Nova's answer is Cinder's refusal to reserve.
      h.driver.sim.control.addFault({
        service: 'compute',
        method: 'POST',
        pathPattern: 'os-volume_attachments$',
        status: 400,
        body: {
          badRequest: {
            code: 400,
            message: `Invalid input received: Invalid volume: Volume ${id} status must be available or in-use or downloading to reserve, but the current status is attaching. (HTTP 400) (Request-ID: req-1)`,
          },
        },
      });
      const raced = await expectCode(publish(id, nodeA, { volume_capability: BLOCK_RWX }), Code.ABORTED);
      assert.match(raced.details, /being attached or detached elsewhere/);
      await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
    await unpublish(id, '');
  });

  it('answers RESOURCE_EXHAUSTED when the server has no free disk slot', async () => {
    const server = await h.driver.sim.control.addInstance({ name: 'node-small' });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        ids.push(await h.createVolume(`pvc-slot-${i}`));
        await publish(ids[i], server.id);
      }
      ids.push(await h.createVolume('pvc-slot-3'));
      const err = await expectCode(publish(ids[3], server.id), Code.RESOURCE_EXHAUSTED);
      assert.match(err.details, /cannot take more volumes/);
      assert.equal((await h.cloud.blockStorage.getVolume(ids[3])).status, 'available');
    } finally {
      for (const id of ids) await unpublish(id, server.id);
    }
  });

  it('unpublish returns only when Nova and Cinder both show the attachment gone, and is idempotent', async () => {
    h.driver.sim.control.setDurations({ detach: 400 });
    try {
      const id = await h.createVolume('pvc-unpublish');
      await publish(id, nodeA);
      await unpublish(id, nodeA);
      const v = await h.cloud.blockStorage.getVolume(id);
      assert.equal(v.status, 'available');
      assert.deepEqual(v.attachments, []);
      assert.ok(!(await novaAttachments(nodeA)).some((a) => a.volumeId === id));
      await unpublish(id, nodeA);
      await unpublish('00000000-0000-4000-8000-000000000000', nodeA);
      // Never attached to node B: nothing to do.
      await unpublish(id, nodeB);
    } finally {
      h.driver.sim.control.setDurations({ detach: 50 });
    }
  });

  it('an unpublish retried while its earlier detach is still under way waits for that detach and answers OK', async () => {
    const id = await h.createVolume('pvc-unpublish-underway');
    await publish(id, nodeA);
    h.driver.sim.control.setDurations({ detach: 800 });
    try {
      await h.cloud.compute.detachVolume(nodeA, id); // the earlier call's, which ran out of time or crashed
      assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'detaching');
      await unpublish(id, nodeA);
      await assertAvailableAndDetachedFrom(id, nodeA);
    } finally {
      h.driver.sim.control.setDurations({ detach: 50 });
    }
  });

  it('an unpublish that waits for a detach under way which then fails answers INTERNAL with where to look', async () => {
    const id = await h.createVolume('pvc-unpublish-underway-fails');
    await publish(id, nodeA);
    h.driver.sim.control.setDurations({ detach: 1500 });
    try {
      await h.cloud.compute.detachVolume(nodeA, id);
      const answer = unpublish(id, nodeA).then(() => assert.fail('the detach failed'), (e) => e);
      await new Promise((r) => setTimeout(r, 300));
      h.driver.sim.control.setVolumeStatus(id, 'error_detaching');
      const err = await answer;
      assert.equal(err.code, Code.INTERNAL, err.details);
      assert.match(err.details, /the detach of volume \S+ that was under way failed: .*error_detaching.*openstack volume show/);
    } finally {
      h.driver.sim.control.setDurations({ detach: 50 });
    }
  });

  it('an unpublish from one node while another node\'s detach of the multiattach volume is under way waits, then detaches its own', async () => {
    const id = await h.createVolume('pvc-unpublish-other-detaching', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    await publish(id, nodeB, { volume_capability: BLOCK_RWX });
    h.driver.sim.control.setDurations({ detach: 800 });
    try {
      await h.cloud.compute.detachVolume(nodeB, id); // someone else's, under way
      await unpublish(id, nodeA);
      await assertAvailableAndDetachedFrom(id, nodeA);
    } finally {
      h.driver.sim.control.setDurations({ detach: 50 });
    }
  });

  it('counts a deleted server as detached', async () => {
    const server = await h.driver.sim.control.addInstance({ name: 'node-doomed' });
    const id = await h.createVolume('pvc-doomed-server');
    await publish(id, server.id);
    await h.driver.sim.control.deleteInstance(server.id);
    await unpublish(id, server.id);
    assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
  });

  // Nova deletes a server even when its call to Cinder fails ("Ignoring volume cleanup failure"):
  // Cinder then lists the volume attached to a server that no longer exists, and nothing else would
  // ever detach it.
  it('removes the attachment Cinder keeps to a deleted server, so the volume can be published elsewhere and deleted', async () => {
    const server = await h.driver.sim.control.addInstance({ name: 'node-gone-dirty' });
    const id = await h.createVolume('pvc-dirty-server');
    await publish(id, server.id);
    await h.driver.sim.control.deleteInstance(server.id, { cinderKeepsAttachments: true });
    assert.deepEqual((await h.cloud.blockStorage.getVolume(id)).attachments.map((a) => a.serverId), [server.id]);
    await unpublish(id, server.id);
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.equal(v.status, 'available');
    assert.deepEqual(v.attachments, []);
    await publish(id, nodeA);
    await unpublish(id, nodeA);
    await h.rpc('DeleteVolume', { volume_id: id });
  });

  it('reports an attach that fails in Cinder, and the retry finds the attachment', async () => {
    // Long enough that the driver polls while the attach is still pending.
    h.driver.sim.control.setDurations({ attach: 3000 });
    try {
      const id = await h.createVolume('pvc-attach-fails');
      const call = publish(id, nodeA);
      await waitForStatus(id, 'reserved');
      h.driver.sim.control.setVolumeStatus(id, 'error');
      const err = await expectCode(call, Code.INTERNAL);
      assert.match(err.details, /attaching volume .* failed: .*error/);
      // While Cinder shows the error, a retry is told to come back later.
      await expectCode(publish(id, nodeA), Code.ABORTED);
      // Nova finishes on its own here; the CO's next retry finds the attachment and succeeds.
      await waitForStatus(id, 'in-use', 5000);
      const res = await publish(id, nodeA);
      assert.ok(res.publish_context[PUBLISH_CONTEXT.devicePath]);
      await unpublish(id, nodeA);
      assert.equal((await h.cloud.blockStorage.getVolume(id)).status, 'available');
    } finally {
      h.driver.sim.control.setDurations({ attach: 50 });
    }
  });

  // Nova reserves the volume before its attach request returns; when the compute host then fails to
  // connect the disk, Nova deletes the attachment and the volume is what it was before.
  it('answers at once, with where to look, when Nova rolls its attach back; nothing stays attached, and a retry attaches', async () => {
    // Rolled back before the driver's first look (it never sees 'reserved'), and after looks that saw it under way.
    for (const attachMs of [0, 400]) {
      h.driver.sim.control.setDurations({ attach: attachMs });
      try {
        const id = await h.createVolume(`pvc-attach-rolled-back-${attachMs}`);
        h.driver.sim.control.failAttaches(1);
        // Not DEADLINE_EXCEEDED: nothing is left to wait for.
        const err = await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA, volume_capability: MOUNT_RWO }, 10_000), Code.INTERNAL);
        assert.match(err.details, /attaching volume .* failed: .*available.*openstack server event list/);
        await assertAvailableAndDetachedFrom(id, nodeA);
        const res = await publish(id, nodeA);
        assert.ok(res.publish_context[PUBLISH_CONTEXT.devicePath]);
        await unpublish(id, nodeA);
      } finally {
        h.driver.sim.control.setDurations({ attach: 50 });
      }
    }
  });

  it('a multiattach volume: an attach rolled back on one node answers at once and leaves the other node attached', async () => {
    const id = await h.createVolume('pvc-multi-rolled-back', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    h.driver.sim.control.failAttaches(1);
    // Back to in-use, from node A's attachment: a target state, but with none to node B.
    const err = await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeB, volume_capability: BLOCK_RWX }, 10_000), Code.INTERNAL);
    assert.match(err.details, new RegExp(`is in-use with no attachment to server ${nodeB}`));
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.equal(v.status, 'in-use');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
    await publish(id, nodeB, { volume_capability: BLOCK_RWX });
    await h.rpc('ControllerUnpublishVolume', { volume_id: id });
  });

  // Nova marks the volume 'detaching' before its detach request returns; when the guest keeps the
  // disk, Nova rolls back: the volume is in-use again, attached as before.
  it('answers at once when Nova rolls its detach back: the volume stays attached, and a retry detaches', async () => {
    const id = await h.createVolume('pvc-detach-rolled-back');
    await publish(id, nodeA);
    h.driver.sim.control.failDetaches(1);
    const err = await expectCode(h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: nodeA }, 10_000), Code.INTERNAL);
    assert.match(err.details, new RegExp(`detaching volume .* failed: .*is in-use again, still attached to server ${nodeA}.*openstack server event list`));
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.equal(v.status, 'in-use');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA]);
    await unpublish(id, nodeA);
    await assertAvailableAndDetachedFrom(id, nodeA);
  });

  it('unpublishes from every server when node_id is empty', async () => {
    const id = await h.createVolume('pvc-unpublish-all', { volume_capabilities: [BLOCK_RWX], parameters: { type: 'multiattach' } });
    await publish(id, nodeA, { volume_capability: BLOCK_RWX });
    await publish(id, nodeB, { volume_capability: BLOCK_RWX });
    await h.rpc('ControllerUnpublishVolume', { volume_id: id });
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.deepEqual(v.attachments, []);
    assert.equal(v.status, 'available');
  });

  /** As the sidecars do: the call again every 50 ms while it answers ABORTED (the earlier one still in flight). */
  async function retryWhileAborted(call: () => Promise<unknown>, what: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const err = await call().then(() => undefined, (e) => e);
      if (!err) return;
      assert.equal(err.code, Code.ABORTED, err.details);
      assert.ok(attempt < 100, `${what} never got its turn`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('a publish whose caller gives up while Nova still handles the attach request leaves no attachment behind the unpublish that follows', async () => {
    // Nova acts on an attach request it has received whether or not the client is still there: a slow Nova API
    // (here: 1 s) attaches the volume after an abandoned publish, and an unpublish that ran before that would leave
    // the volume attached to a node that Kubernetes no longer has it on (and DeleteVolume refused for ever).
    const id = await h.createVolume('pvc-publish-abandoned-post');
    h.driver.sim.control.addFault({ service: 'compute', method: 'POST', pathPattern: 'os-volume_attachments', delayMs: 1000, times: 1 });
    await expectCode(h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA, volume_capability: MOUNT_RWO }, 200), Code.DEADLINE_EXCEEDED);
    // What the external-attacher does when the VolumeAttachment goes away: unpublish, retrying ABORTED.
    await retryWhileAborted(() => unpublish(id, nodeA), 'the unpublish');
    // Long enough for an attach request still under way in Nova to have been acted on.
    await new Promise((r) => setTimeout(r, 1500));
    await assertAvailableAndDetachedFrom(id, nodeA);
    await h.rpc('DeleteVolume', { volume_id: id });
  });

  it('an unpublish whose caller gives up while Nova still handles the detach request does not detach after the publish that follows', async () => {
    // The mirror case: a detach Nova acts on after a later publish answered OK would leave Kubernetes using a volume
    // that is no longer attached.
    const id = await h.createVolume('pvc-unpublish-abandoned-delete');
    await publish(id, nodeA);
    h.driver.sim.control.addFault({ service: 'compute', method: 'DELETE', pathPattern: 'os-volume_attachments', delayMs: 1000, times: 1 });
    await expectCode(h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: nodeA }, 200), Code.DEADLINE_EXCEEDED);
    await retryWhileAborted(() => publish(id, nodeA), 'the publish');
    // Long enough for a detach request still under way in Nova to have been acted on.
    await new Promise((r) => setTimeout(r, 1500));
    const v = await h.cloud.blockStorage.getVolume(id);
    assert.deepEqual(v.attachments.map((a) => a.serverId), [nodeA], 'still attached where the publish said it is');
    await unpublish(id, nodeA);
    await h.rpc('DeleteVolume', { volume_id: id });
  });

  async function waitForStatus(id: string, status: string, timeoutMs = 1000): Promise<void> {
    for (const until = Date.now() + timeoutMs; Date.now() < until; ) {
      const v = await h.cloud.blockStorage.getVolume(id).catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)));
      if (v?.status === status) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`volume ${id} never reached ${status}`);
  }
});

describe('ControllerUnpublishVolume on a cloud whose Nova stops below compute 2.20', () => {
  let h: ControllerHarness;
  before(async () => {
    h = await startController({ sim: { instances: [{ name: 'node-a' }], maxComputeMicroversion: '2.19' } });
  });
  after(() => h.stop());

  it('attaches and detaches without a microversion (one 406 learnt), and a shelved-offloaded server is ABORTED as Nova refuses it', async () => {
    const [nodeA] = h.driver.sim.instances.map((i) => i.id);
    const id = await h.createVolume('pvc-old-nova');
    h.driver.sim.control.resetCounters();
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: nodeA, volume_capability: MOUNT_RWO });
    await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: nodeA });
    assert.equal(h.driver.sim.control.counters()['POST /compute/v2.1/servers/{server}/os-volume_attachments'], 2, 'one refused at 2.20, one without');
    assert.equal(h.driver.sim.control.counters()['DELETE /compute/v2.1/servers/{server}/os-volume_attachments/{volume}'], 1);
    await h.driver.sim.control.shelveOffloadInstance(nodeA);
    const err = await expectCode(h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: nodeA }), Code.ABORTED);
    assert.match(err.details, /while it is in vm_state shelved_offloaded/);
  });
});
