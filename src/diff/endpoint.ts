/**
 * Endpoint grouping for a diff: HTTP method + path template (numeric, uuid-like and long hex segments
 * collapsed to `{id}`, or the first of the user's templates that matches), the gRPC method, the Dubbo
 * service/method.
 */
import type { AnyRecord } from '../records/types.js';

const ID = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|[0-9A-Za-z_-]{20,})$/i;

/** `/orders/{id}/items`: segments in braces match any one segment. */
export function templateMatcher(templates: readonly string[]): (path: string) => string | null {
  const compiled = templates.map((t) => ({ t, parts: t.split('/') }));
  return (path) => {
    const parts = path.split('/');
    for (const { t, parts: tp } of compiled) {
      if (tp.length === parts.length && tp.every((seg, i) => /^\{[^}]*\}$/.test(seg) || seg === parts[i])) return t;
    }
    return null;
  };
}

/** `GET /orders/{id}`: the method and the path (query left out) as a template. */
export function httpEndpoint(method: string, path: string, match?: (path: string) => string | null): string {
  const p = path.split('?')[0] || '/';
  return `${method} ${match?.(p) ?? p.split('/').map((s) => (ID.test(s) ? '{id}' : s)).join('/')}`;
}

export function endpointOf(r: AnyRecord, match?: (path: string) => string | null): string {
  if (r.protocol === 'http1' || r.protocol === 'http2') return httpEndpoint(r.request.method ?? '?', r.endpoint || '/', match);
  return r.endpoint || `(${r.protocol})`;
}
