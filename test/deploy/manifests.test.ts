// Checks the kustomize base in deploy/, the examples and the Dockerfile
// against each other and against the driver: the plugin's arguments are ones
// our CLI accepts, every socket path lines up, the driver name is the same
// everywhere, and each sidecar's ServiceAccount is granted what it needs.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { parseServeArgs } from '../../src/cli/args';
import { DEFAULT_DRIVER_NAME, SUPPORTED_FILESYSTEMS, TOPOLOGY_ZONE_KEY } from '../../src/csi/constants';
import { controllerCapabilities } from '../../src/controller/capabilities';
import { DEFAULT_MAX_VOLUMES_PER_NODE } from '../../src/node/settings';
import { DEFAULTS, fromDocument } from '../../src/config/config';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const EXAMPLES = path.join(DEPLOY, 'examples');

// ------------------------------------------------------------ minimal typed views

type Obj = Record<string, unknown>;
interface K8s {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}
interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: string;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  volumeMounts?: VolumeMount[];
  securityContext?: Obj;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { host?: string; path: string; port: string | number }; exec?: { command: string[] } };
}
interface Volume {
  name: string;
  hostPath?: { path: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  configMap?: { name: string };
  emptyDir?: Obj;
}
interface PodSpec {
  serviceAccountName?: string;
  affinity?: {
    podAntiAffinity?: {
      preferredDuringSchedulingIgnoredDuringExecution?: Array<{
        podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } };
      }>;
    };
  };
  containers: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  tolerations?: Array<{ key?: string; operator?: string }>;
  securityContext?: Obj;
  automountServiceAccountToken?: boolean;
}
interface Workload extends K8s {
  spec: { replicas?: number; podManagementPolicy?: string; template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } };
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}
interface RoleObj extends K8s {
  rules: Rule[];
}
interface Binding extends K8s {
  subjects: Array<{ kind: string; name: string; namespace?: string }>;
  roleRef: { kind: string; name: string };
}

// ------------------------------------------------------------ rendering

let renderCache: Promise<K8s[] | string> | undefined;

/** The rendered base, or the reason it cannot be rendered here. */
function render(): Promise<K8s[] | string> {
  renderCache ??= promisify(execFile)('kubectl', ['kustomize', DEPLOY], { maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout }) => (yaml.loadAll(stdout) as Array<K8s | null>).filter((d): d is K8s => d !== null),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return 'kubectl is not installed';
      throw err;
    },
  );
  return renderCache;
}

async function docs(t: TestContext): Promise<K8s[] | undefined> {
  const r = await render();
  if (typeof r === 'string') {
    t.skip(r);
    return undefined;
  }
  return r;
}

const ofKind = <T extends K8s>(all: K8s[], kind: string): T[] => all.filter((d) => d.kind === kind) as T[];

function one<T extends K8s>(all: K8s[], kind: string): T {
  const found = ofKind<T>(all, kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
}

/** The controller StatefulSet and the node DaemonSet. */
function workloads(all: K8s[]): { controller: Workload; node: Workload } {
  return { controller: one<Workload>(all, 'StatefulSet'), node: one<Workload>(all, 'DaemonSet') };
}

/** Our own container: the one not from the sig-storage sidecar images. */
function pluginContainer(w: Workload): Container {
  const ours = w.spec.template.spec.containers.filter((c) => !c.image.startsWith('registry.k8s.io/sig-storage/'));
  assert.equal(ours.length, 1, `${w.metadata.name} has exactly one plugin container`);
  return ours[0]!;
}

function sidecar(w: Workload, image: string): Container {
  const found = w.spec.template.spec.containers.filter((c) => c.image.startsWith(`registry.k8s.io/sig-storage/${image}:`));
  assert.equal(found.length, 1, `${w.metadata.name} runs ${image} once`);
  return found[0]!;
}

/** The value of `--name=value` (or `--name value`) in args, or undefined. */
function flag(args: readonly string[] | undefined, name: string): string | undefined {
  const list = args ?? [];
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    if (a === `--${name}`) {
      const next = list[i + 1];
      return next === undefined || next.startsWith('--') ? 'true' : next;
    }
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/** Where in the container a path lives: the volume mounted over it and the path inside that volume. */
function volumeFor(c: Container, file: string): { mount: VolumeMount; rest: string } {
  const mounts = (c.volumeMounts ?? []).filter((m) => file === m.mountPath || file.startsWith(m.mountPath.replace(/\/?$/, '/')));
  assert.ok(mounts.length > 0, `${c.name}: no volume holds ${file}`);
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0]!;
  return { mount, rest: path.posix.relative(mount.mountPath, file) };
}

/** The port number of `host:port` or `:port`. */
function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}

/** Where a container's process listens, from its flags: the sidecars' health and diagnostics servers. Host '' is every interface. */
function listenEndpoints(c: Container): Array<{ host: string; port: number }> {
  const at = (endpoint: string) => ({ host: endpoint.slice(0, endpoint.lastIndexOf(':')), port: portOf(endpoint) });
  const endpoints: Array<{ host: string; port: number }> = [];
  // The livenessprobe's deprecated --health-port (default 9808) serves on every interface unless --http-endpoint replaces it.
  if (c.image.startsWith('registry.k8s.io/sig-storage/livenessprobe:') && !flag(c.args, 'http-endpoint')) {
    endpoints.push({ host: '', port: Number(flag(c.args, 'health-port') ?? '9808') });
  }
  for (const name of ['http-endpoint', 'metrics-address']) {
    const endpoint = flag(c.args, name);
    if (endpoint) endpoints.push(at(endpoint));
  }
  return endpoints;
}

function listenPorts(c: Container): number[] {
  return listenEndpoints(c).map((e) => e.port);
}

/** A probe's port as a number: named ports are looked up in every container of the pod. */
function probePort(w: Workload, port: string | number): number | undefined {
  if (typeof port === 'number') return port;
  return w.spec.template.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port)?.containerPort;
}

