/**
 * Which latchkey sessions came from which IdP session and identity, so a back-channel logout
 * (by `sid` or by `sub`) and the sync worker can find them. Single-key operations only:
 *
 * - `oidc:sess:<sid>`: the session's SSO record (provider, identity, IdP sid, refresh token id,
 *   sealed ID token), written once with NX;
 * - `oidc:idpsess:<h(issuer, idp sid)>`: hash sid → uid, the sessions of one IdP session;
 * - `user:{uid}:oidc:<identity id>`: hash sid → '1', the user's sessions from that identity.
 *
 * Each session adds and removes only its own hash fields; the shared hashes are never deleted,
 * only left to expire (no blind delete can drop a concurrent login's entry, docs/design.md §3.2 inv. 2).
 * A link lives no longer than its session: whatever ends a session (logout, revoke, ban, a login
 * that replaced it) removes its link through `forgetSession`, and an exchange links first and
 * then checks its session still exists, so a revoke racing it leaves nothing either way round. A
 * link whose session is gone anyway (a node stopped in between) is pruned at its identity's next
 * SSO login; the TTL, the session's own lifetime, is only the last resort.
 *
 * An IdP logout also leaves a short-lived mark with its time, which an exchange whose IdP login
 * predates it finds after indexing itself: whichever runs second sees the other (as ban does).
 */
import { createHash } from 'node:crypto';
import type { Kv } from '../../ports/kv.ts';
import type { SessionService } from '../../core/sessions/service.ts';
import { sessionKey } from '../../core/sessions/keys.ts';

export interface SessionLink {
  readonly provider: string;
  readonly issuer: string;
  readonly uid: string;
  readonly identityId: string;
  readonly idpSid: string | null;
  readonly refreshTokenId: string | null;
  readonly idToken: { readonly handle: string; readonly sealed: string } | null;
}

/** Long enough to outlive any handoff code issued before the logout. */
const LOGOUT_MARK_TTL_MS = 15 * 60 * 1000;

const digest = (...parts: string[]): string => createHash('sha256').update(parts.join('\n')).digest('base64url');
const linkKey = (sid: string): string => `oidc:sess:${sid}`;
const idpSessionKey = (issuer: string, idpSid: string): string => `oidc:idpsess:${digest(issuer, idpSid)}`;
const identityKey = (uid: string, identityId: string): string => `user:{${uid}}:oidc:${identityId}`;
const idpSessionEndedKey = (issuer: string, idpSid: string): string => `oidc:idpsess-ended:${digest(issuer, idpSid)}`;
const identityEndedKey = (uid: string, identityId: string): string => `user:{${uid}}:oidc:${identityId}:ended`;

export async function linkSession(kv: Kv, sid: string, link: SessionLink, ttlMs: number): Promise<void> {
  await kv.set(linkKey(sid), JSON.stringify(link), { nx: true, ttlMs });
  await addField(kv, identityKey(link.uid, link.identityId), sid, '1', ttlMs);
  if (link.idpSid !== null) await addField(kv, idpSessionKey(link.issuer, link.idpSid), sid, link.uid, ttlMs);
}

export async function readLink(kv: Kv, sid: string): Promise<SessionLink | null> {
  const raw = await kv.get(linkKey(sid));
  return raw === null ? null : (JSON.parse(raw) as SessionLink);
}

/** Removes this session's own entries (its record is only ever written by its own exchange). */
export async function unlinkSession(kv: Kv, sid: string, link: SessionLink): Promise<void> {
  await kv.hdel(identityKey(link.uid, link.identityId), sid);
  if (link.idpSid !== null) await kv.hdel(idpSessionKey(link.issuer, link.idpSid), sid);
  await kv.del(linkKey(sid));
}

/** A session ended (any way): its link goes with it. */
export async function forgetSession(kv: Kv, sid: string): Promise<void> {
  const link = await readLink(kv, sid);
  if (link !== null) await unlinkSession(kv, sid, link);
}

/** True when the session is still alive; otherwise its link (if any) is removed. */
export async function keepIfAlive(kv: Kv, sid: string, link: SessionLink): Promise<boolean> {
  if ((await kv.get(sessionKey(sid))) !== null) return true;
  await unlinkSession(kv, sid, link);
  return false;
}

/** Removes this identity's links whose session no longer exists. */
export async function pruneIdentityLinks(kv: Kv, uid: string, identityId: string): Promise<void> {
  const key = identityKey(uid, identityId);
  const sids = Object.keys(await kv.hgetall(key));
  const alive = await Promise.all(sids.map(async (sid) => (await kv.get(sessionKey(sid))) !== null));
  for (const [index, sid] of sids.entries()) {
    if (alive[index] === true) continue;
    const link = await readLink(kv, sid);
    // Only a link of this very identity is removed whole; a stray field goes alone.
    if (link !== null && link.uid === uid && link.identityId === identityId) await unlinkSession(kv, sid, link);
    else await kv.hdel(key, sid);
  }
}

/** True when the IdP logged this login out after `since` (by its session or the whole identity). */
export async function loggedOutAtIdpSince(kv: Kv, link: SessionLink, since: number): Promise<boolean> {
  const marks = await Promise.all([
    kv.get(identityEndedKey(link.uid, link.identityId)),
    link.idpSid === null ? null : kv.get(idpSessionEndedKey(link.issuer, link.idpSid)),
  ]);
  return marks.some((mark) => mark !== null && Number(mark) >= since);
}

/** Back-channel logout by `sid`: ends every latchkey session of that IdP session. */
export async function endIdpSession(kv: Kv, sessions: SessionService, issuer: string, idpSid: string, now: number): Promise<number> {
  await kv.set(idpSessionEndedKey(issuer, idpSid), String(now), { ttlMs: LOGOUT_MARK_TTL_MS });
  const key = idpSessionKey(issuer, idpSid);
  let ended = 0;
  for (const [sid, uid] of Object.entries(await kv.hgetall(key))) {
    if (await endLinked(kv, sessions, uid, sid)) ended += 1;
    await kv.hdel(key, sid);
  }
  return ended;
}

/** Back-channel logout by `sub` alone, or a refresh token the IdP refused: every session of the identity. */
export async function endIdentitySessions(
  kv: Kv, sessions: SessionService, uid: string, identityId: string, now: number, mark: boolean,
): Promise<number> {
  if (mark) await kv.set(identityEndedKey(uid, identityId), String(now), { ttlMs: LOGOUT_MARK_TTL_MS });
  const key = identityKey(uid, identityId);
  let ended = 0;
  for (const sid of Object.keys(await kv.hgetall(key))) {
    if (await endLinked(kv, sessions, uid, sid)) ended += 1;
    await kv.hdel(key, sid);
  }
  return ended;
}

async function endLinked(kv: Kv, sessions: SessionService, uid: string, sid: string): Promise<boolean> {
  // revoke() checks the sid is in this uid's index, so a stale or forged entry ends nobody else's session.
  const ended = await sessions.revoke(uid, sid, 'idp_logout');
  const link = await readLink(kv, sid);
  if (link !== null && link.uid === uid) await unlinkSession(kv, sid, link);
  return ended;
}

async function addField(kv: Kv, key: string, field: string, value: string, ttlMs: number): Promise<void> {
  await kv.hset(key, field, value);
  // The index lives as long as its longest session: only ever lengthened (EXPIRE GT), except that a
  // key just created by this HSET has no TTL yet.
  await kv.expire(key, ttlMs, (await kv.pttl(key)) === -1 ? 'always' : 'gt');
}
