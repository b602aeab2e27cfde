// The OpenStack module's public surface: plain data types and the interfaces
// the controller programs against. Nothing here knows of gRPC or CSI.
//
// Sizes are GiB, as Cinder counts them. Every call takes an optional
// AbortSignal: the caller's deadline bounds the HTTP requests, the retries
// and the waits.

import type { ProxySettings } from './proxy';
export interface CallOptions {
  signal?: AbortSignal;
  /** The caller's deadline (epoch ms), when known: retries that cannot finish before it are not started. */
  deadline?: number;
}

// ---------------------------------------------------------------- config

export type AuthPlugin = 'password' | 'v3applicationcredential' | 'token' | 'rackspace';
export type EndpointInterface = 'public' | 'internal' | 'admin';

export interface CloudCredentials {
  authUrl: string;
  authPlugin: AuthPlugin;
  /** '3' or '2'; taken from the URL (/v2.0, /v3) when absent. Rackspace is always v2.0. */
  identityApiVersion?: '2' | '3';
  username?: string;
  userId?: string;
  password?: string;
  /** Rackspace API key (auth_plugin rackspace). */
  apiKey?: string;
  projectName?: string;
  projectId?: string;
  userDomainName?: string;
  userDomainId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  /** Shorthand that fills both user and project domain when they are not given. */
  domainName?: string;
  domainId?: string;
  applicationCredentialId?: string;
  applicationCredentialName?: string;
  applicationCredentialSecret?: string;
  token?: string;
}

export interface TlsConfig {
  /** Verify the server certificate. Only an explicit `verify_peer: false` / `verify: false` turns it off. */
  verify: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /**
   * How this cloud's config turns verification on, in that config's own
   * keys (`verify_peer: true, with verify_ca_path naming the CA`), for the
   * warning when it is off: the config loader knows the syntax, this module
   * does not. A generic phrase when absent.
   */
  verifyHint?: string;
  /** The key that names the CA file in this cloud's config (`verify_ca_path`, `cacert`, `ca-file`, `OS_CACERT`), for the advice when a certificate is refused. */
  caKey?: string;
}

export interface CloudConfig {
  /** The name StorageClass secrets use to pick this cloud (`cloud` key); 'default' for the only one. */
  name: string;
  auth: CloudCredentials;
  region?: string;
  interface: EndpointInterface;
  tls: TlsConfig;
  /** Force a Cinder API ('auto' reads the version document). */
  blockStorageApiVersion: 'auto' | '3' | '2' | '1';
  /** Optional endpoint overrides, for clouds whose catalog is wrong. */
  endpointOverrides?: { volume?: string; compute?: string };
  /** Per-request timeout for one HTTP exchange, ms. */
  requestTimeoutMs: number;
  /** Outbound proxies (from https_proxy, http_proxy, no_proxy); absent: every request goes direct. */
  proxy?: ProxySettings;
}

// ---------------------------------------------------------------- Cinder

export interface VolumeAttachment {
  /** Cinder's attachment ID. */
  attachmentId: string;
  serverId: string;
  device?: string;
  hostName?: string;
  attachedAt?: string;
}

export interface Volume {
  id: string;
  name: string;
  description: string;
  /** GiB */
  size: number;
  status: string;
  availabilityZone: string;
  volumeType: string | null;
  multiattach: boolean;
  metadata: Record<string, string>;
  snapshotId: string | null;
  sourceVolumeId: string | null;
  backupId: string | null;
  attachments: VolumeAttachment[];
  createdAt: string;
  /** Set while a retype migrates the volume. */
  migrationStatus: string | null;
}

/** Where Cinder shows a volume's readonly flag: metadata key 'readonly', value 'True' or 'False' (Python's str(bool)). */
export const READONLY_METADATA_KEY = 'readonly';

/** Whether the volume's readonly flag is set, read from the metadata Cinder shows. */
export function readonlyFlag(volume: Pick<Volume, 'metadata'>): boolean {
  return volume.metadata[READONLY_METADATA_KEY] === 'True';
}

export interface CreateVolumeInput {
  name: string;
  size: number;
  description?: string;
  volumeType?: string;
  availabilityZone?: string;
  metadata?: Record<string, string>;
  snapshotId?: string;
  sourceVolumeId?: string;
  /** Needs Cinder v3 microversion 3.47; the module refuses it clearly on older clouds. */
  backupId?: string;
  multiattach?: boolean;
}

export interface VolumeQuery {
  name?: string;
  metadata?: Record<string, string>;
  status?: string;
  limit?: number;
  marker?: string;
  /** Most recently updated first (then newest), instead of Cinder's default newest first. */
  recentlyUpdatedFirst?: boolean;
}

export interface Page<T> {
  items: T[];
  /** Marker for the next page; absent on the last page. */
  next?: string;
  /**
   * The service may have cut the list with no way to go on (Cinder v1 has no
   * paging and stops at its osapi_max_limit): no next page does not mean
   * these are all the objects.
   */
  partial?: boolean;
}

export interface Snapshot {
  id: string;
  name: string;
  description: string;
  volumeId: string;
  size: number;
  status: string;
  createdAt: string;
  metadata: Record<string, string>;
}

