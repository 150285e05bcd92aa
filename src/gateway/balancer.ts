/**
 * Pipy's balancer.json: `{ "services": { "service-hi": ["127.0.0.1:8080", "127.0.0.1:8082"],
 * "weighted": { "127.0.0.1:8080": 3, "127.0.0.1:8081": 1 } } }`. Round robin (smooth weighted round robin
 * when weights are given), targets that failed are skipped for a while, and every target has its own pool of
 * keep-alive connections (a Node http.Agent).
 */
import http from 'node:http';

export interface Target { host: string; port: number; weight: number; agent: http.Agent; key: string }

interface Service { targets: (Target & { current: number; downUntil: number })[] }

export class Balancer {
  private readonly services = new Map<string, Service>();

  constructor(services: Record<string, string[] | Record<string, number>>, private readonly opts: { downFor?: number; maxSockets?: number } = {}) {
    for (const [name, spec] of Object.entries(services)) {
      const list: [string, number][] = Array.isArray(spec) ? spec.map((t) => [t, 1]) : Object.entries(spec);
      if (list.length === 0) throw new Error(`service "${name}": no targets`);
      const targets = list.map(([t, weight]) => {
        const m = /^(.+):(\d+)$/.exec(t);
        if (!m || !(weight > 0)) throw new Error(`service "${name}": a target is "host:port" (with a weight > 0), not "${t}"`);
        return { host: m[1], port: Number(m[2]), weight, agent: new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 }), key: t, current: 0, downUntil: 0 };
      });
      this.services.set(name, { targets });
    }
  }

  has(service: string): boolean {
    return this.services.has(service);
  }

  /** The next target of the service (skipping those marked down, unless all are), or null for an unknown service. */
  pick(service: string): Target | null {
    const s = this.services.get(service);
    if (!s) return null;
    const now = Date.now();
    const up = s.targets.filter((t) => t.downUntil <= now);
    const pool = up.length > 0 ? up : s.targets;
    // Smooth weighted round robin (nginx's): each pick adds weights, takes the highest, subtracts the total.
    let total = 0;
    let best = pool[0];
    for (const t of pool) {
      t.current += t.weight;
      total += t.weight;
      if (t.current > best.current) best = t;
    }
    best.current -= total;
    return best;
  }

  /** The target failed (refused, reset): skip it for a while. */
  failed(t: Target): void {
    const x = t as Target & { downUntil: number };
    x.downUntil = Date.now() + (this.opts.downFor ?? 10_000);
  }

  close(): void {
    for (const s of this.services.values()) for (const t of s.targets) t.agent.destroy();
  }
}
