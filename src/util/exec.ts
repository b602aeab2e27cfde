// Run a local command. Always execFile with an argument array: no shell ever
// sees a path or a volume ID that came from a request.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';

export interface RunOptions {
  /** Kill the command after this long. Every command has a bound. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Bytes written to the command's standard input. */
  input?: string;
  /** Exit codes that are not failures (0 always is). */
  okCodes?: number[];
  /** The command's whole environment; commandEnv() unless given. */
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly code: number | string | null,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    const what = timedOut ? 'timed out' : `exited with ${code}`;
    const detail = stderr.trim().split('\n').slice(-3).join(' | ');
    super(`${command} ${what}${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
  }
}

/**
 * The Debian package of each command the driver runs, for the message that
 * says one is missing from the node's image.
 */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.ext3': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  blkid: 'util-linux',
  wipefs: 'util-linux',
  losetup: 'mount',
  blockdev: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  sfdisk: 'fdisk',
  udevadm: 'udev',
  sync: 'coreutils',
};

/** What else a request may ask for when a mkfs is missing. */
const MKFS_INSTEAD: Readonly<Record<string, string>> = {
  'mkfs.xfs': 'fsType ext4',
  'mkfs.ext4': 'fsType xfs',
  'mkfs.ext3': 'fsType ext4 or xfs',
};

/**
 * The command was never run: it is not on PATH (spawn failed with ENOENT).
 * Not a bug of the driver but of the node's image, and no retry mends it.
 */
export class CommandNotFoundError extends CommandError {
  /** The Debian package that holds the command, when known. */
  readonly package: string | undefined;

  constructor(command: string, args: readonly string[]) {
    super(command, args, 'ENOENT', '', false);
    this.name = 'CommandNotFoundError';
    this.package = TOOL_PACKAGES[command];
    const instead = MKFS_INSTEAD[command];
    this.message =
      `${command} is not installed on this node${this.package ? ` (Debian package ${this.package})` : ''}; ` +
      `use an image that has it${instead ? `, or ${instead}` : ''}`;
  }
}

/**
 * What a command sees of the environment: PATH and the C locale, nothing else.
 * The locale keeps output and messages that are parsed or logged the same on
 * every node (and no locale files load). A pod's environment (Kubernetes'
 * service-link variables, proxies, credentials) has no business in mkfs or
 * mount, and copying it costs every spawn.
 */
export function commandEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
}

export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args as string[],
      { timeout, signal: opts.signal, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? commandEnv(), encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
        const code = typeof e.code === 'number' ? e.code : null;
        if (code !== null && opts.okCodes?.includes(code)) return resolve({ stdout, stderr, code });
        // Not found on PATH: the program never ran (execFile's spawn failure has a string code and a syscall).
        if (e.code === 'ENOENT' && (e as { syscall?: string }).syscall === `spawn ${command}`) return reject(new CommandNotFoundError(command, args));
        const timedOut = e.killed === true && e.signal === 'SIGTERM' && !opts.signal?.aborted;
        reject(new CommandError(command, args, e.code ?? null, stderr || e.message, timedOut));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The absolute path of `command` on PATH, or null (used to skip optional tools such as udevadm). */
export async function which(command: string): Promise<string | null> {
  const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  for (const dir of [...dirs, '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Whether run() would find `command`: on the PATH it gives commands (commandEnv), and nowhere else. */
export async function onPath(command: string): Promise<boolean> {
  for (const dir of (commandEnv().PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      await access(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}
