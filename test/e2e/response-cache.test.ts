import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResponseCache } from '../../src/infra/response-cache/response-cache.js';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { projectQueries, randomVariables, seededRandom, type NamedQuery } from '../helpers/operations.js';
import { stackName } from '../helpers/services.js';

const SEED = Number(process.env.RESPONSE_CACHE_TEST_SEED ?? Date.now() % 1_000_000);
const ROLES = ['anonymous', 'viewer', 'analyst', 'admin'] as const;
type Role = (typeof ROLES)[number];

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Two answers are the same when their status and bytes are, stack traces of errors aside (NODE_ENV=test shows them). */
function comparable(answer: Answer): string {
  if (answer.body.startsWith('{"data":')) return `${answer.status} ${answer.body}`;
  const parsed = JSON.parse(answer.body) as { errors?: Array<{ extensions?: Record<string, unknown> }> };
  for (const error of parsed.errors ?? []) delete error.extensions?.stacktrace;
  return `${answer.status} ${JSON.stringify(parsed)}`;
}

/**
 * The response cache's differential test (issue 20 item 3): random operations (every query of
 * test/operations and of the web app, with random variables and roles) run against a gateway with the
 * cache on while the synthetic market ticks, history is written (every prediction served, outcomes
 * filled in) and model versions are activated and shadowed. Each operation is sent twice in a row: as
 * any client sends it (answered from the cache when it can be) and with `Cache-Control: no-cache,
 * no-store` (executed, nothing stored). When no input changed between the two (the cache's own change
 * sequence did not move), the answers must be identical: a cached answer is never stale.
 */
