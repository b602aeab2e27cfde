// Which Cinder API to speak, read from the endpoint's version document
// (GET on the unversioned root answers 300 Multiple Choices with
// {"versions": [...]}): v3 with a negotiated microversion, else v2, else v1.
// Where the root has no document for us (a load balancer that routes only
// /v3/..., a cloud that hides it: 404, 401, 403), the versioned endpoint's
// own is read: GET /v3/ with a token answers 200 {"versions": [the v3
// entry]} (the API reference's "API version details"; 3.70 on the Zed
// testbed). Only when neither can be read is the version the catalog URL
// names used, marked as a fallback so that the caller tries again later.
// The catalog's URL may be versioned (/v3/{project_id}) or not; both work.
import type { Logger } from '../log';
import { isOpenStackError, OpenStackError } from './errors';
import type { HttpClient } from './http';
import { negotiate } from './microversion';
import { isRetryable, withRetry } from './retry';

/** The newest Cinder microversion whose request and response shapes this module knows. */
export const CINDER_MAX_MICROVERSION = '3.60';

export interface CinderApi {
  apiVersion: '3' | '2' | '1';
  /** The URL API paths are appended to: .../v3/{project_id}. */
  baseUrl: string;
  microversion: string | null;
  /**
   * Set when no version document could be read and the API is the one the
   * catalog URL names (v3 at its base microversion 3.0): why, naming the
   * URLs asked. Absent when a document said (or the forced v2 or v1 needs none).
   */
  fallback?: string;
}

interface VersionEntry {
  id?: string;
  status?: string;
  version?: string;
  min_version?: string;
}

/** The endpoint's root: the URL without /vN[.M][/project]. */
export function unversionedRoot(url: string): string {
  const u = new URL(url);
  u.pathname = u.pathname.replace(/\/v\d+(\.\d+)?(\/.*)?$/, '').replace(/\/+$/, '');
  u.search = '';
  return u.toString().replace(/\/+$/, '');
}

/** The API version a catalog URL or service type names, when it names one. */
export function versionFromCatalog(url: string, serviceType: string): '3' | '2' | '1' | null {
  const m = /\/v(\d+)(\.\d+)?(\/|$)/.exec(new URL(url).pathname);
  if (m && (m[1] === '3' || m[1] === '2' || m[1] === '1')) return m[1];
  if (serviceType === 'volumev3' || serviceType === 'block-storage') return '3';
  if (serviceType === 'volumev2') return '2';
  return null;
}

export function apiBaseUrl(catalogUrl: string, version: '3' | '2' | '1', projectId: string | undefined): string {
  const named = /\/v(\d+)(\.\d+)?(\/|$)/.exec(new URL(catalogUrl).pathname)?.[1];
  if (named === version) return catalogUrl.replace(/\/+$/, '');
  const root = unversionedRoot(catalogUrl);
  return `${root}/v${version}${projectId ? `/${projectId}` : ''}`;
}

/** Pick the API from a parsed version document. */
export function chooseFromVersions(
  versions: VersionEntry[],
  forced: 'auto' | '3' | '2' | '1',
): { apiVersion: '3' | '2' | '1'; microversion: string | null } | null {
  const find = (major: string) =>
    versions.find((v) => (v.id ?? '').startsWith(`v${major}`) && (v.status ?? '').toUpperCase() !== 'DELETED');
  const order: Array<'3' | '2' | '1'> = forced === 'auto' ? ['3', '2', '1'] : [forced];
  for (const major of order) {
    const entry = find(major);
    if (!entry) continue;
    if (major !== '3') return { apiVersion: major, microversion: null };
    const max = entry.version || '3.0';
    const min = entry.min_version || '3.0';
    return { apiVersion: '3', microversion: negotiate(CINDER_MAX_MICROVERSION, min, max) ?? min };
  }
  return null;
}

/** The config keys that force the API (cloud.conf, clouds.yaml), for messages. */
const FORCE_KEYS = 'block_storage_api_version (volume_api_version in clouds.yaml)';

