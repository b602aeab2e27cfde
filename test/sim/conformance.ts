// The conformance scenario: one sequence of raw HTTP calls that runs against
// any OpenStack (the simulator or a real cloud) and records, per step, what
// a client can rely on: the status code, the shape of the JSON body (key sets
// and value types, never values), the headers that matter, and the status
// sequences seen while polling. conformance.cloud.ts runs it against both and
// compares the records; nothing here knows which target it talks to.
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { v3AuthBody, versionedAuthUrl } from '../../src/openstack/keystone';
import type { CloudConfig } from '../../src/openstack/types';

export interface Observation {
  step: string;
  status: number;
  /** The headers a client reads, normalized (presence, or the echoed value). */
  headers: Record<string, string>;
  /** path -> type ('object', 'array', 'string', 'number', 'boolean', 'null', 'map'). */
  shape: Record<string, string>;
  /** Array paths that were empty, so their element shapes are unknown. */
  empty: string[];
  /** Values compared exactly: error codes, status sequences, echoed versions. */
  facts: Record<string, unknown>;
}

export interface Target {
  name: string;
  config: CloudConfig;
  serverId: string;
}

/** A quota_set key of one volume type: volumes_<type>, gigabytes_<type>, snapshots_<type>. */
const PER_TYPE_QUOTA = /^(volumes|gigabytes|snapshots)_.+$/;

/** Keys whose values are user data (free-form maps), not structure. */
const OPAQUE = new Set(['metadata', 'extra_specs', 'volume_image_metadata', 'properties']);

export function shapeOf(v: unknown): { shape: Record<string, string>; empty: string[] } {
  const shape: Record<string, string> = {};
  const empty: string[] = [];
  const put = (path: string, type: string): void => {
    const had = shape[path];
    if (had === undefined) shape[path] = type;
    else if (!had.split('|').includes(type)) shape[path] = [...had.split('|'), type].sort().join('|');
  };
  const walk = (x: unknown, path: string): void => {
    if (x === null) put(path, 'null');
    else if (Array.isArray(x)) {
      put(path, 'array');
      if (x.length === 0) empty.push(path);
      for (const e of x) walk(e, `${path}[]`);
    } else if (typeof x === 'object') {
      const key = path.split('.').pop() ?? '';
      if (OPAQUE.has(key)) return put(path, 'map');
      put(path, 'object');
      for (const [k, e] of Object.entries(x as Record<string, unknown>)) {
        // Per-volume-type quotas are named after the cloud's types, which other tests add and remove meanwhile.
        const name = key === 'quota_set' ? k.replace(PER_TYPE_QUOTA, '$1_<type>') : k;
        walk(e, path ? `${path}.${name}` : name);
      }
    } else put(path, typeof x);
  };
  if (v !== undefined) walk(v, '');
  return { shape, empty };
}

const REQUEST_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function normalizeHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const one = (k: string): string | undefined => {
    const v = h[k];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const out: Record<string, string> = {};
  for (const k of ['x-openstack-request-id', 'x-compute-request-id']) {
    const v = one(k);
    if (v !== undefined) out[k] = REQUEST_ID.test(v) ? 'req-<uuid>' : `other: ${v}`;
  }
  for (const k of ['openstack-api-version', 'x-openstack-nova-api-version']) {
    const v = one(k);
    if (v !== undefined) out[k] = v.toLowerCase();
  }
  for (const k of ['x-subject-token', 'location', 'www-authenticate', 'retry-after']) if (one(k) !== undefined) out[k] = 'present';
  const ct = one('content-type');
  if (ct !== undefined) out['content-type'] = ct.split(';')[0].trim().toLowerCase();
  return out;
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // JSON of many shapes
}

async function http(method: string, url: string, opts: { token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {}): Promise<Raw> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.token) headers['x-auth-token'] = opts.token;
  const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await request(url, { method: method as 'GET', headers, body: payload });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = { '<non-json>': text.slice(0, 40) };
  }
  return { status: res.statusCode, headers: res.headers, body };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Distinct consecutive values of `get` until `done` (or timeout), starting with `first` when given. */
