// The one configuration loader. A YAML file (js-yaml) and the OS_* environment
// variables are read once at start-up and validated into one typed object;
// the Go cinder-csi-plugin's cloud.conf is read too, translated into the same
// document (cloud-conf.ts, cloud-conf-document.ts) and validated the same way;
// any unknown key, wrong type, missing value or unreadable TLS file is a
// ConfigError naming the key and the file, and `cinder-csi serve` exits with
// that one line.
//
// Three ways to describe a cloud; a file uses at most one of the first two:
//   (a) a Flocker-style `dataset:` stanza (one cloud, named 'default');
//   (b) an openstacksdk-style `clouds:` map (many clouds; `cloud:` or OS_CLOUD
//       picks the default); the file may also be a plain clouds.yaml, or
//       OS_CLIENT_CONFIG_FILE may point at one; a cloud.conf becomes one;
//   (c) the standard OS_* environment variables, when the file has neither.
// Driver settings live under `driver:` in the same file.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import type { AuthPlugin, CloudConfig, CloudCredentials, EndpointInterface } from '../openstack/types';
import { parseProxyUrl, proxySettingsFromEnv, type ProxySettings } from '../openstack/proxy';
import { DEFAULT_DRIVER_NAME } from '../csi/constants';
import { ConfigError, Section, type KeyDescriber } from './reader';
import { isCloudConf, parseCloudConf } from './cloud-conf';
import { cloudConfDocument } from './cloud-conf-document';
import { requireReadableFile } from './files';

/**
 * YAML as config files are read: nulls, booleans and merge keys, but no
 * implicit numbers. Read as a number, an unquoted password such as 0123 would
 * become 123, and 1e3 1000, with nothing to show for it but a 401. So every
 * plain scalar stays the text it is, and the keys that are numbers parse
 * theirs (reader.ts).
 */
const yamlTypes = (yaml as unknown as { types: Record<'null' | 'bool' | 'merge', yaml.Type> }).types; // exported by js-yaml 4, not declared by @types/js-yaml
const CONFIG_YAML = yaml.FAILSAFE_SCHEMA.extend({ implicit: [yamlTypes.null, yamlTypes.bool, yamlTypes.merge] });

export { ConfigError };

export type MetadataSource = 'configDrive' | 'metadataService';

export interface NodeConfig {
  /** Nova instance UUID; found through the metadata search order when absent. */
  instanceId?: string;
  availabilityZone?: string;
  /** Absent: the node plugin's documented default for the disk bus. */
  maxVolumesPerNode?: number;
  deviceRoot: string;
  sysfsRoot: string;
  stateDir: string;
  /** kubelet's --root-dir: kubelet's own binds of raw block volumes are under it. */
  kubeletRoot: string;
  /** Accept only kubelet's own staging and target directories below kubeletRoot (default false). */
  confinePaths: boolean;
  metadataSearchOrder: MetadataSource[];
  metadataUrl: string;
}

export interface ControllerConfig {
  /** Compute availability zone -> volume availability zone. */
  azMap: Record<string, string>;
  defaultVolumeType?: string;
  /** Report and honour zone topology (default true). */
  topology: boolean;
  /** Advertise the alpha GET_SNAPSHOT capability (default false). */
  advertiseGetSnapshot: boolean;
  /** Not a file setting: tests shorten the later look for volumes of the same name (default 2 min). */
  sameNameCheckMs?: number;
}

export interface DriverConfig {
  /** Where the settings came from, for messages. */
  source: string;
  /** Every configured cloud; the first is the default. Empty only when none is configured. */
  clouds: CloudConfig[];
  driverName: string;
  clusterId: string;
  controller: ControllerConfig;
  node: NodeConfig;
}

export const DEFAULTS = {
  clusterId: 'kubernetes',
  deviceRoot: '/dev',
  sysfsRoot: '/sys',
  stateDir: '/var/lib/cinder-csi',
  kubeletRoot: '/var/lib/kubelet',
  metadataSearchOrder: ['configDrive', 'metadataService'] as MetadataSource[],
  metadataUrl: 'http://169.254.169.254',
  requestTimeoutMs: 30_000,
};

const AUTH_PLUGINS: Record<string, AuthPlugin> = {
  password: 'password',
  v3password: 'password',
  v2password: 'password',
  rackspace: 'rackspace',
  rackspace_apikey: 'rackspace',
  v3applicationcredential: 'v3applicationcredential',
  applicationcredential: 'v3applicationcredential',
  token: 'token',
  v3token: 'token',
};

