/** Running a plugin's hooks over a record: shared by the in-process host and the worker. */
import type { AnyRecord } from '../records/types.js';
import type { FlowtapPlugin, HookResult, RecordHook, RecordOverride } from './types.js';

/** The hooks of `plugin` that apply to `record`, in order. */
export function hooksFor(plugin: FlowtapPlugin, record: AnyRecord): RecordHook<AnyRecord>[] {
  const h = plugin.hooks;
  if (!h) return [];
  const own = (h as Record<string, RecordHook<AnyRecord> | undefined>)[record.protocol];
  return own && h.any ? [own, h.any] : own ? [own] : h.any ? [h.any] : [];
}

/** The record after `result`: a new object (the input is never changed), or null for 'drop'. */
export function applyResult(record: AnyRecord, result: HookResult): AnyRecord | null {
  if (result === 'drop') return null;
  if (!result || typeof result !== 'object') return record;
  const o = result as RecordOverride;
  const out = { ...record } as AnyRecord & Record<string, unknown>;
  for (const k of ['status', 'code', 'error', 'endpoint', 'traceId', 'spanId', 'xRequestId'] as const) {
    if (o[k] !== undefined) out[k] = o[k] as never;
  }
  if (o.attributes) {
    const attrs: Record<string, string> = { ...(record.attributes ?? {}) };
    for (const [k, v] of Object.entries(o.attributes)) attrs[k] = String(v);
    out.attributes = attrs;
  }
  if (o.requestBody !== undefined && record.request) out.request = withBody(record.request, o.requestBody) as never;
  if (o.responseBody !== undefined && record.response) out.response = withBody(record.response, o.responseBody) as never;
  return out;
}

function withBody(part: object, body: string): object {
  const p = { ...part } as Record<string, unknown>;
  p.body = body;
  delete p.bodyEncoding;
  return p;
}
