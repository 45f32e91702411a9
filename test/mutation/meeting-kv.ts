/**
 * Forces the interleaving a compare-and-set exists for, without timing: once armed with `count`,
 * the next `count` reads of `key` each wait until all of them have read, so every racer decides
 * on the same value before any of them writes. The tests that kill the CI mutants use it.
 */
import type { Kv } from '../../src/ports/kv.ts';

export function readsMeetingAt(inner: Kv, key: string): { kv: Kv; arm: (count: number) => void } {
  let waiting: Array<() => void> = [];
  let remaining = 0;
  const get = async (k: string): Promise<string | null> => {
    const value = await inner.get(k);
    if (k !== key || remaining === 0) return value;
    remaining -= 1;
    await new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (remaining === 0) {
        for (const release of waiting) release();
        waiting = [];
      }
    });
    return value;
  };
  const kv = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'get') return get;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { kv, arm: (count) => { remaining = count; } };
}
