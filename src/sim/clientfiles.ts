// openrc and clouds.yaml for the simulator, so any OpenStack client (and the
// driver) points at it the same way it points at a real cloud; and
// cinder-csi.yaml, a whole driver config whose node side is the simulator's
// first instance, for a driver started separately.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yaml from 'js-yaml';
import type { SimCredentials } from './types';

export interface ClientFileInput {
  authUrl: string;
  credentials: SimCredentials;
  caFile?: string;
  /** The instance a node plugin started with cinder-csi.yaml is: where its metadata is served and its disks appear. */
  node: { metadataUrl: string; deviceRoot: string; stateDir: string };
}

/** Single-quoted for POSIX shells: the only character to escape is the quote itself. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function openrc(input: ClientFileInput): string {
  const c = input.credentials;
  const vars: Array<[string, string]> = [
    ['OS_AUTH_URL', input.authUrl],
    ['OS_IDENTITY_API_VERSION', '3'],
    ['OS_AUTH_TYPE', 'password'],
    ['OS_USERNAME', c.username],
    ['OS_PASSWORD', c.password],
    ['OS_PROJECT_NAME', c.projectName],
    ['OS_PROJECT_ID', c.projectId],
    ['OS_USER_DOMAIN_NAME', c.userDomainName],
    ['OS_PROJECT_DOMAIN_NAME', c.projectDomainName],
    ['OS_REGION_NAME', c.region],
    ['OS_INTERFACE', 'public'],
  ];
  if (input.caFile) vars.push(['OS_CACERT', input.caFile]);
  return `# cinder-csi simulator\n${vars.map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n')}\n`;
}

export function cloudsYaml(input: ClientFileInput): string {
  return yaml.dump({ clouds: { sim: simCloud(input) } });
}

/** The driver's config: the cloud, and a node side that is the simulator's instance (as `serve --sim` sets it up). */
export function driverYaml(input: ClientFileInput): string {
  const node = {
    metadata_url: input.node.metadataUrl,
    metadata_search_order: ['metadata_service'],
    device_root: input.node.deviceRoot,
    state_dir: input.node.stateDir,
  };
  return `# cinder-csi on this simulator: cinder-csi serve --config <this file>\n${yaml.dump({ clouds: { sim: simCloud(input) }, driver: { node } })}`;
}

function simCloud(input: ClientFileInput): Record<string, unknown> {
  const c = input.credentials;
  const cloud: Record<string, unknown> = {
    auth: {
      auth_url: input.authUrl,
      username: c.username,
      password: c.password,
      project_name: c.projectName,
      project_id: c.projectId,
      user_domain_name: c.userDomainName,
      project_domain_name: c.projectDomainName,
    },
    auth_type: 'password',
    identity_api_version: 3,
    region_name: c.region,
    interface: 'public',
  };
  if (input.caFile) cloud.cacert = input.caFile;
  return cloud;
}

export async function writeClientFiles(dir: string, input: ClientFileInput): Promise<void> {
  await mkdir(dir, { recursive: true });
  // They hold the password: readable by the owner only.
  await writeFile(path.join(dir, 'openrc'), openrc(input), { mode: 0o600 });
  await writeFile(path.join(dir, 'clouds.yaml'), cloudsYaml(input), { mode: 0o600 });
  await writeFile(path.join(dir, 'cinder-csi.yaml'), driverYaml(input), { mode: 0o600 });
}
