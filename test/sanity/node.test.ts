// csi-sanity's "Node Service" cases, against real loop devices and mounts.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import {
  Code,
  EXPAND_SIZE,
  IDEMPOTENT_COUNT,
  NEEDS_ROOT,
  VOLUME_SIZE,
  expectError,
  fakeIds,
  isRoot,
  mountCapability,
  startSuite,
  uniqueName,
  withTest,
  type Resources,
  type Suite,
} from './harness';

const KNOWN_NODE_CAPS = new Set([
  'UNKNOWN',
  'STAGE_UNSTAGE_VOLUME',
  'GET_VOLUME_STATS',
  'EXPAND_VOLUME',
  'VOLUME_CONDITION',
  'SINGLE_NODE_MULTI_WRITER',
  'VOLUME_MOUNT_GROUP',
]);

/** What csi-sanity puts in publish_context when it stages without publishing. */
const MOCK_PUBLISH_CONTEXT = { device: '/dev/mock' };

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('Node Service', { skip: isRoot ? false : NEEDS_ROOT }, () => {
  let suite: Suite;
  before(async () => {
    suite = await startSuite();
  });
  after(() => suite?.stop());

  const controllerPublishSupported = () => suite.pluginServices.has('CONTROLLER_SERVICE') && suite.controllerCaps.has('PUBLISH_UNPUBLISH_VOLUME');
  const stageSupported = () => suite.nodeCaps.has('STAGE_UNSTAGE_VOLUME');
  const sanityCase = (body: (r: Resources) => Promise<void>, needs?: string) => (t: TestContext) => {
    if (needs && !suite.nodeCaps.has(needs)) return t.skip(`${needs} not supported`);
    return withTest(suite, body);
  };

  // csi-sanity's helpers for the node cases.
  const createVolume = (r: Resources, name: string) =>
    r.mustCreateVolume({ name, volume_capabilities: [mountCapability()], capacity_range: { required_bytes: VOLUME_SIZE }, parameters: {} });
  const nodeInfo = async (r: Resources) => {
    const info = await r.node('NodeGetInfo', {});
    assert.ok(info.node_id, 'NodeGetInfo names the node');
    return info;
  };
  const controllerPublish = async (r: Resources, vol: any, nodeId: string) => {
    if (!controllerPublishSupported()) return undefined;
    const res = await r.controllerPublish({
      volume_id: vol.volume.volume_id,
      node_id: nodeId,
      volume_capability: mountCapability(),
      volume_context: vol.volume.volume_context,
      readonly: false,
    });
    assert.ok(res);
    return res;
  };
  const nodeStage = async (r: Resources, vol: any, pub: any) => {
    if (!stageSupported()) return;
    const req: Record<string, unknown> = {
      volume_id: vol.volume.volume_id,
      volume_capability: mountCapability(),
      staging_target_path: r.paths.staging,
      volume_context: vol.volume.volume_context,
    };
    if (pub) req.publish_context = pub.publish_context;
    assert.ok(await r.node('NodeStageVolume', req));
  };
  const nodePublish = async (r: Resources, vol: any, pub: any) => {
    const req: Record<string, unknown> = {
      volume_id: vol.volume.volume_id,
      target_path: r.paths.target,
      staging_target_path: stageSupported() ? r.paths.staging : '',
      volume_capability: mountCapability(),
      volume_context: vol.volume.volume_context,
    };
    if (pub) req.publish_context = pub.publish_context;
    assert.ok(await r.node('NodePublishVolume', req));
  };
  const stageAndPublish = async (r: Resources, vol: any) => {
    const info = await nodeInfo(r);
    const pub = await controllerPublish(r, vol, info.node_id);
    await nodeStage(r, vol, pub);
    await nodePublish(r, vol, pub);
  };

  describe('NodeGetCapabilities', () => {
    it('returns only capabilities csi-sanity knows', sanityCase(async (r) => {
      const res = await r.node('NodeGetCapabilities', {});
      for (const cap of res.capabilities ?? []) {
        assert.ok(cap.rpc, 'each capability is an rpc capability');
        assert.ok(KNOWN_NODE_CAPS.has(cap.rpc.type), `unknown capability: ${cap.rpc.type}`);
      }
    }));
  });

  describe('NodeGetInfo', () => {
    it('returns a node id, a non-negative volume limit and, with accessibility constraints, a topology', sanityCase(async (r) => {
      const info = await r.node('NodeGetInfo', {});
      assert.ok(info.node_id);
      assert.ok(Number(info.max_volumes_per_node) >= 0);
      if (suite.pluginServices.has('VOLUME_ACCESSIBILITY_CONSTRAINTS')) assert.ok(info.accessible_topology, 'accessible_topology is set');
    }));
  });

  describe('NodePublishVolume', () => {
    it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
      await expectError(r.node('NodePublishVolume', {}), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no target path is provided', sanityCase(async (r) => {
      await expectError(r.node('NodePublishVolume', { volume_id: fakeIds.volume() }), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no volume capability is provided', sanityCase(async (r) => {
      await expectError(r.node('NodePublishVolume', { volume_id: fakeIds.volume(), target_path: r.paths.target }), Code.INVALID_ARGUMENT);
    }));
  });

  describe('NodeUnpublishVolume', () => {
    it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
      await expectError(r.node('NodeUnpublishVolume', {}), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no target path is provided', sanityCase(async (r) => {
      await expectError(r.node('NodeUnpublishVolume', { volume_id: fakeIds.volume() }), Code.INVALID_ARGUMENT);
    }));

    it('removes the target path', sanityCase(async (r) => {
      const vol = await createVolume(r, uniqueName('sanity-node-unpublish-volume'));
      await stageAndPublish(r, vol);
      assert.ok(await exists(r.paths.target), 'the driver created the target path');
      await r.node('NodeUnpublishVolume', { volume_id: vol.volume.volume_id, target_path: r.paths.target });
      assert.equal(await exists(r.paths.target), false, 'NodeUnpublishVolume removed the target path');
    }));
  });

  describe('NodeStageVolume', () => {
    const stageCase = (body: (r: Resources) => Promise<void>) => sanityCase(body, 'STAGE_UNSTAGE_VOLUME');

    it('fails with INVALID_ARGUMENT when no volume id is provided', stageCase(async (r) => {
      await expectError(
        r.node('NodeStageVolume', { staging_target_path: r.paths.staging, volume_capability: mountCapability(), publish_context: MOCK_PUBLISH_CONTEXT }),
        Code.INVALID_ARGUMENT,
      );
    }));

    it('fails with INVALID_ARGUMENT when no staging target path is provided', stageCase(async (r) => {
      await expectError(
        r.node('NodeStageVolume', { volume_id: fakeIds.volume(), volume_capability: mountCapability(), publish_context: MOCK_PUBLISH_CONTEXT }),
        Code.INVALID_ARGUMENT,
      );
    }));

    it('fails with INVALID_ARGUMENT when no volume capability is provided', stageCase(async (r) => {
      const vol = await r.mustCreateVolume({ name: uniqueName('sanity-node-stage-nocaps'), volume_capabilities: [mountCapability()], parameters: {} });
      await expectError(
        r.node('NodeStageVolume', { volume_id: vol.volume.volume_id, staging_target_path: r.paths.staging, publish_context: MOCK_PUBLISH_CONTEXT }),
        Code.INVALID_ARGUMENT,
      );
    }));
  });

  describe('NodeUnstageVolume', () => {
    const stageCase = (body: (r: Resources) => Promise<void>) => sanityCase(body, 'STAGE_UNSTAGE_VOLUME');

    it('fails with INVALID_ARGUMENT when no volume id is provided', stageCase(async (r) => {
      await expectError(r.node('NodeUnstageVolume', { staging_target_path: r.paths.staging }), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no staging target path is provided', stageCase(async (r) => {
      await expectError(r.node('NodeUnstageVolume', { volume_id: fakeIds.volume() }), Code.INVALID_ARGUMENT);
    }));
  });

  describe('NodeGetVolumeStats', () => {
    const statsCase = (body: (r: Resources) => Promise<void>) => sanityCase(body, 'GET_VOLUME_STATS');

    it('fails with INVALID_ARGUMENT when no volume id is provided', statsCase(async (r) => {
      await expectError(r.node('NodeGetVolumeStats', { volume_path: 'some/path' }), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no volume path is provided', statsCase(async (r) => {
      await expectError(r.node('NodeGetVolumeStats', { volume_id: fakeIds.volume() }), Code.INVALID_ARGUMENT);
    }));

    it(
      'fails with NOT_FOUND when the volume is not found',
      statsCase(async (r) => {
      await expectError(r.node('NodeGetVolumeStats', { volume_id: fakeIds.volume(), volume_path: 'some/path' }), Code.NOT_FOUND);
    }),
    );

    it(
      'fails with NOT_FOUND when the volume is not at the given path',
      statsCase(async (r) => {
      const vol = await createVolume(r, uniqueName('sanity-node-get-volume-stats'));
      await stageAndPublish(r, vol);
      await expectError(r.node('NodeGetVolumeStats', { volume_id: vol.volume.volume_id, volume_path: 'some/path' }), Code.NOT_FOUND);
    }),
    );
  });

  describe('NodeExpandVolume', () => {
    const expandCase = (body: (r: Resources) => Promise<void>) => sanityCase(body, 'EXPAND_VOLUME');

    it('fails with INVALID_ARGUMENT when no volume id is provided', expandCase(async (r) => {
      await expectError(r.node('NodeExpandVolume', { volume_path: r.paths.targetParent, volume_capability: mountCapability() }), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no volume path is provided', expandCase(async (r) => {
      const vol = await createVolume(r, uniqueName('sanity-node-expand-volume-valid-id'));
      await expectError(r.node('NodeExpandVolume', { volume_id: vol.volume.volume_id, volume_capability: mountCapability() }), Code.INVALID_ARGUMENT);
    }));

    it(
      'fails with NOT_FOUND when the volume is not found',
      expandCase(async (r) => {
      await expectError(r.node('NodeExpandVolume', { volume_id: fakeIds.volume(), volume_path: 'some/path' }), Code.NOT_FOUND);
    }),
    );

    it('works when called after NodePublishVolume', expandCase(async (r) => {
      const vol = await createVolume(r, uniqueName('sanity-node-expand-volume'));
      if (suite.controllerCaps.has('EXPAND_VOLUME')) {
        const res = await r.controller('ControllerExpandVolume', { volume_id: vol.volume.volume_id, capacity_range: { required_bytes: EXPAND_SIZE } });
        assert.equal(res.capacity_bytes, EXPAND_SIZE);
      }
      await stageAndPublish(r, vol);
      // As csi-sanity sends it: no staging path and no capability.
      await r.node('NodeExpandVolume', { volume_id: vol.volume.volume_id, volume_path: r.paths.target, capacity_range: { required_bytes: EXPAND_SIZE } });
    }));
  });

  // csi-sanity's runControllerTest: create with the node's topology, publish,
  // stage and publish `count` times each, read the stats; cleanup takes it all down.
  const fullCycle = async (r: Resources, count: number) => {
    const info = await nodeInfo(r);
    const accessibility = info.accessible_topology ? { requisite: [info.accessible_topology] } : undefined;
    const vol = await r.mustCreateVolume({
      name: uniqueName(`sanity-node-full-${count}`),
      volume_capabilities: [mountCapability()],
      capacity_range: { required_bytes: VOLUME_SIZE },
      parameters: {},
      accessibility_requirements: accessibility,
    });
    const pub = await controllerPublish(r, vol, info.node_id);
    if (stageSupported()) {
      for (let i = 0; i < count; i++) {
        assert.ok(
          await r.node('NodeStageVolume', {
            volume_id: vol.volume.volume_id,
            volume_capability: mountCapability(),
            staging_target_path: r.paths.staging,
            volume_context: vol.volume.volume_context,
            publish_context: pub?.publish_context,
          }),
        );
      }
    }
    for (let i = 0; i < count; i++) {
      assert.ok(
        await r.node('NodePublishVolume', {
          volume_id: vol.volume.volume_id,
          target_path: r.paths.target,
          staging_target_path: stageSupported() ? r.paths.staging : '',
          volume_capability: mountCapability(),
          volume_context: vol.volume.volume_context,
          publish_context: pub?.publish_context,
        }),
      );
    }
    if (suite.nodeCaps.has('GET_VOLUME_STATS')) {
      const stats = await r.node('NodeGetVolumeStats', { volume_id: vol.volume.volume_id, volume_path: r.paths.target });
      assert.ok(stats.usage, 'NodeGetVolumeStats reports usage');
    }
  };

  it('works: the full cycle', sanityCase((r) => fullCycle(r, 1)));
  it('is idempotent: every step repeated', sanityCase((r) => fullCycle(r, IDEMPOTENT_COUNT)));
});
