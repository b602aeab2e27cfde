// Fault injection: a list of rules matched in the order they were added. A
// matching rule is consumed once per request until its `times` run out.
import { readFile } from 'node:fs/promises';
import type { SimFault, SimService } from './types';

interface ActiveFault {
  fault: SimFault;
  regex?: RegExp;
  remaining: number;
}

const SERVICES: readonly SimService[] = ['identity', 'volume', 'compute', 'metadata'];

/** Validates a fault that may have come over HTTP as JSON; throws with a reason. */
export function normalizeFault(input: unknown): SimFault {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('a fault must be a JSON object');
  const f = input as Record<string, unknown>;
  const out: SimFault = {};
  if (f.service !== undefined) {
    if (!SERVICES.includes(f.service as SimService)) throw new Error(`service must be one of ${SERVICES.join(', ')}`);
    out.service = f.service as SimService;
  }
  if (f.method !== undefined) out.method = String(f.method).toUpperCase();
  if (f.pathPattern !== undefined) {
    out.pathPattern = String(f.pathPattern);
    new RegExp(out.pathPattern); // throws on a bad pattern, before it is stored
  }
  for (const k of ['status', 'retryAfter', 'delayMs'] as const) {
    if (f[k] !== undefined) {
      const n = Number(f[k]);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k} must be a non-negative number`);
      out[k] = n;
    }
  }
  if (out.status !== undefined && (out.status < 100 || out.status > 599)) throw new Error('status must be an HTTP status');
  if (f.body !== undefined) out.body = f.body;
  if (f.reset !== undefined) out.reset = f.reset === true;
  if (f.resetAfter !== undefined) out.resetAfter = f.resetAfter === true;
  // JSON has no Infinity: null, -1 or the string "Infinity" mean "until cleared".
  if (f.times !== undefined) {
    const t = f.times === null || f.times === 'Infinity' || f.times === -1 ? Infinity : Number(f.times);
    if (!(t === Infinity || (Number.isInteger(t) && t > 0))) throw new Error('times must be a positive integer or Infinity');
    out.times = t;
  }
  return out;
}

export class FaultSet {
  private faults: ActiveFault[] = [];

  add(fault: SimFault): void {
    const f = normalizeFault(fault);
    this.faults.push({ fault: f, regex: f.pathPattern !== undefined ? new RegExp(f.pathPattern) : undefined, remaining: f.times ?? 1 });
  }

  clear(): void {
    this.faults = [];
  }

  /** The first rule matching this request, consumed; undefined when none. */
  take(service: SimService, method: string, path: string): SimFault | undefined {
    if (this.faults.length === 0) return undefined;
    for (let i = 0; i < this.faults.length; i++) {
      const a = this.faults[i];
      if (a.fault.service && a.fault.service !== service) continue;
      if (a.fault.method && a.fault.method !== method) continue;
      if (a.regex && !a.regex.test(path)) continue;
      a.remaining -= 1;
      if (a.remaining <= 0) this.faults.splice(i, 1);
      return a.fault;
    }
    return undefined;
  }
}

export class Counters {
  private readonly counts = new Map<string, number>();

  inc(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  reset(): void {
    this.counts.clear();
  }
}

/** A JSON file holding one fault or an array of them, as POST /_sim/faults takes. */
export async function loadFaultsFile(file: string): Promise<SimFault[]> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
  return (Array.isArray(parsed) ? parsed : [parsed]).map((f, i) => {
    try {
      return normalizeFault(f);
    } catch (err) {
      throw new Error(`${file}: fault ${i}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}
