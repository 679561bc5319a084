import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { configFromEnvironment, type Config } from '../config/index.js';

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

/**
 * What a CLI reads and writes besides files and databases: its arguments, its environment and its two
 * streams. The process's own when run as a command ({@link processIo}); a test's, when it calls a
 * CLI's `main` in-process.
 */
export interface CliIo {
  readonly argv: readonly string[];
  /** Where configuration comes from; undefined: the process's environment. */
  readonly env: Readonly<Record<string, string | undefined>> | undefined;
  out(text: string): void;
  err(text: string): void;
}

/** Every CLI's entry: returns the exit code; what it throws, {@link runCli} reports as one line. */
export type CliMain = (io: CliIo) => Promise<number>;

export function processIo(): CliIo {
  return {
    argv: process.argv.slice(2),
    env: undefined,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

export type ParsedCli<Options extends ParseArgsOptionsConfig> =
  | { readonly exitCode: number }
  | {
      readonly values: ReturnType<typeof parseArgs<{ options: Options; allowPositionals: true; strict: true }>>['values'];
      readonly positionals: string[];
    };

export function parseCli<Options extends ParseArgsOptionsConfig>(spec: CliSpec<Options>, io: CliIo): ParsedCli<Options> {
  const usage = spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`;
  const { argv } = io;
  // --help wins wherever it stands, even beside a bad flag: asking for usage is never a mistake.
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(usage);
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
    io.err(`${spec.name}: ${firstLine(error)}\n\n${usage}`);
    return { exitCode: USAGE_ERROR };
  }
}

/**
 * Runs a CLI's main and returns its exit code; anything it throws is reported as one line (exit 1), so
 * an operator sees the reason (e.g. "keys: the embedded database in … is in use by process 123; …")
 * rather than a stack trace. Every CLI that opens the database lets that failure reach here
 * (database-job.ts openCliDatabase), so it reads the same everywhere.
 */
export async function runCli(name: string, main: CliMain, io: CliIo = processIo()): Promise<number> {
  return main(io).catch((error: unknown) => {
    io.err(`${name}: ${firstLine(error)}\n`);
    return 1;
  });
}

/**
 * Runs the CLI when its module is the command (`node --import tsx src/cli/<name>.ts`), not when a test
 * imports it for its `main`.
 */
export async function runAsCommand(moduleUrl: string, name: string, main: CliMain): Promise<void> {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  process.exitCode = await runCli(name, main);
}

/** The validated configuration from the CLI's environment, or undefined after naming every bad variable on its stderr. */
export function cliConfig(io: CliIo): Config | undefined {
  return configFromEnvironment(io.env, (text) => io.err(text));
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
