// One configured cloud, wired: the HTTP client, the shared Keystone token,
// Cinder, Nova, and the waiter (volume and snapshot polls batched across waiters).
import type { Logger } from '../log';
import { Cinder } from './cinder';
import { HttpClient } from './http';
import { Identity } from './keystone';
import { createInstanceMetadata as createMetadata, type InstanceMetadata, type IdentitySource } from './metadata';
import { Nova } from './nova';
import { StatusBatcher } from './status-batcher';
import { Waiter } from './waiter';
import type { CallOptions, Cloud, CloudConfig, CloudWaiter, InstanceIdentity, Snapshot, Volume, WaitOptions, WaitSpec } from './types';

export interface CloudInternals {
  /** Successful Keystone authentications by this cloud object. */
  authentications(): number;
  /** The shared token holder (tests revoke its token to exercise re-authentication). */
  identity: Identity;
  batcher: StatusBatcher<Volume>;
  snapshotBatcher: StatusBatcher<Snapshot>;
  waiter: Waiter;
}

export function createCloud(config: CloudConfig, logger: Logger): Cloud & { internals: CloudInternals } {
  const log = logger.child({ cloud: config.name });
  const { password, applicationCredentialSecret, apiKey, token } = config.auth;
  // Asked only when an error message is made, after `identity` exists.
  const secrets = (): Array<string | undefined> => [password, applicationCredentialSecret, apiKey, token, identity.currentToken()];
  const http = new HttpClient({ tls: config.tls, requestTimeoutMs: config.requestTimeoutMs, logger: log, proxy: config.proxy, secrets });
  const identity = new Identity(config, http, log);
  const blockStorage = new Cinder(config, identity, http, log);
  const compute = new Nova(config, identity, http, log);
  const batcher = new StatusBatcher<Volume>(
    { get: (id, o) => blockStorage.getVolume(id, o), list: (q, o) => blockStorage.listVolumes(q, o) },
    'volume',
    { logger: log },
  );
  const snapshotBatcher = new StatusBatcher<Snapshot>(
    { get: (id, o) => blockStorage.getSnapshot(id, o), list: (q, o) => blockStorage.listSnapshots(q, o) },
    'snapshot',
    { logger: log },
  );
  const waiterImpl = new Waiter({ logger: log });

  // Every object kind is waited for the same way: poll its status (volumes
  // and snapshots through their batcher, which serves many waiters at once).
  const waitOn =
    <T extends { id: string; status: string }>(what: string, fetch: (id: string, o: CallOptions) => Promise<T>, shared?: StatusBatcher<T>) =>
    (id: string, spec: WaitSpec, opts: WaitOptions<T> = {}) =>
      waiterImpl.waitFor<T>({
        ...opts,
        what: `${what} ${id}`,
        spec,
        fetch: (o) => fetch(id, o),
        look: shared && ((dueAt, o) => shared.look(id, dueAt, o)),
        stateOf: (x) => x.status,
      });
  const waiter: CloudWaiter = {
    volume: waitOn('volume', (id, o) => blockStorage.getVolume(id, o), batcher),
    snapshot: waitOn('snapshot', (id, o) => blockStorage.getSnapshot(id, o), snapshotBatcher),
    backup: waitOn('backup', (id, o) => blockStorage.getBackup(id, o)),
  };

  return {
    name: config.name,
    blockStorage,
    compute,
    waiter,
    async authenticate(opts?: CallOptions) {
      await identity.auth(opts);
    },
    health: () => identity.health(),
    close: () => http.close(),
    internals: { authentications: () => identity.authentications, identity, batcher, snapshotBatcher, waiter: waiterImpl },
  };
}

export function createInstanceMetadata(opts: {
  order: IdentitySource[];
  metadataUrl?: string;
  override?: { instanceId?: string; availabilityZone?: string };
  logger: Logger;
}): { identity(opts?: CallOptions): Promise<InstanceIdentity> } {
  const md: InstanceMetadata = createMetadata(opts);
  return md;
}
