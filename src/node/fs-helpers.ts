// stat and lstat that answer null for a path that does not exist.
import type { BigIntStats, Stats } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { isMissing } from './paths';

export function statOrNull(p: string): Promise<Stats | null> {
  return orNull(stat(p));
}

/** stat with st_rdev as a bigint (a device number does not always fit a double); null when missing. */
export function bigStatOrNull(p: string): Promise<BigIntStats | null> {
  return orNull(stat(p, { bigint: true }));
}

export function lstatOrNull(p: string): Promise<Stats | null> {
  return orNull(lstat(p));
}

async function orNull<T>(pending: Promise<T>): Promise<T | null> {
  try {
    return await pending;
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}