const INTERFACES: readonly EndpointInterface[] = ['public', 'internal', 'admin'];

export interface LoadOptions {
  /** Path of the YAML file; absent means environment only. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(opts: LoadOptions): DriverConfig {
  const env = opts.env ?? process.env;
  if (!opts.file) return fromDocument({}, 'the environment', env);
  let text: string;
  try {
    text = readFileSync(opts.file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${opts.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (isCloudConf(text)) {
    const { doc, describe } = cloudConfDocument(parseCloudConf(text, opts.file), opts.file);
    return fromDocument(doc, opts.file, env, describe);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: opts.file, schema: CONFIG_YAML });
  } catch (e) {
    throw new ConfigError(`config file ${opts.file} is not valid YAML: ${yamlProblem(e)}`);
  }
  return fromDocument(doc ?? {}, opts.file, env);
}

/**
 * Validate an already parsed document (also used by tests and the simulator
 * wiring). `describe` names a key in messages when the document was translated
 * from a cloud.conf.
 */
export function fromDocument(doc: unknown, source: string, env: NodeJS.ProcessEnv = process.env, describe?: KeyDescriber): DriverConfig {
  const top = Section.of(doc, '', source, describe);
  const clouds: CloudConfig[] = [];

  // Both at once would leave it unclear which cloud is the default (the
  // dataset's 'default', or the one `cloud:` names) and could give two clouds
  // one name, so a file describes its clouds one way only.
  if (top.has('dataset') && top.has('clouds')) {
    throw new ConfigError(
      `'dataset' and 'clouds' in ${source} both describe clouds; keep one: 'dataset' for a single cloud, or 'clouds' (with 'cloud' naming the default) for one or more`,
    );
  }
  if (top.has('dataset')) clouds.push(datasetCloud(top.section('dataset')));
  if (top.has('clouds')) {
    // Only a translated cloud.conf comes with a describer of its keys.
    const all = cloudsYaml(top.section('clouds'), describe ? 'cloud.conf' : 'clouds.yaml');
    const wanted = top.string('cloud') ?? env.OS_CLOUD;
    clouds.push(...orderWithDefault(all, wanted, `'cloud' in ${source}`));
  } else if (top.string('cloud') !== undefined) {
    throw new ConfigError(`'cloud' in ${source} names the default among 'clouds', but the file has no 'clouds' section`);
  }
  if (clouds.length === 0) {
    const fromEnv = envClouds(env);
    clouds.push(...fromEnv);
  }
  const proxy = proxyFromEnv(env);
  if (proxy) for (const cloud of clouds) cloud.proxy = proxy;

  const driver = top.section('driver');
  const controller = driver.section('controller');
  const node = driver.section('node');
  const config: DriverConfig = {
    source,
    clouds,
    driverName: driver.string('name') ?? DEFAULT_DRIVER_NAME,
    clusterId: driver.string('cluster_id') ?? DEFAULTS.clusterId,
    controller: {
      azMap: controller.stringMap('az_map') ?? {},
      defaultVolumeType: controller.string('default_volume_type'),
      topology: controller.bool('topology') ?? true,
      advertiseGetSnapshot: controller.bool('advertise_get_snapshot') ?? false,
    },
    node: {
      instanceId: node.string('instance_id'),
      availabilityZone: node.string('availability_zone'),
      maxVolumesPerNode: node.integer('max_volumes_per_node', 1, 4096),
      deviceRoot: absolutePath(node, 'device_root') ?? DEFAULTS.deviceRoot,
      sysfsRoot: absolutePath(node, 'sysfs_root') ?? DEFAULTS.sysfsRoot,
      stateDir: absolutePath(node, 'state_dir') ?? DEFAULTS.stateDir,
      kubeletRoot: absolutePath(node, 'kubelet_root') ?? DEFAULTS.kubeletRoot,
      confinePaths: node.bool('confine_paths') ?? false,
      metadataSearchOrder: metadataOrder(node),
      metadataUrl: metadataServiceUrl(node, 'metadata_url') ?? DEFAULTS.metadataUrl,
    },
  };
  controller.rejectUnknown();
  node.rejectUnknown();
  driver.rejectUnknown();
  top.rejectUnknown();
  if (!/^[a-z0-9A-Z]([-.a-z0-9A-Z]{0,61}[a-z0-9A-Z])?$/.test(config.driverName)) {
    throw new ConfigError(`'driver.name' in ${source} must be a domain-style name of at most 63 characters`);
  }
  return config;
}

/** https_proxy, http_proxy and no_proxy, checked here so that a malformed or unsupported proxy stops the driver at start-up. */
function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const settings = proxySettingsFromEnv(env);
  for (const [name, value] of [['https_proxy', settings?.httpsProxy], ['http_proxy', settings?.httpProxy]] as const) {
    if (!value) continue;
    try {
      parseProxyUrl(value);
    } catch (e) {
      throw new ConfigError(`${name} (or ${name.toUpperCase()}) in the environment: ${(e as Error).message}`);
    }
  }
  return settings;
}

