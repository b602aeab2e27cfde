// The gcfg syntax of the Go cinder-csi-plugin's cloud.conf (gopkg.in/gcfg.v1):
// what the parser reads, and the errors it gives, each naming the file and line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCloudConf, parseCloudConf, type CloudConfSection } from '../../src/config/cloud-conf';
import { ConfigError } from '../../src/config/config';

const FILE = '/etc/cinder-csi/cloud.yaml';

function parse(text: string): CloudConfSection[] {
  return parseCloudConf(text, FILE);
}

/** The one variable's value in a file of one section. */
function value(text: string): string | null {
  const [section] = parse(`[Global]\n${text}\n`);
  assert.equal(section.variables.length, 1);
  return section.variables[0].value;
}

function parseError(text: string): string {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('expected a ConfigError, but the text parsed');
}

// ----------------------------------------------------------- sections and names

test('sections, subsections and variables, with their lines', () => {
  const sections = parse('[Global]\nauth-url = https://k/v3\n\n[Global "east"]\nregion = east-1\n[BlockStorage]\nrescan-on-resize = true\n');
  assert.deepEqual(sections, [
    { name: 'global', line: 1, variables: [{ name: 'auth-url', value: 'https://k/v3', line: 2 }] },
    { name: 'global', subsection: 'east', line: 4, variables: [{ name: 'region', value: 'east-1', line: 5 }] },
    { name: 'blockstorage', line: 6, variables: [{ name: 'rescan-on-resize', value: 'true', line: 7 }] },
  ]);
});

test('section and variable names are case-insensitive; subsection names are not', () => {
  const sections = parse('[GLOBAL "East"]\nAuth-URL = x\n[global "east"]\n');
  assert.deepEqual(sections.map((s) => [s.name, s.subsection]), [['global', 'East'], ['global', 'east']]);
  assert.equal(sections[0].variables[0].name, 'auth-url');
});

test('blanks inside a header are allowed, and a header may carry a comment', () => {
  assert.deepEqual(parse('[ Global   "a b" ] ; the second cloud\n').map((s) => [s.name, s.subsection]), [['global', 'a b']]);
});

test('a section whose header appears twice is one section, as gcfg merges them', () => {
  const sections = parse('[Global]\nusername = a\n[Metadata]\nsearch-order = configDrive\n[global]\npassword = b\n');
  assert.equal(sections.length, 2);
  assert.deepEqual(sections[0].variables.map((v) => [v.name, v.line]), [['username', 2], ['password', 6]]);
});

test('a repeated variable keeps every value, in order (gcfg multi-valued variables)', () => {
  const [section] = parse('[Networking]\npublic-network-name = a\npublic-network-name = b\n');
  assert.deepEqual(section.variables.map((v) => v.value), ['a', 'b']);
});

// ----------------------------------------------------------- values

test('blanks around a value are dropped, blanks inside kept', () => {
  assert.equal(value('name =   two  words   '), 'two  words');
  assert.equal(value('name=x'), 'x');
  assert.equal(value('name ='), '');
});

test('a double-quoted value keeps its blanks, comment characters and escapes', () => {
  assert.equal(value('password = "  p;a#s  "'), '  p;a#s  ');
  assert.equal(value('password = "a\\"b\\\\c\\nd\\te"'), 'a"b\\c\nd\te');
  assert.equal(value('name = pre "quoted part" post'), 'pre quoted part post');
  assert.equal(value('name = ""'), '');
});

test('; and # start a comment after an unquoted value, and on a line of their own', () => {
  assert.equal(value('region = RegionOne ; the only one'), 'RegionOne');
  assert.equal(value('region = RegionOne# no blank needed'), 'RegionOne');
  const [section] = parse('; leading comment\n# another\n[Global] # trailing\n  ; indented\nregion = r\n');
  assert.deepEqual(section.variables, [{ name: 'region', value: 'r', line: 5 }]);
});

