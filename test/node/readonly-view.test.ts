// A read-only view (a read-only loop device over the disk) is recognised by
// what it reads from, whichever mount namespace made it: the node plugin's
// container that made a view may have restarted since, and then losetup shows
// the disk's path as that dead namespace saw it ('/vdb', not '/dev/vdb').
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../src/util/exec';
import { createReadOnlyView, readOnlyViewsOf, removeReadOnlyView } from '../../src/node/readonly-view';
import { isRoot, ROOT_SKIP_REASON, Sandbox } from './loop';

const MiB = 1024 * 1024;

test('a view made in another mount namespace through its own mount of /dev is found and detached', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const disk = await box.loopDevice(64 * MiB);
  const otherDev = path.join(box.root, 'container-dev');
  await mkdir(otherDev);
  // As a container does: /dev mounted again in a namespace of its own, which is gone once the command ends.
  const { stdout } = await run('unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount --bind /dev "$1" && exec losetup --read-only --find --show "$1/$2"',
    'sh',
    otherDev,
    disk.name,
  ]);
  const view = stdout.trim();
  try {
    const shown = JSON.parse((await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE', view])).stdout).loopdevices[0]['back-file'];
    assert.notEqual(shown.trim(), disk.path, 'losetup shows the path as the namespace that made the view saw it');

    assert.deepEqual(await readOnlyViewsOf(disk.path), [view]);
    await removeReadOnlyView(view, disk.path);
    assert.deepEqual(await readOnlyViewsOf(disk.path), []);
  } finally {
    await run('losetup', ['--detach', view]).catch(() => undefined); // when the code under test did not
  }
});

test('a view is only ever taken for a view of its own disk: a loop number reused for another disk is left alone', { skip: isRoot() ? false : ROOT_SKIP_REASON }, async (t) => {
  const box = await Sandbox.create(t);
  const a = await box.loopDevice(64 * MiB);
  const b = await box.loopDevice(64 * MiB);
  const viewOfB = await createReadOnlyView(b.path);
  try {
    assert.deepEqual(await readOnlyViewsOf(a.path), []);
    await removeReadOnlyView(viewOfB, a.path);
    assert.deepEqual(await readOnlyViewsOf(b.path), [viewOfB], 'not detached: it reads from another disk');
  } finally {
    // Before the sandbox's own check that no view is left.
    await run('losetup', ['--detach', viewOfB]).catch(() => undefined);
  }
});
