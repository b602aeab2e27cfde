// csi-sanity's Controller, Snapshot and Identity cases against a real cloud
// (npm run test:cloud): the same case definitions the simulator runs, through
// the driver in controller mode (see cloud.ts). The Node cases stay
// simulator-only: there is no data path and no node service on the cloud.
// Skips with the reason when no cloud is configured.
//
// cloud-test: alone. Some cases count the project's volumes and snapshots
// before and after (csi-sanity's "lists a new volume and no longer lists it
// once deleted"), so scripts/run-tests.js runs this file after the other
// cloud files, not beside them.
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
