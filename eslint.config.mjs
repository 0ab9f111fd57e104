// Lint: typescript-eslint's recommended rules on the task library, tests, benchmarks and scripts.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', '.tools/**', 'tasks/*/index.js', 'vendor/axios.js', 'demo-output/**', 'bench/results/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      // Answers from outside are parsed as `unknown` where it matters; `any` stays allowed at the JSON edges.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Type-aware: a promise nobody awaits is an error nobody sees.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    files: ['tasks/**/*.ts'],
    rules: {
      // The library's functions stay short: one that grows past 80 lines is split at its seams.
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // The agent boundary: only platform/ reads the environment (platform/agent.ts keeps the copy
    // taken before task-lib changed it); everything else asks platform/ for what it needs.
    files: ['tasks/**/*.ts'],
    ignores: ['tasks/common/platform/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read the agent environment through tasks/common/platform (agent.ts, process.ts).' },
      ],
    },
  },
  {
    // An entry imports runTask alone: runTask installs the output guard, then requires the workflow.
    // A static import here would run (and task-lib would print) before the guard.
    files: ['tasks/*/index.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\.\\./common/platform/task$)', message: 'Entry files import runTask alone; load the workflow in runTask.', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
