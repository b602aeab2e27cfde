// Microversions ('3.42', '2.60') compared as numbers per part: '3.9' < '3.42'.

export function parseMicroversion(v: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function compareMicroversions(a: string, b: string): number {
  const pa = parseMicroversion(a);
  const pb = parseMicroversion(b);
  if (!pa || !pb) throw new Error(`not a microversion: ${!pa ? a : b}`);
  return pa[0] - pb[0] || pa[1] - pb[1];
}

export function atLeast(have: string | null, want: string): boolean {
  return have !== null && compareMicroversions(have, want) >= 0;
}

/** The highest version both sides support, or null when the server's range does not reach ours. */
export function negotiate(ours: string, serverMin: string, serverMax: string): string | null {
  const chosen = compareMicroversions(ours, serverMax) <= 0 ? ours : serverMax;
  return compareMicroversions(chosen, serverMin) >= 0 ? chosen : null;
}
