// The simulator's public types: the contract the OpenStack client, controller
// and driver tests program against. index.ts re-exports all of them.
import type { Logger } from '../log';
import type { CloudConfig } from '../openstack/types';

export interface SimInstanceSpec {
  id?: string;
  name: string;
  availabilityZone?: string;
}

export interface SimDurations {
  create: number;
  delete: number;
  attach: number;
  detach: number;
  extend: number;
  snapshot: number;
  backup: number;
  restore: number;
  retype: number;
}

export type CinderApiVersion = 'v1' | 'v2' | 'v3';

export interface SimOptions {
  /** Default '127.0.0.1'; only loopback addresses are accepted. */
  host?: string;
  /** 0 = pick a free port (default). */
  port?: number;
  /** HTTPS with a certificate signed by a CA made at start (exposed as caFile). */
  tls?: boolean;
  /** Default: a new temp dir, removed at stop(). */
  stateDir?: string;
  /** Added to every API response (not to the _sim control endpoints). */
  latencyMs?: number;
  durations?: Partial<SimDurations>;
  /** Which Cinder APIs the version document offers (default all three, v3 current). */
  cinderVersions?: CinderApiVersion[];
  /** Cinder v3 max microversion (default '3.70'). */
  maxMicroversion?: string;
  /** Nova max microversion (default '2.96'). */
  maxComputeMicroversion?: string;
  /** Emulate block devices with loop devices (default: when root and this machine can make loop devices). */
  hypervisor?: boolean;
  instances?: SimInstanceSpec[];
  availabilityZones?: string[];
  /** Quota limits by resource name; unset resources are unlimited (-1). */
  quotas?: Partial<Record<string, number>>;
  volumeTypes?: Array<{ name: string; extraSpecs?: Record<string, string> }>;
  /** false emulates a Cinder before Xena: a project member sees no extra_specs on volume types (default true). */
  showUserExtraSpecs?: boolean;
  /** Emulates cinder.conf allow_availability_zone_fallback = True: an unknown zone gets the default one (default false). */
  availabilityZoneFallback?: boolean;
  /**
   * Nova's [compute] max_disk_devices_to_attach: the disks a server may have, its root disk
   * counted (default 26, so 25 volumes: what the node plugin reports as its limit by default).
   */
  maxDiskDevices?: number;
  tokenLifetimeSeconds?: number;
  /**
   * The regions the catalog lists every service in, each with the same URLs
   * (default ['RegionOne']); the first is the one cloudConfig() and the
   * client files name. More than one is a multi-region cloud's catalog.
   */
  regions?: string[];
  /** Faults active from the start (e.g. read with loadFaultsFile). */
  faults?: SimFault[];
  logger?: Logger;
}

export interface SimInstance {
  id: string;
  name: string;
  availabilityZone: string;
  /** '<stateDir>/instances/<name>/dev': by-id links appear under disk/by-id/. */
  deviceRoot: string;
  /** GET <metadataUrl>/openstack/latest/meta_data.json */
  metadataUrl: string;
}

export interface SimCredentials {
  username: string;
  password: string;
  projectName: string;
  projectId: string;
  userDomainName: string;
  projectDomainName: string;
  apiKey: string;
  applicationCredentialId: string;
  applicationCredentialSecret: string;
  region: string;
  /** Extra (not in the contract): for ID-based and app-credential-by-name auth tests. */
  userId: string;
  applicationCredentialName: string;
}

export type SimService = 'identity' | 'volume' | 'compute' | 'metadata';

export interface SimFault {
  service?: SimService;
  method?: string;
  /** RegExp source matched against the request path (no query string). */
  pathPattern?: string;
  status?: number;
  body?: unknown;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  reset?: boolean;
  /** Act on the request, then destroy the socket instead of answering: the change is made, its answer lost (a proxy timing out). */
  resetAfter?: boolean;
  /** Default 1; Infinity = until cleared. */
  times?: number;
}

