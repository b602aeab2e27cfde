// Shared request shapes and small helpers for the figures.
import { silentLogger } from '../src/log';
import { createCloud } from '../src/openstack/cloud';
import type { Cloud } from '../src/openstack/types';
import type { Simulator } from '../src/sim';
import { volumeStatus } from './sim-clock';

export const GiB = 1024 ** 3;
export const MOUNT_CAP = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/** The benchmark's own OpenStack client, for set-up that must not teach the driver's waiter anything. */
export function setupClient(sim: Simulator): Cloud {
  return createCloud(sim.cloudConfig(), silentLogger);
}

/** Wait (by reading the simulator's state, no HTTP) until a volume has one of these statuses. */
export async function untilVolumeStatus(sim: Simulator, id: string, statuses: string[], timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (statuses.includes(volumeStatus(sim, id) ?? '')) return;
    await sleep(5);
  }
  throw new Error(`volume ${id} did not reach ${statuses.join('/')} (is ${volumeStatus(sim, id)})`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Requests counted by the simulator between two snapshots of its counters. */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export function sum(values: Iterable<number>): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** OpenStack API requests (everything but Keystone authentication and the metadata service). */
export function apiRequests(delta: Record<string, number>): number {
  return sum(Object.entries(delta).filter(([k]) => k !== 'identity.auth' && !k.includes('/metadata/') && !k.includes('/identity/')).map(([, v]) => v));
}

/**
 * Status reads: GETs of a volume, of volumes/detail, of snapshots and of Nova
 * attachments, but not searches (a '(filtered)' list is a name lookup, one
 * per create, not polling).
 */
export function statusPolls(delta: Record<string, number>): number {
  return sum(
    Object.entries(delta)
      .filter(([k]) => k.startsWith('GET ') && /volumes|snapshots|attachments/.test(k) && !k.endsWith('(filtered)'))
      .map(([, v]) => v),
  );
}

/** Unfiltered volume lists: the waiter's batched polls (one list per tick serves every waiter). */
export function volumeListPolls(delta: Record<string, number>): number {
  return sum(Object.entries(delta).filter(([k]) => k.startsWith('GET ') && k.endsWith('/volumes/detail')).map(([, v]) => v));
}