function absolutePath(s: Section, key: string): string | undefined {
  const v = s.string(key);
  if (v !== undefined && !v.startsWith('/')) {
    throw new ConfigError(`${s.where(key)} must be an absolute path, not '${v}'`);
  }
  return v;
}

/**
 * The metadata service's URL, checked now: the lookup (metadata-http.ts)
 * refuses anything but plain http://, and a node that cannot learn its
 * instance would otherwise retry that refusal for as long as it runs. The
 * lookup appends /openstack/latest/meta_data.json to it, so a ?query or
 * #fragment would be sent in the wrong place.
 */
function metadataServiceUrl(s: Section, key: string): string | undefined {
  const v = s.string(key);
  if (v === undefined) return undefined;
  // Nova's IPv6 address (fe80::a9fe:a9fe) is link-local and needs a zone; WHATWG URLs, and so Node, have no zones.
  if (/^[^/]*\/\/\[[^\]]*%/.test(v)) {
    throw new ConfigError(`${s.where(key)} is '${v}': a link-local IPv6 address with a zone (%...) is not supported; use http://169.254.169.254`);
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`${s.where(key)} must be a URL such as http://169.254.169.254, not '${v}'`);
  }
  if (url.protocol !== 'http:') {
    throw new ConfigError(`${s.where(key)} must be plain http:// (the metadata service is link-local and serves no TLS), not ${url.protocol}//`);
  }
  if (url.search || url.hash) throw new ConfigError(`${s.where(key)} must have no ?query or #fragment, not '${v}'`);
  return v;
}

/** A CA bundle, client certificate or key named in a section: it must be a readable file now (see files.ts). */
function tlsFile(s: Section, key: string): string | undefined {
  const file = s.string(key);
  if (file) requireReadableFile(file, s.where(key));
  return file || undefined;
}

/** The same for OS_CACERT, OS_CERT and OS_KEY. */
function envTlsFile(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[name];
  if (file) requireReadableFile(file, `${name} in the environment`);
  return file || undefined;
}

function metadataOrder(node: Section): MetadataSource[] {
  const list = node.stringList('metadata_search_order');
  if (!list) return DEFAULTS.metadataSearchOrder;
  const names: Record<string, MetadataSource> = {
    configDrive: 'configDrive',
    config_drive: 'configDrive',
    configdrive: 'configDrive',
    metadataService: 'metadataService',
    metadata_service: 'metadataService',
    metadataservice: 'metadataService',
  };
  return list.map((name) => {
    const v = names[name];
    if (!v) {
      throw new ConfigError(
        `${node.where('metadata_search_order')} lists '${name}'; use config_drive and/or metadata_service`,
      );
    }
    return v;
  });
}

function orderWithDefault(all: CloudConfig[], wanted: string | undefined, what: string): CloudConfig[] {
  if (!wanted) return all;
  const idx = all.findIndex((c) => c.name === wanted);
  if (idx < 0) throw new ConfigError(`${what} names cloud '${wanted}', which is not under 'clouds'`);
  return [all[idx], ...all.filter((_, i) => i !== idx)];
}

// ------------------------------------------------- keys of the other format

/** The same setting's key in a `dataset:` section and in a cloud under `clouds:`. */
const SAME_SETTING: ReadonlyArray<readonly [dataset: string, clouds: string]> = [
  ['region', 'region_name'],
  ['auth_plugin', 'auth_type'],
  ['verify_peer', 'verify'],
  ['verify_ca_path', 'cacert'],
  ['client_cert_path', 'cert'],
  ['client_key_path', 'key'],
];

