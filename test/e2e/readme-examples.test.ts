import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getOperationAST, parse, type GraphQLFormattedError } from 'graphql';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient } from '../helpers/graphql.js';
import { marketData } from '../helpers/market-source.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

/**
 * The README's JavaScript and GraphQL examples, run as written against an in-process gateway started
 * as `npm start` starts it on a fresh machine (synthetic market, access control off), with only the
 * gateway's address substituted. Every ```js and ```graphql block carries a mark on the line before it,
 * `<!-- readme-test: run -->` or `<!-- readme-test: skip (why) -->`, so a new example is either run here
 * or says why not. `<!-- readme-test: run on stored bars -->` marks the examples about real history (a
 * 2019 backtest, March 2020): they run against a second gateway holding the real daily bars of the
 * symbols they name from ../shared/data/market (as after `npm run import`), from mid-2018 on.
 *
 * - a GraphQL query or mutation is POSTed and must answer without errors;
 * - a GraphQL subscription must deliver one event without errors within SUBSCRIPTION_WAIT_MS. The
 *   gateway ticks every 250 ms here instead of the default 5 s (what the README says to expect is
 *   measured at the default): the same market path and the same filters, only sooner;
 * - a JS block runs as an ES module in a child `node` from the project root (so its imports resolve as
 *   in a user's project) and must exit 0 within JS_TIMEOUT_MS with nothing on stderr and no `errors` in
 *   what it prints.
 */
const README = path.join(projectRoot, 'README.md');
const README_ADDRESS = '127.0.0.1:4000';
const TICK_MS = 250;
const SUBSCRIPTION_WAIT_MS = 10_000;
const JS_TIMEOUT_MS = 15_000;

interface Example {
  language: 'js' | 'graphql';
  /** 1-based line of the opening fence, for messages. */
  line: number;
  code: string;
  run: boolean;
  /** Needs the real bars stored (`run on stored bars`). */
  storedBars: boolean;
  /** The mark's text, e.g. `skip (needs a trained v2)`. */
  mark: string;
}

export function readmeExamples(text: string): Example[] {
  const lines = text.split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(js|graphql)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const end = lines.findIndex((line, j) => j > i && line.startsWith('```'));
    assert.ok(end > i, `README.md:${i + 1}: unclosed code block`);
    const mark = /^<!-- readme-test: (run(?: on stored bars)?|skip \(.+\)) -->$/.exec(lines[i - 1]?.trim() ?? '');
    assert.ok(
      mark,
      `README.md:${i + 1}: a \`\`\`${fence[1]} block needs <!-- readme-test: run --> or <!-- readme-test: skip (why) --> on the line before`,
    );
    examples.push({
      language: fence[1] as Example['language'],
      line: i + 1,
      code: lines.slice(i + 1, end).join('\n'),
      run: mark[1]!.startsWith('run'),
      storedBars: mark[1] === 'run on stored bars',
      mark: mark[1]!,
    });
    i = end;
  }
  return examples;
}

function firstEvent(url: string, query: string) {
  const client = wsClient(url);
  return new Promise<{ data?: unknown; errors?: readonly GraphQLFormattedError[] }>((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`no event within ${SUBSCRIPTION_WAIT_MS} ms`));
    }, SUBSCRIPTION_WAIT_MS);
    const dispose = client.subscribe(
      { query },
      {
        next: (value) => {
          clearTimeout(timer);
          dispose();
          resolve(value as { data?: unknown; errors?: readonly GraphQLFormattedError[] });
        },
        error: (error) => {
          clearTimeout(timer);
          if (Array.isArray(error)) resolve({ errors: error as GraphQLFormattedError[] });
          else reject(new Error(`the subscription failed: ${String((error as { reason?: string }).reason ?? error)}`));
        },
        complete: () => undefined,
      },
    );
  }).finally(() => client.dispose());
}

function runModule(code: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-'], { cwd: projectRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), JS_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stdout, stderr });
    });
    child.stdin.end(code);
  });
}

/** The real daily bars of these symbols from mid-2018 (a feature window before 2019) on. */
async function storedBars(symbols: readonly string[]): Promise<Bar[]> {
  const dailyAdjusted = path.join(marketData, 'daily_adjusted');
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const files = readdirSync(dailyAdjusted);
  const bars: Bar[] = [];
  for (const symbol of symbols) {
    const file = files.find((name) => name.startsWith(`DA-${symbol}-T-`));
    assert.ok(file, `no daily bars for ${symbol} in ${dailyAdjusted}`);
    const parsed = await readBarsCsvFile(path.join(dailyAdjusted, file));
    assert.ok(parsed.ok);
    bars.push(...parsed.bars.filter((bar) => bar.time >= new Date('2018-06-01')));
  }
  return bars;
}

describe(`README examples run as written (${stackName})`, () => {
  const examples = readmeExamples(readFileSync(README, 'utf8'));
  let server: TestGateway;
  let stored: TestGateway | undefined;
  before(async () => {
    server = await startTestGateway({ SYNTHETIC_TICK_MS: String(TICK_MS) });
    const onStoredBars = examples.filter((example) => example.storedBars);
    if (onStoredBars.length > 0) {
      const symbols = new Set(onStoredBars.flatMap((example) => [...example.code.matchAll(/"([A-Z][A-Z.]{0,9})"/g)].map((m) => m[1]!)));
      stored = await startTestGateway({}, { bars: await storedBars([...symbols]) });
    }
  });
  after(async () => {
    await server?.close();
    await stored?.close();
  });

  test('the README has JS and GraphQL examples, each marked, most of them run', () => {
    assert.ok(examples.some((example) => example.language === 'js' && example.run));
    assert.ok(examples.some((example) => example.language === 'graphql' && example.run));
    const skipped = examples.filter((example) => !example.run);
    assert.ok(skipped.length <= 2, `skipped: ${skipped.map((example) => `README.md:${example.line} ${example.mark}`).join(', ')}`);
  });

  for (const example of readmeExamples(readFileSync(README, 'utf8')).filter((candidate) => candidate.run)) {
    const title = `README.md:${example.line} (${example.language}) ${example.code.split('\n')[0]!.slice(0, 60)}…`;
    test(title, async () => {
      const target = example.storedBars ? stored : server;
      assert.ok(target);
      if (example.language === 'graphql') {
        const operation = getOperationAST(parse(example.code));
        assert.ok(operation, 'one operation per runnable GraphQL block');
        if (operation.operation === 'subscription') {
          const event = await firstEvent(target.url, example.code);
          assert.equal(event.errors, undefined, JSON.stringify(event.errors));
          assert.ok(event.data);
        } else {
          const result = await postQuery(target.url, example.code);
          assert.equal(result.errors, undefined, JSON.stringify(result.errors));
          assert.equal(result.status, 200);
        }
        return;
      }
      const address = new URL(target.url).host;
      assert.ok(example.code.includes(README_ADDRESS), `a JS example talks to the README's address, ${README_ADDRESS}`);
      const result = await runModule(example.code.replaceAll(README_ADDRESS, address));
      assert.equal(result.stderr, '');
      assert.equal(result.code, 0, `exit ${result.code}; stdout: ${result.stdout}`);
      assert.doesNotMatch(result.stdout, /errors/);
    });
  }
});