test('a variable with no = is blank (null), which gcfg reads as true for a boolean', () => {
  assert.equal(value('rescan-on-resize'), null);
  assert.equal(value('rescan-on-resize ; with a comment'), null);
});

test('a \\ at the end of an unquoted line continues the value on the next', () => {
  const [section] = parse('[Global]\nauth-url = https://keystone.example.com\\\n:5000/v3\nregion = r\n');
  assert.deepEqual(section.variables, [
    { name: 'auth-url', value: 'https://keystone.example.com:5000/v3', line: 2 },
    { name: 'region', value: 'r', line: 4 },
  ]);
});

test('CRLF line ends and a leading byte-order mark read like plain LF', () => {
  const sections = parse('\uFEFF[Global]\r\nusername = alice\r\npassword = "pw"\r\n');
  assert.deepEqual(sections[0].variables.map((v) => v.value), ['alice', 'pw']);
});

// ----------------------------------------------------------- errors

test('every syntax error names the file and the line', () => {
  const cases: Array<[string, RegExp]> = [
    ['username = a\n', /line 1: a variable comes before any section header/],
    ['[Global]\n= x\n', /line 2: expected a section header or a variable at the start of the line/],
    ['[Global]\nauth_url = x\n', /line 2: names are written with '-', not '_'/],
    ['[Global]\nregion x\n', /line 2: expected '=' after the name at the start of the line/],
    ['[Global\nregion = x\n', /line 1: expected '\]' to close the section header/],
    ['[]\n', /line 1: expected a section name after '\['/],
    ['[Global ""]\n', /line 1: empty subsection name: write \[global\] for the section itself/],
    ['[Global "east]\n', /line 1: a quoted subsection name is not closed on its line/],
    ['[Global] x\n', /line 1: unexpected text after '\]'/],
    ['[Global]\n\npassword = "unclosed\nregion = r\n', /line 3: a quoted value is not closed on its line/],
    ['[Global]\npassword = "a\\qb"\n', /line 2: unknown escape sequence in a quoted string/],
    ['[Global]\npassword = a\\b\n', /line 2: a '\\' outside quotes must end the line/],
  ];
  for (const [text, expected] of cases) {
    const msg = parseError(text);
    assert.ok(msg.startsWith(`${FILE} line `), `names the file: ${msg}`);
    assert.match(msg, expected);
  }
});

test('a syntax error never quotes the value it is in (it may be a password)', () => {
  for (const text of ['[Global]\npassword = "s3cret-pw\n', '[Global]\npassword = "s3cret-pw\\x"\n', '[Global]\npassword = s3cret-pw\\x\n']) {
    assert.ok(!parseError(text).includes('s3cret'), text);
  }
});

test('a value wrapped onto a line of its own is never quoted either: the parser reads it as a name or a stray character', () => {
  for (const text of ['[Global]\npassword =\nS3cr3t!pass\n', '[Global]\npassword =\n9s3cretpw\n', '[Global]\npassword =\n  s3cret pw\n']) {
    const msg = parseError(text);
    assert.ok(!/s3cr|S3cr|9/.test(msg.replace(FILE, '')), `${JSON.stringify(text)}: ${msg}`);
  }
});

// ----------------------------------------------------------- detection

test('a file is a cloud.conf when its first line that is not blank or a comment is a section header', () => {
  assert.equal(isCloudConf('[Global]\nauth-url = x\n'), true);
  assert.equal(isCloudConf('[Global "east"]\n'), true);
  assert.equal(isCloudConf('\n# the Go plugin\'s config\n; still a comment\n  [BlockStorage]\n'), true);
  assert.equal(isCloudConf('\uFEFF[Global]\n'), true);
  assert.equal(isCloudConf('# cinder-csi config\n[not yaml at all\n'), true);
  assert.equal(isCloudConf('# cinder-csi config\nclouds:\n  east: {}\n'), false);
  assert.equal(isCloudConf('# [Global] in a comment\ndataset:\n  region: r\n'), false);
  assert.equal(isCloudConf(''), false);
  assert.equal(isCloudConf('[1, 2]\n'), false);
});
