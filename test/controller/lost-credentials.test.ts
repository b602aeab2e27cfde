// The controller when Keystone no longer knows its credentials: an
// application credential deleted or rotated, or a token given in the config
// that has expired. Keystone answers its token request with 404 there, not
// 401 (seen on the Zed testbed), and DeleteVolume and ControllerUnpublish
// read a 404 as "already gone". They must answer UNAUTHENTICATED, and leave
// the volume there and attached, never OK having done nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../../src/sim';
import type { CloudCredentials } from '../../src/openstack/types';
import { login } from '../sim/helpers';
import { Code, expectCode, MOUNT_RWO, startController, type ControllerHarness } from './harness';

/** A controller on its own simulator, authenticating with `auth` (made from the simulator's credentials). */
async function controllerWith(auth: (sim: Simulator) => Promise<Omit<CloudCredentials, 'authUrl'>>): Promise<ControllerHarness & { sim: Simulator }> {
  const sim = await startSimulator({ hypervisor: false });
  const credentials = { authUrl: sim.authUrl, ...(await auth(sim)) };
  const h = await startController({ simulator: sim, configure: (config) => (config.clouds = [sim.cloudConfig({ auth: credentials })]) });
  return {
    ...h,
    sim,
    async stop() {
      await h.stop();
      await sim.stop();
    },
  };
}

for (const lost of [
  {
    what: 'an application credential deleted (or rotated)',
    auth: async (sim: Simulator) => ({
      authPlugin: 'v3applicationcredential' as const,
      applicationCredentialId: sim.credentials.applicationCredentialId,
      applicationCredentialSecret: sim.credentials.applicationCredentialSecret,
    }),
    // Keystone revokes the credential's tokens with it.
    lose: (sim: Simulator) => sim.control.deleteApplicationCredential(),
    says: /Could not find Application Credential.*no application credential [0-9a-f]+ \(deleted, or replaced by a rotation\)/,
  },
  {
    what: 'a token in the config that has expired',
    auth: async (sim: Simulator) => ({ authPlugin: 'token' as const, token: (await login(sim)).token, projectId: sim.credentials.projectId }),
    lose: (sim: Simulator) => sim.control.expireTokens(),
    says: /Failed to validate token.*expired or was revoked/,
  },
]) {
  describe(`controller with ${lost.what}`, () => {
    let h: Awaited<ReturnType<typeof controllerWith>>;
    let node: string;
    let kept: string;
    let attached: string;
    before(async () => {
      h = await controllerWith(lost.auth);
      node = h.sim.instances[0].id;
      kept = await h.createVolume('pvc-lost-credentials-delete');
      attached = await h.createVolume('pvc-lost-credentials-unpublish');
      await h.rpc('ControllerPublishVolume', { volume_id: attached, node_id: node, volume_capability: MOUNT_RWO });
      lost.lose(h.sim);
    });
    after(() => h.stop());

    it('DeleteVolume is UNAUTHENTICATED saying what to replace, and the volume is still there', async () => {
      const err = await expectCode(h.rpc('DeleteVolume', { volume_id: kept }), Code.UNAUTHENTICATED);
      assert.match(err.details, lost.says);
      assert.equal((await h.cloud.blockStorage.getVolume(kept)).status, 'available');
    });

    it('ControllerUnpublishVolume is UNAUTHENTICATED, and the volume is still attached', async () => {
      await expectCode(h.rpc('ControllerUnpublishVolume', { volume_id: attached, node_id: node }), Code.UNAUTHENTICATED);
      const v = await h.cloud.blockStorage.getVolume(attached);
      assert.equal(v.status, 'in-use');
      assert.deepEqual(v.attachments.map((a) => a.serverId), [node]);
    });

    it('Probe says not ready', async () => {
      const probe = await h.driver.call(h.driver.identity, 'Probe', {});
      assert.equal(probe.ready.value, false);
    });
  });
}
