import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
import type { Cloud } from '../../src/openstack/types';
import { startSimulator, type Simulator } from '../../src/sim';
import { createCloudSet, csiId, locate } from '../../src/controller/clouds';
import { Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

describe('cloud IDs', () => {
  const fake = (name: string) => ({ name }) as Cloud;
  const clouds = createCloudSet([fake('main'), fake('west'), fake('east')]);

  it('walks the default cloud first, then the others by name', () => {
    assert.deepEqual(clouds.names, ['main', 'east', 'west']);
  });

  it('keeps default-cloud IDs bare UUIDs and prefixes the others', () => {
    const uuid = '3f1c1f8e-8d0a-4c55-9a43-9b8d7d1e2f00';
    assert.equal(csiId(clouds, 'main', uuid), uuid);
    assert.equal(csiId(clouds, 'east', uuid), `east:${uuid}`);
    assert.deepEqual(locate(clouds, `east:${uuid}`), { cloud: clouds.get('east'), id: uuid });
    assert.deepEqual(locate(clouds, uuid), { cloud: clouds.get('main'), id: uuid });
    // A bare ID (as the Go plugin made them) is looked up in the secret's cloud.
    assert.deepEqual(locate(clouds, uuid, { cloud: 'west' }), { cloud: clouds.get('west'), id: uuid });
  });

  it('refuses unknown clouds and malformed IDs with INVALID_ARGUMENT, naming the configured ones', () => {
    assert.throws(() => locate(clouds, 'north:abc'), (e: any) => e.code === Code.INVALID_ARGUMENT && /'main', 'east', 'west'/.test(e.message));
    assert.throws(() => locate(clouds, 'abc', { cloud: 'north' }), (e: any) => e.code === Code.INVALID_ARGUMENT);
    assert.throws(() => locate(clouds, ':abc'), (e: any) => e.code === Code.INVALID_ARGUMENT);
    assert.throws(() => locate(clouds, 'east:'), (e: any) => e.code === Code.INVALID_ARGUMENT);
  });

  it('refuses an empty or inconsistent set of clouds', () => {
    assert.throws(() => createCloudSet([]), /at least one/);
    assert.throws(() => createCloudSet([fake('a'), fake('a')]), /twice/);
    assert.throws(() => createCloudSet([fake('a')], 'b'), /default cloud 'b'/);
  });
});

describe('several clouds over gRPC', () => {
  let east: Simulator;
  let eastCloud: Cloud;
  let h: ControllerHarness;
  before(async () => {
    east = await startSimulator({ hypervisor: false, instances: [{ name: 'east-node' }] });
    eastCloud = createCloud(east.cloudConfig({ name: 'east' }), silentLogger);
    h = await startController({ configure: (c) => c.clouds.push(east.cloudConfig({ name: 'east' })) });
  });
  after(async () => {
    await h.stop();
    await eastCloud.close();
    await east.stop();
  });

  it('creates in the cloud the secret names, with an ID that says so, and works on it by that ID', async () => {
    const res = await h.rpc('CreateVolume', { name: 'pvc-east', volume_capabilities: [MOUNT_RWO], secrets: { cloud: 'east' } });
    const id: string = res.volume.volume_id;
    assert.match(id, /^east:[0-9a-f-]{36}$/);
    const uuid = id.slice('east:'.length);
    assert.equal((await eastCloud.blockStorage.getVolume(uuid)).name, 'pvc-east');
    assert.deepEqual(await h.volumesNamed('pvc-east'), [], 'nothing in the default cloud');

    const node = east.instances[0].id;
    await h.rpc('ControllerPublishVolume', { volume_id: id, node_id: node, volume_capability: MOUNT_RWO });
    assert.equal((await eastCloud.blockStorage.getVolume(uuid)).status, 'in-use');
    const got = await h.rpc('ControllerGetVolume', { volume_id: id });
    assert.deepEqual(got.status.published_node_ids, [node]);
    await h.rpc('ControllerUnpublishVolume', { volume_id: id, node_id: node });

    const snap = await h.rpc('CreateSnapshot', { name: 'snap-east', source_volume_id: id });
    assert.match(snap.snapshot.snapshot_id, /^east:/);
    assert.equal(snap.snapshot.source_volume_id, id);
    await h.rpc('DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await h.rpc('DeleteVolume', { volume_id: id });
    assert.deepEqual((await eastCloud.blockStorage.listVolumes({ name: 'pvc-east' })).items, []);
  });

  it('finds a bare (Go plugin) ID of another cloud through the secret, and through every cloud in ControllerGetVolume', async () => {
    const made = await eastCloud.blockStorage.createVolume({ name: 'pvc-go-plugin', size: 1 });
    await eastCloud.waiter.volume(made.id, { target: ['available'], transient: ['creating'] });
    const got = await h.rpc('ControllerGetVolume', { volume_id: made.id });
    assert.equal(got.volume.volume_id, made.id);
    await expectCode(h.rpc('ValidateVolumeCapabilities', { volume_id: made.id, volume_capabilities: [MOUNT_RWO] }), Code.NOT_FOUND);
    const ok = await h.rpc('ValidateVolumeCapabilities', { volume_id: made.id, volume_capabilities: [MOUNT_RWO], secrets: { cloud: 'east' } });
    assert.ok(ok.confirmed);
    await h.rpc('DeleteVolume', { volume_id: made.id, secrets: { cloud: 'east' } });
    await expectCode(h.rpc('ControllerGetVolume', { volume_id: made.id }), Code.NOT_FOUND);
  });

  it('lists the volumes of every cloud, with a token that crosses from one cloud to the next', async () => {
    const mainIds = [await h.createVolume('pvc-main-1'), await h.createVolume('pvc-main-2')];
    const eastIds: string[] = [];
    for (const name of ['pvc-east-1', 'pvc-east-2', 'pvc-east-3']) {
      eastIds.push((await h.rpc('CreateVolume', { name, volume_capabilities: [MOUNT_RWO], secrets: { cloud: 'east' } })).volume.volume_id);
    }
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await h.rpc('ListVolumes', { max_entries: 2, starting_token: token });
      seen.push(...page.entries.map((e: any) => e.volume.volume_id));
      token = page.next_token;
      pages++;
    } while (token && pages < 20);
    assert.deepEqual([...seen].sort(), [...mainIds, ...eastIds].sort());
    assert.equal(pages, 3);
    // The default cloud comes first.
    assert.deepEqual(seen.slice(0, 2).sort(), [...mainIds].sort());
  });

  it('refuses a secret naming a cloud that is not configured', async () => {
    const err = await expectCode(h.rpc('CreateVolume', { name: 'pvc-nowhere', volume_capabilities: [MOUNT_RWO], secrets: { cloud: 'mars' } }), Code.INVALID_ARGUMENT);
    assert.match(err.details, /'mars'/);
    assert.match(err.details, /'sim', 'east'/);
  });
});
