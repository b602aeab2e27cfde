// `cinder-csi demo` against a driver started separately, as a new user runs it
// (README): what it says when nothing answers, and when the driver has no node side.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { until } from '../helpers/server';
import { call, connect } from '../helpers/grpc';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const CLEAN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

const dir = mkdtempSync(path.join(os.tmpdir(), 'cinder-csi-demo-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function demo(endpoint: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'demo', '--endpoint', endpoint], { env: CLEAN_ENV, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

const isSocket = (p: string) => lstatSync(p, { throwIfNoEntry: false })?.isSocket() === true;

test('demo --help says what it does and exits 0', async () => {
  const out = await new Promise<{ code: number; stdout: string }>((resolve) =>
    execFile(process.execPath, [CLI, 'demo', '--help'], { env: CLEAN_ENV }, (err, stdout) => resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout })),
  );
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^Usage: cinder-csi demo \[--endpoint URL\]\n  One whole volume lifecycle/);
});

test('a socket left by a driver that was killed: the demo says nothing answers there and to start the driver', async () => {
  const socket = path.join(dir, 'stale.sock');
  const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)})`], { stdio: 'ignore' });
  await until(() => isSocket(socket), 10_000, 'the socket');
  holder.kill('SIGKILL'); // as a crash: the socket file stays
  await new Promise((r) => holder.once('exit', r));
  const { code, stderr } = await demo(`unix://${socket}`);
  assert.equal(code, 1);
  assert.equal(stderr, `cinder-csi demo: nothing answers on unix://${socket}; start the driver first (npm start)\n`);
});

test('against a controller-only driver the demo runs the controller steps and says why it skips the node ones', async () => {
  const socket = path.join(dir, 'controller.sock');
  const driver = spawn(process.execPath, [CLI, 'serve', '--sim', '--mode', 'controller', '--endpoint', `unix://${socket}`, '--log-level', 'warn'], {
    env: { ...CLEAN_ENV, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  driver.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => driver.once('exit', r));
  try {
    // Said once it serves (the socket file exists a moment before it accepts).
    await until(() => out.includes('cinder-csi is serving'), 20_000, 'the driver to serve');
    const { code, stdout, stderr } = await demo(`unix://${socket}`);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /no node service at this endpoint \(a driver serving the controller only: --mode controller[^)]*\); skipping attach, mount and I\/O/);
    assert.match(stdout, /CreateVolume/);
    assert.match(stdout, /DeleteVolume/);
  } finally {
    driver.kill('SIGTERM');
    await exited;
  }
});

/**
 * Run the CLI as root in a mount namespace whose /dev has no loop devices and
 * no /dev/loop-control, as in a container started without --privileged.
 */
function cliWithoutLoopDevices(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = path.join(dir, 'no-loop-devices.js');
  writeFileSync(
    script,
    `const { execFileSync, spawnSync } = require('node:child_process');
execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', '/dev']);
for (const [name, minor] of [['null', 3], ['zero', 5], ['random', 8], ['urandom', 9]]) execFileSync('mknod', ['-m', '666', '/dev/' + name, 'c', '1', String(minor)]);
const r = spawnSync(process.execPath, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status ?? 1);
`,
  );
  return new Promise((resolve) => {
    execFile('unshare', ['--mount', '--propagation', 'private', process.execPath, script, CLI, ...args], { env: { ...CLEAN_ENV, TMPDIR: dir }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

test('root where loop devices cannot be made (a container without --privileged): the demo runs the controller steps and says why not the node ones; a node plugin refuses to start', { skip: process.getuid?.() !== 0 ? 'needs root to make a mount namespace' : false }, async () => {
  const shown = await cliWithoutLoopDevices(['demo']);
  assert.equal(shown.code, 0, shown.stderr);
  // Before, the simulator promised devices it could not make, and ControllerPublishVolume waited for an attach that had failed.
  assert.match(shown.stdout, /skipping attach, mount and I\/O/);
  assert.match(shown.stdout, /DeleteVolume/);
  const node = await cliWithoutLoopDevices(['serve', '--sim', '--mode', 'node', '--endpoint', `unix://${dir}/node.sock`, '--log-level', 'silent']);
  assert.equal(node.code, 1);
  assert.match(node.stderr, /the node plugin on the simulator cannot run: this machine cannot make loop devices \(in a container, run it --privileged\)/);
});

/** Start a CLI command as its own process; resolves once `ready` (given its stdout so far) holds. */
async function started(args: string[], ready: (stdout: string) => boolean, what: string): Promise<{ stdout: () => string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...CLEAN_ENV, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await until(() => ready(out), 20_000, what);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stdout: () => out, stop };
}

test('the simulator on its own and a driver started with the cinder-csi.yaml it writes: the whole lifecycle; a failing step is named and cleaned up after', { skip: process.getuid?.() !== 0 ? 'needs root: the node steps mount loop devices' : false }, async () => {
  const state = path.join(dir, 'standalone-sim');
  const sim = await started(['sim', '--listen', '127.0.0.1:0', '--state-dir', state], (out) => out.includes('Ctrl-C stops it'), 'the simulator');
  const socket = path.join(dir, 'standalone.sock');
  let driver: Awaited<ReturnType<typeof started>> | undefined;
  const clients = connect(`unix://${socket}`);
  try {
    const url = /simulated OpenStack on (\S+)/.exec(sim.stdout())![1]!;
    // What the README says to run next, as the simulator prints it.
    assert.match(sim.stdout(), new RegExp(`cinder-csi serve --config ${path.join(state, 'cinder-csi.yaml')}`));
    driver = await started(['serve', '--config', path.join(state, 'cinder-csi.yaml'), '--endpoint', `unix://${socket}`, '--log-level', 'warn'], () => isSocket(socket), 'the driver\'s socket');
    // The socket exists a moment before the driver answers on it.
    for (let tries = 0; !(await call(clients.identity, 'Probe', {}).then(() => true, () => false)); tries++) {
      assert.ok(tries < 100, 'the driver answers Probe');
      await new Promise((r) => setTimeout(r, 100));
    }
    const whole = await demo(`unix://${socket}`);
    assert.equal(whole.code, 0, whole.stderr);
    assert.match(whole.stdout, /NodeStageVolume/);
    assert.match(whole.stdout, /lifecycle complete/);

    // Cinder refuses every new snapshot: the demo names the step and Cinder's answer, and deletes its volume.
    const fault = { service: 'volume', method: 'POST', pathPattern: '/snapshots$', status: 500, times: null };
    assert.equal((await fetch(`${url}/_sim/faults`, { method: 'POST', body: JSON.stringify(fault), headers: { 'content-type': 'application/json' } })).status, 200);
    const failing = await demo(`unix://${socket}`);
    assert.equal(failing.code, 1);
    assert.match(failing.stderr, /^cinder-csi demo: CreateSnapshot failed: [A-Z_]+: /);
    assert.match(failing.stdout, /cleaning up:\n.*DeleteVolume/);
    assert.deepEqual((await call(clients.controller, 'ListVolumes', {})).entries, [], 'no volume left behind');
  } finally {
    clients.close();
    await driver?.stop();
    await sim.stop();
  }
});

