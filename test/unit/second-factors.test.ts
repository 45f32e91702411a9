/**
 * Second factors (src/flows/mfa/): TOTP as authenticator apps compute it, sealed at rest, each code
 * accepted once; recovery codes used once. On a real SQLite account database.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAccountStore, type AccountStore } from '../../src/adapters/db/open.ts';
import { KyselySecondFactorRepo } from '../../src/adapters/db/second-factor-repo.ts';
import { TokenCipher } from '../../src/flows/oidc/token-cipher.ts';
import { disableTotp, enableTotp, regenerateRecoveryCodes, secondFactorStatus, setupTotp, useSecondFactor, type SecondFactorDeps } from '../../src/flows/mfa/second-factors.ts';
import { TOTP_PERIOD_SECONDS, matchingStep, newTotpSecret, totpCodeAt } from '../../src/flows/mfa/totp.ts';
import { RECOVERY_CODE_COUNT, recoveryCodeHash } from '../../src/flows/mfa/recovery-codes.ts';
import { AuditTrail } from '../../src/ops/audit.ts';
import { cryptoRandom } from '../../src/ports/random.ts';
import { LatchkeyError } from '../../src/core/errors.ts';

const STEP_MS = TOTP_PERIOD_SECONDS * 1000;
const context = { ip: '127.0.0.1', userAgent: 'test' };
const key = (id: string) => ({ id, key: randomBytes(32) });

describe('TOTP secrets and recovery codes', () => {
  it('a secret is the Random port\'s 20 bytes in base32, so tests can choose it', () => {
    const fixed = { bytes: (n: number) => Buffer.alloc(n, 0xff), int: () => 0 };
    assert.equal(newTotpSecret(fixed), '7'.repeat(32));
  });

  it('recovery codes are typed loosely (case, spaces, dashes, O for 0, I and L for 1) and nothing else hashes', () => {
    assert.equal(recoveryCodeHash('u', 'OOOOO-lllll'), recoveryCodeHash('u', '00000-11111'));
    assert.equal(recoveryCodeHash('u', ' oooooIIIII '), recoveryCodeHash('u', '0000011111'));
    for (const bad of ['', '0000', '00000-111111', 'uuuuu-uuuuu', '00000_11111', '00000-1111!']) {
      assert.equal(recoveryCodeHash('u', bad), null, JSON.stringify(bad));
    }
    assert.notEqual(recoveryCodeHash('u', '00000-11111'), null);
  });
});

describe('TOTP codes', () => {
  const secret = 'JBSWY3DPEHPK3PXP';
  const now = 1_700_000_000_000;

  it('match their own step and one step either side, never two', () => {
    const step = Math.floor(now / STEP_MS);
    assert.equal(matchingStep(secret, totpCodeAt(secret, now), now), step);
    assert.equal(matchingStep(secret, totpCodeAt(secret, now - STEP_MS), now), step - 1);
    assert.equal(matchingStep(secret, totpCodeAt(secret, now + STEP_MS), now), step + 1);
    assert.equal(matchingStep(secret, totpCodeAt(secret, now - 2 * STEP_MS), now), null);
    assert.equal(matchingStep(secret, totpCodeAt(secret, now + 2 * STEP_MS), now), null);
  });

  it('are six digits and nothing else', () => {
    const code = totpCodeAt(secret, now);
    for (const bad of ['', `${code} `, ` ${code}`, code.slice(1), `${code}0`, code.replace(/./, 'a')]) {
      assert.equal(matchingStep(secret, bad, now), null, JSON.stringify(bad));
    }
  });

  it('agree with RFC 6238 test vector (SHA-1, T = 59 s → 94287082, last 6 digits)', () => {
    // The RFC's secret is the ASCII "12345678901234567890".
    const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
    assert.equal(totpCodeAt(rfcSecret, 59_000), '287082');
  });
});

describe('enrolling and using second factors', () => {
  let dir = '';
  let store: AccountStore;
  let now = 1_700_000_000_000;
  let deps: SecondFactorDeps;
  const oldKey = key('old');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-mfa-flow-'));
    store = await openAccountStore(`sqlite:${join(dir, 'accounts.db')}`);
    const clock = { now: () => now };
    deps = {
      factors: new KyselySecondFactorRepo(store.db),
      cipher: new TokenCipher([oldKey], cryptoRandom),
      clock,
      random: cryptoRandom,
      audit: new AuditTrail(store.repo, clock, { warn: () => undefined }),
      issuer: 'latchkey-test',
    };
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newUser(): Promise<{ uid: string; username: string }> {
    const uid = `u${randomUUID().slice(0, 12)}`;
    await store.repo.createUser({ uid, username: uid, name: uid, passwordHash: null }, now);
    return { uid, username: uid };
  }

  async function enrolled(): Promise<{ uid: string; secret: string; codes: string[] }> {
    const user = await newUser();
    const { secret } = await setupTotp(deps, user);
    const codes = await enableTotp(deps, user.uid, totpCodeAt(secret, now), context);
    now += STEP_MS;
    return { uid: user.uid, secret, codes };
  }

  it('sets up a secret an app can scan, sealed at rest, inactive until a right code enables it', async () => {
    const user = await newUser();
    const setup = await setupTotp(deps, user);
    assert.match(setup.otpauth_url, new RegExp(`^otpauth://totp/latchkey-test:${user.username}\\?.*secret=${setup.secret}`));
    assert.match(setup.qrcode_svg, /^<svg/);
    assert.deepEqual(await secondFactorStatus(deps, user.uid), { totp: false, recovery_codes_left: 0 });
    const stored = await deps.factors.findTotp(user.uid);
    assert.ok(stored !== null && !stored.sealed.includes(setup.secret), 'the secret is never stored in clear');
    const file = readFileSync(join(dir, 'accounts.db')).toString('latin1');
    assert.ok(!file.includes(setup.secret), 'nor anywhere in the database file');
    assert.equal(await useSecondFactor(deps, user.uid, 'totp', totpCodeAt(setup.secret, now)), false, 'a pending secret proves nothing');

    await assert.rejects(enableTotp(deps, user.uid, '000000' === totpCodeAt(setup.secret, now) ? '111111' : '000000', context),
      (e: unknown) => e instanceof LatchkeyError && e.code === 'invalid_credentials');
    const codes = await enableTotp(deps, user.uid, totpCodeAt(setup.secret, now), context);
    assert.equal(codes.length, RECOVERY_CODE_COUNT);
    assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
    assert.deepEqual(await secondFactorStatus(deps, user.uid), { totp: true, recovery_codes_left: RECOVERY_CODE_COUNT });
    await assert.rejects(setupTotp(deps, user), (e: unknown) => e instanceof LatchkeyError && e.code === 'conflict', 'no silent re-enrolment over an enabled factor');
  });

  it('accepts a TOTP code once: the enabling code, a replay in the same step and a racing copy are refused', async () => {
    const { uid, secret } = await enrolled();
    const code = totpCodeAt(secret, now);
    const racing = await Promise.all(Array.from({ length: 6 }, () => useSecondFactor(deps, uid, 'totp', code)));
    assert.equal(racing.filter(Boolean).length, 1, 'parallel uses of one code: one success');
    assert.equal(await useSecondFactor(deps, uid, 'totp', code), false, 'replayed in the same step');
    assert.equal(await useSecondFactor(deps, uid, 'totp', totpCodeAt(secret, now - STEP_MS)), false, 'an earlier step after a later one');
    now += STEP_MS;
    assert.equal(await useSecondFactor(deps, uid, 'totp', totpCodeAt(secret, now)), true, 'the next step works');
  });

  it('refuses another account\'s codes and a secret sealed for another account', async () => {
    const a = await enrolled();
    const b = await enrolled();
    assert.equal(await useSecondFactor(deps, b.uid, 'totp', totpCodeAt(a.secret, now)), false);
    assert.equal(await useSecondFactor(deps, b.uid, 'recovery', a.codes[0]!), false);
    // A sealed secret copied onto another row does not open there (AAD names the account).
    const sealedA = (await deps.factors.findTotp(a.uid))!.sealed;
    await store.db.withTables<{ totp_factors: { uid: string; sealed: string } }>().updateTable('totp_factors').set({ sealed: sealedA }).where('uid', '=', b.uid).execute();
    now += STEP_MS;
    assert.equal(await useSecondFactor(deps, b.uid, 'totp', totpCodeAt(a.secret, now)), false);
  });

  it('uses a recovery code once, typed loosely, and regenerating kills the old ones', async () => {
    const { uid, codes } = await enrolled();
    const loose = ` ${codes[0]!.toUpperCase().replace('-', ' ')} `;
    const racing = await Promise.all(Array.from({ length: 6 }, () => useSecondFactor(deps, uid, 'recovery', loose)));
    assert.equal(racing.filter(Boolean).length, 1);
    assert.equal(await useSecondFactor(deps, uid, 'recovery', codes[0]!), false, 'used once');
    assert.equal((await secondFactorStatus(deps, uid)).recovery_codes_left, RECOVERY_CODE_COUNT - 1);
    assert.equal(await useSecondFactor(deps, uid, 'recovery', 'not-a-code'), false);
    const fresh = await regenerateRecoveryCodes(deps, uid, context);
    assert.equal(await useSecondFactor(deps, uid, 'recovery', codes[1]!), false, 'old codes died');
    assert.equal(await useSecondFactor(deps, uid, 'recovery', fresh[0]!), true);
    assert.notEqual(recoveryCodeHash(uid, fresh[1]!), recoveryCodeHash('someone-else', fresh[1]!), 'hashes are per account');
  });

  it('enables only a pending secret: none set up, already on, or replaced by a racing setup is a conflict', async () => {
    const conflict = (e: unknown) => e instanceof LatchkeyError && e.code === 'conflict';
    const fresh = await newUser();
    await assert.rejects(enableTotp(deps, fresh.uid, '123456', context), conflict, 'nothing set up');
    const { uid, secret } = await enrolled();
    await assert.rejects(enableTotp(deps, uid, totpCodeAt(secret, now), context), conflict, 'already on');
    // A setup that replaced the pending secret between this call's read and its write: the write is refused.
    const racer = await newUser();
    const first = await setupTotp(deps, racer);
    const racingDeps = {
      ...deps,
      factors: {
        findTotp: async (id: string) => {
          const found = await deps.factors.findTotp(id);
          await setupTotp(deps, racer);
          return found;
        },
        enableTotp: (...args: Parameters<SecondFactorDeps['factors']['enableTotp']>) => deps.factors.enableTotp(...args),
      } as unknown as SecondFactorDeps['factors'],
    };
    await assert.rejects(enableTotp(racingDeps, racer.uid, totpCodeAt(first.secret, now), context), conflict, 'the setup changed meanwhile');
    assert.equal((await deps.factors.findTotp(racer.uid))?.enabledAt, null);
  });

  it('a wrong enabling code, or a secret whose key is gone, enables nothing and is audited as a failure', async () => {
    const user = await newUser();
    const { secret } = await setupTotp(deps, user);
    const gone = { ...deps, cipher: new TokenCipher([key('other')], cryptoRandom) };
    await assert.rejects(enableTotp(gone, user.uid, totpCodeAt(secret, now), context), (e: unknown) => e instanceof LatchkeyError && e.code === 'invalid_credentials');
    const events = await store.repo.queryAudit({ uid: user.uid, limit: 5 });
    assert.deepEqual(events.map((e) => [e.type, e.result, e.reason]), [['mfa_enrol', 'fail', 'totp:wrong_code']]);
    assert.equal((await deps.factors.findTotp(user.uid))?.enabledAt, null);
  });

  it('a server without a key proves no TOTP code, and regenerating codes is audited', async () => {
    const { uid, secret } = await enrolled();
    assert.equal(await useSecondFactor({ ...deps, cipher: null }, uid, 'totp', totpCodeAt(secret, now)), false);
    await regenerateRecoveryCodes(deps, uid, context);
    const [latest] = await store.repo.queryAudit({ uid, limit: 1 });
    assert.deepEqual([latest?.type, latest?.result, latest?.reason], ['mfa_enrol', 'ok', 'recovery_codes']);
  });

  it('opens secrets sealed under an older key after rotation, and not once the key is gone', async () => {
    const { uid, secret } = await enrolled();
    const newKey = key('new');
    const rotated = { ...deps, cipher: new TokenCipher([newKey, oldKey], cryptoRandom) };
    assert.equal(await useSecondFactor(rotated, uid, 'totp', totpCodeAt(secret, now)), true);
    now += STEP_MS;
    const withoutOld = { ...deps, cipher: new TokenCipher([newKey], cryptoRandom) };
    assert.equal(await useSecondFactor(withoutOld, uid, 'totp', totpCodeAt(secret, now)), false);
    const noKey = { ...deps, cipher: null };
    await assert.rejects(setupTotp(noKey, await newUser()), (e: unknown) => e instanceof LatchkeyError && e.code === 'not_found');
  });

  it('disables TOTP with its recovery codes, and audits enrolment and removal', async () => {
    const { uid, codes } = await enrolled();
    assert.equal(await disableTotp(deps, uid, context), true);
    assert.equal(await disableTotp(deps, uid, context), false);
    assert.deepEqual(await secondFactorStatus(deps, uid), { totp: false, recovery_codes_left: 0 });
    assert.equal(await useSecondFactor(deps, uid, 'recovery', codes[2]!), false);
    const events = await store.repo.queryAudit({ uid, limit: 10 });
    assert.deepEqual(events.map((e) => `${e.type}:${e.result}:${e.reason}`).sort(), ['mfa_enrol:ok:totp', 'mfa_remove:ok:totp']);
  });
});

describe('the mfa config section', () => {
  const keyText = randomBytes(32).toString('base64');

  it('seals under mfa.secret_key, else under oidc.token_key, else offers no TOTP', async () => {
    const { parseConfig } = await import('../../src/config/config.ts');
    assert.deepEqual(parseConfig({ mfa: { secret_key: { id: 'm1', key: keyText } } }).mfa.secretKeys.map((k) => k.id), ['m1']);
    assert.deepEqual(parseConfig({ oidc: { token_key: { id: 'o1', key: keyText } } }).mfa.secretKeys.map((k) => k.id), ['o1']);
    assert.deepEqual(parseConfig({}).mfa, { secretKeys: [], issuer: 'latchkey', stepUpSeconds: 300, requireForAdmins: false });
  });

  it('refuses a short key without echoing it, and an issuer with a colon (it would split the otpauth label)', async () => {
    const { parseConfig } = await import('../../src/config/config.ts');
    const { ConfigError } = await import('../../src/config/errors.ts');
    const short = randomBytes(16).toString('base64');
    assert.throws(() => parseConfig({ mfa: { secret_key: { id: 'm1', key: short } } }), (e: unknown) =>
      e instanceof ConfigError && e.message.startsWith('config mfa.secret_key.key: ') && !e.message.includes(short));
    assert.throws(() => parseConfig({ mfa: { issuer: 'a:b' } }), (e: unknown) => e instanceof ConfigError && e.message.startsWith('config mfa.issuer: '));
  });
});

describe('an SSO login\'s amr', () => {
  it('is the ID token\'s amr when it is a short list of short printable strings, else none', async () => {
    const { claimsFrom } = await import('../../src/flows/oidc/idp-claims.ts');
    const token = (amr: unknown) => ({ iss: 'https://idp.test', sub: 's', aud: 'a', exp: 0, iat: 0, amr }) as never;
    assert.deepEqual(claimsFrom(token(['pwd', 'otp'])).amr, ['pwd', 'otp']);
    for (const bad of [undefined, [], 'pwd', [1], ['a b'], ['x'.repeat(33)], Array.from({ length: 11 }, () => 'mfa')]) {
      assert.equal(claimsFrom(token(bad)).amr, null, JSON.stringify(bad));
    }
  });
});
