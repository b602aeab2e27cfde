// The Go cinder-csi-plugin's cloud.conf, translated into the document that
// fromDocument validates (a `clouds:` map plus `driver.node` settings), so
// that there is one loader and one set of checks whichever format the file is
// in. Key names and meanings follow the Go plugin's sources: pkg/client
// AuthOpts for [Global], pkg/csi/cinder/openstack BlockStorageOpts and
// pkg/util/metadata Opts.
//
// What has no faithful counterpart here is refused with a ConfigError that
// names the key and its line and says what to do, rather than dropped: a
// cluster that moves over should not quietly lose a setting it relied on.
import type { CloudConfSection, CloudConfVariable } from './cloud-conf';
import { ConfigError, closest, type KeyDescriber } from './reader';

export interface CloudConfDocument {
  /** What fromDocument reads. */
  doc: Record<string, unknown>;
  /** Names a key of `doc` as the cloud.conf wrote it, with its line, for fromDocument's messages. */
  describe: KeyDescriber;
}

/**
 * [Global] (and [Global "name"]) keys, each with the key it becomes in a cloud
 * of `clouds:`. domain-id and domain-name keep gophercloud's meaning, the
 * default for both the user's and the project's domain, which is openstacksdk's
 * domain_id / domain_name too.
 */
const GLOBAL_KEYS: Readonly<Record<string, string>> = {
  'auth-url': 'auth.auth_url',
  username: 'auth.username',
  'user-id': 'auth.user_id',
  password: 'auth.password',
  'tenant-id': 'auth.project_id',
  'tenant-name': 'auth.project_name',
  'domain-id': 'auth.domain_id',
  'domain-name': 'auth.domain_name',
  'tenant-domain-id': 'auth.project_domain_id',
  'tenant-domain-name': 'auth.project_domain_name',
  'user-domain-id': 'auth.user_domain_id',
  'user-domain-name': 'auth.user_domain_name',
  'application-credential-id': 'auth.application_credential_id',
  'application-credential-name': 'auth.application_credential_name',
  'application-credential-secret': 'auth.application_credential_secret',
  region: 'region_name',
  'os-endpoint-type': 'interface',
  'ca-file': 'cacert',
  'cert-file': 'cert',
  'key-file': 'key',
  'tls-insecure': 'verify',
};

const NO_TRUSTS =
  'is not supported: the driver does not authenticate with Keystone trusts; use an application credential (application-credential-id and application-credential-secret) or a username and password';
const NO_CLOUDS_YAML =
  "is not supported: the driver reads no clouds.yaml that a cloud.conf names; point --config at that clouds.yaml itself (create the Secret's cloud.yaml key from it)";
// The Go plugin's gcfg names are tenant-*; it silently ignored these.
const tenantKey = (key: string) => `is not a key the Go cinder-csi-plugin read (it ignored it); write ${key}`;

/** [Global] keys the Go plugin reads (or that look as if it did) that this driver cannot honour, with what to do instead. */
const GLOBAL_REFUSED: Readonly<Record<string, string>> = {
  'trust-id': NO_TRUSTS,
  'trustee-id': NO_TRUSTS,
  'trustee-password': NO_TRUSTS,
  'use-clouds': NO_CLOUDS_YAML,
  'clouds-file': NO_CLOUDS_YAML,
  cloud: NO_CLOUDS_YAML,
  'project-id': tenantKey('tenant-id'),
  'project-name': tenantKey('tenant-name'),
  'project-domain-id': tenantKey('tenant-domain-id'),
  'project-domain-name': tenantKey('tenant-domain-name'),
};

const BLOCK_STORAGE_KEYS = ['node-volume-attach-limit', 'rescan-on-resize', 'ignore-volume-microversion', 'ignore-volume-az', 'bs-version'];
const METADATA_KEYS = ['search-order', 'request-timeout'];

/**
 * Sections the OpenStack cloud-controller-manager reads from the same file.
 * Many clusters give both components one cloud.conf, and the Go plugin (gcfg
 * skips sections it has no field for) ignored these, so they are skipped here
 * too rather than refused.
 */
const CCM_SECTIONS = new Set(['loadbalancer', 'loadbalancerclass', 'networking', 'route']);

/** The name of the cloud the unnamed [Global] describes: the default, as the Go plugin's unnamed section is. */
export const DEFAULT_CLOUD = 'default';

/** Where a key was written, for messages. */
interface Origin {
  section: string;
  key: string;
  line?: number;
}

