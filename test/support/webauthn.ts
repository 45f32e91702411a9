/**
 * A software WebAuthn authenticator for tests without a browser: an ES256 key per credential
 * (node:crypto), `none` attestation, and the few CBOR structures that takes. It answers what a
 * browser's `PublicKeyCredential.toJSON()` would, for the origin it is told it runs on, so tests
 * can also sign for the wrong origin or rp id, replay an answer, or reuse a counter.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

type Cbor = number | string | Uint8Array | Cbor[] | Map<Cbor, Cbor>;

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(length, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Canonical enough CBOR (RFC 8949) for COSE keys and attestation objects. */
export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();

export interface SoftCredential {
  readonly id: string;
  readonly rpId: string;
  readonly userHandle: string;
  readonly privateKey: KeyObject;
  counter: number;
}

export interface CeremonyOptions {
  /** The page origin the browser would write into clientDataJSON. */
  readonly origin: string;
  /** Sign for this rp id instead of the options' (a phishing site's). */
  readonly rpId?: string;
  /** Authenticator flags: user present 0x01, user verified 0x04 (default both). */
  readonly flags?: number;
}

/** An authenticator holding discoverable credentials, as a phone's platform authenticator does. */
export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];
  /** Counter step per signature; 0 models an authenticator that keeps no counter. */
  readonly counterStep: number;

  constructor(counterStep = 1) {
    this.counterStep = counterStep;
  }

  /** navigator.credentials.create(options).toJSON() */
  // Options as latchkey sends them (PublicKeyCredentialCreationOptionsJSON).
  create(options: any, ceremony: CeremonyOptions): Record<string, unknown> {
    const rpId: string = ceremony.rpId ?? options.rp.id;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = cbor(new Map<Cbor, Cbor>([
      [1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x as string, 'base64url')], [-3, Buffer.from(jwk.y as string, 'base64url')],
    ]));
    const credentialId = randomBytes(16);
    const counter = 0;
    const length = Buffer.alloc(2);
    length.writeUInt16BE(credentialId.length);
    const authData = Buffer.concat([
      sha256(rpId), Buffer.from([(ceremony.flags ?? 0x05) | 0x40]), counterBytes(counter), Buffer.alloc(16), length, credentialId, coseKey,
    ]);
    const clientData = JSON.stringify({ type: 'webauthn.create', challenge: options.challenge, origin: ceremony.origin, crossOrigin: false });
    this.credentials.push({ id: b64url(credentialId), rpId, userHandle: options.user.id, privateKey, counter });
    return {
      id: b64url(credentialId),
      rawId: b64url(credentialId),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(Buffer.from(clientData)),
        attestationObject: b64url(cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]))),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get(options).toJSON(), with this authenticator's credential for the rp (or the one named). */
  get(options: any, ceremony: CeremonyOptions & { credentialId?: string }): Record<string, unknown> {
    const rpId: string = ceremony.rpId ?? options.rpId;
    const credential = this.credentials.find((c) => (ceremony.credentialId === undefined ? c.rpId === rpId : c.id === ceremony.credentialId));
    if (credential === undefined) throw new Error(`no credential for ${rpId}`);
    credential.counter += this.counterStep;
    const authData = Buffer.concat([sha256(rpId), Buffer.from([ceremony.flags ?? 0x05]), counterBytes(credential.counter)]);
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin: ceremony.origin, crossOrigin: false }));
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientData),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}

function counterBytes(counter: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(counter);
  return b;
}
