// The service catalog in both shapes (Keystone v3 and v2.0) reduced to one
// list of endpoints, and the choice of an endpoint by service type, region
// and interface.
import { OpenStackError } from './errors';
import type { EndpointInterface } from './types';

export interface CatalogEndpoint {
  serviceType: string;
  interface: EndpointInterface;
  region: string | null;
  url: string;
}

/** Cinder's service types, the newest API first. */
export const VOLUME_SERVICE_TYPES = ['volumev3', 'block-storage', 'volumev2', 'volume'] as const;
export const COMPUTE_SERVICE_TYPES = ['compute'] as const;

interface V3Service {
  type?: string;
  endpoints?: Array<{ interface?: string; region?: string | null; region_id?: string | null; url?: string }>;
}

interface V2Service {
  type?: string;
  endpoints?: Array<{ region?: string; publicURL?: string; internalURL?: string; adminURL?: string }>;
}

export function parseV3Catalog(catalog: unknown): CatalogEndpoint[] {
  const out: CatalogEndpoint[] = [];
  for (const svc of (Array.isArray(catalog) ? catalog : []) as V3Service[]) {
    for (const ep of svc.endpoints ?? []) {
      if (!svc.type || !ep.url || !isInterface(ep.interface)) continue;
      out.push({ serviceType: svc.type, interface: ep.interface, region: ep.region_id ?? ep.region ?? null, url: ep.url });
    }
  }
  return out;
}

export function parseV2Catalog(serviceCatalog: unknown): CatalogEndpoint[] {
  const out: CatalogEndpoint[] = [];
  const byInterface: Array<[EndpointInterface, 'publicURL' | 'internalURL' | 'adminURL']> = [
    ['public', 'publicURL'],
    ['internal', 'internalURL'],
    ['admin', 'adminURL'],
  ];
  for (const svc of (Array.isArray(serviceCatalog) ? serviceCatalog : []) as V2Service[]) {
    for (const ep of svc.endpoints ?? []) {
      for (const [iface, key] of byInterface) {
        const url = ep[key];
        if (svc.type && url) out.push({ serviceType: svc.type, interface: iface, region: ep.region ?? null, url });
      }
    }
  }
  return out;
}

function isInterface(v: unknown): v is EndpointInterface {
  return v === 'public' || v === 'internal' || v === 'admin';
}

export interface EndpointChoice {
  url: string;
  serviceType: string;
}

/**
 * The endpoint of the first service type in `serviceTypes` that the catalog
 * offers in `region` (any region when none is configured) on `iface`. None
 * is a config error, never not_found: a region typo must not make every
 * DeleteVolume read "the volume is gone" and answer OK.
 */
export function chooseEndpoint(
  catalog: readonly CatalogEndpoint[],
  serviceTypes: readonly string[],
  region: string | undefined,
  iface: EndpointInterface,
): EndpointChoice {
  for (const type of serviceTypes) {
    const match = catalog.find(
      (ep) => ep.serviceType === type && ep.interface === iface && (region === undefined || ep.region === region),
    );
    if (match) return { url: match.url.replace(/\/+$/, ''), serviceType: type };
  }
  const ofService = catalog.filter((ep) => serviceTypes.includes(ep.serviceType));
  if (ofService.length === 0) {
    // No region or interface would help: say so, and what the catalog does have in a few words, not every endpoint.
    const regions = [...new Set(catalog.map((ep) => ep.region ?? '(none)'))].sort();
    const interfaces = [...new Set(catalog.map((ep) => ep.interface))];
    const has = catalog.length === 0 ? 'the catalog is empty' : `its other services are in region${regions.length === 1 ? '' : 's'} ${regions.join(', ')} on interface${interfaces.length === 1 ? '' : 's'} ${interfaces.join(', ')}`;
    return configError(
      `the service catalog has no ${serviceTypes.join(' or ')} service at all (the cloud has no ${serviceName(serviceTypes)}, or endpoint filtering hides it from this project); ${has}: ` +
        `ask the cloud's admins to register ${serviceName(serviceTypes)}'s endpoints, or to add them to this project's endpoint filter`,
    );
  }
  const offered = [...new Set(ofService.map((ep) => `${ep.serviceType}/${ep.interface}@${ep.region ?? '-'}`))].join(', ');
  return configError(
    `the service catalog has no ${serviceTypes.join(' or ')} endpoint on interface ${iface}` +
      `${region ? ` in region ${region}` : ''} (offered: ${offered}); ` +
      'check region and interface in the cloud config (region names are case-sensitive)',
  );
}

function configError(message: string): never {
  throw new OpenStackError('config', message);
}

/** The OpenStack project behind a list of service types, for the operator. */
function serviceName(serviceTypes: readonly string[]): string {
  if (serviceTypes.some((t) => (VOLUME_SERVICE_TYPES as readonly string[]).includes(t))) return 'Cinder';
  if (serviceTypes.includes('compute')) return 'Nova';
  return serviceTypes.join(' or ');
}

/**
 * The named regions (sorted) of the service chooseEndpoint would take from
 * `serviceTypes` on `iface` with no region set: the first type the catalog
 * offers there. A leftover older type (volumev2 beside volumev3) is never
 * taken, and an endpoint registered without a region is no second region.
 */
export function regionsOffering(catalog: readonly CatalogEndpoint[], serviceTypes: readonly string[], iface: EndpointInterface): string[] {
  const type = serviceTypes.find((t) => catalog.some((ep) => ep.serviceType === t && ep.interface === iface));
  const regions = new Set<string>();
  for (const ep of catalog) if (ep.interface === iface && ep.serviceType === type && ep.region) regions.add(ep.region);
  return [...regions].sort();
}

/** Fill the project placeholders some catalogs leave in URLs. */
export function substituteProject(url: string, projectId: string | undefined): string {
  if (!projectId) return url;
  return url
    .replace(/\{project_id\}|\{tenant_id\}/g, projectId)
    .replace(/%\((project_id|tenant_id)\)s/g, projectId)
    .replace(/\$\((project_id|tenant_id)\)s/g, projectId);
}