describe(`response cache: every cached answer equals an execution at the same moment (${stackName}, seed ${SEED})`, () => {
  let fixture: ModelsFixture;
  let server: TestGateway;
  let cache: ResponseCache;
  const credentials = new Map<Role, Record<string, string>>();

  before(async () => {
    fixture = await modelsFixture();
    for (const strategy of ['direction-1d', 'direction-5d']) await fixture.addVersion(strategy, 'v2', { calibrationShift: 0.4 });
    server = await startTestGateway({
      RESPONSE_CACHE: 'on',
      AUTH_MODE: 'apikey',
      MODELS_DIR: fixture.dir,
      SYNTHETIC_TICK_MS: '600',
      HISTORY_FLUSH_INTERVAL_MS: '100',
      OUTCOMES_INTERVAL_MS: '700',
      METRICS_BOOTSTRAP_REPLICATES: '100',
    });
    cache = server.gateway.responseCache!;
    const keys = apiKeysOf(server);
    credentials.set('anonymous', {});
    for (const role of ['viewer', 'analyst', 'admin'] as const) credentials.set(role, bearer((await keys.create(role)).key));
  });

  after(async () => {
    await server?.close();
    fixture?.remove();
  });

  const post = async (body: string, role: Role, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...credentials.get(role), ...headers },
      body,
    });
    return { status: response.status, body: await response.text() };
  };

  test('random operations across bar ticks, activations, shadows and history writes', async () => {
    const random = seededRandom(SEED);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const heavy = new Set(['Backtest', 'BacktestRun', 'Drift', 'ModelDrift', 'CompareModels']);
    // Promotion decisions are never cached (field-inputs.ts) and change with no event the test tracks.
    const queries = projectQueries().filter((q) => !/\bpromotions\b/.test(q.query));
    const bars = server.gateway.market;
    const history = (await bars.fetchBars(['AAPL'], { lookback: 400 })).get('AAPL')!;
    const past = [300, 200, 120, 60].map((back) => history[history.length - back]!.time);
    const choices = {
      symbols: ['AAPL', 'MSFT', 'NVDA', 'JPM', 'XOM'],
      strategies: ['direction-1d', 'direction-5d'],
      versions: ['v1', 'v2'],
      past,
    };
    // A pool small enough that combinations repeat between changes (a tick drops every prediction, a
    // history write everything that read history): the cache has something to answer from. Mostly
    // callers who may run the queries; anonymous ones and unknown symbols make the errors.
    const pool: Array<{ query: NamedQuery; role: Role; body: string }> = [];
    while (pool.length < 16) {
      const query = pick(queries);
      if (heavy.has(query.name) && random() < 0.7) continue;
      const variables = randomVariables(query, random, choices);
      const role = random() < 0.1 ? 'anonymous' : pick(ROLES.slice(1));
      pool.push({ query, role, body: JSON.stringify({ operationName: query.name, query: query.query, variables }) });
    }

    const changes = { bars: 0, models: 0, history: 0, all: 0 };
    const stop = cache.versions.onChange((change) => {
      if ('all' in change) changes.all++;
      for (const input of 'all' in change ? [] : change.inputs) {
        const family = input.split(':')[0] as 'bars' | 'models' | 'history';
        if (family in changes) changes[family]++;
      }
    });

    const counts = { compared: 0, hits: 0, raced: 0, hitsAfterBars: 0, hitsAfterModels: 0, hitsAfterHistory: 0 };
    const seen = { bars: 0, models: 0, history: 0 };
    // Until enough answers came from the cache (at least 200 rounds), or a minute has passed.
    const deadline = Date.now() + 60_000;
    let round = 0;
    try {
      while (Date.now() < deadline && (round < 200 || counts.hits < 60) && round < 1_000) {
        round++;
        if (round % 20 === 0) {
          // An operator's change, through the API as any admin makes it.
          const strategy = pick(choices.strategies);
          const serving = await post(
            JSON.stringify({ query: '{ strategies { name activeVersion { version } shadowVersion { version } } }' }),
            'admin',
          );
          const current = (
            JSON.parse(serving.body) as {
              data: { strategies: Array<{ name: string; activeVersion: { version: string }; shadowVersion: { version: string } | null }> };
            }
          ).data.strategies.find((s) => s.name === strategy)!;
          const other = current.activeVersion.version === 'v1' ? 'v2' : 'v1';
          // Alternately switch the active version, and set or clear the shadow: every change is a real one.
          const mutation =
            round % 80 === 0
              ? {
                  query: 'mutation A($s: String!, $v: String!) { activateModelVersion(strategy: $s, version: $v) { name } }',
                  variables: { s: strategy, v: other },
                }
              : {
                  query: 'mutation S($s: String!, $v: String) { setShadowModelVersion(strategy: $s, version: $v) { name } }',
                  variables: { s: strategy, v: current.shadowVersion ? null : other },
                };
          const changed = await post(JSON.stringify(mutation), 'admin');
          assert.equal(changed.status, 200, changed.body);
        }
        const { query, role, body } = pick(pool);
        const before = cache.versions.now();
        const hitsBefore = cache.stats.hits;
        const cached = await post(body, role);
        const hit = cache.stats.hits > hitsBefore;
        const fresh = await post(body, role, { 'cache-control': 'no-cache, no-store' });
        if (cache.versions.now() !== before) {
          counts.raced++;
          continue;
        }
        counts.compared++;
        assert.equal(
          comparable(cached),
          comparable(fresh),
          `${query.name} as ${role} (${hit ? 'cache hit' : 'miss'}), round ${round}, seed ${SEED}: ${body.slice(0, 300)}`,
        );
        if (!hit) continue;
        counts.hits++;
        // Hits answered after each kind of change had happened at least once more since the last such hit.
        if (changes.bars > seen.bars) {
          counts.hitsAfterBars++;
          seen.bars = changes.bars;
        }
        if (changes.models > seen.models) {
          counts.hitsAfterModels++;
          seen.models = changes.models;
        }
        if (changes.history > seen.history) {
          counts.hitsAfterHistory++;
          seen.history = changes.history;
        }
      }
    } finally {
      stop();
    }
    const summary = JSON.stringify({ rounds: round, ...counts, changes });
    // Bounds that a slow machine (fewer rounds before the deadline) still meets.
    assert.ok(counts.compared >= 100, `too few comparisons: ${summary}`);
    assert.ok(counts.hits >= 30, `too few answers came from the cache: ${summary}`);
    assert.ok(
      counts.hitsAfterBars >= 2 && counts.hitsAfterModels >= 2 && counts.hitsAfterHistory >= 2,
      `changes did not interleave with hits: ${summary}`,
    );
    assert.ok(counts.raced < counts.compared, `most pairs should see no change between them: ${summary}`);
    console.log(`response cache differential (${stackName}, seed ${SEED}): ${summary}`);
  });
});
