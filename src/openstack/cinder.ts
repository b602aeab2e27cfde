// BlockStorage on Cinder v3 (microversions), v2 or v1. The API is detected
// once per cloud from the version document (again later if none could be
// read) and the negotiated microversion is sent on every v3 request; features that need a newer microversion are
// refused with a clear message rather than sent and misunderstood.
import type { Logger } from '../log';
import { isNotFound, OpenStackError } from './errors';
import type { HttpClient } from './http';
import type { AuthState, Identity } from './keystone';
import { VOLUME_SERVICE_TYPES } from './catalog';
import { detectCinderApi, type CinderApi } from './cinder-version';
import { nextMarker, toAvailabilityZone, toBackup, toQuotaUsage, toSnapshot, toUserMessage, toVolume, toVolumeType } from './cinder-mapping';
import { atLeast } from './microversion';
import { raceSignal } from './race-signal';
import { ServiceClient, type ServiceRequest } from './service';
import type {
  AvailabilityZone,
  Backup,
  BackupQuery,
  BlockStorage,
  BlockStorageFeatures,
  CallOptions,
  CloudConfig,
  CreateBackupInput,
  CreateSnapshotInput,
  CreateVolumeInput,
  Page,
  QuotaUsage,
  Snapshot,
  SnapshotQuery,
  UserMessage,
  Volume,
  VolumeQuery,
  VolumeType,
} from './types';

type Json = Record<string, unknown>;

/**
 * How long one detection of the Cinder API may take, retries included: long
 * enough for the retry policy to ride out a restart of the API behind a
 * load balancer, and no longer tied to whichever caller asked first.
 */
export const DETECTION_TIMEOUT_MS = 60_000;

/**
 * How long an API taken from the catalog URL (no version document could be
 * read) is used before the document is asked for again: a load balancer
 * fixed, or Cinder back behind it, gives the microversion features back
 * without a restart. Two GETs every five minutes cost nothing.
 */
export const REDETECT_AFTER_FALLBACK_MS = 5 * 60_000;

/** v1 has no paging: one list returns at most this many (Cinder's osapi_max_limit default). */
export const V1_LIST_CAP = 1000;

export class Cinder implements BlockStorage {
  private api: Promise<CinderApi> | null = null;
  /** While the API in use is a fallback: when to read the version document again. */
  private redetectAt: number | undefined;
  private redetecting = false;
  private fallbackWarned = false;
  private readonly svc: ServiceClient;

  constructor(
    private readonly config: CloudConfig,
    private readonly identity: Identity,
    private readonly http: HttpClient,
    private readonly log: Logger,
  ) {
    this.svc = new ServiceClient(identity, http, async (auth, opts) => (await this.detect(auth, opts)).baseUrl, log);
  }

  /**
   * Detected once and shared; a failed detection is forgotten, so the next
   * call detects again. The detection runs on its own clock: each caller
   * waits for it only until its own deadline, and a caller that gives up
   * does not fail the others waiting on it. A fallback (no version document
   * could be read) is used for REDETECT_AFTER_FALLBACK_MS, then detected
   * again in the background while calls go on with it.
   */
  private detect(auth: AuthState, opts: CallOptions): Promise<CinderApi> {
    if (this.api && this.redetectAt !== undefined && Date.now() >= this.redetectAt && !this.redetecting) this.redetect(auth);
    if (!this.api) {
      const api = this.detectNow(auth);
      this.api = api;
      api.catch(() => {
        if (this.api === api) this.api = null;
      });
    }
    return raceSignal(this.api, opts.signal, 'the Cinder version document');
  }

  private async detectNow(auth: AuthState): Promise<CinderApi> {
    const { url, serviceType } = this.identity.endpoint(auth, VOLUME_SERVICE_TYPES, this.config.endpointOverrides?.volume);
    const chosen = await detectCinderApi({
      http: this.http,
      catalogUrl: url,
      serviceType,
      projectId: auth.projectId,
      token: auth.token,
      forced: this.config.blockStorageApiVersion,
      signal: AbortSignal.timeout(DETECTION_TIMEOUT_MS),
      logger: this.log,
    });
    const { apiVersion, microversion, baseUrl, fallback } = chosen;
    if (fallback === undefined) {
      this.redetectAt = undefined;
      this.log.info({ apiVersion, microversion, baseUrl }, 'cinder API chosen');
      return chosen;
    }
    this.redetectAt = Date.now() + REDETECT_AFTER_FALLBACK_MS;
    // Loud once: every later fallback says the same, and is tried again as often.
    const level = this.fallbackWarned ? 'debug' : 'warn';
    this.fallbackWarned = true;
    const lost =
      microversion === '3.0'
        ? ' at its base microversion 3.0: extending in-use volumes (3.42), volumes from backups (3.47) and deleting attachment records (3.27) are off'
        : '';
    this.log[level](
      { apiVersion, microversion, baseUrl, why: fallback },
      `cinder's version document could not be read, so the driver uses the API the catalog URL names, v${apiVersion}${lost}; ` +
        `it reads the document again every ${REDETECT_AFTER_FALLBACK_MS / 60_000} minutes. Let GET on Cinder's root or its /v3/ through to Cinder (a load balancer or proxy that routes by path)`,
    );
    return chosen;
  }

