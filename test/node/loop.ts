// Real block devices for node tests: sparse files on loop devices, a temp
// device root with udev-style by-id links, and a cleanup that unmounts and
// detaches everything the test made, even when the test failed.
import { mkdtemp, mkdir, open, rm, symlink, truncate, readFile, writeFile } from 'node:fs/promises';
import { accessSync, constants, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { run } from '../../src/util/exec';

export const ROOT_SKIP_REASON = 'needs root: makes loop devices, filesystems and mounts';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The Debian package of each tool a node test may need beyond the essential ones. */
const PACKAGE_OF: Record<string, string> = {
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  xfs_io: 'xfsprogs',
  xfs_repair: 'xfsprogs',
  strace: 'strace',
  // Config drives as Nova makes them (test/openstack/config-drive.test.ts).
  'mkfs.vfat': 'dosfstools',
  genisoimage: 'genisoimage',
};

/** Whether `command` is on PATH, where the driver's run() (execFile) looks for the tools it runs. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    if (!dir) return false;
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The optional tools some node tests need. */
export const OPTIONAL_TOOLS = Object.keys(PACKAGE_OF);

/** Which of `commands` are missing here, and "apt-get install ..." for them; null when none is. */
export function missingTools(commands: readonly string[]): { commands: string[]; install: string } | null {
  const missing = commands.filter((c) => !onPath(c));
  if (missing.length === 0) return null;
  return { commands: missing, install: `apt-get install ${[...new Set(missing.map((c) => PACKAGE_OF[c] ?? c))].join(' ')}` };
}

/**
 * Why a test that needs root and these commands cannot run here (naming the
 * packages to install), or false. CI sets CINDER_CSI_TEST_REQUIRE_TOOLS=1: there
 * a missing tool is an error, so that no test is skipped unnoticed.
 */
export function toolsSkip(...commands: string[]): string | false {
  if (!isRoot()) return ROOT_SKIP_REASON;
  const missing = missingTools(commands);
  if (!missing) return false;
  const reason = `needs ${missing.commands.join(', ')}, not installed here (${missing.install}; .ci/run installs them)`;
  if (process.env.CINDER_CSI_TEST_REQUIRE_TOOLS === '1') throw new Error(`${reason}, and CINDER_CSI_TEST_REQUIRE_TOOLS=1 forbids skipping`);
  return reason;
}

/** The xfs tests: mkfs.xfs and xfs_growfs come with xfsprogs, which a fresh machine may lack. */
export const XFS_SKIP = toolsSkip('mkfs.xfs', 'xfs_growfs');

export interface LoopDevice {
  /** /dev/loopN */
  path: string;
  /** loopN */
  name: string;
  backingFile: string;
}

/**
 * A scratch area: <root>/dev (deviceRoot with disk/by-id), <root>/state,
 * <root>/kubelet for staging and target paths. Everything under it is
 * unmounted and every loop device detached by cleanup(), which also checks
 * that nothing was left behind.
 */
export class Sandbox {
  readonly loops: LoopDevice[] = [];

  private constructor(readonly root: string) {}

  static async create(t: TestContext | { after(fn: () => Promise<void>): void }, prefix = 'cinder-csi-node-'): Promise<Sandbox> {
    const root = await mkdtemp(path.join(tmpdir(), prefix));
    const box = new Sandbox(root);
    await mkdir(box.byIdDir, { recursive: true });
    await mkdir(box.stateDir, { recursive: true });
    await mkdir(box.kubeletDir, { recursive: true });
    t.after(() => box.cleanup());
    return box;
  }

  get deviceRoot(): string {
    return path.join(this.root, 'dev');
  }
  get byIdDir(): string {
    return path.join(this.deviceRoot, 'disk', 'by-id');
  }
  get stateDir(): string {
    return path.join(this.root, 'state');
  }
  get kubeletDir(): string {
    return path.join(this.root, 'kubelet');
  }

  /** A sparse backing file of `sizeBytes` on a fresh loop device. */
  async loopDevice(sizeBytes: number): Promise<LoopDevice> {
    const backingFile = path.join(this.root, `disk-${this.loops.length}.img`);
    await writeFile(backingFile, '');
    await truncate(backingFile, sizeBytes);
    const { stdout } = await run('losetup', ['--find', '--show', backingFile]);
    const devicePath = stdout.trim();
    const loop = { path: devicePath, name: path.basename(devicePath), backingFile };
    this.loops.push(loop);
    return loop;
  }

  /**
   * The same backing file on another loop device, read-only: a read-only
   * attachment, as the simulator's hypervisor makes one. (Not `blockdev
   * --setro`: that flag outlives the loop device's detach and would hand a
   * read-only disk to the next test that gets the same loop number.)
   */
  async readOnlyLoopDevice(of: LoopDevice): Promise<LoopDevice> {
    return this.sameBackingFile(of, true);
  }

  /**
   * The same backing file on another loop device, read-write: the disk as it
   * comes back after a reboot, under another name (make it before detaching
   * `of`, or losetup may hand out the same number again).
   */
  async reattach(of: LoopDevice): Promise<LoopDevice> {
    return this.sameBackingFile(of, false);
  }

  /**
   * Detach `loop` now (a disk gone with a reboot) and forget it: once detached, its number may be
   * another test's device, which cleanup must not detach.
   */
  async detach(loop: LoopDevice): Promise<void> {
    await run('losetup', ['--detach', loop.path]);
    this.loops.splice(this.loops.indexOf(loop), 1);
  }

  private async sameBackingFile(of: LoopDevice, readOnly: boolean): Promise<LoopDevice> {
    const { stdout } = await run('losetup', [...(readOnly ? ['--read-only'] : []), '--find', '--show', of.backingFile]);
    const devicePath = stdout.trim();
    const loop = { path: devicePath, name: path.basename(devicePath), backingFile: of.backingFile };
    this.loops.push(loop);
    return loop;
  }

  /** The by-id link udev would make for a virtio-blk disk with this volume ID as serial. */
  async linkVirtio(volumeId: string, device: LoopDevice): Promise<string> {
    const link = path.join(this.byIdDir, `virtio-${volumeId.slice(0, 20)}`);
    await symlink(device.path, link);
    return link;
  }

  /** A staging directory (the CO creates it) and a target path (the SP creates it), both fresh. */
  async volumePaths(name: string): Promise<{ staging: string; target: string }> {
    const staging = path.join(this.kubeletDir, name, 'globalmount');
    await mkdir(staging, { recursive: true });
    const podDir = path.join(this.kubeletDir, name, 'pod');
    await mkdir(podDir, { recursive: true });
    return { staging, target: path.join(podDir, 'mount') };
  }

  /** Grow a loop device's backing file and tell the kernel, as the hypervisor would after a Cinder extend. */
  async grow(loop: LoopDevice, sizeBytes: number): Promise<void> {
    await truncate(loop.backingFile, sizeBytes);
    await run('losetup', ['--set-capacity', loop.path]);
  }

  /** Mounts under the sandbox, from the kernel's own table. */
  async mountsUnder(): Promise<string[]> {
    return (await mountinfoTargets()).filter((t) => t === this.root || t.startsWith(`${this.root}/`));
  }

  /** Loop devices reading from one of our loop devices (read-only views left behind). */
  async viewsOfOurLoops(): Promise<string[]> {
    const { stdout } = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']);
    const rows = stdout.trim() ? (JSON.parse(stdout) as { loopdevices: { name: string; 'back-file': string | null }[] }).loopdevices : [];
    const ours = new Set(this.loops.map((l) => l.path));
    return rows.filter((r) => r['back-file'] && ours.has(r['back-file'].trim())).map((r) => r.name);
  }

  async cleanup(): Promise<void> {
    // Deepest first, repeatedly: binds may be stacked on one target.
    for (let round = 0; round < 10; round++) {
      const left = (await this.mountsUnder()).sort((a, b) => b.length - a.length);
      if (left.length === 0) break;
      for (const target of left) await run('umount', ['--', target]).catch(() => undefined);
    }
    const views = await this.viewsOfOurLoops();
    for (const view of views) await run('losetup', ['--detach', view]).catch(() => undefined);
    for (const loop of this.loops) {
      await run('losetup', ['--detach', loop.path]).catch(() => undefined);
    }
    const stillMounted = await this.mountsUnder();
    // Every backing file is under the sandbox's root.
    const stillAttached = await loopDevicesBackedBy(this.root);
    await rm(this.root, { recursive: true, force: true });
    assert.deepEqual(stillMounted, [], 'mounts left behind by the test');
    assert.deepEqual(views, [], 'read-only loop views left behind by the test');
    assert.deepEqual(stillAttached, [], 'loop devices left attached by the test');
  }
}

/**
 * Loop devices whose backing file is under `dir`, once a short grace period
 * has passed. The kernel defers a detach while anyone holds the device open
 * (udev's probe after an umount, or blkid from a test running in parallel):
 * losetup --detach then only sets autoclear and returns. So a device counts
 * as left behind only if it is still attached after the grace period.
 */
export async function loopDevicesBackedBy(dir: string, graceMs = 3000): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const { stdout } = await run('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']);
    const rows = stdout.trim() ? (JSON.parse(stdout) as { loopdevices: { name: string; 'back-file': string | null }[] }).loopdevices : [];
    const backed = rows.filter((r) => (r['back-file']?.trim() ?? '').startsWith(`${dir}/`)).map((r) => r.name);
    if (backed.length === 0 || Date.now() >= deadline) return backed;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Mount targets in /proc/self/mountinfo (field 5), to check the kernel's view directly. */
export async function mountinfoTargets(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}

/** A DOS partition table with one Linux partition, written the way fdisk would. */
export async function writeMbr(device: string): Promise<Buffer> {
  const mbr = Buffer.alloc(512);
  const entry = 446;
  mbr[entry + 4] = 0x83; // Linux
  mbr.writeUInt32LE(2048, entry + 8); // first LBA
  mbr.writeUInt32LE(4096, entry + 12); // sectors
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fh = await open(device, 'r+');
  try {
    await fh.write(mbr, 0, 512, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return mbr;
}

const CAP_SYS_RESOURCE = 24;

/** Whether this process has a capability in its effective set (root in a sandbox may lack some). */
export function hasCapability(bit: number): boolean {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(bit)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/** ext4 online resize (EXT4_IOC_RESIZE_FS) needs CAP_SYS_RESOURCE; xfs growfs does not. */
export const EXT4_ONLINE_RESIZE_SKIP = !isRoot()
  ? ROOT_SKIP_REASON
  : hasCapability(CAP_SYS_RESOURCE)
    ? false
    : 'ext4 online resize needs CAP_SYS_RESOURCE, which this root process lacks (a sandbox dropped it)';
