// The machine line every figure carries: results only mean something next to
// the hardware and runtime they were measured on.
import os from 'node:os';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  root: boolean;
  line: string;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  const cores = cpus.length;
  const cpuModel = (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  const memoryGiB = Math.round(os.totalmem() / 1024 ** 3);
  const root = process.getuid?.() === 0;
  const line = `${cores} cores (${cpuModel}), ${memoryGiB} GiB, Node ${process.version}, ${os.platform()} ${os.release()}${root ? ', root' : ', not root'}`;
  return { cores, cpuModel, memoryGiB, node: process.version, root, line };
}
