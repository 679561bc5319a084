import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { VARIABLES } from '../../src/config/variables.js';
import { HealthDocument } from '../generated/graphql.js';
import { execute } from '../helpers/graphql.js';
import { COMPILED_ENTRY, ensureBuilt, gatewayNodeArgs, projectRoot, spawnGateway } from '../helpers/process.js';
import { createTestDatabase, stackName, tempDir, testRedisEnv } from '../helpers/services.js';

/**
 * The production build and the deployment files, as far as this machine can check them without a
 * Docker daemon: the Dockerfile's runtime stage is reproduced from its own COPY lines into a directory
 * holding nothing else (no src/, no db/, no tsconfig, no tsx import), its CMD is run there, and
 * compose.yaml / prometheus.yml are parsed and checked against the Dockerfile and the config table.
 * What only `docker build` / `docker compose up` can show (base images, `npm ci --omit=dev` resolving,
 * TimescaleDB) is said in the README.
 */

interface Stage {
  name: string | undefined;
  lines: string[];
}

/** The Dockerfile's stages, continuation lines joined, comments dropped. */
function dockerfileStages(): Stage[] {
  const text = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const stages: Stage[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ name: from[1], lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

/** The JSON-array form of an instruction (`CMD ["node", …]`). */
function execForm(line: string, instruction: string): string[] {
  return JSON.parse(line.slice(instruction.length).trim()) as string[];
}

describe(`the production build (${stackName})`, () => {
  let buildMs = 0;
  before(() => {
    // A no-op (a file-time walk) when dist/ is current, as after `npm ci`; a full tsc, ~10–45 s on
    // this shared 2-core machine, when src/ changed since the last build.
    const started = performance.now();
    ensureBuilt();
    buildMs = performance.now() - started;
  });
  after(() => console.log(`# dist/ check or build took ${Math.round(buildMs)} ms`));

  test("the Dockerfile's runtime stage, staged without Docker, starts, answers, and stops on SIGTERM with 0", async () => {
    const stages = dockerfileStages();
    const runtime = stages.at(-1)!;
    const build = stages.find((s) => s.name === 'build');
    assert.ok(build, 'a build stage named "build"');
    assert.ok(
      build.lines.some((l) => /^RUN .*node tools\/build\.mjs/.test(l)),
      'the build stage compiles with the same script as npm run build',
    );
    assert.ok(
      runtime.lines.some((l) => /^RUN npm ci .*--omit=dev/.test(l)),
      'the runtime stage installs production dependencies only',
    );
    assert.ok(
      runtime.lines.some((l) => /^ENV .*ONNXRUNTIME_NODE_INSTALL=skip/.test(l)),
      'no CUDA download during the install',
    );
    const user = runtime.lines.find((l) => l.startsWith('USER '));
    assert.ok(user && !/^USER\s+(root|0)$/.test(user), `runs as a non-root user (${user})`);
    assert.ok(
      runtime.lines.some((l) => l.startsWith('HEALTHCHECK') && l.includes('/health/ready')),
      'HEALTHCHECK on /health/ready',
    );
    const cmd = runtime.lines.find((l) => l.startsWith('CMD'));
    assert.ok(cmd);
    assert.deepEqual(execForm(cmd, 'CMD'), ['node', ...gatewayNodeArgs('compiled')], 'CMD runs node as `npm start` does, without npm');

    // Reproduce the runtime stage's files: each COPY from the build stage or the context.
    const stage = tempDir('sibyl-image-');
    const database = await createTestDatabase();
    const data = tempDir('sibyl-image-data-');
    let gateway: ReturnType<typeof spawnGateway> | undefined;
    try {
      for (const line of runtime.lines.filter((l) => l.startsWith('COPY '))) {
        const words = line.split(/\s+/).slice(1);
        const fromBuild = words[0] === '--from=build';
        const [destination, ...sources] = words.filter((w) => !w.startsWith('--')).reverse();
        for (const source of sources.reverse()) {
          // The build stage's WORKDIR is /app, where it ran the build this test ran in the project.
          const local = path.join(projectRoot, fromBuild ? path.relative('/app', source) : source);
          assert.ok(existsSync(local), `COPY source ${source} exists (${local})`);
          const target = destination!.endsWith('/')
            ? path.join(stage.dir, destination!, path.basename(source))
            : path.join(stage.dir, destination!);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(local, target, { recursive: true, dereference: true });
        }
      }
      assert.ok(existsSync(path.join(stage.dir, COMPILED_ENTRY)), `${COMPILED_ENTRY} is in the image`);
      assert.ok(!existsSync(path.join(stage.dir, 'src')) && !existsSync(path.join(stage.dir, 'db')), 'no sources in the image');
      // Stands in for `npm ci --omit=dev`, which needs the registry: the project's own node_modules
      // (so this does not prove that no dev dependency is imported; tsx is not, as nothing registers it).
      symlinkSync(path.join(projectRoot, 'node_modules'), path.join(stage.dir, 'node_modules'));

      const budgetMs = 5_000;
      gateway = spawnGateway(
        { ...database.env, ...testRedisEnv(), DATA_DIR: data.dir, SHUTDOWN_TIMEOUT_MS: String(budgetMs) },
        { build: 'compiled', cwd: stage.dir },
      );
      const { url } = await gateway.ready;
      const ready = await fetch(`${url}/health/ready`);
      assert.equal(ready.status, 200, await ready.text());
      const health = await execute(url, HealthDocument);
      assert.equal(health.data?.health.status, 'ok', JSON.stringify(health.errors));
      const { version } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
      assert.equal(health.data?.health.version, version, 'the compiled build finds its package.json');
      assert.ok(
        gateway.logs.some((l) => /^database (migrated|schema up to date)/.test(String(l.msg))),
        'migrations load from dist/db',
      );

      const started = performance.now();
      gateway.kill('SIGTERM');
      assert.deepEqual(await gateway.exited, { code: 0, signal: null });
      const stopMs = performance.now() - started;
      assert.ok(stopMs < budgetMs, `stopped in ${Math.round(stopMs)} ms, budget ${budgetMs} ms`);
      assert.ok(gateway.logs.some((l) => l.msg === 'shutdown complete'));
    } finally {
      if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.kill('SIGKILL');
      await database.drop();
      data.remove();
      stage.remove();
    }
  });

  test('compose.yaml: PostgreSQL (TimescaleDB, pg15), Redis, two gateways with readiness checks, Prometheus scraping both', () => {
    const compose = parse(readFileSync(path.join(projectRoot, 'compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, Record<string, unknown>>;
    };
    const services = compose.services;
    assert.match(String(services.postgres?.image), /^timescale\/timescaledb:.*pg15/);
    assert.match(String(services.redis?.image), /^redis:/);
    const gateways = Object.entries(services).filter(([, s]) => s.build !== undefined);
    assert.equal(gateways.length, 2, 'two gateway instances built from the Dockerfile');

    const dockerfile = dockerfileStages().at(-1)!;
    const port = /PORT=(\d+)/.exec(dockerfile.lines.find((l) => l.startsWith('ENV'))!)?.[1];
    const volumes = new Set<string>();
    for (const [name, service] of gateways) {
      const env = service.environment as Record<string, string>;
      for (const key of Object.keys(env)) assert.ok(key in VARIABLES, `${name}: ${key} is a configuration variable`);
      assert.equal(env.NODE_ENV, 'production');
      assert.equal(new URL(env.DATABASE_URL!).hostname, 'postgres', `${name} uses the compose PostgreSQL`);
      assert.equal(new URL(env.REDIS_URL!).hostname, 'redis', `${name} uses the compose Redis (shared cache, pub/sub, revocations)`);
      assert.notEqual(env.AUTH_MODE, 'off');
      const check = (service.healthcheck as { test: string[] }).test.join(' ');
      assert.ok(check.includes(`127.0.0.1:${port}/health/ready`), `${name}: healthcheck on the image's port: ${check}`);
      const depends = service.depends_on as Record<string, { condition: string }>;
      assert.equal(depends.postgres?.condition, 'service_healthy');
      assert.equal(depends.redis?.condition, 'service_healthy');
      for (const volume of service.volumes as string[]) if (volume.endsWith(':/data')) volumes.add(volume);
    }
    assert.equal(volumes.size, 2, 'each instance has its own DATA_DIR volume');

    const prometheus = services.prometheus;
    assert.ok((prometheus?.volumes as string[]).some((v) => v.startsWith('./prometheus.yml:')));
    const scrape = parse(readFileSync(path.join(projectRoot, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = scrape.scrape_configs[0]!;
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(
      job.static_configs.flatMap((c) => c.targets).sort(),
      gateways.map(([name]) => `${name}:${port}`).sort(),
      'Prometheus scrapes both gateways',
    );
  });
});