export function cloudConfDocument(sections: readonly CloudConfSection[], file: string): CloudConfDocument {
  const origins = new Map<string, Origin>();
  const describe: KeyDescriber = (path) => {
    const o = origins.get(path);
    return o ? describeOrigin(o, file) : `'${path}' in ${file}`;
  };
  const fail = (o: Origin, what: string): never => {
    throw new ConfigError(`${describeOrigin(o, file)} ${what}`);
  };

  const clouds: Record<string, Record<string, unknown>> = {};
  const node: Record<string, unknown> = {};
  const controller: Record<string, unknown> = {};
  for (const section of sections) {
    const label = sectionLabel(section);
    if (section.name === 'global') {
      const name = section.subsection ?? DEFAULT_CLOUD;
      if (section.subsection === DEFAULT_CLOUD && sections.some((s) => s.name === 'global' && s.subsection === undefined)) {
        throw new ConfigError(
          `${label} at line ${section.line} of ${file} has the name this driver gives the unnamed [Global] (the default cloud); rename the subsection`,
        );
      }
      // Every key's path, written or not, so that "is required" names the cloud.conf key.
      for (const [key, yamlKey] of Object.entries(GLOBAL_KEYS)) origins.set(`clouds.${name}.${yamlKey}`, { section: label, key });
      clouds[name] = globalCloud(section, label, name, origins, fail);
      continue;
    }
    if (CCM_SECTIONS.has(section.name)) continue;
    if (section.name !== 'blockstorage' && section.name !== 'metadata') {
      throw new ConfigError(
        `${label} at line ${section.line} of ${file} is not a section the Go cinder-csi-plugin reads: use [Global], [BlockStorage] or [Metadata]`,
      );
    }
    if (section.subsection !== undefined) {
      throw new ConfigError(`${label} at line ${section.line} of ${file}: [${section.name === 'metadata' ? 'Metadata' : 'BlockStorage'}] takes no subsection`);
    }
    if (section.name === 'blockstorage') blockStorage(section, label, { node, controller }, origins, fail);
    else metadata(section, label, node, origins, fail);
  }

  const doc: Record<string, unknown> = {};
  const names = Object.keys(clouds);
  if (names.length > 0) {
    doc.clouds = clouds;
    // The unnamed [Global] is the default; without one, the first subsection is,
    // as the first cloud of a clouds.yaml is.
    doc.cloud = names.includes(DEFAULT_CLOUD) ? DEFAULT_CLOUD : names[0];
  }
  const driver: Record<string, unknown> = {};
  if (Object.keys(node).length > 0) driver.node = node;
  if (Object.keys(controller).length > 0) driver.controller = controller;
  if (Object.keys(driver).length > 0) doc.driver = driver;
  return { doc, describe };
}

type Fail = (o: Origin, what: string) => never;

function globalCloud(section: CloudConfSection, label: string, name: string, origins: Map<string, Origin>, fail: Fail): Record<string, unknown> {
  const cloud: Record<string, unknown> = {};
  const variables = lastOfEach(section.variables);
  // The Go plugin reads clouds-file and cloud only when use-clouds is true.
  const useClouds = variables.find((v) => v.name === 'use-clouds');
  const cloudsYamlOn = useClouds !== undefined && useClouds.value !== '' && (useClouds.value === null || parseBool(useClouds.value) !== false);
  for (const v of variables) {
    const o: Origin = { section: label, key: v.name, line: v.line };
    const refused = GLOBAL_REFUSED[v.name];
    if (refused) {
      // `trust-id =` is gcfg's zero value, as if absent; use-clouds = false asks for nothing the driver lacks.
      if (v.value === '') continue;
      if ((v.name === 'use-clouds' || v.name === 'clouds-file' || v.name === 'cloud') && !cloudsYamlOn) continue;
      fail(o, refused);
    }
    const yamlKey = GLOBAL_KEYS[v.name];
    if (!yamlKey) unknownKey(o, Object.keys(GLOBAL_KEYS), fail);
    origins.set(`clouds.${name}.${yamlKey}`, o);
    if (v.name === 'tls-insecure') {
      // The Go plugin turns verification off for exactly "true" and leaves it on for
      // anything else; only true and false are taken here, so that no spelling of
      // "yes" quietly leaves it on or turns it off.
      if (v.value !== 'true' && v.value !== 'false' && v.value !== '') fail(o, 'must be true or false');
      cloud.verify = v.value !== 'true';
      continue;
    }
    if (v.value === null) fail(o, `needs a value: ${v.name} = ...`);
    // gcfg leaves a key written as `key =` at its zero value, the same as absent.
    if (v.value === '') continue;
    setPath(cloud, yamlKey, v.value);
  }
  const auth = (cloud.auth ?? {}) as Record<string, unknown>;
  cloud.auth = auth;
  // gophercloud authenticates with the application credential whenever one is given.
  const appCredential = ['application_credential_id', 'application_credential_name', 'application_credential_secret'].some((k) => k in auth);
  cloud.auth_type = appCredential ? 'v3applicationcredential' : 'password';
  return cloud;
}