function volume(w: Workload, name: string): Volume {
  const v = (w.spec.template.spec.volumes ?? []).find((x) => x.name === name);
  assert.ok(v, `${w.metadata.name} defines volume ${name}`);
  return v;
}

// ------------------------------------------------------------ RBAC

/** Whether one rule grants verb on group/resource. */
function ruleCovers(rule: Rule, group: string, resource: string, verb: string): boolean {
  const groups = rule.apiGroups ?? [''];
  return (
    (groups.includes(group) || groups.includes('*')) &&
    ((rule.resources ?? []).includes(resource) || (rule.resources ?? []).includes('*')) &&
    (rule.verbs.includes(verb) || rule.verbs.includes('*'))
  );
}

/** The cluster-wide and namespaced rules bound to a ServiceAccount. */
function grantsFor(all: K8s[], sa: string, namespace: string): { cluster: Rule[]; namespaced: Rule[] } {
  const boundTo = (b: Binding): boolean => b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === namespace);
  const roleRules = (kind: string, name: string, ns?: string): Rule[] => {
    const r = all.find((d) => d.kind === kind && d.metadata.name === name && (ns === undefined || d.metadata.namespace === ns)) as RoleObj | undefined;
    assert.ok(r, `${kind} ${name} referenced by a binding exists`);
    return r.rules;
  };
  const cluster = ofKind<Binding>(all, 'ClusterRoleBinding')
    .filter(boundTo)
    .flatMap((b) => roleRules('ClusterRole', b.roleRef.name));
  const namespaced = ofKind<Binding>(all, 'RoleBinding')
    .filter((b) => b.metadata.namespace === namespace && boundTo(b))
    .flatMap((b) => (b.roleRef.kind === 'ClusterRole' ? roleRules('ClusterRole', b.roleRef.name) : roleRules('Role', b.roleRef.name, namespace)));
  return { cluster, namespaced };
}

/** What each sidecar needs: [apiGroup, resource, verbs]. Leases are namespaced (leader election). */
const NEEDS: Record<string, { cluster: Array<[string, string, string[]]>; namespaced: Array<[string, string, string[]]> }> = {
  'csi-provisioner': {
    cluster: [
      ['', 'persistentvolumes', ['get', 'list', 'watch', 'create', 'delete', 'patch']],
      ['', 'persistentvolumeclaims', ['get', 'list', 'watch', 'update']],
      ['storage.k8s.io', 'storageclasses', ['get', 'list', 'watch']],
      ['', 'events', ['list', 'watch', 'create', 'update', 'patch']],
      // v6.1.1+ puts its own snapshot-as-source finalizer on the source
      // VolumeSnapshot (update, patch), and v6.3 sweeps orphaned ones from an
      // informer over all VolumeSnapshots (list, watch).
      ['snapshot.storage.k8s.io', 'volumesnapshots', ['get', 'list', 'watch', 'update', 'patch']],
      ['snapshot.storage.k8s.io', 'volumesnapshotcontents', ['get', 'list']],
      ['storage.k8s.io', 'csinodes', ['get', 'list', 'watch']],
      ['', 'nodes', ['get', 'list', 'watch']],
      ['storage.k8s.io', 'volumeattachments', ['get', 'list', 'watch']],
      ['storage.k8s.io', 'volumeattributesclasses', ['get']],
    ],
    namespaced: [['coordination.k8s.io', 'leases', ['get', 'watch', 'list', 'delete', 'update', 'create']]],
  },
  'csi-attacher': {
    cluster: [
      ['', 'persistentvolumes', ['get', 'list', 'watch', 'patch']],
      ['storage.k8s.io', 'csinodes', ['get', 'list', 'watch']],
      ['storage.k8s.io', 'volumeattachments', ['get', 'list', 'watch', 'patch']],
      ['storage.k8s.io', 'volumeattachments/status', ['patch']],
    ],
    namespaced: [['coordination.k8s.io', 'leases', ['get', 'watch', 'list', 'delete', 'update', 'create']]],
  },
  'csi-resizer': {
    cluster: [
      ['', 'persistentvolumes', ['get', 'list', 'watch', 'patch']],
      ['', 'persistentvolumeclaims', ['get', 'list', 'watch']],
      ['', 'persistentvolumeclaims/status', ['patch']],
      ['', 'events', ['list', 'watch', 'create', 'update', 'patch']],
      ['storage.k8s.io', 'volumeattributesclasses', ['get', 'list', 'watch']],
    ],
    namespaced: [['coordination.k8s.io', 'leases', ['get', 'watch', 'list', 'delete', 'update', 'create']]],
  },
  'csi-snapshotter': {
    cluster: [
      ['', 'events', ['list', 'watch', 'create', 'update', 'patch']],
      ['snapshot.storage.k8s.io', 'volumesnapshotclasses', ['get', 'list', 'watch']],
      ['snapshot.storage.k8s.io', 'volumesnapshotcontents', ['create', 'get', 'list', 'watch', 'update', 'patch']],
      ['snapshot.storage.k8s.io', 'volumesnapshotcontents/status', ['update', 'patch']],
    ],
    namespaced: [['coordination.k8s.io', 'leases', ['get', 'watch', 'list', 'delete', 'update', 'create']]],
  },
};

function missingGrants(all: K8s[], sa: string, namespace: string, sidecarName: string): string[] {
  const need = NEEDS[sidecarName];
  assert.ok(need, `a permission table exists for ${sidecarName}`);
  const { cluster, namespaced } = grantsFor(all, sa, namespace);
  const missing: string[] = [];
  for (const [group, resource, verbs] of need.cluster)
    for (const verb of verbs) if (!cluster.some((r) => ruleCovers(r, group, resource, verb))) missing.push(`${verb} ${group || 'core'}/${resource}`);
  for (const [group, resource, verbs] of need.namespaced)
    for (const verb of verbs)
      if (!namespaced.some((r) => ruleCovers(r, group, resource, verb))) missing.push(`${verb} ${group || 'core'}/${resource} in ${namespace}`);
  return missing;
}

