/** The floor server's session pool (bench/floor-server.ts): the same tokens on both sides. */
import { createHash } from 'node:crypto';

/** The i-th token: as long as latchkey's and as random-looking, but derived, so no list is passed around. */
export function floorToken(i: number): string {
  return createHash('sha256').update(`floor ${i}`).digest('base64url').slice(0, 43);
}

/** A session record of the size and shape latchkey stores under `sess:<sid>`. */
export function floorRecord(i: number): string {
  const now = Date.now();
  return JSON.stringify({
    uid: `u${String(i).padStart(20, '0')}`, device_flag: 1, method: 'password', ip: '127.0.0.1', user_agent: 'autocannon',
    created_at: now, expires_at: now + 3_600_000, device_id: 'bench', device_name: 'bench', device_model: 'autocannon',
  });
}

export function floorTokens(count: number): string[] {
  return Array.from({ length: count }, (_, i) => floorToken(i));
}
