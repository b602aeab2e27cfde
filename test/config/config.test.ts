// Configuration (issue 2, item 7): every accepted shape of one YAML file
// (Flocker `dataset:`, openstacksdk `clouds:`, plus `driver:` settings) and the
// OS_* environment, validated into one typed object; every mistake is a
// ConfigError naming the key and the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cloudsYamlPlaces, ConfigError, DEFAULTS, loadConfig } from '../../src/config/config';
import { configFiles } from '../helpers/config-files';

const { dir, CA, CERT, KEY, file, load, configError } = configFiles('cinder-csi-config-');

const DATASET_PASSWORD = `
dataset:
  backend: openstack
  region: RegionOne
  auth_plugin: password
  username: alice
  password: s3cret
  auth_url: https://keystone.example.com:5000/v3
  project_name: storage
  user_domain_name: Default
  project_domain_name: Default
`;

// ----------------------------------------------------------- dataset:

test('a Flocker dataset stanza with password auth is the one cloud, named default', () => {
  const c = load(DATASET_PASSWORD);
  assert.equal(c.clouds.length, 1);
  const [cloud] = c.clouds;
  assert.equal(cloud.name, 'default');
  assert.equal(cloud.region, 'RegionOne');
  assert.equal(cloud.interface, 'public');
  assert.deepEqual(cloud.tls, { verify: true, caFile: undefined, certFile: undefined, keyFile: undefined, verifyHint: 'verify_peer: true, with verify_ca_path naming the CA file', caKey: 'verify_ca_path' });
  assert.equal(cloud.blockStorageApiVersion, 'auto');
  assert.equal(cloud.requestTimeoutMs, DEFAULTS.requestTimeoutMs);
  assert.equal(cloud.auth.authPlugin, 'password');
  assert.equal(cloud.auth.authUrl, 'https://keystone.example.com:5000/v3');
  assert.equal(cloud.auth.username, 'alice');
  assert.equal(cloud.auth.password, 's3cret');
  assert.equal(cloud.auth.projectName, 'storage');
  assert.equal(cloud.auth.userDomainName, 'Default');
  assert.equal(cloud.auth.projectDomainName, 'Default');
});

test('an unquoted value that looks like a number is kept as written: YAML would read password 0123 as 123', () => {
  const c = load(DATASET_PASSWORD.replace('password: s3cret', 'password: 0123').replace('project_name: storage', 'project_name: 1e3'));
  assert.equal(c.clouds[0].auth.password, '0123');
  assert.equal(c.clouds[0].auth.projectName, '1e3');
  const long = load(DATASET_PASSWORD.replace('password: s3cret', 'password: 012345678901234567890'));
  assert.equal(long.clouds[0].auth.password, '012345678901234567890');
  // The keys that are numbers still read theirs.
  const maxVolumes = (v: string) => load(`${DATASET_PASSWORD}driver:\n  node:\n    max_volumes_per_node: ${v}\n`).node.maxVolumesPerNode;
  for (const [written, value] of [['16', 16], ['+16', 16], ['1.6e1', 16], ['16.0', 16], ['0x10', 16], ['0o20', 16]] as const) assert.equal(maxVolumes(written), value, written);
  assert.match(configError(`${DATASET_PASSWORD}driver:\n  node:\n    max_volumes_per_node: 1.5\n`), /must be a whole number/);
});

test('the auth plugin defaults to password, and tenant_name is the old name of project_name', () => {
  const c = load('dataset:\n  username: bob\n  password: pw\n  auth_url: https://k/v2.0\n  tenant_name: old-tenant\n  tenant_id: t-1\n');
  assert.equal(c.clouds[0].auth.authPlugin, 'password');
  assert.equal(c.clouds[0].auth.projectName, 'old-tenant');
  assert.equal(c.clouds[0].auth.projectId, 't-1');
});

test('rackspace auth takes username, api_key and auth_url', () => {
  const c = load('dataset:\n  auth_plugin: rackspace\n  username: rack\n  api_key: abc123\n  auth_url: https://identity.api.rackspacecloud.com/v2.0\n  region: DFW\n');
  const { auth } = c.clouds[0];
  assert.equal(auth.authPlugin, 'rackspace');
  assert.equal(auth.username, 'rack');
  assert.equal(auth.apiKey, 'abc123');
  assert.equal(auth.authUrl, 'https://identity.api.rackspacecloud.com/v2.0');
  assert.equal(c.clouds[0].region, 'DFW');
});

