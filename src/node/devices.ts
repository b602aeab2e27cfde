// Finding the block device of an attached Cinder volume, from its volume ID.
//
// Nova gives the disk the volume ID as its serial: virtio-blk keeps the first
// 20 characters, virtio-scsi the whole ID. udev turns the serial into
// /dev/disk/by-id links; without udev we read the serials from sysfs. A link
// is only as fresh as udev, and virtio-blk reuses names after a detach and
// attach, so a link is not taken when sysfs shows its disk's serial naming
// another volume. The controller's publish_context hint (a device path) is
// only a shortcut: a device path says nothing about which volume it holds, so
// it is accepted only when the device's own serial names this volume.
//
// Finding the device and deciding whether we may take it are two steps. A
// repeat stage or publish of a volume we already hold is answered from our own
// state (the staging mount, the staging record) and needs no use check; a
// first stage refuses a device in use anywhere that is not this volume's own
// staging or target path (refuseForeignUse): mounting it again is how data
// gets corrupted.
import { readdir, readFile, realpath, writeFile, lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log';
import { failedPrecondition, notFound } from '../csi/errors';
import { run, which } from '../util/exec';
import { deviceNumber, formatDeviceNumber, isBlockDevice, listMounts, type MountEntry, type MountTable } from './mount';
import { isVolumeSerial } from '../util/volume-serial';

/** The publish_context key the controller puts the device path under (the Go driver's name, kept for compatibility). */
export const PUBLISH_CONTEXT_DEVICE_PATH = 'DevicePath';

/** virtio-blk serials are at most 20 bytes. */
const VIRTIO_SERIAL_LENGTH = 20;

export interface DiscoveryOptions {
  volumeId: string;
  /** publish_context[DevicePath], if the controller sent one. */
  hint?: string;
  deviceRoot: string;
  sysfsRoot: string;
  /** Give up after this long (0: look once). */
  timeoutMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** What is this volume's own, for refuseForeignUse. */
export interface Ownership {
  /** Mount targets that belong to this volume (its staging path, its published targets). */
  ownTargets: ReadonlySet<string>;
  sysfsRoot: string;
  /** kubelet's root directory: its binds of our raw block publishes live under it. */
  kubeletRoot: string;
}

export interface FoundDevice {
  /** The real device node, e.g. /dev/vdb. */
  path: string;
  /** How we know it is this volume's, for the logs. */
  evidence: string;
}

/**
 * The Cinder UUID in a CSI volume ID: a volume of a cloud other than the
 * controller's default is `<cloud>:<uuid>` (controller/clouds.ts; the cloud
 * name may hold ':', a UUID never does), and its disk carries the UUID alone.
 */
export function cinderIdOf(volumeId: string): string {
  return volumeId.slice(volumeId.lastIndexOf(':') + 1);
}

/** by-id link names udev makes for a disk whose serial is the volume ID, most specific first. */
export function byIdLinkNames(csiVolumeId: string): string[] {
  const volumeId = cinderIdOf(csiVolumeId);
  const short = volumeId.slice(0, VIRTIO_SERIAL_LENGTH);
  const names = [
    `virtio-${short}`,
    `virtio-${volumeId}`,
    `scsi-0QEMU_QEMU_HARDDISK_${short}`,
    `scsi-0QEMU_QEMU_HARDDISK_${volumeId}`,
    `wwn-0x${volumeId.replace(/-/g, '')}`,
  ];
  return [...new Set(names)];
}

/** Does a disk serial name this volume (the whole ID, or the 20 characters virtio-blk keeps)? */
export function serialMatches(serial: string, csiVolumeId: string): boolean {
  const volumeId = cinderIdOf(csiVolumeId);
  const s = serial.trim();
  return s !== '' && (s === volumeId || (s.length === VIRTIO_SERIAL_LENGTH && s === volumeId.slice(0, VIRTIO_SERIAL_LENGTH)));
}

/**
 * Wait for the volume's device to appear and return it; NOT_FOUND when it does
 * not appear in time. It says nothing about who else uses it (refuseForeignUse).
 */
export async function findVolumeDevice(opts: DiscoveryOptions): Promise<FoundDevice> {
  const started = Date.now();
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    const found = await lookOnce(opts);
    if (found) {
      opts.log.debug({ device: found.path, evidence: found.evidence, attempt }, 'found volume device');
      return found;
    }
    const remaining = opts.timeoutMs - (Date.now() - started);
    if (remaining <= 0) break;
    await rescan(opts.sysfsRoot, opts.signal, opts.log);
    await sleep(Math.min(delay, remaining), undefined, { signal: opts.signal });
    delay = Math.min(delay * 2, 2_000);
  }
  throw notFound(
    `no block device for volume ${opts.volumeId} appeared within ${opts.timeoutMs} ms ` +
      `(looked for ${opts.deviceRoot}/disk/by-id/{${byIdLinkNames(opts.volumeId).join(',')}} and for its serial in ${opts.sysfsRoot}/block); ` +
      'is it attached to this node?',
  );
}

async function lookOnce(opts: DiscoveryOptions): Promise<FoundDevice | null> {
  const byIdDir = path.join(opts.deviceRoot, 'disk', 'by-id');
  for (const name of byIdLinkNames(opts.volumeId)) {
    const link = path.join(byIdDir, name);
    const real = await resolveBlockDevice(link);
    if (!real) continue;
    // A link can be stale: virtio-blk reuses names after a detach and attach, and udev may not have
    // caught up. The disk's own serial decides when sysfs has one (SCSI disks and loop devices have none).
    const serial = await readSerial(opts.sysfsRoot, path.basename(real));
    if (serial === null) return { path: real, evidence: `by-id link ${name}` };
    if (serialMatches(serial, opts.volumeId)) return { path: real, evidence: `by-id link ${name} to a disk with serial ${serial}` };
    opts.log.warn({ link, resolved: real, serial }, 'ignoring a by-id link to a disk whose serial names another volume');
  }
  if (opts.hint) {
    const real = await resolveBlockDevice(opts.hint);
    const serial = real ? await readSerial(opts.sysfsRoot, path.basename(real)) : null;
    if (real && serial !== null && serialMatches(serial, opts.volumeId)) {
      return { path: real, evidence: `publish_context hint ${opts.hint} with serial ${serial}` };
    }
    opts.log.debug({ hint: opts.hint, resolved: real, serial }, 'ignoring device hint whose serial does not name this volume');
  }
  return scanSerials(opts);
}

/** The sysfs fallback: a disk whose serial is the volume ID. A full-ID match wins over a 20-character one. */
async function scanSerials(opts: DiscoveryOptions): Promise<FoundDevice | null> {
  let names: string[];
  try {
    names = await readdir(path.join(opts.sysfsRoot, 'block'));
  } catch {
    return null;
  }
  const matches: { name: string; serial: string }[] = [];
  for (const name of names) {
    const serial = await readSerial(opts.sysfsRoot, name);
    if (serial !== null && serialMatches(serial, opts.volumeId)) matches.push({ name, serial });
  }
  const exact = matches.filter((m) => m.serial === cinderIdOf(opts.volumeId));
  const chosen = exact.length > 0 ? exact : matches;
  if (chosen.length > 1) {
    throw failedPrecondition(
      `several disks carry the serial of volume ${opts.volumeId}: ${chosen.map((m) => m.name).join(', ')}; refusing to guess`,
    );
  }
  if (chosen.length === 0) return null;
  const { name, serial } = chosen[0];
  const real = await resolveBlockDevice(path.join(opts.deviceRoot, name));
  if (!real) return null;
  // The device node must be the very disk sysfs described, not a stale node that reuses its name.
  const sysDev = await readTrimmed(path.join(opts.sysfsRoot, 'block', name, 'dev'));
  if (sysDev !== null && sysDev !== (await deviceNumber(real))) {
    opts.log.warn({ name, sysDev, device: real }, 'device node does not match sysfs; ignoring it');
    return null;
  }
  return { path: real, evidence: `sysfs serial ${serial} of ${name}` };
}

/**
 * Whether the disk at device node `device` names, by its serial, a volume
 * other than `volumeId`: a record of ours whose disk has since been detached
 * and another volume attached under the same name and number. False when it
 * cannot tell (no serial: loop devices, some buses).
 */
export async function diskNamesAnotherVolume(device: string, volumeId: string, sysfsRoot: string): Promise<boolean> {
  const serial = await readSerial(sysfsRoot, path.basename(device));
  return serial !== null && !serialMatches(serial, volumeId);
}

/**
 * What says that disk `name` (e.g. 'vdb') is a Cinder volume's: its serial
 * (sysfs), or a by-id link udev made for a volume's serial that leads to it
 * (what discovery goes by where sysfs shows no serial, as for loop devices and
 * virtio-scsi disks); null when nothing does. Nova gives a serial only to the
 * disks of volumes.
 */
export async function volumeEvidence(name: string, deviceRoot: string, sysfsRoot: string): Promise<string | null> {
  const serial = await readSerial(sysfsRoot, name);
  if (serial !== null && isVolumeSerial(serial)) return `serial ${serial}`;
  const byIdDir = path.join(deviceRoot, 'disk', 'by-id');
  const links = await readdir(byIdDir).catch(() => [] as string[]);
  // Only links whose serial part is a volume ID: virtio-scsi names an image or ephemeral disk
  // scsi-0QEMU_QEMU_HARDDISK_drive-scsi0-0-0-1, which is no volume.
  const volumeLinks = links.filter((l) => VOLUME_LINK_PREFIXES.some((prefix) => l.startsWith(prefix) && isVolumeSerial(l.slice(prefix.length))));
  for (const link of volumeLinks) {
    const real = await realpath(path.join(byIdDir, link)).catch(() => null);
    if (real !== null && path.basename(real) === name) return `by-id link ${link}`;
  }
  return null;
}

/** The by-id link names byIdLinkNames makes, up to the serial. */
const VOLUME_LINK_PREFIXES = ['virtio-', 'scsi-0QEMU_QEMU_HARDDISK_'];

async function readSerial(sysfsRoot: string, name: string): Promise<string | null> {
  const dir = path.join(sysfsRoot, 'block', name);
  return (await readTrimmed(path.join(dir, 'serial'))) ?? (await readTrimmed(path.join(dir, 'device', 'serial')));
}

async function readTrimmed(file: string): Promise<string | null> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    return value === '' ? null : value;
  } catch {
    return null;
  }
}

