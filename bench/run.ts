// `npm run bench [-- --json FILE] [--only 1,2] [--quick] [--profile DIR]`:
// the benchmark suite of issue 7. Runs every figure against the simulated
// OpenStack with the driver in its own process, prints one table per figure
// with targets and pass/miss marks, writes bench/RESULTS.md after a full run,
// and the JSON list with --json.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describeMachine } from './machine';
import { Report } from './report';
import { figure1 } from './fig1-overshoot';
import { figure2 } from './fig2-throughput';
import { figure3 } from './fig3-listing';
import { figure4 } from './fig4-node';
import { figure5 } from './fig5-footprint';
import { summariseProfiles } from './cpu-profile';
import { killAllDrivers } from './driver-process';

const TITLES: Record<number, string> = {
  1: 'time-to-ready overshoot',
  2: 'throughput',
  3: 'listing at scale',
  4: 'node path on loop devices',
  5: 'footprint',
};

interface Args {
  json?: string;
  only: Set<number>;
  quick: boolean;
  profileDir?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { only: new Set([1, 2, 3, 4, 5]), quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = path.resolve(need(argv[++i], a));
    else if (a === '--only') args.only = new Set(need(argv[++i], a).split(',').map(Number));
    else if (a === '--quick') args.quick = true;
    else if (a === '--profile') args.profileDir = path.resolve(need(argv[++i], a));
    else if (a === '--help') {
      process.stdout.write('usage: npm run bench -- [--json FILE] [--only 1,2,3,4,5] [--quick] [--profile DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}'`);
  }
  return args;
}

function need(v: string | undefined, flag: string): string {
  if (v === undefined) throw new Error(`${flag} needs a value`);
  return v;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const machine = describeMachine();
  const report = new Report(machine);
  const work = await mkdtemp(path.join(os.tmpdir(), 'cinder-csi-bench-'));
  if (args.profileDir) await mkdir(args.profileDir, { recursive: true });
  process.stdout.write(`cinder-csi benchmarks on ${machine.line}\n`);
  const started = performance.now();
  let controllerRss: { atEnd: number; settled: number } | undefined;
  const failures: string[] = [];
  const step = async (n: number, fn: () => Promise<void>) => {
    if (!args.only.has(n)) return;
    const t = performance.now();
    process.stdout.write(`\nrunning figure ${n} (${TITLES[n]})...\n`);
    try {
      await fn();
    } catch (e) {
      failures.push(`figure ${n}: ${(e as Error).stack ?? e}`);
      report.add({ figure: n, name: 'figure did not complete', value: null, unit: '-', target: '-', pass: false, note: (e as Error).message });
    }
    report.printFigure(n, `${TITLES[n]} (${((performance.now() - t) / 1000).toFixed(0)} s)`);
  };
  try {
    await step(1, () => figure1(report, work, args));
    await step(2, async () => {
      const fig2 = await figure2(report, work, { quick: args.quick, cpuProfileDir: args.profileDir });
      controllerRss = { atEnd: fig2.controllerRssAtEndMiB, settled: fig2.controllerRssSettledMiB };
    });
    await step(3, () => figure3(report, work, args));
    await step(4, () => figure4(report, work, { quick: args.quick, root: machine.root }));
    await step(5, () => figure5(report, work, { quick: args.quick, controllerRss }));
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  const totalS = (performance.now() - started) / 1000;
  const misses = report.rows.filter((r) => r.pass === false);
  process.stdout.write(`\n${report.rows.length} figures, ${misses.length} missed, in ${totalS.toFixed(0)} s\n`);
  for (const f of failures) process.stderr.write(`${f}\n`);
  const profile = args.profileDir ? await summariseProfiles(args.profileDir) : [];
  if (profile.length > 0) process.stdout.write(`\n${profile.join('\n')}\n`);
  if (args.json) await report.writeJson(args.json);
  if (!args.quick && args.only.size === 5) {
    const extra = [`Whole run: ${totalS.toFixed(0)} s, tree ${gitRevision()}.`];
    if (misses.length > 0) extra.push('', 'Misses:', ...misses.map((m) => `- figure ${m.figure}, ${m.name}: ${m.value} ${m.unit} (target ${m.target})`));
    const file = path.join(__dirname, '..', '..', 'bench', 'RESULTS.md');
    // The hand-written analysis of the misses (profiles, proposed fixes) survives a re-run.
    const previous = await readFile(file, 'utf8').catch(() => '');
    const analysis = previous.indexOf('\n## Why the misses');
    await writeFile(file, report.markdown(TITLES, extra) + (analysis >= 0 ? previous.slice(analysis) : ''));
  }
  return failures.length > 0 ? 1 : 0;
}

function gitRevision(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// Interrupted (Ctrl-C, a CI timeout): the driver processes would outlive the benchmark.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllDrivers();
    process.stderr.write(`bench: ${signal}: stopped the driver processes; mounts and loop devices of figure 4 may need cleaning up\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