test('v3applicationcredential auth takes the credential ID and secret', () => {
  const c = load('dataset:\n  auth_plugin: v3applicationcredential\n  application_credential_id: ac-1\n  application_credential_secret: acs\n  auth_url: https://k/v3\n');
  const { auth } = c.clouds[0];
  assert.equal(auth.authPlugin, 'v3applicationcredential');
  assert.equal(auth.applicationCredentialId, 'ac-1');
  assert.equal(auth.applicationCredentialSecret, 'acs');
});

test('token auth takes a token', () => {
  const c = load('dataset:\n  auth_plugin: token\n  token: gAAAA-token\n  auth_url: https://k/v3\n  project_id: p-1\n');
  assert.equal(c.clouds[0].auth.authPlugin, 'token');
  assert.equal(c.clouds[0].auth.token, 'gAAAA-token');
  assert.equal(c.clouds[0].auth.projectId, 'p-1');
});

test('verify_peer false turns certificate checks off; verify_ca_path names the CA bundle', () => {
  const off = load(`${DATASET_PASSWORD}  verify_peer: false\n`);
  assert.equal(off.clouds[0].tls.verify, false);
  const ca = load(`${DATASET_PASSWORD}  verify_peer: true\n  verify_ca_path: ${CA}\n  client_cert_path: ${CERT}\n  client_key_path: ${KEY}\n`);
  assert.equal(ca.clouds[0].tls.verify, true);
  assert.deepEqual(ca.clouds[0].tls, { verify: true, caFile: CA, certFile: CERT, keyFile: KEY, verifyHint: 'verify_peer: true, with verify_ca_path naming the CA file', caKey: 'verify_ca_path' });
});

// ----------------------------------------------------------- clouds:

const CLOUDS = `
clouds:
  east:
    auth:
      auth_url: https://east.example.com:5000/v3
      username: alice
      password: pw-east
      project_name: p
      user_domain_name: Default
      project_domain_name: Default
    region_name: east-1
    interface: internal
    identity_api_version: 3
    cacert: ${CA}
  west:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://west.example.com:5000/v3
      application_credential_id: ac-west
      application_credential_secret: acs-west
    region_name: west-1
    verify: false
`;

test('clouds.yaml: every cloud is configured, the first listed is the default', () => {
  const c = load(CLOUDS);
  assert.deepEqual(c.clouds.map((x) => x.name), ['east', 'west']);
  const [east, west] = c.clouds;
  assert.equal(east.region, 'east-1');
  assert.equal(east.interface, 'internal');
  assert.equal(east.auth.identityApiVersion, '3');
  assert.equal(east.auth.password, 'pw-east');
  assert.equal(east.tls.caFile, CA);
  assert.equal(east.tls.verify, true);
  assert.equal(west.auth.authPlugin, 'v3applicationcredential');
  assert.equal(west.auth.applicationCredentialSecret, 'acs-west');
  assert.equal(west.tls.verify, false);
});

test("clouds.yaml's booleans in YAML 1.1's spellings (openstacksdk reads them with PyYAML): verify: no, insecure: yes", () => {
  assert.equal(load(CLOUDS.replace('verify: false', 'verify: no')).clouds[1].tls.verify, false);
  assert.equal(load(CLOUDS.replace('verify: false', 'insecure: yes')).clouds[1].tls.verify, false);
  assert.equal(load(CLOUDS.replace('verify: false', 'verify: On')).clouds[1].tls.verify, true);
});

test('`cloud:` in the file picks the default cloud, and wins over OS_CLOUD', () => {
  assert.deepEqual(load(`cloud: west\n${CLOUDS}`).clouds.map((x) => x.name), ['west', 'east']);
  assert.deepEqual(load(`cloud: west\n${CLOUDS}`, { OS_CLOUD: 'east' }).clouds.map((x) => x.name), ['west', 'east']);
});

test('OS_CLOUD picks the default cloud when the file does not', () => {
  assert.deepEqual(load(CLOUDS, { OS_CLOUD: 'west' }).clouds.map((x) => x.name), ['west', 'east']);
});