/** Follow links to the real device node; null unless it is a block device. */
export async function resolveBlockDevice(p: string): Promise<string | null> {
  try {
    await lstat(p);
    const real = await realpath(p);
    return (await isBlockDevice(real)) ? real : null;
  } catch {
    return null;
  }
}

/** FAILED_PRECONDITION when the volume's device is in use by anything but this volume (foreignUse). */
export async function refuseForeignUse(found: FoundDevice, volumeId: string, own: Ownership, signal?: AbortSignal): Promise<void> {
  const foreign = await foreignUse(found.path, own, signal);
  if (foreign) {
    throw failedPrecondition(`device ${found.path} of volume ${volumeId} (${found.evidence}) is in use elsewhere: ${foreign}; refusing to use it`);
  }
}

/**
 * Why `device` is in use by something other than this volume, or null.
 * Filesystem mounts of the device: ours when one of them is at one of our
 * targets (the others are then binds of it, our publishes). Device nodes bound
 * onto files (raw block publishes): each must be one of our targets, or
 * kubelet's map of one of them (isKubeletBlockMap). Holders (device-mapper,
 * md): never ours.
 */
export async function foreignUse(device: string, own: Ownership, signal?: AbortSignal): Promise<string | null> {
  const [majMin, mounts] = await Promise.all([deviceNumber(device), listMounts(signal)]);
  const fsMounts = mounts.ofDevice(majMin);
  if (fsMounts.length > 0 && !fsMounts.some((m) => own.ownTargets.has(m.target))) {
    return `mounted at ${fsMounts.map((m) => m.target).join(', ')}`;
  }
  const nodeBinds = await deviceNodeBinds(mounts, majMin);
  const foreignBinds = nodeBinds.filter((m) => !own.ownTargets.has(m.target) && !isKubeletBlockMap(m.target, own.kubeletRoot));
  if (foreignBinds.length > 0) return `bound onto ${foreignBinds.map((m) => m.target).join(', ')}`;
  try {
    const holders = await readdir(path.join(own.sysfsRoot, 'block', path.basename(device), 'holders'));
    if (holders.length > 0) return `held by ${holders.join(', ')}`;
  } catch {
    // no holders directory: nothing holds it
  }
  return null;
}

