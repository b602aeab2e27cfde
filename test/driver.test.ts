// The driver as a whole: what start-up does beyond serving (the services
// themselves are tested under test/controller, test/node and test/identity).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { codecReady, csiMessageTypes } from '../src/csi/proto';
import { startTestDriver } from './helpers/driver';
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
