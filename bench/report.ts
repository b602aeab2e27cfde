// Collects figures as rows and renders them: a console table per figure, the
// JSON list `--json FILE` asks for, and bench/RESULTS.md.
import { writeFile } from 'node:fs/promises';
import type { Machine } from './machine';

export interface Row {
  /** Which figure of issue 7 (1..5). */
  figure: number;
  /** What was measured, e.g. 'create T=1s overshoot (median)'. */
  name: string;
  /** null when the measurement could not be made (skipped). */
  value: number | null;
  unit: string;
  /** The target as text ('<= 100'), or 'info' for figures without one. */
  target: string;
  /** null for informational rows and skipped measurements. */
  pass: boolean | null;
  note?: string;
}

export class Report {
  readonly rows: Row[] = [];
  /** Lines that explain a figure (request breakdowns, timings of the parts). */
  readonly details = new Map<number, string[]>();
  constructor(readonly machine: Machine) {}

  add(row: Row): void {
    this.rows.push(row);
  }

  /** A measured row with a numeric upper bound. */
  atMost(figure: number, name: string, value: number, unit: string, limit: number, note?: string): void {
    this.add({ figure, name, value, unit, target: `<= ${limit}`, pass: value <= limit, note });
  }

  info(figure: number, name: string, value: number | null, unit: string, note?: string): void {
    this.add({ figure, name, value, unit, target: 'info', pass: null, note });
  }

  skip(figure: number, name: string, unit: string, target: string, reason: string): void {
    this.add({ figure, name, value: null, unit, target, pass: null, note: `skipped: ${reason}` });
  }

  detail(figure: number, line: string): void {
    this.details.set(figure, [...(this.details.get(figure) ?? []), line]);
  }

  printFigure(figure: number, title: string): void {
    const rows = this.rows.filter((r) => r.figure === figure);
    const out: string[] = [`\nFigure ${figure}: ${title}`, `  machine: ${this.machine.line}`];
    const cells = rows.map((r) => [r.name, formatValue(r.value), r.unit, r.target, mark(r), r.note ?? '']);
    const header = ['measurement', 'value', 'unit', 'target', 'result', 'note'];
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => '  ' + c.map((x, i) => (i === 1 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
    out.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line));
    for (const d of this.details.get(figure) ?? []) out.push(`  ${d}`);
    process.stdout.write(out.join('\n') + '\n');
  }

  async writeJson(file: string): Promise<void> {
    const list = this.rows.map((r) => ({
      figure: `${r.figure}: ${r.name}`,
      value: r.value,
      unit: r.unit,
      target: r.target,
      pass: r.pass,
      machine: this.machine.line,
      ...(r.note ? { note: r.note } : {}),
    }));
    await writeFile(file, JSON.stringify(list, null, 2) + '\n');
  }

  markdown(titles: Record<number, string>, extra: string[]): string {
    const out = [
      '# Benchmark results',
      '',
      `Latest \`npm run bench\` on this machine: ${this.machine.line}. Run on ${new Date().toISOString().slice(0, 10)}.`,
      'Targets come from issue 7; a miss is marked MISS and explained below the table.',
      '',
      '| figure | measurement | value | unit | target | result |',
      '|---|---|---:|---|---|---|',
    ];
    for (const r of this.rows) {
      const name = r.note ? `${r.name} (${r.note})` : r.name;
      out.push(`| ${r.figure} ${titles[r.figure] ?? ''} | ${escapeCell(name)} | ${formatValue(r.value)} | ${r.unit} | ${escapeCell(r.target)} | ${mark(r)} |`);
    }
    for (const [figure, lines] of [...this.details].sort((a, b) => a[0] - b[0])) {
      out.push('', `Figure ${figure} details:`, '', '```', ...lines, '```');
    }
    if (extra.length > 0) out.push('', ...extra);
    return out.join('\n') + '\n';
  }
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function formatValue(v: number | null): string {
  if (v === null || Number.isNaN(v)) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function mark(r: Row): string {
  if (r.pass === null) return r.value === null ? 'skipped' : '-';
  return r.pass ? 'pass' : 'MISS';
}
