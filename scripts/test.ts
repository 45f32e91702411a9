/**
 * `npm test`: every test file under test/, on node:test, but the heavy ones under test/scale/.
 * Arguments narrow the run to files whose path contains one of them: `npm test -- conformance explorer`.
 * `--scale` (`npm run test:scale`) runs the files under test/scale/ instead.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'support' ? [] : testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const SCALE_DIR = join('test', 'scale');
const args = process.argv.slice(2);
const scale = args.includes('--scale');
const filters = args.filter((arg) => arg !== '--scale');
const files = testFiles('test')
  .filter((file) => file.startsWith(SCALE_DIR + '/') === scale)
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
