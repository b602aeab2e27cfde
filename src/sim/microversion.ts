// Microversion negotiation as Cinder and Nova do it: the `OpenStack-API-Version:
// <service> X.Y` header (Nova also reads its legacy X-OpenStack-Nova-API-Version),
// 'latest' meaning the maximum, no header meaning the minimum, 406 above the
// range and 400 for a malformed version. The reply echoes the version used.
import { httpError, type RequestContext } from './http';
import type { SimService } from './types';

export interface Microversion {
  major: number;
  minor: number;
}

export function parseVersion(s: string): Microversion | null {
  const m = /^([1-9]\d*)\.(0|[1-9]\d*)$/.exec(s.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

export function compare(a: Microversion, b: Microversion): number {
  return a.major - b.major || a.minor - b.minor;
}

export function format(v: Microversion): string {
  return `${v.major}.${v.minor}`;
}

/** v >= the version string (which is a constant in our code). */
export function atLeast(v: Microversion | null, min: string): boolean {
  return v !== null && compare(v, parseVersion(min)!) >= 0;
}

export interface NegotiationSpec {
  service: SimService;
  /** The service type in the standard header: 'volume' or 'compute'. */
  serviceType: string;
  legacyHeader?: string;
  min: string;
  max: string;
}

function fromStandardHeader(raw: string | string[] | undefined, serviceType: string): string | undefined {
  if (raw === undefined) return undefined;
  const all = (Array.isArray(raw) ? raw.join(',') : raw).split(',');
  for (const item of all) {
    const [type, version] = item.trim().split(/\s+/, 2);
    if (type?.toLowerCase() === serviceType && version) return version;
  }
  return undefined;
}

export function negotiate(ctx: RequestContext, spec: NegotiationSpec): Microversion {
  const min = parseVersion(spec.min)!;
  const max = parseVersion(spec.max)!;
  let requested = fromStandardHeader(ctx.headers['openstack-api-version'], spec.serviceType);
  if (requested === undefined && spec.legacyHeader) {
    const legacy = ctx.headers[spec.legacyHeader];
    requested = Array.isArray(legacy) ? legacy[0] : legacy;
  }
  let v: Microversion;
  if (requested === undefined) v = min;
  else if (requested.trim().toLowerCase() === 'latest') v = max;
  else {
    const parsed = parseVersion(requested);
    if (!parsed) {
      throw httpError(spec.service, 400, `API Version String ${requested} is of invalid format. Must be of format MajorNum.MinorNum.`);
    }
    if (compare(parsed, min) < 0 || compare(parsed, max) > 0) {
      // The 406 echoes the version asked for; Cinder leaves out the bare legacy
      // majors 1.0 and 2.0, which it treats as no microversion at all.
      if (!(spec.service === 'volume' && parsed.minor === 0 && parsed.major < 3)) echo(ctx, spec, parsed);
      throw httpError(spec.service, 406, `Version ${requested} is not supported by the API. Minimum is ${spec.min} and maximum is ${spec.max}.`);
    }
    v = parsed;
  }
  echo(ctx, spec, v);
  return v;
}

function echo(ctx: RequestContext, spec: NegotiationSpec, v: Microversion): void {
  ctx.replyHeaders['openstack-api-version'] = `${spec.serviceType} ${format(v)}`;
  if (spec.legacyHeader) {
    ctx.replyHeaders[spec.legacyHeader] = format(v);
    ctx.replyHeaders.vary = `OpenStack-API-Version, ${spec.legacyHeader}`;
  } else {
    ctx.replyHeaders.vary = 'OpenStack-API-Version';
  }
}
