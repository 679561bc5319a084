/**
 * The layering of ../shared/DESIGN.md §3, enforced: `npm run lint:deps` (run by .ci/run) fails on any
 * import that breaks it.
 *
 *   main → server → schema/context → modules → (domain) → infra contracts → libraries
 *   config/ and shared/ are leaves; cli/ and training/ are entry points beside main.
 *
 * The imports that break a rule today, waiting for the redesign, are listed one by one (rule, from, to)
 * in .dependency-cruiser-known-violations.json (dependency-cruiser's own baseline, `--ignore-known`):
 * a new violation anywhere else fails CI, and so does deleting an entry whose import still exists.
 * Shrink that list as the layering is mended; regenerate it only by `npm run lint:deps:baseline`
 * after removing violations, never to admit new ones.
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
      comment: 'infra/ is the floor: it never imports a module, the schema, the context, the server or main.',
      from: { path: '^src/infra/' },
      to: { path: '^src/(modules|schema|context|server|main\\.ts|cli|training)' },
    },
    {
      name: 'infra-knows-no-graphql-framework',
      severity: 'error',
      comment: 'infra/ must not depend on type-graphql or Apollo: engines stay usable outside the GraphQL server.',
      from: { path: '^src/infra/' },
      to: { path: '^node_modules/(type-graphql|@apollo/)' },
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
    includeOnly: '^(src|node_modules)/',
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
