// ESLint over src, test, bench, db and web (typescript-eslint's recommended rules, without type
// information: the type-checker already runs in CI, and typed linting would double its time).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'web/dist/', 'data/', 'test-artifacts/', '**/generated/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'error',
    },
  },
  {
    // Plain-JavaScript tools run by node without tsx (tools/build.mjs runs before `npm start`).
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', performance: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    // src/config is the only reader of the environment (DESIGN.md §3): everything else gets a validated Config.
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through src/config (loadConfig), the only reader of process.env.',
        },
      ],
    },
  },
  {
    // Tests, benchmarks and CLIs talk to a terminal on purpose.
    files: ['test/**', 'bench/**', 'src/cli/**', 'db/**', 'tools/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests edit arbitrary JSON (manifests, payloads) to build bad inputs; `any` is the honest type there.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