function blockStorage(
  section: CloudConfSection,
  label: string,
  { node, controller }: { node: Record<string, unknown>; controller: Record<string, unknown> },
  origins: Map<string, Origin>,
  fail: Fail,
): void {
  for (const v of lastOfEach(section.variables)) {
    const o: Origin = { section: label, key: v.name, line: v.line };
    switch (v.name) {
      case 'node-volume-attach-limit':
        origins.set('driver.node.max_volumes_per_node', o);
        node.max_volumes_per_node = parseInteger(v, o, fail);
        break;
      // The Go plugin rescans a resized device only when told to; this driver always
      // asks the kernel to re-read the size of a disk that has a rescan file (node/resize.ts).
      case 'rescan-on-resize':
      // The Go plugin can be told to use no Cinder microversion, for clouds older than
      // 3.34; this driver asks the cloud which versions it offers and uses those.
      case 'ignore-volume-microversion':
      // The in-tree provider's key, shown in the Go plugin's multi-cloud example, which
      // that plugin ignored; this driver negotiates the Cinder version likewise.
      case 'bs-version':
        if (v.name !== 'bs-version') requireBool(v, o, fail);
        break;
      case 'ignore-volume-az':
        // For clouds whose volume zones are not their compute zones: the Go plugin then
        // ignores a volume's Cinder zone and gives its PV the pod's compute zone. The
        // nearest setting here is zones off (topology: false): Cinder places the volume
        // and its PV may go to any node, which such a cloud can attach from. To keep
        // PVs in zones, write a cloud.yaml with driver.controller.az_map instead.
        origins.set('driver.controller.topology', o);
        if (requireBool(v, o, fail)) controller.topology = false;
        break;
      default:
        unknownKey(o, BLOCK_STORAGE_KEYS, fail);
    }
  }
}

function metadata(section: CloudConfSection, label: string, node: Record<string, unknown>, origins: Map<string, Origin>, fail: Fail): void {
  for (const v of lastOfEach(section.variables)) {
    const o: Origin = { section: label, key: v.name, line: v.line };
    switch (v.name) {
      case 'search-order': {
        // The Go plugin's own check (pkg/util/metadata CheckMetadataSearchOrder).
        const order = (v.value ?? '').split(',').map((x) => x.trim());
        if (order.length > 2 || order.some((x) => x !== 'configDrive' && x !== 'metadataService')) {
          fail(o, 'must be configDrive, metadataService, or both, comma-separated');
        }
        origins.set('driver.node.metadata_search_order', o);
        node.metadata_search_order = order;
        break;
      }
      case 'request-timeout':
        fail(o, 'has no setting here: the node plugin tries the metadata service 3 times, waiting 2 s the first time and twice as long each time after, up to 10 s; remove it');
        break;
      default:
        unknownKey(o, METADATA_KEYS, fail);
    }
  }
}

/**
 * gcfg stores a repeated name's last value in a single-valued field (and every
 * key the Go plugin reads is single-valued), so the last one counts; each keeps
 * the line it was written on.
 */
function lastOfEach(variables: readonly CloudConfVariable[]): CloudConfVariable[] {
  const byName = new Map<string, CloudConfVariable>();
  for (const v of variables) {
    byName.delete(v.name);
    byName.set(v.name, v);
  }
  return [...byName.values()];
}

/**
 * An unknown key is named only when it is close to a known one (a typo): a value
 * wrapped onto a line of its own, a password say, is read as a key, and must not
 * reach the message.
 */
function unknownKey(o: Origin, known: readonly string[], fail: Fail): never {
  const hint = closest(o.key, [...known]);
  if (hint) return fail(o, `is not a key the Go cinder-csi-plugin reads (did you mean '${hint}'?)`);
  return fail({ ...o, key: '' }, 'is not one the Go cinder-csi-plugin reads (its name is not shown, in case it is a value wrapped onto a line of its own)');
}

/** gcfg's booleans: true/yes/on/1 and false/no/off/0 in any case. */
function parseBool(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  return undefined;
}

/** A boolean key's value; a name with no `=` is true, as gcfg reads it. */
function requireBool(v: CloudConfVariable, o: Origin, fail: Fail): boolean {
  if (v.value === null) return true;
  const b = parseBool(v.value);
  if (b === undefined) fail(o, 'must be true or false');
  return b;
}

/** gcfg's integers: decimal (never octal) or 0x hexadecimal. */
function parseInteger(v: CloudConfVariable, o: Origin, fail: Fail): number {
  const text = v.value ?? '';
  if (/^[+-]?\d+$/.test(text)) return Number.parseInt(text, 10);
  if (/^[+-]?0x[0-9a-f]+$/i.test(text)) return (text.startsWith('-') ? -1 : 1) * Number.parseInt(text.replace(/^[+-]?0x/i, ''), 16);
  return fail(o, 'must be a whole number');
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const child = (target[head] ?? {}) as Record<string, unknown>;
  target[head] = child;
  setPath(child, rest.join('.'), value);
}

function sectionLabel(s: CloudConfSection): string {
  const name = { global: 'Global', blockstorage: 'BlockStorage', metadata: 'Metadata' }[s.name] ?? s.name;
  return s.subsection === undefined ? `[${name}]` : `[${name} ${JSON.stringify(s.subsection)}]`;
}

function describeOrigin(o: Origin, file: string): string {
  return `${o.key ? `'${o.key}'` : 'a key'} in ${o.section}${o.line !== undefined ? ` at line ${o.line}` : ''} of ${file}`;
}
