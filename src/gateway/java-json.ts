/**
 * JSON ↔ Hessian for Java types, for calling Dubbo providers from JSON (rest2dubbo).
 *
 * JSON → Java, by the declared parameter type: `java.lang.String`, `int`/`java.lang.Integer`, `long`,
 * `double`, `boolean`, `java.util.Date` (ISO-8601 or ms), `java.util.List` and arrays (`T[]`),
 * `java.util.Map`, and POJOs by class name (`{ "$class": "com.x.Book", ... }` or the declared type). A long
 * beyond 2^53 cannot be a JSON number exactly: pass it as a string ("9007199254740993").
 *
 * Java → JSON: the answer's value as plain JSON — objects as their fields, no `{ $class, $ }` wrappers,
 * dates as ISO-8601 strings, and longs beyond 2^53 as strings (exact), as hessian.js reads them.
 */

/** A hessian.js typed value. */
export interface Typed { $class: string; $: unknown }

const INT_TYPES = new Set(['int', 'java.lang.Integer', 'short', 'java.lang.Short', 'byte', 'java.lang.Byte']);
const LONG_TYPES = new Set(['long', 'java.lang.Long']);
const DOUBLE_TYPES = new Set(['double', 'java.lang.Double', 'float', 'java.lang.Float']);
const BOOL_TYPES = new Set(['boolean', 'java.lang.Boolean']);

/** A JSON value converted for a declared Java type; throws one sentence when it does not fit. */
export function toJava(value: unknown, type: string, where = 'argument'): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'java.lang.String') {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw new Error(`${where}: a string was expected, not ${JSON.stringify(value)}`);
  }
  if (INT_TYPES.has(type) || LONG_TYPES.has(type)) {
    const long = LONG_TYPES.has(type);
    if (typeof value === 'number' && Number.isInteger(value)) {
      if (!long && (value < -(2 ** 31) || value >= 2 ** 31)) throw new Error(`${where}: ${value} does not fit a Java int`);
      if (long && !Number.isSafeInteger(value)) throw new Error(`${where}: ${value} is beyond 2^53 as a JSON number: pass it as a string`);
      return { $class: long ? 'long' : 'int', $: value };
    }
    if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) {
      const big = BigInt(value);
      if (long ? big < -(2n ** 63n) || big >= 2n ** 63n : big < -(2n ** 31n) || big >= 2n ** 31n) throw new Error(`${where}: ${value} does not fit a Java ${long ? 'long' : 'int'}`);
      return { $class: long ? 'long' : 'int', $: long ? value : Number(value) };
    }
    throw new Error(`${where}: a whole number was expected, not ${JSON.stringify(value)}`);
  }
  if (DOUBLE_TYPES.has(type)) {
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || Number.isNaN(n)) throw new Error(`${where}: a number was expected, not ${JSON.stringify(value)}`);
    return { $class: 'double', $: n };
  }
  if (BOOL_TYPES.has(type)) {
    if (typeof value !== 'boolean') throw new Error(`${where}: true or false was expected, not ${JSON.stringify(value)}`);
    return { $class: 'boolean', $: value };
  }
  if (type === 'java.util.Date') {
    const d = typeof value === 'number' ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
    if (!d || Number.isNaN(d.getTime())) throw new Error(`${where}: a date (ISO-8601 or ms) was expected, not ${JSON.stringify(value)}`);
    return { $class: 'java.util.Date', $: d };
  }
  if (type.endsWith('[]') || type === 'java.util.List' || type === 'java.util.ArrayList') {
    if (!Array.isArray(value)) throw new Error(`${where}: an array was expected`);
    const el = type.endsWith('[]') ? type.slice(0, -2) : 'java.lang.Object';
    return { $class: type.endsWith('[]') ? `[${el}` : 'java.util.ArrayList', $: value.map((v, i) => toJava(v, el, `${where}[${i}]`)) };
  }
  if (type === 'java.util.Map' || type === 'java.util.HashMap') {
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: an object was expected`);
    return { $class: 'java.util.HashMap', $: value };
  }
  if (type === 'java.lang.Object') return value;
  // A POJO: its fields as given (a nested "$class" names a field's own class).
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: an object of ${type} was expected`);
  const fields: Record<string, unknown> = {};
  const v = value as Record<string, unknown>;
  for (const [k, x] of Object.entries(v)) if (k !== '$class') fields[k] = x;
  return { $class: typeof v.$class === 'string' ? v.$class : type, $: fields };
}

/** JVM descriptors (`Ljava/lang/String;J`) from Java type names (`java.lang.String`, `long`). */
export function descriptor(types: readonly string[]): string {
  const prim: Record<string, string> = { int: 'I', long: 'J', double: 'D', float: 'F', boolean: 'Z', byte: 'B', short: 'S', char: 'C', void: 'V' };
  const one = (t: string): string => (t.endsWith('[]') ? `[${one(t.slice(0, -2))}` : prim[t] ?? `L${t.replace(/\./g, '/')};`);
  return types.map(one).join('');
}

/** The answer's value as plain JSON (hessian.js has already unwrapped it; dates and bigints made JSON). */
export function toJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toJson(v)]));
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.$class === 'string' && '$' in o) return toJson(o.$); // a typed value that slipped through
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = toJson(v);
    return out;
  }
  return value;
}
