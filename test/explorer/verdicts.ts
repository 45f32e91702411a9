/**
 * The two verdicts an explorer test reaches: every interleaving of a scenario holds, or a broken
 * variant's race is found. One definition, so every explorer file asks the same of a search.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Exploration } from './scheduler.ts';

/** The search enumerated every interleaving (more than one) and none broke an invariant. */
export function assertEveryInterleavingHolds(t: TestContext, result: Exploration): void {
  if (result.violation !== null) assert.fail(result.violation.report);
  assert.equal(result.exhausted, true, 'the search stopped before enumerating every interleaving');
  assert.ok(result.interleavings > 1, 'a single order proves nothing about a race');
  t.diagnostic(`${result.interleavings} interleavings explored, all of them`);
}

/**
 * Some interleaving broke an invariant with a message matching `expected`. With `raceOnly` (the
 * default) it must not be the first one, which runs the protocols one after the other, as listed:
 * only a race may break these.
 */
export function assertViolationFound(t: TestContext, result: Exploration, expected: RegExp, { raceOnly = true } = {}): void {
  const { violation } = result;
  if (violation === null) return assert.fail(`no violation in ${result.interleavings} interleavings`);
  t.diagnostic(violation.report);
  assert.match(violation.message, expected, violation.report);
  if (raceOnly) assert.ok(violation.run > 1, `broken already without a race:\n${violation.report}`);
}
