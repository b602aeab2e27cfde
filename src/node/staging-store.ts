// Raw block staging leaves no mount to find later, so we remember it: one
// small JSON file per volume under the state directory, replaced atomically.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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

  async put(record: BlockStaging): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(record.volumeId);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, file);
  }

  async remove(volumeId: string): Promise<void> {
    await rm(this.file(volumeId), { force: true });
  }
}
