// csi-sanity's cases of identity-cases.ts against the driver's own simulator.
import { simulatorTarget } from './harness';
import { defineIdentityCases } from './identity-cases';

defineIdentityCases(simulatorTarget);
