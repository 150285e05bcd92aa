/**
 * What a diff compares of an answer, whatever the protocol: a status, headers (or metadata, attachments)
 * and a body parsed by its structure — JSON, form, protobuf messages (decoded with a schema, else the
 * schema-less dump), Dubbo values (hessian.js), text, else bytes.
 */
import { bodyBytes, joined } from '../records/body.js';
import type { AnyRecord, HeaderMap } from '../records/types.js';

export type BodyKind = 'json' | 'form' | 'protobuf' | 'dubbo' | 'text' | 'bytes' | 'none';

export interface Answer {
  /** `200`, `grpc 5`, `dubbo 20 value`, `no answer`. */
  status: string;
  /** Lower-case names; repeated values joined. */
  headers: Record<string, string>;
  kind: BodyKind;
  /** The parsed body (JSON value, form fields, decoded message, Dubbo value), text, or base64 bytes. */
  body: unknown;
  /** Why a body declared as JSON could not be parsed (compared as text then, and reported). */
  bodyError?: string;
}

function headersOf(h: HeaderMap | Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = typeof v === 'string' || Array.isArray(v) ? joined(v as string | string[])! : JSON.stringify(v);
  return out;
}

/** An HTTP body by its content type (and, for JSON that does not say so, by its first byte). */
export function parseBody(contentType: string | undefined, body: Buffer | null): Pick<Answer, 'kind' | 'body' | 'bodyError'> {
  if (!body || body.length === 0) return { kind: 'none', body: null };
  const ct = (contentType ?? '').toLowerCase();
  const text = body.toString('utf8');
  const textual = !text.includes('\uFFFD');
  if (ct.includes('json') || (!ct && textual && /^\s*[[{]/.test(text))) {
    try {
      return { kind: 'json', body: JSON.parse(text) };
    } catch (e) {
      return { kind: 'text', body: text, bodyError: `not JSON although declared so (${(e as Error).message})` };
    }
  }
  if (ct.includes('application/x-www-form-urlencoded')) {
    const fields: Record<string, string[]> = {};
    for (const [k, v] of new URLSearchParams(text)) (fields[k] ??= []).push(v);
    return { kind: 'form', body: fields };
  }
  if (textual) return { kind: 'text', body: text };
  return { kind: 'bytes', body: body.toString('base64') };
}

/** The answer of a record (its response part), as the diff sees it. */
export function answerOf(r: AnyRecord | null): Answer {
  if (!r || r.response === null) return { status: 'no answer', headers: {}, kind: 'none', body: null };
  switch (r.protocol) {
    case 'http1':
    case 'http2': {
      const res = r.response;
      const headers = headersOf(res.headers);
      const body = parseBody(headers['content-type'], bodyBytes(res));
      return { status: String(res.statusCode), headers, ...body };
    }
    case 'grpc': {
      const res = r.response;
      const status = `grpc ${res.grpcStatus ?? (r.code ?? 'none')}`;
      const headers = { ...headersOf(res.metadata), ...prefixed('trailer:', headersOf(res.trailers)) };
      delete headers['trailer:grpc-status'];
      return { status, headers, kind: res.message === undefined ? 'none' : 'protobuf', body: res.message ?? null };
    }
    case 'dubbo': {
      const res = r.response;
      const body = res.kind === 'exception' ? { exception: res.exception ?? r.error } : res.kind === 'error' ? { error: r.error } : res.value;
      return { status: `dubbo ${res.status} ${res.kind}`, headers: headersOf(res.attachments), kind: 'dubbo', body: body ?? null };
    }
    default:
      return { status: String(r.code ?? r.status), headers: {}, kind: 'json', body: r.response };
  }
}

function prefixed(p: string, h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[p + k] = v;
  return out;
}
