// When did the simulator make a state change? The simulator stamps updated_at
// (its own wall clock, ms resolution) at the moment a change completes; the
// benchmark shares that clock because the simulator runs in this process.
// Volumes are read from its control API (no request counted against the
// driver); snapshots have no control accessor, so their updated_at is read
// through the Cinder API with a token of our own, after the driver's requests
// have been counted.
import type { Simulator } from '../src/sim';

/** Cinder prints '2024-01-02T03:04:05.123000' (microseconds, no zone: UTC). */
export function parseOpenStackTime(s: string): number {
  return Date.parse(`${s.slice(0, 23)}Z`);
}

export function volumeChangedAt(sim: Simulator, id: string): number {
  const v = sim.control.volume(id) as { updatedAt?: string | null; createdAt: string } | undefined;
  if (!v) throw new Error(`the simulator has no volume ${id}`);
  return parseOpenStackTime(v.updatedAt ?? v.createdAt);
}

export function volumeStatus(sim: Simulator, id: string): string | undefined {
  return (sim.control.volume(id) as { status?: string } | undefined)?.status;
}

export class SimApi {
  private token?: { value: string; volumeUrl: string };
  constructor(private readonly sim: Simulator) {}

  private async auth(): Promise<{ value: string; volumeUrl: string }> {
    if (this.token) return this.token;
    const c = this.sim.credentials;
    const res = await fetch(`${this.sim.authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: c.username, password: c.password, domain: { name: c.userDomainName } } } },
          scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
        },
      }),
    });
    if (res.status !== 201) throw new Error(`simulator auth failed: HTTP ${res.status}`);
    const body = (await res.json()) as { token: { catalog: Array<{ type: string; endpoints: Array<{ interface: string; url: string }> }> } };
    const volume = body.token.catalog.find((s) => s.type === 'volumev3');
    const url = volume?.endpoints.find((e) => e.interface === 'public')?.url;
    if (!url) throw new Error('no volumev3 endpoint in the simulator catalog');
    this.token = { value: res.headers.get('x-subject-token')!, volumeUrl: url };
    return this.token;
  }

  async snapshotChangedAt(id: string): Promise<number> {
    const t = await this.auth();
    const res = await fetch(`${t.volumeUrl}/snapshots/${id}`, { headers: { 'x-auth-token': t.value } });
    if (res.status !== 200) throw new Error(`GET snapshot ${id}: HTTP ${res.status}`);
    const body = (await res.json()) as { snapshot: { updated_at: string | null; created_at: string } };
    return parseOpenStackTime(body.snapshot.updated_at ?? body.snapshot.created_at);
  }
}
