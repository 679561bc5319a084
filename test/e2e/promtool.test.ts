import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { corruptModelFile, eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { projectRoot } from '../helpers/process.js';

/**
 * The alerting rules and the dashboard against the gateway that feeds them: `promtool check rules` and
 * `promtool test rules` (ops/prometheus), `promtool check metrics` on a live `/metrics`, and every series
 * named in the rules or the dashboard exported by that live gateway (or recorded by a rule), so neither
 * can drift from the code. promtool is Debian's `prometheus` package: without it these skip, unless
 * SIBYL_REQUIRE_PROMTOOL=1 (CI), where a missing promtool is a failure.
 */
const RULES = path.join(projectRoot, 'ops/prometheus/rules.yml');
const RULES_TEST = path.join(projectRoot, 'ops/prometheus/rules.test.yml');
const DASHBOARD = path.join(projectRoot, 'ops/grafana/sibyl.json');

function findPromtool(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}
const promtool = findPromtool();
const noPromtool = promtool ? undefined : 'promtool not found (apt-get install prometheus)';
if (noPromtool && process.env.SIBYL_REQUIRE_PROMTOOL === '1') throw new Error(`SIBYL_REQUIRE_PROMTOOL=1 but ${noPromtool}`);

function run(args: readonly string[], input?: string) {
  const result = spawnSync(promtool!, args, { encoding: 'utf8', input, cwd: projectRoot, timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const alerts = rules.flatMap((r) => (r.alert ? [r.alert] : []));
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

interface Dashboard {
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ definition?: string }> };
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const dashboardExprs = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
  ...dashboard.templating.list.flatMap((v) => (v.definition ? [{ where: 'variable', expr: v.definition }] : [])),
];

/** Series names in a PromQL expression: Sibyl's (sibyl_*, recorded sibyl:*) and the Node process ones. */
const seriesIn = (expr: string) => [...new Set(expr.match(/\b(?:sibyl[_:]|nodejs_|process_)[A-Za-z0-9_:]*/g) ?? [])];

/** The names a live /metrics exposes: each family of a `# TYPE` line, with _bucket/_sum/_count for histograms. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

describe('alerting rules (promtool)', { skip: noPromtool }, () => {
  test('promtool check rules and promtool test rules pass on ops/prometheus', () => {
    const checked = run(['check', 'rules', RULES]);
    assert.equal(checked.status, 0, checked.output);
    const tested = run(['test', 'rules', RULES_TEST]);
    assert.equal(tested.status, 0, tested.output);
    assert.match(tested.output, /SUCCESS/);
  });
});

describe('alerting rules: coverage of the unit tests', () => {
  test("compose's Prometheus loads ops/prometheus/rules.yml", () => {
    const compose = parse(readFileSync(path.join(projectRoot, 'compose.yaml'), 'utf8')) as {
      services: Record<string, { volumes?: string[] }>;
    };
    const mount = compose.services.prometheus?.volumes?.find((v) => v.startsWith('./ops/prometheus/rules.yml:'));
    assert.ok(mount, 'compose.yaml mounts ops/prometheus/rules.yml into the prometheus service');
    const config = parse(readFileSync(path.join(projectRoot, 'prometheus.yml'), 'utf8')) as { rule_files?: string[] };
    assert.deepEqual(config.rule_files, [mount.split(':')[1]]);
  });

  test('every alert has a test case where it fires and one where it does not', () => {
    const cases = (
      parse(readFileSync(RULES_TEST, 'utf8')) as {
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
      }
    ).tests.flatMap((t) => t.alert_rule_test ?? []);
    assert.ok(alerts.length >= 10, `alerts found: ${alerts.join(', ')}`);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      assert.ok(
        mine.some((c) => (c.exp_alerts?.length ?? 0) > 0),
        `${alert}: no case where it fires`,
      );
      assert.ok(
        mine.some((c) => (c.exp_alerts?.length ?? 0) === 0),
        `${alert}: no case where it stays silent`,
      );
    }
    const unknown = cases.filter((c) => !alerts.includes(c.alertname)).map((c) => c.alertname);
    assert.deepEqual(unknown, [], 'test cases name alerts that rules.yml does not have');
  });
});

describe('the live /metrics against promtool, the rules and the dashboard', () => {
  let gateway: TestGateway;
  let models: ModelsFixture;
  let metrics: string;

  before(async () => {
    models = await modelsFixture();
    // A version that cannot load: sibyl_models_refused has something to say.
    await models.addVersion('direction-1d', 'v0broken', { damage: corruptModelFile });
    gateway = await startTestGateway({ MODELS_DIR: models.dir, SIGNALS_WATCHLIST: 'AAPL', SYNTHETIC_TICK_MS: '200' });
    const { url } = gateway;
    // Series with labels exist only once something moved them: an answer, an error, a tick that publishes.
    assert.equal((await postQuery(url, '{ prediction(symbol: "AAPL") { probability } }')).errors, undefined);
    assert.equal((await postQuery(url, '{ prediction(symbol: "NOPE") { probability } }')).errors?.[0]?.extensions?.code, 'UNKNOWN_SYMBOL');
    await eventually('a live signal published on a synthetic bar', async () =>
      (await metricValue(url, 'sibyl_signals_published_total{strategy="direction-1d"}')) > 0 &&
      (await metricValue(url, 'sibyl_signals_ticks_total{trigger="bars"}')) > 0
        ? true
        : undefined,
    );
    metrics = await (await fetch(`${url}/metrics`)).text();
  });
  after(async () => {
    await gateway?.close();
    models?.remove();
  });

  test('the gateway reports the refused model version and its ticks', () => {
    assert.match(metrics, /^sibyl_models_refused 1$/m);
    assert.match(metrics, /^sibyl_models_active_unservable 0$/m);
    assert.match(metrics, /^sibyl_signals_ticks_total\{trigger="bars"\} [1-9]\d*$/m);
  });

  test('promtool check metrics finds no problem in a live /metrics', { skip: noPromtool }, () => {
    const checked = run(['check', 'metrics'], metrics);
    assert.equal(checked.output.trim(), '', 'promtool reported problems');
    assert.equal(checked.status, 0);
  });

  test('every series the rules and the dashboard name is exported by the gateway or recorded by a rule', () => {
    const exported = exposedNames(metrics);
    const missing: string[] = [];
    for (const { where, expr } of [...rules.map((r) => ({ where: r.record ?? r.alert!, expr: r.expr })), ...dashboardExprs]) {
      for (const name of seriesIn(expr)) if (!exported.has(name) && !recorded.has(name)) missing.push(`${where}: ${name}`);
    }
    assert.deepEqual(missing, []);
    // And the dashboard shows the key series.
    const shown = new Set(dashboardExprs.flatMap((e) => seriesIn(e.expr)));
    for (const key of [
      'sibyl:graphql_request_seconds:p99_5m',
      'sibyl:graphql_errors:rate5m',
      'sibyl:cache_hit_ratio:rate5m',
      'sibyl_inference_batch_size_bucket',
      'sibyl:signals_published:rate5m',
      'sibyl_history_buffer_rows',
      'sibyl_market_breaker_state',
      'sibyl_drift_psi',
      'sibyl_model_interval_coverage',
    ])
      assert.ok(shown.has(key), `dashboard lacks ${key}`);
  });

  test('the name check itself catches a name the gateway does not export', () => {
    const exported = exposedNames(metrics);
    assert.deepEqual(
      seriesIn('rate(sibyl_graphql_requests_total[5m])').filter((n) => !exported.has(n) && !recorded.has(n)),
      ['sibyl_graphql_requests_total'],
    );
    assert.ok(existsSync(DASHBOARD));
  });
});