function forcedVersionMissing(forced: '3' | '2' | '1', versions: VersionEntry[], root: string): OpenStackError {
  const offered = versions
    .filter((v) => (v.status ?? '').toUpperCase() !== 'DELETED')
    .map((v) => `${v.id ?? '?'}${v.status ? ` (${v.status})` : ''}`);
  // Not not_found: no caller may take a missing API for a missing volume.
  return new OpenStackError(
    'config',
    `${FORCE_KEYS} forces Cinder API v${forced}, but Cinder at ${root} does not offer it; it offers ${offered.join(', ') || 'no API'}. ` +
      'Set it to auto or to a version offered.',
  );
}

export async function detectCinderApi(opts: {
  http: HttpClient;
  catalogUrl: string;
  serviceType: string;
  projectId: string | undefined;
  token: string;
  forced: 'auto' | '3' | '2' | '1';
  signal?: AbortSignal;
  logger: Logger;
}): Promise<CinderApi> {
  const root = unversionedRoot(opts.catalogUrl);
  const missing: string[] = [];
  let versions = await readVersionDocument(`${root}/`, opts, missing);
  // Only v3 has microversions, which is all a document adds to the fallback.
  if (!versions && (opts.forced === 'auto' || opts.forced === '3')) versions = await readVersionDocument(`${root}/v3/`, opts, missing);
  const chosen = versions ? chooseFromVersions(versions, opts.forced) : null;
  if (chosen) {
    return { ...chosen, baseUrl: apiBaseUrl(opts.catalogUrl, chosen.apiVersion, opts.projectId) };
  }
  // Cinder said which APIs it serves, and the forced one is not among them:
  // every call to it would be a 404, which callers read as "already gone"
  // (a DeleteVolume would report success and delete nothing). Refuse instead.
  if (versions && opts.forced !== 'auto') throw forcedVersionMissing(opts.forced, versions, root);
  const fallback = opts.forced !== 'auto' ? opts.forced : (versionFromCatalog(opts.catalogUrl, opts.serviceType) ?? '1');
  return {
    apiVersion: fallback,
    microversion: fallback === '3' ? '3.0' : null,
    baseUrl: apiBaseUrl(opts.catalogUrl, fallback, opts.projectId),
    // A forced v2 or v1 is what a document could only have confirmed.
    fallback: opts.forced === 'auto' || opts.forced === '3' ? missing.join('; ') : undefined,
  };
}

type Versions = { versions?: VersionEntry[] | { values?: VersionEntry[] } };

/**
 * The version document's entries at `url`; null when Cinder (or a proxy in
 * front of it) answered that there is none there (some deployments hide
 * the root), which is as definitive as a document: why goes into `missing`.
 * A failure that may pass (5xx, reset, timeout) is retried with the
 * module's retry policy and then thrown: answering the catalog's bare API
 * for it would switch microversion features off until the next detection.
 */
async function readVersionDocument(
  url: string,
  opts: { http: HttpClient; token: string; signal?: AbortSignal; logger: Logger },
  missing: string[],
): Promise<VersionEntry[] | null> {
  let body: Versions | null;
  try {
    const res = await withRetry(
      () =>
        opts.http.request<Versions | null>({
          method: 'GET',
          url,
          headers: { 'x-auth-token': opts.token },
          signal: opts.signal,
          okStatuses: [200, 300],
        }),
      { method: 'GET', signal: opts.signal, logger: opts.logger },
    );
    body = res.body;
  } catch (err) {
    if (!answeredWithoutDocument(err)) throw err;
    missing.push(`${url} answered ${err.status}`);
    opts.logger.debug({ url, err: err.message }, 'no cinder version document here');
    return null;
  }
  // A proxy's HTML page or an empty answer: no document either.
  const v = typeof body === 'object' ? body?.versions : undefined;
  const entries = Array.isArray(v) ? v : (v?.values ?? null);
  if (!entries) missing.push(`${url} answered without a version document`);
  return entries;
}

/** A 4xx that is not worth another try: the root has no document for us, and will not have one on the next call either. */
function answeredWithoutDocument(err: unknown): err is OpenStackError {
  return isOpenStackError(err) && err.status !== undefined && err.status < 500 && !isRetryable(err);
}
