// The Go cinder-csi-plugin's cloud.conf as --config: every key it maps, what
// it ignores and what it refuses (each refusal naming the key, its line and
// what to do), and that it loads to the same config as the cloud.yaml it
// stands for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { configFiles } from '../helpers/config-files';
import type { DriverConfig } from '../../src/config/config';

/** Every secret in these files; no error message may hold one. */
const PASSWORD = 'pw-Secret;#"1';
const APP_SECRET = 'ac-Secret-2';

// The Secret's key is mounted as cloud.yaml whatever it holds, so every file here is named *.yaml.
const { dir, CA, CERT, KEY, load, configError } = configFiles('cinder-csi-cloud-conf-', [PASSWORD, APP_SECRET, 'pw-Secret']);

const GLOBAL = `[Global]
auth-url = https://keystone.example.com:5000/v3
username = k8s
password = "pw-Secret;#\\"1"
tenant-name = kubernetes
domain-name = Default
region = RegionOne
`;

// ----------------------------------------------------------- [Global]

test('[Global] is the default cloud, named default, with password authentication', () => {
  const { clouds } = load(GLOBAL);
  assert.deepEqual(clouds.map((x) => [x.name, x.region, x.interface, x.tls.verify, x.auth.authPlugin]), [['default', 'RegionOne', 'public', true, 'password']]);
  const { auth } = clouds[0];
  assert.deepEqual(
    [auth.authUrl, auth.username, auth.password, auth.projectName, auth.domainName, auth.userDomainName, auth.projectDomainName],
    ['https://keystone.example.com:5000/v3', 'k8s', PASSWORD, 'kubernetes', 'Default', undefined, undefined],
  );
});

test('every [Global] key the Go plugin reads has its place', () => {
  const [cloud] = load(`[Global]
auth-url = https://k/v3
user-id = u-1
password = ${PASSWORD.replace(/[;#"]/g, '')}
tenant-id = p-1
tenant-name = proj
domain-id = d-1
domain-name = dom
tenant-domain-id = pd-1
tenant-domain-name = pdom
user-domain-id = ud-1
user-domain-name = udom
region = r-1
os-endpoint-type = internal
ca-file = ${CA}
cert-file = ${CERT}
key-file = ${KEY}
tls-insecure = true
`).clouds;
  const { auth } = cloud;
  assert.deepEqual(
    [auth.authUrl, auth.userId, auth.password, auth.projectId, auth.projectName, auth.domainId, auth.domainName],
    ['https://k/v3', 'u-1', 'pw-Secret1', 'p-1', 'proj', 'd-1', 'dom'],
  );
  assert.deepEqual(
    [auth.projectDomainId, auth.projectDomainName, auth.userDomainId, auth.userDomainName, cloud.region, cloud.interface],
    ['pd-1', 'pdom', 'ud-1', 'udom', 'r-1', 'internal'],
  );
  assert.deepEqual(cloud.tls, { verify: false, caFile: CA, certFile: CERT, keyFile: KEY, verifyHint: 'tls-insecure = false, with ca-file naming the CA file', caKey: 'ca-file' });
});

test('application-credential-* select v3applicationcredential', () => {
  const [byId] = load(`[Global]\nauth-url = https://k/v3\napplication-credential-id = ac-1\napplication-credential-secret = ${APP_SECRET}\n`).clouds;
  assert.equal(byId.auth.authPlugin, 'v3applicationcredential');
  assert.equal(byId.auth.applicationCredentialId, 'ac-1');
  assert.equal(byId.auth.applicationCredentialSecret, APP_SECRET);
  const [byName] = load(
    `[Global]\nauth-url = https://k/v3\nusername = u\nuser-domain-name = Default\napplication-credential-name = ac\napplication-credential-secret = ${APP_SECRET}\n`,
  ).clouds;
  assert.equal(byName.auth.authPlugin, 'v3applicationcredential');
  assert.equal(byName.auth.applicationCredentialName, 'ac');
  assert.match(
    configError('[Global]\nauth-url = https://k/v3\napplication-credential-id = ac-1\n'),
    /^'application-credential-secret' in \[Global\] of \S+ is required for application credentials$/,
  );
});

