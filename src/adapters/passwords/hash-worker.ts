/**
 * A password hashing thread: argon2-hasher.ts runs a pool of them (password.concurrency threads).
 *
 * Each thread first lowers its own scheduling priority. On Linux the nice value belongs to a
 * thread, not to the process, so the event loop keeps its priority: while logins hash, token
 * validation still gets the core it needs (a 19 MiB argon2id run takes a core for ~17 ms, and
 * libuv's pool would otherwise compete with the event loop as an equal).
 */
import { setPriority } from 'node:os';
import { hashSync, verifySync, type Options } from '@node-rs/argon2';
import bcrypt from 'bcryptjs';

/** Below the event loop's 0; raising one's own nice value needs no privilege. */
const HASHING_NICE = 10;

try {
  setPriority(0, HASHING_NICE);
} catch {
  // Not permitted here (a sandbox): hashing runs at normal priority.
}

export type HashTask =
  | { readonly op: 'argon2-hash'; readonly password: string; readonly params: Options }
  | { readonly op: 'argon2-verify'; readonly hash: string; readonly password: string }
  | { readonly op: 'bcrypt-verify'; readonly hash: string; readonly password: string };

export default function run(task: HashTask): string | boolean {
  switch (task.op) {
    case 'argon2-hash':
      return hashSync(task.password, task.params);
    case 'argon2-verify':
      return verifySync(task.hash, task.password);
    case 'bcrypt-verify':
      return bcrypt.compareSync(task.password, task.hash);
  }
}
