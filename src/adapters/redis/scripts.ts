/**
 * The Lua scripts behind the Kv operations Redis has no single command for. Each touches one key
 * (KEYS[1]), so it runs unchanged on Redis Cluster. Registered with ioredis' defineCommand, which
 * prefixes KEYS with keyPrefix and uses EVALSHA with a fallback to EVAL.
 */
import type { Cluster, Redis, Result } from 'ioredis';

export const scripts = {
  // Closes: a GET-then-DEL that deletes a value another client wrote in between (docs/design.md §3.2 inv. 2).
  kvCompareAndDelete: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
  },

  // Closes: a GET-then-SET that overwrites a value another client wrote in between.
  // ARGV[3] is 'keepttl', 'px' (then ARGV[4] is the TTL in ms) or 'persist' (no TTL).
  kvCompareAndSet: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'keepttl' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[3] == 'px' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1`,
  },

  // Closes: INCR then PEXPIRE as two calls, where a crash in between leaves a counter that never
  // expires, and where re-arming the TTL on every hit would turn a fixed window into a sliding one.
  kvIncrWithExpiry: {
    numberOfKeys: 1,
    lua: `
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCR', KEYS[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {value, redis.call('PTTL', KEYS[1])}`,
  },
} as const;

export type CompareAndSetTtl = ['keepttl'] | ['px', number] | ['persist'];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    kvCompareAndDelete(key: string, expected: string): Result<number, Context>;
    kvCompareAndSet(key: string, expected: string, value: string, ...ttl: CompareAndSetTtl): Result<number, Context>;
    kvIncrWithExpiry(key: string, ttlMs: number): Result<[number, number], Context>;
  }
}

export function defineScripts(client: Redis | Cluster): void {
  for (const [name, definition] of Object.entries(scripts)) client.defineCommand(name, definition);
}
