// Structured logging. Every line is pino JSON; secrets never reach the output.
//
// Three layers keep secrets out: `scrub` replaces the value of every key that
// names a secret (at any depth) before we log an object; the logger itself
// scrubs every logged object, and every child's bindings, that still holds a
// secret-named key (at any depth) if a caller forgets; and the finished line
// loses the credentials of any URL in it (http://user:password@proxy), in the
// message and in error messages too. pino's `redact` stays underneath with
// plain top-level paths only: its wildcard paths clone and re-parse on every
// line, which was half of everything the controller allocated under load
// (bench figure 2), and its plain paths reach neither nested keys nor names
// with '-', which is why it is not the main net.
import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const REDACTED = '[REDACTED]';

/**
 * A key names a secret when, lower-cased and without '-' and '_', it holds one
 * of these words: password, OS_PASSWORD, X-Auth-Token, x-subject-token,
 * application_credential_secret and applicationCredentialSecret,
 * Proxy-Authorization, Set-Cookie, the CSI `secrets` map...
 */
const SECRET_WORDS = ['password', 'passwd', 'passphrase', 'secret', 'token', 'apikey', 'authkey', 'authorization', 'cookie', 'credential', 'privatekey'];
/** Secrets only as the whole name: as a part of one, 'key' is in too many harmless names (sortkey). */
const SECRET_NAMES = new Set(['key', 'clientkey']);
/** Names with a secret word in them that hold no secret: CSI's paging positions. */
const NOT_SECRET_NAMES = new Set(['startingtoken', 'nexttoken']);

/** Top-level names pino's redact censors as well: the secrets our own code logs under, spelled as it spells them. */
const PINO_REDACT_PATHS = ['secrets', 'password', 'token', 'secret', 'api_key', 'apiKey', 'applicationCredentialSecret', 'authorization'] as const;

/** Each key's verdict, as keys repeat on every line. Bounded: a request's own maps can bring endless new keys. */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 4096;

export function isSecretKey(key: string): boolean {
  let secret = verdicts.get(key);
  if (secret === undefined) {
    const name = key.toLowerCase().replace(/[-_]/g, '');
    secret = SECRET_NAMES.has(name) || (!NOT_SECRET_NAMES.has(name) && SECRET_WORDS.some((word) => name.includes(word)));
    if (verdicts.size < MAX_VERDICTS) verdicts.set(key, secret);
  }
  return secret;
}

/**
 * A URL's credentials in a finished JSON line: scheme://, then everything up to
 * the last '@' before the host (a password may hold '@'). Never across a '"'
 * (the end of a JSON string), so the line stays JSON; a credential written with
 * a '"' in it is beyond this, and a URL with credentials has it percent-encoded.
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s"/?#]*@/gi;

/** `text` with the credentials of every URL in it replaced. Cheap when there is no URL: one indexOf. */
export function scrubUrlCredentials(text: string): string {
  if (text.indexOf('://') === -1) return text;
  return text.replace(URL_CREDENTIALS, `$1${REDACTED}@`);
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
  const logger = pino(
    {
      level: opts.level ?? 'info',
      base: opts.base ?? { name: 'cinder-csi' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactLogObject },
      // pino's own redaction as a last net under the one above, by plain top-level names only:
      // those cost no per-line cloning (wildcard paths do; see the header).
      redact: { paths: [...PINO_REDACT_PATHS], censor: REDACTED },
      hooks: { streamWrite: scrubUrlCredentials },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  // A child's bindings are written into each of its lines as they are, without formatters.log
  // (pino's formatters.bindings reaches the root's only): scrubbed here, once per child. Every
  // child and grandchild inherits this child(), as pino makes them from their parent.
  const pinoChild = logger.child;
  logger.child = function child<C extends string = never>(this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions<C>): pino.Logger<C> {
    return Reflect.apply(pinoChild, this, [redactLogObject(bindings), options]);
  };
  return logger;
}

/** A logger that writes nothing, for library users and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
