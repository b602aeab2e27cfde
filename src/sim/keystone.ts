// Keystone: v3 (password, application credential, token) and v2.0 (password,
// token, and Rackspace's RAX-KSKEY:apiKeyCredentials), issuing tokens that
// expire and a catalog in each version's shape. Its refusals are the real
// ones: a wrong password or secret is 401, but an application credential ID
// it does not know (deleted, or rotated) and a v3 token it cannot validate
// (expired, revoked, or never issued) are 404, as on the Zed testbed.
import { randomBytes, randomUUID } from 'node:crypto';
import { httpError, objectField, str, type RequestContext, type Reply, type Route } from './http';
import type { CinderApiVersion, SimCredentials } from './types';

export const REGION = 'RegionOne';
const DOMAIN = { id: 'default', name: 'Default' };
const ROLES = [{ id: randomUUID().replace(/-/g, ''), name: 'member' }, { id: randomUUID().replace(/-/g, ''), name: 'reader' }];

interface TokenRecord {
  id: string;
  expiresAt: number;
  issuedAt: number;
  methods: string[];
  auditId: string;
  /** Set when the token was made with an application credential. */
  appCred: boolean;
}

export interface IdentityOptions {
  baseUrl: () => string;
  tokenLifetimeSeconds: number;
  cinderVersions: CinderApiVersion[];
  /** The regions the catalog lists every service in (each with this one simulator's URLs). */
  regions: readonly string[];
  onAuth: () => void;
}

