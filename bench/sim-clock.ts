// When did the simulator make a state change? The simulator stamps updated_at
// (its own wall clock, ms resolution) at the moment a change completes; the
// benchmark shares that clock because the simulator runs in this process.
// Read from its control API, not through Cinder's API: no request is counted
// against the driver, and Cinder's views show whole seconds (as its database
// keeps them), too coarse to time a change.
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

export function snapshotChangedAt(sim: Simulator, id: string): number {
  const s = sim.control.snapshot(id) as { updatedAt?: string | null; createdAt: string } | undefined;
  if (!s) throw new Error(`the simulator has no snapshot ${id}`);
  return parseOpenStackTime(s.updatedAt ?? s.createdAt);
}
