// csi-sanity's ListSnapshots, DeleteSnapshot and CreateSnapshot cases, for any
// target: the simulator (snapshots.test.ts) or a real cloud (controller.cloud.ts).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  Code,
  MAX_NAME_LENGTH,
  createVolumeRequest,
  expectError,
  fakeIds,
  suiteOf,
  titled,
  uniqueName,
  uniqueNameOfLength,
  verifySnapshot,
  withTest,
  type Resources,
  type SuiteTarget,
} from './harness';

export function defineSnapshotCases(target: SuiteTarget): void {
  describe(titled('Snapshots [Controller Server]', target), () => {
    const ctx = suiteOf(target);
    const sanityCase = (needs: string, body: (r: Resources) => Promise<void>) => (t: TestContext) => {
      if (!ctx.suite.controllerCaps.has(needs)) return t.skip(`${needs} not supported`);
      return withTest(ctx.suite, body);
    };
    const snapshotRequest = (name: string, sourceVolumeId: string) => ({ name, source_volume_id: sourceVolumeId, parameters: {} });

    describe('ListSnapshots', () => {
      const listCase = (body: (r: Resources) => Promise<void>) => sanityCase('LIST_SNAPSHOTS', body);

      it('returns snapshots that each have an ID, a source and a creation time (no optional values)', listCase(async (r) => {
        const res = await r.controller('ListSnapshots', {});
        for (const e of res.entries) verifySnapshot(e.snapshot);
      }));

      // csi-sanity's filter cases: an unrelated snapshot, the target, another unrelated one; `tag` is 's' or 'v'.
      const threeSnapshots = async (r: Resources, tag: string) => {
        const make = (what: string) =>
          r.mustCreateSnapshotFromVolume(createVolumeRequest(uniqueName(`listSnapshots-volume-${what}`)), uniqueName(`listSnapshots-snapshot-${what}`));
        await make(`unrelated-${tag}-1`);
        const { snapshot: target } = await make(`target-${tag}`);
        await make(`unrelated-${tag}-2`);
        return target;
      };

      it('returns only the snapshot with the given snapshot_id', listCase(async (r) => {
        const target = await threeSnapshots(r, 's');
        const res = await r.controller('ListSnapshots', { snapshot_id: target.snapshot.snapshot_id });
        assert.equal(res.entries.length, 1);
        verifySnapshot(res.entries[0].snapshot);
        assert.equal(res.entries[0].snapshot.snapshot_id, target.snapshot.snapshot_id);
      }));

      it('returns nothing (and no error) for a snapshot_id that does not exist', listCase(async (r) => {
        const res = await r.controller('ListSnapshots', { snapshot_id: 'none-exist-id' });
        assert.deepEqual(res.entries, []);
      }));

      it('returns only the snapshot of the given source_volume_id', listCase(async (r) => {
        const target = await threeSnapshots(r, 'v');
        const res = await r.controller('ListSnapshots', { source_volume_id: target.snapshot.source_volume_id });
        assert.equal(res.entries.length, 1);
        verifySnapshot(res.entries[0].snapshot);
        assert.equal(res.entries[0].snapshot.source_volume_id, target.snapshot.source_volume_id);
      }));

      it('returns nothing (and no error) for a source_volume_id that does not exist', listCase(async (r) => {
        const res = await r.controller('ListSnapshots', { source_volume_id: fakeIds.volume() });
        assert.deepEqual(res.entries, []);
      }));

      it('lists a new snapshot and no longer lists it once deleted', listCase(async (r) => {
        const before = (await r.controller('ListSnapshots', {})).entries.length;
        const { snapshot } = await r.mustCreateSnapshotFromVolume(createVolumeRequest(uniqueName('listSnapshots-volume-3')), uniqueName('listSnapshots-snapshot-3'));
        verifySnapshot(snapshot.snapshot);
        assert.equal((await r.controller('ListSnapshots', {})).entries.length, before + 1);
        await r.deleteSnapshot({ snapshot_id: snapshot.snapshot.snapshot_id });
        assert.equal((await r.controller('ListSnapshots', {})).entries.length, before);
      }));

      it('returns a next_token with max_entries, and the rest at once from that token', listCase(async (r) => {
        const minCount = 5;
        const maxEntries = 2;
        const initial = (await r.controller('ListSnapshots', {})).entries.length;
        let total = initial;
        if (initial < minCount) {
          for (let i = 1; i <= minCount - initial; i++) {
            const { snapshot } = await r.mustCreateSnapshotFromVolume(createVolumeRequest(uniqueName(`volume${i}`)), uniqueName(`snapshot${i}`));
            verifySnapshot(snapshot.snapshot);
          }
          total = minCount;
        }
        const first = await r.controller('ListSnapshots', { max_entries: maxEntries });
        assert.equal(first.entries.length, maxEntries);
        const rest = await r.controller('ListSnapshots', { starting_token: first.next_token });
        assert.equal(rest.entries.length, total - maxEntries);
      }));
    });

    describe('DeleteSnapshot', () => {
      const deleteCase = (body: (r: Resources) => Promise<void>) => sanityCase('CREATE_DELETE_SNAPSHOT', body);

      it('fails with INVALID_ARGUMENT when no snapshot id is provided', deleteCase(async (r) => {
        await expectError(r.deleteSnapshot({} as { snapshot_id: string }), Code.INVALID_ARGUMENT);
      }));

      it('succeeds for a snapshot id that does not exist', deleteCase(async (r) => {
        await r.deleteSnapshot({ snapshot_id: 'reallyfakesnapshotid' });
      }));

      it('deletes a snapshot (no optional values)', deleteCase(async (r) => {
        const volume = await r.createVolume(createVolumeRequest(uniqueName('DeleteSnapshot-volume-1')));
        // csi-sanity leaves the delete to its cleanup, which fails the case when DeleteSnapshot fails.
        await r.mustCreateSnapshot(snapshotRequest(uniqueName('DeleteSnapshot-snapshot-1'), volume.volume.volume_id));
      }));
    });

    describe('CreateSnapshot', () => {
      const createCase = (body: (r: Resources) => Promise<void>) => sanityCase('CREATE_DELETE_SNAPSHOT', body);

      it('fails with INVALID_ARGUMENT when no name is provided', createCase(async (r) => {
        await expectError(r.createSnapshot({ source_volume_id: 'testId' }), Code.INVALID_ARGUMENT);
      }));

      it('fails with INVALID_ARGUMENT when no source volume id is provided', createCase(async (r) => {
        await expectError(r.createSnapshot({ name: 'name' }), Code.INVALID_ARGUMENT);
      }));

      it('succeeds again for the same name and the same source volume', createCase(async (r) => {
        const volume = await r.mustCreateVolume(createVolumeRequest(uniqueName('CreateSnapshot-volume-1')));
        const req = snapshotRequest(uniqueName('CreateSnapshot-snapshot-1'), volume.volume.volume_id);
        const first = await r.mustCreateSnapshot(req);
        const second = await r.mustCreateSnapshot(req);
        // Not asserted by csi-sanity, but what makes the second call idempotent.
        assert.equal(second.snapshot.snapshot_id, first.snapshot.snapshot_id);
      }));

      it('fails with ALREADY_EXISTS for the same name and a different source volume', createCase(async (r) => {
        const name = uniqueName('CreateSnapshot-snapshot-2');
        await r.mustCreateSnapshotFromVolume(createVolumeRequest(uniqueName('CreateSnapshot-volume-2')), name);
        const other = await r.mustCreateVolume(createVolumeRequest(uniqueName('CreateSnapshot-volume-3')));
        await expectError(r.createSnapshot(snapshotRequest(name, other.volume.volume_id)), Code.ALREADY_EXISTS);
      }));

      it('creates a snapshot with a name of the maximum length (128), twice', createCase(async (r) => {
        const volume = await r.mustCreateVolume(createVolumeRequest(uniqueName('CreateSnapshot-volume-maxlen-name')));
        const name = uniqueNameOfLength('CreateSnapshot-snapshot-maxlen', MAX_NAME_LENGTH);
        assert.equal(name.length, MAX_NAME_LENGTH);
        const req = snapshotRequest(name, volume.volume.volume_id);
        await r.mustCreateSnapshot(req);
        await r.mustCreateSnapshot(req);
      }));
    });
  });
}
