// CSI capacity ranges in bytes <-> Cinder sizes in whole GiB.
import type { CapacityRange__Output } from '../gen/csi/v1/CapacityRange';
import { GiB } from '../csi/constants';
import { invalidArgument, outOfRange } from '../csi/errors';

export const gibToBytes = (gib: number): number => gib * GiB;

/** The largest size Cinder takes, in GiB: its API refuses a size above its database's int (db.MAX_INT). */
export const MAX_CINDER_GIB = 2 ** 31 - 1;

/**
 * The Cinder size for a capacity range: required_bytes rounded up to whole
 * GiB, 1 GiB when absent. OUT_OF_RANGE when limit_bytes is below that.
 */
export function sizeForRange(range: CapacityRange__Output | null | undefined): number {
  const required = Number(range?.required_bytes ?? 0);
  const limit = Number(range?.limit_bytes ?? 0);
  if (!Number.isFinite(required) || required < 0) throw invalidArgument(`capacity_range.required_bytes must not be negative`);
  if (!Number.isFinite(limit) || limit < 0) throw invalidArgument(`capacity_range.limit_bytes must not be negative`);
  const gib = Math.max(1, Math.ceil(required / GiB));
  if (gib > MAX_CINDER_GIB) {
    throw outOfRange(
      `capacity_range.required_bytes ${required} is more than Cinder's largest volume, ${MAX_CINDER_GIB} GiB (${gibToBytes(MAX_CINDER_GIB)} bytes)`,
    );
  }
  if (limit > 0 && gibToBytes(gib) > limit) {
    throw outOfRange(
      `Cinder sizes volumes in whole GiB: the request needs ${gib} GiB (${gibToBytes(gib)} bytes) but limit_bytes is ${limit}; ` +
        `raise the limit to at least ${gibToBytes(gib)}`,
    );
  }
  return gib;
}

/** Whether an existing volume of `gib` satisfies `range` (for idempotent creates). */
export function fitsRange(gib: number, range: CapacityRange__Output | null | undefined): boolean {
  const bytes = gibToBytes(gib);
  const required = Number(range?.required_bytes ?? 0);
  const limit = Number(range?.limit_bytes ?? 0);
  return bytes >= required && (limit === 0 || bytes <= limit);
}
