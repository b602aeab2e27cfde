// Structured logging. Every line is pino JSON; secrets never reach the output.
//
// Two layers keep secrets out: `scrub` replaces the value of every key that
// names a secret (at any depth) before we log an object, and pino's own
// `redact` paths catch the same keys at the top levels if a caller forgets.
import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const REDACTED = '[REDACTED]';

/** Key names whose values are secrets, compared case-insensitively. */
const SECRET_KEYS = new Set([
  'secrets',
  'password',
  'api_key',
  'apikey',
  'token',
  'auth_token',
  'x-auth-token',
  'x-subject-token',
  'application_credential_secret',
  'secret',
  'os_password',
  'os_token',
  'os_application_credential_secret',
  'client_key',
  'key',
]);

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

/** A deep copy of `value` in which every secret-named key's value is replaced. */
export function scrub(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  // Too deep to walk: a placeholder, never the unscrubbed subtree.
  if (depth > 12) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = isSecretKey(k) ? REDACTED : scrub(v, depth + 1);
  }
  return out;
}

const REDACT_PATHS = [...SECRET_KEYS]
  .filter((k) => /^[a-z_]+$/.test(k))
  .flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stdout when absent. Tests pass a stream to capture them. */
  destination?: pino.DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? { name: 'cinder-csi' },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing, for library users and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
