// Keystone authentication: v3 (password, application credential, token) and
// v2.0 (password, token, Rackspace RAX-KSKEY api key). One cached token per
// cloud, shared by every call, refreshed before it expires; concurrent callers
// share one authentication (single-flight); a 401 from a service invalidates
// the token so the next call authenticates once more. The token's lifetime is
// read on Keystone's clock (expires_at less the token's own issued_at, else
// less the answer's Date header, which Keystone under uwsgi does not send),
// so a skewed local clock neither re-authenticates on every call nor uses a
// dead token.
// A failed authentication is never not_found, though Keystone answers 404
// for credentials it no longer has (see authFailure).
import { STATUS_CODES } from 'node:http';
import type { Logger } from '../log';
import { OpenStackError } from './errors';
import { redactSecrets } from './http-errors';
import { unencryptedUrl, type HttpClient } from './http';
import { raceSignal } from './race-signal';
import { withRetry } from './retry';
import { chooseEndpoint, COMPUTE_SERVICE_TYPES, parseV2Catalog, parseV3Catalog, regionsOffering, substituteProject, VOLUME_SERVICE_TYPES, type CatalogEndpoint } from './catalog';
import type { CallOptions, CloudConfig, CloudCredentials, IdentityHealth } from './types';

export interface AuthState {
  token: string;
  /** Keystone's expires_at, on Keystone's clock. */
  expiresAt: Date;
  /** Local clock when the token was asked for: the lifetime is measured from here. */
  obtainedAt: number;
  /** Local clock when the token expires (see localExpiry). */
  validUntil: number;
  projectId?: string;
  projectName?: string;
  catalog: CatalogEndpoint[];
  identityVersion: '2' | '3';
}

/** Refresh when less than this share of the token's life is left (at most five minutes). */
const REFRESH_FRACTION = 0.2;
const MAX_REFRESH_MARGIN_MS = 5 * 60_000;
/**
 * While the current token has more than this left, a refresh runs in the
 * background and calls go on with the current token; closer to the end they
 * wait for the new one.
 */
export const KEEP_USING_MS = 30_000;

/** After a failed refresh in the background, the next one waits this long (calls meanwhile use the current token). */
export const REFRESH_RETRY_MS = 15_000;

/**
 * When a token expires by the local clock. Keystone states expires_at on its
 * own clock; less a moment on the same clock, that is the lifetime, counted
 * here from when the token was asked for: a little early, never late. The
 * moment is the token's issued_at (v3 and v2.0 bodies carry it), else the
 * answer's Date header (Keystone under uwsgi sends none with a token); both
 * are whole seconds, so one more second is taken off. With neither,
 * expires_at as it stands.
 */
export function localExpiry(expiresAt: Date, issuedAt: string | undefined, dateHeader: string | undefined, askedAt: number): number {
  // Keystone's times are UTC; v2.0 writes issued_at without the Z, which Date.parse would read as local time.
  const issuedUtc = issuedAt && !/(Z|[+-]\d\d:?\d\d)$/i.test(issuedAt) ? `${issuedAt}Z` : issuedAt;
  for (const then of [issuedUtc, dateHeader]) {
    const lifetime = expiresAt.getTime() - (then ? Date.parse(then) + 1000 : NaN);
    if (Number.isFinite(lifetime) && lifetime > 0) return askedAt + lifetime;
  }
  return expiresAt.getTime();
}

export function identityVersion(auth: CloudCredentials): '2' | '3' {
  if (auth.authPlugin === 'rackspace') return '2';
  if (auth.identityApiVersion) return auth.identityApiVersion;
  return /\/v2\.0\/?$/.test(auth.authUrl) ? '2' : '3';
}

/** The versioned auth URL: clouds.yaml often gives the bare Keystone root. */
export function versionedAuthUrl(auth: CloudCredentials): string {
  const url = auth.authUrl.replace(/\/+$/, '');
  const version = identityVersion(auth);
  if (/\/v(2\.0|3)$/.test(url)) return url;
  return `${url}/${version === '2' ? 'v2.0' : 'v3'}`;
}

type Ref = { id: string } | { name: string };

