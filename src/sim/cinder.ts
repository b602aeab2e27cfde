// Cinder block storage: the version document, and v3 (with microversions), v2
// and v1 (display_name, no paging) on the same state. Request checks and
// error messages follow Cinder's own, so clients meet the real codes here.
import { randomUUID } from 'node:crypto';
import { httpError, objectField, SimHttpError, str, type Reply, type RequestContext, type Route } from './http';
import { listPage, metadataMatches, parseMetadataFilter } from './listing';
import { atLeast, negotiate, type Microversion } from './microversion';
import { backupDetail, backupSummary, messageView, snapshotView, typeView, volumeDetail, volumeSummary, type ViewContext } from './cinder-views';
import type { Collection } from './collection';
import { typeIsMultiattach, type BackupRecord, type CloudState, type MessageRecord, type SnapshotRecord, type VolumeRecord } from './state';
import type { QuotaExceeded } from './quotas';
import type { CinderApiVersion } from './types';

export interface CinderOptions {
  versions: CinderApiVersion[];
  maxMicroversion: string;
  /** false: a Cinder before Xena, which shows volume types' extra specs to admins only. */
  showUserExtraSpecs: boolean;
  /** cinder.conf allow_availability_zone_fallback: an unknown zone gets the default one instead of a 400. */
  availabilityZoneFallback: boolean;
  baseUrl: () => string;
}

const DELETABLE = new Set(['available', 'error', 'error_restoring', 'error_extending', 'error_managing']);
const DELETE_REFUSED =
  'Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.';

const RETYPE_REFUSED =
  'Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.';

type Api = { api: CinderApiVersion; mv: Microversion | null; view: ViewContext; ctx: RequestContext };

function bad(message: string): never {
  throw httpError('volume', 400, message);
}

/**
 * A route that exists from microversion `min` on: older requests get Cinder's
 * 404 for VersionNotFoundForAPIMethod, a plain HTTPNotFound fault (the Zed
 * testbed, GET /messages at 3.0), so itemNotFound with webob's message.
 */
function requireMicroversion(a: Api, min: string): void {
  if (!atLeast(a.mv, min)) notFound('The resource could not be found.');
}

function notFound(message: string): never {
  throw httpError('volume', 404, message);
}

function overQuota(q: QuotaExceeded): never {
  // Cinder's FaultWrapper prefixes safe exceptions with their class name; QuotaError carries Retry-After: 0.
  throw new SimHttpError({
    status: 413,
    body: { overLimit: { code: 413, message: `${q.exception}: ${q.message}`, retryAfter: '0' } },
    headers: { 'retry-after': '0' },
  });
}

function parseBool(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (['true', '1', 't', 'yes', 'y', 'on'].includes(s)) return true;
  if (['false', '0', 'f', 'no', 'n', 'off'].includes(s)) return false;
  return bad(`Invalid input received: ${field} must be a boolean: ${String(v)}`);
}

/** Cinder's parameter_types.boolean: JSON booleans and these strings, nothing else. */
const SCHEMA_BOOLEANS: Array<boolean | string> = [
  true, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't',
  false, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f',
];
const SCHEMA_TRUE = new Set<unknown>(SCHEMA_BOOLEANS.slice(0, 13));

/** A value as Python prints it with repr() (enough for JSON values). */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

/** A field checked against parameter_types.boolean, with jsonschema's messages as Cinder wraps them. */
function schemaBoolean(v: unknown, field: string): boolean {
  const value = typeof v === 'string' ? v : pyRepr(v);
  if (typeof v !== 'boolean' && typeof v !== 'string') bad(`Invalid input for field/attribute ${field}. Value: ${value}. ${pyRepr(v)} is not of type 'boolean', 'string'`);
  if (!SCHEMA_BOOLEANS.includes(v)) bad(`Invalid input for field/attribute ${field}. Value: ${value}. ${pyRepr(v)} is not one of ${pyRepr(SCHEMA_BOOLEANS)}`);
  return SCHEMA_TRUE.has(v);
}

