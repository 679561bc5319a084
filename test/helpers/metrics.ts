/** Reads one Prometheus series from `/metrics` (0 when absent), e.g. `sibyl_market_fetches_total{provider="postgres"}`. */
export async function metricValue(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Runs `action` and returns how much each series grew meanwhile. */
export async function metricDeltas<T extends string>(
  baseUrl: string,
  series: readonly T[],
  action: () => Promise<unknown>,
): Promise<Record<T, number>> {
  const before = await Promise.all(series.map((s) => metricValue(baseUrl, s)));
  await action();
  const after = await Promise.all(series.map((s) => metricValue(baseUrl, s)));
  return Object.fromEntries(series.map((s, i) => [s, after[i]! - before[i]!])) as Record<T, number>;
}