function domainRef(id: string | undefined, name: string | undefined, c: CloudCredentials): Ref {
  if (id) return { id };
  if (name) return { name };
  if (c.domainId) return { id: c.domainId };
  return { name: c.domainName ?? 'Default' };
}

function projectScope(c: CloudCredentials): Record<string, unknown> | undefined {
  if (c.projectId) return { project: { id: c.projectId } };
  if (c.projectName) return { project: { name: c.projectName, domain: domainRef(c.projectDomainId, c.projectDomainName, c) } };
  return undefined;
}

function userRef(c: CloudCredentials): Record<string, unknown> {
  if (c.userId) return { id: c.userId };
  if (!c.username) throw new OpenStackError('config', 'cloud config: username or user_id is required');
  return { name: c.username, domain: domainRef(c.userDomainId, c.userDomainName, c) };
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new OpenStackError('config', `cloud config: ${what} is required for this auth plugin`);
  return value;
}

/** The body of POST /v3/auth/tokens. */
export function v3AuthBody(c: CloudCredentials): unknown {
  switch (c.authPlugin) {
    case 'password':
      return {
        auth: {
          identity: { methods: ['password'], password: { user: { ...userRef(c), password: required(c.password, 'password') } } },
          scope: projectScope(c),
        },
      };
    case 'v3applicationcredential': {
      const secret = required(c.applicationCredentialSecret, 'application_credential_secret');
      const cred = c.applicationCredentialId
        ? { id: c.applicationCredentialId, secret }
        : { name: required(c.applicationCredentialName, 'application_credential_id or _name'), secret, user: userRef(c) };
      // An application credential carries its own project: no scope allowed.
      return { auth: { identity: { methods: ['application_credential'], application_credential: cred } } };
    }
    case 'token':
      return {
        auth: { identity: { methods: ['token'], token: { id: required(c.token, 'token') } }, scope: projectScope(c) },
      };
    case 'rackspace':
      throw new OpenStackError('config', 'the rackspace auth plugin uses Keystone v2.0');
  }
}

/** The body of POST /v2.0/tokens. */
export function v2AuthBody(c: CloudCredentials): unknown {
  const tenant = c.projectId ? { tenantId: c.projectId } : c.projectName ? { tenantName: c.projectName } : {};
  switch (c.authPlugin) {
    case 'password':
      return {
        auth: { passwordCredentials: { username: required(c.username, 'username'), password: required(c.password, 'password') }, ...tenant },
      };
    case 'rackspace':
      return {
        auth: {
          'RAX-KSKEY:apiKeyCredentials': { username: required(c.username, 'username'), apiKey: required(c.apiKey, 'api_key') },
          ...tenant,
        },
      };
    case 'token':
      return { auth: { token: { id: required(c.token, 'token') }, ...tenant } };
    case 'v3applicationcredential':
      throw new OpenStackError('config', 'application credentials need Keystone v3');
  }
}

/** The auth URL's host and path (no credentials, no query): which Keystone, or whatever auth_url points at, refused. */
export function keystoneAt(c: CloudCredentials): string {
  try {
    const u = new URL(versionedAuthUrl(c));
    return `${u.host}${u.pathname}`;
  } catch {
    return 'the auth_url';
  }
}

function named(id: string | undefined, name: string | undefined, what: string, domain?: string): string {
  if (id) return `${what} ID ${id}`;
  return `${what} '${name}'${domain ? ` (${domain})` : ''}`;
}

function domainWords(id: string | undefined, name: string | undefined, c: CloudCredentials): string {
  const ref = domainRef(id, name, c);
  return 'id' in ref ? `domain ID ${ref.id}` : `domain '${ref.name}'`;
}

function projectWords(c: CloudCredentials, v2: boolean): string {
  if (c.projectId) return `${v2 ? 'tenant' : 'project'} ID ${c.projectId}`;
  if (c.projectName) return v2 ? `tenant '${c.projectName}'` : named(undefined, c.projectName, 'project', domainWords(c.projectDomainId, c.projectDomainName, c));
  return 'no project (an unscoped token)';
}

function userWords(c: CloudCredentials, v2: boolean): string {
  if (!v2 && c.userId) return `user ID ${c.userId}`;
  return v2 ? `user '${c.username}'` : named(undefined, c.username, 'user', domainWords(c.userDomainId, c.userDomainName, c));
}