/** The os-update_readonly_flag body as Cinder's volume_readonly_update schema checks it. */
function readonlyFlagArgument(args: unknown): boolean {
  const field = 'os-update_readonly_flag';
  if (!args || typeof args !== 'object' || Array.isArray(args)) {
    bad(`Invalid input for field/attribute ${field}. Value: ${pyRepr(args)}. ${pyRepr(args)} is not of type 'object'`);
  }
  const keys = Object.keys(args);
  if (!keys.includes('readonly')) bad(`Invalid input for field/attribute ${field}. Value: ${pyRepr(args)}. 'readonly' is a required property`);
  const extra = keys.filter((k) => k !== 'readonly');
  if (extra.length > 0) {
    bad(`Invalid input for field/attribute ${field}. Value: ${pyRepr(args)}. Additional properties are not allowed (${extra.map(pyRepr).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
  }
  return schemaBoolean((args as Record<string, unknown>).readonly, 'readonly');
}

function parseMetadata(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) bad('Invalid input received: metadata must be a dictionary.');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') bad(`Invalid input for field/attribute metadata. Value: ${k}. ${JSON.stringify(x)} is not of type 'string'`);
    if (k.length === 0 || k.length > 255) bad('Invalid input received: Metadata property key must be 1 to 255 characters.');
    out[k] = x;
  }
  return out;
}

function parseSize(v: unknown, required: boolean): number | undefined {
  if (v === undefined || v === null) {
    if (required) bad("Invalid input for field/attribute size. Value: None. None is not of type 'integer', 'string'");
    return undefined;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) bad(`Invalid input received: Volume size '${String(v)}' must be an integer and greater than 0`);
  return n;
}

export class CinderApi {
  constructor(
    private readonly state: CloudState,
    private readonly opts: CinderOptions,
  ) {}

  // ------------------------------------------------------------ versions

  private versionEntry(api: CinderApiVersion): Record<string, unknown> {
    const enabled = this.opts.versions;
    const newest = enabled.includes('v3') ? 'v3' : enabled.includes('v2') ? 'v2' : 'v1';
    const status = api === newest ? 'CURRENT' : api === 'v2' ? 'SUPPORTED' : 'DEPRECATED';
    const n = api.slice(1);
    return {
      id: `v${n}.0`,
      status,
      version: api === 'v3' ? this.opts.maxMicroversion : '',
      min_version: api === 'v3' ? '3.0' : '',
      updated: api === 'v3' ? '2023-08-31T00:00:00Z' : api === 'v2' ? '2017-02-25T12:00:00Z' : '2016-05-02T20:25:19Z',
      links: [
        { href: 'https://docs.openstack.org/', type: 'text/html', rel: 'describedby' },
        { href: `${this.opts.baseUrl()}/volume/${api}/`, rel: 'self' },
      ],
      'media-types': [{ base: 'application/json', type: `application/vnd.openstack.volume+json;version=${n}` }],
    };
  }

  private versionDocument(): Reply {
    const order: CinderApiVersion[] = ['v3', 'v2', 'v1'];
    // Cinder serves its root before the request-ID middleware, and its
    // versions app echoes the base microversion.
    const headers: Record<string, string> = this.opts.versions.includes('v3') ? { 'openstack-api-version': 'volume 3.0', vary: 'OpenStack-API-Version' } : {};
    return { status: 300, body: { versions: order.filter((v) => this.opts.versions.includes(v)).map((v) => this.versionEntry(v)) }, headers, noRequestId: true };
  }

  // -------------------------------------------------------------- routes

  routes(): Route[] {
    const out: Route[] = [
      { service: 'volume', method: 'GET', template: '/volume', auth: false, handler: () => this.versionDocument() },
      { service: 'volume', method: 'GET', template: '/volume/', auth: false, handler: () => this.versionDocument() },
    ];
    for (const api of this.opts.versions) {
      const root = `/volume/${api}`;
      // /v3/ is behind keystonemiddleware (401 without a token); only the root is open.
      const version = (ctx: RequestContext): Reply => {
        if (api === 'v3') negotiate(ctx, { service: 'volume', serviceType: 'volume', min: '3.0', max: this.opts.maxMicroversion });
        return { status: 200, body: { versions: [this.versionEntry(api)] } };
      };
      out.push({ service: 'volume', method: 'GET', template: root, auth: true, handler: version });
      out.push({ service: 'volume', method: 'GET', template: `${root}/`, auth: true, handler: version });
      const add = (method: string, path: string, fn: (a: Api) => Reply): void => {
        out.push({ service: 'volume', method, template: `${root}/{project}${path}`, auth: true, handler: (ctx) => fn(this.enter(ctx, api)) });
      };
      add('POST', '/volumes', (a) => this.createVolume(a));
      add('GET', '/volumes', (a) => this.listVolumes(a, api === 'v1'));
      add('GET', '/volumes/detail', (a) => this.listVolumes(a, true));
      add('GET', '/volumes/{id}', (a) => ({ status: 200, body: { volume: volumeDetail(a.view, this.volume(a.ctx.params.id)) } }));
      add('PUT', '/volumes/{id}', (a) => this.updateVolume(a));
      add('DELETE', '/volumes/{id}', (a) => this.deleteVolume(a));
      add('POST', '/volumes/{id}/action', (a) => this.volumeAction(a));
      add('GET', '/volumes/{id}/metadata', (a) => ({ status: 200, body: { metadata: this.volume(a.ctx.params.id).metadata } }));
      add('PUT', '/volumes/{id}/metadata', (a) => this.setMetadata(a, true));
      add('POST', '/volumes/{id}/metadata', (a) => this.setMetadata(a, false));
      add('DELETE', '/volumes/{id}/metadata/{key}', (a) => this.deleteMetadataKey(a));
      add('POST', '/snapshots', (a) => this.createSnapshot(a));
      add('GET', '/snapshots', (a) => this.listSnapshots(a));
      add('GET', '/snapshots/detail', (a) => this.listSnapshots(a));
      add('GET', '/snapshots/{id}', (a) => ({ status: 200, body: { snapshot: snapshotView(a.view, this.snapshot(a.ctx.params.id)) } }));
      add('DELETE', '/snapshots/{id}', (a) => this.deleteSnapshot(a));
      add('POST', '/backups', (a) => this.createBackup(a));
      add('GET', '/backups', (a) => this.listBackups(a, false));
      add('GET', '/backups/detail', (a) => this.listBackups(a, true));
      add('GET', '/backups/{id}', (a) => ({ status: 200, body: { backup: backupDetail(a.view, this.backup(a.ctx.params.id)) } }));
      add('DELETE', '/backups/{id}', (a) => this.deleteBackup(a));
      add('POST', '/backups/{id}/restore', (a) => this.restoreBackup(a));
      if (api === 'v3') {
        add('GET', '/messages', (a) => this.listMessages(a));
        add('GET', '/messages/{id}', (a) => ({ status: 200, body: { message: messageView(a.view, this.message(a)) } }));
        add('DELETE', '/messages/{id}', (a) => this.deleteMessage(a));
        add('DELETE', '/attachments/{id}', (a) => this.deleteAttachment(a));
      }
      add('GET', '/os-quota-sets/{id}', (a) => this.quotaSet(a, a.ctx.query.get('usage')?.toLowerCase() === 'true'));
      add('GET', '/os-quota-sets/{id}/defaults', (a) => this.quotaSet(a, false));
      add('GET', '/types', () => ({ status: 200, body: { volume_types: [...this.state.types.values()].map((t) => typeView(t, this.opts.showUserExtraSpecs)) } }));
      // Before /types/{id}: "default" is not a type's ID. v2 brought it; v1 has none.
      if (api !== 'v1') {
        add('GET', '/types/default', () =>
          this.state.types.size === 0
            ? notFound('Default volume type can not be found.')
            : { status: 200, body: { volume_type: typeView(this.state.defaultType(), this.opts.showUserExtraSpecs) } },
        );
      }
      add('GET', '/types/{id}', (a) => ({ status: 200, body: { volume_type: typeView(this.type(a.ctx.params.id), this.opts.showUserExtraSpecs) } }));
      add('GET', '/types/{id}/extra_specs', (a) => ({ status: 200, body: { extra_specs: this.type(a.ctx.params.id).extraSpecs } }));
      add('GET', '/os-availability-zone', () => ({
        status: 200,
        body: { availabilityZoneInfo: this.state.availabilityZones.map((z) => ({ zoneName: z, zoneState: { available: true } })) },
      }));
    }
    return out;
  }

  /** Per request: the project in the URL must be the token's, and v3 negotiates a microversion. */
  private enter(ctx: RequestContext, api: CinderApiVersion): Api {
    if (ctx.params.project !== ctx.projectId) bad('Malformed request url');
    const mv = api === 'v3' ? negotiate(ctx, { service: 'volume', serviceType: 'volume', min: '3.0', max: this.opts.maxMicroversion }) : null;
    if (ctx.malformedBody) bad('Malformed request body');
    const base = this.opts.baseUrl();
    const view: ViewContext = { api, mv, root: `${base}/volume/${api}/${ctx.projectId}`, bookmarkRoot: `${base}/volume/${ctx.projectId}`, state: this.state };
    return { api, mv, view, ctx };
  }

  private volume(id: string): VolumeRecord {
    return this.state.volumes.get(id) ?? notFound(`Volume ${id} could not be found.`);
  }

  private snapshot(id: string) {
    return this.state.snapshots.get(id) ?? notFound(`Snapshot ${id} could not be found.`);
  }

  private backup(id: string) {
    return this.state.backups.get(id) ?? notFound(`Backup ${id} could not be found.`);
  }

  private type(idOrName: string) {
    return this.state.findType(idOrName) ?? notFound(`Volume type ${idOrName} could not be found.`);
  }

  /** Cinder stores what it was given: a name or description left out is null, not ''. */
  private nameOf(a: Api, body: Record<string, unknown>): string | null {
    return (a.api === 'v1' ? str(body.display_name) : str(body.name) ?? str(body.display_name)) ?? null;
  }

  private descriptionOf(a: Api, body: Record<string, unknown>): string | null {
    return (a.api === 'v1' ? str(body.display_description) : str(body.description) ?? str(body.display_description)) ?? null;
  }

  // ------------------------------------------------------------- volumes

  private createVolume(a: Api): Reply {
    const body = objectField('volume', a.ctx.body, 'volume');
    const s = this.state;
    const snapshotId = str(body.snapshot_id) ?? null;
    const sourceVolId = str(body.source_volid) ?? null;
    // Cinder only reads backup_id from 3.47; below it the field is ignored.
    const backupId = atLeast(a.mv, '3.47') ? str(body.backup_id) ?? null : null;
    // Without a size or a source, Cinder's schema check fails with webob's generic text.
    if ((body.size === undefined || body.size === null) && !snapshotId && !sourceVolId && !backupId) {
      bad('The server could not comply with the request since it is either malformed or otherwise incorrect.');
    }
    let size = parseSize(body.size, false);
    let sourceSize = 0;
    let sourceTypeId: string | undefined;
    let sourceAz: string | undefined;
    if (snapshotId) {
      const snap = this.snapshot(snapshotId);
      // Zed's texts for a source in the wrong state (its create flow's InvalidSnapshot and InvalidVolume).
      if (snap.status !== 'available') bad("Invalid snapshot: Originating snapshot status must be one of 'available' values");
      sourceSize = snap.size;
      sourceTypeId = snap.volumeTypeId;
      sourceAz = s.volumes.get(snap.volumeId)?.availabilityZone;
    } else if (sourceVolId) {
      const src = this.volume(sourceVolId);
      if (!['available', 'in-use'].includes(src.status)) bad("Invalid volume: Originating source volume status must be one of 'available, in-use' values");
      sourceSize = src.size;
      sourceTypeId = src.volumeTypeId;
      sourceAz = src.availabilityZone;
    } else if (backupId) {
      const backup = this.backup(backupId);
      if (backup.status !== 'available') bad(`Invalid backup: Backup status must be available but is ${backup.status}.`);
      sourceSize = backup.size;
    }
    size ??= sourceSize;
    if (size < sourceSize) {
      bad(`Invalid input received: Volume size '${size}'GB cannot be smaller than the ${snapshotId ? 'snapshot' : sourceVolId ? 'original volume' : 'backup'} size ${sourceSize}GB. They must be >= original ${snapshotId ? 'snapshot' : 'volume'} size.`);
    }
    const typeRef = str(body.volume_type);
    const type = typeRef !== undefined ? s.findType(typeRef) ?? notFound(`Volume type with name ${typeRef} could not be found.`) : sourceTypeId ? s.types.get(sourceTypeId)! : s.defaultType();
    let az = str(body.availability_zone) ?? sourceAz ?? s.availabilityZones[0];
    if (!s.availabilityZones.includes(az)) {
      // cinder.conf allow_availability_zone_fallback: the default zone instead of a refusal.
      if (this.opts.availabilityZoneFallback) az = s.availabilityZones[0];
      // InvalidAvailabilityZone is an Invalid, not an InvalidInput: its message has no 'Invalid input received: '.
      else bad(`Availability zone '${az}' is invalid.`);
    }
    if (sourceAz && az !== sourceAz) bad('Invalid input received: Volume must be in the same availability zone as the source.');
    const exceeded = s.quotas.check(s.volumeQuotaDeltas(type.id, size), size);
    if (exceeded) overQuota(exceeded);
    const vol = s.createVolume({
      id: randomUUID(),
      name: this.nameOf(a, body),
      description: this.descriptionOf(a, body),
      size,
      availabilityZone: az,
      volumeTypeId: type.id,
      multiattach: typeIsMultiattach(type) || body.multiattach === true,
      metadata: parseMetadata(body.metadata),
      snapshotId,
      sourceVolId,
      backupId,
    });
    return { status: a.api === 'v1' ? 200 : 202, body: { volume: volumeDetail(a.view, vol, true) } };
  }

  private listVolumes(a: Api, detail: boolean): Reply {
    const q = a.ctx.query;
    const name = a.api === 'v1' ? q.get('display_name') : q.get('name') ?? q.get('display_name');
    const status = q.get('status');
    const az = q.get('availability_zone');
    const metadata = parseMetadataFilter(q.get('metadata'));
    const page = listPage({
      ctx: a.ctx,
      collection: this.state.volumes,
      filter: (v) => (name === null || v.name === name) && (status === null || v.status === status) && (az === null || v.availabilityZone === az) && metadataMatches(this.state.visibleMetadata(v), metadata),
      notFound: (id) => `Volume ${id} could not be found.`,
      linkBase: `${a.view.root}/volumes`,
      paging: a.api !== 'v1',
    });
    const body: Record<string, unknown> = { volumes: page.items.map((v) => (detail ? volumeDetail(a.view, v) : volumeSummary(a.view, v))) };
    if (page.nextHref) body.volumes_links = [{ href: page.nextHref, rel: 'next' }];
    return { status: 200, body };
  }

  private updateVolume(a: Api): Reply {
    const vol = this.volume(a.ctx.params.id);
    const body = objectField('volume', a.ctx.body, 'volume');
    const name = a.api === 'v1' ? str(body.display_name) : str(body.name) ?? str(body.display_name);
    const description = a.api === 'v1' ? str(body.display_description) : str(body.description) ?? str(body.display_description);
    if (name !== undefined) vol.name = name;
    if (description !== undefined) vol.description = description;
    if (body.metadata !== undefined) vol.metadata = parseMetadata(body.metadata);
    this.state.setVolumeStatus(vol, vol.status);
    return { status: 200, body: { volume: volumeDetail(a.view, vol) } };
  }

  private deleteVolume(a: Api): Reply {
    const vol = this.volume(a.ctx.params.id);
    const hasSnapshots = [...this.state.snapshots.values()].some((x) => x.volumeId === vol.id);
    if (!DELETABLE.has(vol.status) || vol.attachments.length > 0 || hasSnapshots) bad(DELETE_REFUSED);
    this.state.deleteVolume(vol);
    return { status: 202, plain: true };
  }

  private volumeAction(a: Api): Reply {
    const body = a.ctx.body && typeof a.ctx.body === 'object' ? (a.ctx.body as Record<string, unknown>) : {};
    const action = Object.keys(body)[0];
    // Cinder checks this action's body against its schema before it looks the volume up.
    if (action === 'os-update_readonly_flag') return this.updateReadonlyFlag(a, readonlyFlagArgument(body[action]));
    const vol = this.volume(a.ctx.params.id);
    if (action === 'os-extend') return this.extend(a, vol, objectField('volume', body, 'os-extend'));
    if (action === 'os-retype') return this.retype(vol, objectField('volume', body, 'os-retype'));
    return bad(`There is no such action: ${action ?? ''}. Verify the request body and Content-Type header and try again.`);
  }

  private extend(a: Api, vol: VolumeRecord, args: Record<string, unknown>): Reply {
    const newSize = parseSize(args.new_size, true)!;
    const allowed = atLeast(a.mv, '3.42') ? ['available', 'in-use'] : ['available'];
    if (!allowed.includes(vol.status)) {
      // Cinder prints its expected-status dict as Python does.
      const expected = allowed.length === 1 ? `'${allowed[0]}'` : `(${allowed.map((x) => `'${x}'`).join(', ')})`;
      bad(`Invalid volume: Volume ${vol.id} status must be '{'status': ${expected}}' to extend, currently ${vol.status}.`);
    }
    if (newSize <= vol.size) {
      bad(`Invalid input received: New size for extend must be greater than current size. (current: ${vol.size}, extended: ${newSize}).`);
    }
    const exceeded = this.state.quotas.check(this.state.volumeQuotaDeltas(vol.volumeTypeId, newSize - vol.size, 0), newSize);
    if (exceeded) overQuota(exceeded);
    this.state.extendVolume(vol, newSize);
    return { status: 202 };
  }

  /** Cinder changes the flag only while the volume is available: not while it is attached, attaching or busy. */
  private updateReadonlyFlag(a: Api, readonly: boolean): Reply {
    const vol = this.volume(a.ctx.params.id);
    if (vol.status !== 'available') {
      bad(`Invalid volume: Volume ${vol.id} status must be available to update readonly flag, but current status is: ${vol.status}.`);
    }
    this.state.setReadonlyFlag(vol, readonly);
    // A @wsgi.response(202) action returning None: Cinder's wsgi layer still names JSON, with an empty body.
    return { status: 202, headers: { 'content-type': 'application/json' } };
  }

  private retype(vol: VolumeRecord, args: Record<string, unknown>): Reply {
    const ref = str(args.new_type) ?? bad('Invalid input received: new_type must be provided.');
    const policy = str(args.migration_policy) ?? 'never';
    if (!['never', 'on-demand'].includes(policy)) bad(`Invalid input received: Migration policy ${policy} is invalid, must be 'never' or 'on-demand'.`);
    const type = this.state.findType(ref) ?? notFound(`Volume type with name ${ref} could not be found.`);
    if (type.id === vol.volumeTypeId) bad(RETYPE_REFUSED);
    if (!['available', 'in-use'].includes(vol.status)) bad(`Invalid volume: Volume ${vol.id} status must be available or in-use, but current status is: ${vol.status}.`);
    if (vol.status === 'in-use' && vol.multiattach !== typeIsMultiattach(type)) bad('Invalid volume: Retyping an in-use volume between multiattach and non-multiattach types is not supported.');
    const t = this.state.typeName(type.id);
    const exceeded = this.state.quotas.check({ [`volumes_${t}`]: 1, [`gigabytes_${t}`]: vol.size });
    if (exceeded) overQuota(exceeded);
    this.state.retypeVolume(vol, type);
    return { status: 202 };
  }

  private setMetadata(a: Api, replace: boolean): Reply {
    const vol = this.volume(a.ctx.params.id);
    const md = parseMetadata(objectField('volume', a.ctx.body, 'metadata'));
    vol.metadata = replace ? md : { ...vol.metadata, ...md };
    this.state.setVolumeStatus(vol, vol.status);
    return { status: 200, body: { metadata: vol.metadata } };
  }

  private deleteMetadataKey(a: Api): Reply {
    const vol = this.volume(a.ctx.params.id);
    const key = a.ctx.params.key;
    if (!(key in vol.metadata)) notFound(`Volume ${vol.id} has no metadata with key ${key}.`);
    const { [key]: _removed, ...rest } = vol.metadata;
    vol.metadata = rest;
    return { status: 200, plain: true };
  }

  // ----------------------------------------------------------- snapshots

  private createSnapshot(a: Api): Reply {
    const body = objectField('volume', a.ctx.body, 'snapshot');
    const volumeId = str(body.volume_id) ?? bad("Invalid input for field/attribute volume_id. Value: None. None is not of type 'string'");
    const vol = this.volume(volumeId);
    // From 3.66 the force flag is implied.
    const force = atLeast(a.mv, '3.66') || parseBool(body.force, 'force');
    if (!force && vol.status !== 'available') bad(`Invalid volume: Volume ${vol.id} status must be available, but current status is: ${vol.status}.`);
    if (!['available', 'in-use'].includes(vol.status)) bad(`Invalid volume: Volume ${vol.id} status must be available or in-use, but current status is: ${vol.status}.`);
    const exceeded = this.state.quotas.check(this.state.snapshotQuotaDeltas(vol.volumeTypeId, vol.size));
    if (exceeded) overQuota(exceeded);
    const snap = this.state.createSnapshot(vol, this.nameOf(a, body), this.descriptionOf(a, body), parseMetadata(body.metadata));
    return { status: a.api === 'v1' ? 200 : 202, body: { snapshot: snapshotView(a.view, snap, true) } };
  }

  private listSnapshots(a: Api): Reply {
    return this.listByVolume(a, 'snapshots', this.state.snapshots, 'Snapshot', (x) => snapshotView(a.view, x));
  }

  /** Snapshots and backups filter alike: name, status, volume_id. */
  private listByVolume<T extends SnapshotRecord | BackupRecord>(a: Api, key: 'snapshots' | 'backups', collection: Collection<T>, label: string, view: (x: T) => unknown): Reply {
    const q = a.ctx.query;
    const name = a.api === 'v1' ? q.get('display_name') : q.get('name') ?? q.get('display_name');
    const status = q.get('status');
    const volumeId = q.get('volume_id');
    const page = listPage({
      ctx: a.ctx,
      collection,
      filter: (x) => (name === null || x.name === name) && (status === null || x.status === status) && (volumeId === null || x.volumeId === volumeId),
      notFound: (id) => `${label} ${id} could not be found.`,
      linkBase: `${a.view.root}/${key}`,
      paging: a.api !== 'v1',
    });
    const body: Record<string, unknown> = { [key]: page.items.map(view) };
    if (page.nextHref) body[`${key}_links`] = [{ href: page.nextHref, rel: 'next' }];
    return { status: 200, body };
  }

  // ------------------------------------------------------------ messages

  /**
   * User messages (3.3). Before 3.5 the query is ignored and every message of
   * the project is listed; from 3.5 it filters (resource_uuid, resource_type,
   * event_id, request_id, message_level) and takes limit, as Cinder does.
   */
  /** The attachments API (3.27): an attachment record goes, and the volume takes the status of what is left. */
  private deleteAttachment(a: Api): Reply {
    requireMicroversion(a, '3.27');
    const id = a.ctx.params.id;
    if (!this.state.deleteAttachment(id)) notFound(`VolumeAttachment ${id} could not be found.`);
    return { status: 200, body: { attachments: [] } };
  }

  private listMessages(a: Api): Reply {
    requireMicroversion(a, '3.3');
    let items = [...this.state.messages];
    if (atLeast(a.mv, '3.5')) {
      const q = a.ctx.query;
      const filters: Array<[string, (m: MessageRecord) => string]> = [
        ['resource_uuid', (m) => m.resourceUuid],
        ['resource_type', (m) => m.resourceType],
        ['event_id', (m) => m.eventId],
        ['request_id', (m) => m.requestId],
        ['message_level', (m) => m.messageLevel],
      ];
      for (const [key, field] of filters) {
        const want = q.get(key);
        if (want !== null) items = items.filter((m) => field(m) === want);
      }
      if ((q.get('sort') ?? '').includes('created_at:desc') || q.get('sort_dir') === 'desc') items.reverse();
      const limit = q.get('limit');
      if (limit !== null) items = items.slice(0, Math.max(0, Number(limit) || 0));
    }
    return { status: 200, body: { messages: items.map((m) => messageView(a.view, m)) } };
  }

  private message(a: Api): MessageRecord {
    requireMicroversion(a, '3.3');
    const id = a.ctx.params.id;
    return this.state.messages.find((m) => m.id === id) ?? notFound(`Message ${id} could not be found.`);
  }

  private deleteMessage(a: Api): Reply {
    const m = this.message(a);
    this.state.messages.splice(this.state.messages.indexOf(m), 1);
    return { status: 204, plain: true };
  }

  private deleteSnapshot(a: Api): Reply {
    const snap = this.snapshot(a.ctx.params.id);
    if (!['available', 'error'].includes(snap.status)) bad('Invalid snapshot: Volume Snapshot status must be available or error and must not be part of a group.');
    this.state.deleteSnapshot(snap);
    return { status: 202, plain: true };
  }

  // ------------------------------------------------------------- backups

  private createBackup(a: Api): Reply {
    const body = objectField('volume', a.ctx.body, 'backup');
    const volumeId = str(body.volume_id) ?? bad("Invalid input for field/attribute volume_id. Value: None. None is not of type 'string'");
    const vol = this.volume(volumeId);
    const snapshotId = str(body.snapshot_id) ?? null;
    if (snapshotId) {
      const snap = this.snapshot(snapshotId);
      if (snap.volumeId !== vol.id) bad(`Invalid input received: Snapshot ${snapshotId} is not a snapshot of volume ${vol.id}.`);
      if (snap.status !== 'available') bad(`Invalid snapshot: Snapshot to be backed up must be available, but the current status is "${snap.status}".`);
    }
    if (!['available', 'in-use'].includes(vol.status)) bad(`Invalid volume: Volume to be backed up must be available or in-use, but the current status is "${vol.status}".`);
    if (vol.status === 'in-use' && !snapshotId && !parseBool(body.force, 'force')) bad('Invalid volume: Backing up an in-use volume must use the force flag.');
    const exceeded = this.state.quotas.check({ backups: 1, backup_gigabytes: vol.size });
    if (exceeded) overQuota(exceeded);
    // An incremental backup builds on the volume's newest backup, which must be available.
    let parentId: string | null = null;
    if (parseBool(body.incremental, 'incremental')) {
      const parent = this.state.newestBackupOf(vol.id) ?? bad('Invalid backup: No backups available to do an incremental backup.');
      if (parent.status !== 'available') bad('Invalid backup: The parent backup must be available for incremental backup.');
      parentId = parent.id;
    }
    const backup = this.state.createBackup(vol, {
      name: str(body.name) ?? '',
      description: str(body.description) ?? '',
      parentId,
      snapshotId,
      availabilityZone: str(body.availability_zone) ?? vol.availabilityZone,
      metadata: parseMetadata(body.metadata),
    });
    return { status: 202, body: { backup: backupSummary(a.view, backup) } };
  }

  private listBackups(a: Api, detail: boolean): Reply {
    return this.listByVolume(a, 'backups', this.state.backups, 'Backup', (x) => (detail ? backupDetail(a.view, x) : backupSummary(a.view, x)));
  }

  private deleteBackup(a: Api): Reply {
    const backup = this.backup(a.ctx.params.id);
    if (!['available', 'error'].includes(backup.status)) bad('Invalid backup: Backup status must be available or error');
    if (this.state.hasDependentBackups(backup.id)) bad('Invalid backup: Incremental backups exist for this backup.');
    this.state.deleteBackup(backup);
    return { status: 202, plain: true };
  }

  private restoreBackup(a: Api): Reply {
    const backup = this.backup(a.ctx.params.id);
    const body = objectField('volume', a.ctx.body, 'restore');
    if (backup.status !== 'available') bad('Invalid backup: Backup status must be available');
    const s = this.state;
    let vol: VolumeRecord;
    const volumeId = str(body.volume_id);
    if (volumeId) {
      vol = this.volume(volumeId);
      if (vol.status !== 'available') bad('Invalid volume: Volume to be restored to must be available');
      if (vol.size < backup.size) bad(`Invalid volume: volume size ${vol.size} is too small to restore backup of size ${backup.size}.`);
      s.restoreBackup(backup, vol);
    } else {
      const type = s.defaultType();
      const exceeded = s.quotas.check(s.volumeQuotaDeltas(type.id, backup.size), backup.size);
      if (exceeded) overQuota(exceeded);
      vol = s.createVolume(
        {
          id: randomUUID(), name: str(body.name) ?? `restore_backup_${backup.id}`, description: null, size: backup.size,
          availabilityZone: s.volumes.get(backup.volumeId)?.availabilityZone ?? s.availabilityZones[0], volumeTypeId: type.id,
          multiattach: typeIsMultiattach(type), metadata: {}, snapshotId: null, sourceVolId: null, backupId: backup.id,
        },
        'restoring-backup',
      );
    }
    return { status: 202, body: { restore: { backup_id: backup.id, volume_id: vol.id, volume_name: vol.name } } };
  }

  // -------------------------------------------------------------- quotas

  private quotaSet(a: Api, usage: boolean): Reply {
    const project = a.ctx.params.id;
    if (project !== a.ctx.projectId) throw httpError('volume', 403, "Policy doesn't allow volume_extension:quotas:show to be performed.");
    const set: Record<string, unknown> = { id: project };
    // 'allocated' belongs to the nested-quota driver, gone since Stein: limit, in_use and reserved only.
    for (const [r, q] of this.state.quotas.entries()) set[r] = usage ? q : q.limit;
    return { status: 200, body: { quota_set: set } };
  }
}
