/** Header maps from llhttp's [name, value, ...] lists, with the keys a connection repeats reused. */
import type { HeaderMap } from '../../records/types.js';

/**
 * Lower-cased header keys, remembered from the previous message of the same direction. A keep-alive
 * connection repeats the same names in the same order, so a string compare usually replaces toLowerCase
 * and the key is already internalised for the property store (measured: ~2x faster header maps).
 */
export class HeaderKeys {
  private raw: string[] = [];
  private lower: string[] = [];

  build(into: HeaderMap, raw: string[], base = 0): HeaderMap {
    const prevRaw = this.raw;
    const prevLower = this.lower;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const r = raw[i];
      const k = base + (i >> 1);
      let name: string;
      if (k < prevRaw.length && prevRaw[k] === r) name = prevLower[k];
      else {
        name = r.toLowerCase();
        prevRaw[k] = r;
        prevLower[k] = name;
      }
      const value = raw[i + 1];
      const prev = into[name];
      if (prev === undefined || !Object.hasOwn(into, name)) {
        // A plain object keeps V8's fast properties (Object.create(null) would not); "__proto__" must not
        // reach the prototype setter, so it is defined rather than assigned.
        if (name === '__proto__') Object.defineProperty(into, name, { value, enumerable: true, writable: true, configurable: true });
        else into[name] = value;
      } else if (typeof prev === 'string') into[name] = [prev, value];
      else prev.push(value);
    }
    if (prevRaw.length > 256) { this.raw = []; this.lower = []; } // bounded, whatever the traffic
    return into;
  }
}