test('a cloud that is not listed is an error naming it', () => {
  const msg = configError(`cloud: north\n${CLOUDS}`);
  assert.match(msg, /'cloud' in .* names cloud 'north', which is not under 'clouds'/);
});

test('a cloud name that could not be part of a volume ID (<cloud>:<uuid>, at most 128 bytes) is refused, saying why', () => {
  const named = (name: string) => `clouds:\n  ${JSON.stringify(name)}:\n    auth:\n      auth_url: https://k/v3\n      username: u\n      password: p\n`;
  assert.equal(load(named('a'.repeat(91))).clouds[0]!.name, 'a'.repeat(91));
  for (const bad of ['a'.repeat(92), 'east/west', 'east\twest']) {
    assert.match(configError(named(bad)), /cloud name .* cannot be part of a volume ID: use at most 91 bytes, without '\/' or control characters/);
  }
});

test('a file with both dataset: and clouds: is refused, naming both and what to keep', () => {
  // Kept together, the dataset cloud would silently stay the default whatever
  // `cloud:` says, and a clouds entry named 'default' would share its name.
  for (const text of [`${DATASET_PASSWORD}${CLOUDS}`, `cloud: west\n${DATASET_PASSWORD}${CLOUDS}`, `${DATASET_PASSWORD}${CLOUDS.replace('east:', 'default:')}`]) {
    assert.match(
      configError(text),
      /^'dataset' and 'clouds' in \S+ both describe clouds; keep one: 'dataset' for a single cloud, or 'clouds' \(with 'cloud' naming the default\) for one or more$/,
    );
  }
});

test('`cloud:` without a clouds: section is refused rather than ignored', () => {
  assert.match(configError(`cloud: east\n${DATASET_PASSWORD}`), /^'cloud' in \S+ names the default among 'clouds', but the file has no 'clouds' section$/);
  assert.match(configError('cloud: east\n'), /'cloud' in .* has no 'clouds' section/);
});

// ----------------------------------------------------------- OS_* environment

test('without a file, the OS_* variables describe the cloud', () => {
  const c = loadConfig({
    env: {
      OS_AUTH_URL: 'https://k.example.com/v3',
      OS_USERNAME: 'envuser',
      OS_PASSWORD: 'envpw',
      OS_PROJECT_NAME: 'envproject',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_ID: 'default',
      OS_REGION_NAME: 'RegionTwo',
      OS_INTERFACE: 'internal',
      OS_CACERT: CA,
      OS_IDENTITY_API_VERSION: '3',
    },
  });
  assert.equal(c.source, 'the environment');
  assert.equal(c.clouds.length, 1);
  const [cloud] = c.clouds;
  assert.equal(cloud.name, 'default');
  assert.equal(cloud.auth.authUrl, 'https://k.example.com/v3');
  assert.equal(cloud.auth.username, 'envuser');
  assert.equal(cloud.auth.password, 'envpw');
  assert.equal(cloud.auth.projectName, 'envproject');
  assert.equal(cloud.auth.userDomainName, 'Default');
  assert.equal(cloud.auth.projectDomainId, 'default');
  assert.equal(cloud.auth.identityApiVersion, '3');
  assert.equal(cloud.region, 'RegionTwo');
  assert.equal(cloud.interface, 'internal');
  assert.equal(cloud.tls.caFile, CA);
  assert.equal(cloud.tls.verify, true);
});

test('OS_AUTH_TYPE and OS_INSECURE are honoured', () => {
  const c = loadConfig({
    env: { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: 'ac', OS_APPLICATION_CREDENTIAL_SECRET: 's', OS_INSECURE: 'true' },
  });
  assert.equal(c.clouds[0].auth.authPlugin, 'v3applicationcredential');
  assert.equal(c.clouds[0].tls.verify, false);
});

