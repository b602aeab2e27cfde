// csi-sanity's cases of snapshot-cases.ts against the driver's own simulator.
import { simulatorTarget } from './harness';
import { defineSnapshotCases } from './snapshot-cases';

defineSnapshotCases(simulatorTarget);