/**
 * Whether `target` is where kubelet maps a raw block volume for a pod:
 * <kubelet-root>/plugins/kubernetes.io/csi/volumeDevices/<pv>/dev/<podUID>.
 * After our NodePublishVolume, kubelet's MapBlockVolume binds the published
 * device file there (and keeps a loop device open on it), so every published
 * raw block volume has one such bind per pod, of the very disk we published.
 */
export function isKubeletBlockMap(target: string, kubeletRoot: string): boolean {
  const root = path.join(kubeletRoot, 'plugins', 'kubernetes.io', 'csi', 'volumeDevices');
  const rel = path.relative(root, target);
  const parts = rel.split(path.sep);
  return parts.length === 3 && parts[0] !== '..' && parts[1] === 'dev';
}

/** Mounts that are a device node (of `majMin`) bound onto a file: what a raw block publish looks like. */
export async function deviceNodeBinds(mounts: MountTable, majMin: string): Promise<MountEntry[]> {
  // Device nodes live on devtmpfs (tmpfs in some containers); stat-ing other mounts could hang on a dead NFS server.
  const candidates = [...mounts.bindsOfType('devtmpfs'), ...mounts.bindsOfType('tmpfs')];
  const isBind = await Promise.all(
    candidates.map(async (m) => {
      try {
        const st = await stat(m.target, { bigint: true });
        return st.isBlockDevice() && formatDeviceNumber(st.rdev) === majMin;
      } catch {
        return false; // gone or unreadable: not a bind of this device
      }
    }),
  );
  return candidates.filter((_, i) => isBind[i]);
}

