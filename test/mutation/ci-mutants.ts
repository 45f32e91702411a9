/**
 * The named mutants CI runs (`npm run test:mutants`, scripts/mutants-ci.ts). Each is a textual
 * patch of one source file that breaks one promise of docs/design.md, and each names the test
 * file(s) that must fail on it. A `from` must match its file exactly once: when the code moves on,
 * the script says which mutant to update instead of silently testing nothing.
 *
 * Named tests are picked fast (unit tests with a forced interleaving where a race is the point),
 * so the whole list runs in a few minutes on two cores.
 */
export interface CiMutant {
  readonly name: string;
  readonly file: string;
  /** Replacements applied in order: [exact text, mutated text]. */
  readonly patch: ReadonlyArray<readonly [string, string]>;
  /** Test files that must fail on the mutant. */
  readonly tests: readonly string[];
  /** The promise it breaks, one line. */
  readonly breaks: string;
}

const SERVICE = 'src/core/sessions/service.ts';
const DEVICE_SLOT = 'src/core/sessions/device-slot.ts';
const CODE_STORE = 'src/flows/code/code-store.ts';

export const CI_MUTANTS: readonly CiMutant[] = [
  // --- the four that had survived the whole suite ---
  {
    name: 'slot-blind-set',
    file: DEVICE_SLOT,
    patch: [[': await kv.compareAndSet(slot, previous, taken, { ttlMs });', ': await kv.set(slot, taken, { ttlMs });']],
    tests: ['test/unit/mutant-slot-cas.test.ts'],
    breaks: 'the APP slot is written with a blind SET: an existing APP session plus two concurrent APP logins leave two live APP sessions',
  },
  {
    name: 'ban-sweep-first',
    file: 'src/core/accounts.ts',
    patch: [[
      "    await removeAccess(deps, uid, { status }, options);\n    return deps.sessions.revokeAll(uid, 'ban');",
      "    const ended = await deps.sessions.revokeAll(uid, 'ban');\n    await removeAccess(deps, uid, { status }, options);\n    return ended;",
    ]],
    tests: ['test/security/mutant-ban-order.test.ts'],
    breaks: 'the production ban sweeps the sessions before it sets the status: a login between the two outlives the ban',
  },
  {
    name: 'code-get-then-del',
    file: CODE_STORE,
    patch: [["if (await this.#kv.compareAndDelete(key, stored)) return 'ok';", "await this.#kv.del(key); return 'ok';"]],
    tests: ['test/unit/mutant-code-once.test.ts'],
    breaks: 'a one-time code is consumed by GET then DEL: two simultaneous right guesses both log in',
  },
  {
    name: 'slot-displaced-kept',
    file: DEVICE_SLOT,
    patch: [['await Promise.all(displaced.map(endDisplaced));', 'await Promise.resolve(displaced);']],
    tests: ['test/unit/mutant-slot-cas.test.ts'],
    breaks: 'a login that takes the APP slot does not end the session it displaced: two live APP sessions in the store (what the cluster storm collects)',
  },
  // --- sessions ---
  {
    name: 'logout-not-final',
    file: SERVICE,
    patch: [['const raw = await kv.getdel(sessionKey(sid));', 'const raw = await kv.get(sessionKey(sid));']],
    tests: ['test/unit/mutant-logout-final.test.ts'],
    breaks: 'ending a session reads its record instead of deleting it: the token still validates after logout',
  },
  {
    name: 'slot-release-blind-del',
    file: DEVICE_SLOT,
    patch: [['await kv.compareAndDelete(deviceSlotKey(uid, flag), sid);', 'await kv.del(deviceSlotKey(uid, flag));']],
    tests: ['test/unit/mutant-slot-cas.test.ts'],
    breaks: 'ending a session deletes the APP slot whoever holds it: a concurrent login\'s slot is lost and the next login does not displace it',
  },
  {
    name: 'ban-recheck-skipped',
    file: SERVICE,
    patch: [["if ((await this.#options.accountStatus(input.uid)) !== 'active') {", 'if (false) {']],
    tests: ['test/security/mutant-ban-order.test.ts'],
    breaks: 'a login does not re-check the account status after joining the index: a ban whose sweep ran first never sees it',
  },
  {
    name: 'last-seen-outlives-logout',
    file: 'src/core/sessions/last-seen.ts',
    patch: [['if ((await this.#kv.get(sessionKey(session.sid))) === null) await this.#kv.compareAndDelete(key, stamp);', '']],
    tests: ['test/unit/last-seen-race.test.ts'],
    breaks: 'a last-seen write racing a logout is not looked after: the key outlives the session',
  },
  // --- codes ---
  {
    name: 'code-six-wrong-guesses',
    file: CODE_STORE,
    patch: [['const counted = tries >= MAX_WRONG_GUESSES', 'const counted = tries > MAX_WRONG_GUESSES']],
    tests: ['test/security/codes-guesses.test.ts'],
    breaks: 'the record burns on the sixth wrong guess, not the fifth',
  },
  {
    name: 'code-counter-blind-set',
    file: CODE_STORE,
    patch: [[
      ': await this.#kv.compareAndSet(key, stored, JSON.stringify({ ...record, t: tries }), { keepTtl: true });',
      ': await this.#kv.set(key, JSON.stringify({ ...record, t: tries }), { keepTtl: true });',
    ]],
    tests: ['test/security/codes-guesses.test.ts'],
    breaks: 'a wrong guess is counted by a blind SET: parallel guesses outrun the five-try counter',
  },
  // --- QR ---
  {
    name: 'qr-approver-not-checked',
    file: 'src/flows/qr/approver.ts',
    patch: [['  return (await approverSession(deps, record)) !== null;', '  return true;']],
    tests: ['test/security/qr-approver.test.ts'],
    breaks: 'a QR exchange does not check that the approving app session is still alive: a logged-out phone keeps granting sessions',
  },
  {
    name: 'qr-transition-blind-set',
    file: 'src/flows/qr/transition.ts',
    patch: [[
      'if (await kv.compareAndSet(key, raw, JSON.stringify(record), { ttlMs: storeTtlMs(record, now) })) {',
      'if (await kv.set(key, JSON.stringify(record), { ttlMs: storeTtlMs(record, now) })) {',
    ]],
    tests: ['test/unit/mutant-one-winner.test.ts'],
    breaks: 'a QR step is written with a blind SET: one auth code is exchanged by several racers',
  },
  // --- SSO ---
  {
    name: 'handoff-blind-used',
    file: 'src/flows/oidc/handoff.ts',
    patch: [['return kv.compareAndSet(handoffKey(code), raw, USED, { keepTtl: true });', 'return kv.set(handoffKey(code), USED, { keepTtl: true });']],
    tests: ['test/unit/mutant-one-winner.test.ts'],
    breaks: 'the SSO handoff code is marked used by a blind SET: concurrent exchanges of one code each get a session',
  },
  {
    name: 'return-to-any-host',
    file: 'src/flows/oidc/return-to.ts',
    patch: [['return secure && allowedHosts.some((allowed) => allowed === url.host || allowed === url.hostname);', 'return secure;']],
    tests: ['test/unit/oidc.test.ts'],
    breaks: 'return_to accepts any https host: an open redirect hands the handoff code to the link\'s author',
  },
  {
    name: 'return-to-callback-unchecked',
    file: 'src/flows/oidc/return-to.ts',
    patch: [['  if (!isSafeTarget(returnTo, allowedHosts)) throw refused();\n', '']],
    tests: ['test/unit/mutant-return-to.test.ts'],
    breaks: 'the callback no longer checks the stored return_to before adding its parameter: a stored `//evil.example/x` is answered instead of refused',
  },
  // --- throttles ---
  {
    name: 'throttle-not-reserved',
    file: 'src/core/guards.ts',
    patch: [[
      'const pair = await this.#kv.incr(this.#pairKey(account, ip), this.#limits.lockSeconds * 1000);',
      'const pair = { value: Number((await this.#kv.get(this.#pairKey(account, ip))) ?? 0) + 1, ttlMs: 0 };',
    ]],
    tests: ['test/security/throttle-login.test.ts'],
    breaks: 'a password attempt is not reserved before hashing (the counter is only read): parallel guesses pass the per-address limit',
  },
  {
    name: 'rate-limit-per-address',
    file: 'src/core/guards.ts',
    patch: [['const key = `rl:${name}:${clientNetwork(subject, this.#ipv6Prefix)}`;', 'const key = `rl:${name}:${subject}`;']],
    tests: ['test/security/throttle-ipv6.test.ts'],
    breaks: 'rate limits count each IPv6 address on its own: one /64 has 2^64 budgets',
  },
  {
    name: 'limit-slot-blind-set',
    file: 'src/core/sessions/limit-slot.ts',
    patch: [[': await kv.compareAndSet(key, raw, value, { ttlMs });', ': await kv.set(key, value, { ttlMs });']],
    tests: ['test/unit/session-limits.test.ts'],
    breaks: 'a session limit\'s group slot is written with a blind SET: parallel logins overwrite each other\'s seat and the group holds more than max live sessions',
  },
  {
    name: 'limit-refusal-not-undone',
    file: SERVICE,
    patch: [['        await this.#refuse(session);\n', '']],
    tests: ['test/unit/session-limits.test.ts'],
    breaks: 'a login a reject_new session limit refused answers 409 but keeps its session record, index entry and seats',
  },
  {
    name: 'totp-step-replay',
    file: 'src/adapters/db/second-factor-repo.ts',
    patch: [[".where('enabled_at', 'is not', null).where('last_step', '<', step)", ".where('enabled_at', 'is not', null).where('last_step', '<=', step)"]],
    tests: ['test/conformance/second-factors.test.ts'],
    breaks: 'a TOTP code is accepted again in the step it was used in: a replayed or racing copy of one code passes twice',
  },
  {
    name: 'mfa-ticket-peeked',
    file: 'src/flows/mfa/ticket.ts',
    patch: [['return parse(await this.#kv.getdel(ticketKey(ticket)));', 'return parse(await this.#kv.get(ticketKey(ticket)));']],
    tests: ['test/e2e/mfa.e2e.test.ts'],
    breaks: 'an MFA ticket is read, not taken: parallel verifications (two recovery codes) make two sessions, and a used ticket works again',
  },
  {
    name: 'mfa-ticket-tries-read-first',
    file: 'src/flows/mfa/ticket.ts',
    patch: [['    if (value <= TICKET_MAX_WRONG) return true;', '    if (value <= TICKET_MAX_WRONG * 100) return true;']],
    tests: ['test/e2e/mfa.e2e.test.ts'],
    breaks: 'an MFA ticket allows more than 5 tries of a code: 12 parallel guesses are all checked',
  },
  {
    name: 'step-up-not-required',
    file: 'src/http/step-up.ts',
    patch: [['      if (methods.length > 0) await requireStepUp(deps, session, methods);', '      void methods;']],
    tests: ['test/e2e/mfa.e2e.test.ts'],
    breaks: 'a stolen token that proved no factor can enrol or remove factors, sign out every other device and act as an administrator',
  },
];
