import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MachineInfo } from './machine.js';
import type { Quantity, Row, Table } from './bench.js';

/** Everything one run produced: written as JSON (for tools) and Markdown (for people). */
export interface RunReport {
  readonly mode: 'full' | 'smoke';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly commit: string;
  readonly machine: MachineInfo;
  readonly benches: ReadonlyArray<{
    readonly name: string;
    readonly title: string;
    readonly seconds: number;
    readonly rows: readonly Row[];
    readonly notes: readonly string[];
    readonly tables?: readonly Table[];
    readonly error?: string;
  }>;
}

/** pass / short against the target; "report" when the issue sets none; "smoke" figures are not judged. */
export function verdict(row: Row, mode: RunReport['mode']): string {
  if (!row.target) return 'report';
  if (mode === 'smoke') return 'not judged';
  return row.target.met ? 'pass' : 'short';
}

export function formatQuantity(q: Quantity): string {
  const abs = Math.abs(q.value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  const text = q.value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return q.unit ? `${text} ${q.unit}` : text;
}

/** Two significant digits below 0.1, so 0.0013× does not print as 0.00×. */
function formatRatio(ratio: number): string {
  const abs = Math.abs(ratio);
  return abs >= 10 ? ratio.toFixed(1) : abs >= 0.1 || abs === 0 ? ratio.toFixed(2) : ratio.toPrecision(2);
}

const HEADERS = ['bench', 'workload', 'figure', 'baseline', 'ratio', 'target', 'result'];

function cells(row: Row, mode: RunReport['mode']): string[] {
  return [
    row.bench,
    row.workload,
    `${row.metric}: ${formatQuantity(row.figure)}`,
    row.baseline ? `${row.baseline.name}: ${formatQuantity(row.baseline)}` : '—',
    row.ratio === undefined ? '—' : `${formatRatio(row.ratio)}×`,
    row.target?.text ?? '—',
    verdict(row, mode),
  ];
}

function allRows(report: RunReport): string[][] {
  return report.benches.flatMap((bench) =>
    bench.error
      ? [[bench.name, '(failed)', bench.error.split('\n')[0]!.slice(0, 120), '—', '—', '—', 'ERROR']]
      : bench.rows.map((r) => cells(r, report.mode)),
  );
}

function header(report: RunReport): string[] {
  const m = report.machine;
  return [
    `mode: ${report.mode}    commit: ${report.commit}    started: ${report.startedAt}    took: ${report.durationSeconds.toFixed(1)} s`,
    `machine: ${m.cores} cores, ${m.cpuModel}, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM, Node ${m.node}, ${m.platform}`,
    `load average at start: ${m.loadAverageAtStart.join(', ')}` +
      ((m.loadAverageAtStart[0] ?? 0) > m.cores / 4 ? ` (busy: other processes were using the cores, absolute figures are depressed)` : ''),
  ];
}

/** The benchmarks' own comparison tables, with the benchmark each comes from. */
function extraTables(report: RunReport): Array<{ bench: string; table: Table }> {
  return report.benches.flatMap((bench) => (bench.error ? [] : (bench.tables ?? []).map((table) => ({ bench: bench.name, table }))));
}

function alignedText(headers: readonly string[], body: ReadonlyArray<readonly string[]>): string[] {
  const rows = [headers, ...body];
  const widths = headers.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

/** A plain-text table for the terminal. */
export function formatText(report: RunReport): string {
  const extras = extraTables(report).flatMap(({ bench, table }) => [
    '',
    `${bench}: ${table.title}${report.mode === 'smoke' ? ' (smoke: figures mean nothing)' : ''}`,
    ...alignedText(table.headers, table.rows),
  ]);
  return [...header(report), '', ...alignedText(HEADERS, allRows(report)), ...extras].join('\n');
}

export function formatMarkdown(report: RunReport): string {
  const escape = (text: string) => text.replace(/\|/g, '\\|');
  const out = [
    `# Sibyl benchmarks (${report.mode})`,
    '',
    ...header(report).map((l) => `${l}  `),
    '',
    `| ${HEADERS.join(' | ')} |`,
    `| ${HEADERS.map(() => '---').join(' | ')} |`,
    ...allRows(report).map((r) => `| ${r.map(escape).join(' | ')} |`),
    '',
    ...extraTables(report).flatMap(({ bench, table }) => [
      `**${bench}: ${escape(table.title)}**${report.mode === 'smoke' ? ' (smoke: figures mean nothing)' : ''}`,
      '',
      `| ${table.headers.map(escape).join(' | ')} |`,
      `| ${table.headers.map(() => '---').join(' | ')} |`,
      ...table.rows.map((r) => `| ${r.map(escape).join(' | ')} |`),
      '',
    ]),
    '## How each was measured',
    '',
  ];
  for (const bench of report.benches) {
    out.push(`### ${bench.name} (${bench.seconds.toFixed(1)} s)`, '', bench.title, '');
    if (bench.error) out.push('```', bench.error, '```', '');
    for (const note of bench.notes) out.push(`- ${note}`);
    out.push('');
  }
  return out.join('\n');
}

/** Writes `<base>.json` and `<base>.md` into `directory`; returns their paths. */
export function writeReport(report: RunReport, directory: string, base: string): string[] {
  mkdirSync(directory, { recursive: true });
  const json = path.join(directory, `${base}.json`);
  const md = path.join(directory, `${base}.md`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(md, formatMarkdown(report));
  return [json, md];
}
