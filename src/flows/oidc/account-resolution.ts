/**
 * Who an SSO login is: the account linked to (issuer, sub); else, when the provider allows it, the
 * account whose email or phone the IdP says it *verified* — and which latchkey saw proven too (an
 * address typed at registration belongs to nobody); else a new account. The identity row's
 * unique (issuer, sub) key decides races: a link or creation that loses re-reads the winner, and
 * a creation is one transaction with its identity, so the loser leaves no ghost user behind.
 */
import type { OidcProviderConfig } from '../../config/oidc.ts';
import { normalizeUsername, usernameProblem } from '../../core/usernames.ts';
import { UniqueViolation, type NewUser, type User } from '../../ports/accounts.ts';
import { IdentityTaken, type Identity } from '../../ports/identities.ts';
import type { OidcDeps } from './deps.ts';
import type { IdpClaims } from './idp-claims.ts';
import { SsoFailure } from './failure.ts';

export interface ResolvedAccount {
  readonly user: User;
  readonly identity: Identity;
  readonly how: 'known' | 'linked_email' | 'linked_phone' | 'created';
}

type Deps = Pick<OidcDeps, 'accounts' | 'identities' | 'random' | 'clock' | 'audit'>;

const USERNAME = /^\p{L}[\p{L}\p{N}_.-]{1,31}$/u;

export async function resolveAccount(deps: Deps, config: OidcProviderConfig, issuer: string, claims: IdpClaims): Promise<ResolvedAccount> {
  const known = await findLinked(deps, issuer, claims.sub);
  if (known !== null) return { ...known, how: 'known' };

  const byEmail = config.linkByVerifiedEmail && claims.email !== null && claims.emailVerified
    ? provenOnly(await deps.accounts.findByEmail(claims.email), 'email')
    : null;
  if (byEmail !== null) return link(deps, byEmail, issuer, claims.sub, 'linked_email');
  const byPhone = config.linkByVerifiedPhone && claims.phone !== null && claims.phoneVerified
    ? await findByE164(deps, claims.phone)
    : null;
  if (byPhone !== null) return link(deps, byPhone, issuer, claims.sub, 'linked_phone');

  if (!config.allowNewUsers) throw new SsoFailure({ code: 'account_not_found', result: 'no_account', reason: 'no linked account and new users are not allowed' });
  return create(deps, config, issuer, claims);
}

/**
 * A registrant can type anyone's address; linking an SSO login into that account would hand the
 * address's owner to the registrant (who knows the password). Only a proven address links.
 */
function provenOnly(user: User | null, channel: 'email' | 'phone'): User | null {
  if (user === null) return null;
  return (channel === 'email' ? user.emailVerified : user.phoneVerified) ? user : null;
}

async function findLinked(deps: Deps, issuer: string, sub: string): Promise<{ user: User; identity: Identity } | null> {
  const identity = await deps.identities.findBySubject(issuer, sub);
  if (identity === null) return null;
  const user = await deps.accounts.findByUid(identity.uid);
  if (user === null) throw new SsoFailure({ code: 'account_not_found', result: 'no_account', reason: 'identity links a missing account' });
  return { user, identity };
}

async function link(deps: Deps, user: User, issuer: string, sub: string, how: ResolvedAccount['how']): Promise<ResolvedAccount> {
  // A banned account is not handed a new way in (octo-server linked disabled users, docs/octo-server.md §8.12).
  if (user.status !== 'active') throw new SsoFailure({ code: 'account_disabled', result: 'account_disabled', reason: 'linking target is disabled', uid: user.uid });
  try {
    const identity = await deps.identities.link({ id: newId(deps), issuer, subject: sub, uid: user.uid }, deps.clock.now());
    return { user, identity, how };
  } catch (error) {
    if (!(error instanceof IdentityTaken)) throw error;
    return { ...(await winner(deps, issuer, sub)), how: 'known' };
  }
}

