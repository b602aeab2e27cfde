// How Cinder prints its resources, per API version and microversion.
import { randomUUID } from 'node:crypto';
import { atLeast, type Microversion } from './microversion';
import type { BackupRecord, CloudState, MessageRecord, SnapshotRecord, VolumeRecord, VolumeTypeRecord } from './state';
import type { CinderApiVersion } from './types';

export interface ViewContext {
  api: CinderApiVersion;
  mv: Microversion | null;
  /** `${base}/volume/<api>/<project>` */
  root: string;
  /** `${base}/volume/<project>` for bookmark links */
  bookmarkRoot: string;
  state: CloudState;
}

/**
 * A time as Cinder shows it once read back from its database: whole seconds
 * (MySQL DATETIME), '2024-01-02T03:04:05.000000', as the Zed testbed shows on
 * every GET and list. Only the create's own answer, built from the object in
 * memory, has the microseconds. So objects made in one second tie on created_at.
 */
export function dbTime<T extends string | null>(t: T): T {
  return (t === null ? t : t.replace(/\.\d+$/, '.000000')) as T;
}

function links(v: ViewContext, collection: string, id: string): unknown[] {
  return [
    { href: `${v.root}/${collection}/${id}`, rel: 'self' },
    { href: `${v.bookmarkRoot}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

export function volumeSummary(v: ViewContext, vol: VolumeRecord): unknown {
  if (v.api === 'v1') return volumeDetail(v, vol);
  return { id: vol.id, links: links(v, 'volumes', vol.id), name: vol.name };
}

/** The one cinder-volume service every volume is scheduled to (service_uuid from 3.48). */
const SERVICE_UUID = randomUUID();

/**
 * `created`: the answer to the create request, which Cinder's API extensions
 * (os-vol-tenant-attr, os-extended-snapshot-attributes) do not extend; they
 * add their fields to show and list only.
 */
export function volumeDetail(v: ViewContext, vol: VolumeRecord, created = false): Record<string, unknown> {
  const shown = created ? <T>(t: T) => t : dbTime;
  // Cinder lists an attachment on the volume once it is complete (attach_status 'attached'), and
  // through Nova's detach: begin_detaching changes the volume's status only, and the attachment goes
  // when Nova deletes it at the end (volume manager _do_attachment_delete -> volume_detached).
  const attached = vol.attachments.filter((a) => a.state === 'attached' || a.state === 'detaching');
  if (v.api === 'v1') {
    return {
      id: vol.id,
      display_name: vol.name,
      display_description: vol.description,
      size: vol.size,
      status: vol.status,
      availability_zone: vol.availabilityZone,
      created_at: shown(vol.createdAt),
      volume_type: v.state.typeName(vol.volumeTypeId),
      metadata: v.state.visibleMetadata(vol),
      snapshot_id: vol.snapshotId,
      source_volid: vol.sourceVolId,
      bootable: 'false',
      encrypted: false,
      multiattach: vol.multiattach ? 'true' : 'false',
      attachments: attached.map((a) => ({ id: vol.id, volume_id: vol.id, server_id: a.serverId, host_name: null, device: a.device })),
    };
  }
  const out: Record<string, unknown> = {
    id: vol.id,
    name: vol.name,
    description: vol.description,
    size: vol.size,
    status: vol.status,
    availability_zone: vol.availabilityZone,
    created_at: shown(vol.createdAt),
    updated_at: shown(vol.updatedAt),
    volume_type: v.state.typeName(vol.volumeTypeId),
    multiattach: vol.multiattach,
    metadata: v.state.visibleMetadata(vol),
    snapshot_id: vol.snapshotId,
    source_volid: vol.sourceVolId,
    bootable: 'false',
    encrypted: false,
    replication_status: null,
    consistencygroup_id: null,
    user_id: vol.userId,
    links: links(v, 'volumes', vol.id),
    attachments: attached.map((a) => ({
      id: vol.id,
      attachment_id: a.attachmentId,
      volume_id: vol.id,
      server_id: a.serverId,
      // Nova's attachments (the 3.27+ attachment API) leave attached_host unset.
      host_name: null,
      device: a.device,
      attached_at: a.attachedAt,
    })),
  };
  if (!created) out['os-vol-tenant-attr:tenant_id'] = vol.projectId;
  if (atLeast(v.mv, '3.13')) out.group_id = null;
  if (atLeast(v.mv, '3.48')) {
    out.shared_targets = false;
    // Set once the scheduler has picked the backend, i.e. after 'creating'.
    out.service_uuid = vol.status === 'creating' ? null : SERVICE_UUID;
  }
  if (atLeast(v.mv, '3.63')) out.volume_type_id = vol.volumeTypeId;
  if (atLeast(v.mv, '3.65')) out.consumes_quota = true;
  return out;
}

export function snapshotView(v: ViewContext, s: SnapshotRecord, created = false): Record<string, unknown> {
  const shown = created ? <T>(t: T) => t : dbTime;
  if (v.api === 'v1') {
    return { id: s.id, display_name: s.name, display_description: s.description, volume_id: s.volumeId, size: s.size, status: s.status, created_at: shown(s.createdAt), metadata: s.metadata };
  }
  const out: Record<string, unknown> = {
    id: s.id,
    name: s.name,
    description: s.description,
    volume_id: s.volumeId,
    size: s.size,
    status: s.status,
    created_at: shown(s.createdAt),
    updated_at: shown(s.updatedAt),
    metadata: s.metadata,
  };
  if (!created) {
    out['os-extended-snapshot-attributes:progress'] = s.status === 'available' ? '100%' : '0%';
    out['os-extended-snapshot-attributes:project_id'] = s.projectId;
  }
  if (atLeast(v.mv, '3.14')) out.group_snapshot_id = null;
  if (atLeast(v.mv, '3.41')) out.user_id = s.userId;
  if (atLeast(v.mv, '3.65')) out.consumes_quota = true;
  return out;
}

export function backupSummary(v: ViewContext, b: BackupRecord): unknown {
  return { id: b.id, links: links(v, 'backups', b.id), name: b.name };
}

export function backupDetail(v: ViewContext, b: BackupRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: b.id,
    name: b.name,
    description: b.description,
    volume_id: b.volumeId,
    snapshot_id: b.snapshotId,
    size: b.size,
    status: b.status,
    availability_zone: b.availabilityZone,
    container: b.status === 'available' ? 'volumebackups' : null,
    created_at: dbTime(b.createdAt),
    updated_at: dbTime(b.updatedAt),
    data_timestamp: dbTime(b.createdAt),
    fail_reason: null,
    object_count: 0,
    is_incremental: b.parentId !== null,
    has_dependent_backups: v.state.hasDependentBackups(b.id),
    links: links(v, 'backups', b.id),
  };
  if (atLeast(v.mv, '3.43')) out.metadata = b.metadata;
  if (atLeast(v.mv, '3.56')) out.user_id = b.userId;
  return out;
}

/** Extra specs Cinder shows a project member since Xena (cinder/api/v3/types: the user-visible ones). */
const USER_VISIBLE_EXTRA_SPECS = ['multiattach', 'RESKEY:availability_zones', 'replication_enabled'];

/**
 * A volume type as a project member sees it (the sim's user is one): since
 * Xena with the user-visible extra specs only; before Xena
 * (`showUserExtraSpecs` false) with no extra_specs key at all, as Cinder then
 * shows them to admins only. qos_specs_id is for admins only.
 */
export function typeView(t: VolumeTypeRecord, showUserExtraSpecs = true): unknown {
  const view: Record<string, unknown> = {
    id: t.id,
    name: t.name,
    description: t.description,
    is_public: t.isPublic,
    'os-volume-type-access:is_public': t.isPublic,
  };
  if (showUserExtraSpecs) {
    view.extra_specs = Object.fromEntries(Object.entries(t.extraSpecs).filter(([k]) => USER_VISIBLE_EXTRA_SPECS.includes(k)));
  }
  return view;
}

/** A user message as cinder/api/v3/views/messages.py shows it (guaranteed_until is the record's expiry). */
export function messageView(v: ViewContext, m: MessageRecord): Record<string, unknown> {
  return {
    id: m.id,
    event_id: m.eventId,
    user_message: m.userMessage,
    message_level: m.messageLevel,
    created_at: m.createdAt,
    guaranteed_until: m.guaranteedUntil,
    request_id: m.requestId,
    links: links(v, 'messages', m.id),
    resource_type: m.resourceType,
    resource_uuid: m.resourceUuid,
  };
}