async function pollSequence(get: () => Promise<string>, done: (s: string) => boolean, first?: string, timeoutMs = 60_000): Promise<string[]> {
  const seen: string[] = first === undefined ? [] : [first];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await get();
    if (seen[seen.length - 1] !== s) seen.push(s);
    if (done(s)) return seen;
    if (Date.now() > end) return [...seen, 'TIMEOUT'];
    await sleep(15);
  }
}

/** Runs the scenario against one target; returns every observation in order. Cleans up what it made. */
export async function runScenario(t: Target): Promise<Observation[]> {
  const obs: Observation[] = [];
  const record = (step: string, r: Raw, facts: Record<string, unknown> = {}): Raw => {
    const { shape, empty } = shapeOf(r.body);
    if (r.status >= 400 && r.body && typeof r.body === 'object') {
      // The error message with IDs, versions and sizes abstracted: clients match on these texts.
      const inner = Object.values(r.body as Record<string, { message?: unknown }>)[0];
      if (typeof inner?.message === 'string') facts = { ...facts, message: inner.message.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{32}/g, '<id>').replace(/conf-[0-9a-f]{8}/g, '<tag>') };
    }
    obs.push({ step, status: r.status, headers: normalizeHeaders(r.headers), shape, empty, facts });
    return r;
  };
  const fact = (step: string, facts: Record<string, unknown>): void => {
    obs.push({ step, status: 0, headers: {}, shape: {}, empty: [], facts });
  };
  /** The error body's fault name and code: {"itemNotFound": {"code": 404, ...}} -> 'itemNotFound/404'. */
  const faultOf = (r: Raw): string => {
    const b = r.body;
    if (!b || typeof b !== 'object') return 'none';
    const k = Object.keys(b)[0];
    return `${k}/${b[k]?.code}`;
  };

  // ------------------------------------------------------------ Keystone
  const authUrl = versionedAuthUrl(t.config.auth);
  const identityRoot = authUrl.replace(/\/v3$/, '');
  record('keystone: GET identity root', await http('GET', `${identityRoot}/`));
  record('keystone: GET /v3', await http('GET', `${authUrl}/`));
  const bad = JSON.parse(JSON.stringify(v3AuthBody(t.config.auth)));
  bad.auth.identity.password.user.password = 'wrong-password';
  const badAuth = record('keystone: POST /v3/auth/tokens wrong password', await http('POST', `${authUrl}/auth/tokens`, { body: bad }));
  fact('keystone: 401 body', { fault: faultOf(badAuth), title: badAuth.body?.error?.title });
  // Not 401: Keystone looks the credential up, and an application credential
  // ID or a token it does not know is "not found" (deleted, rotated, revoked).
  const unknownAppCred = { auth: { identity: { methods: ['application_credential'], application_credential: { id: randomUUID().replace(/-/g, ''), secret: 'any' } } } };
  const noAppCred = record('keystone: POST /v3/auth/tokens unknown application credential ID', await http('POST', `${authUrl}/auth/tokens`, { body: unknownAppCred }));
  fact('keystone: unknown application credential body', { fault: faultOf(noAppCred), title: noAppCred.body?.error?.title });
  const unknownToken = { auth: { identity: { methods: ['token'], token: { id: 'gAAAAAnot-a-token' } } } };
  const badSubject = record('keystone: POST /v3/auth/tokens unknown token', await http('POST', `${authUrl}/auth/tokens`, { body: unknownToken }));
  fact('keystone: unknown token body', { fault: faultOf(badSubject), title: badSubject.body?.error?.title });
  const auth = record('keystone: POST /v3/auth/tokens', await http('POST', `${authUrl}/auth/tokens`, { body: v3AuthBody(t.config.auth) }));
  if (auth.status !== 201) throw new Error(`${t.name}: authentication failed: ${auth.status}`);
  const token = String(auth.headers['x-subject-token']);
  const tok = auth.body.token;
  fact('keystone: token facts', {
    methods: tok.methods,
    roles: (tok.roles as Array<{ name: string }>).map((r) => r.name).sort(),
    expiresAtFormat: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(tok.expires_at),
    issuedAtFormat: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(tok.issued_at),
    serviceTypes: ['identity', 'volumev3', 'compute'].filter((x) => (tok.catalog as Array<{ type: string }>).some((s) => s.type === x)),
    interfaces: [...new Set((tok.catalog as Array<{ endpoints: Array<{ interface: string }> }>).flatMap((s) => s.endpoints.map((e) => e.interface)))].sort(),
  });
  const endpoint = (type: string): string => {
    const svc = (tok.catalog as Array<{ type: string; endpoints: Array<{ interface: string; region: string; url: string }> }>).find((s) => s.type === type);
    const e = svc?.endpoints.find((x) => x.interface === 'public' && (!t.config.region || x.region === t.config.region));
    if (!e) throw new Error(`${t.name}: no public ${type} endpoint`);
    return e.url.replace(/\/+$/, '');
  };
  const projectId = tok.project.id as string;
  const cinder = endpoint('volumev3').replace('$(project_id)s', projectId).replace('%(project_id)s', projectId);
  const nova = endpoint('compute');
  const cinderRoot = cinder.replace(/\/v3\/[^/]+$/, '');
  const novaRoot = nova.replace(/\/v2(\.1)?(\/[^/]*)?$/, '');
  record('keystone: GET /v3/auth/tokens (validate)', await http('GET', `${authUrl}/auth/tokens`, { token, headers: { 'x-subject-token': token } }));
  record('keystone: GET unknown route', await http('GET', `${authUrl}/no-such-route`, { token }));

  // ------------------------------------------------------- Cinder basics
  const vol = (mv?: string): Record<string, string> => (mv ? { 'openstack-api-version': `volume ${mv}` } : {});
  const comp = (mv?: string): Record<string, string> => (mv ? { 'openstack-api-version': `compute ${mv}` } : {});
  const cinderDoc = record('cinder: GET root', await http('GET', `${cinderRoot}/`));
  fact('cinder: root facts', {
    ids: (cinderDoc.body?.versions as Array<{ id: string }> | undefined)?.map((v) => v.id),
    v3: (cinderDoc.body?.versions as Array<{ id: string; status: string; min_version: string }> | undefined)?.filter((v) => v.id === 'v3.0').map((v) => `${v.status} min ${v.min_version}`),
  });
  record('cinder: GET /v3/', await http('GET', `${cinderRoot}/v3/`));
  const noToken = record('cinder: GET volumes without token', await http('GET', `${cinder}/volumes`));
  fact('cinder: 401 body', { fault: faultOf(noToken) });
  const badToken = record('cinder: GET volumes with an unknown token', await http('GET', `${cinder}/volumes`, { token: 'gAAAAAnot-a-token' }));
  fact('cinder: 401 body (unknown token)', { fault: faultOf(badToken) });
  record('cinder: GET volumes, no microversion header', await http('GET', `${cinder}/volumes`, { token }));
  // No limit: the real project may hold other tests' volumes, and a full page would add volumes_links.
  record('cinder: GET volumes at latest', await http('GET', `${cinder}/volumes`, { token, headers: vol('latest') }));
  const over = record('cinder: microversion 3.999 (above max)', await http('GET', `${cinder}/volumes`, { token, headers: vol('3.999') }));
  fact('cinder: 406 body', { fault: faultOf(over) });
  const malformed = record('cinder: malformed microversion', await http('GET', `${cinder}/volumes`, { token, headers: vol('3.x') }));
  fact('cinder: malformed microversion body', { fault: faultOf(malformed) });
  record('cinder: microversion 2.0 (below min)', await http('GET', `${cinder}/volumes`, { token, headers: vol('2.0') }));
  record('cinder: microversion 2.5 (below min)', await http('GET', `${cinder}/volumes`, { token, headers: vol('2.5') }));
  // The driver reads this document when the root has none for it (a load balancer that routes only /v3/...).
  const v3Doc = record('cinder: GET /v3/ with a token', await http('GET', `${cinderRoot}/v3/`, { token }));
  fact('cinder: /v3/ facts', {
    v3: (v3Doc.body?.versions as Array<{ id: string; status: string; min_version: string }> | undefined)?.map((v) => `${v.id} ${v.status} min ${v.min_version}`),
  });
  const missing = record('cinder: GET unknown volume', await http('GET', `${cinder}/volumes/${randomUUID()}`, { token }));
  fact('cinder: 404 body', { fault: faultOf(missing) });
  // A URL no route serves is not a missing object: webob's 404, whose body follows Accept, never itemNotFound.
  const noRoute = record('cinder: GET unknown route', await http('GET', `${cinder}/volumez/${randomUUID()}`, { token }));
  fact('cinder: unknown route body', { body: noRoute.body });
  record('cinder: GET unknown route, accepting anything', await http('GET', `${cinder}/volumez/${randomUUID()}`, { token, headers: { accept: '*/*' } }));
  record('cinder: GET unknown route without token', await http('GET', `${cinder}/volumez/${randomUUID()}`));
  record('cinder: GET an API version it does not serve (v2)', await http('GET', `${cinderRoot}/v2/${projectId}/volumes/${randomUUID()}`, { token }));
  const tooOld = record('cinder: GET messages at 3.0 (a route from 3.3)', await http('GET', `${cinder}/messages`, { token, headers: vol('3.0') }));
  fact('cinder: route above the microversion body', { fault: faultOf(tooOld) });
  record('cinder: GET quota usage', await http('GET', `${cinder}/os-quota-sets/${projectId}?usage=true`, { token }));
  record('cinder: GET quota', await http('GET', `${cinder}/os-quota-sets/${projectId}`, { token }));
  record('cinder: GET types', await http('GET', `${cinder}/types`, { token }));
  record('cinder: GET availability zones', await http('GET', `${cinder}/os-availability-zone`, { token }));
  record('cinder: POST volume without size', await http('POST', `${cinder}/volumes`, { token, body: { volume: { name: 'x' } } }));
  record('cinder: POST volume with a malformed body', await http('POST', `${cinder}/volumes`, { token, rawBody: '{"volume": ' }));
  record('cinder: POST volume with an unknown type', await http('POST', `${cinder}/volumes`, { token, body: { volume: { size: 1, volume_type: `no-such-type-${randomUUID()}` } } }));
  record('cinder: POST volume in an unknown availability zone', await http('POST', `${cinder}/volumes`, { token, body: { volume: { size: 1, availability_zone: 'no-such-zone' } } }));

  // ------------------------------------------------------- Nova basics
  const novaDoc = record('nova: GET root', await http('GET', `${novaRoot}/`));
  fact('nova: root facts', { v21: (novaDoc.body?.versions as Array<{ id: string; status: string; min_version: string }> | undefined)?.filter((v) => v.id === 'v2.1').map((v) => `${v.status} min ${v.min_version}`) });
  record('nova: GET server', await http('GET', `${nova}/servers/${t.serverId}`, { token }));
  record('nova: GET server at 2.93', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: comp('2.93') }));
  record('nova: GET servers/detail at 2.47', await http('GET', `${nova}/servers/detail`, { token, headers: comp('2.47') }));
  record('nova: GET server at 2.79', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: comp('2.79') }));
  record('nova: GET unknown server', await http('GET', `${nova}/servers/${randomUUID()}`, { token }));
  const novaNoRoute = record('nova: GET unknown route', await http('GET', `${nova}/serverz/${randomUUID()}`, { token }));
  fact('nova: unknown route body', { body: novaNoRoute.body });
  record('nova: microversion 2.999 (above max)', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: comp('2.999') }));
  record('nova: microversion 2.0 (below min)', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: comp('2.0') }));
  record('nova: POST attachment with a malformed body', await http('POST', `${nova}/servers/${t.serverId}/os-volume_attachments`, { token, headers: comp('2.60'), rawBody: '{"volumeAttachment": ' }));
  record('nova: malformed microversion', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: comp('2.x') }));
  record('nova: legacy microversion header', await http('GET', `${nova}/servers/${t.serverId}`, { token, headers: { 'x-openstack-nova-api-version': '2.60' } }));
  record('nova: GET without token', await http('GET', `${nova}/servers/${t.serverId}`));
  record('nova: GET attachments of unknown server', await http('GET', `${nova}/servers/${randomUUID()}/os-volume_attachments`, { token }));

  // ----------------------------------------------------- volume lifecycle
  const tag = `conf-${randomUUID().slice(0, 8)}`;
  const volumes: string[] = [];
  const snapshots: string[] = [];
  let attached: string | undefined;
  const status = async (kind: 'volumes' | 'snapshots', id: string): Promise<string> => {
    const r = await http('GET', `${cinder}/${kind}/${id}`, { token });
    return r.status === 404 ? 'gone' : String(r.body?.[kind.slice(0, -1)]?.status);
  };
  const settled = (s: string): boolean => !/ing$|^reserved$/.test(s);
  try {
    const created = record('cinder: POST volume (3.0)', await http('POST', `${cinder}/volumes`, { token, body: { volume: { name: `${tag}-a`, size: 1, metadata: { conformance: tag, which: 'a' } } } }));
    const a = created.body.volume.id as string;
    volumes.push(a);
    fact('cinder: create sequence', { seq: await pollSequence(() => status('volumes', a), settled, created.body.volume.status) });
    record('cinder: GET volume (3.0)', await http('GET', `${cinder}/volumes/${a}`, { token }));
    record('cinder: GET volume (latest)', await http('GET', `${cinder}/volumes/${a}`, { token, headers: vol('latest') }));

    // Paging with limit + marker and the metadata filter.
    for (const which of ['b', 'c']) {
      const r = record(`cinder: POST volume ${which}`, await http('POST', `${cinder}/volumes`, { token, body: { volume: { name: `${tag}-${which}`, size: 1, metadata: { conformance: tag, which } } } }));
      volumes.push(r.body.volume.id);
    }
    for (const id of volumes.slice(1)) await pollSequence(() => status('volumes', id), settled);
    const filter = encodeURIComponent(JSON.stringify({ conformance: tag }));
    const p1 = record('cinder: GET volumes/detail limit=2 + metadata filter', await http('GET', `${cinder}/volumes/detail?limit=2&metadata=${filter}`, { token, headers: vol('3.0') }));
    const next = p1.body?.volumes_links?.[0]?.href as string | undefined;
    // Newest first. Not the exact order: Cinder breaks created_at ties by id,
    // and on MySQL created_at has whole seconds, so volumes made within one
    // second come in UUID order; the sim keeps creation order to the millisecond.
    const newestFirst = (l: Array<{ created_at: string }> | undefined): boolean => !!l && l.every((v, i) => i === 0 || l[i - 1].created_at >= v.created_at);
    fact('cinder: page 1', { count: p1.body?.volumes?.length, newestFirst: newestFirst(p1.body?.volumes), rel: p1.body?.volumes_links?.[0]?.rel, nextHasMarker: next ? new URL(next).searchParams.get('marker') === p1.body.volumes[1].id : false, nextKeepsFilter: next ? new URL(next).searchParams.get('metadata') !== null : false, nextKeepsLimit: next ? new URL(next).searchParams.get('limit') : null });
    const p2 = record('cinder: GET volumes/detail page 2 via marker', await http('GET', `${cinder}/volumes/detail?limit=2&metadata=${filter}&marker=${p1.body.volumes[1].id}`, { token, headers: vol('3.0') }));
    const seen = [...(p1.body?.volumes ?? []), ...(p2.body?.volumes ?? [])].map((v: { id: string }) => volumes.indexOf(v.id)).sort();
    fact('cinder: page 2', { count: p2.body?.volumes?.length, allThreeOnce: JSON.stringify(seen) === '[0,1,2]', links: p2.body?.volumes_links !== undefined });
    record('cinder: GET volumes (summary) limit=1', await http('GET', `${cinder}/volumes?limit=1&metadata=${filter}`, { token }));
    record('cinder: GET volumes with unknown marker', await http('GET', `${cinder}/volumes?marker=${randomUUID()}`, { token }));
    const mdOnly = await http('GET', `${cinder}/volumes/detail?metadata=${encodeURIComponent(JSON.stringify({ conformance: tag, which: 'b' }))}`, { token });
    fact('cinder: metadata filter with two keys', { matches: (mdOnly.body?.volumes as Array<{ id: string }>)?.map((v) => volumes.indexOf(v.id)) });

    // Extend while available (3.0).
    const ext = record('cinder: os-extend available (3.0)', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-extend': { new_size: 2 } } }));
    fact('cinder: extend sequence (available)', { seq: await pollSequence(() => status('volumes', a), settled, ext.status === 202 ? 'available' : undefined) });
    record('cinder: os-extend to a smaller size', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-extend': { new_size: 1 } } }));

    // Retype: the testbed has only __DEFAULT__, so the refusals are what both can show.
    record('cinder: os-retype to the same type', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-retype': { new_type: '__DEFAULT__', migration_policy: 'never' } } }));
    record('cinder: os-retype to an unknown type', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-retype': { new_type: `no-such-${tag}`, migration_policy: 'never' } } }));
    record('cinder: unknown action', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-no-such-action': {} } }));

    // The readonly flag: admin metadata shown in the volume's metadata, not in GET metadata.
    const readonlyFlag = (readonly: unknown) => http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-update_readonly_flag': { readonly } } });
    const flagShown = async () => ({
      volume: ((await http('GET', `${cinder}/volumes/${a}`, { token })).body?.volume?.metadata ?? {}).readonly ?? null,
      metadataApi: ((await http('GET', `${cinder}/volumes/${a}/metadata`, { token })).body?.metadata ?? {}).readonly ?? null,
    });
    fact('cinder: readonly flag before any update', await flagShown());
    record('cinder: os-update_readonly_flag true', await readonlyFlag(true));
    fact('cinder: readonly flag after true', await flagShown());
    record('cinder: os-update_readonly_flag invalid value', await readonlyFlag('maybe'));
    record('cinder: os-update_readonly_flag without readonly', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-update_readonly_flag': {} } }));
    record('cinder: os-update_readonly_flag "false"', await readonlyFlag('false'));
    fact('cinder: readonly flag after "false"', await flagShown());

    // Attach through Nova.
    const att = record('nova: POST os-volume_attachments (2.1)', await http('POST', `${nova}/servers/${t.serverId}/os-volume_attachments`, { token, body: { volumeAttachment: { volumeId: a } } }));
    if (att.status === 200) attached = a;
    fact('nova: attach sequence', { seq: await pollSequence(() => status('volumes', a), (s) => s === 'in-use' || s === 'available' || s === 'error') });
    record('nova: POST os-volume_attachments again', await http('POST', `${nova}/servers/${t.serverId}/os-volume_attachments`, { token, body: { volumeAttachment: { volumeId: a } } }));
    record('nova: POST os-volume_attachments unknown volume', await http('POST', `${nova}/servers/${t.serverId}/os-volume_attachments`, { token, body: { volumeAttachment: { volumeId: randomUUID() } } }));
    for (const mv of ['2.1', '2.60', '2.79', '2.89']) {
      const list = record(`nova: GET os-volume_attachments (${mv})`, await http('GET', `${nova}/servers/${t.serverId}/os-volume_attachments`, { token, headers: comp(mv) }));
      // Only our attachment: the server may hold others from concurrent tests.
      const mine = (list.body?.volumeAttachments as Array<{ volumeId: string }> | undefined)?.filter((x) => x.volumeId === a) ?? [];
      const { shape } = shapeOf(mine[0]);
      fact(`nova: attachment keys (${mv})`, { keys: Object.keys(shape).filter((k) => k !== '').sort() });
      record(`nova: GET os-volume_attachments/{volume} (${mv})`, await http('GET', `${nova}/servers/${t.serverId}/os-volume_attachments/${a}`, { token, headers: comp(mv) }));
    }
    record('nova: GET os-volume_attachments/{unknown volume}', await http('GET', `${nova}/servers/${t.serverId}/os-volume_attachments/${randomUUID()}`, { token }));
    record('cinder: GET volume in-use (3.0)', await http('GET', `${cinder}/volumes/${a}`, { token }));
    record('cinder: GET volume in-use (latest)', await http('GET', `${cinder}/volumes/${a}`, { token, headers: vol('latest') }));
    record('nova: GET server with a volume', await http('GET', `${nova}/servers/${t.serverId}`, { token }));

    record('cinder: os-update_readonly_flag in-use', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-update_readonly_flag': { readonly: true } } }));

    // In-use extend: refused at 3.0, allowed from 3.42.
    record('cinder: os-extend in-use (3.0)', await http('POST', `${cinder}/volumes/${a}/action`, { token, body: { 'os-extend': { new_size: 3 } } }));
    const ext2 = record('cinder: os-extend in-use (3.42)', await http('POST', `${cinder}/volumes/${a}/action`, { token, headers: vol('3.42'), body: { 'os-extend': { new_size: 3 } } }));
    fact('cinder: extend sequence (in-use)', { seq: await pollSequence(() => status('volumes', a), settled, ext2.status === 202 ? 'in-use' : undefined) });

    // Snapshots of an in-use volume.
    record('cinder: POST snapshot of in-use volume without force', await http('POST', `${cinder}/snapshots`, { token, body: { snapshot: { volume_id: a, name: `${tag}-s0` } } }));
    const snap = record('cinder: POST snapshot of in-use volume with force', await http('POST', `${cinder}/snapshots`, { token, body: { snapshot: { volume_id: a, name: `${tag}-s1`, force: true } } }));
    const s1 = snap.body?.snapshot?.id as string | undefined;
    if (s1) {
      snapshots.push(s1);
      fact('cinder: snapshot sequence', { seq: await pollSequence(() => status('snapshots', s1), settled, snap.body.snapshot.status) });
      record('cinder: GET snapshot (3.0)', await http('GET', `${cinder}/snapshots/${s1}`, { token }));
      record('cinder: GET snapshot (latest)', await http('GET', `${cinder}/snapshots/${s1}`, { token, headers: vol('latest') }));
      record('cinder: GET snapshots/detail limit=1', await http('GET', `${cinder}/snapshots/detail?limit=1&volume_id=${a}`, { token }));
    }
    record('cinder: DELETE in-use volume', await http('DELETE', `${cinder}/volumes/${a}`, { token }));

    // Detach.
    const det = record('nova: DELETE os-volume_attachments', await http('DELETE', `${nova}/servers/${t.serverId}/os-volume_attachments/${a}`, { token }));
    if (det.status === 202) attached = undefined;
    // With the attachments the volume lists: Cinder keeps listing the one being detached until Nova's detach ends.
    const withAttachments = async (): Promise<string> => {
      const r = await http('GET', `${cinder}/volumes/${a}`, { token });
      return r.status === 404 ? 'gone' : `${String(r.body?.volume?.status)} (${(r.body?.volume?.attachments ?? []).length} listed)`;
    };
    fact('nova: detach sequence', { seq: await pollSequence(withAttachments, (s) => /^(available|error|gone)\b/.test(s), 'in-use (1 listed)') });
    record('nova: DELETE os-volume_attachments when not attached', await http('DELETE', `${nova}/servers/${t.serverId}/os-volume_attachments/${a}`, { token }));

    // Delete with snapshots; volume from snapshot.
    record('cinder: DELETE volume with snapshots', await http('DELETE', `${cinder}/volumes/${a}`, { token }));
    if (s1) {
      record('cinder: POST volume from snapshot smaller than it', await http('POST', `${cinder}/volumes`, { token, body: { volume: { size: 1, snapshot_id: s1 } } }));
      // No name given: it prints as null (as every description here does).
      const fromSnap = record('cinder: POST volume from snapshot', await http('POST', `${cinder}/volumes`, { token, headers: vol('3.48'), body: { volume: { snapshot_id: s1 } } }));
      const d = fromSnap.body?.volume?.id as string | undefined;
      if (d) {
        volumes.push(d);
        fact('cinder: volume from snapshot sequence', { seq: await pollSequence(() => status('volumes', d), settled, fromSnap.body.volume.status) });
        const got = record('cinder: GET volume from snapshot (3.48)', await http('GET', `${cinder}/volumes/${d}`, { token, headers: vol('3.48') }));
        fact('cinder: volume from snapshot', { sizeFromSnapshot: got.body?.volume?.size === 3, snapshotIdSet: got.body?.volume?.snapshot_id === s1 });
      }
      const del = record('cinder: DELETE snapshot', await http('DELETE', `${cinder}/snapshots/${s1}`, { token }));
      fact('cinder: snapshot delete sequence', { seq: await pollSequence(() => status('snapshots', s1), (s) => s === 'gone' || s === 'error_deleting', del.status === 202 ? 'available' : undefined) });
      snapshots.length = 0;
    }
    const delA = record('cinder: DELETE volume', await http('DELETE', `${cinder}/volumes/${a}`, { token }));
    fact('cinder: delete sequence', { seq: await pollSequence(() => status('volumes', a), (s) => s === 'gone' || s === 'error_deleting', delA.status === 202 ? 'available' : undefined) });
    record('cinder: GET quota usage after', await http('GET', `${cinder}/os-quota-sets/${projectId}?usage=true`, { token }));
  } finally {
    if (attached) {
      await http('DELETE', `${nova}/servers/${t.serverId}/os-volume_attachments/${attached}`, { token });
      await pollSequence(() => status('volumes', attached!), (s) => s === 'available' || s === 'error', undefined, 30_000);
    }
    for (const s of snapshots) {
      await http('DELETE', `${cinder}/snapshots/${s}`, { token });
      await pollSequence(() => status('snapshots', s), (x) => x === 'gone' || x === 'error_deleting', undefined, 30_000);
    }
    for (const v of volumes) {
      if ((await status('volumes', v)) === 'gone') continue;
      await http('DELETE', `${cinder}/volumes/${v}`, { token });
      await pollSequence(() => status('volumes', v), (x) => x === 'gone' || x === 'error_deleting', undefined, 30_000);
    }
  }
  return obs;
}

export interface Tolerance {
  /** Step name (exact) or RegExp over step names. */
  step: RegExp;
  /** Shape path (RegExp) of the difference; for header or status differences use 'header:<name>' or 'status'. */
  path: RegExp;
  why: string;
}

/** Every difference between two observations of the same step, minus the tolerated ones. */
export function compare(sim: Observation, real: Observation, tolerated: Tolerance[]): string[] {
  const diffs: string[] = [];
  const ok = (path: string): boolean => tolerated.some((t) => t.step.test(sim.step) && t.path.test(path));
  const add = (path: string, msg: string): void => {
    if (!ok(path)) diffs.push(`${path}: ${msg}`);
  };
  if (sim.status !== real.status) add('status', `sim ${sim.status}, real ${real.status}`);
  for (const h of new Set([...Object.keys(sim.headers), ...Object.keys(real.headers)])) {
    if (sim.headers[h] !== real.headers[h]) add(`header:${h}`, `sim ${sim.headers[h] ?? '(absent)'}, real ${real.headers[h] ?? '(absent)'}`);
  }
  const underEmpty = (path: string, empty: string[]): boolean => empty.some((e) => path.startsWith(`${e}[]`));
  for (const p of new Set([...Object.keys(sim.shape), ...Object.keys(real.shape)])) {
    const a = sim.shape[p];
    const b = real.shape[p];
    if (a === b) continue;
    if (a === undefined && underEmpty(p, sim.empty)) continue;
    if (b === undefined && underEmpty(p, real.empty)) continue;
    add(p === '' ? '(body)' : p, `sim ${a ?? '(absent)'}, real ${b ?? '(absent)'}`);
  }
  for (const k of new Set([...Object.keys(sim.facts), ...Object.keys(real.facts)])) {
    const a = JSON.stringify(sim.facts[k]);
    const b = JSON.stringify(real.facts[k]);
    if (a !== b && !(k === 'seq' && isSubsequence(real.facts[k] as string[], sim.facts[k] as string[]))) add(`fact:${k}`, `sim ${a}, real ${b}`);
  }
  return diffs;
}

/**
 * Whether `sub` is `full` with some middle states left out: polling a real
 * cloud can miss a short state the simulator (slowed down) always shows, but
 * both must start and end alike and never show a state the other does not.
 */
export function isSubsequence(sub: string[] | undefined, full: string[] | undefined): boolean {
  if (!sub || !full || sub.length === 0) return false;
  if (sub[0] !== full[0] || sub[sub.length - 1] !== full[full.length - 1]) return false;
  let i = 0;
  for (const s of full) if (s === sub[i]) i++;
  return i === sub.length;
}
