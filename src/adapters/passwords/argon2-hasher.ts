/**
 * Password hashing on a pool of threads (docs/design.md §4): argon2id with OWASP's parameters for
 * new hashes; bcrypt hashes imported from octo-server still verify and are flagged for rehash, and so
 * do its legacy double-MD5 hashes once `latchkey import` has wrapped them in argon2id. Every verify
 * costs about one argon2id run, even for an unknown user, so response time does not reveal which
 * usernames exist. How many calls may wait for a thread is core's rule (core/passwords.ts).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { parseOptions } from '@node-rs/argon2';
import type { HashTask } from './hash-worker.ts';
import type { PasswordHasher, PasswordVerdict } from '../../ports/password-hasher.ts';

export interface Argon2Params {
  /** KiB of memory per hash. */
  readonly memoryCost: number;
  /** Passes over the memory. */
  readonly timeCost: number;
  readonly parallelism: number;
}

/** OWASP Password Storage Cheat Sheet, argon2id option 2 (19 MiB, 2 passes, 1 lane). */
export const OWASP_ARGON2: Argon2Params = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

const REJECTED: PasswordVerdict = { ok: false, needsRehash: false };

/**
 * Hashing threads of a node: all cores but one, so that a burst of logins never takes the core the
 * event loop validates tokens on (libuv's 4 threads would take all of a 2-core machine). The threads
 * also run below the event loop's priority (hash-worker.ts).
 */
export const defaultHashConcurrency = (): number => Math.max(1, availableParallelism() - 1);

export interface Argon2HasherOptions extends Partial<Argon2Params> {
  /** Hashing threads: hashes and verifications running at once; more wait their turn. */
  readonly concurrency?: number;
}

export function createArgon2Hasher(options: Argon2HasherOptions = {}): PasswordHasher {
  const params: Argon2Params = {
    memoryCost: options.memoryCost ?? OWASP_ARGON2.memoryCost,
    timeCost: options.timeCost ?? OWASP_ARGON2.timeCost,
    parallelism: options.parallelism ?? OWASP_ARGON2.parallelism,
  };
  const concurrency = options.concurrency ?? defaultHashConcurrency();
  const pool = new Piscina<HashTask, string | boolean>({
    filename: new URL('./hash-worker.ts', import.meta.url).href,
    minThreads: 1,
    maxThreads: concurrency,
    idleTimeout: 60_000,
  });
  let inFlight = 0;
  const run = async (task: HashTask): Promise<string | boolean> => {
    inFlight += 1;
    try {
      return await pool.run(task);
    } finally {
      inFlight -= 1;
    }
  };
  // @node-rs/argon2 makes argon2id v19 by default.
  const hash = async (password: string): Promise<string> => String(await run({ op: 'argon2-hash', password, params }));
  let dummyHash: Promise<string> | undefined;

  async function burnEquivalentWork(password: string): Promise<void> {
    dummyHash ??= hash('latchkey dummy password').catch((error: unknown) => {
      dummyHash = undefined;
      throw error;
    });
    await run({ op: 'argon2-verify', hash: await dummyHash, password }).catch(() => false);
  }

  async function verify(stored: string | null, password: string): Promise<PasswordVerdict> {
    const verdict = stored === null ? null : await verifyKnownScheme(stored, password, params, run);
    if (verdict !== null) return verdict;
    await burnEquivalentWork(password);
    return REJECTED;
  }

  async function wrapLegacyMd5(md5Hex: string): Promise<string> {
    if (!LEGACY_MD5.test(md5Hex)) throw new Error('not a legacy MD5 hash (32 hex digits)');
    return LEGACY_MD5_WRAPPED + (await hash(md5Hex.toLowerCase()));
  }

  const load = () => ({ running: inFlight - pool.queueSize, waiting: pool.queueSize });
  const close = () => pool.destroy();
  return { hash, verify, wrapLegacyMd5, load, close };
}

/** octo-server's legacy column value: 32 hex digits (Go's %x is lower case; accept either). */
export const LEGACY_MD5 = /^[0-9a-fA-F]{32}$/;
/** Prefix of an argon2id hash whose input was the legacy double-MD5 hex, not the password. */
const LEGACY_MD5_WRAPPED = 'octo-md5md5:';

function legacyMd5Of(password: string): string {
  const md5Hex = (input: string) => createHash('md5').update(input, 'utf8').digest('hex');
  return md5Hex(md5Hex(password));
}

const ARGON2ID_V19 = '$argon2id$v=19$';
// octo-server's table holds Go's bcrypt output ($2a$); $2b$ and $2y$ are the same algorithm.
const BCRYPT_PREFIXES = ['$2a$', '$2b$', '$2y$'];

function isBcrypt(stored: string): boolean {
  return BCRYPT_PREFIXES.some((prefix) => stored.startsWith(prefix));
}

type RunTask = (task: HashTask) => Promise<string | boolean>;

/** The verdict of one check on a hashing thread; null when the hash could not be checked (corrupt). */
async function checked(run: RunTask, task: HashTask): Promise<boolean | null> {
  const result = await run(task).catch(() => null);
  return typeof result === 'boolean' ? result : null;
}

/** Null when the hash is not one we can check (unknown scheme, corrupt), so the caller burns the time. */
async function verifyKnownScheme(stored: string, password: string, params: Argon2Params, run: RunTask): Promise<PasswordVerdict | null> {
  if (stored.startsWith(LEGACY_MD5_WRAPPED)) {
    const wrapped = stored.slice(LEGACY_MD5_WRAPPED.length);
    if (parseArgon2(wrapped) === null) return null;
    // A wrapped hash is only a bridge: the first good login replaces it with argon2id(password).
    const ok = await checked(run, { op: 'argon2-verify', hash: wrapped, password: legacyMd5Of(password) });
    return ok === null ? null : { ok, needsRehash: ok };
  }
  if (isBcrypt(stored)) {
    const ok = await checked(run, { op: 'bcrypt-verify', hash: stored, password });
    return ok === null ? null : { ok, needsRehash: ok };
  }
  const found = parseArgon2(stored);
  if (found === null) return null;
  const ok = await checked(run, { op: 'argon2-verify', hash: stored, password });
  if (ok === null) return null;
  return { ok, needsRehash: ok && (!stored.startsWith(ARGON2ID_V19) || weaker(found, params)) };
}

function parseArgon2(stored: string): Argon2Params | null {
  if (!stored.startsWith('$argon2')) return null;
  try {
    return parseOptions(stored);
  } catch {
    return null;
  }
}

function weaker(found: Argon2Params, wanted: Argon2Params): boolean {
  return found.memoryCost < wanted.memoryCost || found.timeCost < wanted.timeCost || found.parallelism < wanted.parallelism;
}