export interface CreateSnapshotInput {
  volumeId: string;
  name: string;
  description?: string;
  /** Snapshot an attached volume. */
  force?: boolean;
  metadata?: Record<string, string>;
}

export interface SnapshotQuery {
  name?: string;
  volumeId?: string;
  status?: string;
  limit?: number;
  marker?: string;
  /** Most recently updated first (then newest), instead of Cinder's default newest first. */
  recentlyUpdatedFirst?: boolean;
}

export interface Backup {
  id: string;
  name: string;
  description: string;
  volumeId: string;
  size: number;
  status: string;
  createdAt: string;
  availabilityZone: string | null;
  snapshotId: string | null;
  /** Incremental backups build on this one: Cinder deletes it only after them. */
  hasDependentBackups: boolean;
}

export interface CreateBackupInput {
  volumeId: string;
  name: string;
  description?: string;
  force?: boolean;
  incremental?: boolean;
  snapshotId?: string;
  availabilityZone?: string;
  metadata?: Record<string, string>;
}

export interface BackupQuery {
  name?: string;
  volumeId?: string;
  limit?: number;
  marker?: string;
}

export interface VolumeType {
  id: string;
  name: string;
  isPublic: boolean;
  /** null: Cinder does not show this user the type's extra specs (before Xena they are for admins only). */
  extraSpecs: Record<string, string> | null;
}

/** One quota resource (gigabytes, volumes, gigabytes_<type>, per_volume_gigabytes, ...). -1 means unlimited. */
export interface QuotaUsage {
  limit: number;
  inUse: number;
  reserved: number;
}

export interface AvailabilityZone {
  name: string;
  available: boolean;
}

/**
 * One of Cinder's user messages (3.3): why an asynchronous action failed.
 * eventId reads VOLUME_<resource>_<action>_<detail>, e.g. VOLUME_VOLUME_001_003
 * ("schedule allocate volume: Could not find any available weighted backend.").
 */
export interface UserMessage {
  id: string;
  eventId: string;
  userMessage: string;
  resourceUuid: string;
  createdAt: string;
}

/** Cinder's event for "the scheduler found no backend with room" (action 001 schedule allocate volume, detail 003). */
export const NO_BACKEND_EVENT_ID = 'VOLUME_VOLUME_001_003';

/** What the negotiated Cinder API lets us do. */
export interface BlockStorageFeatures {
  apiVersion: '3' | '2' | '1';
  /** Negotiated microversion, e.g. '3.60'; null for v1/v2. */
  microversion: string | null;
  /** Extend an in-use volume (3.42). */
  inUseExtend: boolean;
  /** Create a volume from a backup (3.47). */
  volumeFromBackup: boolean;
  /** User messages: why an asynchronous action failed (3.3). */
  userMessages: boolean;
  /** Lists page with limit+marker (v2, v3). v1 stops at 1000 items. */
  paging: boolean;
  /** Filter volumes by metadata in the list call. */
  metadataFilter: boolean;
}

export interface BlockStorage {
  features(opts?: CallOptions): Promise<BlockStorageFeatures>;

  createVolume(input: CreateVolumeInput, opts?: CallOptions): Promise<Volume>;
  /**
   * Remove one attachment record (the attachments API, 3.27): false when this Cinder has no such
   * API. Throws OpenStackError 'not_found' for an attachment it does not have.
   */
  deleteAttachment(attachmentId: string, opts?: CallOptions): Promise<boolean>;
  /** Throws OpenStackError 'not_found'. */
  getVolume(id: string, opts?: CallOptions): Promise<Volume>;
  listVolumes(query: VolumeQuery, opts?: CallOptions): Promise<Page<Volume>>;
  deleteVolume(id: string, opts?: CallOptions): Promise<void>;
  extendVolume(id: string, newSizeGiB: number, opts?: CallOptions): Promise<void>;
  retypeVolume(id: string, volumeType: string, migrationPolicy: 'never' | 'on-demand', opts?: CallOptions): Promise<void>;
  setVolumeMetadata(id: string, metadata: Record<string, string>, opts?: CallOptions): Promise<void>;
  /**
   * Cinder's readonly flag (os-update_readonly_flag): attachments made while
   * it is set are read-only. Cinder changes it only while the volume is
   * 'available' (400 otherwise). It shows in the volume's metadata as
   * `readonly: 'True'|'False'` (READONLY_METADATA_KEY) once it was ever set.
   */
  setReadonlyFlag(id: string, readonly: boolean, opts?: CallOptions): Promise<void>;

  createSnapshot(input: CreateSnapshotInput, opts?: CallOptions): Promise<Snapshot>;
  getSnapshot(id: string, opts?: CallOptions): Promise<Snapshot>;
  listSnapshots(query: SnapshotQuery, opts?: CallOptions): Promise<Page<Snapshot>>;
  deleteSnapshot(id: string, opts?: CallOptions): Promise<void>;