/**
 * Who asked for the token, and why Keystone may have said no, in words that
 * carry no secret: names, IDs and domains only (the caller redacts anything
 * that happens to equal a secret).
 */
export function refusedIdentity(c: CloudCredentials): { who: string; why: string } {
  const v2 = identityVersion(c) === '2';
  const checkUrl = `or auth_url does not point at Keystone (${keystoneAt(c)} answered)`;
  switch (c.authPlugin) {
    case 'v3applicationcredential':
      return {
        who: c.applicationCredentialId
          ? `application credential ID ${c.applicationCredentialId}`
          : `application credential '${c.applicationCredentialName}' of ${userWords(c, false)}`,
        why: `the application credential has expired, its secret is wrong, or its user is disabled (create one and put its ID and secret in the driver's config); ${checkUrl}`,
      };
    case 'token':
      return {
        who: `the token in the config, for ${projectWords(c, v2)}`,
        why: `the token has expired or was revoked, and a token in the config is never renewed (give the driver a password or an application credential); ${checkUrl}`,
      };
    case 'rackspace':
      return {
        who: `${userWords(c, true)} with an API key, for ${projectWords(c, true)}`,
        why: `a wrong API key, user or tenant; ${checkUrl}`,
      };
    case 'password':
      return {
        who: `${userWords(c, v2)} with a password, for ${projectWords(c, v2)}`,
        why: `a wrong password, user, project or domain, a disabled user, or one without a role on the project; ${checkUrl}`,
      };
  }
}

/** What the operator does when Keystone no longer knows the driver's credential. */
function unknownCredentialAdvice(c: CloudCredentials): string {
  if (c.authPlugin === 'v3applicationcredential' && c.applicationCredentialId) {
    return `Keystone at ${keystoneAt(c)} has no application credential ${c.applicationCredentialId} (deleted, or replaced by a rotation): create one and put its ID and secret in the driver's config`;
  }
  if (c.authPlugin === 'token') {
    return `Keystone at ${keystoneAt(c)} cannot validate the driver's token (it expired or was revoked), and a token in the config is never renewed: give the driver a password or an application credential`;
  }
  const { who } = refusedIdentity(c);
  return `Keystone at ${keystoneAt(c)} does not know ${who}: check the user, the project, their domains and the auth plugin's keys in the driver's config`;
}

/** The credentials' secrets, which no message or log line built from the config may carry. */
export function secretsOf(c: CloudCredentials): Array<string | undefined> {
  return [c.password, c.applicationCredentialSecret, c.apiKey, c.token];
}

/**
 * What a failed authentication means to the calls waiting on the token.
 * Keystone answers 404 Not Found, not 401, for an application credential ID
 * it no longer has and for a token it cannot validate. Read as not_found,
 * that would tell DeleteVolume and ControllerUnpublish that the volume is
 * already gone, and they would answer OK having done nothing. So no refusal
 * of the token request is not_found: 400 (a request Keystone calls
 * malformed) is config, 403 stays forbidden, and every other 4xx (404, 409,
 * ...) is unauthorized. What may pass (5xx, rate limits, timeouts, the
 * network) and what is already unauthorized or config stays as it is.
 */
export function authFailure(err: unknown, c: CloudCredentials): unknown {
  if (!(err instanceof OpenStackError)) return err;
  const details = { method: err.method, path: err.path, status: err.status, requestId: err.requestId, cause: err };
  const said = (text: string) => redactSecrets(text, secretsOf(c));
  switch (err.kind) {
    case 'unauthorized': {
      const { who, why } = refusedIdentity(c);
      return new OpenStackError('unauthorized', said(`${err.message}; Keystone at ${keystoneAt(c)} refused ${who}: ${why}`), details);
    }
    case 'forbidden':
    case 'config':
    case 'unavailable':
    case 'rate_limited':
    case 'timeout':
    case 'network':
    case 'tls':
      return err;
    case 'bad_request':
    case 'over_quota':
      return new OpenStackError(
        'config',
        `${err.message}; Keystone refused the authentication request itself: check the auth plugin and its keys in the driver's config`,
        details,
      );
    default:
      return new OpenStackError('unauthorized', said(`${err.message}; ${unknownCredentialAdvice(c)}`), details);
  }
}

