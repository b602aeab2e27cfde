// Shared helpers for the simulator tests: real HTTP with undici, a token, and
// polling until a resource reaches a state.
import { request, type Dispatcher } from 'undici';
import type { Simulator } from '../../src/sim';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // JSON of many shapes, checked field by field
  text: string;
}

export async function call(
  method: Dispatcher.HttpMethod,
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; dispatcher?: Dispatcher } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (opts.token) headers['x-auth-token'] = opts.token;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), dispatcher: opts.dispatcher });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

export function passwordAuthBody(sim: Simulator): unknown {
  const c = sim.credentials;
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } } },
      scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
    },
  };
}

export interface Session {
  token: string;
  volume: string;
  compute: string;
  catalog: any[];
}

/** Authenticates with the password and reads the public endpoints from the catalog. */
export async function login(sim: Simulator, dispatcher?: Dispatcher): Promise<Session> {
  const r = await call('POST', `${sim.authUrl}/auth/tokens`, { body: passwordAuthBody(sim), dispatcher });
  if (r.status !== 201) throw new Error(`auth failed: ${r.status} ${r.text}`);
  const catalog = r.body.token.catalog as any[];
  const url = (type: string): string => catalog.find((s) => s.type === type)?.endpoints.find((e: { interface: string }) => e.interface === 'public')?.url;
  return { token: String(r.headers['x-subject-token']), volume: url('volumev3') ?? url('volumev2') ?? url('volume'), compute: url('compute'), catalog };
}

/** Polls `get` until `done` holds; fails with the last value after timeoutMs. */
export async function waitFor<T>(get: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last = await get();
  while (!done(last)) {
    if (Date.now() > end) throw new Error(`timed out; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 10));
    last = await get();
  }
  return last;
}

export async function volumeStatus(s: Session, id: string, mv = '3.0'): Promise<string> {
  const r = await call('GET', `${s.volume}/volumes/${id}`, { token: s.token, headers: { 'openstack-api-version': `volume ${mv}` } });
  return r.status === 404 ? 'gone' : r.body.volume.status;
}

export async function createVolume(s: Session, volume: Record<string, unknown>, mv = '3.0'): Promise<HttpResult> {
  return call('POST', `${s.volume}/volumes`, { token: s.token, body: { volume }, headers: { 'openstack-api-version': `volume ${mv}` } });
}

/** Creates a volume and waits until it is available; returns its ID. */
export async function availableVolume(s: Session, volume: Record<string, unknown>, mv = '3.0'): Promise<string> {
  const r = await createVolume(s, volume, mv);
  if (r.status !== 202) throw new Error(`create failed: ${r.status} ${r.text}`);
  await waitFor(() => volumeStatus(s, r.body.volume.id), (st) => st === 'available');
  return r.body.volume.id;
}