  createBackup(input: CreateBackupInput, opts?: CallOptions): Promise<Backup>;
  getBackup(id: string, opts?: CallOptions): Promise<Backup>;
  listBackups(query: BackupQuery, opts?: CallOptions): Promise<Page<Backup>>;
  deleteBackup(id: string, opts?: CallOptions): Promise<void>;

  /**
   * The user messages about one volume, newest first (microversion 3.3;
   * an empty list where the API is older). Cinder keeps them for a while
   * (message_ttl), also after the volume is deleted.
   */
  listVolumeMessages(volumeId: string, opts?: CallOptions): Promise<UserMessage[]>;

  /** Quota limits with usage for the token's project, keyed by resource name. */
  getQuotaUsage(opts?: CallOptions): Promise<Record<string, QuotaUsage>>;
  listVolumeTypes(opts?: CallOptions): Promise<VolumeType[]>;
  /** The type Cinder gives a volume whose create names none; null when this Cinder has no default type. */
  getDefaultVolumeType(opts?: CallOptions): Promise<VolumeType | null>;
  listAvailabilityZones(opts?: CallOptions): Promise<AvailabilityZone[]>;
}

// ------------------------------------------------------------------ Nova

export interface Server {
  id: string;
  name: string;
  status: string;
  availabilityZone: string | null;
}

export interface ServerVolumeAttachment {
  /** Nova's attachment record ID (equals the volume ID before 2.89). */
  id: string;
  serverId: string;
  volumeId: string;
  device: string | null;
}

export interface Compute {
  /** Throws OpenStackError 'not_found' for an unknown or deleted server. */
  getServer(id: string, opts?: CallOptions): Promise<Server>;
  /**
   * The device is left to Nova. Uses 2.60 when the volume is multiattach, else 2.20 where Nova has it
   * (attach and detach then work on a shelved-offloaded server too); detachVolume likewise.
   */
  attachVolume(serverId: string, volumeId: string, opts?: CallOptions & { multiattach?: boolean }): Promise<ServerVolumeAttachment>;
  listVolumeAttachments(serverId: string, opts?: CallOptions): Promise<ServerVolumeAttachment[]>;
  /** Throws 'not_found' when the volume is not attached to that server. */
  getVolumeAttachment(serverId: string, volumeId: string, opts?: CallOptions): Promise<ServerVolumeAttachment>;
  detachVolume(serverId: string, volumeId: string, opts?: CallOptions): Promise<void>;
}

// -------------------------------------------------------------- identity

export interface IdentityHealth {
  /** A valid token is held right now, and its catalog serves Cinder and Nova (or their endpoints are configured). */
  ready: boolean;
  /** The last authentication error, for Probe and logs (never a secret). */
  lastError?: string;
  /** Why the token's catalog cannot serve Cinder or Nova as configured (region, interface); absent when it can. */
  catalogError?: string;
  projectId?: string;
  projectName?: string;
  tokenExpiresAt?: Date;
}

/** One authenticated cloud: what the controller holds per configured cloud. */
export interface Cloud {
  readonly name: string;
  readonly blockStorage: BlockStorage;
  readonly compute: Compute;
  /** The one waiter for state changes (volume polls are batched across waiters). */
  readonly waiter: CloudWaiter;
  /** Authenticate now (start-up and Probe readiness); single-flight with every other caller. */
  authenticate(opts?: CallOptions): Promise<void>;
  health(): IdentityHealth;
  /** Close keep-alive pools. */
  close(): Promise<void>;
}

// --------------------------------------------------------------- waiting

export interface WaitSpec {
  /** The states that end the wait successfully. */
  target: readonly string[];
  /** States that are progress; in order when `ordered` (going backwards is a failure). */
  transient: readonly string[];
  ordered?: boolean;
  /** Anything not in target or transient is a failure; these are named in messages as such. */
  /** Treat 'not_found' as success (deletion). */
  goneIsTarget?: boolean;
}

export interface WaitOptions<T> extends CallOptions {
  /** An extra condition on a target state: the new size, an attachment to this server. */
  until?: (item: T) => boolean;
  /** Why a look proves the change will not happen although its state is no failure (an attach Nova rolled back), or null. */
  failedIf?: (item: T) => string | null;
  /** The kind of change ('volume:create', 'volume:attach'), so the poll schedule learns how long it takes here. */
  kind?: string;
}

/** Waits for Cinder objects; null means gone (with goneIsTarget). Fails with OpenStackError 'state' or 'timeout', carrying lastState. */
export interface CloudWaiter {
  volume(id: string, spec: WaitSpec, opts?: WaitOptions<Volume>): Promise<Volume | null>;
  snapshot(id: string, spec: WaitSpec, opts?: WaitOptions<Snapshot>): Promise<Snapshot | null>;
  backup(id: string, spec: WaitSpec, opts?: WaitOptions<Backup>): Promise<Backup | null>;
}

// ------------------------------------------------------------- metadata

export interface InstanceIdentity {
  instanceId: string;
  availabilityZone: string | null;
  name: string | null;
  /** Where it came from: 'override', 'config-drive' or 'metadata-service'. */
  source: 'override' | 'config-drive' | 'metadata-service';
}
