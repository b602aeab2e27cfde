#!/usr/bin/env node
// Runs the compiled test suite with node's built-in test runner.
//   node scripts/run-tests.js           every dist/test/**/*.test.js
//   node scripts/run-tests.js --cloud   every dist/test/**/*.cloud.js (needs a real cloud: OS_* or clouds.yaml)
//     A cloud file that says `cloud-test: alone` (e.g. one that counts the
//     project's volumes) runs after the others, with nothing else on the cloud.
// Extra arguments are file-name filters (substring match).
'use strict';
const { readFileSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const args = process.argv.slice(2);
const cloud = args.includes('--cloud');
const filters = args.filter((a) => !a.startsWith('--'));
const suffix = cloud ? '.cloud.js' : '.test.js';
const root = path.join(__dirname, '..', 'dist', 'test');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const files = walk(root)
  .filter((f) => f.endsWith(suffix))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no ${suffix} files under ${root}`);
  process.exit(1);
}
if (process.getuid && process.getuid() !== 0) {
  console.log('note: not root, so the tests that need loop devices and mounts will be skipped');
} else if (!cloud) {
  // Said once here; each test that needs a missing tool skips with the same advice.
  let missing;
  try {
    const { OPTIONAL_TOOLS, missingTools } = require(path.join(root, 'node', 'loop.js'));
    missing = missingTools(OPTIONAL_TOOLS);
  } catch (err) {
    // loop.js refuses to load when CINDER_CSI_TEST_REQUIRE_TOOLS=1 and a tool is missing.
    console.error(err.message);
    process.exit(1);
  }
  if (missing) console.log(`note: ${missing.commands.join(', ')} not installed, so the tests that need them will be skipped (${missing.install})`);
}
if (cloud) {
  // A freshly started Cinder can refuse every create for a minute or two
  // (see test/helpers/cloud-ready.ts): wait until it really makes a volume.
  const ready = spawnSync(process.execPath, [path.join(root, 'helpers', 'cloud-ready.js')], { stdio: 'inherit' });
  if (ready.status !== 0) process.exit(ready.status ?? 1);
}
const alone = cloud ? files.filter((f) => readFileSync(f, 'utf8').includes('cloud-test: alone')) : [];
const together = files.filter((f) => !alone.includes(f));
let status = 0;
for (const batch of [together, ...alone.map((f) => [f])]) {
  if (batch.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...batch],
    { stdio: 'inherit' },
  );
  if (result.status !== 0) status = result.status ?? 1;
}
process.exit(status);
