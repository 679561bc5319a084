import cliProgress from 'cli-progress';

/**
 * What the long-running CLIs (import, outcomes) print besides their results: a progress bar on
 * stderr, started by the first update (the total is known only then), and summary tables.
 */
export interface LiveBar<Payload extends object> {
  update(value: number, total: number, payload: Payload): void;
  stop(): void;
}

export function liveBar<Payload extends object>(format: string): LiveBar<Payload> {
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true }, cliProgress.Presets.shades_classic);
  let running = false;
  return {
    update(value, total, payload) {
      if (!running) {
        bar.start(total, 0, payload);
        running = true;
      }
      bar.update(value, payload);
    },
    stop() {
      if (running) bar.stop();
    },
  };
}

/** Rows of cells as lines with every column right-aligned to its widest cell, two spaces apart. */
export function alignedRows(table: ReadonlyArray<readonly string[]>): string[] {
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) => row.map((cell, column) => cell.padStart(widths[column]!)).join('  '));
}
