// Files the config names (CA bundles, client certificates and keys). The
// OpenStack client reads them only when it builds a cloud's HTTPS agent, long
// after the config was accepted; a missing one would then stop the driver with
// a bare ENOENT and exit 1. Checking here turns it into the config error the
// README promises: one line naming the key and the path, exit 2.
import { accessSync, constants, statSync } from 'node:fs';
import { ConfigError } from './reader';

/**
 * Throw a ConfigError unless `file` is a regular file this process can read.
 * `what` names where the path came from, e.g. "'clouds.east.cacert' in /etc/cinder-csi/cloud.yaml".
 */
export function requireReadableFile(file: string, what: string): void {
  let problem: string | undefined;
  try {
    if (!statSync(file).isFile()) problem = 'is not a regular file';
    else accessSync(file, constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    problem = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(e)})`;
  }
  if (problem) throw new ConfigError(`${what} names ${file}, which ${problem}`);
}
