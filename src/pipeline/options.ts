/**
 * Per-connection options made from shared ones. `{ ...base, client, server, ... }` would be the plain way,
 * but Node 20's V8 gives each object spread from one holding functions and then given new keys a hidden
 * class of its own (measured: 492 classes for 500 objects; 995 of 1000 HTTP/1 decoders' options), so with
 * many connections every read of an option in the decoders' hot paths missed its inline cache, and every
 * connection carried classes of its own. Copying key by key gives them one class. Same result as the
 * spread otherwise, except that an own `__proto__` key is not copied.
 */
export function withOptions<A extends object, B extends object>(base: A, extra: B): Omit<A, keyof B> & B {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base)) if (k !== '__proto__') out[k] = (base as Record<string, unknown>)[k];
  for (const k of Object.keys(extra)) if (k !== '__proto__') out[k] = (extra as Record<string, unknown>)[k];
  return out as Omit<A, keyof B> & B;
}