test('OS_INTERFACE and OS_INSECURE take the clients\' spellings, and anything else is a config error, not a silent default', () => {
  const base = { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'token', OS_TOKEN: 't' };
  const cloud = (more: Record<string, string>) => loadConfig({ env: { ...base, ...more } }).clouds[0];
  assert.equal(cloud({ OS_INTERFACE: 'internalURL' }).interface, 'internal');
  assert.equal(cloud({ OS_INTERFACE: 'admin' }).interface, 'admin');
  assert.equal(cloud({}).interface, 'public');
  assert.throws(() => cloud({ OS_INTERFACE: 'private' }), (e: Error) => e instanceof ConfigError && /OS_INTERFACE must be public, internal or admin, not 'private'/.test(e.message));
  assert.equal(cloud({ OS_INSECURE: 'True' }).tls.verify, false);
  assert.equal(cloud({ OS_INSECURE: 'yes' }).tls.verify, false);
  assert.equal(cloud({ OS_INSECURE: 'false' }).tls.verify, true);
  assert.equal(cloud({ OS_INSECURE: '0' }).tls.verify, true);
  assert.throws(() => cloud({ OS_INSECURE: 'maybe' }), (e: Error) => e instanceof ConfigError && /OS_INSECURE must be true or false/.test(e.message));
});

test('a file without a cloud falls back to the OS_* variables; with no cloud anywhere the list is empty', () => {
  const c = load('driver:\n  cluster_id: c1\n', { OS_AUTH_URL: 'https://k/v3', OS_AUTH_TYPE: 'token', OS_TOKEN: 't' });
  assert.equal(c.clouds[0].auth.token, 't');
  assert.deepEqual(load('driver:\n  cluster_id: c1\n').clouds, []);
  assert.deepEqual(loadConfig({ env: {} }).clouds, []);
});

test('a cloud in the file wins over the OS_* variables', () => {
  const c = load(DATASET_PASSWORD, { OS_AUTH_URL: 'https://other/v3', OS_USERNAME: 'x', OS_PASSWORD: 'y' });
  assert.equal(c.clouds.length, 1);
  assert.equal(c.clouds[0].auth.username, 'alice');
});

test('OS_CLIENT_CONFIG_FILE with OS_CLOUD reads that cloud from a clouds.yaml', () => {
  const cloudsFile = file(CLOUDS, 'clouds.yaml');
  const c = loadConfig({ env: { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLOUD: 'west' } });
  assert.deepEqual(c.clouds.map((x) => x.name), ['west']);
  assert.equal(c.clouds[0].auth.applicationCredentialId, 'ac-west');
});

test('OS_CLOUD alone reads clouds.yaml where the OpenStack clients look for it, or says where it looked', () => {
  const home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.config', 'openstack'), { recursive: true });
  const env = { OS_CLOUD: 'west', HOME: home };
  // The other two places (the working directory, /etc/openstack) are this machine's: asserted only when empty.
  if (!cloudsYamlPlaces(env).some((p) => existsSync(p))) {
    assert.throws(() => loadConfig({ env }), /OS_CLOUD names cloud 'west', but there is no clouds\.yaml in .*\.config\/openstack\/clouds\.yaml.*set OS_CLIENT_CONFIG_FILE/);
  }
  writeFileSync(path.join(home, '.config', 'openstack', 'clouds.yaml'), CLOUDS);
  const c = loadConfig({ env });
  assert.deepEqual(c.clouds.map((x) => x.name), ['west']);
  assert.equal(c.clouds[0].auth.applicationCredentialId, 'ac-west');
});

test('the config file itself may be a plain clouds.yaml', () => {
  const c = loadConfig({ file: file(CLOUDS, 'plain-clouds.yaml'), env: { OS_CLOUD: 'east' } });
  assert.equal(c.clouds[0].name, 'east');
});

// ----------------------------------------------------------- driver:

test('driver settings: defaults when absent', () => {
  const c = load(DATASET_PASSWORD);
  assert.equal(c.driverName, 'cinder.csi.openstack.org');
  assert.equal(c.clusterId, 'kubernetes');
  assert.deepEqual(c.controller, { azMap: {}, defaultVolumeType: undefined, topology: true, advertiseGetSnapshot: false });
  assert.equal(c.node.instanceId, undefined);
  assert.equal(c.node.maxVolumesPerNode, undefined);
  assert.equal(c.node.deviceRoot, '/dev');
  assert.equal(c.node.sysfsRoot, '/sys');
  assert.equal(c.node.stateDir, '/var/lib/cinder-csi');
  assert.equal(c.node.kubeletRoot, '/var/lib/kubelet');
  assert.deepEqual(c.node.metadataSearchOrder, ['configDrive', 'metadataService']);
  assert.equal(c.node.metadataUrl, 'http://169.254.169.254');
});

