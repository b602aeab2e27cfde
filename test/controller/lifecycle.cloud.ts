// The controller's lifecycle against a real OpenStack (npm run test:cloud):
// create, publish to the testbed's server, expand while attached, unpublish,
// snapshot, restore, delete, all over real gRPC through the driver as
// `cinder-csi serve --mode controller` runs it. Skips with the reason when
// no cloud is configured (source /tmp/ostack/openrc for the testbed).
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createLogger, silentLogger } from '../../src/log';
import { fromDocument } from '../../src/config/config';
import { startDriver, type RunningDriver } from '../../src/driver';
import { createCloud } from '../../src/openstack/cloud';
import { isNotFound } from '../../src/openstack/errors';
import type { Cloud } from '../../src/openstack/types';
import { GiB } from '../../src/csi/constants';
import { CLUSTER_METADATA_KEY } from '../../src/controller/params';
import { keeper } from '../../src/controller/same-name';
import { call, connect, expectCode, type CsiClients } from '../helpers/grpc';
import { adminSkipReason, adminVolumeApi, cloudConfigFromEnv, cloudSkipReason } from '../openstack/cloud-env';

const skip = cloudSkipReason();
const MOUNT_RWO = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
/** Real Cinder and Nova take seconds, not milliseconds. */
const DEADLINE_MS = 180_000;