/** The credential keys: flat in `dataset:`, under `auth:` in a `clouds:` cloud. */
const CREDENTIAL_KEYS = [
  'auth_url', 'username', 'user_id', 'password', 'api_key', 'project_name', 'tenant_name', 'project_id', 'tenant_id',
  'user_domain_name', 'user_domain_id', 'project_domain_name', 'project_domain_id', 'domain_name', 'domain_id',
  'application_credential_id', 'application_credential_name', 'application_credential_secret', 'token',
];

/** What an unknown key of a `dataset:` section is called there, when it is a `clouds:` key. */
const DATASET_ELSEWHERE: Record<string, string> = Object.fromEntries([
  ...SAME_SETTING.map(([d, c]) => [c, `did you mean '${d}'? '${c}' is the key under 'clouds:'; in 'dataset:' it is '${d}'`]),
  ['auth', "in 'dataset:' the credentials (auth_url, username, ...) sit in the section itself, not under 'auth'"],
]);

/** The same for a cloud under `clouds:` (`clouds.<name>`). */
function cloudElsewhere(name: string): Record<string, string> {
  return Object.fromEntries([
    ...SAME_SETTING.map(([d, c]) => [d, `did you mean '${c}'? '${d}' is the key in 'dataset:'; under 'clouds:' it is '${c}'`]),
    ...CREDENTIAL_KEYS.map((k) => [k, `did you mean 'clouds.${name}.auth.${k}'? under 'clouds:' the credentials go in the cloud's 'auth' section`]),
  ]);
}

/** The same for a cloud's `auth:` section: the cloud's own settings sit beside it. */
function authElsewhere(name: string): Record<string, string> {
  const cloudKeys = ['region_name', 'interface', 'auth_type', 'verify', 'insecure', 'cacert', 'cert', 'key', 'volume_api_version', 'block_storage_api_version', 'request_timeout_ms'];
  return Object.fromEntries([
    ...cloudKeys.map((k) => [k, `did you mean 'clouds.${name}.${k}'? it belongs to the cloud, beside 'auth', not in it`]),
    ...SAME_SETTING.map(([d, c]) => [d, `did you mean 'clouds.${name}.${c}'? '${d}' is the key in 'dataset:'; under 'clouds:' it is '${c}', beside 'auth'`]),
  ]);
}

// ------------------------------------------------------------- (a) Flocker

function datasetCloud(s: Section): CloudConfig {
  const backend = s.string('backend');
  if (backend !== undefined && backend !== 'openstack') {
    throw new ConfigError(`${s.where('backend')} must be 'openstack', not '${backend}'`);
  }
  const plugin = authPlugin(s, 'auth_plugin');
  const auth = credentials(s, plugin);
  const verifyPeer = s.bool('verify_peer');
  const cloud: CloudConfig = {
    name: 'default',
    auth,
    region: s.string('region'),
    interface: s.oneOf('interface', INTERFACES) ?? 'public',
    tls: {
      verify: verifyPeer ?? true,
      caFile: tlsFile(s, 'verify_ca_path'),
      certFile: tlsFile(s, 'client_cert_path'),
      keyFile: tlsFile(s, 'client_key_path'),
      verifyHint: VERIFY_HINTS.dataset,
      caKey: CA_KEYS.dataset,
    },
    blockStorageApiVersion: blockStorageVersion(s, 'block_storage_api_version'),
    requestTimeoutMs: s.integer('request_timeout_ms', 100, 600_000) ?? DEFAULTS.requestTimeoutMs,
  };
  s.rejectUnknown(undefined, DATASET_ELSEWHERE);
  checkCredentials(auth, s);
  return cloud;
}

function authPlugin(s: Section, key: string): AuthPlugin {
  const raw = s.string(key) ?? 'password';
  const plugin = AUTH_PLUGINS[raw.toLowerCase()];
  if (!plugin) {
    throw new ConfigError(
      `${s.where(key)} is '${raw}'; supported: password, rackspace, v3applicationcredential, token`,
    );
  }
  return plugin;
}

function blockStorageVersion(s: Section, key: string): CloudConfig['blockStorageApiVersion'] {
  const v = s.string(key);
  if (v === undefined || v === 'auto') return 'auto';
  const major = v.replace(/^v/, '').split('.')[0];
  if (major === '3' || major === '2' || major === '1') return major;
  throw new ConfigError(`${s.where(key)} must be auto, 3, 2 or 1, not '${v}'`);
}

