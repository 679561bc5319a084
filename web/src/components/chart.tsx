import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

// Only what the pages draw, so the bundle carries no unused chart types.
Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip,
);
Chart.defaults.font.family = getComputedStyle(document.documentElement).getPropertyValue('--font').trim() || 'system-ui, sans-serif';
Chart.defaults.color = '#5b6475';
Chart.defaults.borderColor = '#e6e9ef';

/**
 * A Chart.js chart in a canvas. The chart is built once and updated in place when `config` changes
 * (no flicker on live data); `label` names it for screen readers and tests.
 */
export function ChartCanvas({ config, label, height = 280 }: { config: ChartConfiguration; label: string; height?: number }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);

  useEffect(() => {
    if (!canvas.current) return;
    if (chart.current && (chart.current.config as { type?: string }).type === config.type) {
      chart.current.data = config.data;
      if (config.options) chart.current.options = config.options;
      chart.current.update();
      return;
    }
    chart.current?.destroy();
    chart.current = new Chart(canvas.current, config);
  }, [config]);

  useEffect(() => () => chart.current?.destroy(), []);

  return (
    <div class="chart" style={{ height: `${height}px` }}>
      <canvas ref={canvas} role="img" aria-label={label} data-chart={label} />
    </div>
  );
}
