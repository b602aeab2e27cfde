// Block device emulation. Each volume is a sparse file; attaching it to an
// instance makes a real loop device and the by-id link a guest would see
// (virtio-<first 20 characters of the volume ID>), so the node plugin can
// format, mount and resize for real. Only when root; otherwise every method is
// a no-op and the APIs still work.
import { mkdir, open, rm, stat, symlink, unlink, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log';
import { deviceNumber, isBlockDevice } from '../node/mount';
import { deviceNodeBinds } from '../node/devices';
import { readMountTable } from '../node/mountinfo';
import { readOnlyViewsOf } from '../node/readonly-view';
import { run } from '../util/exec';

const GiB = 1024 ** 3;

interface LoopAttachment {
  loop: string;
  link: string;
}

export type ImageKind = 'volumes' | 'snapshots' | 'backups';

export class Hypervisor {
  private readonly attached = new Map<string, LoopAttachment>();
  /** One chain of operations per image, so a copy never races an extend. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** losetup --find races with itself; one at a time keeps it simple. */
  private losetupChain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly enabled: boolean,
    private readonly stateDir: string,
    private readonly logger: Logger,
  ) {}

  imagePath(kind: ImageKind, id: string): string {
    return path.join(this.stateDir, kind, `${id}.img`);
  }

  static byIdName(volumeId: string): string {
    return `virtio-${volumeId.slice(0, 20)}`;
  }

  /**
   * Why this machine cannot make loop devices, or null when it can: one made
   * and removed on a small file in `dir`. Root is not enough: a container
   * without --privileged has no /dev/loop-control, and a user namespace's
   * root may not set one up.
   */
  static async loopDevicesUnavailable(dir: string): Promise<string | null> {
    const probe = path.join(dir, 'loop-probe.img');
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(probe, 'w');
      await fh.truncate(1024 * 1024).finally(() => fh.close());
      const loop = (await run('losetup', ['--find', '--show', '--', probe])).stdout.trim();
      await run('losetup', ['-d', loop]);
      return null;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await rm(probe, { force: true });
    }
  }

  /** Grows (or creates) the sparse image; a loop device on it is told the new size. */
  resize(volumeId: string, sizeGiB: number): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return this.serial(volumeId, async () => {
      const file = this.imagePath('volumes', volumeId);
      // An image never attached or copied does not exist yet; it is made at the right size when needed.
      if (!(await exists(file))) return;
      await truncate(file, sizeGiB * GiB);
      for (const [key, a] of this.attached) {
        if (key.startsWith(`${volumeId}|`)) await run('losetup', ['--set-capacity', a.loop]);
      }
    });
  }

  /** Copies one image to another (sparse), e.g. volume -> snapshot, backup -> volume. */
  copy(from: { kind: ImageKind; id: string }, to: { kind: ImageKind; id: string }, sizeGiB: number): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return this.serial(from.id, () =>
      this.serial(to.id, async () => {
        const src = this.imagePath(from.kind, from.id);
        const dst = this.imagePath(to.kind, to.id);
        await mkdir(path.dirname(dst), { recursive: true });
        if (await exists(src)) {
          await run('cp', ['--sparse=always', '--', src, dst], { timeoutMs: 300_000 });
        }
        // A source never written has no file: the copy is an empty image.
        await this.ensureImage(to.kind, to.id, sizeGiB);
        if ((await stat(dst)).size < sizeGiB * GiB) await truncate(dst, sizeGiB * GiB);
      }),
    );
  }

  /**
   * Makes the loop device and the by-id link; returns the loop device path.
   * A read-only attachment (Cinder's access_mode 'ro') is a read-only loop
   * device, so every write through it fails as it would on libvirt's
   * read-only disk.
   */
  attach(volumeId: string, sizeGiB: number, instanceKey: string, deviceRoot: string, readonly = false): Promise<string | null> {
    if (!this.enabled) return Promise.resolve(null);
    return this.serial(volumeId, async () => {
      const key = `${volumeId}|${instanceKey}`;
      const existing = this.attached.get(key);
      if (existing) return existing.loop;
      await this.ensureImage('volumes', volumeId, sizeGiB);
      const loop = await this.losetup([...(readonly ? ['--read-only'] : []), '--find', '--show', '--', this.imagePath('volumes', volumeId)]);
      const byId = path.join(deviceRoot, 'disk', 'by-id');
      const link = path.join(byId, Hypervisor.byIdName(volumeId));
      try {
        await mkdir(byId, { recursive: true });
        await unlink(link).catch(() => undefined);
        await symlink(loop, link);
      } catch (err) {
        await run('losetup', ['-d', loop]).catch(() => undefined);
        throw err;
      }
      this.attached.set(key, { loop, link });
      this.logger.debug({ volumeId, loop, link, readonly }, 'sim: attached loop device');
      return loop;
    });
  }

  detach(volumeId: string, instanceKey: string): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return this.serial(volumeId, () => this.release(`${volumeId}|${instanceKey}`));
  }

  loopDevice(volumeId: string, instanceKey: string): string | undefined {
    return this.attached.get(`${volumeId}|${instanceKey}`)?.loop;
  }

  removeImage(kind: ImageKind, id: string): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return this.serial(id, () => rm(this.imagePath(kind, id), { force: true }));
  }

  /**
   * Where the emulated disks are still in use on this machine: mounts of their
   * filesystems (staging paths and the binds of them) and binds of the device
   * nodes themselves (raw block targets). A user who stops the simulator with
   * volumes still staged gets told, instead of mounts of deleted images.
   */
  async mountedTargets(): Promise<string[]> {
    if (this.attached.size === 0) return [];
    const table = readMountTable();
    const targets: string[] = [];
    for (const { loop } of this.attached.values()) {
      if (!(await isBlockDevice(loop))) continue;
      targets.push(...table.ofDevice(await deviceNumber(loop)).map((m) => m.target));
      // The disk's node bound onto a file, or a read-only view of it (a loop over the loop) bound so.
      for (const node of [loop, ...(await readOnlyViewsOf(loop))]) {
        targets.push(...(await deviceNodeBinds(table, await deviceNumber(node))).map((m) => m.target));
      }
    }
    return targets;
  }

  /** Detaches every loop device this process made, whatever state the volumes are in. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
    for (const key of [...this.attached.keys()]) {
      await this.release(key).catch((err: unknown) => this.logger.error({ err, key }, 'sim: could not free a loop device'));
    }
  }

  private async release(key: string): Promise<void> {
    const a = this.attached.get(key);
    if (!a) return;
    await unlink(a.link).catch(() => undefined);
    await run('losetup', ['-d', a.loop]);
    this.attached.delete(key);
    this.logger.debug({ key, loop: a.loop }, 'sim: detached loop device');
  }

  private losetup(args: string[]): Promise<string> {
    const next = this.losetupChain.then(async () => (await run('losetup', args)).stdout.trim());
    this.losetupChain = next.catch(() => undefined);
    return next;
  }

  private async ensureImage(kind: ImageKind, id: string, sizeGiB: number): Promise<void> {
    const file = this.imagePath(kind, id);
    if (await exists(file)) return;
    await mkdir(path.dirname(file), { recursive: true });
    const fh = await open(file, 'wx');
    try {
      await fh.truncate(sizeGiB * GiB);
    } finally {
      await fh.close();
    }
  }

  private serial<R>(id: string, fn: () => Promise<R>): Promise<R> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.chains.set(id, settled);
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id);
    });
    return next;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
