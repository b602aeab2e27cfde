// Cinder quotas with usage. Usage is kept as running totals so a quota read
// or a create does not walk every volume.

/** Resources every project has, as Cinder names them. Per-type ones are added per volume type. */
export const BASE_RESOURCES = ['volumes', 'gigabytes', 'snapshots', 'backups', 'backup_gigabytes', 'groups', 'per_volume_gigabytes'] as const;

export interface QuotaExceeded {
  /** The Cinder exception class name, which Cinder puts in front of the message. */
  exception: string;
  message: string;
}

export class Quotas {
  private readonly limits = new Map<string, number>();
  private readonly usage = new Map<string, number>();

  constructor(limits: Partial<Record<string, number>>, typeNames: readonly string[]) {
    for (const r of this.resourceNames(typeNames)) this.limits.set(r, -1);
    for (const [k, v] of Object.entries(limits)) if (v !== undefined) this.limits.set(k, v);
  }

  resourceNames(typeNames: readonly string[]): string[] {
    return [...BASE_RESOURCES, ...typeNames.flatMap((t) => [`volumes_${t}`, `gigabytes_${t}`, `snapshots_${t}`])];
  }

  addType(typeName: string): void {
    for (const r of [`volumes_${typeName}`, `gigabytes_${typeName}`, `snapshots_${typeName}`]) {
      if (!this.limits.has(r)) this.limits.set(r, -1);
    }
  }

  limit(resource: string): number {
    return this.limits.get(resource) ?? -1;
  }

  inUse(resource: string): number {
    return this.usage.get(resource) ?? 0;
  }

  entries(): Array<[string, { limit: number; in_use: number; reserved: number }]> {
    return [...this.limits.keys()].map((r) => [r, { limit: this.limit(r), in_use: r === 'per_volume_gigabytes' ? 0 : this.inUse(r), reserved: 0 }]);
  }

  apply(deltas: Record<string, number>): void {
    for (const [r, d] of Object.entries(deltas)) this.usage.set(r, Math.max(0, this.inUse(r) + d));
  }

  /** The first quota the deltas would break, in Cinder's words; null when they fit. */
  check(deltas: Record<string, number>, volumeSize?: number): QuotaExceeded | null {
    const perVolume = this.limit('per_volume_gigabytes');
    if (volumeSize !== undefined && perVolume >= 0 && volumeSize > perVolume) {
      return { exception: 'VolumeSizeExceedsLimit', message: `Requested volume size ${volumeSize}G is larger than maximum allowed limit ${perVolume}G.` };
    }
    for (const [r, d] of Object.entries(deltas)) {
      const limit = this.limit(r);
      if (d <= 0 || limit < 0 || this.inUse(r) + d <= limit) continue;
      return describe(r, d, limit, this.inUse(r));
    }
    return null;
  }
}

function describe(resource: string, requested: number, limit: number, consumed: number): QuotaExceeded {
  if (resource === 'backup_gigabytes') {
    return { exception: 'VolumeBackupSizeExceedsAvailableQuota', message: `Requested backup exceeds allowed Backup gigabytes quota. Requested ${requested}G, quota is ${limit}G and ${consumed}G has been consumed.` };
  }
  if (resource.startsWith('gigabytes')) {
    return { exception: 'VolumeSizeExceedsAvailableQuota', message: `Requested volume or snapshot exceeds allowed ${resource} quota. Requested ${requested}G, quota is ${limit}G and ${consumed}G has been consumed.` };
  }
  if (resource.startsWith('snapshots')) {
    return { exception: 'SnapshotLimitExceeded', message: `Maximum number of snapshots allowed (${limit}) exceeded` };
  }
  if (resource === 'backups') {
    return { exception: 'BackupLimitExceeded', message: `Maximum number of backups allowed (${limit}) exceeded` };
  }
  return { exception: 'VolumeLimitExceeded', message: `Maximum number of volumes allowed (${limit}) exceeded for quota '${resource}'.` };
}
