/** GoReplay's selection and rewrite flags, shared by `replay` and `dump --mirror`. */
import { headerRewrite, headerRule, regex, urlRewrite, type Selection } from '../replay/select.js';
import { UsageError } from './common.js';

export const SELECT_FLAGS = {
  'allow-url': { type: 'string', multiple: true }, 'disallow-url': { type: 'string', multiple: true },
  'allow-method': { type: 'string', multiple: true }, 'allow-header': { type: 'string', multiple: true },
  'disallow-header': { type: 'string', multiple: true }, 'allow-side-effects': { type: 'boolean' },
  'sample-by': { type: 'string' }, 'rewrite-url': { type: 'string', multiple: true },
  'rewrite-header': { type: 'string', multiple: true }, 'set-header': { type: 'string', multiple: true },
  'set-param': { type: 'string', multiple: true },
} as const;

export const SELECT_HELP = `  --allow-url RE         send only requests whose target (path?query) matches; repeatable
  --disallow-url RE      never send those that match; repeatable
  --allow-method M       send only these methods; repeatable
  --allow-header 'N: RE' send only requests with header N matching; repeatable
  --disallow-header 'N: RE'  never send those with header N matching; repeatable
  --allow-side-effects   also send POST, PUT, PATCH, DELETE, gRPC and Dubbo calls (held back by default)
  --sample-by header:N|param:N  with --rate N%: keep or drop all requests with the same value together
  --rewrite-url 'RE:REPL'      rewrite the target ($1 for groups); repeatable
  --rewrite-header 'N: RE,REPL'  rewrite header N's value; repeatable
  --set-header 'N: V'    set header N; repeatable
  --set-param k=v        set a query parameter; repeatable`;

type Values = { [K in keyof typeof SELECT_FLAGS]?: (typeof SELECT_FLAGS)[K]['type'] extends 'boolean' ? boolean : (typeof SELECT_FLAGS)[K] extends { multiple: true } ? string[] : string };

export function selectionFrom(v: Values): Selection {
  const wrap = <T>(fn: () => T): T => { try { return fn(); } catch (e) { throw new UsageError((e as Error).message); } };
  const s: Selection = {
    allowUrl: v['allow-url']?.map((r) => wrap(() => regex(r, '--allow-url'))),
    disallowUrl: v['disallow-url']?.map((r) => wrap(() => regex(r, '--disallow-url'))),
    allowMethod: v['allow-method']?.map((m) => m.toUpperCase()),
    allowHeader: v['allow-header']?.map((h) => wrap(() => headerRule(h, '--allow-header'))),
    disallowHeader: v['disallow-header']?.map((h) => wrap(() => headerRule(h, '--disallow-header'))),
    allowSideEffects: v['allow-side-effects'] ?? false,
    rewriteUrl: v['rewrite-url']?.map((r) => wrap(() => urlRewrite(r, '--rewrite-url'))),
    rewriteHeader: v['rewrite-header']?.map((r) => wrap(() => headerRewrite(r, '--rewrite-header'))),
    setHeader: v['set-header']?.map((h) => {
      const c = h.indexOf(':');
      if (c <= 0) throw new UsageError(`--set-header takes 'Name: value', not "${h}"`);
      return { name: h.slice(0, c).trim(), value: h.slice(c + 1).trim() };
    }),
    setParam: v['set-param']?.map((p) => {
      const e = p.indexOf('=');
      if (e <= 0) throw new UsageError(`--set-param takes name=value, not "${p}"`);
      return { name: p.slice(0, e), value: p.slice(e + 1) };
    }),
  };
  if (v['sample-by'] !== undefined) {
    const m = /^(header|param):(.+)$/.exec(v['sample-by']);
    if (!m) throw new UsageError(`--sample-by takes header:NAME or param:NAME, not "${v['sample-by']}"`);
    s.sampleBy = { kind: m[1] as 'header' | 'param', name: m[2] };
  }
  return s;
}

/** `200%`, `2x`, `0.5x`, `2`, or `max`. */
export function parseSpeed(s: string): number | 'max' {
  if (s === 'max') return 'max';
  const m = /^(\d+(?:\.\d+)?)(%|x)?$/.exec(s);
  const n = m ? Number(m[1]) / (m[2] === '%' ? 100 : 1) : NaN;
  if (!m || !(n > 0)) throw new UsageError(`--speed takes 200%, 2x, 0.5x or max, not "${s}"`);
  return n;
}

/** `500ms`, `2s`, `1m`, or plain ms. */
export function parseWait(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new UsageError(`${flag} takes a duration like 500ms or 2s, not "${s}"`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
}

/** GoReplay's `--rate`: `N` a second (returned), or `N%` sampling (set on the selection). */
export function applyRate(spec: string | undefined, selection: Selection): number | undefined {
  if (spec === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(spec);
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--rate takes N (per second) or N% (sampling), not "${spec}"`);
  if (m[2]) { selection.samplePercent = Number(m[1]); return undefined; }
  return Number(m[1]);
}