test('tls-insecure: true turns verification off, false or empty leaves it on, anything else is refused', () => {
  assert.equal(load(`${GLOBAL}tls-insecure = true\n`).clouds[0].tls.verify, false);
  assert.equal(load(`${GLOBAL}tls-insecure = false\n`).clouds[0].tls.verify, true);
  assert.equal(load(`${GLOBAL}tls-insecure =\n`).clouds[0].tls.verify, true);
  // The Go plugin compares with "true" exactly: "yes" left verification on there.
  assert.match(configError(`${GLOBAL}tls-insecure = yes\n`), /^'tls-insecure' in \[Global\] at line 8 of \S+ must be true or false$/);
  assert.match(configError(`${GLOBAL}tls-insecure\n`), /'tls-insecure' in \[Global\] at line 8 .* must be true or false/);
});

test('a key written as `key =` is absent, as gcfg leaves it at its zero value', () => {
  const [cloud] = load(`${GLOBAL}region =\ntenant-id =\n`).clouds;
  assert.equal(cloud.region, undefined);
  assert.equal(cloud.auth.projectId, undefined);
});

test('a repeated key: the last value counts, as gcfg keeps it', () => {
  assert.equal(load(`${GLOBAL}region = second\n`).clouds[0].region, 'second');
});

test('names are case-insensitive', () => {
  assert.equal(load(GLOBAL.replace('[Global]', '[GLOBAL]').replace('region =', 'Region =')).clouds[0].region, 'RegionOne');
});

// ----------------------------------------------------------- [Global "name"]

const MULTI = `${GLOBAL}
[Global "zone-one"]
auth-url = https://one.example.com/v3
username = one
password = pw
tenant-id = t-one
domain-name = Default
region = one

[Global "zone-two"]
auth-url = https://two.example.com/v3
application-credential-id = ac-two
application-credential-secret = ${APP_SECRET}
region = two
`;

test('[Global "name"] subsections are more clouds; the unnamed [Global] stays the default wherever it is', () => {
  const c = load(MULTI);
  assert.deepEqual(c.clouds.map((x) => [x.name, x.region]), [['default', 'RegionOne'], ['zone-one', 'one'], ['zone-two', 'two']]);
  const last = load(MULTI.replace(GLOBAL, '') + GLOBAL);
  assert.deepEqual(last.clouds.map((x) => x.name), ['default', 'zone-one', 'zone-two']);
});

test('without an unnamed [Global], the first subsection is the default, as the first cloud of a clouds.yaml', () => {
  assert.deepEqual(load(MULTI.replace(GLOBAL, '')).clouds.map((x) => x.name), ['zone-one', 'zone-two']);
});

test('OS_CLOUD does not pick another default: the cloud.conf says which it is', () => {
  assert.equal(load(MULTI, { OS_CLOUD: 'zone-two' }).clouds[0].name, 'default');
});

test('[Global "default"] next to an unnamed [Global] is refused: both would be named default', () => {
  assert.match(
    configError(`${GLOBAL}[Global "default"]\nauth-url = https://k/v3\n`),
    /^\[Global "default"\] at line 8 of \S+ has the name this driver gives the unnamed \[Global\] \(the default cloud\); rename the subsection$/,
  );
});

test('a subsection is checked like the [Global] it stands beside, and named in the message', () => {
  assert.match(
    configError(MULTI.replace('password = pw\n', '')),
    /^'password' in \[Global "zone-one"\] of \S+ is required for password authentication$/,
  );
  const missing = path.join(dir, 'missing-ca.pem');
  assert.equal(
    configError(MULTI.replace('region = two', `region = two\nca-file = ${missing}`)).replace(/ of \S+ names/, ' of F names'),
    `'ca-file' in [Global "zone-two"] at line 22 of F names ${missing}, which does not exist`,
  );
});

// ----------------------------------------------------------- [BlockStorage] and [Metadata]

