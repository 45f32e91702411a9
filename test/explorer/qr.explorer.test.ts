/**
 * The QR login's transitions (src/flows/qr/) under every interleaving: the production scan,
 * answer and exchange, the production password reset and password login, over the scheduled Kv.
 * A request is approved by one scanner and exchanged once, and a reset ends every session of the
 * account, the ones an approval or a password from before it is still being turned into included.
 * Each check is shown to catch a mutant of the production file (mutant.ts).
 */
import { describe, it } from 'node:test';
import { readQrRecord } from '../../src/flows/qr/transition.ts';
import { loadMutant, srcFile, writeMutant } from './mutant.ts';
import { assertEveryInterleavingHolds, assertViolationFound } from './verdicts.ts';
import {
  exchange, exploreQr, loginWithOldPassword, reset, resetEndsEverything, scanAndApprove, type ApprovalModule, type PasswordLogin, type QrInvariant,
} from './qr-world.ts';

/** Of the scanners, one at most is answered `authed`, and the record names that one's session. */
const approvedByOne: QrInvariant = async ({ world, final }) => {
  if (world.approvedBy.size > 1) return `approved by one: ${[...world.approvedBy.keys()].join(' and ')} were all answered authed`;
  if (!final) return null;
  const record = await readQrRecord(world.sessions.store, world.uuid);
  const [approver] = world.approvedBy.values();
  if (approver === undefined) return 'approved by one: no scanner got its approval through';
  return record?.scanner_sid === world.scanner(approver).sid ? null : `approved by one: ${approver} approved, the record names ${record?.scanner_sid}`;
};

/** One auth code, one session: of the exchanges, one at most is answered with a token. */
const exchangedOnce: QrInvariant = async ({ world }) =>
  world.exchanged.size <= 1 ? null : `exchanged once: ${[...world.exchanged.keys()].join(' and ')} were all given a session`;

/** Every transition of the record written with a blind SET of what it decided on a read. */
async function blindTransitions(): Promise<ApprovalModule> {
  const transition = writeMutant(srcFile('flows/qr/transition.ts'), [[
    'if (await kv.compareAndSet(key, raw, JSON.stringify(record), { ttlMs: storeTtlMs(record, now) })) {',
    'if (await kv.set(key, JSON.stringify(record), { ttlMs: storeTtlMs(record, now) })) {',
  ]]);
  return loadMutant<ApprovalModule>(srcFile('flows/qr/approval.ts'), [[
    "import { transition, type QrStep } from './transition.ts';",
    `import { transition, type QrStep } from '${transition}';`,
  ]]);
}

type ExchangeModule = typeof import('../../src/flows/qr/exchange.ts');

/** octo-server's exchange: read the record, check it, delete it. Two readers both pass. */
const readThenDeleteExchange = async (): Promise<ExchangeModule['exchangeAuthCode']> => (await loadMutant<ExchangeModule>(srcFile('flows/qr/exchange.ts'), [
  ['  const { record } = await transition(deps.kv, deps.clock, input.uuid, (current, now) => {',
    '  const { record } = await readThenDelete(deps.kv, deps.clock, input.uuid, (current, now) => {'],
  ["import { readQrRecord, transition } from './transition.ts';",
    `import { readQrRecord, transition } from './transition.ts';
import { recordKey as qrRecordKey } from './record.ts';
async function readThenDelete(kv, clock, uuid, step) {
  const current = await readQrRecord(kv, uuid);
  if (current === null) throw notFound('login request');
  const next = step(current, clock.now());
  await kv.del(qrRecordKey(uuid));
  return { record: { ...next, version: current.version + 1 }, changed: true };
}`],
])).exchangeAuthCode;

type ResetModule = typeof import('../../src/flows/code/password-reset.ts');

