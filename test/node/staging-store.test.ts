import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StagingStore, type BlockStaging } from '../../src/node/staging-store';

const record = (volumeId: string): BlockStaging => ({ volumeId, device: '/dev/vdb', majMin: '252:16', stagingPath: '/staging', targets: [] });

test('records survive a new store on the same directory, and remove leaves nothing', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await new StagingStore(dir).put(record('vol-1'));
  const again = new StagingStore(dir);
  assert.deepEqual(await again.get('vol-1'), record('vol-1'));
  assert.equal(await again.get('vol-2'), null);
  await again.remove('vol-1');
  assert.deepEqual(readdirSync(path.join(dir, 'block-staging')), []);
});

test('a temporary file left by a plugin killed mid-write is replaced by the next write, or removed with the record', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new StagingStore(dir);
  await store.put(record('vol-1'));
  const [file] = readdirSync(path.join(dir, 'block-staging'));
  const leftover = path.join(dir, 'block-staging', `${file}.tmp`);
  writeFileSync(leftover, '{"volumeId":"vol-1","dev'); // the write a SIGKILL cut short
  await store.put({ ...record('vol-1'), targets: [{ path: '/t', readOnlyView: null }] });
  assert.deepEqual(readdirSync(path.join(dir, 'block-staging')), [file]);
  writeFileSync(leftover, '{"volumeId":"vol-1","dev');
  await store.remove('vol-1');
  assert.deepEqual(readdirSync(path.join(dir, 'block-staging')), []);
});
