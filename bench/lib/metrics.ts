/**
 * Reads the gateway's Prometheus endpoint. Each series is kept under its full text
 * (`name{label="…"}`) and also summed under its bare name over every label set, so a figure read by
 * bare name survives a label being added (e.g. a second model version) without the benchmark changing.
 */
export type MetricsSnapshot = ReadonlyMap<string, number>;

export async function scrape(baseUrl: string): Promise<MetricsSnapshot> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (!response.ok) throw new Error(`GET ${baseUrl}/metrics answered ${response.status}`);
  const totals = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    totals.set(match[1]!, (totals.get(match[1]!) ?? 0) + value);
    if (match[2]) totals.set(`${match[1]}${match[2]}`, value);
  }
  return totals;
}

/** How much each named series grew between two snapshots. */
export function delta(before: MetricsSnapshot, after: MetricsSnapshot, name: string): number {
  return (after.get(name) ?? 0) - (before.get(name) ?? 0);
}

/** The series the benchmarks read (names are binding, DESIGN.md §5). */
export const SERIES = {
  inferenceRuns: 'sibyl_inference_runs_total',
  batchRows: 'sibyl_inference_batch_size_sum',
  batchCount: 'sibyl_inference_batch_size_count',
  marketFetches: 'sibyl_market_fetches_total',
  rss: 'process_resident_memory_bytes',
} as const;
