/**
 * Which recorded requests a replay or mirror sends, and how they are rewritten, in GoReplay's vocabulary.
 * The order (docs/recording.md): allow/disallow by URL, method and header; the side-effect gate; sampling
 * (`--rate N%`, consistent with `--sample-by`); then rewrites (URL, headers, query parameters, Host).
 */
import type { RequestView } from './request.js';

export interface HeaderRule { name: string; re: RegExp }

export interface Selection {
  allowUrl?: RegExp[];
  disallowUrl?: RegExp[];
  /** Methods to keep (upper case). */
  allowMethod?: string[];
  allowHeader?: HeaderRule[];
  disallowHeader?: HeaderRule[];
  /** POST, PUT, PATCH, DELETE and every gRPC or Dubbo call are held back unless this is set. */
  allowSideEffects?: boolean;
  /** Keep this percentage of requests. */
  samplePercent?: number;
  /** Sample consistently: every request with the same value of this header or query parameter together. */
  sampleBy?: { kind: 'header' | 'param'; name: string };
  rewriteUrl?: { re: RegExp; replacement: string }[];
  rewriteHeader?: { name: string; re: RegExp; replacement: string }[];
  setHeader?: { name: string; value: string }[];
  setParam?: { name: string; value: string }[];
  /** Host / :authority for the target (unset with `--keep-host`). */
  host?: string;
}

/** Why a request is not sent (each a counter in the summary), or null to send it. */
export type Verdict = null | 'filtered' | 'side-effect' | 'sampled-out';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export function verdict(s: Selection, v: RequestView): Verdict {
  const target = v.target();
  if (s.allowUrl?.length && !s.allowUrl.some((re) => re.test(target))) return 'filtered';
  if (s.disallowUrl?.some((re) => re.test(target))) return 'filtered';
  if (s.allowMethod?.length && !s.allowMethod.includes(v.method().toUpperCase())) return 'filtered';
  for (const h of s.allowHeader ?? []) if (!h.re.test(v.header(h.name) ?? '')) return 'filtered';
  for (const h of s.disallowHeader ?? []) { const x = v.header(h.name); if (x !== undefined && h.re.test(x)) return 'filtered'; }
  if (!s.allowSideEffects && (v.protocol === 'grpc' || v.protocol === 'dubbo' || !SAFE.has(v.method().toUpperCase()))) return 'side-effect';
  if (s.samplePercent !== undefined && s.samplePercent < 100) {
    let roll: number;
    if (s.sampleBy) {
      const key = s.sampleBy.kind === 'header' ? v.header(s.sampleBy.name) : queryParam(target, s.sampleBy.name);
      roll = key === undefined ? Math.random() * 100 : (fnv1a(key) % 10000) / 100;
    } else roll = Math.random() * 100;
    if (roll >= s.samplePercent) return 'sampled-out';
  }
  return null;
}

export function rewrite(s: Selection, v: RequestView): void {
  if (v.protocol === 'dubbo') return; // replayed as recorded, with a new id
  let target = v.target();
  for (const r of s.rewriteUrl ?? []) target = target.replace(r.re, r.replacement);
  for (const p of s.setParam ?? []) target = withParam(target, p.name, p.value);
  if (target !== v.target()) v.setTarget(target);
  for (const r of s.rewriteHeader ?? []) {
    const cur = v.header(r.name);
    if (cur !== undefined && r.re.test(cur)) v.setHeader(r.name, cur.replace(r.re, r.replacement));
  }
  for (const h of s.setHeader ?? []) v.setHeader(h.name, h.value);
  if (s.host) v.setHost(s.host);
}

function queryParam(target: string, name: string): string | undefined {
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(target.slice(q + 1)).get(name) ?? undefined;
}

function withParam(target: string, name: string, value: string): string {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  params.set(name, value);
  return `${path}?${params.toString()}`;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---- the CLI's spellings ----

/** `'Name: RE'` (GoReplay's --http-allow-header). */
export function headerRule(spec: string, flag: string): HeaderRule {
  const c = spec.indexOf(':');
  if (c <= 0) throw new Error(`${flag} takes 'Name: REGEXP', not "${spec}"`);
  return { name: spec.slice(0, c).trim(), re: regex(spec.slice(c + 1).trim(), flag) };
}

/** `'RE:REPLACEMENT'` ($1 for groups), split at the first colon as GoReplay does. */
export function urlRewrite(spec: string, flag: string): { re: RegExp; replacement: string } {
  const c = spec.indexOf(':');
  if (c <= 0) throw new Error(`${flag} takes 'REGEXP:REPLACEMENT', not "${spec}"`);
  return { re: regex(spec.slice(0, c), flag), replacement: spec.slice(c + 1) };
}

/** `'Name: RE,REPLACEMENT'`. */
export function headerRewrite(spec: string, flag: string): { name: string; re: RegExp; replacement: string } {
  const c = spec.indexOf(':');
  const comma = spec.indexOf(',', c);
  if (c <= 0 || comma < 0) throw new Error(`${flag} takes 'Name: REGEXP,REPLACEMENT', not "${spec}"`);
  return { name: spec.slice(0, c).trim(), re: regex(spec.slice(c + 1, comma).trim(), flag), replacement: spec.slice(comma + 1) };
}

export function regex(s: string, flag: string): RegExp {
  try { return new RegExp(s); } catch (e) { throw new Error(`${flag}: bad regular expression "${s}": ${(e as Error).message}`); }
}
