// run(): argument arrays, no shell, and a command environment of PATH and the C locale only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandError, CommandNotFoundError, commandEnv, run } from '../../src/util/exec';

test('a command sees PATH and LC_ALL=C, never the driver process environment', async (t) => {
  process.env.CINDER_CSI_TEST_SECRET = 'must-not-leak';
  t.after(() => delete process.env.CINDER_CSI_TEST_SECRET);
  const { stdout } = await run('env', []);
  const seen = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  assert.deepEqual(Object.keys(seen).sort(), ['LC_ALL', 'PATH']);
  assert.equal(seen.LC_ALL, 'C');
  assert.equal(seen.PATH, process.env.PATH);
  assert.deepEqual(commandEnv(), { PATH: process.env.PATH, LC_ALL: 'C' });
});

test('arguments reach the command as they are: no shell expands them', async () => {
  const tricky = ['$(id)', '`id`', 'a;b', '*', '"q"', "it's"];
  const { stdout } = await run('printf', ['%s\\n', ...tricky]);
  assert.deepEqual(stdout.trimEnd().split('\n'), tricky);
});

test('a failing command is a CommandError with its exit code and its stderr, in the C locale', async () => {
  const missing = '/nonexistent/cinder-csi-test';
  await assert.rejects(run('ls', ['--', missing]), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 2);
    assert.match(e.message, /^ls exited with 2: .*cannot access '\/nonexistent\/cinder-csi-test': No such file or directory/);
    return true;
  });
  assert.equal((await run('ls', ['--', missing], { okCodes: [2] })).code, 2);
});

test('a command not on PATH never ran: CommandNotFoundError names it and its Debian package', async () => {
  const env = { PATH: '/nonexistent/cinder-csi-empty-path', LC_ALL: 'C' };
  await assert.rejects(run('mkfs.ext4', ['-q', '--', '/dev/null'], { env }), (e: unknown) => {
    assert.ok(e instanceof CommandNotFoundError);
    assert.ok(e instanceof CommandError, 'still a CommandError for those who catch one');
    assert.equal(e.package, 'e2fsprogs');
    assert.equal(e.message, 'mkfs.ext4 is not installed on this node (Debian package e2fsprogs); use an image that has it, or fsType xfs');
    return true;
  });
  await assert.rejects(run('udevadm', ['settle'], { env }), /^CommandNotFoundError: udevadm is not installed on this node \(Debian package udev\); use an image that has it$/);
  // A program that ran and failed is not a missing one, even when its own error is ENOENT.
  await assert.rejects(run('ls', ['--', '/nonexistent/x']), (e: unknown) => !(e instanceof CommandNotFoundError));
});
