// V8 heap sizing for the driver process, applied by `cinder-csi` before it
// loads anything else (src/cli.ts imports this module first).
//
// The driver's live heap is small (~15 MiB after 1,000 lifecycles, heap
// snapshot), but V8's defaults size the heap for throughput: the young
// generation grows to 2 x 16 MiB semi-spaces under allocation churn, and the
// old generation is allowed to grow to several times its live size before a
// full GC. RSS then floats at 2-4x what is in use (bench figure 5: 156 MiB for
// the controller after figure 2, 72 MiB for an idle node plugin).
//
// Both are set at run time so that they apply however the driver is started
// (bin/cinder-csi, which the image uses, or `node dist/src/cli.js`); flags
// that V8 takes only at start-up are the launcher's (bin/cinder-csi):
// - `--semi-space-growth-factor=1` keeps the young generation at its initial
//   size (1 MiB semi-spaces). `--max-semi-space-size` would say the same, but
//   V8 reads it only when the heap is created, so it works only on the node
//   command line; the growth factor is read each time the young generation
//   would grow.
// - `--heap-growing-percent` lets the old generation grow by that much over
//   its live size before the next full GC (V8's default allows 1.1x to 4x).
//
// A user's own NODE_OPTIONS or node flags for these win: nothing is set then.
import v8 from 'node:v8';

/** The old generation may grow this much (percent) over its live size before a full GC. */
export const HEAP_GROWING_PERCENT = 20;

export const HEAP_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', `--heap-growing-percent=${HEAP_GROWING_PERCENT}`];

/** Whether the user already chose young-generation or heap-growth settings. */
function userChoseHeapFlags(): boolean {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return /semi[-_]space|heap[-_]growing/.test(given);
}

let applied = false;

/** Apply HEAP_FLAGS once, unless the user set their own. Returns whether they were applied. */
export function tuneHeap(): boolean {
  if (applied) return true;
  if (userChoseHeapFlags()) return false;
  for (const flag of HEAP_FLAGS) v8.setFlagsFromString(flag);
  applied = true;
  return true;
}

// Only when this process is the cinder-csi command: a test that imports
// src/cli.ts keeps V8's defaults.
if (require.main !== undefined && require.main.filename === require.resolve('../cli')) tuneHeap();
