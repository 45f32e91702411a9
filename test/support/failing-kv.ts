import type { Kv } from '../../src/ports/kv.ts';
import { StoreUnavailableError } from '../../src/ports/errors.ts';

/** A real Kv whose next call of a named method fails as if Redis had stopped answering. */
export function failingOnce(inner: Kv): { kv: Kv; failNext: (method: keyof Kv) => void } {
  const armed = new Set<PropertyKey>();
  const kv = new Proxy(inner, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (armed.delete(property)) return Promise.reject(new StoreUnavailableError(`Redis Kv: ${String(property)} timed out`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { kv, failNext: (method) => armed.add(method) };
}
