// Raw block staging leaves no mount to find later, so we remember it: one
// small JSON file per volume under the state directory, replaced atomically.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { isMissing } from './paths';

export interface BlockStaging {
  volumeId: string;
  /** The real device node found at stage time. */
  device: string;
  /** "major:minor" of that device, to notice a different disk reusing the name. */
  majMin: string;
  stagingPath: string;
  /** Target files the device is bound onto (NodePublishVolume). */
  targets: PublishedTarget[];
}

export interface PublishedTarget {
  path: string;
  /** The read-only loop device bound at `path` instead of the disk, for a read-only publish. */
  readOnlyView: string | null;
}

export class StagingStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'block-staging');
  }

  /** Volume IDs are request input: hash them into a safe, fixed-length file name. */
  private file(volumeId: string): string {
    return path.join(this.dir, `${createHash('sha256').update(volumeId).digest('hex')}.json`);
  }

  async get(volumeId: string): Promise<BlockStaging | null> {
    try {
      const record = JSON.parse(await readFile(this.file(volumeId), 'utf8')) as BlockStaging;
      return record.volumeId === volumeId ? record : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /**
   * Replace the record: written to a temporary file and flushed to disk before
   * the rename, and the directory flushed after it, so a node that loses power
   * has the old record or the new one, never an empty file. A failed write
   * leaves no temporary file behind. The temporary file's name is fixed (one
   * writer per volume: InFlight in this process, and one plugin per node), so
   * the next write or remove replaces one that a killed plugin left.
   */
  async put(record: BlockStaging): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(record.volumeId);
    const tmp = `${file}.tmp`;
    try {
      const handle = await open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(JSON.stringify(record, null, 2));
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async remove(volumeId: string): Promise<void> {
    const file = this.file(volumeId);
    await rm(file, { force: true });
    await rm(`${file}.tmp`, { force: true });
  }
}
