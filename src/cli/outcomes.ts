import { cliConfig, type CliIo, parseCli, runAsCommand } from './args.js';
import { alignedRows, liveBar } from './terminal.js';
import { runDatabaseJob, type ProgressDisplay } from './database-job.js';
import { BarsRepository } from '../infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from '../infra/market-data/bars-store.js';
import { STORED_MARKET, SYMBOL_PATTERN } from '../infra/market-data/market-data.js';
import { HISTORY } from '../infra/response-cache/inputs.js';
import { OutcomesRepository, OutcomesService, type ResolveProgress, type ResolveReport } from '../modules/history/index.js';

/**
 * `npm run outcomes [-- SYMBOL…]`: fills in realized outcomes of recorded predictions whose horizon has
 * passed, from the bars stored in the configured database (migrating it first). Progress goes to stderr,
 * the summary to stdout. Exit code 0 on success (also when nothing was due), 1 on a bad symbol,
 * configuration or a database error, 2 on an unknown flag.
 *
 * Bars come from the bars store only: the synthetic market exists inside a running gateway (its bars
 * are stamped from the moment it started), which resolves its own outcomes every OUTCOMES_INTERVAL_MS.
 */
const USAGE = `usage: npm run outcomes [-- SYMBOL...]

Stores realized_return, correct and covered for recorded predictions whose horizon has passed,
using the bars stored in the configured database (DATABASE_URL, or the embedded one in DATA_DIR).
With symbols, only those. A running gateway does the same every OUTCOMES_INTERVAL_MS.
`;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'outcomes', usage: USAGE, allowPositionals: true }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const args = parsed.positionals;
  const bad = args.filter((a) => !SYMBOL_PATTERN.test(a));
  if (bad.length) {
    io.err(`not a symbol: ${bad.join(' ')}\n${USAGE}`);
    return 1;
  }
  const config = cliConfig(io);
  if (!config) return 1;
  return runDatabaseJob(config, io, {
    name: 'outcomes',
    display: { bar: progressBar, lines: () => progressLines(io) },
    async run(db, { logger, onProgress }) {
      const bars = new BarsRepository(db);
      if ((await bars.listSymbols()).length === 0) {
        return {
          summary:
            'no bars stored: nothing to resolve outcomes against (import bars with `npm run import`; ' +
            'the synthetic market resolves its own outcomes inside a running gateway)\n',
          exitCode: 0,
        };
      }
      const service = new OutcomesService({
        repository: new OutcomesRepository(db, STORED_MARKET),
        market: createBarsStoreProvider(bars),
        logger,
      });
      const report = await service.resolve({ ...(args.length > 0 && { symbols: args }), onProgress });
      return { summary: formatSummary(report), exitCode: 0, changed: report.resolved > 0 ? [HISTORY] : [] };
    },
  });
}

function progressBar(): ProgressDisplay<ResolveProgress> {
  const bar = liveBar<{ resolved: number }>('{bar} {percentage}% | {value}/{total} symbols | {resolved} outcomes stored');
  return {
    update: (p) => bar.update(p.symbolsDone, p.symbolCount, { resolved: p.resolved }),
    stop: () => bar.stop(),
  };
}

function progressLines(io: CliIo): ProgressDisplay<ResolveProgress> {
  return {
    update: (p) => io.err(`[${p.symbolsDone}/${p.symbolCount} symbols] ${p.resolved} outcomes stored\n`),
    stop() {},
  };
}

function formatSummary(r: ResolveReport): string {
  const table = [
    ['symbols', 'rows read', 'resolved', 'not due', 'no asOf bar', 'out of reach', 'elapsed'],
    [r.symbols, r.examined, r.resolved, r.notDue, r.unmatched, r.outOfReach].map(String).concat(`${(r.elapsedMs / 1000).toFixed(2)} s`),
  ];
  const lines = alignedRows(table);
  if (r.unmatched > 0)
    lines.push(
      '',
      `${r.unmatched} row(s) name an asOf with no stored bar (bars removed, or recorded from the synthetic market); they stay pending.`,
    );
  if (r.excluded > 0)
    lines.push(
      '',
      `${r.excluded} row(s) are measured on a bar flagged as suspect (docs/decisions/data-quality.md); they stay pending until it is corrected.`,
    );
  return `${lines.join('\n')}\n`;
}

await runAsCommand(import.meta.url, 'outcomes', main);
