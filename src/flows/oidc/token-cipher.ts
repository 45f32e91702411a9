/**
 * Seals IdP tokens at rest: AES-256-GCM under a configured key, with the key id in the output so
 * keys can rotate, and AAD naming the row the token belongs to, so a ciphertext copied onto another
 * identity row does not open (octo-server had neither, docs/octo-server.md §8.15).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { TokenKey } from '../../config/oidc.ts';
import type { Random } from '../../ports/random.ts';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class TokenCipher {
  readonly #keys: readonly TokenKey[];
  readonly #random: Random;

  constructor(keys: readonly TokenKey[], random: Random) {
    this.#keys = keys;
    this.#random = random;
  }

  /** `v1.<key id>.<iv>.<ciphertext‖tag>`, base64url parts. */
  seal(plaintext: string, aad: string): string {
    const key = this.#keys[0];
    if (key === undefined) throw new Error('oidc.token_key is not configured');
    const iv = this.#random.bytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.key, iv).setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return [VERSION, key.id, iv.toString('base64url'), body.toString('base64url')].join('.');
  }

  /** The plaintext, or null when the key is gone, the AAD differs or the bytes were altered. */
  open(sealed: string, aad: string): string | null {
    const [version, keyId, ivText, bodyText, ...rest] = sealed.split('.');
    const key = this.#keys.find((k) => k.id === keyId);
    if (version !== VERSION || key === undefined || ivText === undefined || bodyText === undefined || rest.length > 0) return null;
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, iv).setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}

/** AAD of a refresh token: its identity row and its own row. */
export const refreshTokenAad = (identityId: string, tokenId: string): string => `oidc-rt:${identityId}:${tokenId}`;
/** AAD of the ID token kept for `id_token_hint`: the session it belongs to. */
export const idTokenAad = (handle: string): string => `oidc-idt:${handle}`;