test('[BlockStorage] node-volume-attach-limit and [Metadata] search-order are the node settings', () => {
  const c = load(`${GLOBAL}[BlockStorage]\nnode-volume-attach-limit = 24\n[Metadata]\nsearch-order = metadataService, configDrive\n`);
  assert.equal(c.node.maxVolumesPerNode, 24);
  assert.deepEqual(c.node.metadataSearchOrder, ['metadataService', 'configDrive']);
  assert.equal(load('[BlockStorage]\nnode-volume-attach-limit = 0x10\n').node.maxVolumesPerNode, 16);
  assert.deepEqual(load('[Metadata]\nsearch-order = configDrive\n').node.metadataSearchOrder, ['configDrive']);
});

test('node-volume-attach-limit and search-order are checked, in the cloud.conf\'s words', () => {
  assert.match(configError('[BlockStorage]\nnode-volume-attach-limit = 0\n'), /^'node-volume-attach-limit' in \[BlockStorage\] at line 2 of \S+ must be between 1 and 4096, not 0$/);
  assert.match(configError('[BlockStorage]\nnode-volume-attach-limit = many\n'), /'node-volume-attach-limit' in \[BlockStorage\] at line 2 .* must be a whole number/);
  for (const order of ['ec2', 'configDrive,metadataService,configDrive', 'configDrive,', '']) {
    assert.match(
      configError(`[Metadata]\nsearch-order = ${order}\n`),
      /^'search-order' in \[Metadata\] at line 2 of \S+ must be configDrive, metadataService, or both, comma-separated$/,
    );
  }
});

test('rescan-on-resize, ignore-volume-microversion, bs-version and ignore-volume-az = false are accepted and change nothing', () => {
  const plain = load(GLOBAL);
  const withThem = load(`${GLOBAL}[BlockStorage]\nrescan-on-resize\nignore-volume-microversion = true\nbs-version = v3\nignore-volume-az = false\n`);
  assert.deepEqual({ ...withThem, source: '' }, { ...plain, source: '' });
  assert.match(configError('[BlockStorage]\nrescan-on-resize = sometimes\n'), /'rescan-on-resize' in \[BlockStorage\] at line 2 .* must be true or false/);
});

test('the cloud-controller-manager\'s sections in a shared cloud.conf are skipped', () => {
  const c = load(`${GLOBAL}[LoadBalancer]\nsubnet-id = s-1\n[LoadBalancerClass "internal"]\nsubnet-id = s-2\n[Networking]\npublic-network-name = a\npublic-network-name = b\n[Route]\nrouter-id = r-1\n`);
  assert.equal(c.clouds.length, 1);
});

// ----------------------------------------------------------- refusals

test('keys with no counterpart are refused, naming the key, its line and what to do', () => {
  const cases: Array<[string, RegExp]> = [
    ['trust-id = t', /^'trust-id' in \[Global\] at line 8 of \S+ is not supported: the driver does not authenticate with Keystone trusts; use an application credential/],
    ['trustee-id = t', /^'trustee-id' in \[Global\] at line 8 .* is not supported: the driver does not authenticate with Keystone trusts/],
    [`trustee-password = ${PASSWORD.replace(/[;#"]/g, '')}`, /^'trustee-password' in \[Global\] at line 8 .* is not supported: the driver does not authenticate with Keystone trusts/],
    ['use-clouds = true', /^'use-clouds' in \[Global\] at line 8 .* point --config at that clouds\.yaml itself/],
    ['use-clouds = true\nclouds-file = /etc/openstack/clouds.yaml', /^'(use-clouds|clouds-file)' in \[Global\] at line (8|9) .* point --config at that clouds\.yaml itself/],
    ['project-id = p', /^'project-id' in \[Global\] at line 8 .* is not a key the Go cinder-csi-plugin read \(it ignored it\); write tenant-id$/],
    ['project-name = p', /write tenant-name$/],
    ['regoin = r', /^'regoin' in \[Global\] at line 8 of \S+ is not a key the Go cinder-csi-plugin reads \(did you mean 'region'\?\)$/],
    // Not named: a key with no near known one may be a value wrapped onto a line of its own.
    ['timezone = UTC', /^a key in \[Global\] at line 8 of \S+ is not one the Go cinder-csi-plugin reads \(its name is not shown, in case it is a value wrapped onto a line of its own\)$/],
    ['username', /^'username' in \[Global\] at line 8 of \S+ needs a value: username = \.\.\.$/],
  ];
  for (const [line, expected] of cases) assert.match(configError(`${GLOBAL}${line}\n`), expected, line);
});