// ------------------------------------------------------------ the helpers themselves

test('helpers: flag() and ruleCovers() read what they should', () => {
  assert.equal(flag(['--a=1', '--b', '2', '--c'], 'a'), '1');
  assert.equal(flag(['--a=1', '--b', '2', '--c'], 'b'), '2');
  assert.equal(flag(['--a=1', '--b', '2', '--c'], 'c'), 'true');
  assert.equal(flag(['--ab=1'], 'a'), undefined);
  const rule: Rule = { apiGroups: ['storage.k8s.io'], resources: ['volumeattachments'], verbs: ['get', 'list'] };
  assert.equal(ruleCovers(rule, 'storage.k8s.io', 'volumeattachments', 'get'), true);
  assert.equal(ruleCovers(rule, 'storage.k8s.io', 'volumeattachments', 'patch'), false);
  assert.equal(ruleCovers(rule, '', 'volumeattachments', 'get'), false);
  assert.equal(ruleCovers(rule, 'storage.k8s.io', 'volumeattachments/status', 'get'), false);
  assert.equal(ruleCovers({ resources: ['nodes'], verbs: ['*'] }, '', 'nodes', 'watch'), true);
});

// ------------------------------------------------------------ the base renders

test('deploy/ renders with kubectl kustomize into the expected objects', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const kinds = all.map((d) => d.kind).sort();
  for (const k of ['CSIDriver', 'StatefulSet', 'DaemonSet', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'])
    assert.ok(kinds.includes(k), `renders a ${k}`);
  // Examples are not part of the base (they are the user's choice).
  assert.ok(!kinds.includes('StorageClass'), 'no StorageClass in the base');
  assert.ok(!kinds.includes('Secret'), 'no Secret in the base: the user creates cinder-csi-config');
  // One namespace for everything namespaced.
  const namespaces = new Set(all.filter((d) => d.metadata.namespace !== undefined).map((d) => d.metadata.namespace));
  assert.deepEqual([...namespaces], ['kube-system']);
});

test('each file of the base names kube-system for every namespaced object, so that kubectl apply -f deploy/ puts none in default', () => {
  const k = yaml.load(readFileSync(path.join(DEPLOY, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  const clusterScoped = new Set(['CSIDriver', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass', 'VolumeSnapshotClass']);
  for (const file of k.resources) {
    const objects = (yaml.loadAll(readFileSync(path.join(DEPLOY, file), 'utf8')) as Array<K8s | null>).filter((d): d is K8s => d !== null);
    for (const d of objects.filter((o) => !clusterScoped.has(o.kind))) {
      assert.equal(d.metadata.namespace, 'kube-system', `${d.kind} ${d.metadata.name} in ${file}`);
    }
  }
});

test('CSIDriver: name, attachRequired, fsGroupPolicy, Persistent only', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const drv = one<K8s & { spec: Obj }>(all, 'CSIDriver');
  assert.equal(drv.metadata.name, DEFAULT_DRIVER_NAME);
  assert.equal(drv.spec.attachRequired, true);
  assert.equal(drv.spec.podInfoOnMount, false);
  assert.equal(drv.spec.fsGroupPolicy, 'File');
  assert.deepEqual(drv.spec.volumeLifecycleModes, ['Persistent']);
  assert.equal(drv.spec.requiresRepublish, false);
});

test("Kubernetes' e2e driver definition claims what the driver and deploy/ do, no more", async (t) => {
  const all = await docs(t);
  if (!all) return;
  const def = yaml.load(readFileSync(path.join(ROOT, 'test', 'e2e', 'kubernetes', 'test-driver.yaml'), 'utf8')) as {
    StorageClass: Obj;
    SnapshotClass: Obj;
    DriverInfo: { Name: string; MaxFileSize: number; SupportedFsType: Obj; TopologyKeys: string[]; Capabilities: Record<string, boolean> };
  };
  const info = def.DriverInfo;
  const caps = info.Capabilities;
  const drv = one<K8s & { spec: Obj }>(all, 'CSIDriver');
  const controller = new Set(controllerCapabilities().map((c) => c.rpc?.type));
  assert.equal(info.Name, DEFAULT_DRIVER_NAME);
  // '' is the suite's "the driver's default filesystem".
  assert.deepEqual(Object.keys(info.SupportedFsType).sort(), ['', ...SUPPORTED_FILESYSTEMS].sort());
  assert.deepEqual(info.TopologyKeys, [TOPOLOGY_ZONE_KEY]);
  assert.equal(caps.snapshotDataSource, controller.has('CREATE_DELETE_SNAPSHOT'));
  assert.equal(typeof def.SnapshotClass.FromFile === 'string', controller.has('CREATE_DELETE_SNAPSHOT'));
  const snapshotClass = yaml.load(readFileSync(path.join(ROOT, String(def.SnapshotClass.FromFile)), 'utf8')) as Obj;
  assert.equal(snapshotClass.kind, 'VolumeSnapshotClass');
  assert.equal(snapshotClass.driver, DEFAULT_DRIVER_NAME);
  assert.equal((snapshotClass.parameters as Obj)['force-create'], 'true', 'the suite snapshots volumes that Nova may still be detaching');
  assert.equal(caps.pvcDataSource, controller.has('CLONE_VOLUME'));
  assert.equal(caps.controllerExpansion, controller.has('EXPAND_VOLUME'));
  // ONLINE or OFFLINE follows the cloud's Cinder (3.42 extends attached volumes); the file's header says which it assumes.
  assert.equal(caps.onlineExpansion, caps.controllerExpansion);
  assert.equal(caps.capacity, drv.spec.storageCapacity === true, 'capacity tests need storageCapacity in the CSIDriver');
  assert.equal(caps.fsGroup, drv.spec.fsGroupPolicy === 'File');
  // Claimed only on a cloud checked for a 26-volume quota and 25 free PCI slots (the file says why).
  assert.ok(DEFAULT_MAX_VOLUMES_PER_NODE > 0);
  assert.equal(caps.volumeLimits, false);
  assert.equal(info.MaxFileSize, 100 * 1024 * 1024);
  assert.equal(caps.readWriteOncePod, controller.has('SINGLE_NODE_MULTI_WRITER'));
  // Cinder volumes are reached over the network from any node in the zone; multi-node access needs a multiattach type.
  assert.equal(caps.singleNodeVolume, false);
  assert.equal(caps.RWX, false);
  assert.equal(caps.capReadOnlyMany, false);
});

// ------------------------------------------------------------ plugin arguments

test('every plugin container passes only flags our CLI accepts, in the right mode', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller, node } = workloads(all);
  for (const [w, mode] of [
    [controller, 'controller'],
    [node, 'node'],
  ] as const) {
    const c = pluginContainer(w);
    assert.equal(c.command, undefined, `${w.metadata.name}: the image entrypoint (cinder-csi serve) is kept`);
    const args = c.args ?? [];
    assert.ok(!args.includes('serve'), `${w.metadata.name}: args must not repeat 'serve' (the entrypoint has it)`);
    const opts = parseServeArgs(args, {});
    assert.equal(opts.mode, mode);
    assert.equal(opts.sim, false, 'a cluster deployment never runs the simulator');
    assert.ok(opts.config, `${w.metadata.name} passes --config`);
    const { mount, rest } = volumeFor(c, opts.config);
    assert.equal(mount.readOnly, true);
    if (mode === 'controller') {
      // The config file is the key cloud.yaml of the mounted Secret, and the
      // whole Secret is mounted: a CA bundle or client certificate stored beside
      // cloud.yaml is a file next to it, where the config can name it.
      const secret = volume(w, mount.name).secret;
      assert.ok(secret, `${opts.config} comes from a Secret`);
      assert.equal(secret.secretName, 'cinder-csi-config');
      assert.equal(rest, 'cloud.yaml', `${opts.config} is the Secret's cloud.yaml`);
      assert.equal(secret.items, undefined, `${w.metadata.name} mounts every key of the Secret, not only cloud.yaml`);
    } else {
      // The node plugin never calls Cinder or Nova: no credentials on the nodes.
      const configMap = volume(w, mount.name).configMap;
      assert.ok(configMap, `${opts.config} comes from a ConfigMap`);
      assert.equal(configMap.name, 'cinder-csi-node-config');
      const cm = all.find((d) => d.kind === 'ConfigMap' && d.metadata.name === configMap.name) as (K8s & { data: Record<string, string> }) | undefined;
      assert.ok(cm, 'the base holds the node ConfigMap');
      const loaded = fromDocument(yaml.load(cm.data[rest]), `ConfigMap ${configMap.name}`, {});
      assert.deepEqual(loaded.clouds, [], 'the node config names no cloud');
      assert.equal(loaded.node.confinePaths, true, 'on a cluster the node plugin stages and publishes only in kubelet\'s directories');
    }
    if (opts.driverName !== undefined) assert.equal(opts.driverName, DEFAULT_DRIVER_NAME);
  }
});

test('no node plugin pod can read the cloud credentials Secret', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { node } = workloads(all);
  const volumes = (node.spec.template.spec.volumes ?? []) as Array<{ name: string; secret?: { secretName: string } }>;
  assert.deepEqual(
    volumes.filter((v) => v.secret?.secretName === 'cinder-csi-config').map((v) => v.name),
    [],
  );
  const env = JSON.stringify(node.spec.template.spec.containers);
  assert.doesNotMatch(env, /cinder-csi-config/, 'nor through an env var');
});

test('the arg check rejects what the CLI would reject', () => {
  assert.throws(() => parseServeArgs(['serve', '--mode=node', '--endpoint=unix:///csi/csi.sock'], {}));
  assert.throws(() => parseServeArgs(['--mode=nodes', '--endpoint=unix:///csi/csi.sock'], {}));
  assert.throws(() => parseServeArgs(['--mode=node', '--endpoint=unix:///csi/csi.sock', '--nodeid=x'], {}));
});

// ------------------------------------------------------------ sockets

test('controller: every sidecar talks to the socket the plugin serves, through the same volume', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  const plugin = pluginContainer(controller);
  const socket = parseServeArgs(plugin.args ?? [], {}).endpoint.replace(/^unix:\/\//, '');
  const served = volumeFor(plugin, socket);
  assert.ok(volume(controller, served.mount.name).emptyDir, 'the controller socket lives in an emptyDir');
  for (const name of ['csi-provisioner', 'csi-attacher', 'csi-resizer', 'csi-snapshotter', 'livenessprobe']) {
    const c = sidecar(controller, name);
    const address = flag(c.args, 'csi-address');
    assert.ok(address, `${name} has --csi-address`);
    const used = volumeFor(c, address);
    assert.equal(used.mount.name, served.mount.name, `${name} mounts the plugin's socket volume`);
    assert.equal(used.rest, served.rest, `${name} uses the plugin's socket file`);
  }
});

test('node: registrar, livenessprobe and kubelet registration path agree with the plugin socket', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { node } = workloads(all);
  const plugin = pluginContainer(node);
  const socket = parseServeArgs(plugin.args ?? [], {}).endpoint.replace(/^unix:\/\//, '');
  const served = volumeFor(plugin, socket);
  const hostDir = volume(node, served.mount.name).hostPath?.path;
  assert.equal(hostDir, `/var/lib/kubelet/plugins/${DEFAULT_DRIVER_NAME}`, 'the plugin socket is in kubelet plugins/<driver name>');
  const hostSocket = path.posix.join(hostDir, served.rest);

  for (const name of ['csi-node-driver-registrar', 'livenessprobe']) {
    const c = sidecar(node, name);
    const address = flag(c.args, 'csi-address');
    assert.ok(address, `${name} has --csi-address`);
    const used = volumeFor(c, address);
    assert.equal(used.mount.name, served.mount.name, `${name} mounts the plugin dir`);
    assert.equal(used.rest, served.rest);
  }
  const registrar = sidecar(node, 'csi-node-driver-registrar');
  assert.equal(flag(registrar.args, 'kubelet-registration-path'), hostSocket, 'kubelet is told the host path of the same socket');
  const reg = volumeFor(registrar, '/registration');
  assert.equal(volume(node, reg.mount.name).hostPath?.path, '/var/lib/kubelet/plugins_registry');
});

// The plugin makes its socket 0600: only a client of the same uid (or root with CAP_DAC_OVERRIDE,
// which the sidecars drop) may connect. So each client's uid is set in the manifest, not left to its image.
test('every container that talks to a plugin socket runs as the uid that owns it', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller, node } = workloads(all);
  const uidOf = (w: Workload, c: Container): unknown => c.securityContext?.runAsUser ?? w.spec.template.spec.securityContext?.runAsUser;
  for (const [w, sidecars] of [
    [controller, ['csi-provisioner', 'csi-attacher', 'csi-resizer', 'csi-snapshotter', 'livenessprobe']],
    [node, ['csi-node-driver-registrar', 'livenessprobe']],
  ] as const) {
    const owner = uidOf(w, pluginContainer(w));
    assert.equal(typeof owner, 'number', `${w.metadata.name}: the plugin's uid is set`);
    for (const name of sidecars) assert.equal(uidOf(w, sidecar(w, name)), owner, `${w.metadata.name}: ${name} runs as uid ${String(owner)}`);
  }
});

