// csi-sanity's Controller, Snapshot and Identity cases against a real cloud
// (npm run test:cloud): the same case definitions the simulator runs, through
// the driver in controller mode (see cloud.ts). The Node cases stay
// simulator-only: there is no data path and no node service on the cloud.
// Skips with the reason when no cloud is configured.
import { describe, it } from 'node:test';
import { cloudSkipReason } from '../openstack/cloud-env';
import { cloudTarget } from './cloud';
import { defineControllerCases } from './controller-cases';
import { defineIdentityCases } from './identity-cases';
import { defineSnapshotCases } from './snapshot-cases';

const skip = cloudSkipReason();
if (skip) {
  describe('csi-sanity (real cloud)', () => {
    it('runs against a real cloud', (t) => t.skip(skip));
  });
} else {
  defineIdentityCases(cloudTarget);
  defineControllerCases(cloudTarget);
  defineSnapshotCases(cloudTarget);
}
