// DeleteVolume and ControllerUnpublish answer OK for a volume Cinder or Nova
// answers 404 for: it is gone, or not attached, as asked. A 404, or an
// error, that says something else must not pass for that:
// - Keystone's 404 for credentials it no longer has (an application
//   credential deleted or rotated, a token in the config that expired;
//   seen on the Zed testbed), which must be UNAUTHENTICATED;
// - a catalog without the endpoint the config asks for (a region typo),
//   or with Cinder or Nova in several regions and no region configured,
//   which must be FAILED_PRECONDITION;
// - an endpoint URL that reaches no OpenStack API (a wrong path in the
//   catalog or the config, a proxy), whose 404 is not Cinder's or Nova's
//   own "not found": FAILED_PRECONDITION too.
// In each, the volume is still there and still attached afterwards, and
// Probe says not ready where the driver can know (not for a URL it would
// have to call to find out).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type SimOptions, type Simulator } from '../../src/sim';
import { WAIT } from '../../src/openstack/waiter';
import type { CloudConfig } from '../../src/openstack/types';
import { login } from '../sim/helpers';
import { Code, expectCode, startController, type ControllerHarness } from './harness';

interface Case {
  what: string;
  /** The simulator's options beyond the defaults. */
  sim?: SimOptions;
  /** The driver's cloud config, from the simulator's own. */
  cloud: (sim: Simulator) => Promise<CloudConfig>;
  /** What happens once the volumes are made and attached. */
  then?: (sim: Simulator) => void;
  code: (typeof Code)[keyof typeof Code];
  says: RegExp;
  /** Probe says not ready, for this reason. */
  probe?: RegExp;
}

const CASES: Case[] = [
  {
    what: 'an application credential deleted (or rotated)',
    cloud: async (sim) => {
      const c = sim.credentials;
      return sim.cloudConfig({
        auth: { authUrl: sim.authUrl, authPlugin: 'v3applicationcredential', applicationCredentialId: c.applicationCredentialId, applicationCredentialSecret: c.applicationCredentialSecret },
      });
    },
    // Keystone revokes the credential's tokens with it.
    then: (sim) => sim.control.deleteApplicationCredential(),
    code: Code.UNAUTHENTICATED,
    says: /Could not find Application Credential.*no application credential [0-9a-f]+ \(deleted, or replaced by a rotation\)/,
    probe: /not authenticated yet: .*Could not find Application Credential/,
  },
  {
    what: 'a token in the config that has expired',
    cloud: async (sim) => sim.cloudConfig({ auth: { authUrl: sim.authUrl, authPlugin: 'token', token: (await login(sim)).token, projectId: sim.credentials.projectId } }),
    then: (sim) => sim.control.expireTokens(),
    code: Code.UNAUTHENTICATED,
    says: /Failed to validate token.*expired or was revoked/,
    probe: /not authenticated yet: .*Failed to validate token/,
  },
  {
    what: 'a region the catalog does not have (regionone for RegionOne)',
    cloud: async (sim) => sim.cloudConfig({ region: 'regionone' }),
    code: Code.FAILED_PRECONDITION,
    says: /the service catalog has no .* endpoint on interface public in region regionone/,
    probe: /the service catalog has no .* endpoint on interface public in region regionone/,
  },
  {
    // Cinder and Nova could each be taken from a different region; a Nova elsewhere answers 404 for the node's server.
    what: 'no region configured on a cloud of two regions',
    sim: { regions: ['RegionOne', 'RegionTwo'] },
    cloud: async (sim) => sim.cloudConfig({ region: undefined }),
    code: Code.FAILED_PRECONDITION,
    says: /no region is configured, and the service catalog offers the volume or compute service on interface public in 2 regions \(RegionOne, RegionTwo\): set the cloud's region/,
    probe: /in 2 regions \(RegionOne, RegionTwo\)/,
  },
  {
    what: 'endpoint URLs that reach no OpenStack API',
    cloud: async (sim) =>
      sim.cloudConfig({ endpointOverrides: { volume: `${sim.url}/volumez/v3/${sim.credentials.projectId}`, compute: `${sim.url}/compute/v2.1/nowhere` } }),
    code: Code.FAILED_PRECONDITION,
    says: /404 The resource could not be found\.; this URL reached no OpenStack API/,
  },
];

for (const c of CASES) {
  describe(`DeleteVolume and ControllerUnpublish with ${c.what}`, () => {
    let sim: Simulator;
    let h: ControllerHarness;
    let node: string;
    let kept: string;
    let attached: string;
    before(async () => {
      sim = await startSimulator({ hypervisor: false, ...c.sim });
      const cloud = await c.cloud(sim);
      h = await startController({ simulator: sim, configure: (config) => (config.clouds = [cloud]) });
      node = sim.instances[0].id;
      // Made with a client of our own, which authenticates as the simulator's user.
      const bs = h.cloud.blockStorage;
      [kept, attached] = await Promise.all(['pvc-not-gone-delete', 'pvc-not-gone-unpublish'].map(async (name) => (await bs.createVolume({ name, size: 1 })).id));
      for (const id of [kept, attached]) await h.cloud.waiter.volume(id, WAIT.volumeAvailable);
      await h.cloud.compute.attachVolume(node, attached);
      await h.cloud.waiter.volume(attached, WAIT.volumeAttached);
      c.then?.(sim);
    });
    after(async () => {
      await h?.stop();
      await sim?.stop();
    });

    it(`DeleteVolume is ${Code[c.code]} saying what to fix, and the volume is still there`, async () => {
      const err = await expectCode(h.rpc('DeleteVolume', { volume_id: kept }), c.code);
      assert.match(err.details, c.says);
      assert.equal((await h.cloud.blockStorage.getVolume(kept)).status, 'available');
    });

    it(`ControllerUnpublishVolume is ${Code[c.code]}, and the volume is still attached`, async () => {
      const err = await expectCode(h.rpc('ControllerUnpublishVolume', { volume_id: attached, node_id: node }), c.code);
      assert.match(err.details, c.says);
      const v = await h.cloud.blockStorage.getVolume(attached);
      assert.equal(v.status, 'in-use');
      assert.deepEqual(v.attachments.map((a) => a.serverId), [node]);
    });

    if (c.probe) {
      const probe = c.probe;
      it('Probe says not ready, and its log line says why', async () => {
        const res = await h.driver.call(h.driver.identity, 'Probe', {});
        assert.equal(res.ready.value, false);
        const line = h.driver.logs.findLast((l) => l.method === 'Probe');
        assert.match(String(line?.not_ready), probe);
      });
    }
  });
}