async function create(deps: Deps, config: OidcProviderConfig, issuer: string, claims: IdpClaims): Promise<ResolvedAccount> {
  const uid = deps.random.bytes(16).toString('hex');
  // Only an email the IdP verified is stored: an unverified one would squat on its real owner's address.
  let email = claims.email !== null && claims.emailVerified ? claims.email : null;
  // Proven in latchkey too only when the operator trusts this IdP's word on emails (the setting that
  // lets it link by email): a provider where anyone can sign up and "verify" any address must not
  // make it theirs here, where a code login to it would then land in their account.
  const trusted = email !== null && config.linkByVerifiedEmail;
  let username = ssoUsername(claims.preferredUsername) ?? generatedUsername(deps);
  for (let attempt = 0; attempt < 4; attempt += 1) {
    // The address's owner has just proven it: a registrant's unverified claim on it is dropped.
    if (trusted && email !== null) await releaseClaim(deps, email);
    const user: NewUser = { uid, username, name: displayName(claims, username), email, emailVerified: trusted, passwordHash: null };
    try {
      const created = await deps.identities.createWithAccount(user, { id: newId(deps), issuer, subject: claims.sub, uid }, deps.clock.now(), [
        { type: 'user.created', data: { uid, username, role: 'user', method: 'oidc', by: 'register' } },
      ]);
      return { ...created, how: 'created' };
    } catch (error) {
      if (error instanceof IdentityTaken) return { ...(await winner(deps, issuer, claims.sub)), how: 'known' };
      if (!(error instanceof UniqueViolation)) throw error;
      if (error.field === 'email') email = null;
      else username = generatedUsername(deps);
    }
  }
  throw new SsoFailure({ code: 'server_error', result: 'other_fail', reason: 'could not find a free username' });
}

async function releaseClaim(deps: Deps, email: string): Promise<void> {
  const released = await deps.accounts.releaseUnverified({ channel: 'email', email }, deps.clock.now());
  if (released !== null) await deps.audit.record({ type: 'address_release', uid: released, sid: null, result: 'ok', reason: 'email' });
}

/** The IdP's preferred username when it makes an acceptable latchkey username (normalised, one script). */
function ssoUsername(preferred: string | null): string | null {
  if (preferred === null) return null;
  const username = normalizeUsername(preferred);
  return USERNAME.test(username) && usernameProblem(username) === null ? username : null;
}

/** The account a concurrent login linked first. */
async function winner(deps: Deps, issuer: string, sub: string): Promise<{ user: User; identity: Identity }> {
  const found = await findLinked(deps, issuer, sub);
  if (found === null) throw new SsoFailure({ code: 'server_error', result: 'other_fail', reason: 'identity taken but not found' });
  return found;
}

/**
 * E.164 (`+8613800000000`) to the store's zone and number. Country codes are prefix-free, so of the
 * three possible splits at most one names a real zone; more than one hit is ambiguous and links nothing.
 */
async function findByE164(deps: Deps, phone: string): Promise<User | null> {
  const match = /^\+(\d{5,18})$/.exec(phone.replaceAll(/[\s-]/g, ''));
  const digits = match?.[1];
  if (digits === undefined) return null;
  const candidates = [1, 2, 3].flatMap((length) => [digits.slice(0, length), `00${digits.slice(0, length)}`].map((zone) => ({ zone, number: digits.slice(length) })));
  const found = await Promise.all(candidates.map(({ zone, number }) => deps.accounts.findByPhone(zone, number)));
  const users = new Map(found.map((u) => provenOnly(u, 'phone')).filter((u): u is User => u !== null).map((u) => [u.uid, u]));
  return users.size === 1 ? ([...users.values()][0] ?? null) : null;
}

function displayName(claims: IdpClaims, username: string): string {
  const name = (claims.name ?? claims.preferredUsername ?? username).replaceAll(/\p{Cc}/gu, '').trim().slice(0, 64);
  return name === '' ? username : name;
}

const generatedUsername = (deps: Deps): string => `sso_${deps.random.bytes(6).toString('hex')}`;
const newId = (deps: Deps): string => deps.random.bytes(16).toString('hex');