/**
 * Credentials from a section whose keys follow openstacksdk's auth names
 * (dataset: and clouds.*.auth). The caller checks them with checkCredentials
 * after rejecting unknown keys, so that a misspelled `usernmae` is reported as
 * misspelled rather than as a missing `username`.
 */
function credentials(s: Section, plugin: AuthPlugin): CloudCredentials {
  const c: CloudCredentials = {
    authUrl: s.string('auth_url') ?? '',
    authPlugin: plugin,
    username: s.string('username'),
    userId: s.string('user_id'),
    password: s.string('password'),
    apiKey: s.string('api_key'),
    projectName: s.string('project_name') ?? s.string('tenant_name'),
    projectId: s.string('project_id') ?? s.string('tenant_id'),
    userDomainName: s.string('user_domain_name'),
    userDomainId: s.string('user_domain_id'),
    projectDomainName: s.string('project_domain_name'),
    projectDomainId: s.string('project_domain_id'),
    domainName: s.string('domain_name'),
    domainId: s.string('domain_id'),
    applicationCredentialId: s.string('application_credential_id'),
    applicationCredentialName: s.string('application_credential_name'),
    applicationCredentialSecret: s.string('application_credential_secret'),
    token: s.string('token'),
  };
  const version = s.string('identity_api_version');
  if (version !== undefined) {
    const major = version.replace(/^v/, '').split('.')[0];
    if (major !== '2' && major !== '3') {
      throw new ConfigError(`${s.where('identity_api_version')} must be 2 or 3, not '${version}'`);
    }
    c.identityApiVersion = major;
  }
  return c;
}

function checkCredentials(c: CloudCredentials, s: Section): void {
  const need = (ok: boolean, key: string, why: string) => {
    if (!ok) throw new ConfigError(`${s.where(key)} is required ${why}`);
  };
  need(c.authUrl !== '', 'auth_url', 'to reach Keystone');
  switch (c.authPlugin) {
    case 'password':
      need(Boolean(c.username || c.userId), 'username', 'for password authentication (or user_id)');
      need(Boolean(c.password), 'password', 'for password authentication');
      break;
    case 'rackspace':
      need(Boolean(c.username), 'username', 'for the rackspace auth plugin');
      need(Boolean(c.apiKey), 'api_key', 'for the rackspace auth plugin');
      break;
    case 'v3applicationcredential':
      need(Boolean(c.applicationCredentialSecret), 'application_credential_secret', 'for application credentials');
      need(
        Boolean(c.applicationCredentialId || (c.applicationCredentialName && (c.username || c.userId))),
        'application_credential_id',
        'for application credentials (or application_credential_name with username)',
      );
      break;
    case 'token':
      need(Boolean(c.token), 'token', 'for token authentication');
      break;
  }
}

// ---------------------------------------------------------- (b) clouds.yaml

function cloudsYaml(clouds: Section, syntax: CloudsSyntax): CloudConfig[] {
  const names = clouds.keys();
  if (names.length === 0) throw new ConfigError(`'clouds' in ${clouds.source} lists no cloud`);
  return names.map((name) => oneCloud(name, clouds.section(name), syntax));
}

/**
 * The longest cloud name: a volume or snapshot of a cloud other than the
 * default has the CSI ID `<cloud>:<uuid>`, which the CSI spec limits to 128
 * bytes (a UUID is 36).
 */
const MAX_CLOUD_NAME_BYTES = 128 - 1 - 36;

/** Where a `clouds:` cloud was written: a clouds.yaml (or this driver's YAML), or a Go plugin cloud.conf translated into one. */
type CloudsSyntax = 'clouds.yaml' | 'cloud.conf';

/** How each way of describing a cloud turns TLS verification on, for the warning when it is off (TlsConfig.verifyHint). */
const VERIFY_HINTS: Record<'dataset' | CloudsSyntax | 'env', string> = {
  dataset: 'verify_peer: true, with verify_ca_path naming the CA file',
  'clouds.yaml': 'verify: true, or no insecure: true, with cacert naming the CA file',
  'cloud.conf': 'tls-insecure = false, with ca-file naming the CA file',
  env: 'OS_INSECURE=false, with OS_CACERT naming the CA file',
};

