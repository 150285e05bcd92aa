/** Header maps from llhttp's [name, value, ...] lists, with the keys a connection repeats reused. */
import type { HeaderMap } from '../../records/types.js';

/**
 * A header shape seen before: its names as sent and lower-cased, and once seen twice a map with its keys,
 * and the function that builds its maps where one could be made.
 */
interface Shape { raw: string[]; lower: string[]; map: HeaderMap | null; make: Maker | null; uses: number }

/** Builds a shape's map from llhttp's [name, value, ...] list: an object literal with the shape's keys. */
type Maker = (raw: string[]) => HeaderMap;

/** Makers by their keys, for the whole process (connections share shapes); past this many it starts again. */
const MAKERS = 512;
const makers = new Map<string, Maker | null>();
/**
 * A connection's template is used this many times before a maker is compiled for it (~40 µs): traffic that
 * changes its header names every few messages pays at most ~2.5 µs a message for them. A shape another
 * connection compiled is used at once.
 */
const COMPILE_AFTER = 16;

/**
 * An object literal of the shape's keys is made in one step from V8's boilerplate, where a copy of the
 * template with a keyed store per header walks the properties again (measured on bench/http1's corpus,
 * eight interleaved A/Bs of 41 rounds against the template copy: decoders 1.03–1.11x the messages per
 * second, full records 1.02–1.08x). Null where code cannot be generated from strings
 * (--disallow-code-generation-from-strings) or for a `__proto__` key (a literal would set the prototype):
 * the template copy is used there. Without `compile`, only a maker already made.
 */
function makerFor(lower: string[], compile: boolean): Maker | null {
  const key = lower.join('\n'); // a header name has no line feed
  let make = makers.get(key);
  if (make !== undefined || !compile) return make ?? null;
  if (makers.size >= MAKERS) makers.clear();
  make = null;
  if (!lower.includes('__proto__')) {
    // Header names are llhttp-validated tokens; JSON.stringify makes each a string literal all the same.
    const body = lower.map((k, i) => `${JSON.stringify(k)}: r[${2 * i + 1}]`).join(', ');
    try { make = new Function('r', `return { ${body} };`) as Maker; } catch { make = null; }
  }
  makers.set(key, make);
  return make;
}

/** Shapes kept per direction (by number of headers); past this many, the cache starts again. */
const SHAPES = 8;
/** Heads with more headers than this are built without a shape (rare, and the name cache resets past 256). */
const SHAPE_HEADERS = 64;

/**
 * Lower-cased header keys, remembered from the previous message of the same direction. A keep-alive
 * connection repeats the same names in the same order, so a string compare usually replaces toLowerCase
 * and the key is already internalised for the property store (measured: ~2x faster header maps).
 * A connection's messages also come in a few shapes (the same names in the same order): the second time a
 * shape comes, a private template of its map is kept, and from the third on the map is a copy of it with
 * the values replaced — one object copy instead of a property added, and a hidden class walked, per header;
 * once a connection has used it 16 times, or another connection compiled it, a literal of its keys (`makerFor`).
 * Measured with decoders and records in one process, two builds interleaved, time per exchange new/old:
 * bench/http1's mix (three request and three response shapes in turn) median 0.97 (0.93–1.00, eight
 * rounds); a wrk-like stream (one request and one answer repeated) median 0.98 (0.94–1.01, eight rounds).
 */
export class HeaderKeys {
  private raw: string[] = [];
  private lower: string[] = [];
  /**
   * Shapes by number of headers. A shape's map is a private template (never handed out: records are the
   * user's to change), made the second time the shape comes, and only when each name came once. (An own
   * `__proto__` key copies as an own key, and assigning it then sets that key, not the prototype.)
   */
  private readonly shapes = new Map<number, Shape>();

  build(raw: string[]): HeaderMap {
    const n = raw.length >> 1;
    const shape = this.shapes.get(n);
    if (shape !== undefined && shape.map !== null && sameNames(raw, shape.raw, n)) {
      if (shape.make !== null) return shape.make(raw);
      if (++shape.uses === COMPILE_AFTER) shape.make = makerFor(shape.lower, true);
      const m: HeaderMap = { ...shape.map };
      const lower = shape.lower;
      for (let k = 0; k < n; k++) m[lower[k]] = raw[2 * k + 1];
      return m;
    }
    const into = this.slow(raw, n);
    if (n > SHAPE_HEADERS) return into;
    if (shape !== undefined && sameNames(raw, shape.raw, n)) {
      // The second time: a template, if every name came once (a repeated one makes an array).
      if (Object.keys(into).length === n) { shape.map = { ...into }; shape.make = makerFor(shape.lower, false); }
    } else {
      if (this.shapes.size >= SHAPES) this.shapes.clear();
      const names: string[] = new Array(n);
      for (let k = 0; k < n; k++) names[k] = raw[2 * k];
      this.shapes.set(n, { raw: names, lower: this.lower.slice(0, n), map: null, make: null, uses: 0 });
    }
    return into;
  }

  private slow(raw: string[], n: number): HeaderMap {
    const into: HeaderMap = {};
    const prevRaw = this.raw;
    const prevLower = this.lower;
    for (let k = 0; k < n; k++) {
      const r = raw[2 * k];
      let name: string;
      if (k < prevRaw.length && prevRaw[k] === r) name = prevLower[k];
      else {
        name = r.toLowerCase();
        prevRaw[k] = r;
        prevLower[k] = name;
      }
      const value = raw[2 * k + 1];
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

function sameNames(raw: string[], names: string[], n: number): boolean {
  for (let k = 0; k < n; k++) if (raw[2 * k] !== names[k]) return false;
  return true;
}
