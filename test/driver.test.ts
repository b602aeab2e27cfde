// The driver as a whole: what start-up does beyond serving (the services
// themselves are tested under test/controller, test/node and test/identity).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { codecReady, csiMessageTypes } from '../src/csi/proto';
import { startTestDriver } from './helpers/driver';
import { startSimulator } from '../src/sim';
import { onPath } from '../src/util/exec';

test('after start-up the driver generates the codec of every message its services carry, before any call', async (t) => {
  const driver = await startTestDriver({ mode: 'controller' });
  t.after(() => driver.stop());
  const served = csiMessageTypes(['Identity', 'Controller']);
  const deadline = Date.now() + 5_000;
  while (!served.every(codecReady) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(served.filter((type) => !codecReady(type)).map((type) => type.fullName), []);
  // A node-only message is not the controller's to prepare.
  assert.equal(csiMessageTypes(['Node']).some((type) => type.name === 'NodeStageVolumeRequest' && codecReady(type)), false);
});

test("the Identity service offers zone topology as the parsed config's driver.controller.topology says", async (t) => {
  const caps = async (topology: boolean | undefined, mode: 'controller' | 'node'): Promise<string[]> => {
    const driver = await startTestDriver({
      mode,
      sim: { hypervisor: false },
      configure: (config) => {
        if (topology !== undefined) config.controller.topology = topology;
      },
    });
    t.after(() => driver.stop());
    const res = await driver.call(driver.identity, 'GetPluginCapabilities', {});
    return (res.capabilities as Array<{ service?: { type: string } }>).flatMap((c) => (c.service ? [c.service.type] : []));
  };
  assert.ok((await caps(undefined, 'controller')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'on by default');
  assert.ok(!(await caps(false, 'controller')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'controller, topology: false');
  assert.ok(!(await caps(false, 'node')).includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'), 'node, topology: false');
});

/** Keys that appear more than once at the top level of a JSON object text (JSON.parse keeps only the last). */
function repeatedTopLevelKeys(text: string): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const isKey = depth === 1 && /^\s*:/.test(text.slice(end + 1, end + 3));
      const key = text.slice(i + 1, end);
      if (isKey && seen.has(key)) repeated.push(key);
      if (isKey) seen.add(key);
      i = end;
    }
  }
  return repeated;
}

test('no log line names a field twice (a child logger and its call both adding the cloud, say)', async (t) => {
  assert.deepEqual(repeatedTopLevelKeys('{"a":1,"b":{"a":2},"c":"a\\":","a":3}'), ['a']);
  const driver = await startTestDriver({ mode: 'all', sim: { hypervisor: false }, logLevel: 'debug' });
  t.after(() => driver.stop());
  const res = await driver.call(driver.controller, 'CreateVolume', {
    name: 'pvc-log-keys',
    volume_capabilities: [{ mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
  });
  await driver.call(driver.controller, 'DeleteVolume', { volume_id: res.volume.volume_id });
  assert.ok(driver.rawLogs.length > 5);
  const twice = driver.rawLogs.filter((line) => repeatedTopLevelKeys(line).length > 0);
  assert.deepEqual(twice, []);
});

test('a node plugin warns once at start-up which mkfs of the supported filesystems are missing from PATH', async (t) => {
  // A PATH that has mkfs.ext4 and no other mkfs.
  const bin = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-path-'));
  t.after(() => rm(bin, { recursive: true, force: true }));
  const realPath = process.env.PATH;
  const ext4 = (realPath ?? '').split(':').map((d) => path.join(d, 'mkfs.ext4')).find((p) => existsSync(p));
  assert.ok(ext4, 'mkfs.ext4 is installed');
  await symlink(ext4, path.join(bin, 'mkfs.ext4'));
  process.env.PATH = bin;
  assert.ok(await onPath('mkfs.ext4'));
  t.after(() => {
    process.env.PATH = realPath;
  });
  const driver = await startTestDriver({ mode: 'node', sim: { hypervisor: false } });
  t.after(() => driver.stop());
  const deadline = Date.now() + 5_000;
  const warned = () => driver.logs.filter((l) => Array.isArray(l.missing));
  while (warned().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  process.env.PATH = realPath;
  const [line, ...more] = warned();
  assert.equal(more.length, 0, 'one line');
  assert.equal(line?.level, 'warn');
  assert.deepEqual(line.missing, ['mkfs.ext3', 'mkfs.xfs']);
  assert.deepEqual(line.packages, ['e2fsprogs', 'xfsprogs']);
  assert.equal(line.msg, 'mkfs.ext3, mkfs.xfs not found on PATH: volumes with fsType ext3 or xfs cannot be formatted on this node; use an image with the Debian packages e2fsprogs, xfsprogs');
});

test('a node that cannot learn its instance names the configured metadata URL, and warns about its retries at a bounded rate', async (t) => {
  // A port nothing listens on, until the test serves the metadata there.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const url = `http://127.0.0.1:${port}`;
  const driver = await startTestDriver({
    mode: 'node',
    sim: { hypervisor: false },
    identityTimeoutMs: 2000,
    identityRetry: { firstDelayMs: 20, maxDelayMs: 40, warnEveryMs: 10_000 },
    configure: (config) => {
      config.node.instanceId = undefined;
      config.node.metadataUrl = url;
      config.node.metadataSearchOrder = ['metadataService'];
    },
  });
  t.after(() => driver.stop());

  await assert.rejects(driver.call(driver.node, 'NodeGetInfo', {}), (e: { code: number; details: string }) => {
    assert.equal(e.code, status.UNAVAILABLE);
    assert.match(e.details, new RegExp(`make the metadata service at ${url.replace(/\./g, '\\.')} reachable from the node`));
    assert.doesNotMatch(e.details, /169\.254\.169\.254/);
    return true;
  });
  await new Promise((r) => setTimeout(r, 2000));
  const warnings = () => driver.logs.filter((l) => l.level === 'warn' && /node identity still unknown/.test(String(l.msg)));
  // The first failed retry is said at once; the next ones only after warnEveryMs (10 s, longer than this test).
  assert.equal(warnings().length, 1);
  const [first] = warnings();
  assert.deepEqual(first.tried, [`the metadata service at ${url}`]);
  assert.equal(first.failed_attempts, 1);
  assert.match(String(first.error), /ECONNREFUSED/);
  assert.match(String(first.msg), new RegExp(`the metadata service at ${url.replace(/\./g, '\\.')} did not answer`));

  // The metadata service answers: the node serves, and says so once.
  const uuid = '0c6e3a34-5b6f-4d8b-9f5e-1f0b2c3d4e5f';
  const md = http.createServer((_req, res) => res.end(JSON.stringify({ uuid, availability_zone: 'nova' })));
  await new Promise<void>((r) => md.listen(port, '127.0.0.1', r));
  t.after(() => new Promise((r) => md.close(r)));
  const deadline = Date.now() + 5000;
  while (!driver.logs.some((l) => l.msg === 'node identity found after failed retries; node calls are served') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const found = driver.logs.find((l) => l.msg === 'node identity found after failed retries; node calls are served');
  assert.ok((found?.failed_attempts as number) >= 2, `several failed retries behind one warning: ${found?.failed_attempts}`);
  assert.equal(warnings().length, 1);
  assert.equal((await driver.call(driver.node, 'NodeGetInfo', {})).node_id, uuid);
});

test('a failed authentication is one warning, and the cloud says when it is authenticated after all', async (t) => {
  const sim = await startSimulator({ hypervisor: false });
  t.after(() => sim.stop());
  sim.control.addFault({ service: 'identity', method: 'POST', pathPattern: '/auth/tokens$', status: 400, body: { error: { code: 400, title: 'Bad Request', message: 'try again' } }, times: 1 });
  const driver = await startTestDriver({ mode: 'controller', simulator: sim });
  t.after(() => driver.stop());
  const deadline = Date.now() + 10_000;
  while (!driver.driver.readiness().ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(driver.driver.readiness().ready);
  const warnings = driver.logs.filter((l) => l.level === 'warn' && /authenticat/.test(String(l.msg)));
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(String(warnings[0].err), /400 Bad Request/);
  assert.equal(warnings[0].cloud, driver.config.clouds[0].name);
  const ready = driver.logs.filter((l) => l.msg === `cloud '${driver.config.clouds[0].name}' authenticated; ready`);
  assert.equal(ready.length, 1);
  assert.equal(ready[0].level, 'info');
  assert.equal(ready[0].failed_attempts, 1);
});

test('the start-up line carries no secret even where the config puts one in a name or the auth URL', async () => {
  const { describeCloud } = await import('../src/openstack/summary');
  const cloud = (auth: Record<string, string>) =>
    ({ name: 'c', region: 'RegionOne', interface: 'public', auth: { authUrl: 'https://u:p@keystone.example:5000/v3?sig=hunter22#hunter22', ...auth } }) as never;
  const byPassword = describeCloud(cloud({ authPlugin: 'password', username: 'hunter22', password: 'hunter22', projectName: 'hunter22' }));
  assert.equal(byPassword.auth_url, 'https://keystone.example:5000/v3');
  assert.equal(byPassword.user, '[REDACTED]');
  assert.equal(byPassword.project, '[REDACTED]');
  assert.ok(!JSON.stringify(byPassword).includes('hunter22'));
  // An application credential by ID names nothing else (keystone.ts sends nothing else), under a key the log's redaction of "credential" keys leaves alone.
  const byAppCred = describeCloud(cloud({ authPlugin: 'v3applicationcredential', applicationCredentialId: 'ac-1', applicationCredentialSecret: 's', username: 'demo', projectName: 'demo' }));
  assert.equal(byAppCred.app_cred, 'ac-1');
  assert.equal(byAppCred.user, undefined);
  assert.equal(byAppCred.project, undefined);
});

test('the start-up line names the config file and, for the controller, each cloud without its secrets; the node lists no clouds', async (t) => {
  const controller = await startTestDriver({ mode: 'controller', sim: { hypervisor: false } });
  t.after(() => controller.stop());
  const line = controller.logs.find((l) => l.msg === 'driver started');
  assert.equal(line?.config, 'test');
  const cloud = controller.config.clouds[0];
  assert.deepEqual(line?.clouds, [
    {
      name: cloud.name,
      auth_url: new URL(cloud.auth.authUrl).toString(),
      region: cloud.region ?? '(any: the catalog must offer one)',
      interface: cloud.interface,
      auth_type: cloud.auth.authPlugin,
      user: cloud.auth.username,
      user_domain: cloud.auth.userDomainName ?? 'Default',
      project: cloud.auth.projectName,
      project_domain: cloud.auth.projectDomainName ?? 'Default',
    },
  ]);
  assert.ok(cloud.auth.password && !controller.rawLogs.some((l) => l.includes(cloud.auth.password!)), 'no password in the log');

  const node = await startTestDriver({ mode: 'node', sim: { hypervisor: false }, logLevel: 'debug' });
  t.after(() => node.stop());
  const nodeLine = node.logs.find((l) => l.msg === 'driver started');
  assert.equal(nodeLine?.clouds, undefined);
  assert.equal((nodeLine?.node as Record<string, unknown>).metadata_url, node.config.node.metadataUrl);
  // A libblkid whose reads are traced is a detail: at debug. (Where it is not traced, wipefs runs on every stage: info.)
  const deadline = Date.now() + 5_000;
  const blank = () => node.logs.find((l) => /^blank-device check/.test(String(l.msg)));
  while (!blank() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(blank()?.level, /libblkid version traced/.test(String(blank()?.msg)) ? 'debug' : 'info', String(blank()?.msg));
});
