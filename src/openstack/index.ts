// The OpenStack module's public API. Usable on its own: nothing here knows
// of gRPC, CSI or the simulator.
export * from './types';
export * from './errors';
export { createCloud, createInstanceMetadata, type CloudInternals } from './cloud';
export { WAIT } from './waiter';
export { VOLUME_SERVICE_TYPES, COMPUTE_SERVICE_TYPES, chooseEndpoint, parseV2Catalog, parseV3Catalog, type CatalogEndpoint } from './catalog';
export { CINDER_MAX_MICROVERSION } from './cinder-version';
export { V1_LIST_CAP } from './cinder';
export { isRetryable, DEFAULT_RETRY_POLICY } from './retry';