function keystoneTime(ms: number): string {
  // Keystone prints microseconds: 2015-11-05T22:00:11.000000Z
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function makeCredentials(region: string = REGION): SimCredentials {
  const hex = (n: number): string => randomBytes(n).toString('hex');
  return {
    username: 'demo',
    password: hex(12),
    projectName: 'demo',
    projectId: hex(16),
    userDomainName: DOMAIN.name,
    projectDomainName: DOMAIN.name,
    apiKey: hex(16),
    applicationCredentialId: hex(16),
    applicationCredentialSecret: hex(24),
    applicationCredentialName: 'sim-app-cred',
    region,
    userId: hex(16),
  };
}

export class Identity {
  private tokens = new Map<string, TokenRecord>();
  /** Tokens issued once and dead now (expired or revoked): Keystone still recognizes them, and fails to validate them. */
  private dead = new Set<string>();
  /** False once the application credential is deleted: its ID is then unknown. */
  private appCredExists = true;

  constructor(
    readonly creds: SimCredentials,
    private readonly opts: IdentityOptions,
  ) {}

  /** The token's record when it is known and not expired. */
  validate(token: string | undefined): TokenRecord | undefined {
    if (!token) return undefined;
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt) {
      this.tokens.delete(token);
      this.dead.add(token);
      return undefined;
    }
    return t;
  }

  expireAll(): void {
    for (const id of this.tokens.keys()) this.dead.add(id);
    this.tokens = new Map();
  }

  /**
   * The application credential is deleted (or rotated: the old ID is gone).
   * Keystone revokes the tokens made with it, and refuses it from now on.
   */
  deleteApplicationCredential(): void {
    this.appCredExists = false;
    for (const [id, t] of this.tokens) {
      if (!t.appCred) continue;
      this.tokens.delete(id);
      this.dead.add(id);
    }
  }

  setLifetime(seconds: number): void {
    this.opts.tokenLifetimeSeconds = seconds;
  }

  private issue(methods: string[], appCred: boolean): TokenRecord {
    // Fernet tokens are opaque url-safe strings starting with gAAAAA.
    const id = `gAAAAA${randomBytes(60).toString('base64url')}`;
    const issuedAt = Date.now();
    const t: TokenRecord = { id, issuedAt, expiresAt: issuedAt + this.opts.tokenLifetimeSeconds * 1000, methods, auditId: randomBytes(16).toString('base64url').slice(0, 22), appCred };
    this.tokens.set(id, t);
    this.opts.onAuth();
    return t;
  }

  // ---------------------------------------------------------- catalog

  private services(): Array<{ type: string; name: string; url: string }> {
    const base = this.opts.baseUrl();
    const p = this.creds.projectId;
    const out = [
      { type: 'identity', name: 'keystone', url: `${base}/identity` },
      { type: 'compute', name: 'nova', url: `${base}/compute/v2.1` },
    ];
    const versions = this.opts.cinderVersions;
    if (versions.includes('v3')) {
      out.push({ type: 'volumev3', name: 'cinderv3', url: `${base}/volume/v3/${p}` });
      out.push({ type: 'block-storage', name: 'cinder', url: `${base}/volume/v3/${p}` });
    }
    if (versions.includes('v2')) out.push({ type: 'volumev2', name: 'cinderv2', url: `${base}/volume/v2/${p}` });
    if (versions.includes('v1')) out.push({ type: 'volume', name: 'cinderv1', url: `${base}/volume/v1/${p}` });
    return out;
  }

  private catalogV3(): unknown[] {
    return this.services().map((s, i) => ({
      id: `${i}${s.type}`.padEnd(32, '0').slice(0, 32),
      type: s.type,
      name: s.name,
      endpoints: this.opts.regions.flatMap((region, k) =>
        (['public', 'internal', 'admin'] as const).map((iface, j) => ({
          id: `${i}${j}${k || ''}${s.type}${iface}`.padEnd(32, '0').slice(0, 32),
          interface: iface,
          region,
          region_id: region,
          url: s.url,
        })),
      ),
    }));
  }

  private catalogV2(): unknown[] {
    return this.services().map((s, i) => ({
      type: s.type,
      name: s.name,
      endpoints: this.opts.regions.map((region, k) => ({ id: `${i}${k || ''}${s.type}`.padEnd(32, '0').slice(0, 32), region, publicURL: s.url, internalURL: s.url, adminURL: s.url })),
      endpoints_links: [],
    }));
  }

  // ------------------------------------------------------------- v3

  private tokenBodyV3(t: TokenRecord): unknown {
    const c = this.creds;
    const body: Record<string, unknown> = {
      methods: t.methods,
      user: { domain: DOMAIN, id: c.userId, name: c.username, password_expires_at: null },
      audit_ids: [t.auditId],
      expires_at: keystoneTime(t.expiresAt),
      issued_at: keystoneTime(t.issuedAt),
      project: { domain: DOMAIN, id: c.projectId, name: c.projectName },
      is_domain: false,
      roles: ROLES,
      catalog: this.catalogV3(),
    };
    if (t.appCred) body.application_credential = { id: c.applicationCredentialId, name: c.applicationCredentialName, restricted: true };
    return { token: body };
  }

  /** Keystone's 401 names itself in WWW-Authenticate, as keystonemiddleware does for the other services. */
  private challenge(): Record<string, string> {
    return { 'www-authenticate': `Keystone uri="${this.opts.baseUrl()}/identity/v3"` };
  }

  private unauthorized(): never {
    throw httpError('identity', 401, 'The request you have made requires authentication.', this.challenge());
  }

  /**
   * Keystone's token method on a token it cannot use: 404, not 401. A Fernet
   * token it issued and that is now dead "Failed to validate token"; anything
   * else "Could not recognize Fernet token" (both seen on the Zed testbed).
   */
  private tokenNotFound(id: string | undefined): never {
    const message = id !== undefined && this.dead.has(id) ? 'Failed to validate token' : 'Could not recognize Fernet token';
    throw httpError('identity', 404, message);
  }

  private domainMatches(d: unknown): boolean {
    if (!d || typeof d !== 'object') return false;
    const dom = d as Record<string, unknown>;
    return dom.id === DOMAIN.id || dom.name === DOMAIN.name;
  }

  private userMatches(u: Record<string, unknown>): boolean {
    if (u.id !== undefined) return u.id === this.creds.userId;
    return u.name === this.creds.username && this.domainMatches(u.domain);
  }

  /** A v3 scope must name our project (by id, or by name with its domain); none means the default project. */
  private checkScopeV3(auth: Record<string, unknown>): void {
    const scope = auth.scope;
    if (scope === undefined || scope === 'unscoped') return;
    const project = scope && typeof scope === 'object' ? (scope as Record<string, unknown>).project : undefined;
    if (!project || typeof project !== 'object') this.unauthorized();
    const p = project as Record<string, unknown>;
    const ok = p.id !== undefined ? p.id === this.creds.projectId : p.name === this.creds.projectName && this.domainMatches(p.domain);
    if (!ok) this.unauthorized();
  }

  private authV3(ctx: RequestContext): Reply {
    const auth = objectField('identity', ctx.body, 'auth');
    const identity = objectField('identity', auth, 'identity');
    const methods = Array.isArray(identity.methods) ? identity.methods.filter((m): m is string => typeof m === 'string') : [];
    if (methods.length === 0) throw httpError('identity', 400, "Invalid input for field 'identity/methods': [] is too short");
    const method = methods[0];
    let appCred = false;
    if (method === 'password') {
      const user = objectField('identity', objectField('identity', identity, 'password'), 'user');
      if (!this.userMatches(user) || user.password !== this.creds.password) this.unauthorized();
      this.checkScopeV3(auth);
    } else if (method === 'application_credential') {
      const ac = objectField('identity', identity, 'application_credential');
      const c = this.creds;
      // By ID, the credential is looked up, and an unknown one is not found
      // (404); by name, the user's are searched, and no match is a plain 401.
      if (ac.id !== undefined) {
        if (ac.id !== c.applicationCredentialId || !this.appCredExists) throw httpError('identity', 404, `Could not find Application Credential: ${String(ac.id)}.`);
      } else {
        const user = ac.user && typeof ac.user === 'object' ? (ac.user as Record<string, unknown>) : undefined;
        if (!this.appCredExists || ac.name !== c.applicationCredentialName || !user || !this.userMatches(user)) this.unauthorized();
      }
      if (ac.secret !== c.applicationCredentialSecret) this.unauthorized();
      appCred = true;
    } else if (method === 'token') {
      const tok = objectField('identity', identity, 'token');
      const old = this.validate(str(tok.id));
      if (!old) this.tokenNotFound(str(tok.id));
      appCred = old.appCred;
      this.checkScopeV3(auth);
    } else {
      throw httpError('identity', 401, `Attempted to authenticate with an unsupported method.`, this.challenge());
    }
    const t = this.issue(methods, appCred);
    return { status: 201, body: this.tokenBodyV3(t), headers: { 'x-subject-token': t.id } };
  }

  private validateV3(ctx: RequestContext): Reply {
    const subject = str(ctx.headers['x-subject-token']);
    const t = this.validate(subject);
    if (!t) throw httpError('identity', 404, `Could not find token: ${subject ?? ''}.`);
    return { status: 200, body: this.tokenBodyV3(t), headers: { 'x-subject-token': t.id } };
  }

  // ----------------------------------------------------------- v2.0

  private authV2(ctx: RequestContext): Reply {
    const auth = objectField('identity', ctx.body, 'auth');
    const c = this.creds;
    let methods: string[];
    if (auth.passwordCredentials !== undefined) {
      const pc = objectField('identity', auth, 'passwordCredentials');
      if (pc.username !== c.username || pc.password !== c.password) this.unauthorized();
      methods = ['password'];
    } else if (auth['RAX-KSKEY:apiKeyCredentials'] !== undefined) {
      const kc = objectField('identity', auth, 'RAX-KSKEY:apiKeyCredentials');
      if (kc.username !== c.username || kc.apiKey !== c.apiKey) this.unauthorized();
      methods = ['password'];
    } else if (auth.token !== undefined) {
      if (!this.validate(str(objectField('identity', auth, 'token').id))) this.unauthorized();
      methods = ['token'];
    } else {
      throw httpError('identity', 400, 'Expecting to find passwordCredentials or token in auth. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.');
    }
    if (auth.tenantId !== undefined && auth.tenantId !== c.projectId) this.unauthorized();
    if (auth.tenantName !== undefined && auth.tenantName !== c.projectName) this.unauthorized();
    const t = this.issue(methods, false);
    return {
      status: 200,
      body: {
        access: {
          token: {
            id: t.id,
            issued_at: keystoneTime(t.issuedAt),
            expires: new Date(t.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
            tenant: { id: c.projectId, name: c.projectName, description: null, enabled: true },
            audit_ids: [t.auditId],
          },
          serviceCatalog: this.catalogV2(),
          user: { id: c.userId, name: c.username, username: c.username, roles: ROLES.map((r) => ({ name: r.name })), roles_links: [] },
          metadata: { is_admin: 0, roles: ROLES.map((r) => r.id) },
        },
      },
    };
  }

  // --------------------------------------------------------- versions

  private versionV3(): unknown {
    return {
      id: 'v3.14',
      status: 'stable',
      updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${this.opts.baseUrl()}/identity/v3/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    };
  }

  private versionV2(): unknown {
    return {
      id: 'v2.0',
      status: 'deprecated',
      updated: '2016-08-04T00:00:00Z',
      links: [{ rel: 'self', href: `${this.opts.baseUrl()}/identity/v2.0/` }, { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v2.0+json' }],
    };
  }

  routes(): Route[] {
    const r = (method: string, template: string, auth: boolean, handler: Route['handler']): Route => ({ service: 'identity', method, template, auth, handler });
    // The 300 points at the preferred version with Location, as Keystone does.
    const versions = (): Reply => ({
      status: 300,
      body: { versions: { values: [this.versionV3(), this.versionV2()] } },
      headers: { location: `${this.opts.baseUrl()}/identity/v3/` },
    });
    return [
      r('GET', '/identity', false, versions),
      r('GET', '/identity/', false, versions),
      r('GET', '/identity/v3', false, () => ({ status: 200, body: { version: this.versionV3() } })),
      r('GET', '/identity/v3/', false, () => ({ status: 200, body: { version: this.versionV3() } })),
      r('POST', '/identity/v3/auth/tokens', false, (ctx) => this.authV3(ctx)),
      r('GET', '/identity/v3/auth/tokens', true, (ctx) => this.validateV3(ctx)),
      r('GET', '/identity/v2.0', false, () => ({ status: 200, body: { version: this.versionV2() } })),
      r('GET', '/identity/v2.0/', false, () => ({ status: 200, body: { version: this.versionV2() } })),
      r('POST', '/identity/v2.0/tokens', false, (ctx) => this.authV2(ctx)),
    ];
  }
}