test('what the Go plugin would not read is accepted: use-clouds = false (with its clouds-file and cloud), and refused keys left empty', () => {
  assert.equal(load(`${GLOBAL}use-clouds = false\n`).clouds.length, 1);
  assert.equal(load(`${GLOBAL}use-clouds = false\nclouds-file = /etc/openstack/clouds.yaml\ncloud = openstack\n`).clouds.length, 1);
  assert.equal(load(`${GLOBAL}clouds-file = /etc/openstack/clouds.yaml\ncloud = openstack\n`).clouds.length, 1);
  assert.equal(load(`${GLOBAL}trust-id =\ncloud =\nuse-clouds =\n`).clouds.length, 1);
});

test('a password wrapped onto a line of its own never reaches the message', () => {
  for (const wrapped of ['hunter2secret', 'S3cr3t!pass', '9secretpw']) {
    const msg = configError(`[Global]\nauth-url = http://k:5000/v3\nusername = u\npassword =\n${wrapped}\n`);
    assert.ok(!msg.includes(wrapped) && !msg.includes(wrapped.toLowerCase()) && !msg.includes(`"${wrapped[0]}"`), msg);
  }
});

test('ignore-volume-az = true turns zones off (topology: false), the nearest setting to the Go plugin\'s', () => {
  assert.equal(load(GLOBAL).controller.topology, true);
  assert.equal(load(`${GLOBAL}[BlockStorage]\nignore-volume-az = true\n`).controller.topology, false);
  assert.equal(load(`${GLOBAL}[BlockStorage]\nignore-volume-az\n`).controller.topology, false);
  assert.match(configError(`${GLOBAL}[BlockStorage]\nignore-volume-az = maybe\n`), /'ignore-volume-az' in \[BlockStorage\] at line 9 .* must be true or false/);
});

test('[Metadata] request-timeout is refused: the metadata timeout is not a setting here', () => {
  assert.match(configError('[Metadata]\nrequest-timeout = 5s\n'), /^'request-timeout' in \[Metadata\] at line 2 of \S+ has no setting here: .*remove it$/);
});

test('unknown sections, unknown keys in the others, and subsections where none belong are refused', () => {
  assert.match(configError(`${GLOBAL}[Foo]\nx = 1\n`), /^\[foo\] at line 8 of \S+ is not a section the Go cinder-csi-plugin reads: use \[Global\], \[BlockStorage\] or \[Metadata\]$/);
  assert.match(configError('[BlockStorage]\ntrust-device-path = true\n'), /^a key in \[BlockStorage\] at line 2 of \S+ is not one the Go cinder-csi-plugin reads/);
  assert.match(configError('[Metadata]\nsearch-ordr = configDrive\n'), /\(did you mean 'search-order'\?\)$/);
  assert.match(configError('[BlockStorage "x"]\nrescan-on-resize = true\n'), /^\[BlockStorage "x"\] at line 1 of \S+: \[BlockStorage\] takes no subsection$/);
});

test('a missing auth-url is named as the cloud.conf key', () => {
  assert.match(configError('[Global]\nusername = u\npassword = p\n'), /^'auth-url' in \[Global\] of \S+ is required to reach Keystone$/);
});

test('a syntax error names the file and line', () => {
  assert.match(configError(`${GLOBAL}password = "${PASSWORD.replace(/[;#"]/g, '')}\n`), /^\S+ line 8: a quoted value is not closed on its line$/);
});

test('no error message holds a secret, whichever key is wrong', () => {
  // configError checks every message for PASSWORD and APP_SECRET; these put them next to each kind of mistake.
  const withSecrets = `${GLOBAL}application-credential-secret = ${APP_SECRET}\n`;
  configError(`${withSecrets}os-endpoint-type = private\n`);
  configError(`${withSecrets}ca-file = /nonexistent/ca.pem\n`);
  configError(withSecrets.replace('auth-url = https://keystone.example.com:5000/v3\n', ''));
  configError(`${withSecrets}bogus = ${APP_SECRET}\n`);
  configError(`[Global]\npassword = "${APP_SECRET}\\q"\n`);
});

