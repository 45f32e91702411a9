/**
 * What the mutation suite mutates, and which test files run against each mutant of it.
 *
 * Stryker cannot see coverage inside the servers the e2e tests spawn, so it cannot pick tests per
 * mutant itself: every mutant of a group runs the group's test files (they receive the active
 * mutant through the environment, and so do the servers they start). Each group names only the
 * test files that exercise its sources, so that a run fits on two cores.
 */
export interface MutationGroup {
  /** `npm run mutants -- <name>` runs this group alone. */
  readonly name: string;
  /** Source files (or globs) Stryker mutates. */
  readonly mutate: readonly string[];
  /** Test files run against every mutant of the group, fastest first (the first failure kills it). */
  readonly tests: readonly string[];
  /** Killed share the issue asks of these files (docs: test/mutation/README.md). */
  readonly target: number;
}

export const GROUPS: readonly MutationGroup[] = [
  {
    name: 'token',
    mutate: ['src/core/sessions/token.ts'],
    tests: ['test/unit/mutant-session-token.test.ts', 'test/unit/auth-hook.test.ts'],
    target: 0.9,
  },
  {
    name: 'sessions',
    mutate: ['src/core/sessions/*.ts', '!src/core/sessions/token.ts'],
    tests: [
      'test/unit/mutant-sessions-small.test.ts',
      'test/unit/mutant-sessions-im-quit-queue.test.ts',
      'test/unit/mutant-sessions-im-tokens.test.ts',
      'test/unit/mutant-sessions-service.test.ts',
      'test/unit/mutant-logout-final.test.ts',
      'test/unit/mutant-slot-cas.test.ts',
      'test/unit/session-record.test.ts',
      'test/unit/exclusive-slot-failure.test.ts',
      'test/unit/last-seen-race.test.ts',
      'test/unit/im-tokens.test.ts',
      'test/unit/start-session.test.ts',
      'test/unit/mutant-sessions-touch-memo.test.ts',
      'test/explorer/sessions.explorer.test.ts',
      'test/explorer/im-tokens.explorer.test.ts',
      'test/e2e/sessions.e2e.test.ts',
      'test/e2e/storm.test.ts',
    ],
    target: 0.9,
  },
  // The same files split so each mutant runs only fast in-process tests (the group above, with its
  // e2e, storm and explorer files, takes hours per run on two cores).
  {
    name: 'sessions-small',
    mutate: ['src/core/sessions/keys.ts', 'src/core/sessions/policy.ts', 'src/core/sessions/record.ts', 'src/core/sessions/im-token-value.ts'],
    tests: [
      'test/unit/mutant-sessions-small.test.ts',
      'test/unit/session-record.test.ts',
      'test/unit/mutant-slot-cas.test.ts',
      'test/unit/mutant-logout-final.test.ts',
      'test/unit/im-tokens.test.ts',
    ],
    target: 0.9,
  },
  {
    name: 'sessions-service',
    mutate: ['src/core/sessions/service.ts', 'src/core/sessions/device-slot.ts', 'src/core/sessions/last-seen.ts', 'src/core/sessions/session-im.ts'],
    tests: [
      'test/unit/mutant-sessions-service.test.ts',
      'test/unit/mutant-logout-final.test.ts',
      'test/unit/mutant-slot-cas.test.ts',
      'test/unit/exclusive-slot-failure.test.ts',
      'test/unit/last-seen-race.test.ts',
      'test/unit/start-session.test.ts',
      'test/unit/mutant-sessions-touch-memo.test.ts',
    ],
    target: 0.9,
  },
  {
    name: 'sessions-im-tokens',
    mutate: ['src/core/sessions/im-tokens.ts'],
    tests: ['test/unit/mutant-sessions-im-tokens.test.ts', 'test/unit/im-tokens.test.ts', 'test/unit/mutant-sessions-service.test.ts'],
    target: 0.9,
  },
  {
    name: 'sessions-im-quit-queue',
    mutate: ['src/core/sessions/im-quit-queue.ts'],
    tests: ['test/unit/mutant-sessions-im-quit-queue.test.ts', 'test/unit/im-tokens.test.ts'],
    target: 0.9,
  },
  {
    name: 'accounts',
    mutate: ['src/core/accounts.ts'],
    tests: ['test/security/mutant-accounts.test.ts', 'test/security/mutant-ban-order.test.ts', 'test/security/hardening-last-admin.test.ts', 'test/e2e/admin.e2e.test.ts', 'test/e2e/ban-two-nodes.test.ts'],
    target: 0.8,
  },
  {
    name: 'code-store',
    mutate: ['src/flows/code/code-store.ts'],
    tests: ['test/unit/mutant-code-store.test.ts', 'test/unit/mutant-code-store-contention.test.ts', 'test/unit/mutant-code-once.test.ts', 'test/security/codes-guesses.test.ts', 'test/security/codes-lockout.test.ts', 'test/e2e/codes.e2e.test.ts'],
    target: 0.9,
  },
  {
    name: 'code',
    mutate: ['src/flows/code/*.ts', '!src/flows/code/code-store.ts'],
    tests: [
      'test/unit/mutant-code-flows.test.ts',
      'test/security/codes-guesses.test.ts',
      'test/security/codes-lockout.test.ts',
      'test/security/codes-timing.test.ts',
      'test/security/accounts-unverified-address.test.ts',
      'test/e2e/codes.e2e.test.ts',
      'test/e2e/code-senders.test.ts',
    ],
    target: 0.8,
  },
  {
    name: 'qr',
    // qr-image.ts only renders the picture (the qrcode library's work): see the README's table.
    mutate: ['src/flows/qr/*.ts', '!src/flows/qr/qr-image.ts'],
    tests: [
      'test/unit/mutant-qr-flow.test.ts',
      'test/unit/mutant-one-winner.test.ts',
      'test/security/qr-secrets-at-rest.test.ts',
      'test/security/qr-approver.test.ts',
      'test/security/qr-grant.test.ts',
      'test/e2e/qr.e2e.test.ts',
      'test/security/qr-poll-caps.test.ts',
    ],
    target: 0.9,
  },
  {
    name: 'guards',
    mutate: ['src/core/guards.ts'],
    tests: [
      'test/unit/mutant-guards-throttle.test.ts',
      'test/security/throttle-ipv6.test.ts',
      'test/security/throttle-login.test.ts',
      'test/security/throttle-hash-queue.test.ts',
      'test/security/throttle-password-change.test.ts',
      'test/e2e/guards.test.ts',
    ],
    target: 0.8,
  },
  {
    name: 'return-to',
    mutate: ['src/flows/oidc/return-to.ts'],
    tests: ['test/unit/oidc.test.ts', 'test/unit/mutant-return-to.test.ts', 'test/security/oidc-return-to.test.ts'],
    target: 0.8,
  },
  {
    name: 'handoff',
    mutate: ['src/flows/oidc/handoff.ts'],
    tests: ['test/unit/mutant-handoff.test.ts', 'test/unit/mutant-one-winner.test.ts', 'test/e2e/oidc-attacks.test.ts', 'test/security/oidc-binding-cookie.test.ts'],
    target: 0.8,
  },
  {
    name: 'mfa',
    mutate: ['src/flows/mfa/totp.ts', 'src/flows/mfa/recovery-codes.ts', 'src/flows/mfa/second-factors.ts', 'src/adapters/db/second-factor-repo.ts'],
    tests: ['test/unit/second-factors.test.ts', 'test/conformance/second-factors.test.ts'],
    target: 0.8,
  },
];
