// Between looks for a volume's device, the node nudges udev, for the VM's
// disks only. A fake udevadm on PATH records what it is asked (this file runs
// in its own process, so the module's "is udevadm usable" answer starts fresh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { silentLogger } from '../../src/log';
import { findVolumeDevice } from '../../src/node/devices';

test('while a device is missing, udev is asked to look again at whole VM disks only, then waited for', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-rescan-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  const calls = path.join(dir, 'calls.txt');
  await mkdir(bin);
  await mkdir(path.join(dir, 'sys', 'class', 'scsi_host'), { recursive: true });
  await mkdir(path.join(dir, 'sys', 'block'), { recursive: true });
  await mkdir(path.join(dir, 'dev', 'disk', 'by-id'), { recursive: true });
  // A test double, not the driver: the driver runs commands with execFile and argument arrays only.
  await writeFile(path.join(bin, 'udevadm'), `#!/bin/sh\necho "$*" >> ${calls}\n`);
  await chmod(path.join(bin, 'udevadm'), 0o755);
  const savedPath = process.env.PATH;
  process.env.PATH = `${bin}:${savedPath ?? ''}`;
  t.after(() => (process.env.PATH = savedPath));

  await assert.rejects(
    findVolumeDevice({
      volumeId: '5f3c1b7e-0d47-4c1e-9d43-6f2b8a1c0e11',
      deviceRoot: path.join(dir, 'dev'),
      sysfsRoot: path.join(dir, 'sys'),
      timeoutMs: 250,
      signal: AbortSignal.timeout(10_000),
      log: silentLogger,
    }),
    (e: { code?: number }) => e.code === status.NOT_FOUND,
  );
  const lines = (await readFile(calls, 'utf8')).trim().split('\n');
  assert.ok(lines.length >= 2, `udevadm was asked ${lines.length} times`);
  const trigger = lines.find((l) => l.startsWith('trigger'))!.split(' ');
  assert.ok(trigger.includes('--action=change') && trigger.includes('--subsystem-match=block'));
  assert.ok(trigger.includes('--property-match=DEVTYPE=disk'), 'partitions are left alone');
  assert.deepEqual(
    trigger.filter((a) => a.startsWith('--sysname-match=')),
    ['--sysname-match=vd*', '--sysname-match=sd*', '--sysname-match=nvme*', '--sysname-match=xvd*'],
  );
  assert.ok(lines.some((l) => l.startsWith('settle')), 'and udev is waited for');
});
