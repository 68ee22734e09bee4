// ESLint's flat config for the Node shim (pyfn_action/shim) and its tests (tests/shim):
//   tests/node/node_modules/.bin/eslint   (scripts/test.sh runs it from the repository's root)
// The tools are tests/node's development dependencies, resolved from there: nothing is
// installed at the root, and pyfn_action/shim/package.json (which ships) declares none.
'use strict';

const {createRequire} = require('module');
const path = require('path');

const tools = createRequire(path.join(__dirname, 'tests', 'node', 'package.json'));
const js = tools('@eslint/js');
const globals = tools('globals');

module.exports = [
  {
    ignores: ['**/node_modules/**', '**/.cache/**', '.venv/**', 'build/**', 'dist/**'],
  },
  {
    files: ['pyfn_action/shim/**/*.js', 'tests/shim/**/*.js', 'eslint.config.js'],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'commonjs',
      globals: {...globals.node},
    },
    linterOptions: {reportUnusedDisableDirectives: 'error'},
    rules: {
      ...js.configs.recommended.rules,
      // What catches real bugs in Node code, beyond the recommended set.
      'array-callback-return': 'error',
      'eqeqeq': ['error', 'always'],
      'no-caller': 'error',
      'no-constructor-return': 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-new-wrappers': 'error',
      'no-promise-executor-return': 'error',
      'no-proto': 'error',
      'no-return-assign': ['error', 'except-parens'],
      'no-self-compare': 'error',
      'no-shadow': ['error', {builtinGlobals: false, hoist: 'functions'}],
      'no-template-curly-in-string': 'error',
      'no-throw-literal': 'error',
      'no-unmodified-loop-condition': 'error',
      'no-unreachable-loop': 'error',
      'no-unused-expressions': 'error',
      'no-unused-vars': ['error', {args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'all'}],
      'no-use-before-define': ['error', {functions: false, classes: true, variables: false}],
      'no-useless-concat': 'error',
      'no-var': 'error',
      'prefer-const': 'error',
      'radix': 'error',
      'strict': ['error', 'global'],
    },
  },
];
