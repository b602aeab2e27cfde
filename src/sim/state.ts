// The simulated cloud's resources and their state machines. Every change
// takes its configured duration (and, with the hypervisor, the real file and
// loop device work) before the resource reaches its next state. The HTTP
// modules validate requests and speak the APIs; this module only changes state.
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';
import { Collection, type Stored } from './collection';
import type { Hypervisor } from './hypervisor';
import { Quotas } from './quotas';
import type { SimDurations } from './types';

export interface AttachmentRecord {
  attachmentId: string;
  bdmUuid: string;
  volumeId: string;
  serverId: string;
  /** null for an attachment made while the server was shelved-offloaded: Nova picks the device at unshelve. */
  device: string | null;
  hostName: string;
  attachedAt: string | null;
  /** Cinder's attach_status for this attachment. */
  state: 'reserved' | 'attaching' | 'attached' | 'detaching';
  /** The access mode the connection was made with: 'ro' when the volume's readonly flag was 'True' at attach. */
  accessMode: 'rw' | 'ro';
}

/** How long the simulated scheduler takes to find that no backend fits. */
const SCHEDULER_MS = 20;

/** The simulator's one storage backend, as a volume type's volume_backend_name extra spec names it. */
export const SIM_BACKEND_NAME = 'simulator';

/** One of Cinder's user messages (GET /v3/{project}/messages). */
export interface MessageRecord {
  id: string;
  eventId: string;
  userMessage: string;
  messageLevel: 'ERROR';
  resourceType: string;
  resourceUuid: string;
  requestId: string;
  createdAt: string;
  guaranteedUntil: string;
}

export interface VolumeRecord extends Stored {
  /** null when the request named none, as Cinder prints it. */
  name: string | null;
  description: string | null;
  size: number;
  status: string;
  availabilityZone: string;
  volumeTypeId: string;
  multiattach: boolean;
  metadata: Record<string, string>;
  /**
   * Cinder's readonly flag, kept in the volume's admin metadata as Python's
   * str(bool): absent until os-update_readonly_flag first sets it.
   */
  readonlyFlag?: 'True' | 'False';
  snapshotId: string | null;
  sourceVolId: string | null;
  backupId: string | null;
  attachments: AttachmentRecord[];
  createdAt: string;
  updatedAt: string | null;
  projectId: string;
  userId: string;
}

export interface SnapshotRecord extends Stored {
  name: string | null;
  description: string | null;
  volumeId: string;
  volumeTypeId: string;
  size: number;
  status: string;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string | null;
  projectId: string;
  userId: string;
}

export interface BackupRecord extends Stored {
  name: string;
  description: string;
  volumeId: string;
  snapshotId: string | null;
  size: number;
  status: string;
  availabilityZone: string | null;
  /** The backup an incremental one builds on (Cinder's parent_id); null for a full backup. */
  parentId: string | null;
  metadata: Record<string, string>;
  /**
   * What Cinder's backup drivers store of the backed-up volume with the data
   * (BackupMetadataAPI.get), for a restore to put back: see restoreVolumeMeta.
   */
  volumeMetadata: Record<string, string>;
  volumeName: string | null;
  volumeDescription: string | null;
  createdAt: string;
  updatedAt: string | null;
  projectId: string;
  userId: string;
}

export interface VolumeTypeRecord {
  id: string;
  name: string;
  description: string | null;
  isPublic: boolean;
  extraSpecs: Record<string, string>;
}

export interface InstanceRecord {
  id: string;
  name: string;
  availabilityZone: string;
  deviceRoot: string;
  status: string;
  createdAt: string;
  /** By volume ID: Nova's block device mappings for attached volumes. */
  attachments: Map<string, AttachmentRecord>;
}

export const DEFAULT_DURATIONS: SimDurations = {
  create: 50, delete: 50, attach: 50, detach: 50, extend: 50, snapshot: 50, backup: 50, restore: 50, retype: 50,
};

/**
 * What a restore puts back on the target volume, as Cinder's backup drivers do
 * at its end (BackupMetadataAPI.put): the backed-up volume's metadata replaces
 * the target's (volume_metadata_update with delete=True), unless it had none
 * (then none was stored, and the target's is left as it is). Its name and
 * description are taken only by a target without a name of its own, or with
 * the 'restore_backup_<id>' one a restore without a volume gives.
 */