test('node: the registrar is probed on its own /healthz, not with the deprecated exec probe', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { node } = workloads(all);
  const registrar = sidecar(node, 'csi-node-driver-registrar');
  // --mode=kubelet-registration-probe is deprecated: it exits 0 without checking anything.
  assert.equal(registrar.livenessProbe?.exec, undefined, 'no exec probe');
  const endpoint = flag(registrar.args, 'http-endpoint');
  assert.ok(endpoint, 'the registrar serves /healthz (--http-endpoint)');
  const probe = registrar.livenessProbe?.httpGet;
  assert.ok(probe, 'the registrar has an HTTP liveness probe');
  assert.equal(probe.path, '/healthz');
  assert.equal(probePort(node, probe.port), portOf(endpoint), 'the probe targets --http-endpoint');
});

test('each pod: every port a container listens on is its own, and every HTTP probe hits one of them', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller, node } = workloads(all);
  assert.equal(node.spec.template.spec.hostNetwork, true, 'the node pod shares the host network, so its ports are host ports');
  for (const w of [controller, node]) {
    const containers = w.spec.template.spec.containers;
    const listening = containers.flatMap((c) => listenPorts(c).map((port) => ({ port, by: c.name })));
    assert.ok(listening.length > 0);
    for (const { port, by } of listening) {
      const others = listening.filter((l) => l.port === port && l.by !== by).map((l) => l.by);
      assert.deepEqual(others, [], `${w.metadata.name}: ${by} and ${others.join(', ')} both listen on ${port}`);
    }
    for (const c of containers) {
      const probe = c.livenessProbe?.httpGet;
      if (!probe) continue;
      const port = probePort(w, probe.port);
      assert.ok(listening.some((l) => l.port === port), `${w.metadata.name}: ${c.name}'s probe port ${port} is served`);
    }
  }
  // The README's Requirements name the node pod's host ports, which must be free on every node.
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const said = /host ports ([\d, and]+) free/.exec(readme)?.[1]?.match(/\d+/g)?.map(Number) ?? [];
  const hostPorts = node.spec.template.spec.containers.flatMap(listenPorts);
  assert.deepEqual([...said].sort(), [...hostPorts].sort(), 'the README names the node pod\'s host ports');
  // The check itself notices a clash.
  const clash: Container[] = [
    { name: 'a', image: 'registry.k8s.io/sig-storage/livenessprobe:v2', args: ['--health-port=9810'] },
    { name: 'b', image: 'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2', args: ['--http-endpoint=:9810'] },
  ];
  assert.deepEqual(clash.flatMap(listenPorts), [9810, 9810]);
});

