// csi-sanity's "Controller Service", "ExpandVolume" and "ModifyVolume" cases,
// with the requests csi-sanity sends and the codes it expects, for any target:
// the simulator (controller.test.ts) or a real cloud (controller.cloud.ts).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  Code,
  EXPAND_SIZE,
  IDEMPOTENT_COUNT,
  MAX_NAME_LENGTH,
  VOLUME_SIZE,
  createVolumeRequest,
  expectError,
  fakeIds,
  mutableParameters,
  mutableParametersSkip,
  mountCapability,
  sleep,
  suiteOf,
  titled,
  uniqueName,
  uniqueNameOfLength,
  withTest,
  type Resources,
  type SuiteTarget,
} from './harness';

/** The controller capabilities csi-sanity knows; any other one fails its capabilities case. */
const KNOWN_CONTROLLER_CAPS = new Set([
  'CREATE_DELETE_VOLUME',
  'PUBLISH_UNPUBLISH_VOLUME',
  'LIST_VOLUMES',
  'GET_CAPACITY',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'PUBLISH_READONLY',
  'CLONE_VOLUME',
  'EXPAND_VOLUME',
  'MODIFY_VOLUME',
  'LIST_VOLUMES_PUBLISHED_NODES',
  'GET_VOLUME',
  'VOLUME_CONDITION',
  'SINGLE_NODE_MULTI_WRITER',
]);

