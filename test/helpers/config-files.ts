// Config files for the loader's tests: a temp directory (removed after the
// file's tests), a CA bundle, client certificate and key that exist, and
// load / configError over files written there.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { ConfigError, loadConfig, type DriverConfig } from '../../src/config/config';

export interface ConfigFiles {
  dir: string;
  CA: string;
  CERT: string;
  KEY: string;
  /** Write a config file and return its path. */
  file(text: string, name?: string): string;
  /** Load a file's text with no OS_* variables around unless given. */
  load(text: string, env?: NodeJS.ProcessEnv): DriverConfig;
  /** The ConfigError a file's text causes: one line, naming the file, holding none of `secrets`. */
  configError(text: string, env?: NodeJS.ProcessEnv): string;
}

export function configFiles(prefix: string, secrets: readonly string[] = []): ConfigFiles {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const [CA, CERT, KEY] = ['ca.pem', 'client.pem', 'client.key'].map((name) => path.join(dir, name));
  for (const f of [CA, CERT, KEY]) writeFileSync(f, '-----BEGIN CERTIFICATE-----\n');

  let fileCount = 0;
  const file = (text: string, name = `config-${++fileCount}.yaml`): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const load = (text: string, env: NodeJS.ProcessEnv = {}): DriverConfig => loadConfig({ file: file(text), env });
  const configError = (text: string, env: NodeJS.ProcessEnv = {}): string => {
    const p = file(text);
    try {
      loadConfig({ file: p, env });
    } catch (e) {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
      assert.ok(e.message.includes(p), `the message names the file: ${e.message}`);
      assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
      for (const secret of secrets) assert.ok(!e.message.includes(secret), `no secret: ${e.message}`);
      return e.message;
    }
    assert.fail('expected a ConfigError, but the config loaded');
  };
  return { dir, CA, CERT, KEY, file, load, configError };
}