test('liveness: each plugin container probes the livenessprobe sidecar port of its pod', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller, node } = workloads(all);
  for (const w of [controller, node]) {
    const plugin = pluginContainer(w);
    const [port] = listenPorts(sidecar(w, 'livenessprobe'));
    const probe = plugin.livenessProbe?.httpGet;
    assert.ok(probe, `${w.metadata.name}: the plugin has an HTTP liveness probe`);
    assert.equal(probe.path, '/healthz');
    assert.equal(probePort(w, probe.port), port, `${w.metadata.name}: probe port is where the livenessprobe listens`);
  }
});

test('node: on the host network, every sidecar listens on loopback only, where kubelet probes it', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { node } = workloads(all);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'];
  for (const c of node.spec.template.spec.containers) {
    for (const e of listenEndpoints(c)) {
      assert.ok(loopback.includes(e.host), `${c.name} listens on ${e.host || 'every interface'}:${e.port}, open to the node's network`);
    }
    const probe = c.livenessProbe?.httpGet;
    // kubelet probes a pod's IP unless told otherwise: on the host network, that is the node's address.
    if (probe) assert.ok(loopback.includes(probe.host ?? ''), `${c.name}'s probe goes to ${probe.host ?? "the node's address"}, not loopback`);
  }
  // The check itself notices the deprecated flag, which listens everywhere.
  const everywhere = { name: 'x', image: 'registry.k8s.io/sig-storage/livenessprobe:v2', args: ['--health-port=9809'] };
  assert.deepEqual(listenEndpoints(everywhere), [{ host: '', port: 9809 }]);
});

// ------------------------------------------------------------ sidecar flags

