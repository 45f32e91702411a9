/**
 * `npm run mutants [group…]`: StrykerJS over every group of test/mutation/targets.ts (or the named
 * ones), one Stryker run per group so each mutant runs only its group's test files, then the
 * mutation score per file and per group, from the JSON reports in reports/mutation/. Exits 1 when a
 * group is below its target: the target is for the code a group covers as a whole (the session
 * core, the code store, the QR flow); a single file below it shows in the table, and report.md
 * explains each of its survivors.
 *
 * Run it through npm (node_modules/.bin first on PATH): the tap runner starts `node` by name, and
 * that must be the pinned Node with TypeScript type stripping.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GROUPS, type MutationGroup } from './targets.ts';

interface MutantJson { readonly status: string }
interface ReportJson { readonly files: Record<string, { readonly mutants: readonly MutantJson[] }> }

const DETECTED = new Set(['Killed', 'Timeout']);
const COUNTED = new Set(['Killed', 'Timeout', 'Survived', 'NoCoverage']);

const names = process.argv.slice(2);
const unknown = names.filter((n) => !GROUPS.some((g) => g.name === n));
if (unknown.length > 0) {
  console.error(`unknown group(s): ${unknown.join(', ')}; known: ${GROUPS.map((g) => g.name).join(', ')}`);
  process.exit(2);
}
const groups = names.length === 0 ? GROUPS : GROUPS.filter((g) => names.includes(g.name));

const rows: string[] = [];
let below = 0;
for (const group of groups) {
  const run = spawnSync('stryker', ['run'], { stdio: 'inherit', env: { ...process.env, LATCHKEY_MUTANTS_GROUP: group.name } });
  if (run.status !== 0) {
    console.error(`stryker failed on group ${group.name}`);
    process.exit(1);
  }
  const files = scores(group);
  rows.push(...files.map((file) => file.line));
  const detected = files.reduce((sum, file) => sum + file.detected, 0);
  const counted = files.reduce((sum, file) => sum + file.counted, 0);
  const score = counted === 0 ? 1 : detected / counted;
  rows.push(`**group ${group.name}** | ${detected} | ${counted - detected} | ${(score * 100).toFixed(1)} % | ${group.target * 100} %`);
  if (score < group.target) below += 1;
}
console.log(`\nfile | killed | survived | score | target\n---|---|---|---|---\n${rows.join('\n')}`);
process.exit(below === 0 ? 0 : 1);

function scores(group: MutationGroup): Array<{ line: string; detected: number; counted: number }> {
  const report = JSON.parse(readFileSync(join('reports', 'mutation', `${group.name}.json`), 'utf8')) as ReportJson;
  return Object.entries(report.files).map(([file, { mutants }]) => {
    const counted = mutants.filter((m) => COUNTED.has(m.status));
    const detected = counted.filter((m) => DETECTED.has(m.status)).length;
    const score = counted.length === 0 ? 1 : detected / counted.length;
    const line = `${file} | ${detected} | ${counted.length - detected} | ${(score * 100).toFixed(1)} % | ${group.target * 100} %`;
    return { line, detected, counted: counted.length };
  });
}
