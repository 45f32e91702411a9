// StrykerJS over node --test (the tap runner), one group of test/mutation/targets.ts per run:
// scripts/mutants.ts sets LATCHKEY_MUTANTS_GROUP and runs Stryker once per group.
import { GROUPS } from './test/mutation/targets.ts';

const name = process.env.LATCHKEY_MUTANTS_GROUP ?? 'return-to';
const group = GROUPS.find((g) => g.name === name);
if (group === undefined) throw new Error(`unknown mutation group ${name}`);
// LATCHKEY_MUTANTS_TESTS (space-separated) replaces the group's tests: to see what a test adds.
const tests = process.env.LATCHKEY_MUTANTS_TESTS?.split(' ').filter(Boolean) ?? [...group.tests];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  mutate: [...group.mutate],
  tap: {
    testFiles: tests,
    // node --test in this process (no isolation), so Stryker's hook sees the instrumented code;
    // the servers a test spawns get the active mutant through the environment.
    nodeArgs: ['--test', '--test-isolation=none', '--test-concurrency=1', '--test-reporter=tap', '--test-timeout=300000'],
    forceBail: true,
  },
  // Coverage from spawned servers is invisible to Stryker: run every test of the group per mutant.
  coverageAnalysis: 'off',
  concurrency: Number(process.env.LATCHKEY_MUTANTS_CONCURRENCY ?? 2),
  timeoutMS: 60_000,
  timeoutFactor: 2,
  disableBail: false,
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: `reports/mutation/${group.name}.json` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  ignorePatterns: ['reports', 'data', 'bench/results', '.tmp'],
};
