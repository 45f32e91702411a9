/**
 * The few claims latchkey uses, read from the validated ID token and, for what it lacks, from the
 * userinfo endpoint — whose answer openid-client accepts only when its `sub` is the ID token's
 * (OIDC Core §5.3.2: otherwise it may describe someone else). Email and phone travel with their
 * own `*_verified` flag from the same source, never mixed.
 */
import * as client from 'openid-client';
import type { IDToken, UserInfoResponse } from 'openid-client';

export interface IdpClaims {
  readonly sub: string;
  readonly sid: string | null;
  readonly email: string | null;
  readonly emailVerified: boolean;
  readonly phone: string | null;
  readonly phoneVerified: boolean;
  readonly name: string | null;
  readonly preferredUsername: string | null;
  /** The ID token's `amr` (how the IdP authenticated the person), recorded in the session; null if absent. */
  readonly amr: readonly string[] | null;
}

type ClaimSource = IDToken | UserInfoResponse;

export function claimsFrom(idToken: IDToken): IdpClaims {
  return {
    sub: idToken.sub,
    sid: text(idToken.sid),
    ...emailOf(idToken),
    ...phoneOf(idToken),
    name: text(idToken.name),
    preferredUsername: text(idToken.preferred_username),
    amr: amrOf(idToken.amr),
  };
}

/** At most 10 short printable values; anything else is no `amr` at all. */
function amrOf(value: unknown): readonly string[] | null {
  if (!Array.isArray(value) || value.length === 0 || value.length > 10) return null;
  return value.every((v) => typeof v === 'string' && /^[\x21-\x7e]{1,32}$/.test(v)) ? value as string[] : null;
}

/** Fills what the ID token lacked from userinfo; a userinfo failure leaves the claims as they are. */
export async function withUserInfo(
  config: client.Configuration, accessToken: string, claims: IdpClaims, onError: (error: unknown) => void,
): Promise<IdpClaims> {
  const missing = claims.email === null || claims.phone === null || claims.name === null;
  if (!missing || config.serverMetadata().userinfo_endpoint === undefined) return claims;
  let info: UserInfoResponse;
  try {
    info = await client.fetchUserInfo(config, accessToken, claims.sub);
  } catch (error) {
    onError(error);
    return claims;
  }
  const email = emailOf(info);
  const phone = phoneOf(info);
  return {
    ...claims,
    ...(claims.email === null ? email : {}),
    ...(claims.phone === null ? phone : {}),
    name: claims.name ?? text(info.name),
    preferredUsername: claims.preferredUsername ?? text(info.preferred_username),
  };
}

function emailOf(source: ClaimSource): { email: string | null; emailVerified: boolean } {
  const email = text(source.email);
  return { email: email?.toLowerCase() ?? null, emailVerified: email !== null && verified(source.email_verified) };
}

function phoneOf(source: ClaimSource): { phone: string | null; phoneVerified: boolean } {
  const phone = text(source.phone_number);
  return { phone, phoneVerified: phone !== null && verified(source.phone_number_verified) };
}

/** Some IdPs send the string "true"; anything else is unverified. */
function verified(value: unknown): boolean {
  return value === true || value === 'true';
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' && value.length <= 512 ? value : null;
}
