/**
 * Pipeline stages over records, each doing one thing, composed top-down like Pipy's filters:
 *
 *   const handle = pipeline(
 *     filter((r) => r.protocol !== 'http1' || r.endpoint !== '/healthz'),
 *     mask(),
 *     sample({ percent: 10, by: 'traceId' }),
 *     rateLimit(1000),
 *     tee(jsonl, clickhouse),
 *   );
 *   proxy.on('record', handle);
 *
 * The chain is built once; a record passes through plain function calls, no allocation per stage.
 */
import type { AnyRecord } from '../records/types.js';
import type { RecordSink } from '../sinks/batching.js';

export type Next = (record: AnyRecord) => void;
/** A stage gets a record and the rest of the pipeline; it calls `next` zero or more times. */
export type Stage = (record: AnyRecord, next: Next) => void;

export function pipeline(...stages: Stage[]): Next {
  let next: Next = () => {};
  for (let i = stages.length - 1; i >= 0; i--) {
    const stage = stages[i];
    const after = next;
    next = (r) => stage(r, after);
  }
  return next;
}

export function filter(keep: (r: AnyRecord) => boolean): Stage {
  return (r, next) => { if (keep(r)) next(r); };
}

/** Rewrite a record; returning null drops it. */
export function map(fn: (r: AnyRecord) => AnyRecord | null): Stage {
  return (r, next) => { const out = fn(r); if (out) next(out); };
}

/**
 * Keep `percent` of records. With `by`, the choice is consistent: every record with the same value of that
 * field (a trace id, a client ip) is kept or dropped together, like GoReplay's header limiter.
 */
export function sample(opts: { percent: number; by?: string | ((r: AnyRecord) => unknown) }): Stage {
  const threshold = Math.round(Math.max(0, Math.min(100, opts.percent)) * 100);
  const by = opts.by;
  const key = typeof by === 'function' ? by : by ? (r: AnyRecord) => field(r, by) : null;
  return (r, next) => {
    const v = key?.(r);
    const roll = key && v !== undefined && v !== null ? fnv1a(String(v)) % 10000 : Math.floor(Math.random() * 10000);
    if (roll < threshold) next(r);
  };
}

/** At most `perSecond` records a second pass (a token bucket with one second of burst); the rest are dropped. */
export function rateLimit(perSecond: number, counters?: { dropped: number }): Stage {
  let tokens = perSecond;
  let last = Date.now();
  return (r, next) => {
    const now = Date.now();
    tokens = Math.min(perSecond, tokens + ((now - last) / 1000) * perSecond);
    last = now;
    if (tokens >= 1) { tokens--; next(r); } else if (counters) counters.dropped++;
  };
}

export interface MaskOptions {
  /** Header / metadata / attachment names to mask (lower case). Default: authorization, cookie, set-cookie, proxy-authorization. */
  headers?: readonly string[];
  /** JSON body fields whose names match are masked. Default: passwords, secrets, tokens, API keys, credentials. */
  fields?: RegExp;
  /** The replacement. Default "***". */
  with?: string;
}

const SECRET_FIELDS = /pass(word|wd)?$|secret|token|api[-_]?key|credential|private[-_]?key/i;

/** Mask secrets in headers, metadata, attachments and JSON bodies; the record passed on is a masked copy. */
export function mask(opts: MaskOptions = {}): Stage {
  const masked = masker(opts);
  return (r, next) => next(masked(r));
}

/** `mask()` as a plain function: the record itself when it holds no secret, else a masked copy. */
export function masker(opts: MaskOptions = {}): (r: AnyRecord) => AnyRecord {
  const names = new Set((opts.headers ?? ['authorization', 'cookie', 'set-cookie', 'proxy-authorization']).map((h) => h.toLowerCase()));
  const fields = opts.fields ?? SECRET_FIELDS;
  const stars = opts.with ?? '***';
  const maskMap = (m: unknown): unknown => {
    if (!m || typeof m !== 'object') return m;
    let out: Record<string, unknown> | null = null;
    for (const k of Object.keys(m)) {
      if (names.has(k.toLowerCase()) || fields.test(k)) {
        out ??= { ...(m as Record<string, unknown>) };
        out[k] = stars;
      }
    }
    return out ?? m;
  };
  const maskBody = (part: Record<string, unknown>): Record<string, unknown> => {
    // Decoded values (a gRPC message with its schema, Dubbo arguments) carry field names too.
    for (const k of ['message', 'args', 'value']) {
      if (part[k] && typeof part[k] === 'object') {
        const masked = maskFields(part[k], fields, stars);
        if (masked !== part[k]) part = { ...part, [k]: masked };
      }
    }
    if (typeof part.body !== 'string' || part.bodyEncoding) return part;
    const masked = maskJson(part.body, fields, stars);
    return masked === part.body ? part : { ...part, body: masked };
  };
  const maskPart = (part: unknown): unknown => {
    if (!part || typeof part !== 'object') return part;
    let p = part as Record<string, unknown>;
    for (const k of ['headers', 'trailers', 'metadata', 'attachments']) {
      if (p[k]) {
        const m = maskMap(p[k]);
        if (m !== p[k]) p = { ...p, [k]: m };
      }
    }
    return maskBody(p);
  };
  return (r) => {
    const request = maskPart(r.request);
    const response = maskPart(r.response);
    // The parts keep their shape (only values are replaced), so the record keeps its type.
    return request === r.request && response === r.response ? r : { ...r, request, response } as AnyRecord;
  };
}

/** Write to each sink (or function), then pass the record on. */
export function tee(...sinks: (RecordSink | Next)[]): Stage {
  const writers: Next[] = sinks.map((s) => (typeof s === 'function' ? s : (r) => s.write(r)));
  return (r, next) => {
    for (const w of writers) w(r);
    next(r);
  };
}

/** A record field by dotted path (`request.headers.x-user`). */
function field(r: AnyRecord, path: string): unknown {
  let v: unknown = r;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mask matching fields anywhere in a JSON text; text that is not JSON is returned unchanged. */
function maskJson(text: string, fields: RegExp, stars: string): string {
  const t = text.trimStart();
  if (!(t.startsWith('{') || t.startsWith('['))) return text;
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { return text; }
  const out = maskFields(parsed, fields, stars);
  return out !== parsed ? JSON.stringify(out) : text;
}

/** Mask matching fields anywhere in a value; the same value back when nothing matched, else a masked copy. */
function maskFields(v: unknown, fields: RegExp, stars: string): unknown {
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    v.forEach((x, i) => {
      const m = maskFields(x, fields, stars);
      if (m !== x) (out ??= v.slice())[i] = m;
    });
    return out ?? v;
  }
  if (!v || typeof v !== 'object') return v;
  let out: Record<string, unknown> | null = null;
  for (const [k, x] of Object.entries(v)) {
    const m = fields.test(k) && (typeof x === 'string' || typeof x === 'number') ? stars : maskFields(x, fields, stars);
    if (m !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = m;
  }
  return out ?? v;
}
