// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per
// function, largest first, to explain where the driver's CPU went.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export async function summariseProfiles(dir: string, top = 20): Promise<string[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
  const out: string[] = [];
  for (const f of files) {
    const p = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Profile;
    const byNode = new Map<number, number>();
    p.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    const byFrame = new Map<string, number>();
    let total = 0;
    for (const n of p.nodes) {
      const us = byNode.get(n.id) ?? 0;
      total += us;
      const file = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/|dist\/)/, '$1');
      const key = `${n.callFrame.functionName || '(anonymous)'} ${file ? `${file}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
      byFrame.set(key, (byFrame.get(key) ?? 0) + us);
    }
    out.push(`profile ${f}: ${(total / 1000).toFixed(0)} ms sampled`);
    for (const [key, us] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      out.push(`  ${(us / 1000).toFixed(1).padStart(8)} ms  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
    }
  }
  return out;
}
