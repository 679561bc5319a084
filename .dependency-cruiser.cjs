/**
 * The layering of ../shared/DESIGN.md §3, enforced: `npm run lint:deps` (run by .ci/run) fails on any
 * import that breaks it.
 *
 *   main → server → schema/context → modules → domain → infra contracts → libraries
 *   config/ and shared/ are leaves; cli/ and training/ are entry points beside main.
 *   domain/ is pure vocabulary (docs/decisions/domain-layer.md): no I/O, no module, no engine.
 *
 * Imports admitted against a rule are listed one by one (rule, from, to) in
 * .dependency-cruiser-known-violations.json, dependency-cruiser's baseline format. The list is empty:
 * every rule holds. tools/check-layering.ts fails on any violation not listed and on any listed one
 * that no longer happens; an entry is for a violation being mended, never to admit a new one.
 */

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'A cycle of runtime imports means files that cannot be loaded, understood or tested apart. Cycles made ' +
        'only by `import type` (a resolver naming the Context type that names the services) vanish at run time.',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'config-and-shared-are-leaves',
      severity: 'error',
      comment: 'config/ and shared/ are read by every layer, so they may import only each other and libraries.',
      from: { path: '^src/(config|shared)/' },
      to: { path: '^src/', pathNot: '^src/(config|shared)/' },
    },
    {
      name: 'only-config-reads-env',
      severity: 'error',
      comment: 'Nothing imports dotenv-style loaders; process.env is read in src/config only (checked by ESLint).',
      from: { path: '^src/', pathNot: '^src/config/' },
      to: { path: '^node_modules/dotenv' },
    },
    {
      name: 'infra-imports-no-layer-above',
      severity: 'error',
      comment: 'infra/ is the floor: it never imports the domain, a module, the schema, the context, the server or main.',
      from: { path: '^src/infra/' },
      to: { path: '^src/(domain|modules|schema|context|server|main\\.ts|cli|training)' },
    },
    {
      name: 'infra-knows-no-graphql-framework',
      severity: 'error',
      comment: 'infra/ must not depend on type-graphql or Apollo: engines stay usable outside the GraphQL server.',
      from: { path: '^src/infra/' },
      to: { path: '^node_modules/(type-graphql|@apollo/)' },
    },
    {
      name: 'domain-imports-no-layer-above',
      severity: 'error',
      comment: 'domain/ sits below every module: it never imports a module, the schema, the context, the server, main, cli or training.',
      from: { path: '^src/domain/' },
      to: { path: '^src/(modules|schema|context|server|main\\.ts|cli|training)' },
    },
    {
      name: 'domain-sees-infra-contracts-only',
      severity: 'error',
      comment:
        'Of infra/, domain/ may import contract files only (types and constants, no engine), named here one by one: ' +
        'market-data.ts declares Bar and SYMBOL_PATTERN.',
      from: { path: '^src/domain/' },
      to: { path: '^src/infra/', pathNot: '^src/infra/market-data/market-data\\.ts$' },
    },
    {
      name: 'domain-does-no-io',
      severity: 'error',
      comment: "domain/ is pure: of Node's own modules it uses crypto (the features fingerprint) only.",
      from: { path: '^src/domain/' },
      to: { dependencyTypes: ['core'], pathNot: '^(node:)?crypto$' },
    },
    {
      name: 'domain-libraries',
      severity: 'error',
      comment:
        'domain/ uses zod (the manifest schema) and, in args.ts, the decorators of class-validator and type-graphql; no other library.',
      from: { path: '^src/domain/' },
      to: { path: '^node_modules/', pathNot: '^node_modules/(zod|class-validator|type-graphql)/' },
    },
    {
      name: 'domain-declares-graphql-in-args-only',
      severity: 'error',
      comment:
        'The base args classes (domain/args.ts) only declare, with decorators; every other domain file is free of GraphQL and validation.',
      from: { path: '^src/domain/', pathNot: '^src/domain/args\\.ts$' },
      to: { path: '^node_modules/(type-graphql|class-validator)/' },
    },
    {
      name: 'models-import-no-serving-module',
      severity: 'error',
      comment:
        'models/ (the registry, the lifecycle) sits below every module that serves a model: predictions, explanations, history, ' +
        'signals and metrics import it, never the reverse. Vocabulary both sides need (strategies, features, calibration, the ' +
        'manifest) lives in domain/; that models and predictions imported each other was the reason it was made.',
      from: { path: '^src/modules/models/' },
      to: { path: '^src/modules/', pathNot: '^src/modules/(models|access|audit)/' },
    },
    {
      name: 'predictions-import-no-consumer',
      severity: 'error',
      comment: 'predictions/ sits below the modules built on served predictions (explanations, history, signals, metrics).',
      from: { path: '^src/modules/predictions/' },
      to: { path: '^src/modules/', pathNot: '^src/modules/(predictions|models|access|audit)/' },
    },
    {
      name: 'modules-import-no-layer-above',
      severity: 'error',
      comment: 'A module never imports the server or main; modules are assembled by main.ts.',
      from: { path: '^src/modules/' },
      to: { path: '^src/(server|main\\.ts|cli)' },
    },
    {
      name: 'modules-see-the-context-as-a-type-only',
      severity: 'error',
      comment: 'Resolvers name the per-request Context type; they never run code from the layer that builds it.',
      from: { path: '^src/modules/' },
      to: { path: '^src/context/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'modules-do-not-import-schema',
      severity: 'error',
      comment: 'The schema layer sits above the modules; a helper both need belongs in shared/ or a module.',
      from: { path: '^src/modules/' },
      to: { path: '^src/schema/' },
    },
    {
      name: 'no-deep-cross-module-imports',
      severity: 'error',
      comment: "Modules talk to each other through their index.ts only: another module's files are private.",
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/([^/]+)/.+', pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/index\\.ts$'] },
    },
    {
      name: 'no-deep-module-imports-from-outside',
      severity: 'error',
      comment: 'main, the server, the schema, the context, cli/ and training/ see a module through its index.ts too.',
      from: { path: '^src/', pathNot: '^src/modules/' },
      to: { path: '^src/modules/[^/]+/.+', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'server-does-not-import-main',
      severity: 'error',
      from: { path: '^src/(server|schema|context)/' },
      to: { path: '^src/(main\\.ts|cli/)' },
    },
    {
      name: 'no-src-imports-from-tests-or-bench',
      severity: 'error',
      comment: 'Production code never depends on tests, benchmarks or the web app.',
      from: { path: '^src/' },
      to: { path: '^(test|bench|web)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // A worktree's node_modules may be a link to another checkout's: keep its paths under node_modules/.
    preserveSymlinks: true,
    // src, libraries, and Node's own modules (bare names such as `crypto`), which domain-does-no-io judges.
    includeOnly: ['^(src|node_modules)/', '^[a-z_]+$', '^[a-z_]+/[a-z_]+$', '^node:'],
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
