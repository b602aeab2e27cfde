// A small typed reader over parsed YAML that remembers which keys it was asked
// for, so that every unknown or misspelled key can be reported by its full
// dotted path. Used only by config.ts.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Plain = Record<string, unknown>;

/**
 * How a message names a key, given its dotted path: by default `'path' in source`.
 * A config translated from another format (cloud.conf) names the key as the user
 * wrote it instead, so that a message points at their file, not at our YAML.
 */
export type KeyDescriber = (path: string) => string;

export function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const YAML_NUMBER = /^[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+)$/;

export class Section {
  private readonly seen = new Set<string>();

  constructor(
    private readonly data: Plain,
    /** Dotted path of this section, '' at the top. */
    readonly path: string,
    /** Where the values came from, for messages ('/etc/cinder-csi/cloud.yaml'). */
    readonly source: string,
    private readonly describe: KeyDescriber = (p) => `'${p}' in ${source}`,
  ) {}

  static of(value: unknown, path: string, source: string, describe?: KeyDescriber): Section {
    const section = new Section(isPlainObject(value) ? value : {}, path, source, describe);
    if (value !== undefined && value !== null && !isPlainObject(value)) throw new ConfigError(`${section.describe(path)} must be a mapping`);
    return section;
  }

  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** The key as messages name it: `'dataset.region' in /etc/cinder-csi/cloud.yaml`. */
  where(key: string): string {
    return this.describe(this.keyPath(key));
  }

  has(key: string): boolean {
    this.seen.add(key);
    return this.data[key] !== undefined && this.data[key] !== null;
  }

  private fail(key: string, what: string): never {
    throw new ConfigError(`${this.where(key)} ${what}`);
  }

  string(key: string): string | undefined {
    this.seen.add(key);
    const v = this.data[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') this.fail(key, `must be a string, not ${describe(v)}`);
    return v;
  }

  requiredString(key: string, why = ''): string {
    const v = this.string(key);
    if (v === undefined || v === '') this.fail(key, `is required${why ? ` ${why}` : ''}`);
    return v;
  }

  bool(key: string): boolean | undefined {
    this.seen.add(key);
    const v = this.data[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    // YAML 1.1's spellings too: openstacksdk reads clouds.yaml with PyYAML, where `verify: no` is false.
    if (typeof v === 'string' && /^(true|yes|on)$/i.test(v)) return true;
    if (typeof v === 'string' && /^(false|no|off)$/i.test(v)) return false;
    this.fail(key, `must be true or false, not ${describe(v)}`);
  }

  integer(key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    this.seen.add(key);
    const v = this.data[key];
    if (v === undefined || v === null) return undefined;
    // The numbers YAML writes (config files are read without implicit numbers, config.ts): 25, +25, 3e4, 0x10, 0o17.
    const n = typeof v === 'string' && YAML_NUMBER.test(v) ? Number(v.replace(/^\+/, '')) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) this.fail(key, `must be a whole number, not ${describe(v)}`);
    if (n < min || n > max) this.fail(key, `must be between ${min} and ${max}, not ${n}`);
    return n;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v)) this.fail(key, `must be one of ${allowed.join(', ')}, not '${v}'`);
    return v as T;
  }

  stringList(key: string): string[] | undefined {
    this.seen.add(key);
    const v = this.data[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) this.fail(key, 'must be a list of strings');
    return v as string[];
  }

  stringMap(key: string): Record<string, string> | undefined {
    this.seen.add(key);
    const v = this.data[key];
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) this.fail(key, 'must be a mapping of strings');
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string') this.fail(`${key}.${k}`, `must be a string, not ${describe(x)}`);
      out[k] = x;
    }
    return out;
  }

  section(key: string): Section {
    this.seen.add(key);
    return Section.of(this.data[key], this.keyPath(key), this.source, this.describe);
  }

  /** The names of a mapping's entries, e.g. the clouds under `clouds:`. */
  keys(): string[] {
    return Object.keys(this.data);
  }

  /**
   * Fail on the first key nobody asked for, suggesting the closest known one;
   * or, for a key that is right elsewhere (in another of the config's formats,
   * or another section), what `elsewhere` says of it.
   */
  rejectUnknown(known: readonly string[] = [...this.seen], elsewhere: Readonly<Record<string, string>> = {}): void {
    for (const key of Object.keys(this.data)) {
      if (this.seen.has(key)) continue;
      if (Object.hasOwn(elsewhere, key)) this.fail(key, `is not a known setting here (${elsewhere[key]})`);
      const hint = closest(key, [...new Set([...known, ...this.seen])]);
      this.fail(key, `is not a known setting${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The known key within edit distance 3, if any. */
export function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