test('driver settings: every key read into the typed config', () => {
  const c = load(`${DATASET_PASSWORD}
driver:
  name: cinder.example.org
  cluster_id: prod-eu
  controller:
    az_map: { nova: az-volumes-1 }
    default_volume_type: ssd
    topology: false
    advertise_get_snapshot: true
  node:
    instance_id: 0f5b2c6e-1111-4a4a-9c9c-2f2f2f2f2f2f
    availability_zone: nova
    max_volumes_per_node: 24
    device_root: /host/dev
    sysfs_root: /host/sys
    state_dir: /var/lib/kubelet/plugins/cinder
    kubelet_root: /var/snap/microk8s/common/var/lib/kubelet
    confine_paths: true
    metadata_search_order: [metadata_service, config_drive]
    metadata_url: http://169.254.169.254:8080
`);
  assert.equal(c.driverName, 'cinder.example.org');
  assert.equal(c.clusterId, 'prod-eu');
  assert.deepEqual(c.controller, { azMap: { nova: 'az-volumes-1' }, defaultVolumeType: 'ssd', topology: false, advertiseGetSnapshot: true });
  assert.deepEqual(c.node, {
    instanceId: '0f5b2c6e-1111-4a4a-9c9c-2f2f2f2f2f2f',
    availabilityZone: 'nova',
    maxVolumesPerNode: 24,
    deviceRoot: '/host/dev',
    sysfsRoot: '/host/sys',
    stateDir: '/var/lib/kubelet/plugins/cinder',
    kubeletRoot: '/var/snap/microk8s/common/var/lib/kubelet',
    confinePaths: true,
    metadataSearchOrder: ['metadataService', 'configDrive'],
    metadataUrl: 'http://169.254.169.254:8080',
  });
});

test('an empty file is a valid config of defaults', () => {
  const c = load('');
  assert.deepEqual(c.clouds, []);
  assert.equal(c.clusterId, 'kubernetes');
  assert.equal(c.node.confinePaths, false, 'csi-sanity and people trying the driver pass paths outside kubelet\'s');
});

// ----------------------------------------------------------- errors

test('an unknown top-level key is named, with a suggestion', () => {
  assert.match(configError(`datset:\n  username: a\n`), /^'datset' in \S+ is not a known setting \(did you mean 'dataset'\?\)$/);
  assert.match(configError(`${DATASET_PASSWORD}timezone: UTC\n`), /^'timezone' in \S+ is not a known setting$/);
});

test('a misspelled nested key is named by its full path, with a suggestion', () => {
  assert.match(configError(`${DATASET_PASSWORD}  regoin: x\n`), /'dataset\.regoin' in .* is not a known setting \(did you mean 'region'\?\)/);
  assert.match(configError('driver:\n  node:\n    max_volume_per_node: 4\n'), /'driver\.node\.max_volume_per_node' in .* \(did you mean 'max_volumes_per_node'\?\)/);
  assert.match(configError('driver:\n  controler:\n    az_map: {}\n'), /'driver\.controler' in .* \(did you mean 'controller'\?\)/);
  assert.match(configError(CLOUDS.replace('region_name: west-1', 'region_nmae: west-1')), /'clouds\.west\.region_nmae' in .* \(did you mean 'region_name'\?\)/);
});

test("a key that is right in the config's other format says what it is called here", () => {
  assert.equal(
    configError(CLOUDS.replace('region_name: west-1', 'region: west-1')).replace(/ in \S+ /, ' in F '),
    "'clouds.west.region' in F is not a known setting here (did you mean 'region_name'? 'region' is the key in 'dataset:'; under 'clouds:' it is 'region_name')",
  );
  assert.match(
    configError(DATASET_PASSWORD.replace('region: RegionOne', 'region_name: RegionOne')),
    /'dataset\.region_name' in .* is not a known setting here \(did you mean 'region'\? 'region_name' is the key under 'clouds:'; in 'dataset:' it is 'region'\)$/,
  );
  assert.match(configError(DATASET_PASSWORD.replace('auth_plugin: password', 'auth_type: password')), /'dataset\.auth_type' .*did you mean 'auth_plugin'\?/);
  assert.match(configError(CLOUDS.replace('interface: internal', 'auth_plugin: password')), /'clouds\.east\.auth_plugin' .*did you mean 'auth_type'\?/);
  // Credentials beside 'auth' in a cloud, and the cloud's settings inside it.
  assert.match(configError(`${CLOUDS}    project_id: p1\n`), /'clouds\.west\.project_id' .*did you mean 'clouds\.west\.auth\.project_id'\?/);
  assert.match(
    configError(CLOUDS.replace('      project_name: p\n', '      project_name: p\n      region_name: east-1\n')),
    /'clouds\.east\.auth\.region_name' .*did you mean 'clouds\.east\.region_name'\? it belongs to the cloud, beside 'auth'/,
  );
});