/** The production reset reversed: sweep the sessions, then set the password. */
const resetSweepingFirst = async (): Promise<ResetModule['resetPassword']> => (await loadMutant<ResetModule>(srcFile('flows/code/password-reset.ts'), [
  ["  await replacePassword(deps, user, await deps.hasher.hash(newPassword));\n  const revoked = await deps.sessions.revokeAll(user.uid, 'password');",
    "  const revoked = await deps.sessions.revokeAll(user.uid, 'password');\n  await replacePassword(deps, user, await deps.hasher.hash(newPassword));"],
])).resetPassword;

type PasswordFlowModule = typeof import('../../src/flows/password/password-flow.ts');

/** A password login that, once its session is indexed, no longer looks whether the password changed. */
const loginNotLookingAgain = async (): Promise<PasswordLogin> => (await loadMutant<PasswordFlowModule>(srcFile('flows/password/password-flow.ts'), [
  ['  await requireUnchangedPassword(deps, user.uid, verifiedHash, response, context);\n  return response;', '  return response;'],
])).passwordLogin;

describe('QR login and password reset under every interleaving', () => {
  it('the owner\'s app and a stranger\'s app scan and approve at once: one approval, the first scanner\'s', async (t) => {
    const result = await exploreQr({
      approved: false,
      protocols: { owner: scanAndApprove('phone'), stranger: scanAndApprove('stranger') },
      invariants: [approvedByOne],
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('one auth code exchanged twice at once: one session', async (t) => {
    const result = await exploreQr({
      approved: true,
      protocols: { exchange1: exchange(), exchange2: exchange() },
      invariants: [exchangedOnce],
      maxRuns: 5_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('an exchange racing a password reset: no session survives the reset, the exchanged one included', async (t) => {
    const result = await exploreQr({
      approved: true,
      resetCode: true,
      protocols: { exchange: exchange(), reset: reset() },
      invariants: [exchangedOnce, resetEndsEverything('reset')],
      maxRuns: 20_000,
    });
    assertEveryInterleavingHolds(t, result);
  });

  it('a login with the old password racing a password reset: no session survives the reset', async (t) => {
    const result = await exploreQr({
      approved: false,
      resetCode: true,
      protocols: { login: loginWithOldPassword(), reset: reset() },
      invariants: [resetEndsEverything('reset')],
      maxRuns: 20_000,
    });
    assertEveryInterleavingHolds(t, result);
  });
});

describe('the explorer finds the race in a broken QR login or password reset', () => {
  it('transitions written with a blind SET let both scanners approve', async (t) => {
    const approval = await blindTransitions();
    const result = await exploreQr({
      approved: false,
      protocols: { owner: scanAndApprove('phone', approval), stranger: scanAndApprove('stranger', approval) },
      invariants: [approvedByOne],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /approved by one: owner and stranger were all answered authed|approved by one: \w+ approved, the record names/);
  });

  it('an exchange done as read-then-delete gives two sessions for one code', async (t) => {
    const exchangeCode = await readThenDeleteExchange();
    const result = await exploreQr({
      approved: true,
      protocols: { exchange1: exchange(exchangeCode), exchange2: exchange(exchangeCode) },
      invariants: [exchangedOnce],
      maxRuns: 5_000,
    });
    assertViolationFound(t, result, /exchanged once: exchange1 and exchange2 were all given a session/);
  });

  it('the production reset reversed (sweep, then set the password) misses the session a concurrent exchange issues', async (t) => {
    const resetPassword = await resetSweepingFirst();
    const result = await exploreQr({
      approved: true,
      resetCode: true,
      protocols: { exchange: exchange(), reset: reset(resetPassword) },
      invariants: [resetEndsEverything('reset')],
      maxRuns: 20_000,
    });
    assertViolationFound(t, result, /reset: the session exchange was given still validates/);
  });

  it('a password login that does not look again after joining the index outlives a concurrent reset', async (t) => {
    const result = await exploreQr({
      approved: false,
      resetCode: true,
      protocols: { login: loginWithOldPassword(await loginNotLookingAgain()), reset: reset() },
      invariants: [resetEndsEverything('reset')],
      maxRuns: 20_000,
    });
    assertViolationFound(t, result, /reset: the session login was given still validates/);
  });
});