export function defineControllerCases(target: SuiteTarget): void {
  describe(titled('Controller Service', target), () => {
    const ctx = suiteOf(target);
    const sanityCase = (body: (r: Resources) => Promise<void>, needs?: string, needsMutableParameters = false) => (t: TestContext) => {
      // csi-sanity skips a case when the driver does not advertise the capability it needs.
      if (needs && !ctx.suite.controllerCaps.has(needs)) return t.skip(`${needs} not supported`);
      const noMutable = needsMutableParameters && mutableParametersSkip(ctx.suite);
      if (noMutable) return t.skip(noMutable);
      return withTest(ctx.suite, body);
    };

    describe('ControllerGetCapabilities', () => {
      it(
        'returns only capabilities csi-sanity knows',
        sanityCase(async (r) => {
          const res = await r.controller('ControllerGetCapabilities', {});
          assert.ok(Array.isArray(res.capabilities));
          for (const cap of res.capabilities) {
            assert.ok(cap.rpc, 'each capability is an rpc capability');
            assert.ok(KNOWN_CONTROLLER_CAPS.has(cap.rpc.type), `unknown capability: ${cap.rpc.type}`);
          }
        }),
      );
    });

    describe('GetCapacity', () => {
      it('returns capacity with no optional values', sanityCase(async (r) => {
        await r.controller('GetCapacity', {});
      }, 'GET_CAPACITY'));
    });

    describe('ListVolumes', () => {
      it('returns volumes that each have an ID (no optional values)', sanityCase(async (r) => {
        const res = await r.controller('ListVolumes', {});
        for (const e of res.entries) {
          assert.ok(e.volume);
          assert.ok(e.volume.volume_id);
        }
      }));

      it('fails with ABORTED when an invalid starting_token is passed', sanityCase(async (r) => {
        await expectError(r.controller('ListVolumes', { starting_token: 'invalid-token' }), Code.ABORTED);
      }));

      it('lists a new volume and no longer lists it once deleted', sanityCase(async (r) => {
        const before = (await r.controller('ListVolumes', {})).entries.length;
        const vol = await r.mustCreateVolume({ name: 'sanity', volume_capabilities: [mountCapability()], parameters: {} });
        assert.equal((await r.controller('ListVolumes', {})).entries.length, before + 1);
        await r.deleteVolume({ volume_id: vol.volume.volume_id });
        assert.equal((await r.controller('ListVolumes', {})).entries.length, before);
      }));

      // csi-sanity keeps this case pending (XIt) as fragile on shared backends,
      // and the spec lets a driver answer ABORTED for a starting_token that is
      // no longer valid: the driver does, on the simulator and on the testbed
      // alike (real Cinder answers 404 for a marker whose volume is gone).
      it(
        'pages with max_entries and accepts the token after the page\'s volumes are deleted',
        {
          skip: 'pending in csi-sanity (XIt); the driver answers ABORTED ("its marker is gone") for a token whose last volume was deleted, which the spec\'s "Invalid starting_token -> ABORTED" row allows',
        },
        sanityCase(async (r) => {
        let minCount = 3;
        const maxEntries = 2;
        const existing = new Map<string, boolean>();
        const initial = (await r.controller('ListVolumes', {})).entries;
        for (const e of initial) existing.set(e.volume.volume_id, true);
        if (minCount <= initial.length) minCount = initial.length;
        else {
          for (let i = initial.length; i < minCount; i++) {
            const v = await r.mustCreateVolume({ name: `sanity${i}`, volume_capabilities: [mountCapability()], parameters: {} });
            existing.set(v.volume.volume_id, true);
          }
        }
        const page = await r.controller('ListVolumes', { max_entries: maxEntries });
        assert.equal(page.entries.length, maxEntries);
        const token = page.next_token;
        for (const e of page.entries) {
          assert.equal(existing.get(e.volume.volume_id), true);
          await r.deleteVolume({ volume_id: e.volume.volume_id });
          existing.set(e.volume.volume_id, false);
        }
        const added = await r.mustCreateVolume({ name: 'new-addition', volume_capabilities: [mountCapability()], parameters: {} });
        existing.set(added.volume.volume_id, true);
        const rest = await r.controller('ListVolumes', { starting_token: token });
        assert.ok(rest.entries.length <= minCount - maxEntries + 1, `${rest.entries.length} entries after the token`);
        for (const e of rest.entries) {
          assert.equal(existing.get(e.volume.volume_id), true, `volume ${e.volume.volume_id} listed twice or unknown`);
          existing.set(e.volume.volume_id, false);
        }
      }),
      );

      // Not a csi-sanity case: the ListSnapshots paging case applied to ListVolumes.
      it('pages with max_entries and starting_token, every volume exactly once', sanityCase(async (r) => {
        for (let i = 0; i < 5; i++) await r.mustCreateVolume(createVolumeRequest(uniqueName(`sanity-list-page-${i}`)));
        const all = (await r.controller('ListVolumes', {})).entries.map((e: any) => e.volume.volume_id).sort();
        const first = await r.controller('ListVolumes', { max_entries: 2 });
        assert.equal(first.entries.length, 2);
        assert.ok(first.next_token, 'a next_token when entries remain');
        const seen: string[] = first.entries.map((e: any) => e.volume.volume_id);
        let token: string = first.next_token;
        while (token) {
          const page = await r.controller('ListVolumes', { max_entries: 2, starting_token: token });
          assert.ok(page.entries.length <= 2);
          seen.push(...page.entries.map((e: any) => e.volume.volume_id));
          token = page.next_token;
        }
        assert.deepEqual(seen.sort(), all);
        const rest = await r.controller('ListVolumes', { starting_token: first.next_token });
        assert.equal(rest.entries.length, all.length - 2, 'without max_entries the rest comes at once');
      }));
    });

    describe('CreateVolume', () => {
      it('fails with INVALID_ARGUMENT when no name is provided', sanityCase(async (r) => {
        await expectError(r.createVolume({ parameters: {} }), Code.INVALID_ARGUMENT);
      }));

      it('fails with INVALID_ARGUMENT when no volume capabilities are provided', sanityCase(async (r) => {
        await expectError(r.createVolume({ name: uniqueName('sanity-controller-create-no-volume-capabilities'), parameters: {} }), Code.INVALID_ARGUMENT);
      }));

      it('creates a single-node-writer volume', sanityCase(async (r) => {
        await r.mustCreateVolume({
          name: uniqueName('sanity-controller-create-single-no-capacity'),
          volume_capabilities: [mountCapability()],
          capacity_range: { required_bytes: VOLUME_SIZE },
          parameters: {},
        });
      }));

      it('creates a single-node-writer volume of at least the required 1 GiB', sanityCase(async (r) => {
        const res = await r.createVolume({
          name: uniqueName('sanity-controller-create-single-with-capacity'),
          volume_capabilities: [mountCapability()],
          capacity_range: { required_bytes: VOLUME_SIZE },
          parameters: {},
        });
        assert.ok(res.volume.volume_id);
        assert.ok(res.volume.capacity_bytes === 0 || res.volume.capacity_bytes >= VOLUME_SIZE, `capacity ${res.volume.capacity_bytes}`);
      }));

      it('returns the same volume for the same name and capacity', sanityCase(async (r) => {
        const req = {
          name: uniqueName('sanity-controller-create-twice'),
          volume_capabilities: [mountCapability()],
          capacity_range: { required_bytes: VOLUME_SIZE },
          parameters: {},
        };
        const first = await r.mustCreateVolume(req);
        assert.ok(first.volume.capacity_bytes === 0 || first.volume.capacity_bytes >= VOLUME_SIZE);
        const second = await r.mustCreateVolume(req);
        assert.ok(second.volume.capacity_bytes === 0 || second.volume.capacity_bytes >= VOLUME_SIZE);
        assert.equal(second.volume.volume_id, first.volume.volume_id);
      }));

      it('fails with ALREADY_EXISTS for the same name and a different capacity', sanityCase(async (r) => {
        const name = uniqueName('sanity-controller-create-twice-different');
        await r.mustCreateVolume({
          name,
          volume_capabilities: [mountCapability()],
          capacity_range: { required_bytes: VOLUME_SIZE, limit_bytes: VOLUME_SIZE },
          parameters: {},
        });
        await expectError(
          r.createVolume({
            name,
            volume_capabilities: [mountCapability()],
            capacity_range: { required_bytes: 2 * VOLUME_SIZE, limit_bytes: 2 * VOLUME_SIZE },
            parameters: {},
          }),
          Code.ALREADY_EXISTS,
        );
      }));

      it('creates a volume with a name of the maximum length (128)', sanityCase(async (r) => {
        const name = uniqueNameOfLength('sanity-controller-create-maxlen', MAX_NAME_LENGTH);
        assert.equal(name.length, MAX_NAME_LENGTH);
        const res = await r.mustCreateVolume({ name, volume_capabilities: [mountCapability()], capacity_range: { required_bytes: VOLUME_SIZE }, parameters: {} });
        assert.ok(res.volume.capacity_bytes === 0 || res.volume.capacity_bytes >= VOLUME_SIZE);
      }));

      it('creates a volume from an existing snapshot', sanityCase(async (r) => {
        const source = await r.mustCreateVolume(createVolumeRequest(uniqueName('sanity-controller-source-vol')));
        const snapReq = { name: uniqueName('sanity-controller-snap-from-vol'), source_volume_id: source.volume.volume_id, parameters: {} };
        let snap: any;
        // csi-sanity repeats CreateSnapshot until the snapshot is ready (it waits 5 s between calls).
        for (let i = 0; ; i++) {
          snap = await r.mustCreateSnapshot(snapReq);
          if (snap.snapshot.ready_to_use) break;
          assert.ok(i < 100, 'the snapshot became ready');
          await sleep(100);
        }
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-from-snap'));
        req.volume_content_source = { snapshot: { snapshot_id: snap.snapshot.snapshot_id } };
        const vol = await r.mustCreateVolume(req);
        assert.equal(vol.volume.content_source?.snapshot?.snapshot_id, snap.snapshot.snapshot_id, 'the volume names its content source');
      }, 'CREATE_DELETE_SNAPSHOT'));

      it('fails with NOT_FOUND when the source snapshot does not exist', sanityCase(async (r) => {
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-from-snap'));
        req.volume_content_source = { snapshot: { snapshot_id: 'non-existing-snapshot-id' } };
        await expectError(r.createVolume(req), Code.NOT_FOUND);
      }, 'CREATE_DELETE_SNAPSHOT'));

      it('creates a volume from an existing volume', sanityCase(async (r) => {
        const source = await r.mustCreateVolume(createVolumeRequest(uniqueName('sanity-controller-source-vol')));
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-from-vol'));
        req.volume_content_source = { volume: { volume_id: source.volume.volume_id } };
        const vol = await r.mustCreateVolume(req);
        assert.equal(vol.volume.content_source?.volume?.volume_id, source.volume.volume_id, 'the volume names its content source');
      }, 'CLONE_VOLUME'));

      it('fails with NOT_FOUND when the source volume does not exist', sanityCase(async (r) => {
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-from-snap'));
        req.volume_content_source = { volume: { volume_id: fakeIds.volume() } };
        await expectError(r.createVolume(req), Code.NOT_FOUND);
      }, 'CLONE_VOLUME'));

      it('creates a volume with a volume attribute class', sanityCase(async (r) => {
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-with-mutable-parameters'));
        req.mutable_parameters = mutableParameters(ctx.suite);
        await r.createVolume(req);
      }, 'MODIFY_VOLUME', true));

      it('fails with INVALID_ARGUMENT for an invalid volume attribute class', sanityCase(async (r) => {
        const req = createVolumeRequest(uniqueName('sanity-controller-vol-with-mutable-parameters'));
        req.mutable_parameters = { XXX_FakeKey: 'XXX_FakeValue' };
        await expectError(r.createVolume(req), Code.INVALID_ARGUMENT);
      }, 'MODIFY_VOLUME'));
    });

    describe('DeleteVolume', () => {
      it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
        await expectError(r.deleteVolume({} as { volume_id: string }), Code.INVALID_ARGUMENT);
      }));

      it('succeeds for a volume id that does not exist', sanityCase(async (r) => {
        await r.deleteVolume({ volume_id: fakeIds.invalidVolume() });
      }));

      it('deletes a volume (no optional values)', sanityCase(async (r) => {
        const vol = await r.mustCreateVolume({
          name: uniqueName('sanity-controller-create-appropriate'),
          volume_capabilities: [mountCapability()],
          capacity_range: { required_bytes: VOLUME_SIZE },
          parameters: {},
        });
        await r.deleteVolume({ volume_id: vol.volume.volume_id });
      }));
    });

    describe('ValidateVolumeCapabilities', () => {
      const create = (r: Resources, name: string) =>
        r.mustCreateVolume({ name: uniqueName(name), volume_capabilities: [mountCapability()], capacity_range: { required_bytes: VOLUME_SIZE }, parameters: {} });

      it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
        await expectError(r.controller('ValidateVolumeCapabilities', {}), Code.INVALID_ARGUMENT);
      }));

      it('fails with INVALID_ARGUMENT when no volume capabilities are provided', sanityCase(async (r) => {
        const vol = await create(r, 'sanity-controller-validate-nocaps');
        await expectError(r.controller('ValidateVolumeCapabilities', { volume_id: vol.volume.volume_id }), Code.INVALID_ARGUMENT);
      }));

      it('confirms, when it confirms, with the capabilities (no optional values)', sanityCase(async (r) => {
        const vol = await create(r, 'sanity-controller-validate');
        const res = await r.controller('ValidateVolumeCapabilities', { volume_id: vol.volume.volume_id, volume_capabilities: [mountCapability()] });
        assert.ok(res);
        if (res.confirmed) assert.ok(res.confirmed.volume_capabilities.length > 0, 'confirmed lists the capabilities');
      }));

      it('fails with NOT_FOUND when the volume does not exist', sanityCase(async (r) => {
        await expectError(r.controller('ValidateVolumeCapabilities', { volume_id: fakeIds.volume(), volume_capabilities: [mountCapability()] }), Code.NOT_FOUND);
      }));
    });

    describe('ControllerPublishVolume', () => {
      it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
        await expectError(r.controllerPublish({}), Code.INVALID_ARGUMENT);
      }));

      it('fails with INVALID_ARGUMENT when no node id is provided', sanityCase(async (r) => {
        await expectError(r.controllerPublish({ volume_id: fakeIds.volume() }), Code.INVALID_ARGUMENT);
      }));

      it('fails with INVALID_ARGUMENT when no volume capability is provided', sanityCase(async (r) => {
        await expectError(r.controllerPublish({ volume_id: fakeIds.volume(), node_id: fakeIds.node() }), Code.INVALID_ARGUMENT);
      }));

      // csi-sanity runs this only with --csi.testnodevolumeattachlimit (off by default). Nova refuses the
      // attach past its [compute] max_disk_devices_to_attach (the simulator's default matches what
      // NodeGetInfo reports); a real cloud leaves that unlimited unless its operator set it.
      it('fails when publishing more volumes than the node max attach limit', (t) => {
        if (!ctx.suite.nodeService) return t.skip("needs NodeGetInfo's max_volumes_per_node and a Nova that enforces it: runs on the simulator");
        return withTest(ctx.suite, async (r) => {
          const info = await r.suite.nodeInfo();
          const max = Number(info.max_volumes_per_node ?? 0);
          assert.ok(max > 0, 'NodeGetInfo reports max_volumes_per_node');
          const publish = (volumeId: string) =>
            r.controllerPublish({ volume_id: volumeId, node_id: info.node_id, volume_capability: mountCapability(), readonly: false });
          for (let i = 0; i < max; i++) {
            const vol = await r.mustCreateVolume(createVolumeRequest(uniqueName(`sanity-max-attach-limit-vol-${i}`)));
            await publish(vol.volume.volume_id);
          }
          const extra = await r.mustCreateVolume(createVolumeRequest(uniqueName('sanity-max-attach-limit-vol+1')));
          await expectError(publish(extra.volume.volume_id), Code.RESOURCE_EXHAUSTED);
        });
      });

      it('fails with NOT_FOUND when the volume does not exist', sanityCase(async (r) => {
        await expectError(
          r.controllerPublish({ volume_id: fakeIds.volume(), node_id: fakeIds.node(), volume_capability: mountCapability(), readonly: false }),
          Code.NOT_FOUND,
        );
      }));

      it('fails with NOT_FOUND when the node does not exist', sanityCase(async (r) => {
        const vol = await r.mustCreateVolume({ name: uniqueName('sanity-controller-wrong-node'), volume_capabilities: [mountCapability()], parameters: {} });
        await expectError(
          r.controllerPublish({ volume_id: vol.volume.volume_id, node_id: fakeIds.node(), volume_capability: mountCapability(), readonly: false }),
          Code.NOT_FOUND,
        );
      }));

      it(
        'fails with ALREADY_EXISTS when the volume is already published but incompatibly',
        sanityCase(async (r) => {
        const vol = await r.mustCreateVolume({ name: uniqueName('sanity-controller-published-incompatible'), volume_capabilities: [mountCapability()], parameters: {} });
        const info = await r.suite.nodeInfo();
        assert.ok(info.node_id);
        const req = { volume_id: vol.volume.volume_id, node_id: info.node_id, volume_capability: mountCapability(), readonly: false };
        await r.controllerPublish(req);
        await expectError(r.controllerPublish({ ...req, readonly: true }), Code.ALREADY_EXISTS);
      }, 'PUBLISH_READONLY'),
      );
    });

    describe('volume lifecycle', () => {
      // csi-sanity's VolumeLifecycle: create with the node's topology, then publish `count` times; cleanup unpublishes and deletes.
      const lifecycle = async (r: Resources, count: number) => {
        const info = await r.suite.nodeInfo();
        assert.ok(info.node_id);
        const accessibility = info.accessible_topology ? { requisite: [info.accessible_topology] } : undefined;
        const vol = await r.mustCreateVolume({
          name: uniqueName(`sanity-controller-publish-${count}`),
          volume_capabilities: [mountCapability()],
          parameters: {},
          accessibility_requirements: accessibility,
        });
        for (let i = 0; i < count; i++) {
          const res = await r.controllerPublish({
            volume_id: vol.volume.volume_id,
            node_id: info.node_id,
            volume_capability: mountCapability(),
            volume_context: vol.volume.volume_context,
            readonly: false,
          });
          assert.ok(res);
        }
      };

      it('works', sanityCase((r) => lifecycle(r, 1)));
      it('is idempotent', sanityCase((r) => lifecycle(r, IDEMPOTENT_COUNT)));
    });

    describe('ControllerUnpublishVolume', () => {
      it('fails with INVALID_ARGUMENT when no volume id is provided', sanityCase(async (r) => {
        await expectError(r.controller('ControllerUnpublishVolume', {}), Code.INVALID_ARGUMENT);
      }));
    });
  });

  describe(titled('ExpandVolume [Controller Server]', target), () => {
    const ctx = suiteOf(target);
    const sanityCase = (body: (r: Resources) => Promise<void>) => () => withTest(ctx.suite, body);

    it('fails with INVALID_ARGUMENT when no volume id is given', sanityCase(async (r) => {
      await expectError(r.controller('ControllerExpandVolume', { volume_id: '', capacity_range: { required_bytes: EXPAND_SIZE } }), Code.INVALID_ARGUMENT);
    }));

    it('fails with INVALID_ARGUMENT when no capacity range is given', sanityCase(async (r) => {
      // As csi-sanity sends it: the volume id is empty too.
      await expectError(r.controller('ControllerExpandVolume', { volume_id: '' }), Code.INVALID_ARGUMENT);
    }));

    it('expands a volume to exactly the requested size', sanityCase(async (r) => {
      const vol = await r.mustCreateVolume({
        name: uniqueName('sanity-expand-volume'),
        volume_capabilities: [mountCapability()],
        parameters: {},
        capacity_range: { required_bytes: VOLUME_SIZE },
      });
      const res = await r.controller('ControllerExpandVolume', {
        volume_id: vol.volume.volume_id,
        capacity_range: { required_bytes: EXPAND_SIZE },
        volume_capability: mountCapability(),
      });
      assert.equal(res.capacity_bytes, EXPAND_SIZE);
    }));
  });

  describe(titled('ModifyVolume [Controller Server]', target), () => {
    const ctx = suiteOf(target);
    // csi-sanity runs these cases with or without --csi.testvolumemutableparameters; without it
    // (its default), every request carries no mutable parameters at all.
    const configurations = [
      { title: 'with --csi.testvolumemutableparameters', parameters: () => mutableParameters(ctx.suite), needsParameters: true },
      { title: "csi-sanity's default: no mutable parameters", parameters: () => ({}), needsParameters: false },
    ];
    for (const config of configurations) {
      describe(config.title, () => {
        const sanityCase = (body: (r: Resources) => Promise<void>, needsMutableParameters = false) => (t: TestContext) => {
          const noMutable = needsMutableParameters && config.needsParameters && mutableParametersSkip(ctx.suite);
          if (noMutable) return t.skip(noMutable);
          return withTest(ctx.suite, body);
        };
        const modifyRequest = (volumeId: string) => ({ volume_id: volumeId, mutable_parameters: config.parameters() });

        it('fails with INVALID_ARGUMENT when no volume id is given', sanityCase(async (r) => {
          await expectError(r.controller('ControllerModifyVolume', modifyRequest('')), Code.INVALID_ARGUMENT);
        }, true));

        it('fails with NOT_FOUND when the volume does not exist', sanityCase(async (r) => {
          await expectError(r.controller('ControllerModifyVolume', modifyRequest('non-existing-volume-id')), Code.NOT_FOUND);
        }, true));

        it('fails with INVALID_ARGUMENT for mutable parameters the volume does not support', sanityCase(async (r) => {
          const vol = await r.mustCreateVolume(createVolumeRequest(uniqueName('sanity-modify-volume')));
          await expectError(
            r.controller('ControllerModifyVolume', { volume_id: vol.volume.volume_id, mutable_parameters: { XXX_FakeKey: 'XXX_FakeValue' } }),
            Code.INVALID_ARGUMENT,
          );
        }));

        it('modifies a volume created without a volume attribute class', sanityCase(async (r) => {
          const vol = await r.mustCreateVolume(createVolumeRequest(uniqueName('sanity-modify-volume')));
          assert.ok(await r.controller('ControllerModifyVolume', modifyRequest(vol.volume.volume_id)));
        }, true));

        it('modifies a volume created with a volume attribute class', sanityCase(async (r) => {
          const req = createVolumeRequest(uniqueName('sanity-modify-volume'));
          req.mutable_parameters = config.parameters();
          const vol = await r.mustCreateVolume(req);
          assert.ok(await r.controller('ControllerModifyVolume', modifyRequest(vol.volume.volume_id)));
        }, true));

        it('fails with INVALID_ARGUMENT when a volume with a class is given unsupported mutable parameters', sanityCase(async (r) => {
          const req = createVolumeRequest(uniqueName('sanity-modify-volume'));
          req.mutable_parameters = config.parameters();
          const vol = await r.mustCreateVolume(req);
          await expectError(
            r.controller('ControllerModifyVolume', { volume_id: vol.volume.volume_id, mutable_parameters: { XXX_FakeKey: 'XXX_FakeValue' } }),
            Code.INVALID_ARGUMENT,
          );
        }, true));
      });
    }
  });
}