test('a misspelled credential key is reported as misspelled, not as a missing credential', () => {
  assert.match(
    configError('dataset:\n  usernmae: alice\n  password: pw\n  auth_url: https://k/v3\n'),
    /'dataset\.usernmae' in .* is not a known setting \(did you mean 'username'\?\)/,
  );
  assert.match(
    configError('dataset:\n  username: alice\n  password: pw\n  auth_ulr: https://k/v3\n'),
    /'dataset\.auth_ulr' in .* \(did you mean 'auth_url'\?\)/,
  );
  assert.match(
    configError(CLOUDS.replace('password: pw-east', 'pasword: pw-east')),
    /'clouds\.east\.auth\.pasword' in .* \(did you mean 'password'\?\)/,
  );
});

test('a value of the wrong type is named with what it should be', () => {
  assert.match(configError(`${DATASET_PASSWORD}  verify_peer: maybe\n`), /'dataset\.verify_peer' in .* must be true or false, not string "maybe"/);
  assert.match(configError('driver:\n  node:\n    max_volumes_per_node: lots\n'), /'driver\.node\.max_volumes_per_node' in .* must be a whole number/);
  assert.match(configError('driver:\n  node:\n    max_volumes_per_node: 0\n'), /'driver\.node\.max_volumes_per_node' in .* must be between 1 and 4096, not 0/);
  assert.match(configError('driver:\n  cluster_id: [a, b]\n'), /'driver\.cluster_id' in .* must be a string, not a list/);
  assert.match(configError('driver: yes please\n'), /'driver' in .* must be a mapping/);
  assert.match(configError('driver:\n  node:\n    state_dir: relative/dir\n'), /'driver\.node\.state_dir' in .* must be an absolute path/);
  assert.match(configError('driver:\n  node:\n    metadata_search_order: [ec2]\n'), /'driver\.node\.metadata_search_order' in .* lists 'ec2'/);
  assert.match(configError('driver:\n  controller:\n    az_map: { nova: [a, b] }\n'), /'driver\.controller\.az_map\.nova' in .* must be a string/);
  assert.match(configError(`${DATASET_PASSWORD}  interface: private\n`), /'dataset\.interface' in .* must be one of public, internal, admin/);
  assert.match(configError(DATASET_PASSWORD.replace('backend: openstack', 'backend: aws')), /'dataset\.backend' in .* must be 'openstack'/);
  assert.match(configError(DATASET_PASSWORD.replace('auth_plugin: password', 'auth_plugin: kerberos')), /'dataset\.auth_plugin' in .* is 'kerberos'; supported: password, rackspace, v3applicationcredential, token/);
  assert.match(configError('driver:\n  name: not a name!\n'), /'driver\.name' in .* must be a domain-style name/);
});