/**
 * Keystone's messages for a refused token request that quote nothing but
 * fixed text and IDs (all seen on the Zed testbed, or Keystone's own fixed
 * strings): the only ones shown.
 */
const SAFE_AUTH_MESSAGES: readonly RegExp[] = [
  /^The request you have made requires authentication\.$/,
  /^Could not find Application Credential: [0-9a-fA-F-]{1,64}\.$/,
  /^Could not recognize Fernet token$/,
  /^Failed to validate token$/,
  /^Expecting to find [\w ]+ in \w+\. The server could not comply with the request since it is either malformed or otherwise incorrect\. The client is assumed to be in error\.$/,
  /^Attempted to authenticate with an unsupported method\.$/,
  /^The account is locked for user: [0-9a-fA-F-]{1,64}\.$/,
  /^The password is expired and needs to be changed for user: [0-9a-fA-F-]{1,64}\.$/,
];

/**
 * What of a refused token request may be shown. Keystone's message can
 * quote the request: its schema errors quote the failing value (a password
 * that is not a string comes back in the 400, checked on the Zed testbed),
 * and a proxy or a broken Keystone may echo all of it. So only the messages
 * known to quote nothing secret are shown; otherwise Keystone's title (or
 * the status's reason phrase) and a word on why that is all.
 */
export function tokenRefusalMessage(body: unknown, status: number): string {
  const error = body !== null && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
  const { message, title } = (error !== null && typeof error === 'object' ? error : {}) as { message?: unknown; title?: unknown };
  if (typeof message === 'string' && SAFE_AUTH_MESSAGES.some((known) => known.test(message))) return message;
  const name = typeof title === 'string' && /^[A-Za-z][A-Za-z ]{0,39}$/.test(title) ? title : (STATUS_CODES[status] ?? 'refused');
  return `${name} (the identity service's own message is not shown: it may quote the credentials)`;
}

interface V3TokenBody {
  token?: { expires_at?: string; issued_at?: string; project?: { id?: string; name?: string }; catalog?: unknown };
}
interface V2TokenBody {
  access?: { token?: { id?: string; expires?: string; issued_at?: string; tenant?: { id?: string; name?: string } }; serviceCatalog?: unknown };
}

export class Identity {
  private state: AuthState | null = null;
  private inflight: Promise<AuthState> | null = null;
  private lastError: string | undefined;
  /** Why the current token's catalog cannot serve Cinder or Nova (see catalogGap). */
  private catalogError: string | undefined;
  /** No refresh in the background before this time (set after one fails). */
  private nextBackgroundRefresh = 0;
  private authCount = 0;

  /** The plain http:// endpoints already warned about (once each). */
  private readonly warnedUnencrypted = new Set<string>();

  constructor(
    private readonly config: CloudConfig,
    private readonly http: HttpClient,
    private readonly log: Logger,
  ) {
    // Once per cloud, at start-up: loopback (a simulator, a test cloud) is left alone.
    const authUrl = unencryptedUrl(config.auth.authUrl);
    if (authUrl) {
      log.warn(
        { authUrl },
        'auth_url is plain http://: the credentials, every token and the service catalog travel unencrypted, readable by anyone on the network path; use https://',
      );
    }
  }

  /** Successful authentications so far (for tests and metrics). */
  get authentications(): number {
    return this.authCount;
  }

  /** A valid token and catalog: the cached one, or one fresh authentication shared with every concurrent caller. */
  async auth(opts: CallOptions = {}): Promise<AuthState> {
    const current = this.state;
    if (current && !this.needsRefresh(current)) return current;
    // Keystone briefly down must not fail the calls the current token still
    // serves: while it has time left, they use it and the refresh goes on
    // without them; after a failed one, the next waits REFRESH_RETRY_MS, so
    // an outage does not get one refresh after another from every call.
    if (current && current.validUntil - Date.now() > KEEP_USING_MS) {
      if (Date.now() >= this.nextBackgroundRefresh) void this.refresh().catch(() => undefined);
      return current;
    }
    return raceSignal(this.refresh(), opts.signal, 'keystone');
  }

