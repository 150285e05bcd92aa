/**
 * Trace context from headers (HTTP), metadata (gRPC) or attachments (Dubbo): one rule set for every protocol,
 * as `record.md` orders it. Names match case-insensitively; the first source that yields a value wins.
 */

export interface TraceOptions {
  /** Extra header/metadata/attachment names holding a trace id, tried after the standard ones. */
  traceKeys?: readonly string[];
  /** Extra names holding a span id. */
  spanKeys?: readonly string[];
}

export interface TraceContext {
  traceId: string | null;
  spanId: string | null;
  xRequestId: string | null;
}

/** Looks a lower-case name up; returns the first value when repeated. */
export type FieldLookup = (lowerName: string) => string | undefined;

/** A lookup over a map whose keys are already lower-case (HTTP/1 headers, HTTP/2 and gRPC metadata). */
export function lowerCaseLookup(map: Record<string, unknown>): FieldLookup {
  return (name) => first(map[name]);
}

/**
 * A lookup over a map with keys in any case (Dubbo attachments): an exact hit first, else a scan comparing
 * lengths before case. Records ask a handful of names of a handful of keys, so no lower-cased copy is built.
 */
export function anyCaseLookup(map: Record<string, unknown> | Map<string, unknown>): FieldLookup {
  if (map instanceof Map) map = Object.fromEntries(map);
  const m = map;
  return (name) => {
    const exact = m[name];
    if (exact !== undefined && Object.hasOwn(m, name)) return first(exact);
    for (const k in m) if (k.length === name.length && k.toLowerCase() === name) return first(m[k]);
    return undefined;
  };
}

function first(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return undefined;
}

export function traceContext(get: FieldLookup, opts?: TraceOptions): TraceContext {
  let traceId: string | null = null;
  let spanId: string | null = null;
  let f: string[];

  // W3C: version-traceid-parentid-flags
  const tp = get('traceparent');
  if (tp) {
    // Cut at the dashes without allocating an array: this runs for every traced request.
    const a = tp.indexOf('-');
    const b = a < 0 ? -1 : tp.indexOf('-', a + 1);
    const c = b < 0 ? -1 : tp.indexOf('-', b + 1);
    if (c > b + 1 && b > a + 1) {
      traceId = tp.slice(a + 1, b);
      spanId = tp.slice(b + 1, c);
    }
  }
  // SkyWalking: sample-traceId(b64)-segmentId(b64)-spanId-...
  if (traceId === null || spanId === null) {
    const sw = get('sw8');
    if (sw && (f = sw.trim().split('-')).length >= 4) {
      traceId ??= base64Text(f[1]);
      if (spanId === null && f[2]) spanId = `${base64Text(f[2]) ?? ''}-${f[3]}`;
    }
  }
  // B3 single header: traceid-spanid[-sampled[-parent]]; "0"/"1"/"d" alone carry no ids.
  if (traceId === null || spanId === null) {
    const b3 = get('b3');
    if (b3 && b3.includes('-')) {
      f = b3.trim().split('-');
      traceId ??= f[0] || null;
      spanId ??= f[1] || null;
    }
  }
  if (traceId === null || spanId === null) {
    traceId ??= get('x-b3-traceid') || null;
    spanId ??= get('x-b3-spanid') || null;
  }
  // Jaeger: trace:span:parent:flags, sometimes URL-encoded.
  if (traceId === null || spanId === null) {
    const u = get('uber-trace-id');
    if (u && (f = (u.includes('%') ? safeDecode(u) : u).trim().split(':')).length >= 2) {
      traceId ??= f[0] || null;
      spanId ??= f[1] || null;
    }
  }
  if (opts?.traceKeys) for (const k of opts.traceKeys) traceId ??= get(k.toLowerCase()) || null;
  if (opts?.spanKeys) for (const k of opts.spanKeys) spanId ??= get(k.toLowerCase()) || null;

  return { traceId, spanId, xRequestId: get('x-request-id') ?? null };
}

function base64Text(s: string | undefined): string | null {
  if (!s) return null;
  const t = Buffer.from(s, 'base64').toString('utf8');
  return t.length > 0 ? t : null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