test('sidecars run with the flags the driver relies on', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  const prov = sidecar(controller, 'csi-provisioner').args;
  assert.equal(flag(prov, 'feature-gates'), 'Topology=true');
  assert.equal(flag(prov, 'extra-create-metadata'), 'true');
  assert.equal(flag(prov, 'default-fstype'), 'ext4');
  const secondsOf = (d: string | undefined): number => {
    const m = /^(\d+)(s|m)$/.exec(d ?? '');
    assert.ok(m, `a timeout like 90s or 3m, got ${d}`);
    return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
  };
  for (const name of ['csi-provisioner', 'csi-attacher', 'csi-resizer']) {
    const args = sidecar(controller, name).args;
    assert.ok(secondsOf(flag(args, 'timeout')) >= 120, `${name} waits long enough for Cinder`);
    assert.equal(flag(args, 'leader-election'), 'true', `${name} elects a leader`);
  }
  assert.equal(flag(sidecar(controller, 'csi-resizer').args, 'handle-volume-inuse-error'), 'false');
  const snap = sidecar(controller, 'csi-snapshotter').args;
  assert.equal(flag(snap, 'extra-create-metadata'), 'true');
  assert.equal(flag(snap, 'leader-election'), 'true');
});

test('a dead node does not stop the controller: two replicas apart, a leader per sidecar, one evicted at a time', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  // A StatefulSet pod on a lost node stays until force-deleted: a second replica must already run elsewhere.
  assert.ok((controller.spec.replicas ?? 1) >= 2, 'more than one replica');
  assert.equal(controller.spec.podManagementPolicy, 'Parallel', 'replicas start without waiting for one another');
  const podLabels = controller.spec.template.metadata?.labels ?? {};
  const spread = controller.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  assert.ok(
    spread.some(
      (s) =>
        s.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
        Object.entries(s.podAffinityTerm.labelSelector.matchLabels).every(([k, v]) => podLabels[k] === v),
    ),
    'replicas prefer different nodes',
  );
  // With several replicas, a sidecar without leader election would call the plugin from every one of them.
  for (const c of controller.spec.template.spec.containers.filter((c) => c.image.includes('/sig-storage/csi-'))) {
    assert.equal(flag(c.args, 'leader-election'), 'true', `${c.name} elects a leader`);
  }
  const budgets = ofKind<K8s & { spec: { maxUnavailable?: number; selector: { matchLabels: Record<string, string> } } }>(all, 'PodDisruptionBudget');
  const budget = budgets.find((b) => Object.entries(b.spec.selector.matchLabels).every(([k, v]) => podLabels[k] === v));
  assert.ok(budget, 'a PodDisruptionBudget covers the controller pods');
  assert.equal(budget.spec.maxUnavailable, 1);
});

test('images are pinned: no :latest, every image has a tag or digest', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller, node } = workloads(all);
  for (const c of [...controller.spec.template.spec.containers, ...node.spec.template.spec.containers]) {
    const lastSegment = c.image.split('/').pop()!;
    assert.ok(lastSegment.includes(':') || c.image.includes('@sha256:'), `${c.name}: ${c.image} has a tag`);
    assert.ok(!/:latest$/.test(c.image), `${c.name}: ${c.image} is not :latest`);
  }
});

// ------------------------------------------------------------ privileges

test('node plugin: privileged, root, hostNetwork, bidirectional kubelet dir, /dev /sys /run/udev, every node', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { node } = workloads(all);
  const pod = node.spec.template.spec;
  const plugin = pluginContainer(node);
  assert.equal(plugin.securityContext?.privileged, true);
  assert.equal(plugin.securityContext?.runAsUser, 0, 'the image defaults to non-root; the node plugin must override it');
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.ok(pod.tolerations?.some((x) => x.operator === 'Exists' && x.key === undefined), 'tolerates every taint');

  const kubelet = volumeFor(plugin, '/var/lib/kubelet');
  assert.equal(kubelet.rest, '');
  assert.equal(volume(node, kubelet.mount.name).hostPath?.path, '/var/lib/kubelet');
  assert.equal(kubelet.mount.mountPropagation, 'Bidirectional');
  for (const [dir, readOnly] of [
    ['/dev', false],
    ['/sys', false],
    ['/run/udev', true],
  ] as const) {
    const m = volumeFor(plugin, dir);
    assert.equal(m.rest, '', `${dir} is mounted itself`);
    assert.equal(volume(node, m.mount.name).hostPath?.path, dir);
    assert.equal(m.mount.readOnly === true, readOnly, `${dir} readOnly=${readOnly}`);
  }
  // The node state directory (staged block volumes) survives pod restarts.
  const state = volumeFor(plugin, DEFAULTS.stateDir);
  assert.equal(state.rest, '');
  assert.equal(volume(node, state.mount.name).hostPath?.path, DEFAULTS.stateDir);
  // No sidecar gets bidirectional propagation or privilege.
  for (const c of pod.containers.filter((x) => x !== plugin)) {
    assert.ok(!(c.volumeMounts ?? []).some((m) => m.mountPropagation === 'Bidirectional'), `${c.name}: no Bidirectional mount`);
    assert.notEqual(c.securityContext?.privileged, true, `${c.name} is not privileged`);
  }
});

test('controller plugin: non-root with a read-only root filesystem', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  const pod = controller.spec.template.spec;
  const plugin = pluginContainer(controller);
  const sc = { ...(pod.securityContext ?? {}), ...(plugin.securityContext ?? {}) };
  assert.equal(sc.runAsNonRoot, true);
  assert.notEqual(sc.runAsUser, 0);
  assert.equal(plugin.securityContext?.readOnlyRootFilesystem, true);
  assert.notEqual(plugin.securityContext?.privileged, true);
  assert.equal(pod.priorityClassName, 'system-cluster-critical');
  assert.equal(pod.hostNetwork ?? false, false);
});

// ------------------------------------------------------------ RBAC