  /** The one authentication under way, started if there is none. */
  private refresh(): Promise<AuthState> {
    if (!this.inflight) {
      // The shared authentication is bounded by its own timeouts, not by the
      // first caller's deadline: one impatient caller must not fail the rest.
      const inflight = this.authenticateOnce().finally(() => {
        this.inflight = null;
      });
      this.inflight = inflight;
      // A background refresh may have no one waiting on it: its failure ends here.
      inflight.catch(() => {
        this.nextBackgroundRefresh = Date.now() + REFRESH_RETRY_MS;
        const s = this.state;
        if (s && s.validUntil > Date.now()) {
          this.log.warn(
            { expiresAt: s.expiresAt.toISOString() },
            'keystone token refresh failed; the current token is used while it lasts',
          );
        }
      });
    }
    return this.inflight;
  }

  /** The token in use, if any: error messages must never carry it (see createCloud). */
  currentToken(): string | undefined {
    return this.state?.token;
  }

  /** After a 401: forget this token (if it is still the current one) so the next call authenticates. */
  invalidate(token: string): void {
    if (this.state?.token === token) this.state = null;
  }

  health(): IdentityHealth {
    const s = this.state;
    const ready = s !== null && s.validUntil > Date.now() && this.catalogError === undefined;
    return { ready, lastError: this.lastError, catalogError: this.catalogError, projectId: s?.projectId, projectName: s?.projectName, tokenExpiresAt: s?.expiresAt };
  }

  /** The URL of a service from the catalog (or the configured override), project placeholders filled. */
  endpoint(state: AuthState, serviceTypes: readonly string[], override?: string): { url: string; serviceType: string } {
    if (!override && this.config.region === undefined) this.requireOneRegion(state);
    const chosen = override
      ? { url: override.replace(/\/+$/, ''), serviceType: serviceTypes[0] ?? 'unknown' }
      : chooseEndpoint(state.catalog, serviceTypes, this.config.region, this.config.interface);
    return { url: substituteProject(chosen.url, state.projectId), serviceType: chosen.serviceType };
  }

  /**
   * With no region configured, the catalog must offer Cinder and Nova (those
   * taken from it) in one region only. Otherwise each service's first match
   * could come from a different region, and which one is first is the
   * catalog's order, which Keystone does not promise to keep: a Nova in
   * another region answers 404 for the cluster's servers (a live attachment
   * would look stale), and a Cinder in another region 404 for its volumes
   * (a DeleteVolume would look done). Pinning one region (say the first
   * that has both) would still be a guess that can change when the catalog
   * does, and the operator knows the answer: so refuse (config), naming the
   * regions, until the region is set.
   */
  private requireOneRegion(state: AuthState): void {
    // A token's catalog never changes: judged once per token, not on every Nova request.
    if (!this.regionVerdicts.has(state)) this.regionVerdicts.set(state, this.regionAmbiguity(state));
    const ambiguity = this.regionVerdicts.get(state);
    if (ambiguity) throw ambiguity;
  }

  private readonly regionVerdicts = new WeakMap<AuthState, OpenStackError | null>();

  private regionAmbiguity(state: AuthState): OpenStackError | null {
    const overrides = this.config.endpointOverrides;
    const iface = this.config.interface;
    const regions = [
      ...new Set([
        ...(overrides?.volume ? [] : regionsOffering(state.catalog, VOLUME_SERVICE_TYPES, iface)),
        ...(overrides?.compute ? [] : regionsOffering(state.catalog, COMPUTE_SERVICE_TYPES, iface)),
      ]),
    ].sort();
    if (regions.length <= 1) return null;
    return new OpenStackError(
      'config',
      `no region is configured, and the service catalog offers the volume or compute service on interface ${this.config.interface} in ${regions.length} regions (${regions.join(', ')}): ` +
        "set the cloud's region (region, region_name in clouds.yaml, OS_REGION_NAME, region in cloud.conf) to the one the cluster's servers run in, " +
        'so that Cinder and Nova are never taken from different regions',
    );
  }

