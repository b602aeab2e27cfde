// Which instance this node is: an explicit override, else the config drive
// (the filesystem labelled config-2), else the metadata service, in a
// configurable order. The answer never changes for a running instance, so
// it is looked up once per process.
import { constants } from 'node:fs';
import { access, lstat, mkdtemp, open, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from '../log';
import { CommandError, run } from '../util/exec';
import { OpenStackError } from './errors';
import { getMetadataJson } from './metadata-http';
import { raceSignal } from './race-signal';
import { sleep } from './retry';
import type { CallOptions, InstanceIdentity } from './types';
import { isVolumeSerial } from '../util/volume-serial';

export type IdentitySource = 'configDrive' | 'metadataService';

export interface InstanceMetadataOptions {
  order: IdentitySource[];
  /** Default http://169.254.169.254. */
  metadataUrl?: string;
  override?: { instanceId?: string; availabilityZone?: string };
  logger: Logger;
  /** The metadata service's timeout for the first attempt; each further attempt doubles it, up to 10 s. */
  timeoutMs?: number;
  attempts?: number;
  /** Where sysfs is (default /sys): a labelled filesystem on a Cinder volume's disk is not the config drive. */
  sysfsRoot?: string;
}

export interface InstanceMetadata {
  identity(opts?: CallOptions): Promise<InstanceIdentity>;
}

interface MetaData {
  uuid?: string;
  availability_zone?: string;
  name?: string;
  hostname?: string;
}

export const META_DATA_PATH = 'openstack/latest/meta_data.json';

export function identityFromMetaData(md: MetaData, source: InstanceIdentity['source']): InstanceIdentity {
  if (!md.uuid) throw new OpenStackError('bad_request', `meta_data.json from the ${source} has no uuid`);
  return { instanceId: md.uuid, availabilityZone: md.availability_zone || null, name: md.name ?? md.hostname ?? null, source };
}

/**
 * The labels a config drive has. Nova writes `config-2`; on vfat, mkfs.vfat
 * from some dosfstools versions (CentOS/RHEL 7) writes it uppercase, and blkid
 * compares labels case-sensitively (cloud-init looks for both since 18.1,
 * LP #1598783).
 */
export const CONFIG_DRIVE_LABELS = ['config-2', 'CONFIG-2'] as const;

/**
 * The device of the config drive, or null when no filesystem carries its
 * label, or more than one does.
 *
 * A Cinder volume attached to this node can hold a filesystem labelled
 * config-2 too (a disk image of another VM, say), and its meta_data.json would
 * name another instance. Nova gives a disk a serial only when it is a volume
 * (the volume ID), never the config drive, so a labelled filesystem on a disk
 * whose serial is a volume ID is passed over. When more than one of the rest
 * is labelled, none is trusted and the next source (the metadata service)
 * decides.
 */
export async function findConfigDrive(signal?: AbortSignal, logger?: Logger, sysfsRoot = '/sys'): Promise<string | null> {
  const devices: string[] = [];
  for (const label of CONFIG_DRIVE_LABELS) {
    // -c /dev/null: probe the devices now rather than trust blkid's cache file,
    // whose entries younger than two seconds are not checked again.
    const found = await run('blkid', ['-c', '/dev/null', '-t', `LABEL=${label}`, '-o', 'device'], { timeoutMs: 10_000, signal, okCodes: [2] });
    for (const line of found.stdout.split('\n')) if (line.trim() && !devices.includes(line.trim())) devices.push(line.trim());
  }
  const candidates: string[] = [];
  for (const device of devices) {
    const serial = await volumeSerialOf(device, sysfsRoot);
    if (serial === null) candidates.push(device);
    else logger?.warn({ device, serial }, 'a filesystem labelled as a config drive is on a Cinder volume; not reading it as this node\'s identity');
  }
  if (candidates.length > 1) {
    logger?.warn({ devices: candidates }, 'more than one filesystem is labelled as a config drive; trusting none of them');
    return null;
  }
  return candidates[0] ?? null;
}

/**
 * The serial of the disk holding `device` (the disk itself, or the disk a
 * partition is on) when it is a volume ID, else null. virtio-blk shows the
 * serial in `serial`; SCSI disks (virtio-scsi) in VPD page 0x80, whose first
 * four bytes are a header.
 */
async function volumeSerialOf(device: string, sysfsRoot: string): Promise<string | null> {
  let disk: string;
  try {
    disk = await realpath(path.join(sysfsRoot, 'class', 'block', path.basename(device)));
  } catch {
    return null;
  }
  if (await exists(path.join(disk, 'partition'))) disk = path.dirname(disk);
  for (const [file, skip] of [['serial', 0], [path.join('device', 'serial'), 0], [path.join('device', 'vpd_pg80'), 4]] as const) {
    const bytes = await readFile(path.join(disk, file)).catch(() => null);
    if (!bytes || bytes.length <= skip) continue;
    const serial = bytes.subarray(skip).toString('latin1').replace(/\0/g, '').trim();
    if (serial) return isVolumeSerial(serial) ? serial : null;
  }
  return null;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * Options of our mount of the drive, whatever else: nothing on it runs or acts
 * as a device, and no set-user-ID bit counts (the plugin is privileged; the
 * drive's files are only read, but the mount is visible to the node while it
 * is there). They are flags of this mount point, not of the filesystem, so
 * they apply on a filesystem mounted read-write elsewhere too.
 */
const CONFIG_DRIVE_MOUNT_OPTIONS = ['nosuid', 'nodev', 'noexec'];

/**
 * Mount the drive read-only at `dir`. A drive someone has already mounted
 * read-write (a vfat one mounted by hand or by fstab, in this mount namespace
 * or the host's) cannot be mounted again read-only: the kernel refuses to
 * change the read-only state of a filesystem in use (EBUSY, "already mounted").
 * Then it is mounted with the flags it has, which shares the existing mount's
 * filesystem and changes nothing on the drive; we only read from it.
 */
async function mountConfigDrive(device: string, dir: string, logger: Logger, signal?: AbortSignal): Promise<void> {
  try {
    await run('mount', ['-o', ['ro', ...CONFIG_DRIVE_MOUNT_OPTIONS].join(','), device, dir], { timeoutMs: 30_000, signal });
  } catch (err) {
    if (!(err instanceof CommandError) || !/already mounted|busy/i.test(err.stderr)) throw err;
    logger.debug({ device, err: err.message }, 'the config drive is mounted read-write elsewhere; mounting it as it is');
    await run('mount', ['-o', CONFIG_DRIVE_MOUNT_OPTIONS.join(','), device, dir], { timeoutMs: 30_000, signal });
  }
}

/**
 * meta_data.json of the drive mounted at `dir`. Nothing on the drive leads
 * out of it: a symlink as openstack/, latest/ or the file itself (Nova's drives
 * hold none; a filesystem labelled config-2 by anyone else can) is refused, and
 * the file is opened with O_NOFOLLOW. A file that is not a JSON object is
 * refused without quoting it (V8's message quotes its start): it may hold anything.
 */
async function readMetaData(dir: string, device: string): Promise<MetaData> {
  const refuse = (what: string) => new OpenStackError('bad_request', `${what} on the config drive ${device} is a symlink; it is not followed`);
  const parts = META_DATA_PATH.split('/');
  for (let i = 1; i < parts.length; i++) {
    if ((await lstat(path.join(dir, ...parts.slice(0, i)))).isSymbolicLink()) throw refuse(`${parts.slice(0, i).join('/')}/`);
  }
  let text: string;
  try {
    const file = await open(path.join(dir, META_DATA_PATH), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      text = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw refuse(META_DATA_PATH);
    throw err;
  }
  let md: unknown;
  try {
    md = JSON.parse(text);
  } catch {
    md = undefined;
  }
  if (typeof md !== 'object' || md === null || Array.isArray(md)) {
    throw new OpenStackError('bad_request', `${META_DATA_PATH} on the config drive ${device} is not a JSON object (${Buffer.byteLength(text)} bytes)`);
  }
  return md as MetaData;
}

/** Mount the config drive read-only in a private directory, read meta_data.json, unmount. */
export async function readConfigDrive(logger: Logger, signal?: AbortSignal, sysfsRoot = '/sys'): Promise<InstanceIdentity> {
  const device = await findConfigDrive(signal, logger, sysfsRoot);
  if (!device) {
    throw new OpenStackError('not_found', `no config drive (no filesystem, or more than one, labelled ${CONFIG_DRIVE_LABELS.join(' or ')} outside Cinder volumes)`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'cinder-csi-configdrive-'));
  try {
    await mountConfigDrive(device, dir, logger, signal);
    try {
      const md = await readMetaData(dir, device);
      logger.debug({ device }, 'read instance identity from the config drive');
      return identityFromMetaData(md, 'config-drive');
    } finally {
      await run('umount', [dir], { timeoutMs: 30_000 }).catch((err: Error) =>
        logger.warn({ dir, err: err.message }, 'could not unmount the config drive'),
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function readMetadataService(
  baseUrl: string,
  timeoutMs: number,
  attempts: number,
  logger: Logger,
  signal?: AbortSignal,
): Promise<InstanceIdentity> {
  let lastErr: unknown;
  for (let i = 1; i <= attempts; i++) {
    try {
      // Each attempt waits twice as long as the one before, up to 10 s (cloud-init's
      // timeout for the metadata service): a service that always answers in more
      // than timeoutMs (a busy neutron metadata proxy) is still heard.
      const attemptTimeoutMs = Math.min(timeoutMs * 2 ** (i - 1), Math.max(timeoutMs, 10_000));
      const body = await getMetadataJson(`${baseUrl.replace(/\/+$/, '')}/${META_DATA_PATH}`, attemptTimeoutMs, signal);
      if (typeof body !== 'object' || body === null) throw new OpenStackError('bad_request', 'meta_data.json is not JSON');
      return identityFromMetaData(body as MetaData, 'metadata-service');
    } catch (err) {
      lastErr = err;
      if (signal?.aborted || (err instanceof OpenStackError && err.kind === 'not_found')) break;
      logger.debug({ attempt: i, err: (err as Error).message }, 'metadata service did not answer');
      if (i < attempts) await sleep(200 * i, signal).catch(() => undefined);
    }
  }
  throw lastErr;
}

export function createInstanceMetadata(opts: InstanceMetadataOptions): InstanceMetadata {
  let cached: Promise<InstanceIdentity> | null = null;
  const baseUrl = opts.metadataUrl ?? 'http://169.254.169.254';

  const lookup = async (): Promise<InstanceIdentity> => {
    const o = opts.override;
    if (o?.instanceId) return { instanceId: o.instanceId, availabilityZone: o.availabilityZone ?? null, name: null, source: 'override' };
    const failures: string[] = [];
    for (const source of opts.order) {
      try {
        const id =
          source === 'configDrive'
            ? await readConfigDrive(opts.logger, undefined, opts.sysfsRoot)
            : // The metadata service is plain HTTP on a link-local address; a short
              // timeout keeps a node off OpenStack from hanging at start.
              await readMetadataService(baseUrl, opts.timeoutMs ?? 2_000, opts.attempts ?? 3, opts.logger);
        // An override of only the zone still applies to a looked-up instance.
        return o?.availabilityZone ? { ...id, availabilityZone: o.availabilityZone } : id;
      } catch (err) {
        failures.push(`${source}: ${(err as Error).message}`);
      }
    }
    throw new OpenStackError('not_found', `could not find this instance's identity (${failures.join('; ') || 'no source configured'})`);
  };

  return {
    identity(callOpts: CallOptions = {}) {
      if (!cached) {
        cached = lookup();
        // A failure is not cached: the next call tries again.
        cached.catch(() => {
          cached = null;
        });
      }
      return raceSignal(cached, callOpts.signal, "this instance's identity");
    },
  };
}