function restoreVolumeMeta(backup: BackupRecord, vol: VolumeRecord): void {
  if (Object.keys(backup.volumeMetadata).length > 0) vol.metadata = { ...backup.volumeMetadata };
  if (backup.volumeName && (!vol.name || vol.name.startsWith('restore_backup_'))) {
    vol.name = backup.volumeName;
    vol.description = backup.volumeDescription;
  }
}

/** Cinder's extra spec that makes a type's volumes multiattach. */
export function typeIsMultiattach(t: VolumeTypeRecord): boolean {
  return /^<is>\s*true$/i.test(t.extraSpecs.multiattach ?? '');
}

export function now(): string {
  // Cinder and Nova print microseconds and no zone: '2024-01-02T03:04:05.123000'. Records keep
  // this; Cinder's views show what its database keeps (cinder-views.ts, dbTime).
  return new Date().toISOString().replace('Z', '000');
}

export class CloudState {
  readonly volumes = new Collection<VolumeRecord>();
  readonly snapshots = new Collection<SnapshotRecord>();
  readonly backups = new Collection<BackupRecord>();
  readonly types = new Map<string, VolumeTypeRecord>();
  readonly instances = new Map<string, InstanceRecord>();
  readonly quotas: Quotas;
  durations: SimDurations;
  /**
   * The one storage backend's size in GiB, for the scheduler's capacity check;
   * null: room for anything. Volumes count with their size (thick provisioning).
   */
  backendCapacityGb: number | null = null;
  /** Cinder's user messages (GET /messages, 3.3), oldest first. */
  readonly messages: MessageRecord[] = [];
  /**
   * Injected failures still to come (control.failAttaches, failDetaches, failDeletes): the compute
   * host fails an attach or a detach at its end; the backend refuses a volume or snapshot delete as busy.
   */
  readonly failures = { attach: 0, detach: 0, delete: 0 };
  /** Volumes the scheduler is about to fail: they take no room on the backend. */
  private readonly unplaced = new Set<string>();
  private seq = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly work = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    readonly projectId: string,
    readonly userId: string,
    readonly availabilityZones: string[],
    types: Array<{ name: string; extraSpecs?: Record<string, string> }>,
    quotaLimits: Partial<Record<string, number>>,
    durations: Partial<SimDurations>,
    readonly hypervisor: Hypervisor,
    private readonly logger: Logger,
  ) {
    for (const t of types) {
      const id = randomUUID();
      this.types.set(id, { id, name: t.name, description: t.name === '__DEFAULT__' ? 'Default Volume Type' : null, isPublic: true, extraSpecs: { ...(t.extraSpecs ?? {}) } });
    }
    this.quotas = new Quotas(quotaLimits, types.map((t) => t.name));
    this.durations = { ...DEFAULT_DURATIONS, ...durations };
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** A type by ID or by name, as Cinder accepts either. */
  /** The type a volume gets when its create names none: Cinder's __DEFAULT__ (default_volume_type), else the first. */
  defaultType(): VolumeTypeRecord {
    return this.findType('__DEFAULT__') ?? [...this.types.values()][0];
  }

  findType(idOrName: string): VolumeTypeRecord | undefined {
    const byId = this.types.get(idOrName);
    if (byId) return byId;
    for (const t of this.types.values()) if (t.name === idOrName) return t;
    return undefined;
  }

  typeName(id: string): string {
    return this.types.get(id)?.name ?? id;
  }

  volumeQuotaDeltas(typeId: string, size: number, count = 1): Record<string, number> {
    const t = this.typeName(typeId);
    return { volumes: count, gigabytes: size, [`volumes_${t}`]: count, [`gigabytes_${t}`]: size };
  }

  snapshotQuotaDeltas(typeId: string, size: number, count = 1): Record<string, number> {
    const t = this.typeName(typeId);
    return { snapshots: count, gigabytes: size, [`snapshots_${t}`]: count, [`gigabytes_${t}`]: size };
  }

  // ------------------------------------------------------------- volumes

  /** Adds a volume in 'creating' (quota already checked) and schedules the rest. */
  createVolume(v: Omit<VolumeRecord, 'seq' | 'status' | 'attachments' | 'createdAt' | 'updatedAt' | 'projectId' | 'userId'>, initialStatus = 'creating'): VolumeRecord {
    const vol: VolumeRecord = { ...v, seq: this.nextSeq(), status: initialStatus, attachments: [], createdAt: now(), updatedAt: null, projectId: this.projectId, userId: this.userId };
    const fits = this.backendHasRoomFor(vol.size) && this.backendServesType(vol.volumeTypeId);
    this.volumes.add(vol);
    this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, vol.size));
    if (!fits) {
      // The scheduler's filters leave no backend: Cinder sets 'error' first, then
      // writes the user message (scheduler manager, _set_volume_state_and_notify).
      // Until then the volume holds no space: it will never be placed.
      this.unplaced.add(vol.id);
      this.after(SCHEDULER_MS, () => {
        this.unplaced.delete(vol.id);
        this.setVolumeStatus(vol, 'error');
        this.addMessage(vol.id, 'VOLUME', '001', 'schedule allocate volume', '003', 'Could not find any available weighted backend.');
      });
      return vol;
    }
    const hv = this.hypervisor;
    let copy: () => Promise<unknown> = () => Promise.resolve();
    let duration = this.durations.create;
    if (vol.snapshotId) copy = () => hv.copy({ kind: 'snapshots', id: vol.snapshotId! }, { kind: 'volumes', id: vol.id }, vol.size);
    else if (vol.sourceVolId) copy = () => hv.copy({ kind: 'volumes', id: vol.sourceVolId! }, { kind: 'volumes', id: vol.id }, vol.size);
    else if (vol.backupId) {
      const backup = this.backups.get(vol.backupId);
      if (backup) backup.status = 'restoring';
      duration += this.durations.restore;
      copy = () => hv.copy({ kind: 'backups', id: vol.backupId! }, { kind: 'volumes', id: vol.id }, vol.size);
    }
    this.change(duration, copy, () => {
      if (vol.backupId) {
        const backup = this.backups.get(vol.backupId);
        if (backup) restoreVolumeMeta(backup, vol);
        this.setBackupStatus(vol.backupId, 'available');
      }
      this.setVolumeStatus(vol, 'available');
    }, () => {
      if (vol.backupId) this.setBackupStatus(vol.backupId, 'available');
      this.setVolumeStatus(vol, 'error');
    });
    return vol;
  }

  /** The scheduler's CapabilitiesFilter: a type that names another backend (volume_backend_name) finds none here. */
  private backendServesType(typeId: string): boolean {
    const wanted = this.types.get(typeId)?.extraSpecs.volume_backend_name;
    return wanted === undefined || wanted === SIM_BACKEND_NAME;
  }

  /** Whether the backend can take another `sizeGb` next to every volume that holds space on it. */
  private backendHasRoomFor(sizeGb: number): boolean {
    if (this.backendCapacityGb === null) return true;
    let used = 0;
    for (const v of this.volumes.values()) if (v.status !== 'error' && !this.unplaced.has(v.id)) used += v.size;
    return used + sizeGb <= this.backendCapacityGb;
  }

  /** A user message as Cinder's message API writes it: event VOLUME_<resource>_<action>_<detail>, text "<action>: <detail>". */
  addMessage(resourceUuid: string, resourceType: string, actionId: string, action: string, detailId: string, detail: string): MessageRecord {
    const created = new Date();
    const m: MessageRecord = {
      id: randomUUID(),
      eventId: `VOLUME_${resourceType}_${actionId}_${detailId}`,
      userMessage: `${action}: ${detail}`,
      messageLevel: 'ERROR',
      resourceType,
      resourceUuid,
      requestId: `req-${randomUUID()}`,
      createdAt: created.toISOString().replace('Z', '000'),
      // Cinder keeps a message for message_ttl (30 days by default).
      guaranteedUntil: new Date(created.getTime() + 30 * 24 * 3600 * 1000).toISOString().replace('Z', '000'),
    };
    this.messages.push(m);
    return m;
  }

  /** Whether an injected failure of this kind is due now (and so used up). */
  private failsNow(kind: keyof CloudState['failures']): boolean {
    if (this.failures[kind] === 0) return false;
    this.failures[kind]--;
    return true;
  }

  deleteVolume(vol: VolumeRecord): void {
    this.setVolumeStatus(vol, 'deleting');
    // The backend refuses the delete as busy (Ceph RBD's ImageBusy): the volume manager puts the volume back.
    if (this.failsNow('delete')) {
      // VolumeIsBusy: back to 'available', without a user message.
      this.after(this.durations.delete, () => this.setVolumeStatus(vol, 'available'));
      return;
    }
    this.change(this.durations.delete, () => this.hypervisor.removeImage('volumes', vol.id), () => this.dropVolume(vol), () => this.setVolumeStatus(vol, 'error_deleting'));
  }

  private dropVolume(vol: VolumeRecord): void {
    if (!this.volumes.remove(vol.id)) return;
    this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, -vol.size, -1));
  }

  extendVolume(vol: VolumeRecord, newSize: number): void {
    const back = vol.status;
    const delta = newSize - vol.size;
    this.setVolumeStatus(vol, 'extending');
    this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, delta, 0));
    if (!this.backendHasRoomFor(delta)) {
      // The scheduler finds no backend for the new size: it rolls the quota back, puts the volume
      // back to its previous status and writes a message (scheduler manager, extend_volume).
      this.after(SCHEDULER_MS, () => {
        this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, -delta, 0));
        this.setVolumeStatus(vol, back);
        this.addMessage(vol.id, 'VOLUME', '007', 'extend volume', '003', 'Could not find any available weighted backend.');
      });
      return;
    }
    this.change(this.durations.extend, () => this.hypervisor.resize(vol.id, newSize), () => {
      vol.size = newSize;
      this.setVolumeStatus(vol, back);
    }, () => {
      this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, -delta, 0));
      this.setVolumeStatus(vol, 'error_extending');
    });
  }

  /**
   * A retype the scheduler cannot place (the new type names another backend)
   * fails quietly, as on a real Cinder (checked on Zed): the API said 202, the
   * scheduler logs "No valid backend was found", and the volume goes back to
   * its status with its old type and no user message.
   */
  retypeVolume(vol: VolumeRecord, type: VolumeTypeRecord): void {
    const back = vol.status;
    this.setVolumeStatus(vol, 'retyping');
    if (!this.backendServesType(type.id)) {
      this.after(this.durations.retype, () => {
        if (!this.stopped) this.setVolumeStatus(vol, back);
      });
      return;
    }
    this.change(this.durations.retype, () => Promise.resolve(), () => {
      this.quotas.apply(this.volumeQuotaDeltas(vol.volumeTypeId, -vol.size, -1));
      this.quotas.apply(this.volumeQuotaDeltas(type.id, vol.size, 1));
      vol.volumeTypeId = type.id;
      vol.multiattach = typeIsMultiattach(type);
      this.setVolumeStatus(vol, back);
    }, () => this.setVolumeStatus(vol, back));
  }

  /** os-update_readonly_flag: admin metadata only, so updated_at does not move (as in Cinder). */
  setReadonlyFlag(vol: VolumeRecord, readonly: boolean): void {
    vol.readonlyFlag = readonly ? 'True' : 'False';
  }

  /** The metadata Cinder shows: the user's, with the visible admin metadata (readonly) over it. */
  visibleMetadata(vol: VolumeRecord): Record<string, string> {
    return vol.readonlyFlag === undefined ? vol.metadata : { ...vol.metadata, readonly: vol.readonlyFlag };
  }

  setVolumeStatus(vol: VolumeRecord, status: string): void {
    vol.status = status;
    vol.updatedAt = now();
  }

  // ----------------------------------------------------------- snapshots

  createSnapshot(vol: VolumeRecord, name: string | null, description: string | null, metadata: Record<string, string>): SnapshotRecord {
    const snap: SnapshotRecord = {
      id: randomUUID(), seq: this.nextSeq(), name, description, volumeId: vol.id, volumeTypeId: vol.volumeTypeId, size: vol.size,
      status: 'creating', metadata, createdAt: now(), updatedAt: null, projectId: this.projectId, userId: this.userId,
    };
    this.snapshots.add(snap);
    this.quotas.apply(this.snapshotQuotaDeltas(snap.volumeTypeId, snap.size));
    this.change(this.durations.snapshot, () => this.hypervisor.copy({ kind: 'volumes', id: vol.id }, { kind: 'snapshots', id: snap.id }, snap.size),
      () => this.setSnapshotStatus(snap, 'available'), () => this.setSnapshotStatus(snap, 'error'));
    return snap;
  }

  deleteSnapshot(snap: SnapshotRecord): void {
    this.setSnapshotStatus(snap, 'deleting');
    if (this.failsNow('delete')) {
      // SnapshotIsBusy: back to 'available', with a message (action 010 delete snapshot, detail 015).
      this.after(this.durations.delete, () => {
        this.setSnapshotStatus(snap, 'available');
        this.addMessage(snap.id, 'VOLUME_SNAPSHOT', '010', 'delete snapshot', '015', 'Snapshot is busy.');
      });
      return;
    }
    this.change(this.durations.delete, () => this.hypervisor.removeImage('snapshots', snap.id), () => {
      if (this.snapshots.remove(snap.id)) this.quotas.apply(this.snapshotQuotaDeltas(snap.volumeTypeId, -snap.size, -1));
    }, () => this.setSnapshotStatus(snap, 'error_deleting'));
  }

  setSnapshotStatus(snap: SnapshotRecord, status: string): void {
    snap.status = status;
    snap.updatedAt = now();
  }

  // ------------------------------------------------------------- backups

  createBackup(vol: VolumeRecord, b: { name: string; description: string; parentId: string | null; snapshotId: string | null; availabilityZone: string | null; metadata: Record<string, string> }): BackupRecord {
    const backup: BackupRecord = {
      id: randomUUID(), seq: this.nextSeq(), ...b, volumeId: vol.id, size: vol.size, status: 'creating',
      volumeMetadata: { ...vol.metadata }, volumeName: vol.name, volumeDescription: vol.description,
      createdAt: now(), updatedAt: null, projectId: this.projectId, userId: this.userId,
    };
    this.backups.add(backup);
    this.quotas.apply({ backups: 1, backup_gigabytes: backup.size });
    // Cinder parks the volume in 'backing-up' and restores its previous status after.
    const back = vol.status;
    this.setVolumeStatus(vol, 'backing-up');
    const from = b.snapshotId ? { kind: 'snapshots' as const, id: b.snapshotId } : { kind: 'volumes' as const, id: vol.id };
    this.change(this.durations.backup, () => this.hypervisor.copy(from, { kind: 'backups', id: backup.id }, backup.size), () => {
      this.setBackupStatus(backup.id, 'available');
      this.setVolumeStatus(vol, back);
    }, () => {
      this.setBackupStatus(backup.id, 'error');
      this.setVolumeStatus(vol, back);
    });
    return backup;
  }

  /**
   * The backup an incremental backup of this volume builds on: Cinder's newest by data_timestamp
   * (its created_at here), whatever its status; undefined when the volume has none.
   */
  newestBackupOf(volumeId: string): BackupRecord | undefined {
    let newest: BackupRecord | undefined;
    for (const b of this.backups.values()) {
      if (b.volumeId === volumeId && (!newest || b.createdAt > newest.createdAt || (b.createdAt === newest.createdAt && b.seq > newest.seq))) newest = b;
    }
    return newest;
  }

  /** Whether incremental backups build on this one (Cinder's has_dependent_backups). */
  hasDependentBackups(backupId: string): boolean {
    for (const b of this.backups.values()) if (b.parentId === backupId) return true;
    return false;
  }

  deleteBackup(backup: BackupRecord): void {
    this.setBackupStatus(backup.id, 'deleting');
    this.change(this.durations.delete, () => this.hypervisor.removeImage('backups', backup.id), () => {
      if (this.backups.remove(backup.id)) this.quotas.apply({ backups: -1, backup_gigabytes: -backup.size });
    }, () => this.setBackupStatus(backup.id, 'error_deleting'));
  }

  /** Restore into an existing available volume: 'restoring-backup', then 'available'. */
  restoreBackup(backup: BackupRecord, vol: VolumeRecord): void {
    this.setBackupStatus(backup.id, 'restoring');
    this.setVolumeStatus(vol, 'restoring-backup');
    this.change(this.durations.restore, () => this.hypervisor.copy({ kind: 'backups', id: backup.id }, { kind: 'volumes', id: vol.id }, vol.size), () => {
      restoreVolumeMeta(backup, vol);
      this.setBackupStatus(backup.id, 'available');
      this.setVolumeStatus(vol, 'available');
    }, () => {
      this.setBackupStatus(backup.id, 'available');
      this.setVolumeStatus(vol, 'error_restoring');
    });
  }

  setBackupStatus(id: string, status: string): void {
    const b = this.backups.get(id);
    if (!b) return;
    b.status = status;
    b.updatedAt = now();
  }

  // --------------------------------------------------------- attachments

  /**
   * Nova's attach flow as Cinder sees it: the attachment is reserved at once
   * ('reserved', even for a multiattach volume already in use, as Cinder's
   * conditional update does), the compute host connects it ('attaching') and
   * completes it ('in-use').
   */
  attach(vol: VolumeRecord, inst: InstanceRecord, device: string): AttachmentRecord {
    const a: AttachmentRecord = {
      attachmentId: randomUUID(), bdmUuid: randomUUID(), volumeId: vol.id, serverId: inst.id, device,
      hostName: inst.name, attachedAt: null, state: 'reserved',
      // Cinder records attach_mode 'ro' for an attachment made while the flag is
      // set, and its connection info says access_mode 'ro' when the flag reads
      // 'True' (volume manager _parse_connection_options), which libvirt attaches
      // read-only. Caveat seen on Zed: the manager reads the flag from admin
      // metadata, loaded only for an admin context, so an attach under a project
      // member's token gets access_mode 'rw' although attach_mode is 'ro'.
      accessMode: vol.readonlyFlag === 'True' ? 'ro' : 'rw',
    };
    vol.attachments.push(a);
    inst.attachments.set(vol.id, a);
    this.setVolumeStatus(vol, 'reserved');
    const total = this.durations.attach;
    this.after(Math.floor(total / 2), () => {
      if (a.state !== 'reserved') return;
      a.state = 'attaching';
      if (vol.status === 'reserved') this.setVolumeStatus(vol, 'attaching');
    });
    const fails = this.failsNow('attach');
    const connect = fails
      ? () => new Promise<never>((_, reject) => this.after(total, () => reject(new Error(`sim: the compute host could not connect volume ${vol.id} (injected)`))))
      : () => this.hypervisor.attach(vol.id, vol.size, inst.id, inst.deviceRoot, a.accessMode === 'ro');
    this.change(total, connect, () => {
      a.state = 'attached';
      a.attachedAt = now();
      this.setVolumeStatus(vol, 'in-use');
    }, () => {
      // Nova rolls a failed attach back: the mapping and the attachment go away.
      this.dropAttachment(vol, inst, a);
    });
    return a;
  }

  /**
   * Nova's attach to a SHELVED_OFFLOADED server (2.20): no host to connect the disk to, so the
   * attachment is reserved and completed at once, without a device (Nova connects it at unshelve).
   */
  attachShelved(vol: VolumeRecord, inst: InstanceRecord): AttachmentRecord {
    const a: AttachmentRecord = {
      attachmentId: randomUUID(), bdmUuid: randomUUID(), volumeId: vol.id, serverId: inst.id, device: null,
      hostName: inst.name, attachedAt: null, state: 'attached', accessMode: vol.readonlyFlag === 'True' ? 'ro' : 'rw',
    };
    vol.attachments.push(a);
    inst.attachments.set(vol.id, a);
    this.setVolumeStatus(vol, 'in-use');
    return a;
  }

  /** Nova's detach from a SHELVED_OFFLOADED server (2.20): nothing is connected, so the attachment goes at once. */
  detachShelved(vol: VolumeRecord, inst: InstanceRecord, a: AttachmentRecord): void {
    this.dropAttachment(vol, inst, a);
  }

  /**
   * Nova's shelve and offload: the server leaves its host, which disconnects its volumes; Nova and
   * Cinder keep the attachments (and Nova the device names) for the unshelve.
   */
  async shelveOffload(inst: InstanceRecord): Promise<void> {
    const busy = [...inst.attachments.values()].find((a) => a.state !== 'attached');
    if (busy) throw new Error(`instance ${inst.id}: volume ${busy.volumeId} is ${busy.state}`);
    for (const a of inst.attachments.values()) await this.hypervisor.detach(a.volumeId, inst.id);
    inst.status = 'SHELVED_OFFLOADED';
  }

  detach(vol: VolumeRecord, inst: InstanceRecord, a: AttachmentRecord): void {
    a.state = 'detaching';
    this.setVolumeStatus(vol, 'detaching');
    if (this.failsNow('detach')) {
      // Nova's roll_detaching: the guest kept the disk, so the attachment stays and the volume is in-use again.
      this.after(this.durations.detach, () => {
        a.state = 'attached';
        this.setVolumeStatus(vol, 'in-use');
      });
      return;
    }
    const finish = (): void => this.dropAttachment(vol, inst, a);
    this.change(this.durations.detach, () => this.hypervisor.detach(vol.id, inst.id), finish, finish);
  }

  /**
   * Instance deleted: its volumes are detached at once, as Nova does on delete. With
   * `cinderKeeps`, Nova's call to Cinder fails and Nova goes on anyway (it logs "Ignoring
   * volume cleanup failure"): Cinder keeps listing attachments to a server that is gone.
   */
  async detachAll(inst: InstanceRecord, cinderKeeps = false): Promise<void> {
    for (const a of [...inst.attachments.values()]) {
      const vol = this.volumes.get(a.volumeId);
      await this.hypervisor.detach(a.volumeId, inst.id).catch((err: unknown) => this.logger.error({ err }, 'sim: detach on instance delete failed'));
      if (cinderKeeps) inst.attachments.delete(a.volumeId);
      else if (vol) this.dropAttachment(vol, inst, a);
    }
  }

  /** Cinder's attachment_delete: false when no volume has this attachment. */
  deleteAttachment(attachmentId: string): boolean {
    for (const vol of this.volumes.values()) {
      const a = vol.attachments.find((x) => x.attachmentId === attachmentId);
      if (!a) continue;
      const inst = this.instances.get(a.serverId);
      if (inst) void this.hypervisor.detach(vol.id, inst.id).catch((err: unknown) => this.logger.error({ err }, 'sim: detach on attachment delete failed'));
      this.dropAttachment(vol, inst, a);
      return true;
    }
    return false;
  }

  /**
   * An attachment removed: the volume takes the status of the furthest one
   * left, as Cinder's attachment_delete does (attached > attaching >
   * detaching > reserved), else 'available'.
   */
  private dropAttachment(vol: VolumeRecord, inst: InstanceRecord | undefined, a: AttachmentRecord): void {
    vol.attachments = vol.attachments.filter((x) => x !== a);
    if (inst?.attachments.get(vol.id) === a) inst.attachments.delete(vol.id);
    const left = new Set(vol.attachments.map((x) => x.state));
    const furthest = (['attached', 'attaching', 'detaching', 'reserved'] as const).find((st) => left.has(st));
    this.setVolumeStatus(vol, furthest === undefined ? 'available' : furthest === 'attached' ? 'in-use' : furthest);
  }

  // -------------------------------------------------------------- timing

  /**
   * One state change: waits its duration and the device work together, then
   * calls done (or failed when the work threw). Nothing runs after stop().
   */
  private change(durationMs: number, work: () => Promise<unknown>, done: () => void, failed: () => void): void {
    const wait = new Promise<void>((resolve) => this.after(durationMs, resolve));
    const p = Promise.all([wait, work()]).then(
      () => {
        if (!this.stopped) done();
      },
      (err: unknown) => {
        if (this.stopped) return;
        this.logger.error({ err }, 'sim: device work failed; the resource goes to its error state');
        failed();
      },
    );
    this.work.add(p);
    void p.finally(() => this.work.delete(p));
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  /** Cancels every pending change; waits for device work already started. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.race([Promise.allSettled([...this.work]), new Promise((r) => setTimeout(r, 100))]);
  }
}