/** The key that names the CA file in each way of describing a cloud (TlsConfig.caKey). */
const CA_KEYS: Record<'dataset' | CloudsSyntax | 'env', string> = {
  dataset: 'verify_ca_path',
  'clouds.yaml': 'cacert',
  'cloud.conf': 'ca-file',
  env: 'OS_CACERT',
};

function oneCloud(name: string, s: Section, syntax: CloudsSyntax): CloudConfig {
  if (Buffer.byteLength(name) > MAX_CLOUD_NAME_BYTES || /[/\u0000-\u001f\u007f-\u009f]/.test(name)) {
    throw new ConfigError(
      `cloud name ${JSON.stringify(name)} under 'clouds' in ${s.source} cannot be part of a volume ID: use at most ${MAX_CLOUD_NAME_BYTES} bytes, without '/' or control characters`,
    );
  }
  const plugin = authPlugin(s, 'auth_type');
  const auth = s.section('auth');
  const creds = credentials(auth, plugin);
  auth.rejectUnknown(undefined, authElsewhere(name));
  checkCredentials(creds, auth);
  const version = s.string('identity_api_version');
  if (version !== undefined && creds.identityApiVersion === undefined) {
    const major = version.replace(/^v/, '').split('.')[0];
    if (major !== '2' && major !== '3') {
      throw new ConfigError(`${s.where('identity_api_version')} must be 2 or 3, not '${version}'`);
    }
    creds.identityApiVersion = major;
  }
  const verify = s.bool('verify');
  const insecure = s.bool('insecure');
  const cloud: CloudConfig = {
    name,
    auth: creds,
    region: s.string('region_name'),
    interface: s.oneOf('interface', INTERFACES) ?? 'public',
    tls: {
      verify: verify ?? (insecure === undefined ? true : !insecure),
      caFile: tlsFile(s, 'cacert'),
      certFile: tlsFile(s, 'cert'),
      keyFile: tlsFile(s, 'key'),
      verifyHint: VERIFY_HINTS[syntax],
      caKey: CA_KEYS[syntax],
    },
    blockStorageApiVersion: blockStorageVersion(s, s.has('volume_api_version') ? 'volume_api_version' : 'block_storage_api_version'),
    requestTimeoutMs: s.integer('request_timeout_ms', 100, 600_000) ?? DEFAULTS.requestTimeoutMs,
  };
  s.rejectUnknown(undefined, cloudElsewhere(name));
  return cloud;
}

// ------------------------------------------------------------ (c) OS_* vars

/** OS_INTERFACE as the OpenStack clients take it: public, internal, admin, or their old publicURL-style names. */
function envInterface(value: string | undefined): EndpointInterface {
  if (value === undefined || value === '') return 'public';
  const name = value.replace(/URL$/, '');
  if ((INTERFACES as readonly string[]).includes(name)) return name as EndpointInterface;
  throw new ConfigError(`OS_INTERFACE must be public, internal or admin, not '${value}'`);
}

/** OS_INSECURE: a yes or a no, in the spellings the OpenStack clients accept; anything else is a mistake, not a default. */
function envInsecure(value: string | undefined): boolean {
  const v = (value ?? '').trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`OS_INSECURE must be true or false, not '${value}'`);
}

/**
 * js-yaml's complaint without the text it quotes: the text is often a
 * secret (an unquoted password starting with ! reads as a tag, with * as an
 * alias, and js-yaml quotes both), and this message goes to the pod's log.
 * The line and column say where to look.
 */