/** What the simulated cloud holds, as plain data: what tests check after crashes and races. */
export interface SimInventory {
  volumes: Array<{
    id: string;
    name: string | null;
    status: string;
    size: number;
    /** The type's name. */
    volumeType: string;
    snapshotId: string | null;
    sourceVolId: string | null;
    /** As Cinder shows it (created_at). */
    createdAt: string;
    /** Cinder's attachments of the volume, with their attach_status. */
    attachments: Array<{ serverId: string; state: string }>;
  }>;
  snapshots: Array<{ id: string; name: string | null; status: string; volumeId: string }>;
  /** Nova's side: each server's block device mappings, by volume ID. */
  servers: Array<{ id: string; volumeIds: string[] }>;
}

export interface SimControl {
  addFault(f: SimFault): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  setDurations(d: Partial<SimDurations>): void;
  /** Every issued token becomes invalid (401 from the services; Keystone's token method answers 404 for them). */
  expireTokens(): void;
  /** Keystone deletes the application credential (as on a rotation) and revokes its tokens: authenticating with its ID answers 404, by name 401. */
  deleteApplicationCredential(): void;
  /** Requests per route ('GET /volume/v3/{project}/volumes/detail'; a list narrowed by a search parameter such as ?name= under '... (filtered)') plus 'identity.auth' per successful authentication. */
  counters(): Record<string, number>;
  resetCounters(): void;
  volume(id: string): unknown | undefined;
  /** The simulator's own record, with its times to the millisecond (Cinder's views show whole seconds). */
  snapshot(id: string): unknown | undefined;
  /** Every volume, snapshot and attachment, Cinder's and Nova's, as they are now. */
  inventory(): SimInventory;
  setVolumeStatus(id: string, status: string): void;
  setBackupStatus(id: string, status: string): void;
  setSnapshotStatus(id: string, status: string): void;
  /**
   * The compute host fails the next `count` attaches when they would finish
   * (os-brick or libvirt could not connect the disk): Nova rolls each back,
   * deleting the attachment, and the volume returns to its earlier status.
   */
  failAttaches(count: number): void;
  /** The compute host fails the next `count` detaches (the guest keeps the disk): Nova rolls each back, and the volume is in-use again with its attachment. */
  failDetaches(count: number): void;
  /** The backend refuses the next `count` deletes of volumes or snapshots as busy (Ceph RBD's ImageBusy): Cinder puts each back to 'available'. */
  failDeletes(count: number): void;
  /** The backend's size in GiB for the scheduler's capacity check (null: room for anything, the default). */
  setBackendCapacity(gb: number | null): void;
  addInstance(spec: SimInstanceSpec): Promise<SimInstance>;
  /**
   * Nova deletes the server and detaches its volumes. `cinderKeepsAttachments`: Nova's call to
   * Cinder fails and Nova ignores it, so Cinder still lists attachments to the server that is gone.
   */
  deleteInstance(id: string, opts?: { cinderKeepsAttachments?: boolean }): Promise<void>;
  /**
   * Nova shelves the server and offloads it (status SHELVED_OFFLOADED): its volumes are disconnected, their
   * attachments kept. Nova then attaches and detaches volumes only from compute microversion 2.20 (409 below).
   */
  shelveOffloadInstance(id: string): Promise<void>;
}

export interface Simulator {
  url: string;
  /** Keystone v3: `${url}/identity/v3`; v2.0 is `${url}/identity/v2.0`. */
  authUrl: string;
  caFile?: string;
  /** Extra (not in the contract): where images, instance device roots and client files live. */
  stateDir: string;
  hypervisor: boolean;
  instances: SimInstance[];
  credentials: SimCredentials;
  cloudConfig(overrides?: Partial<CloudConfig>): CloudConfig;
  control: SimControl;
  writeClientFiles(dir: string): Promise<void>;
  /** Stops serving and detaches every emulated disk; removes the state it made unless a disk is still mounted. */
  stop(): Promise<SimStopped>;
}

export interface SimStopped {
  /** Mounts of emulated disks left on this machine (their images are kept; unmount, then remove the state dir). */
  stillMounted: string[];
}
