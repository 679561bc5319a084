import { runCli, type CliIo, type CliMain } from '../../src/cli/args.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run <script>` names of the files in src/cli whose script is named otherwise. */
const SCRIPT_NAMES: Record<string, string> = { 'emit-schema': 'schema', 'web-build': 'web:build' };

/**
 * A CLI of src/cli run in this process, as `runCli` runs it for a command: its `main` with these
 * arguments, an environment of exactly `env` (plus NODE_ENV=test unless given; never this process's
 * DATABASE_URL or REDIS_URL), and its two streams captured. What is not the same as a spawned command —
 * the process's exit code and stdio — is tested in test/e2e/cli-help.test.ts; the rest is cheaper here
 * than a tsx start-up per run.
 */
export async function runCliInProcess(file: string, argv: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const { main } = (await import(`../../src/cli/${file}.ts`)) as { main: CliMain };
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    argv,
    env: { NODE_ENV: 'test', ...env },
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
  };
  const code = await runCli(SCRIPT_NAMES[file] ?? file, main, io);
  return { code, stdout, stderr };
}
