// What is on a block device. Formatting is only ever allowed on a device that
// every probe calls blank, so each probe looks at the disk itself, not at
// udev's database (which may be stale or absent in a container):
// - `blkid -p` reads the superblocks and the partition table directly;
// - `wipefs --no-act` lists every signature libblkid knows (RAID, LVM, LUKS, swap, ...);
// - sysfs lists partitions the kernel has already found.
import { readdir, access } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';

export interface DeviceContents {
  /** Filesystem type (TYPE with USAGE=filesystem), e.g. 'ext4', or null. */
  filesystem: string | null;
  /** Partition table type (PTTYPE), e.g. 'dos' or 'gpt', or null. */
  partitionTable: string | null;
  /** Every other signature found (swap, LVM2_member, crypto_LUKS, ...). */
  otherSignatures: string[];
  /** Partitions the kernel lists under the device in sysfs. */
  partitions: string[];
  /** blkid found several conflicting signatures. */
  ambivalent: boolean;
}

/** blkid exit codes: 2 means nothing was found, 8 an ambivalent result (several signatures). */
const BLKID_NOTHING_FOUND = 2;
const BLKID_AMBIVALENT = 8;

export async function probeDevice(device: string, sysfsRoot: string, signal?: AbortSignal): Promise<DeviceContents> {
  const contents: DeviceContents = { filesystem: null, partitionTable: null, otherSignatures: [], partitions: [], ambivalent: false };

  const blkid = await run('blkid', ['-p', '-o', 'export', '--', device], {
    signal,
    okCodes: [BLKID_NOTHING_FOUND, BLKID_AMBIVALENT],
  });
  contents.ambivalent = blkid.code === BLKID_AMBIVALENT;
  const tags = parseExport(blkid.stdout);
  if (tags.PTTYPE) contents.partitionTable = tags.PTTYPE;
  if (tags.TYPE) {
    if (tags.USAGE === 'filesystem') contents.filesystem = tags.TYPE;
    else contents.otherSignatures.push(tags.TYPE);
  }

  const wipefs = await run('wipefs', ['--no-act', '--json', '--', device], { signal });
  for (const sig of parseWipefs(wipefs.stdout)) {
    if (sig !== contents.filesystem && sig !== contents.partitionTable && !contents.otherSignatures.includes(sig)) {
      contents.otherSignatures.push(sig);
    }
  }

  contents.partitions = await sysfsPartitions(path.basename(device), sysfsRoot);
  return contents;
}

/** True only when no probe found anything at all. */
export function isBlank(c: DeviceContents): boolean {
  return (
    !c.ambivalent && c.filesystem === null && c.partitionTable === null && c.otherSignatures.length === 0 && c.partitions.length === 0
  );
}

export function describeContents(c: DeviceContents): string {
  const parts: string[] = [];
  if (c.filesystem) parts.push(`a ${c.filesystem} filesystem`);
  if (c.partitionTable) parts.push(`a ${c.partitionTable} partition table`);
  if (c.partitions.length) parts.push(`partitions ${c.partitions.join(', ')}`);
  if (c.otherSignatures.length) parts.push(`signatures ${c.otherSignatures.join(', ')}`);
  if (c.ambivalent) parts.push('conflicting signatures');
  return parts.length ? parts.join(', ') : 'nothing';
}

function parseExport(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function parseWipefs(stdout: string): string[] {
  if (!stdout.trim()) return [];
  const parsed = JSON.parse(stdout) as { signatures?: { type?: string }[] };
  return (parsed.signatures ?? []).map((s) => s.type ?? 'unknown');
}

/** Partition directories (those holding a 'partition' file) under <sysfsRoot>/block/<name>. */
async function sysfsPartitions(name: string, sysfsRoot: string): Promise<string[]> {
  const dir = path.join(sysfsRoot, 'block', name);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries.filter((e) => e.startsWith(name))) {
    try {
      await access(path.join(dir, entry, 'partition'));
      found.push(entry);
    } catch {
      // not a partition
    }
  }
  return found;
}