  /**
   * Why the catalog cannot serve the driver: every call to Cinder or Nova
   * would fail (config) until the region or interface is corrected, so
   * health says not ready rather than leave it to the calls.
   */
  private catalogGap(state: AuthState): string | undefined {
    const overrides = this.config.endpointOverrides;
    try {
      this.warnIfUnencrypted(this.endpoint(state, VOLUME_SERVICE_TYPES, overrides?.volume).url, 'volume');
      this.warnIfUnencrypted(this.endpoint(state, COMPUTE_SERVICE_TYPES, overrides?.compute).url, 'compute');
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  private warnIfUnencrypted(url: string, service: string): void {
    const shown = unencryptedUrl(url);
    if (!shown || this.warnedUnencrypted.has(shown)) return;
    this.warnedUnencrypted.add(shown);
    this.log.warn(
      { service, endpoint: shown },
      `the ${service} endpoint is plain http://: the token sent with every request travels unencrypted, and anyone on the network path can use it until it expires; use https:// endpoints`,
    );
  }

  private needsRefresh(s: AuthState): boolean {
    const lifetime = s.validUntil - s.obtainedAt;
    const margin = Math.min(MAX_REFRESH_MARGIN_MS, lifetime * REFRESH_FRACTION);
    return Date.now() >= s.validUntil - margin;
  }

  private async authenticateOnce(): Promise<AuthState> {
    const c = this.config.auth;
    const version = identityVersion(c);
    const base = versionedAuthUrl(c);
    try {
      // Asking for a token creates nothing that matters, so it is safe to repeat.
      const state = await withRetry(
        () => (version === '3' ? this.authV3(base) : this.authV2(base)),
        { method: 'POST', idempotent: true, logger: this.log },
      );
      this.state = state;
      this.lastError = undefined;
      this.catalogError = this.catalogGap(state);
      this.authCount++;
      this.log.debug(
        { identityVersion: version, projectId: state.projectId, expiresAt: state.expiresAt.toISOString() },
        'authenticated with keystone',
      );
      if (this.catalogError) this.log.warn({ err: this.catalogError }, 'the service catalog cannot serve the driver');
      return state;
    } catch (caught) {
      const err = authFailure(caught, c);
      this.lastError = err instanceof Error ? err.message : String(err);
      this.log.warn({ err: this.lastError }, 'keystone authentication failed');
      throw err;
    }
  }

  private async authV3(base: string): Promise<AuthState> {
    const askedAt = Date.now();
    const res = await this.http.request<V3TokenBody>({
      method: 'POST',
      url: `${base}/auth/tokens`,
      json: v3AuthBody(this.config.auth),
      describeError: tokenRefusalMessage,
    });
    const token = res.headers['x-subject-token'];
    const body = res.body?.token;
    if (!token || !body?.expires_at) {
      throw new OpenStackError('unavailable', 'keystone v3 answered without a token or an expiry', { method: 'POST', path: '/auth/tokens' });
    }
    const expiresAt = new Date(body.expires_at);
    return {
      token,
      expiresAt,
      obtainedAt: askedAt,
      validUntil: localExpiry(expiresAt, body.issued_at, res.headers.date, askedAt),
      projectId: body.project?.id,
      projectName: body.project?.name,
      catalog: parseV3Catalog(body.catalog),
      identityVersion: '3',
    };
  }

  private async authV2(base: string): Promise<AuthState> {
    const askedAt = Date.now();
    const res = await this.http.request<V2TokenBody>({
      method: 'POST',
      url: `${base}/tokens`,
      json: v2AuthBody(this.config.auth),
      describeError: tokenRefusalMessage,
    });
    const access = res.body?.access;
    if (!access?.token?.id || !access.token.expires) {
      throw new OpenStackError('unavailable', 'keystone v2.0 answered without a token or an expiry', { method: 'POST', path: '/tokens' });
    }
    const expiresAt = new Date(access.token.expires);
    return {
      token: access.token.id,
      expiresAt,
      obtainedAt: askedAt,
      validUntil: localExpiry(expiresAt, access.token.issued_at, res.headers.date, askedAt),
      projectId: access.token.tenant?.id,
      projectName: access.token.tenant?.name,
      catalog: parseV2Catalog(access.serviceCatalog),
      identityVersion: '2',
    };
  }
}