// ----------------------------------------------------------- detection

test('a YAML config that starts with a comment still reads as YAML', () => {
  const c = load('# cinder-csi config\n\ndataset:\n  username: u\n  password: p\n  auth_url: https://k/v3\n');
  assert.equal(c.clouds[0].name, 'default');
  assert.equal(c.clouds[0].auth.username, 'u');
});

test('a cloud.conf that starts with comments reads as cloud.conf', () => {
  const c = load(`# cloud.conf of the Go cinder-csi-plugin\n; kept as it was\n\n${GLOBAL}`);
  assert.equal(c.clouds[0].auth.username, 'k8s');
});

// ----------------------------------------------------------- the Go plugin's own examples

test('a full cloud.conf as the Go plugin\'s docs write it loads', () => {
  // docs/cinder-csi-plugin/multi-region-clouds.md (one zone of two), with the [Global] keys of
  // docs/openstack-cloud-controller-manager (ca-file, os-endpoint-type) and
  // using-cinder-csi-plugin.md's [BlockStorage] and [Metadata].
  const c = load(`[BlockStorage]
bs-version=v3
ignore-volume-az=false
node-volume-attach-limit = 128
rescan-on-resize = true

[Global]
auth-url="https://auth.cloud.openstackcluster.zone-default.local/v3"
username="zone-default-username"
password="zone-default-password"
region="default"
tenant-id="zone-default-tenant-id"
tenant-name="zone-default-tenant-name"
domain-name="Default"
ca-file=${CA}
os-endpoint-type=internal

[Global "zone-one"]
auth-url="https://auth.cloud.openstackcluster.zone-one.local/v3"
username="zone-one-username"
password="zone-one-password"
region="one"
tenant-id="zone-one-tenant-id"

[Metadata]
search-order = configDrive,metadataService
`);
  assert.deepEqual(c.clouds.map((x) => [x.name, x.region, x.auth.username, x.auth.projectId]), [
    ['default', 'default', 'zone-default-username', 'zone-default-tenant-id'],
    ['zone-one', 'one', 'zone-one-username', 'zone-one-tenant-id'],
  ]);
  assert.equal(c.clouds[0].interface, 'internal');
  assert.equal(c.clouds[0].tls.caFile, CA);
  assert.equal(c.node.maxVolumesPerNode, 128);
  assert.deepEqual(c.node.metadataSearchOrder, ['configDrive', 'metadataService']);
});

test('a cloud.conf loads to the same DriverConfig as the cloud.yaml it stands for', () => {
  const conf = load(`${MULTI}ca-file = ${CA}\ntls-insecure = true\n[BlockStorage]\nnode-volume-attach-limit = 30\n[Metadata]\nsearch-order = metadataService\n`);
  const yaml = load(`
cloud: default
clouds:
  default:
    auth:
      auth_url: https://keystone.example.com:5000/v3
      username: k8s
      password: '${PASSWORD}'
      project_name: kubernetes
      domain_name: Default
    region_name: RegionOne
  zone-one:
    auth:
      auth_url: https://one.example.com/v3
      username: one
      password: pw
      project_id: t-one
      domain_name: Default
    region_name: one
  zone-two:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://two.example.com/v3
      application_credential_id: ac-two
      application_credential_secret: ${APP_SECRET}
    region_name: two
    cacert: ${CA}
    verify: false
driver:
  node:
    max_volumes_per_node: 30
    metadata_search_order: [metadata_service]
`);
  // The same but for the words the TLS warning and certificate errors use, which are each file's own.
  const withHint = (c: DriverConfig, verifyHint: string) => ({ ...c, source: '', clouds: c.clouds.map((x) => ({ ...x, tls: { ...x.tls, verifyHint, caKey: '' } })) });
  assert.ok(conf.clouds.every((x) => x.tls.verifyHint === 'tls-insecure = false, with ca-file naming the CA file' && x.tls.caKey === 'ca-file'));
  assert.ok(yaml.clouds.every((x) => x.tls.verifyHint === 'verify: true, or no insecure: true, with cacert naming the CA file' && x.tls.caKey === 'cacert'));
  assert.deepEqual(withHint(conf, ''), withHint(yaml, ''));
});
