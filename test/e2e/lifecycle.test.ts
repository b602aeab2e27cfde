// The whole path, in the order Kubernetes calls the driver, over real gRPC on
// unix sockets, against the simulated OpenStack whose hypervisor makes real
// loop devices appear: two nodes, a file written on one and read on the other,
// expansion, a snapshot restored into a new volume, and nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { startSimulator, type Simulator } from '../../src/sim';
import { startTestDriver, type TestDriver } from '../helpers/driver';
import { loopDevicesBackedBy, toolsSkip } from '../node/loop';

const GiB = 1024 ** 3;
// xfs: it grows online with xfs_growfs; ext4's online resize needs CAP_SYS_RESOURCE,
// which some sandboxes (this project's CI among them) do not grant even to root.
const mountCap = { mount: { fs_type: 'xfs', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p) => p !== undefined && p.startsWith(dir));
}

test('a volume goes through its whole life the way Kubernetes drives it', { skip: toolsSkip('mkfs.xfs', 'xfs_growfs'), timeout: 240_000 }, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-e2e-'));
  const simDir = path.join(work, 'sim');
  let sim: Simulator | undefined;
  let first: TestDriver | undefined;
  let second: TestDriver | undefined;
  t.after(async () => {
    await second?.stop();
    await first?.stop();
    await sim?.stop();
    await rm(work, { recursive: true, force: true });
  });

  sim = await startSimulator({
    stateDir: simDir,
    hypervisor: true,
    instances: [
      { name: 'node-1', availabilityZone: 'nova' },
      { name: 'node-2', availabilityZone: 'nova' },
    ],
  });
  first = await startTestDriver({ mode: 'all', simulator: sim, instance: 0 });
  second = await startTestDriver({ mode: 'node', simulator: sim, instance: 1 });
  const c = first.controller;
  const call = first.call;

  const node1 = await call(first.node, 'NodeGetInfo', {});
  const node2 = await call(second.node, 'NodeGetInfo', {});
  assert.equal(node1.node_id, sim.instances[0].id);
  assert.equal(node2.node_id, sim.instances[1].id);

  // Create and publish on node 1.
  const created = await call(c, 'CreateVolume', { name: 'pvc-e2e-1', capacity_range: { required_bytes: GiB }, volume_capabilities: [mountCap] });
  const volumeId: string = created.volume.volume_id;
  assert.equal(created.volume.capacity_bytes, GiB);
  const pub1 = await call(c, 'ControllerPublishVolume', { volume_id: volumeId, node_id: node1.node_id, volume_capability: mountCap });
  const staging1 = path.join(work, 'n1', 'staging');
  await mkdir(staging1, { recursive: true }); // the CO creates the staging directory
  const target1 = path.join(work, 'n1', 'target');
  await call(first.node, 'NodeStageVolume', { volume_id: volumeId, publish_context: pub1.publish_context, staging_target_path: staging1, volume_capability: mountCap, volume_context: created.volume.volume_context });
  await call(first.node, 'NodePublishVolume', { volume_id: volumeId, publish_context: pub1.publish_context, staging_target_path: staging1, target_path: target1, volume_capability: mountCap });
  await writeFile(path.join(target1, 'data.txt'), 'written on node 1\n');

  // Take it down in reverse order.
  await call(first.node, 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target1 });
  await call(first.node, 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging1 });
  await call(c, 'ControllerUnpublishVolume', { volume_id: volumeId, node_id: node1.node_id });

  // Publish on node 2 and read the file back.
  const pub2 = await call(c, 'ControllerPublishVolume', { volume_id: volumeId, node_id: node2.node_id, volume_capability: mountCap });
  const staging2 = path.join(work, 'n2', 'staging');
  await mkdir(staging2, { recursive: true }); // the CO creates the staging directory
  const target2 = path.join(work, 'n2', 'target');
  await call(second.node, 'NodeStageVolume', { volume_id: volumeId, publish_context: pub2.publish_context, staging_target_path: staging2, volume_capability: mountCap, volume_context: created.volume.volume_context });
  await call(second.node, 'NodePublishVolume', { volume_id: volumeId, publish_context: pub2.publish_context, staging_target_path: staging2, target_path: target2, volume_capability: mountCap });
  assert.equal(await readFile(path.join(target2, 'data.txt'), 'utf8'), 'written on node 1\n');

  // Grow it while mounted: the controller extends, the node grows the filesystem.
  const before = statfsSync(target2);
  const expanded = await call(c, 'ControllerExpandVolume', { volume_id: volumeId, capacity_range: { required_bytes: 2 * GiB }, volume_capability: mountCap });
  assert.equal(expanded.capacity_bytes, 2 * GiB);
  assert.equal(expanded.node_expansion_required, true);
  const grown = await call(second.node, 'NodeExpandVolume', { volume_id: volumeId, volume_path: target2, staging_target_path: staging2, capacity_range: { required_bytes: 2 * GiB }, volume_capability: mountCap });
  assert.ok(grown.capacity_bytes >= 2 * GiB, `NodeExpandVolume reported ${grown.capacity_bytes}`);
  const after = statfsSync(target2);
  assert.ok(after.blocks * after.bsize > before.blocks * before.bsize * 1.5, 'the filesystem grew');

  // Snapshot, then restore into a new volume and read the file there.
  await call(second.node, 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target2 });
  await call(second.node, 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging2 });
  // Still attached to node 2, as in a cluster: the VolumeSnapshotClass says force-create.
  const snap = await call(c, 'CreateSnapshot', { source_volume_id: volumeId, name: 'snap-e2e-1', parameters: { 'force-create': 'true' } });
  const snapshotId: string = snap.snapshot.snapshot_id;
  for (let i = 0; ; i++) {
    const r = await call(c, 'ListSnapshots', { snapshot_id: snapshotId });
    if (r.entries[0]?.snapshot?.ready_to_use) break;
    assert.ok(i < 200, 'snapshot became ready');
    await new Promise((res) => setTimeout(res, 50));
  }
  const restored = await call(c, 'CreateVolume', {
    name: 'pvc-e2e-restored',
    capacity_range: { required_bytes: 2 * GiB },
    volume_capabilities: [mountCap],
    volume_content_source: { snapshot: { snapshot_id: snapshotId } },
  });
  const restoredId: string = restored.volume.volume_id;
  const pub3 = await call(c, 'ControllerPublishVolume', { volume_id: restoredId, node_id: node2.node_id, volume_capability: mountCap });
  const staging3 = path.join(work, 'n2', 'staging-restored');
  await mkdir(staging3, { recursive: true }); // the CO creates the staging directory
  const target3 = path.join(work, 'n2', 'target-restored');
  await call(second.node, 'NodeStageVolume', { volume_id: restoredId, publish_context: pub3.publish_context, staging_target_path: staging3, volume_capability: mountCap, volume_context: restored.volume.volume_context });
  await call(second.node, 'NodePublishVolume', { volume_id: restoredId, publish_context: pub3.publish_context, staging_target_path: staging3, target_path: target3, volume_capability: mountCap });
  assert.equal(await readFile(path.join(target3, 'data.txt'), 'utf8'), 'written on node 1\n');
  await call(second.node, 'NodeUnpublishVolume', { volume_id: restoredId, target_path: target3 });
  await call(second.node, 'NodeUnstageVolume', { volume_id: restoredId, staging_target_path: staging3 });

  // Delete everything.
  await call(c, 'ControllerUnpublishVolume', { volume_id: restoredId, node_id: node2.node_id });
  await call(c, 'ControllerUnpublishVolume', { volume_id: volumeId, node_id: node2.node_id });
  await call(c, 'DeleteVolume', { volume_id: restoredId });
  await call(c, 'DeleteSnapshot', { snapshot_id: snapshotId });
  await call(c, 'DeleteVolume', { volume_id: volumeId });

  // Nothing is left behind: no volume, no snapshot, no attachment, no loop device, no mount.
  const volumes = await call(c, 'ListVolumes', {});
  assert.deepEqual(volumes.entries, []);
  const snapshots = await call(c, 'ListSnapshots', {});
  assert.deepEqual(snapshots.entries, []);
  assert.deepEqual(await mountsUnder(work), []);
  assert.deepEqual(await loopDevicesBackedBy(simDir), []);
  for (const inst of sim.instances) {
    const links = await readdir(path.join(inst.deviceRoot, 'disk', 'by-id')).catch(() => []);
    assert.deepEqual(links, [], `no device links left on ${inst.name}`);
  }
});
