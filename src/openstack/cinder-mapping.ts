// Cinder JSON (v1, v2 and v3 shapes) to the module's typed objects. v1 names
// things display_name/display_description; later versions name/description.
import type { Backup, Snapshot, Volume, VolumeAttachment, VolumeType, AvailabilityZone, QuotaUsage, UserMessage } from './types';

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strOrNull = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, val] of Object.entries(v as Json)) out[k] = String(val);
  return out;
}

function toAttachment(a: Json): VolumeAttachment {
  return {
    attachmentId: str(a.attachment_id ?? a.id),
    serverId: str(a.server_id),
    device: strOrNull(a.device) ?? undefined,
    hostName: strOrNull(a.host_name) ?? undefined,
    attachedAt: strOrNull(a.attached_at) ?? undefined,
  };
}

export function toVolume(v: Json): Volume {
  return {
    id: str(v.id),
    name: str(v.name ?? v.display_name),
    description: str(v.description ?? v.display_description),
    size: num(v.size),
    status: str(v.status),
    availabilityZone: str(v.availability_zone),
    volumeType: strOrNull(v.volume_type),
    multiattach: v.multiattach === true || v.multiattach === 'true' || v.multiattach === 'True',
    metadata: stringMap(v.metadata),
    snapshotId: strOrNull(v.snapshot_id),
    sourceVolumeId: strOrNull(v.source_volid),
    backupId: strOrNull(v.backup_id),
    attachments: Array.isArray(v.attachments) ? (v.attachments as Json[]).map(toAttachment) : [],
    createdAt: str(v.created_at),
    migrationStatus: strOrNull(v.migration_status ?? v['os-vol-mig-status-attr:migstat']),
  };
}

export function toSnapshot(s: Json): Snapshot {
  return {
    id: str(s.id),
    name: str(s.name ?? s.display_name),
    description: str(s.description ?? s.display_description),
    volumeId: str(s.volume_id),
    size: num(s.size),
    status: str(s.status),
    createdAt: str(s.created_at),
    metadata: stringMap(s.metadata),
  };
}

export function toBackup(b: Json): Backup {
  return {
    id: str(b.id),
    name: str(b.name),
    description: str(b.description),
    volumeId: str(b.volume_id),
    size: num(b.size),
    status: str(b.status),
    createdAt: str(b.created_at),
    availabilityZone: strOrNull(b.availability_zone),
    snapshotId: strOrNull(b.snapshot_id),
    hasDependentBackups: b.has_dependent_backups === true,
  };
}

export function toVolumeType(t: Json): VolumeType {
  const isPublic = t.is_public ?? t['os-volume-type-access:is_public'] ?? true;
  return { id: str(t.id), name: str(t.name), isPublic: isPublic === true || isPublic === 'true', extraSpecs: t.extra_specs == null ? null : stringMap(t.extra_specs) };
}

export function toAvailabilityZone(z: Json): AvailabilityZone {
  const state = (z.zoneState ?? {}) as Json;
  return { name: str(z.zoneName), available: state.available === true };
}

export function toUserMessage(m: Json): UserMessage {
  return { id: str(m.id), eventId: str(m.event_id), userMessage: str(m.user_message), resourceUuid: str(m.resource_uuid), createdAt: str(m.created_at) };
}

/** os-quota-sets?usage=true: every resource whose value is {limit, in_use, reserved}. */
export function toQuotaUsage(quotaSet: Json): Record<string, QuotaUsage> {
  const out: Record<string, QuotaUsage> = {};
  for (const [k, v] of Object.entries(quotaSet)) {
    if (!v || typeof v !== 'object' || !('limit' in (v as Json))) continue;
    const q = v as Json;
    out[k] = { limit: num(q.limit), inUse: num(q.in_use), reserved: num(q.reserved) };
  }
  return out;
}

/** The marker of the next page from a `*_links` list, if the service gave one. */
export function nextMarker(links: unknown): string | undefined {
  if (!Array.isArray(links)) return undefined;
  const next = (links as Json[]).find((l) => l.rel === 'next');
  if (!next || typeof next.href !== 'string') return undefined;
  try {
    return new URL(next.href).searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}
