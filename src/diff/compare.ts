/**
 * Differences between two answers, typed per field path: `value changed`, `type changed`, `missing` (in
 * the second), `extra` (only in the second), `array length`, `order`. Paths are reported with array
 * indexes collapsed (`body.items[].price`), so the same field of every element counts as one field.
 */
import type { Answer } from './answer.js';

export type DiffKind = 'value changed' | 'type changed' | 'missing' | 'extra' | 'array length' | 'order';

export interface Difference {
  /** `status`, `header.content-type`, `body`, `body.items[].price`. */
  path: string;
  kind: DiffKind;
}

export interface CompareOptions {
  /** Field paths never compared (as `IgnoreRule`s: a path and everything under it). */
  ignore?: readonly string[];
  /** Headers never compared (lower case). Default: hop-by-hop and volatile ones (DEFAULT_IGNORED_HEADERS). */
  ignoreHeaders?: readonly string[];
  /** Compare arrays as multisets: the same elements in any order are equal. */
  unorderedArrays?: boolean;
}

export const DEFAULT_IGNORED_HEADERS = [
  // hop-by-hop (RFC 9110 §7.6.1) and framing
  'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authenticate', 'content-length',
  // volatile by nature
  'date', 'expires', 'last-modified', 'age', 'etag', 'x-request-id', 'x-trace-id', 'traceparent', 'tracestate', 'server-timing', 'x-response-time',
];

/**
 * `--ignore` rules: `header:NAME`, or `json:$.a.b`, `json:$.items[*].id` (also `[]`), `json:$.*.id` — a
 * JSONPath subset over the body. Returns the path prefix to ignore; throws one sentence on anything else.
 */
export function ignoreRule(spec: string): string {
  const h = /^header:([A-Za-z0-9!#$%&'*+.^_`|~-]+)$/.exec(spec);
  if (h) return `header.${h[1].toLowerCase()}`;
  const j = /^json:\$((?:\.[A-Za-z0-9_$-]+|\.\*|\[(?:\*|\d+)?\])*)$/.exec(spec);
  if (j) return `body${j[1].replace(/\[(?:\*|\d+)?\]/g, '[]')}`;
  throw new Error(`unknown --ignore rule "${spec}": use header:NAME or json:$.path.to.field (with [*] for array elements)`);
}

export function compare(a: Answer, b: Answer, opts: CompareOptions = {}): Difference[] {
  const out: Difference[] = [];
  const ignored = opts.ignore ?? [];
  const skip = (path: string) => ignored.some((p) => matches(p, path));
  const push = (path: string, kind: DiffKind) => { if (!skip(path)) out.push({ path, kind }); };
  if (a.status !== b.status) push('status', 'value changed');
  const hidden = new Set(opts.ignoreHeaders ?? DEFAULT_IGNORED_HEADERS);
  for (const k of new Set([...Object.keys(a.headers), ...Object.keys(b.headers)])) {
    if (hidden.has(k)) continue;
    const x = a.headers[k];
    const y = b.headers[k];
    if (x === y) continue;
    push(`header.${k}`, x === undefined ? 'extra' : y === undefined ? 'missing' : 'value changed');
  }
  if (a.kind !== b.kind && a.kind !== 'none' && b.kind !== 'none') push('body', 'type changed');
  else diffValue(a.body, b.body, 'body', push, skip, opts.unorderedArrays ?? false);
  return out;
}

/** A rule path matches the field and everything under it; `*` matches one key. */
function matches(rule: string, path: string): boolean {
  if (!rule.includes('*')) return path === rule || path.startsWith(rule + '.') || path.startsWith(rule + '[');
  const escaped = rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${escaped.replace(/\\\.\\\*/g, '\\.[^.[]+')}(?:$|[.[])`);
  return re.test(path);
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function diffValue(a: unknown, b: unknown, path: string, push: (p: string, k: DiffKind) => void, skip: (p: string) => boolean, unordered: boolean): void {
  if (skip(path)) return;
  const ta = typeOf(a);
  const tb = typeOf(b);
  if (ta !== tb) {
    push(path, a === undefined ? 'extra' : b === undefined ? 'missing' : 'type changed');
    return;
  }
  if (ta === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    const el = `${path}[]`;
    if (unordered || x.length !== y.length || !sameOrder(x, y)) {
      const cx = x.map(canonical);
      const cy = y.map(canonical);
      const sameBag = cx.length === cy.length && [...cx].sort().every((v, i) => v === [...cy].sort()[i]);
      if (sameBag) { if (!unordered) push(path, 'order'); return; }
      if (x.length !== y.length) push(path, 'array length');
      if (unordered) {
        // Without an order, compare each element with its nearest counterpart: by sorted canonical form.
        const sx = x.map((v, i) => [cx[i], v] as const).sort((p, q) => (p[0] < q[0] ? -1 : 1));
        const sy = y.map((v, i) => [cy[i], v] as const).sort((p, q) => (p[0] < q[0] ? -1 : 1));
        for (let i = 0; i < Math.min(sx.length, sy.length); i++) diffValue(sx[i][1], sy[i][1], el, push, skip, unordered);
        return;
      }
    }
    for (let i = 0; i < Math.min(x.length, y.length); i++) diffValue(x[i], y[i], el, push, skip, unordered);
    return;
  }
  if (ta === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const p = /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
      diffValue(Object.hasOwn(x, k) ? x[k] : undefined, Object.hasOwn(y, k) ? y[k] : undefined, p, push, skip, unordered);
    }
    return;
  }
  if (!Object.is(a, b)) push(path, 'value changed');
}

function sameOrder(x: unknown[], y: unknown[]): boolean {
  for (let i = 0; i < x.length; i++) if (canonical(x[i]) !== canonical(y[i])) return false;
  return true;
}

/** JSON with sorted keys: equal values give equal strings. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}
