// csi-sanity's cases of controller-cases.ts against the driver's own simulator.
import { simulatorTarget } from './harness';
import { defineControllerCases } from './controller-cases';

defineControllerCases(simulatorTarget);