test('a metadata_url the lookup would refuse is a config error now, not a node that retries forever', () => {
  const where = /^'driver\.node\.metadata_url' in \S+ /;
  const error = (url: string) => configError(`driver:\n  node:\n    metadata_url: '${url}'\n`);
  assert.match(error('https://169.254.169.254'), where);
  assert.match(error('https://169.254.169.254'), /must be plain http:\/\/ .*, not https:\/\/$/);
  assert.match(error('169.254.169.254'), /must be a URL such as http:\/\/169\.254\.169\.254, not '169\.254\.169\.254'$/);
  assert.match(error('http://[fe80::a9fe:a9fe%eth0]'), /a link-local IPv6 address with a zone \(%\.\.\.\) is not supported; use http:\/\/169\.254\.169\.254$/);
  assert.match(error('http://[fe80::a9fe:a9fe%25eth0]/'), /with a zone .* is not supported/);
  assert.match(error('http://169.254.169.254/?x=1'), /must have no \?query or #fragment/);
  // Accepted: a port, a path (the simulator's), an IPv6 address without a zone.
  for (const url of ['http://169.254.169.254:8080', 'http://127.0.0.1:4000/metadata/i-1/', 'http://[fd00::a9fe:a9fe]']) {
    assert.equal(load(`driver:\n  node:\n    metadata_url: '${url}'\n`).node.metadataUrl, url);
  }
});

test('a missing auth_url or credential is named', () => {
  assert.match(configError('dataset:\n  username: alice\n  password: pw\n'), /'dataset\.auth_url' in .* is required/);
  assert.match(configError('dataset:\n  username: alice\n  auth_url: https://k/v3\n'), /'dataset\.password' in .* is required for password authentication/);
  assert.match(configError('dataset:\n  password: pw\n  auth_url: https://k/v3\n'), /'dataset\.username' in .* is required/);
  assert.match(configError('dataset:\n  auth_plugin: rackspace\n  username: r\n  auth_url: https://k/v2.0\n'), /'dataset\.api_key' in .* is required for the rackspace auth plugin/);
  assert.match(configError('dataset:\n  auth_plugin: token\n  auth_url: https://k/v3\n'), /'dataset\.token' in .* is required for token authentication/);
  assert.match(
    configError('dataset:\n  auth_plugin: v3applicationcredential\n  application_credential_id: ac\n  auth_url: https://k/v3\n'),
    /'dataset\.application_credential_secret' in .* is required/,
  );
  assert.match(configError(CLOUDS.replace('      password: pw-east\n', '')), /'clouds\.east\.auth\.password' in .* is required/);
});

test('a missing OS_* credential names the variable set and the environment', () => {
  assert.throws(
    () => loadConfig({ env: { OS_AUTH_URL: 'https://k/v3', OS_USERNAME: 'u' } }),
    (e) => e instanceof ConfigError && /'OS_\*\.password' in the environment is required/.test(e.message),
  );
});

test('a file that is not YAML is named, with the parser line', () => {
  assert.match(configError('dataset:\n  username: [unclosed\n'), /^config file \S+ is not valid YAML: /);
  assert.match(configError('- just\n- a list\n'), /^'' in \S+ must be a mapping$|must be a mapping/);
});

test('a YAML error says where, never what: an unquoted password read as a tag or an alias stays out of the message', () => {
  const secret = 'Hunter2Secret';
  for (const [text, words] of [
    [`dataset:\n  username: alice\n  password: !${secret}\n`, /unknown tag at line \d+, column \d+ \(a value starting with !, \*/],
    [`dataset:\n  username: alice\n  password: *${secret}\n`, /unidentified alias at line 3, column \d+ /],
    [`dataset:\n  password: !!${secret}x: y\n`, /at line \d+, column \d+/],
  ] as const) {
    const message = configError(text);
    assert.match(message, words);
    assert.ok(!message.includes(secret), message);
  }
  const cloudsFile = file(`clouds:\n  west:\n    auth:\n      password: *${secret}\n`, 'star-clouds.yaml');
  assert.throws(
    () => loadConfig({ env: { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLOUD: 'west' } }),
    (e) => e instanceof ConfigError && /OS_CLIENT_CONFIG_FILE \S+: not valid YAML: unidentified alias at line 4/.test(e.message) && !e.message.includes(secret),
  );
});

test('a file that cannot be read is named', () => {
  const missing = path.join(dir, 'no-such-file.yaml');
  assert.throws(
    () => loadConfig({ file: missing, env: {} }),
    (e) => e instanceof ConfigError && e.message === `cannot read config file ${missing}: ENOENT`,
  );
});

test('an unreadable OS_CLIENT_CONFIG_FILE is named', () => {
  const missing = path.join(dir, 'no-clouds.yaml');
  assert.throws(
    () => loadConfig({ env: { OS_CLIENT_CONFIG_FILE: missing, OS_CLOUD: 'x' } }),
    (e) => e instanceof ConfigError && e.message.includes(missing),
  );
});

// ----------------------------------------------------------- files the config names

// The HTTPS client reads these files when it builds a cloud, after the config
// was accepted; a missing one must stop the driver here, as a config error
// naming the key and the path, not later as a bare ENOENT.
test('every key that names a TLS file must name a readable file', () => {
  const missing = path.join(dir, 'missing.pem');
  const clouds = (key: string) => CLOUDS.replace(`cacert: ${CA}`, `${key}: ${missing}`);
  const cases: Array<[string, string]> = [
    [`${DATASET_PASSWORD}  verify_ca_path: ${missing}\n`, 'dataset.verify_ca_path'],
    [`${DATASET_PASSWORD}  client_cert_path: ${missing}\n  client_key_path: ${KEY}\n`, 'dataset.client_cert_path'],
    [`${DATASET_PASSWORD}  client_cert_path: ${CERT}\n  client_key_path: ${missing}\n`, 'dataset.client_key_path'],
    [clouds('cacert'), 'clouds.east.cacert'],
    [clouds('cert'), 'clouds.east.cert'],
    [clouds('key'), 'clouds.east.key'],
  ];
  for (const [text, key] of cases) {
    const msg = configError(text);
    assert.ok(msg.startsWith(`'${key}' in `), `names ${key}: ${msg}`);
    assert.ok(msg.endsWith(` names ${missing}, which does not exist`), `names the path: ${msg}`);
  }
});

test('a TLS file key naming a directory is a config error too', () => {
  const sub = path.join(dir, 'certs.d');
  mkdirSync(sub, { recursive: true });
  assert.match(configError(CLOUDS.replace(`cacert: ${CA}`, `cacert: ${sub}`)), /^'clouds\.east\.cacert' in \S+ names \S+certs\.d, which is not a regular file$/);
});

test('a missing CA file is an error even with verification off (the client still loads it)', () => {
  const missing = path.join(dir, 'gone.pem');
  assert.match(configError(`${DATASET_PASSWORD}  verify_peer: false\n  verify_ca_path: ${missing}\n`), /'dataset\.verify_ca_path' .* does not exist/);
});

test('OS_CACERT, OS_CERT and OS_KEY must name readable files', () => {
  const missing = path.join(dir, 'env-missing.pem');
  const env = { OS_AUTH_URL: 'https://k/v3', OS_USERNAME: 'u', OS_PASSWORD: 'p', OS_CACERT: CA, OS_CERT: CERT, OS_KEY: KEY };
  assert.deepEqual(loadConfig({ env }).clouds[0].tls, { verify: true, caFile: CA, certFile: CERT, keyFile: KEY, verifyHint: 'OS_INSECURE=false, with OS_CACERT naming the CA file', caKey: 'OS_CACERT' });
  for (const name of ['OS_CACERT', 'OS_CERT', 'OS_KEY']) {
    assert.throws(
      () => loadConfig({ env: { ...env, [name]: missing } }),
      (e) => e instanceof ConfigError && e.message === `${name} in the environment names ${missing}, which does not exist`,
    );
  }
});

test('OS_CLIENT_CONFIG_FILE with OS_CLOUD checks the TLS files of that cloud only', () => {
  const missing = path.join(dir, 'other-cloud-missing.pem');
  const cloudsFile = file(CLOUDS.replace(`cacert: ${CA}`, `cacert: ${missing}`), 'clouds-other-missing-ca.yaml');
  const c = loadConfig({ env: { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLOUD: 'west' } });
  assert.deepEqual(c.clouds.map((x) => x.name), ['west']);
  assert.throws(
    () => loadConfig({ env: { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLOUD: 'north' } }),
    (e) => e instanceof ConfigError && e.message === `OS_CLOUD names cloud 'north', which is not under 'clouds'`,
  );
});

test("a cloud read through OS_CLIENT_CONFIG_FILE has its cacert checked, named by that file", () => {
  const missing = path.join(dir, 'sdk-missing.pem');
  const cloudsFile = file(CLOUDS.replace(`cacert: ${CA}`, `cacert: ${missing}`), 'clouds-missing-ca.yaml');
  assert.throws(
    () => loadConfig({ env: { OS_CLIENT_CONFIG_FILE: cloudsFile, OS_CLOUD: 'east' } }),
    (e) => e instanceof ConfigError && e.message === `'clouds.east.cacert' in ${cloudsFile} names ${missing}, which does not exist`,
  );
});
