/**
 * Pipy's router.json, as its plugin proxy reads it: `{ "routes": { "/hi/*": { "service": "service-hi" },
 * "/ip/*": { "service": "service-tell-ip", "rewrite": ["^/ip/?", "/"] }, "example.com/path": ... } }`.
 *
 * - A key may start with a host (`example.com/path`, `*.example.com/path`); the request's Host port is
 *   ignored; keys without a host are the fallback for any host.
 * - `/x/*` matches `/x` and everything under it, by path segment (not `/xy`); the longest such key wins.
 *   Other keys match the path exactly. The query is ignored for matching and kept on the way out.
 * - `rewrite` is a regular expression and its replacement, applied to the path.
 */

export interface RouteSpec {
  service: string;
  rewrite?: [string, string];
}

export interface RouteMatch {
  service: string;
  /** The path (and query) to send upstream, rewritten when the route says so. */
  target: string;
  /** The key that matched. */
  route: string;
}

interface Rule { key: string; host: string | null; wildcardHost: boolean; prefix: string | null; exact: string | null; spec: RouteSpec; rewrite: RegExp | null }

export class Router {
  private readonly rules: Rule[];

  constructor(routes: Record<string, RouteSpec>) {
    this.rules = Object.entries(routes).map(([key, spec]) => {
      if (!spec || typeof spec.service !== 'string') throw new Error(`route "${key}": needs a "service"`);
      const slash = key.indexOf('/');
      if (slash < 0) throw new Error(`route "${key}": a key is [host]/path`);
      const host = slash === 0 ? null : key.slice(0, slash).toLowerCase();
      const path = key.slice(slash);
      let rewrite: RegExp | null = null;
      if (spec.rewrite) {
        if (!Array.isArray(spec.rewrite) || spec.rewrite.length !== 2) throw new Error(`route "${key}": "rewrite" is [regex, replacement]`);
        try { rewrite = new RegExp(spec.rewrite[0]); } catch (e) { throw new Error(`route "${key}": bad rewrite regex: ${(e as Error).message}`); }
      }
      const prefix = path.endsWith('/*') ? path.slice(0, -2) : null;
      return { key, host: host?.startsWith('*.') ? host.slice(1) : host, wildcardHost: !!host?.startsWith('*.'), prefix, exact: prefix === null ? path : null, spec, rewrite };
    });
    // Host rules before the fallback; among prefixes the longest first; exact paths beat prefixes.
    this.rules.sort((a, b) => Number(b.host !== null) - Number(a.host !== null)
      || Number(b.exact !== null) - Number(a.exact !== null) || (b.prefix ?? b.exact ?? '').length - (a.prefix ?? a.exact ?? '').length);
  }

  route(hostHeader: string | undefined, target: string): RouteMatch | null {
    const host = (hostHeader ?? '').replace(/:\d+$/, '').toLowerCase();
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query = q < 0 ? '' : target.slice(q);
    for (const r of this.rules) {
      if (r.host !== null && !(r.wildcardHost ? host.endsWith(r.host) && host.length > r.host.length : host === r.host)) continue;
      const ok = r.exact !== null ? path === r.exact : path === r.prefix || path.startsWith(r.prefix + '/') || (r.prefix === '' && path.startsWith('/'));
      if (!ok) continue;
      const out = r.rewrite ? path.replace(r.rewrite, r.spec.rewrite![1]) : path;
      return { service: r.spec.service, target: (out.startsWith('/') ? out : `/${out}`) + query, route: r.key };
    }
    return null;
  }
}
