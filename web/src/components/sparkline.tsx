/**
 * A tiny inline SVG line of recent confidence values: enough to see a trend in a table row. The
 * vertical range is the values' own (padded), so small moves stay visible; the title gives the numbers.
 */
export function Sparkline({ values, width = 120, height = 28 }: { values: readonly number[]; width?: number; height?: number }) {
  if (values.length === 0) return <span class="muted">no history yet</span>;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const pad = Math.max((max - min) * 0.1, 0.005);
  const lo = min - pad;
  const span = max + pad - lo;
  const x = (i: number) => (values.length === 1 ? width : (i / (values.length - 1)) * (width - 4) + 2);
  const y = (v: number) => height - 2 - ((v - lo) / span) * (height - 4);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const last = values[values.length - 1]!;
  const first = values[0]!;
  const trend = last > first ? 'up' : last < first ? 'down' : 'flat';
  return (
    <svg
      class={`sparkline ${trend}`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      data-points={values.length}
    >
      <title>{`${values.length} recorded confidences, ${(min * 100).toFixed(1)}% to ${(max * 100).toFixed(1)}%`}</title>
      <polyline points={points} fill="none" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round" />
      <circle cx={x(values.length - 1)} cy={y(last)} r="2.2" />
    </svg>
  );
}
