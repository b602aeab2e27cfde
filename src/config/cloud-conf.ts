// A reader for the gcfg ("INI-style") syntax of the Go cinder-csi-plugin's
// cloud.conf, as gopkg.in/gcfg.v1 reads it, so that a cluster moving from the
// Go plugin can keep its file. This module knows the syntax only; which
// sections and keys mean what is cloud-conf-document.ts's business.
//
// The rules, from gcfg's scanner and reader:
//   - `[section]` or `[section "subsection"]`; section and variable names start
//     with a letter and hold letters, digits and '-', and are matched ignoring
//     case; subsection names are quoted and kept as written ("" is refused).
//   - `name = value`; blanks around the value are dropped, blanks inside kept;
//     `"..."` quotes any part of a value, with the escapes \" \\ \n \t;
//     `;` or `#` starts a comment, on its own line or after an unquoted value;
//     a `\` at the end of a line outside quotes continues the value on the next.
//   - a name with no `=` is a "blank" variable, which gcfg reads as true for a
//     boolean (and refuses for anything else).
//   - a name may appear more than once (gcfg's multi-valued variables); every
//     value is kept here, in order.
// Every error is a ConfigError naming the file and the line. No message quotes
// a value: a value may be a password.
import { ConfigError } from './reader';

export interface CloudConfVariable {
  /** Lower-cased, as gcfg compares names ignoring case. */
  name: string;
  /** The unquoted value; null for a name with no `=`. */
  value: string | null;
  /** 1-based line where the variable starts. */
  line: number;
}

export interface CloudConfSection {
  /** Lower-cased, as gcfg compares names ignoring case. */
  name: string;
  /** As written (case-sensitive); absent for `[section]`. */
  subsection?: string;
  /** Line of the section's first header. */
  line: number;
  /** In file order; a section whose header appears twice has both parts' variables, as gcfg merges them. */
  variables: CloudConfVariable[];
}

const BOM = '\uFEFF';

/**
 * Whether a config file is a cloud.conf rather than YAML: its first line that
 * is not blank or a comment is a section header. The file name says nothing
 * (the Secret key is mounted as cloud.yaml whatever it holds), and a YAML
 * config never starts with `[name`: it is a mapping.
 */
export function isCloudConf(text: string): boolean {
  for (const raw of text.replace(BOM, '').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    return /^\[\s*\p{L}/u.test(line);
  }
  return false;
}

export function parseCloudConf(text: string, file: string): CloudConfSection[] {
  return new Parser(text.startsWith(BOM) ? text.slice(1) : text, file).parse();
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t' };

function isLetter(c: string | undefined): boolean {
  return c !== undefined && /\p{L}/u.test(c);
}

function isNameChar(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{Nd}-]/u.test(c);
}

/** A blank inside a line; gcfg drops every carriage return, so a CRLF file reads as LF. */
function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r';
}

