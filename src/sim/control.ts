// The control surface: in-process (SimControl) and the same over HTTP under
// /_sim/, so a separately started `cinder-csi sim` can be driven by benchmarks.
import type { Reply } from './http';
import { normalizeFault } from './faults';
import type { SimControl, SimDurations } from './types';

const DURATION_KEYS: ReadonlyArray<keyof SimDurations> = ['create', 'delete', 'attach', 'detach', 'extend', 'snapshot', 'backup', 'restore', 'retype'];

export function parseDurations(input: unknown): Partial<SimDurations> {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('durations must be a JSON object');
  const out: Partial<SimDurations> = {};
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
    if (!DURATION_KEYS.includes(k as keyof SimDurations)) throw new Error(`unknown duration '${k}' (known: ${DURATION_KEYS.join(', ')})`);
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`duration '${k}' must be a non-negative number of ms`);
    out[k as keyof SimDurations] = n;
  }
  return out;
}

function nonNegative(v: unknown, what: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a non-negative number`);
  return n;
}

/** Answers /_sim/... requests; undefined for an unknown endpoint. */
export function controlHttp(control: SimControl, method: string, path: string, body: unknown): Reply | undefined {
  const ok: Reply = { status: 200, body: { ok: true } };
  try {
    switch (`${method} ${path}`) {
      case 'POST /_sim/faults':
        for (const f of Array.isArray(body) ? body : [body]) control.addFault(normalizeFault(f));
        return ok;
      case 'DELETE /_sim/faults':
        control.clearFaults();
        return ok;
      case 'POST /_sim/latency': {
        const ms = body && typeof body === 'object' ? (body as Record<string, unknown>).ms : undefined;
        control.setLatency(nonNegative(ms, 'ms'));
        return ok;
      }
      case 'POST /_sim/durations':
        control.setDurations(parseDurations(body));
        return ok;
      case 'POST /_sim/expire-tokens':
        control.expireTokens();
        return ok;
      case 'GET /_sim/counters':
        return { status: 200, body: control.counters() };
      case 'POST /_sim/counters/reset':
        control.resetCounters();
        return ok;
      default:
        return undefined;
    }
  } catch (err) {
    return { status: 400, body: { error: err instanceof Error ? err.message : String(err) } };
  }
}
