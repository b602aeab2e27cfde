// Running a script in a Node process started with the node plugin's V8 flags
// (bin/cinder-csi: --jitless, so no WebAssembly), to prove code runs there.
import { execFile } from 'node:child_process';

/** `node --jitless --no-expose-wasm -e script ...args`; its stdout. The script sees args from process.argv[1]. */
export function runJitless(script: string, args: string[] = []): Promise<string> {
  const guarded = `if (typeof WebAssembly !== 'undefined') throw new Error('expected no WebAssembly under --jitless');\n${script}`;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--jitless', '--no-expose-wasm', '-e', guarded, ...args], { timeout: 20_000 }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
    ),
  );
}