  /** Detect again in the background; calls go on with the fallback until an answer comes (a failure keeps it). */
  private redetect(auth: AuthState): void {
    this.redetecting = true;
    const current = this.api;
    this.detectNow(auth)
      .then(
        (fresh) => {
          if (this.api === current) this.api = Promise.resolve(fresh);
        },
        (err: unknown) => {
          this.redetectAt = Date.now() + REDETECT_AFTER_FALLBACK_MS;
          this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'reading the cinder version document again failed; the fallback stays');
        },
      )
      .finally(() => {
        this.redetecting = false;
      });
  }

  private async current(opts: CallOptions): Promise<CinderApi> {
    return this.detect(await this.identity.auth(opts), opts);
  }

  private async call<T = Json>(api: CinderApi, req: ServiceRequest): Promise<T> {
    const headers = api.microversion ? { 'openstack-api-version': `volume ${api.microversion}` } : undefined;
    const res = await this.svc.request<T>({ ...req, headers: { ...headers, ...req.headers } });
    return res.body;
  }

  async features(opts: CallOptions = {}): Promise<BlockStorageFeatures> {
    const api = await this.current(opts);
    return {
      apiVersion: api.apiVersion,
      microversion: api.microversion,
      inUseExtend: atLeast(api.microversion, '3.42'),
      volumeFromBackup: atLeast(api.microversion, '3.47'),
      userMessages: atLeast(api.microversion, '3.3'),
      paging: api.apiVersion !== '1',
      metadataFilter: api.apiVersion !== '1',
    };
  }

  // ------------------------------------------------------------ volumes

  async createVolume(input: CreateVolumeInput, opts: CallOptions = {}): Promise<Volume> {
    const api = await this.current(opts);
    if (input.backupId && !atLeast(api.microversion, '3.47')) {
      throw new OpenStackError(
        'bad_request',
        `creating a volume from a backup needs Cinder microversion 3.47; this cloud offers ${api.microversion ?? `v${api.apiVersion}`}`,
      );
    }
    const v1 = api.apiVersion === '1';
    const volume: Json = {
      size: input.size,
      [v1 ? 'display_name' : 'name']: input.name,
      [v1 ? 'display_description' : 'description']: input.description,
      volume_type: input.volumeType,
      availability_zone: input.availabilityZone,
      metadata: input.metadata,
      snapshot_id: input.snapshotId,
      source_volid: input.sourceVolumeId,
      backup_id: input.backupId,
      multiattach: input.multiattach || undefined,
    };
    const body = await this.call<{ volume: Json }>(api, { ...opts, method: 'POST', path: '/volumes', json: { volume: dropUndefined(volume) } });
    return toVolume(body.volume);
  }

  async getVolume(id: string, opts: CallOptions = {}): Promise<Volume> {
    const api = await this.current(opts);
    const body = await this.call<{ volume: Json }>(api, { ...opts, method: 'GET', path: `/volumes/${enc(id)}` });
    return toVolume(body.volume);
  }

  async listVolumes(query: VolumeQuery, opts: CallOptions = {}): Promise<Page<Volume>> {
    const api = await this.current(opts);
    const v1 = api.apiVersion === '1';
    const params = new URLSearchParams();
    if (query.name !== undefined) params.set(v1 ? 'display_name' : 'name', query.name);
    if (query.status !== undefined) params.set('status', query.status);
    if (query.metadata && !v1) params.set('metadata', JSON.stringify(query.metadata));
    if (!v1) setPaging(params, query);
    const body = await this.call<{ volumes?: Json[]; volumes_links?: unknown }>(api, {
      ...opts,
      method: 'GET',
      path: `/volumes/detail${qs(params)}`,
    });
    let items = (body.volumes ?? []).map(toVolume);
    if (!v1) return { items, next: nextMarker(body.volumes_links) };
    if (query.metadata) items = items.filter((v) => matchesMetadata(v.metadata, query.metadata!));
    return { items: this.capV1(items, query.limit, 'volumes'), partial: true };
  }

  async deleteAttachment(attachmentId: string, opts: CallOptions = {}): Promise<boolean> {
    const api = await this.current(opts);
    if (!atLeast(api.microversion, '3.27')) return false;
    await this.call(api, { ...opts, method: 'DELETE', path: `/attachments/${enc(attachmentId)}` });
    return true;
  }

  async deleteVolume(id: string, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    await this.call(api, { ...opts, method: 'DELETE', path: `/volumes/${enc(id)}` });
  }

  async extendVolume(id: string, newSizeGiB: number, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    await this.action(api, id, { 'os-extend': { new_size: newSizeGiB } }, opts);
  }

  async retypeVolume(id: string, volumeType: string, migrationPolicy: 'never' | 'on-demand', opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    await this.action(api, id, { 'os-retype': { new_type: volumeType, migration_policy: migrationPolicy } }, opts);
  }

  async setVolumeMetadata(id: string, metadata: Record<string, string>, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    // POST merges keys into the volume's metadata: repeating it changes nothing, so it may be retried.
    await this.call(api, { ...opts, method: 'POST', path: `/volumes/${enc(id)}/metadata`, json: { metadata }, idempotent: true });
  }

  async setReadonlyFlag(id: string, readonly: boolean, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    // Setting the flag to a value is the same however often it is done, so it may be retried.
    await this.action(api, id, { 'os-update_readonly_flag': { readonly } }, { ...opts, idempotent: true });
  }

  private action(api: CinderApi, id: string, json: Json, opts: CallOptions & { idempotent?: boolean }): Promise<unknown> {
    return this.call(api, { ...opts, method: 'POST', path: `/volumes/${enc(id)}/action`, json });
  }

  // ---------------------------------------------------------- snapshots

  async createSnapshot(input: CreateSnapshotInput, opts: CallOptions = {}): Promise<Snapshot> {
    const api = await this.current(opts);
    const v1 = api.apiVersion === '1';
    const snapshot = dropUndefined({
      volume_id: input.volumeId,
      [v1 ? 'display_name' : 'name']: input.name,
      [v1 ? 'display_description' : 'description']: input.description,
      force: input.force,
      metadata: input.metadata,
    });
    const body = await this.call<{ snapshot: Json }>(api, { ...opts, method: 'POST', path: '/snapshots', json: { snapshot } });
    return toSnapshot(body.snapshot);
  }

  async getSnapshot(id: string, opts: CallOptions = {}): Promise<Snapshot> {
    const api = await this.current(opts);
    const body = await this.call<{ snapshot: Json }>(api, { ...opts, method: 'GET', path: `/snapshots/${enc(id)}` });
    return toSnapshot(body.snapshot);
  }

  async listSnapshots(query: SnapshotQuery, opts: CallOptions = {}): Promise<Page<Snapshot>> {
    const api = await this.current(opts);
    const v1 = api.apiVersion === '1';
    const params = new URLSearchParams();
    if (query.name !== undefined) params.set(v1 ? 'display_name' : 'name', query.name);
    if (query.volumeId !== undefined) params.set('volume_id', query.volumeId);
    if (query.status !== undefined) params.set('status', query.status);
    if (!v1) setPaging(params, query);
    const body = await this.call<{ snapshots?: Json[]; snapshots_links?: unknown }>(api, {
      ...opts,
      method: 'GET',
      path: `/snapshots/detail${qs(params)}`,
    });
    const items = (body.snapshots ?? []).map(toSnapshot);
    if (!v1) return { items, next: nextMarker(body.snapshots_links) };
    return { items: this.capV1(items, query.limit, 'snapshots'), partial: true };
  }

  async deleteSnapshot(id: string, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    await this.call(api, { ...opts, method: 'DELETE', path: `/snapshots/${enc(id)}` });
  }

  // ------------------------------------------------------------ backups

  async createBackup(input: CreateBackupInput, opts: CallOptions = {}): Promise<Backup> {
    const api = await this.current(opts);
    // Dropping the zone would put the copy wherever the backup service likes: refuse instead.
    if (input.availabilityZone !== undefined && !atLeast(api.microversion, '3.51')) {
      throw new OpenStackError(
        'config',
        `this Cinder (API ${api.microversion ?? `v${api.apiVersion}`}) cannot place a backup in availability zone '${input.availabilityZone}': that needs microversion 3.51`,
      );
    }
    const backup = dropUndefined({
      volume_id: input.volumeId,
      name: input.name,
      description: input.description,
      force: input.force,
      incremental: input.incremental,
      snapshot_id: input.snapshotId,
      availability_zone: input.availabilityZone,
      // Older microversions reject unknown keys, so send it only where it exists.
      metadata: atLeast(api.microversion, '3.43') ? input.metadata : undefined,
    });
    const body = await this.call<{ backup: Json }>(api, { ...opts, method: 'POST', path: '/backups', json: { backup } });
    return toBackup(body.backup);
  }

  async getBackup(id: string, opts: CallOptions = {}): Promise<Backup> {
    const api = await this.current(opts);
    const body = await this.call<{ backup: Json }>(api, { ...opts, method: 'GET', path: `/backups/${enc(id)}` });
    return toBackup(body.backup);
  }

  async listBackups(query: BackupQuery, opts: CallOptions = {}): Promise<Page<Backup>> {
    const api = await this.current(opts);
    const params = new URLSearchParams();
    if (query.name !== undefined) params.set('name', query.name);
    if (query.volumeId !== undefined) params.set('volume_id', query.volumeId);
    setPaging(params, query);
    const body = await this.call<{ backups?: Json[]; backups_links?: unknown }>(api, {
      ...opts,
      method: 'GET',
      path: `/backups/detail${qs(params)}`,
    });
    return { items: (body.backups ?? []).map(toBackup), next: nextMarker(body.backups_links) };
  }

  async deleteBackup(id: string, opts: CallOptions = {}): Promise<void> {
    const api = await this.current(opts);
    await this.call(api, { ...opts, method: 'DELETE', path: `/backups/${enc(id)}` });
  }

  // ------------------------------------------------------- the rest

  async listVolumeMessages(volumeId: string, opts: CallOptions = {}): Promise<UserMessage[]> {
    const api = await this.current(opts);
    if (!atLeast(api.microversion, '3.3')) return [];
    const params = new URLSearchParams({ resource_uuid: volumeId, sort: 'created_at:desc' });
    // The sort needs 3.5; before it the order is Cinder's, and the newest is found below.
    if (!atLeast(api.microversion, '3.5')) params.delete('sort');
    const body = await this.call<{ messages?: Json[] }>(api, { ...opts, method: 'GET', path: `/messages${qs(params)}` });
    // Filtered here as well: the filter is the server's to honour, and a message about another volume must never explain this one.
    return (body.messages ?? [])
      .map(toUserMessage)
      .filter((m) => m.resourceUuid === volumeId)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async getQuotaUsage(opts: CallOptions = {}): Promise<Record<string, QuotaUsage>> {
    const auth = await this.identity.auth(opts);
    const api = await this.detect(auth, opts);
    if (!auth.projectId) throw new OpenStackError('bad_request', 'quota usage needs a project-scoped token');
    const body = await this.call<{ quota_set: Json }>(api, {
      ...opts,
      method: 'GET',
      path: `/os-quota-sets/${enc(auth.projectId)}?usage=true`,
    });
    return toQuotaUsage(body.quota_set ?? {});
  }

  async listVolumeTypes(opts: CallOptions = {}): Promise<VolumeType[]> {
    const api = await this.current(opts);
    const body = await this.call<{ volume_types?: Json[] }>(api, { ...opts, method: 'GET', path: '/types' });
    return (body.volume_types ?? []).map(toVolumeType);
  }

  async getDefaultVolumeType(opts: CallOptions = {}): Promise<VolumeType | null> {
    const api = await this.current(opts);
    // v1 has no such call (it came with v2); there the answer is "not known".
    if (api.apiVersion === '1') return null;
    try {
      const body = await this.call<{ volume_type?: Json }>(api, { ...opts, method: 'GET', path: '/types/default' });
      return body.volume_type ? toVolumeType(body.volume_type) : null;
    } catch (err) {
      // A Cinder without a default type (default_volume_type unset, before Train's __DEFAULT__) says 404.
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async listAvailabilityZones(opts: CallOptions = {}): Promise<AvailabilityZone[]> {
    const api = await this.current(opts);
    const body = await this.call<{ availabilityZoneInfo?: Json[] }>(api, { ...opts, method: 'GET', path: '/os-availability-zone' });
    return (body.availabilityZoneInfo ?? []).map(toAvailabilityZone);
  }

  /** v1 returns everything in one list, at most V1_LIST_CAP: say so when the cap is hit. */
  private capV1<T>(items: T[], limit: number | undefined, what: string): T[] {
    if (items.length >= V1_LIST_CAP) {
      this.log.warn({ count: items.length }, `cinder v1 cannot page: ${what} beyond the first ${V1_LIST_CAP} are not listed`);
    }
    return limit !== undefined ? items.slice(0, limit) : items;
  }
}

function setPaging(params: URLSearchParams, q: { limit?: number; marker?: string; recentlyUpdatedFirst?: boolean }): void {
  if (q.limit !== undefined) params.set('limit', String(q.limit));
  if (q.marker !== undefined) params.set('marker', q.marker);
  // The sort parameter exists from v2 on (v1 has no paging, and so no order to ask for).
  if (q.recentlyUpdatedFirst) params.set('sort', 'updated_at:desc,created_at:desc');
}

function qs(params: URLSearchParams): string {
  const s = params.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

function dropUndefined(obj: Json): Json {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function matchesMetadata(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}