let udevadmUsable: boolean | undefined;

/**
 * A change event for whole disks on the buses Nova attaches volumes to
 * (virtio-blk, SCSI, NVMe, Xen), the only devices a new volume can be: not
 * for every block device, which on a busy node would re-run udev's rules
 * (and its blkid probe) for every partition, loop and device-mapper device
 * at every poll.
 */
export const UDEV_TRIGGER_ARGS = [
  'trigger',
  '--action=change',
  '--subsystem-match=block',
  '--property-match=DEVTYPE=disk',
  '--sysname-match=vd*',
  '--sysname-match=sd*',
  '--sysname-match=nvme*',
  '--sysname-match=xvd*',
];

/**
 * Nudge the kernel and udev between polls: a SCSI host rescan finds LUNs the
 * hypervisor added without an event; udevadm trigger/settle makes the by-id
 * links. Failures are logged, never fatal: the next poll looks again.
 */
async function rescan(sysfsRoot: string, signal: AbortSignal, log: Logger): Promise<void> {
  const hostsDir = path.join(sysfsRoot, 'class', 'scsi_host');
  let hosts: string[] = [];
  try {
    hosts = await readdir(hostsDir);
  } catch {
    // no SCSI hosts (virtio-blk only)
  }
  for (const host of hosts) {
    await writeFile(path.join(hostsDir, host, 'scan'), '- - -').catch((err: Error) =>
      log.debug({ host, err: err.message }, 'SCSI rescan failed'),
    );
  }
  if (udevadmUsable === undefined) udevadmUsable = (await which('udevadm')) !== null;
  if (!udevadmUsable) return;
  try {
    await run('udevadm', UDEV_TRIGGER_ARGS, { timeoutMs: 10_000, signal });
    await run('udevadm', ['settle', '--timeout=5'], { timeoutMs: 10_000, signal });
  } catch (err) {
    if (signal.aborted) throw err;
    // Without a running udevd (some containers) udevadm fails every time; stop asking.
    udevadmUsable = false;
    log.info({ err: (err as Error).message }, 'udevadm does not work here; relying on sysfs serials');
  }
}
