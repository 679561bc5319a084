import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { GraphQLFormattedError } from 'graphql';
import WebSocket from 'ws';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { ApiKeysRepository, ApiKeysService, type Role } from '../../src/modules/access/index.js';
import { AuditLog } from '../../src/modules/audit/index.js';
import { bearer } from '../helpers/access.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { createTestDatabase, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

/**
 * The attacks of issue 17, item 1, against a real gateway process started as `npm start` starts it
 * (its V8 heap budget), in production mode with API keys, all at once over HTTP and graphql-ws: each
 * is refused with a code, the process stays up, and its RSS stays under 1 GB. Before the fix, 50 of
 * the viewer's HTTP requests (or 30 of its WebSocket messages) ended in "Ineffective mark-compacts
 * near heap limit".
 */
const UNIVERSE = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V'];
const symbols = (n: number) => Array.from({ length: n }, (_, i) => UNIVERSE[i % UNIVERSE.length]!);
const spreads = (name: string) => Array.from({ length: 30 }, () => `...${name}`).join(' ');
const FRAGMENTS = `fragment A on Query { ${spreads('B')} } fragment B on Query { ${spreads('C')} } fragment C on Query { __typename }`;
const PREDICTION =
  'symbol strategy horizon asOf signal probability confidence expectedReturn stale featuresHash interval { level low high } quote { open high low close volume time source } model { version features }';

/** The viewer's: a 900-spread fragment tree (which made the cost unknown) and 28 aliased 200-symbol predictions. */
const VIEWER_ATTACK = `query V($s: [String!]!) { ...A ${Array.from({ length: 28 }, (_, i) => `p${i}: predictions(symbols: $s) { ${PREDICTION} }`).join(' ')} } ${FRAGMENTS}`;
/** The analyst's: 28 aliased history(last: 1000) over 61 symbols. */
const ANALYST_ATTACK = `query H($s: [String!]!) { ...A ${Array.from({ length: 28 }, (_, i) => `h${i}: predictions(symbols: $s) { symbol history(last: 1000) { time probability confidence min max count signal } }`).join(' ')} } ${FRAGMENTS}`;
/** The analyst's variant: a list without a size argument, 28 times, each a valid query of up to 10,000 buckets (this range holds ~2,500 days). */
const ANALYST_BUCKETS = `query C { ${Array.from({ length: 28 }, (_, i) => `c${i}: confidenceHistory(symbol: "AAPL", bucket: "1 day", from: "2020-01-01T00:00:00Z") { time probability confidence min max count signal }`).join(' ')} }`;
/** Admitted, near MAX_QUERY_COST: what the in-flight budget is for when many arrive at once. */
const HEAVY_ADMITTED = `query P($s: [String!]!) { predictions(symbols: $s) { ${PREDICTION} } }`;

const deepJson = (depth: number) => `${'['.repeat(depth)}"AAPL"${']'.repeat(depth)}`;

interface Answer {
  status: number;
  errors?: GraphQLFormattedError[];
  data?: unknown;
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

describe(`abuse of issue 17 against a production gateway process (${stackName})`, () => {
  let database: TestDatabase;
  let gateway: GatewayProcess;
  let url: string;
  const keys: Partial<Record<Role, string>> = {};

  before(async () => {
    database = await createTestDatabase();
    const direct = await openDatabase(database.settings, createLogger({ level: 'silent', format: 'json' }));
    try {
      await migrateToLatest(direct.db);
      const service = new ApiKeysService({ repository: new ApiKeysRepository(direct.db), audit: new AuditLog(direct.db) });
      for (const role of ['viewer', 'analyst'] as const)
        keys[role] = (await service.create({ name: `abuse ${role}`, role, actor: 'test' })).key;
    } finally {
      await direct.close();
    }
    gateway = spawnGateway({
      ...database.env,
      ...testRedisEnv(),
      NODE_ENV: 'production',
      AUTH_MODE: 'apikey',
      SYNTHETIC_TICK_MS: '0',
      // A rate budget no test reaches, so what holds the admitted operations back is the in-flight budget.
      RATE_LIMIT_POINTS: '100000000',
    });
    ({ url } = await gateway.ready);
  });
  after(async () => {
    if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) {
      gateway.kill('SIGTERM');
      await gateway.exited;
    }
    await database?.drop();
  });

  async function post(role: Role, query: string, variables: Record<string, unknown>): Promise<Answer> {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(keys[role]!) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, ...((await response.json()) as Omit<Answer, 'status'>) };
  }