export function yamlProblem(e: unknown): string {
  const { reason, mark } = e as { reason?: string; mark?: { line: number; column: number } };
  if (!mark) return (e as NodeJS.ErrnoException).code ?? 'unreadable';
  const full = reason ?? 'syntax error';
  // Cut at the first quoted, tagged or listed fragment ("unknown tag !<...>", "alias \"...\"", "characters: ...").
  const words = full.replace(/\s*(:|!<|!|"|'|<|\*|&).*$/s, '').trim() || 'syntax error';
  const hint = words !== full ? " (a value starting with !, *, & or @, or holding ': ' or ' #', must be quoted)" : '';
  return `${words} at line ${mark.line + 1}, column ${mark.column + 1}${hint}`;
}

/**
 * Where the OpenStack clients (openstacksdk) look for clouds.yaml when
 * OS_CLIENT_CONFIG_FILE does not say: the working directory, the user's
 * config directory, then /etc/openstack.
 */
export function cloudsYamlPlaces(env: NodeJS.ProcessEnv): string[] {
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return [path.join(process.cwd(), 'clouds.yaml'), path.join(configHome, 'openstack', 'clouds.yaml'), '/etc/openstack/clouds.yaml'];
}

function envClouds(env: NodeJS.ProcessEnv): CloudConfig[] {
  if (env.OS_CLOUD && !env.OS_CLIENT_CONFIG_FILE) {
    const places = cloudsYamlPlaces(env);
    const found = places.find((p) => existsSync(p));
    if (!found) throw new ConfigError(`OS_CLOUD names cloud '${env.OS_CLOUD}', but there is no clouds.yaml in ${places.join(', ')}; set OS_CLIENT_CONFIG_FILE to yours`);
    env = { ...env, OS_CLIENT_CONFIG_FILE: found };
  }
  if (env.OS_CLIENT_CONFIG_FILE && env.OS_CLOUD) {
    const file = env.OS_CLIENT_CONFIG_FILE;
    let doc: unknown;
    try {
      doc = yaml.load(readFileSync(file, 'utf8'), { filename: file, schema: CONFIG_YAML });
    } catch (e) {
      throw new ConfigError(`cannot read OS_CLIENT_CONFIG_FILE ${file}: ${(e as { mark?: unknown }).mark ? `not valid YAML: ${yamlProblem(e)}` : (e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const top = Section.of(doc, '', file);
    // Only OS_CLOUD's cloud is kept, so only it is read: the other clouds' cacert, cert and key files
    // (checked as a cloud is read) need not exist here.
    const clouds = top.section('clouds');
    if (!clouds.keys().includes(env.OS_CLOUD)) throw new ConfigError(`OS_CLOUD names cloud '${env.OS_CLOUD}', which is not under 'clouds'`);
    return [oneCloud(env.OS_CLOUD, clouds.section(env.OS_CLOUD), 'clouds.yaml')];
  }
  if (!env.OS_AUTH_URL) return [];
  const flat: Record<string, string | undefined> = {
    auth_url: env.OS_AUTH_URL,
    username: env.OS_USERNAME,
    user_id: env.OS_USER_ID,
    password: env.OS_PASSWORD,
    api_key: env.OS_API_KEY,
    project_name: env.OS_PROJECT_NAME ?? env.OS_TENANT_NAME,
    project_id: env.OS_PROJECT_ID ?? env.OS_TENANT_ID,
    user_domain_name: env.OS_USER_DOMAIN_NAME,
    user_domain_id: env.OS_USER_DOMAIN_ID,
    project_domain_name: env.OS_PROJECT_DOMAIN_NAME,
    project_domain_id: env.OS_PROJECT_DOMAIN_ID,
    domain_name: env.OS_DOMAIN_NAME,
    domain_id: env.OS_DOMAIN_ID,
    application_credential_id: env.OS_APPLICATION_CREDENTIAL_ID,
    application_credential_name: env.OS_APPLICATION_CREDENTIAL_NAME,
    application_credential_secret: env.OS_APPLICATION_CREDENTIAL_SECRET,
    token: env.OS_TOKEN,
    identity_api_version: env.OS_IDENTITY_API_VERSION,
  };
  const defined = Object.fromEntries(Object.entries(flat).filter(([, v]) => v !== undefined && v !== ''));
  const s = Section.of(defined, 'OS_*', 'the environment');
  const plugin = authPlugin(Section.of({ auth_type: env.OS_AUTH_TYPE }, 'OS_AUTH_TYPE', 'the environment'), 'auth_type');
  const auth = credentials(s, plugin);
  checkCredentials(auth, s);
  return [
    {
      name: 'default',
      auth,
      region: env.OS_REGION_NAME,
      interface: envInterface(env.OS_INTERFACE),
      tls: {
        verify: !envInsecure(env.OS_INSECURE),
        caFile: envTlsFile(env, 'OS_CACERT'),
        certFile: envTlsFile(env, 'OS_CERT'),
        keyFile: envTlsFile(env, 'OS_KEY'),
        verifyHint: VERIFY_HINTS.env,
        caKey: CA_KEYS.env,
      },
      blockStorageApiVersion: 'auto',
      requestTimeoutMs: DEFAULTS.requestTimeoutMs,
    },
  ];
}