class Parser {
  private pos = 0;
  private line = 1;
  private readonly sections: CloudConfSection[] = [];
  private current: CloudConfSection | undefined;

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  parse(): CloudConfSection[] {
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === undefined) return this.sections;
      if (c === '\n') this.next();
      else if (c === ';' || c === '#') this.skipComment();
      else if (c === '[') this.header();
      else if (isLetter(c)) this.variable();
      // The character is not quoted: it may be the start of a value wrapped onto a line of its own, a password.
      else this.fail(this.line, 'expected a section header or a variable at the start of the line');
    }
  }

  private header(): void {
    const line = this.line;
    this.next(); // '['
    this.skipBlanks();
    if (!isLetter(this.peek())) this.fail(line, "expected a section name after '['");
    const name = this.name();
    this.skipBlanks();
    let subsection: string | undefined;
    if (this.peek() === '"') {
      subsection = this.quoted(line);
      if (subsection === '') this.fail(line, `empty subsection name: write [${name}] for the section itself`);
      this.skipBlanks();
    }
    if (this.peek() !== ']') this.fail(line, `expected ']' to close the section header`);
    this.next();
    this.endOfLine(line, "']'");
    // gcfg merges a section whose header appears again into the first.
    const found = this.sections.find((s) => s.name === name && s.subsection === subsection);
    this.current = found ?? { name, ...(subsection !== undefined ? { subsection } : {}), line, variables: [] };
    if (!found) this.sections.push(this.current);
  }

  private variable(): void {
    const line = this.line;
    const name = this.name();
    // Names are not quoted in messages: a value wrapped onto a line of its own (a password) is read as one.
    if (!this.current) this.fail(line, 'a variable comes before any section header such as [Global]');
    if (this.peek() === '_') this.fail(line, `names are written with '-', not '_' (auth-url, not auth_url)`);
    this.skipBlanks();
    let value: string | null = null;
    const c = this.peek();
    if (c !== undefined && c !== '\n' && c !== ';' && c !== '#') {
      if (c !== '=') this.fail(line, "expected '=' after the name at the start of the line (a value on a line of its own is read as a name)");
      this.next();
      this.skipBlanks();
      value = this.value(line);
    }
    this.endOfLine(line, 'the value');
    this.current.variables.push({ name, value, line });
  }

  /** A value up to the end of the line or an unquoted comment; see the rules at the top. */
  private value(line: number): string {
    let out = '';
    // Blanks outside quotes are kept only when something follows them on the line.
    let blanks = '';
    let quoted = false;
    for (;;) {
      const c = this.peek();
      if (c === undefined || (c === '\n' && quoted)) {
        if (quoted) this.fail(line, 'a quoted value is not closed on its line');
        return out;
      }
      if (!quoted && (c === '\n' || c === ';' || c === '#')) return out;
      this.next();
      if (c === '\r') continue;
      if (quoted) {
        if (c === '"') quoted = false;
        else out += c === '\\' ? this.escape(line) : c;
      } else if (isBlank(c)) {
        blanks += c;
      } else {
        out += blanks;
        blanks = '';
        if (c === '"') quoted = true;
        else if (c === '\\') this.continuation(line);
        else out += c;
      }
    }
  }

  private escape(line: number): string {
    const e = this.peek();
    const unescaped = e === undefined ? undefined : ESCAPES[e];
    if (unescaped === undefined) this.fail(line, `unknown escape sequence in a quoted string: use \\" \\\\ \\n or \\t`);
    this.next();
    return unescaped;
  }

  /** An unquoted `\` must end the line: the value goes on on the next one. */
  private continuation(line: number): void {
    if (this.peek() === '\r') this.next();
    if (this.peek() !== '\n') this.fail(line, "a '\\' outside quotes must end the line (it continues the value on the next)");
    this.next();
  }

  /** A quoted subsection name: no line break, the same escapes as a value. */
  private quoted(line: number): string {
    this.next(); // '"'
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '\n') this.fail(line, 'a quoted subsection name is not closed on its line');
      this.next();
      if (c === '"') return out;
      out += c === '\\' ? this.escape(line) : c;
    }
  }

  private name(): string {
    const start = this.pos;
    while (isNameChar(this.peek())) this.next();
    return this.src.slice(start, this.pos).toLowerCase();
  }

  private endOfLine(line: number, after: string): void {
    this.skipBlanks();
    const c = this.peek();
    if (c === ';' || c === '#') this.skipComment();
    else if (c !== undefined && c !== '\n') this.fail(line, `unexpected text after ${after}`);
  }

  private skipComment(): void {
    while (this.peek() !== undefined && this.peek() !== '\n') this.next();
  }

  private skipBlanks(): void {
    while (isBlank(this.peek())) this.next();
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private next(): void {
    if (this.src[this.pos] === '\n') this.line++;
    this.pos++;
  }

  private fail(line: number, what: string): never {
    throw new ConfigError(`${this.file} line ${line}: ${what}`);
  }
}
