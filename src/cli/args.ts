import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

/**
 * What every CLI in src/cli shares at its edges: `--help`/`-h` prints the usage on stdout and exits 0
 * before any work (no configuration read, no database opened); an unknown flag or a malformed option
 * prints one line and the usage on stderr and exits 2; and a failure (such as another process holding
 * the embedded database's data directory) is one line on stderr, never a stack.
 */
export interface CliSpec<Options extends ParseArgsOptionsConfig> {
  /** As in `npm run <name>`; prefixes error lines. */
  readonly name: string;
  readonly usage: string;
  readonly options?: Options;
  readonly allowPositionals?: boolean;
}

export const USAGE_ERROR = 2;

export type ParsedCli<Options extends ParseArgsOptionsConfig> =
  | { readonly exitCode: number }
  | {
      readonly values: ReturnType<typeof parseArgs<{ options: Options; allowPositionals: true; strict: true }>>['values'];
      readonly positionals: string[];
    };

export function parseCli<Options extends ParseArgsOptionsConfig>(
  spec: CliSpec<Options>,
  argv: readonly string[] = process.argv.slice(2),
): ParsedCli<Options> {
  const usage = spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`;
  // --help wins wherever it stands, even beside a bad flag: asking for usage is never a mistake.
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage);
    return { exitCode: 0 };
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: (spec.options ?? {}) as Options,
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    });
    return { values: values as never, positionals };
  } catch (error) {
    process.stderr.write(`${spec.name}: ${firstLine(error)}\n\n${usage}`);
    return { exitCode: USAGE_ERROR };
  }
}

/**
 * Runs a CLI's main and sets the exit code; anything it throws is reported as one line (exit 1), so
 * an operator sees the reason (e.g. "the embedded database in … is in use by process 123") rather
 * than a stack trace.
 */
export async function runCli(name: string, main: () => Promise<number>): Promise<void> {
  process.exitCode = await main().catch((error: unknown) => {
    process.stderr.write(`${name}: ${firstLine(error)}\n`);
    return 1;
  });
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0]!;
}

/** A numeric option's value: undefined when not given, 'invalid' unless a plain decimal in (0, max]. */
export function positiveNumberOption(text: string | undefined, max = 1_000): number | undefined | 'invalid' {
  if (text === undefined) return undefined;
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  return Number.isFinite(value) && value > 0 && value <= max ? value : 'invalid';
}