describe('controller lifecycle on a real cloud', { skip }, () => {
  const run = randomUUID().slice(0, 8);
  const serverId = process.env.TESTBED_SERVER_ID ?? '';
  let dir: string;
  let driver: RunningDriver;
  let clients: CsiClients;
  let cloud: Cloud;
  const volumes: string[] = [];
  const snapshots: string[] = [];

  const rpc = <T = any>(method: string, req: unknown) => call<T>(clients.controller, method, req, { deadlineMs: DEADLINE_MS });

  before(async () => {
    const cloudConfig = cloudConfigFromEnv()!;
    dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-cloud-'));
    const config = fromDocument({}, 'cloud test', {});
    config.clouds = [cloudConfig];
    config.clusterId = `cloud-test-${run}`;
    driver = await startDriver({
      mode: 'controller',
      endpoint: { kind: 'unix', path: path.join(dir, 'csi.sock') },
      config,
      logger: createLogger({ level: process.env.CINDER_CSI_TEST_LOG === 'debug' ? 'debug' : 'silent' }),
    });
    clients = connect(`unix://${path.join(dir, 'csi.sock')}`);
    cloud = createCloud(cloudConfig, silentLogger);
  });

  after(async () => {
    // Whatever the tests left (on failure), removed directly through Cinder and Nova.
    for (const id of volumes) await cloud.compute.detachVolume(serverId, id).catch(() => undefined);
    for (const id of volumes) {
      await cloud.waiter.volume(id, { target: ['available', 'error'], transient: ['in-use', 'detaching', 'attaching', 'reserved', 'extending'] }, { signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
    }
    for (const id of snapshots) {
      await cloud.blockStorage.deleteSnapshot(id).catch(() => undefined);
      await cloud.waiter.snapshot(id, { target: [], transient: ['deleting', 'available', 'error', 'creating'], goneIsTarget: true }, { signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
    }
    for (const id of volumes) await cloud.blockStorage.deleteVolume(id).catch(() => undefined);
    clients?.close();
    await driver?.stop(5_000);
    await cloud?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // A type whose extra spec names a backend that does not exist: Cinder's scheduler finds no
  // backend (NoValidBackend), the volume goes to 'error', and a user message says why. Making the
  // type needs an admin (TESTBED_ADMIN_* from the testbed's openrc).
  it('a volume no backend can take fails RESOURCE_EXHAUSTED with the scheduler\'s own message', { skip: adminSkipReason() }, async () => {
    const admin = await adminVolumeApi();
    const adminCall = admin.call;
    const typeName = `cinder-csi-nowhere-${run}`;
    const made = await adminCall('POST', '/types', {
      volume_type: { name: typeName, description: 'no backend has it', 'os-volume-type-access:is_public': true, extra_specs: { volume_backend_name: 'no-such-backend' } },
    });
    try {
      const name = `cinder-csi-cloud-nowhere-${run}`;
      const err = await expectCode(
        rpc('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB }, parameters: { type: typeName } }),
        grpc.status.RESOURCE_EXHAUSTED,
      );
      assert.match(err.details, /Could not find any available weighted backend/);
      // The failed volume was deleted; wait until it is gone so that the type can go too.
      const left = await cloud.blockStorage.listVolumes({ name });
      for (const v of left.items) {
        volumes.push(v.id);
        await cloud.waiter.volume(v.id, { target: [], transient: ['deleting', 'error'], goneIsTarget: true }, { signal: AbortSignal.timeout(60_000) });
      }
    } finally {
      await adminCall('DELETE', `/types/${made.volume_type.id}`).catch(() => undefined);
      await admin.close();
    }
  });

  it('two volumes of one name (a create that outlived its controller): CreateVolume answers the one the driver\'s rule keeps, the other gone before the answer', async () => {
    const name = `cinder-csi-twins-${run}`;
    const mark = { [CLUSTER_METADATA_KEY]: `cloud-test-${run}` };
    for (let i = 0; i < 2; i++) volumes.push((await cloud.blockStorage.createVolume({ name, size: 1, metadata: mark })).id);
    // Both made first: a leftover still being made would go only at the later look, two minutes on.
    for (const id of volumes.slice(-2)) await cloud.waiter.volume(id, { target: ['available'], transient: ['creating'] }, { signal: AbortSignal.timeout(60_000) });
    // Real Cinder's created_at has whole seconds only (a tie is likely): the driver's own rule decides.
    const twins = (await cloud.blockStorage.listVolumes({ name })).items.filter((v) => v.name === name);
    assert.equal(twins.length, 2);
    const kept = keeper(twins);
    const other = twins.find((v) => v.id !== kept.id)!;
    const res = await rpc('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } });
    assert.equal(res.volume.volume_id, kept.id);
    // Gone from Cinder before the answer (not merely asked to be deleted).
    const gone = await cloud.blockStorage.getVolume(other.id).then(
      () => false,
      (e: unknown) => isNotFound(e),
    );
    assert.ok(gone, `the other volume ${other.id} is deleted`);
    await rpc('DeleteVolume', { volume_id: kept.id });
  });

  it('creates, publishes, expands while attached, unpublishes, snapshots, restores and deletes', async () => {
    // Create, and create again: the same volume.
    const createReq = { name: `cinder-csi-cloud-${run}`, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } };
    const created = await rpc('CreateVolume', createReq);
    const volumeId: string = created.volume.volume_id;
    volumes.push(volumeId);
    assert.equal((await cloud.blockStorage.getVolume(volumeId)).status, 'available');
    assert.equal((await rpc('CreateVolume', createReq)).volume.volume_id, volumeId);

    // It is listed (the listing pages through every volume of the project), and capacity is left.
    const listed: string[] = [];
    let token = '';
    do {
      const page = await rpc('ListVolumes', { max_entries: 50, starting_token: token });
      listed.push(...page.entries.map((e: any) => e.volume.volume_id));
      token = page.next_token;
    } while (token);
    assert.ok(listed.includes(volumeId));
    const capacity = await rpc('GetCapacity', { volume_capabilities: [MOUNT_RWO] });
    assert.ok(Number(capacity.available_capacity) >= GiB, `capacity left: ${capacity.available_capacity}`);

    // A server Nova does not know: NOT_FOUND (Nova's own 404 on the attach), and nothing is left attached.
    const noSuchServer = '00000000-0000-4000-8000-00000000beef';
    const unknown = await expectCode(rpc('ControllerPublishVolume', { volume_id: volumeId, node_id: noSuchServer, volume_capability: MOUNT_RWO }), grpc.status.NOT_FOUND);
    assert.match(unknown.details, /Nova server/);
    assert.equal((await cloud.blockStorage.getVolume(volumeId)).status, 'available');

    // Publish to the testbed's server: in-use, attached there, with a device hint.
    const published = await rpc('ControllerPublishVolume', { volume_id: volumeId, node_id: serverId, volume_capability: MOUNT_RWO });
    assert.match(published.publish_context.DevicePath ?? '', /^\/dev\//);
    let v = await cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.status, 'in-use');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [serverId]);
    const got = await rpc('ControllerGetVolume', { volume_id: volumeId });
    assert.deepEqual(got.status.published_node_ids, [serverId]);

    // Attached: Cinder's refusal of the delete is FAILED_PRECONDITION naming the server; unpublishing
    // from a server it is not attached to changes nothing.
    const refused = await expectCode(rpc('DeleteVolume', { volume_id: volumeId }), grpc.status.FAILED_PRECONDITION);
    assert.match(refused.details, new RegExp(serverId));
    await rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: noSuchServer });
    assert.equal((await cloud.blockStorage.getVolume(volumeId)).status, 'in-use');

    // Expand while attached (Cinder 3.42), or be told to detach first.
    const features = await cloud.blockStorage.features();
    const expandReq = { volume_id: volumeId, capacity_range: { required_bytes: 2 * GiB }, volume_capability: MOUNT_RWO };
    if (features.inUseExtend) {
      const expanded = await rpc('ControllerExpandVolume', expandReq);
      assert.equal(Number(expanded.capacity_bytes), 2 * GiB);
      assert.equal(expanded.node_expansion_required, true);
      assert.equal((await cloud.blockStorage.getVolume(volumeId)).size, 2);
    } else {
      await expectCode(rpc('ControllerExpandVolume', expandReq), grpc.status.FAILED_PRECONDITION);
    }

    // Unpublish: gone from Cinder and Nova when the call returns.
    await rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: serverId });
    v = await cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.status, 'available');
    assert.deepEqual(v.attachments, []);
    await assert.rejects(cloud.compute.getVolumeAttachment(serverId, volumeId), (e) => isNotFound(e));
    await rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: serverId });
    if (!features.inUseExtend) {
      assert.equal(Number((await rpc('ControllerExpandVolume', expandReq)).capacity_bytes), 2 * GiB);
    }

    // Snapshot: CreateSnapshot answers at once; called again until ready, as the snapshotter does.
    const snapReq = { name: `cinder-csi-cloud-snap-${run}`, source_volume_id: volumeId };
    let snap = (await rpc('CreateSnapshot', snapReq)).snapshot;
    snapshots.push(snap.snapshot_id);
    for (let i = 0; i < 120 && !snap.ready_to_use; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      snap = (await rpc('CreateSnapshot', snapReq)).snapshot;
    }
    assert.equal(snap.ready_to_use, true);
    assert.equal(snap.source_volume_id, volumeId);
    const snapsOfVolume = await rpc('ListSnapshots', { source_volume_id: volumeId });
    assert.deepEqual(snapsOfVolume.entries.map((e: any) => e.snapshot.snapshot_id), [snap.snapshot_id]);

    // Restore into a larger volume: the node is told to grow the filesystem.
    const restored = await rpc('CreateVolume', {
      name: `cinder-csi-cloud-restore-${run}`,
      volume_capabilities: [MOUNT_RWO],
      capacity_range: { required_bytes: 3 * GiB },
      volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } },
    });
    const restoredId: string = restored.volume.volume_id;
    volumes.push(restoredId);
    assert.equal(restored.volume.volume_context.resizeRequired, 'true');
    const r = await cloud.blockStorage.getVolume(restoredId);
    assert.equal(r.status, 'available');
    assert.equal(r.snapshotId, snap.snapshot_id);

    // Delete everything through the driver; each delete returns once Cinder is done.
    await rpc('DeleteVolume', { volume_id: restoredId });
    await rpc('DeleteSnapshot', { snapshot_id: snap.snapshot_id });
    await rpc('DeleteVolume', { volume_id: volumeId });
    for (const id of [restoredId, volumeId]) await assert.rejects(cloud.blockStorage.getVolume(id), (e) => isNotFound(e));
    await assert.rejects(cloud.blockStorage.getSnapshot(snap.snapshot_id), (e) => isNotFound(e));
    // And again: deleting what is gone succeeds.
    await rpc('DeleteVolume', { volume_id: volumeId });
    await rpc('DeleteSnapshot', { snapshot_id: snap.snapshot_id });
  });

  it('publishes read-only with Cinder\'s readonly flag; the other readonly on the same node is ALREADY_EXISTS; read-write again clears the flag', async () => {
    const created = await rpc('CreateVolume', { name: `cinder-csi-cloud-ro-${run}`, volume_capabilities: [MOUNT_RWO], capacity_range: { required_bytes: GiB } });
    const volumeId: string = created.volume.volume_id;
    volumes.push(volumeId);
    const publishReq = { volume_id: volumeId, node_id: serverId, volume_capability: MOUNT_RWO, readonly: true };

    const published = await rpc('ControllerPublishVolume', publishReq);
    assert.equal(published.publish_context.readonly, 'true');
    let v = await cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.status, 'in-use');
    assert.equal(v.metadata.readonly, 'True');
    assert.deepEqual(v.attachments.map((a) => a.serverId), [serverId]);
    assert.deepEqual((await rpc('ControllerPublishVolume', publishReq)).publish_context, published.publish_context);

    const incompatible = await expectCode(rpc('ControllerPublishVolume', { ...publishReq, readonly: false }), grpc.status.ALREADY_EXISTS);
    assert.match(incompatible.details, /already published .* read-only/);
    v = await cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.metadata.readonly, 'True');
    assert.equal(v.status, 'in-use');

    await rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: serverId });
    const rw = await rpc('ControllerPublishVolume', { ...publishReq, readonly: false });
    assert.equal(rw.publish_context.readonly, undefined);
    v = await cloud.blockStorage.getVolume(volumeId);
    assert.equal(v.metadata.readonly, 'False');
    assert.equal(v.status, 'in-use');
    await rpc('ControllerUnpublishVolume', { volume_id: volumeId, node_id: serverId });
    await rpc('DeleteVolume', { volume_id: volumeId });
    await assert.rejects(cloud.blockStorage.getVolume(volumeId), (e) => isNotFound(e));
  });
});
