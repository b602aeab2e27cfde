// Structured logging. Every line is pino JSON; secrets never reach the output.
//
// Two layers keep secrets out: `scrub` replaces the value of every key that
// names a secret (at any depth) before we log an object, and the logger
// itself scrubs every logged object that still holds a secret-named key (at
// any depth) if a caller forgets; pino's `redact` covers the same keys in
// child bindings. Wildcard redact paths are not used: pino's redactor clones
// and re-parses its paths on every line, which was half of everything the
// controller allocated under load (bench figure 2).
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

/** Top-level keys only: pino censors those by key, with no per-line cloning. */
const REDACT_PATHS = [...SECRET_KEYS].filter((k) => /^[a-z_]+$/.test(k));

/**
 * Whether a logged object holds a secret-named key anywhere (or is too deep to
 * tell). Walks without allocating, so the common case costs no garbage.
 */
export function holdsSecret(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (depth > 12) return true;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (holdsSecret(v, depth + 1)) return true;
    return false;
  }
  const obj = value as Record<string, unknown>;
  for (const k in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
    if (isSecretKey(k) || holdsSecret(obj[k], depth + 1)) return true;
  }
  return false;
}

/** The object a log line is made of, with secrets replaced; itself when it holds none. */
function redactLogObject(obj: Record<string, unknown>): Record<string, unknown> {
  if (!holdsSecret(obj)) return obj;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    // An Error keeps its message and stack (not own enumerable properties, so scrub would drop them).
    out[k] = isSecretKey(k) ? REDACTED : v instanceof Error ? errorView(v) : scrub(v, 1);
  }
  return out;
}

function errorView(e: Error): Record<string, unknown> {
  return { ...(scrub({ ...e }, 1) as Record<string, unknown>), type: e.name, message: e.message, stack: e.stack };
}

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
      formatters: { level: (label) => ({ level: label }), log: redactLogObject },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing, for library users and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