test('RBAC: the controller ServiceAccount is granted what every sidecar needs', async (t) => {
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  const sa = controller.spec.template.spec.serviceAccountName;
  assert.ok(sa, 'the controller pod names its ServiceAccount');
  const ns = controller.metadata.namespace!;
  assert.ok(
    ofKind(all, 'ServiceAccount').some((d) => d.metadata.name === sa && d.metadata.namespace === ns),
    `ServiceAccount ${ns}/${sa} is part of the base`,
  );
  for (const name of Object.keys(NEEDS)) {
    sidecar(controller, name); // the sidecar is really there
    assert.deepEqual(missingGrants(all, sa, ns, name), [], `${name} lacks permissions`);
  }
  // The check itself notices a missing grant: a ServiceAccount nothing is bound to.
  assert.ok(missingGrants(all, 'nobody', ns, 'csi-attacher').length > 0);
  // And a binding in another namespace does not count for leader election.
  assert.ok(missingGrants(all, sa, 'default', 'csi-provisioner').some((m) => m.includes('leases')));
});

test('RBAC: no Secrets access and no wildcards; the node ServiceAccount has no grants', async (t) => {
  const all = await docs(t);
  if (!all) return;
  for (const r of [...ofKind<RoleObj>(all, 'ClusterRole'), ...ofKind<RoleObj>(all, 'Role')]) {
    for (const rule of r.rules) {
      assert.ok(!(rule.resources ?? []).includes('secrets'), `${r.metadata.name} does not read Secrets`);
      assert.ok(!rule.verbs.includes('*') && !(rule.resources ?? []).includes('*'), `${r.metadata.name} has no wildcard`);
    }
  }
  const { node } = workloads(all);
  const sa = node.spec.template.spec.serviceAccountName!;
  const grants = grantsFor(all, sa, node.metadata.namespace!);
  assert.deepEqual(grants, { cluster: [], namespaced: [] });
  assert.equal(node.spec.template.spec.automountServiceAccountToken, false);
});

// ------------------------------------------------------------ examples

function exampleDocs(): Array<{ file: string; doc: K8s }> {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  assert.ok(files.length > 0, 'deploy/examples has YAML files');
  return files.flatMap((file) =>
    (yaml.loadAll(readFileSync(path.join(EXAMPLES, file), 'utf8')) as Array<K8s | null>)
      .filter((d): d is K8s => d !== null)
      .map((doc) => ({ file, doc })),
  );
}

