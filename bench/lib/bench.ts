/**
 * The contract between the runner (bench/run.ts) and one benchmark file (bench/*.bench.ts).
 *
 * A benchmark measures its figures and the baselines they are compared with in the same run, on the
 * same machine, with the same payload and load generator, and returns one row per figure. It asserts
 * nothing: whether a target is met is reported, never thrown. It throws only when it could not
 * measure (a server did not start, an answer carried errors), which the runner reports as a failure.
 */
export interface BenchContext {
  /** Tiny workloads that only prove the benchmark still runs (CI); no figure means anything. */
  readonly smoke: boolean;
  /** Progress on stderr, so stdout stays the table. */
  log(message: string): void;
  /** Values one benchmark leaves for a later one in the same run (e.g. RSS after load). */
  readonly shared: Map<string, unknown>;
}

export interface Bench {
  readonly name: string;
  /** One line: what it measures. */
  readonly title: string;
  run(context: BenchContext): Promise<BenchOutcome>;
}

export interface BenchOutcome {
  readonly rows: readonly Row[];
  /** How it was measured and what to keep in mind reading it. */
  readonly notes?: readonly string[];
  /**
   * Side-by-side comparisons that do not fit one figure against one baseline (e.g. every server of a
   * benchmark against every other), printed after the main table. Cells are preformatted text.
   */
  readonly tables?: readonly Table[];
}

export interface Table {
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
}

export interface Quantity {
  readonly value: number;
  readonly unit: string;
}

export interface Row {
  readonly bench: string;
  readonly workload: string;
  /** What the figure is, e.g. "req/s" or "p99 latency". */
  readonly metric: string;
  readonly figure: Quantity;
  readonly baseline?: Quantity & { readonly name: string };
  /** figure ÷ baseline, when both exist and the baseline is not 0. */
  readonly ratio?: number;
  /** The issue's target in words, and whether the figure meets it. Absent: reported, no target. */
  readonly target?: { readonly text: string; readonly met: boolean };
}

/** Builds a row, computing the ratio; `meets` decides the target from the figure and the ratio. */
export function row(spec: {
  bench: string;
  workload: string;
  metric: string;
  figure: Quantity;
  baseline?: Quantity & { name: string };
  target?: { text: string; meets: (figure: number, ratio: number | undefined) => boolean };
}): Row {
  const ratio = spec.baseline && spec.baseline.value !== 0 ? spec.figure.value / spec.baseline.value : undefined;
  return {
    bench: spec.bench,
    workload: spec.workload,
    metric: spec.metric,
    figure: spec.figure,
    ...(spec.baseline && { baseline: spec.baseline }),
    ...(ratio !== undefined && { ratio }),
    ...(spec.target && { target: { text: spec.target.text, met: spec.target.meets(spec.figure.value, ratio) } }),
  };
}