  /**
   * A graphql-ws connection, acknowledged before the attack starts: what is measured is how the
   * gateway answers the attack's messages, not whether a connection opened while the event loop is
   * busy with 200 other requests still gets its `connection_init` read within the init timeout.
   */
  async function connect(role: Role): Promise<{ ask(messages: string[]): Promise<Array<{ type: string; payload: unknown }>> }> {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const answers = new Map<string, { type: string; payload: unknown }>();
    let expected = Infinity;
    let settle: { resolve(): void; reject(error: Error): void } | undefined;
    socket.once('close', (code) => settle?.reject(new Error(`socket closed with ${code} after ${answers.size} answers`)));
    const acknowledged = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { type: string; id?: string; payload: unknown };
        if (message.type === 'connection_ack') settle?.resolve();
        if (message.id && !answers.has(message.id) && (message.type === 'next' || message.type === 'error'))
          answers.set(message.id, message);
        if (answers.size === expected) settle?.resolve();
      });
    });
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${keys[role]!}` } }));
    await acknowledged;
    return {
      async ask(messages) {
        expected = messages.length;
        const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
        for (const text of messages) socket.send(text);
        try {
          await done;
        } finally {
          socket.close();
        }
        return messages.map((_, i) => answers.get(String(i))!);
      },
    };
  }

  /** `messages` subscribe messages (raw JSON text) on one socket; resolves with each operation's first answer. */
  async function overSocket(role: Role, messages: string[]): Promise<Array<{ type: string; payload: unknown }>> {
    return (await connect(role)).ask(messages);
  }
  const subscribe = (id: number, query: string, variablesJson: string) =>
    `{"id":"${id}","type":"subscribe","payload":{"query":${JSON.stringify(query)},"variables":${variablesJson}}}`;

  test('every attack at once: coded refusals, the process stays up, RSS under 1 GB', async (t) => {
    const idle = rssBytes(gateway.child.pid!);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(gateway.child.pid!))), 20);
    try {
      const viewerVariables = { s: symbols(200) };
      const analystVariables = { s: symbols(61) };
      const [viewerSocket, analystSocket, bucketsSocket] = await Promise.all([connect('viewer'), connect('analyst'), connect('analyst')]);
      const [http, analystHttp, viewerWs, analystWs, deepHttp, heavy, bucketsHttp, bucketsWs] = await Promise.all([
        Promise.all(Array.from({ length: 50 }, () => post('viewer', VIEWER_ATTACK, viewerVariables))),
        Promise.all(Array.from({ length: 20 }, () => post('analyst', ANALYST_ATTACK, analystVariables))),
        viewerSocket.ask(Array.from({ length: 30 }, (_, i) => subscribe(i, VIEWER_ATTACK, JSON.stringify(viewerVariables)))),
        analystSocket.ask(Array.from({ length: 30 }, (_, i) => subscribe(i, ANALYST_ATTACK, JSON.stringify(analystVariables)))),
        Promise.all(
          Array.from({ length: 10 }, async () => {
            const response = await fetch(`${url}/graphql`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...bearer(keys.viewer!) },
              body: `{"query":"query($s: [String!]!) { predictions(symbols: $s) { symbol } }","variables":{"s":${deepJson(5_000)}}}`,
            });
            return { status: response.status, ...((await response.json()) as Omit<Answer, 'status'>) };
          }),
        ),
        // Admitted operations near MAX_QUERY_COST, 100 at once: served, or held back by the in-flight budget.
        // 180 symbols × 26 fields = 4,680 of MAX_QUERY_COST's 5,000.
        Promise.all(Array.from({ length: 100 }, () => post('viewer', HEAVY_ADMITTED, { s: symbols(180) }))),
        Promise.all(Array.from({ length: 20 }, () => post('analyst', ANALYST_BUCKETS, {}))),
        bucketsSocket.ask(Array.from({ length: 10 }, (_, i) => subscribe(i, ANALYST_BUCKETS, '{}'))),
      ]);
      const deepWs = await overSocket(
        'viewer',
        Array.from({ length: 10 }, (_, i) =>
          subscribe(i, 'query($s: [String!]!) { predictions(symbols: $s) { symbol } }', `{"s":${deepJson(5_000)}}`),
        ),
      );

      for (const answer of [...http, ...analystHttp]) {
        assert.equal(answer.status, 400);
        assert.equal(answer.data, undefined);
        assert.equal(answer.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX', JSON.stringify(answer.errors).slice(0, 200));
      }
      // Refused before their rows are read: 28 × 10,000 possible buckets is past MAX_RESPONSE_ITEMS.
      for (const answer of bucketsHttp)
        assert.deepEqual([answer.status, answer.data, answer.errors?.[0]?.extensions?.limit], [400, undefined, 'responseItems']);
      // Refused while executing: an execution result (`next`) carrying only the error.
      for (const answer of bucketsWs) {
        assert.equal(answer.type, 'next');
        const payload = answer.payload as { data?: unknown; errors?: GraphQLFormattedError[] };
        assert.deepEqual([payload.data, payload.errors?.[0]?.extensions?.limit], [undefined, 'responseItems']);
      }
      for (const answer of [...viewerWs, ...analystWs]) {
        assert.equal(answer.type, 'error');
        assert.equal((answer.payload as GraphQLFormattedError[])[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      }
      for (const answer of deepHttp) {
        assert.equal(answer.status, 400);
        assert.equal(answer.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      }
      for (const answer of deepWs) assert.equal((answer.payload as GraphQLFormattedError[])[0]?.extensions?.code, 'BAD_USER_INPUT');
      const codes = new Map<string, number>();
      for (const answer of heavy) {
        const code = answer.errors ? String(answer.errors[0]?.extensions?.code) : 'ok';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      assert.deepEqual(
        [...codes.keys()].filter((code) => code !== 'ok' && code !== 'RATE_LIMITED'),
        [],
        JSON.stringify([...codes]),
      );
      assert.ok((codes.get('ok') ?? 0) > 0, 'admitted operations are served');
      t.diagnostic(`100 admitted operations of cost 4,680 at once: ${JSON.stringify(Object.fromEntries(codes))}`);
    } finally {
      clearInterval(sampler);
    }
    assert.equal(gateway.child.exitCode, null, 'the process is up');
    assert.ok(peak > 0 && peak < 1024 ** 3, `peak RSS ${(peak / 1024 ** 2).toFixed(0)} MB`);
    const after = await post('viewer', 'query($s: [String!]!) { predictions(symbols: $s) { symbol signal } }', { s: ['AAPL'] });
    assert.equal(after.errors, undefined, JSON.stringify(after.errors));
    const chart = await post(
      'analyst',
      'query { confidenceHistory(symbol: "AAPL", bucket: "1 day", from: "2020-01-01T00:00:00Z") { time } }',
      {},
    );
    assert.equal(chart.errors, undefined, `one long confidenceHistory is served: ${JSON.stringify(chart.errors)}`);
    assert.ok(
      !gateway.logs.some((line) => line.level === 50 || line.level === 60),
      `nothing logged at error level: ${JSON.stringify(gateway.logs.filter((l) => (l.level as number) >= 50)).slice(0, 500)}`,
    );
    t.diagnostic(`RSS idle ${(idle / 1024 ** 2).toFixed(0)} MB, peak ${(peak / 1024 ** 2).toFixed(0)} MB`);
  });
});