test('examples parse, and every StorageClass and VolumeSnapshotClass names our driver', () => {
  const all = exampleDocs();
  for (const { file, doc } of all) {
    assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${file}: a Kubernetes object`);
  }
  const classes = all.filter((d) => d.doc.kind === 'StorageClass').map((d) => d.doc as K8s & { provisioner: string; parameters?: Record<string, string> });
  assert.ok(classes.length >= 4, 'default, xfs, topology and multiattach StorageClasses');
  for (const sc of classes) {
    assert.equal(sc.provisioner, DEFAULT_DRIVER_NAME, `${sc.metadata.name} provisioner`);
    for (const key of Object.keys(sc.parameters ?? {}))
      assert.ok(['type', 'availability'].includes(key) || key.startsWith('csi.storage.k8s.io/'), `${sc.metadata.name}: parameter ${key} is one the controller accepts`);
  }
  const fstypes = classes.map((sc) => sc.parameters?.['csi.storage.k8s.io/fstype']);
  assert.ok(fstypes.includes('ext4') && fstypes.includes('xfs'));

  const byName = (kind: string): Array<K8s & Obj> => all.filter((d) => d.doc.kind === kind).map((d) => d.doc as K8s & Obj);
  const defaults = classes.filter((sc) => sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  assert.equal(defaults.length, 1, 'exactly one default StorageClass');
  const def = defaults[0] as K8s & Obj;
  assert.equal((def.parameters as Record<string, string>)['csi.storage.k8s.io/fstype'], 'ext4');
  assert.equal(def.allowVolumeExpansion, true);
  assert.equal(def.volumeBindingMode, 'WaitForFirstConsumer');

  const zonal = classes.filter((sc) => Array.isArray((sc as Obj).allowedTopologies)) as Array<K8s & Obj>;
  assert.ok(zonal.length >= 1, 'a topology-aware StorageClass');
  for (const sc of zonal) {
    assert.equal(sc.volumeBindingMode, 'WaitForFirstConsumer');
    const keys = (sc.allowedTopologies as Array<{ matchLabelExpressions: Array<{ key: string }> }>).flatMap((x) => x.matchLabelExpressions.map((e) => e.key));
    assert.deepEqual([...new Set(keys)], [TOPOLOGY_ZONE_KEY]);
  }
  assert.ok(classes.some((sc) => sc.parameters?.type === 'multiattach'), 'a multiattach StorageClass');

  const vsc = byName('VolumeSnapshotClass');
  assert.equal(vsc.length, 1);
  assert.equal(vsc[0]!.driver, DEFAULT_DRIVER_NAME);
  assert.equal(vsc[0]!.deletionPolicy, 'Delete');
  assert.deepEqual(vsc[0]!.parameters, { 'force-create': 'true' });
});

test('the example Secret holds a cloud.yaml with a clouds: stanza, in the namespace the plugins read it from', async (t) => {
  const secrets = exampleDocs().filter((d) => d.doc.kind === 'Secret').map((d) => d.doc as K8s & { stringData?: Record<string, string> });
  assert.equal(secrets.length, 1);
  const secret = secrets[0]!;
  assert.equal(secret.metadata.name, 'cinder-csi-config');
  const cloud = yaml.load(secret.stringData?.['cloud.yaml'] ?? '') as {
    clouds: Record<string, { auth: Record<string, string>; region_name: string; interface: string }>;
    driver: { cluster_id: string };
  };
  const os = cloud.clouds.openstack;
  assert.ok(os, 'clouds.openstack');
  for (const k of ['auth_url', 'username', 'password', 'project_name', 'user_domain_name', 'project_domain_name']) assert.ok(os.auth[k], `auth.${k}`);
  assert.ok(os.region_name);
  assert.equal(os.interface, 'public');
  assert.equal(cloud.driver.cluster_id, 'kubernetes');
  // And the driver's own config loader accepts it.
  const config = fromDocument(cloud, 'examples/secret.yaml', {});
  assert.equal(config.clouds.length, 1);
  assert.equal(config.clouds[0]!.region, 'RegionOne');
  assert.equal(config.clusterId, 'kubernetes');
  assert.equal(config.driverName, DEFAULT_DRIVER_NAME);
  const all = await docs(t);
  if (!all) return;
  assert.equal(secret.metadata.namespace, workloads(all).controller.metadata.namespace);
});

test('README: every TLS file its config examples name is a key of the config Secret, where the controller reads it', async (t) => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const named = [...readme.matchAll(/^\s*(?:verify_ca_path|client_cert_path|client_key_path|cacert|cert|key):\s*(\/\S+)/gm)].map((m) => m[1]!);
  assert.ok(named.length >= 2, 'the dataset: and clouds: examples name a CA file');
  const fromFiles = [...readme.matchAll(/--from-file=([^=\s]+)=/g)].map((m) => m[1]!);
  const all = await docs(t);
  if (!all) return;
  const { controller } = workloads(all);
  for (const w of [controller]) {
    const plugin = pluginContainer(w);
    const configDir = path.posix.dirname(parseServeArgs(plugin.args ?? [], {}).config!);
    for (const file of named) {
      assert.equal(path.posix.dirname(file), configDir, `${file} is in ${configDir}, where ${w.metadata.name} mounts the Secret`);
      const { mount, rest } = volumeFor(plugin, file);
      const secret = volume(w, mount.name).secret;
      assert.equal(secret?.secretName, 'cinder-csi-config');
      assert.ok(!secret.items || secret.items.some((i) => i.path === rest), `${w.metadata.name} projects the key ${rest}`);
      assert.ok(fromFiles.includes(rest), `the README puts ${rest} in the Secret (--from-file=${rest}=...)`);
    }
  }
});

test('examples are not resources of the base', () => {
  const k = yaml.load(readFileSync(path.join(DEPLOY, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  assert.ok(k.resources.length > 0);
  for (const r of k.resources) assert.ok(!r.startsWith('examples'), `${r} is not an example`);
});

// ------------------------------------------------------------ image

test('Dockerfile: npm ci build stage, slim Node LTS runtime, non-root, entrypoint cinder-csi serve', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const from = lines.filter((l) => /^FROM\s/i.test(l));
  assert.ok(from.length >= 2, 'multi-stage');
  for (const f of from) assert.match(f, /^FROM node:\d+-bookworm-slim\b/, 'slim Debian Node images');
  const runs = lines.filter((l) => /^RUN\s/i.test(l)).join('\n');
  assert.match(runs, /\bnpm ci\b/);
  assert.match(runs, /\bnpm run build\b/);
  assert.match(runs, /\bnpm prune --omit=dev\b/);
  for (const pkg of ['e2fsprogs', 'xfsprogs', 'util-linux', 'mount', 'udev', 'ca-certificates']) assert.match(runs, new RegExp(`\\b${pkg}\\b`), `installs ${pkg}`);
  assert.match(runs, /--no-install-recommends/);
  assert.match(runs, /rm -rf \/var\/lib\/apt\/lists/);
  const entry = lines.filter((l) => /^ENTRYPOINT\s/i.test(l));
  assert.equal(entry.length, 1);
  assert.deepEqual(JSON.parse(entry[0]!.replace(/^ENTRYPOINT\s+/i, '')), ['cinder-csi', 'serve']);
  const user = lines.filter((l) => /^USER\s/i.test(l)).pop();
  assert.ok(user, 'a USER line');
  assert.match(user, /^USER\s+65532(:65532)?$/);
  // The wrapper runs the package's bin.
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.ok(text.includes(pkg.bin['cinder-csi']!), `the image runs ${pkg.bin['cinder-csi']}`);
  assert.match(text, /COPY --from=\S+ \S*proto\S* /, 'proto/ is in the image (loaded at run time)');

  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignore.includes(p), `.dockerignore lists ${p}`);
});

// No Docker engine here: the build stage's own steps, run on exactly the files it copies. (Its
// `npm ci` is stood in for by this checkout's node_modules.) A test importing a file the stage
// does not copy once broke `docker build` this way.
test('Dockerfile: the build stage builds the driver from exactly the files it copies, and nothing else goes in', async () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM\s.*$/m).slice(1);
  const build = stages[0]!.split('\n').map((l) => l.trim());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-image-build-'));
  try {
    for (const line of build.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))) {
      const [, ...args] = line.split(/\s+/);
      const dest = args.pop()!;
      for (const src of args) {
        const to = dest.endsWith('/') ? path.join(dir, dest, path.basename(src)) : path.join(dir, dest);
        cpSync(path.join(ROOT, src), to, { recursive: true, filter: (f) => !f.includes(`${path.sep}gen${path.sep}`) });
      }
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const scripts = build.filter((l) => /^RUN\s/i.test(l)).flatMap((l) => [...l.matchAll(/npm run (\S+)/g)].map((m) => m[1]!));
    assert.ok(scripts.length > 0, 'the build stage runs an npm script');
    for (const script of scripts) await promisify(execFile)('npm', ['run', script], { cwd: dir, timeout: 120_000 });
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(dir, 'dist', 'src', 'cli.js'), 'version']);
    assert.equal(stdout.trim(), JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    assert.deepEqual(readdirSync(path.join(dir, 'dist')), ['src'], 'only the driver is built: no tests or benchmarks in the image');
    assert.ok(!existsSync(path.join(dir, 'test')), 'the tests are not copied');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
