/**
 * Noise cancellation as Diffy does it. Three-way: each request went to a primary (the old version), a
 * secondary (a second instance of the old) and a candidate (the new). Per endpoint and field path it counts
 * raw differences (primary vs candidate) and noise (primary vs secondary); a field is reported as a real
 * difference only when
 *
 *     raw > noise × (1 + relative)        and        (raw − noise) / requests ≥ absolute
 *
 * (defaults: relative 20%, absolute 0.03% of the endpoint's requests), and, for a field that did differ
 * between primary and secondary, when its excess is beyond chance: raw − noise > 2·√(raw + noise). (Two
 * counts of a field that is noisy nearly every time — a shuffled array — differ by a few either way; with
 * few requests 20% alone would call that a regression.) Two-way (no secondary): noise is
 * what differs between answers to identical requests (same method, target and body) on the same side;
 * fields that ever did are not reported, the rest pass the same absolute threshold.
 */
import type { AnyRecord } from '../records/types.js';
import type { Answer } from './answer.js';
import { answerOf } from './answer.js';
import { compare, type CompareOptions, type DiffKind, type Difference } from './compare.js';
import { endpointOf, templateMatcher } from './endpoint.js';

export interface DiffOptions extends CompareOptions {
  /** Relative threshold over noise. Default 0.2. */
  relative?: number;
  /** Absolute threshold, a fraction of the endpoint's requests. Default 0.0003. */
  absolute?: number;
  /** Path templates (`/orders/{id}`) tried before the automatic `{id}` collapsing. */
  templates?: readonly string[];
  /** Example requests kept per endpoint for the report. Default 3. */
  examples?: number;
}

export interface FieldReport {
  path: string;
  /** Requests where primary and candidate differ here (two-way: original and replayed). */
  raw: number;
  /** Requests where primary and secondary differ here (two-way: identical requests' answers). */
  noise: number;
  kinds: Partial<Record<DiffKind, number>>;
  real: boolean;
}

export interface Example {
  request: string;
  differences: Difference[];
  primary: Answer;
  secondary?: Answer;
  candidate: Answer;
}

export interface EndpointReport {
  endpoint: string;
  requests: number;
  /** Requests with at least one real difference. */
  withDifferences: number;
  fields: FieldReport[];
  examples: Example[];
}

export interface DiffReport {
  mode: 'three-way' | 'two-way';
  requests: number;
  withDifferences: number;
  thresholds: { relative: number; absolute: number };
  endpoints: EndpointReport[];
  /** Things the user should know: bodies that did not parse as declared, sides that did not answer. */
  problems: Record<string, number>;
}

interface Field { raw: number; noise: number; kinds: Partial<Record<DiffKind, number>> }
interface Pending { request: string; paths: string[]; differences: Difference[]; answers: [Answer, Answer | undefined, Answer] }
interface Endpoint {
  requests: number;
  fields: Map<string, Field>;
  /** Per request, its raw difference paths (for counting requests with real differences). */
  rows: Pending[];
}

export class DiffEngine {
  readonly mode: 'three-way' | 'two-way';
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly problems: Record<string, number> = {};
  private readonly opts: DiffOptions;
  private readonly match: ((path: string) => string | null) | undefined;
  /** Two-way: the first answer seen per identical request, per side, to tell noise. */
  private readonly seen = new Map<string, [Answer | undefined, Answer | undefined]>();

  constructor(mode: 'three-way' | 'two-way', options: DiffOptions = {}) {
    this.mode = mode;
    this.opts = options;
    this.match = options.templates?.length ? templateMatcher(options.templates) : undefined;
  }

  /** Three-way: one request's three answers (null: that side did not answer). */
  add(primary: AnyRecord, secondary: AnyRecord | null, candidate: AnyRecord | null): void {
    const ep = this.endpoint(endpointOf(primary, this.match));
    const [p, s, c] = [answerOf(primary), answerOf(secondary), answerOf(candidate)];
    this.note(p, s, c);
    const raw = compare(p, c, this.opts);
    const noise = compare(p, s, this.opts);
    for (const path of new Set(noise.map((d) => d.path))) this.field(ep, path).noise++;
    this.row(ep, describe(primary), raw, [p, s, c]);
  }

  /**
   * Two-way: the original answer and the replayed one. `key` names the request (method, target, body):
   * answers to the same key that differ on one side are noise.
   */
  addTwoWay(endpoint: string, key: string, original: Answer, replayed: Answer, request = key): void {
    const ep = this.endpoint(endpoint);
    this.note(original, undefined, replayed);
    const prev = this.seen.get(key);
    if (prev) {
      for (const [i, a] of [original, replayed].entries()) {
        const before = prev[i];
        if (before) for (const path of new Set(compare(before, a, this.opts).map((d) => d.path))) this.field(ep, path).noise++;
      }
    } else this.seen.set(key, [original, replayed]);
    this.row(ep, request, compare(original, replayed, this.opts), [original, undefined, replayed]);
  }

  report(): DiffReport {
    const relative = this.opts.relative ?? 0.2;
    const absolute = this.opts.absolute ?? 0.0003;
    const endpoints: EndpointReport[] = [];
    let requests = 0;
    let withDifferences = 0;
    for (const [name, ep] of [...this.endpoints].sort((a, b) => a[0].localeCompare(b[0]))) {
      const fields: FieldReport[] = [];
      for (const [path, f] of ep.fields) {
        const real = this.mode === 'three-way'
          ? f.raw > f.noise * (1 + relative) && (f.raw - f.noise) / ep.requests >= absolute
            && (f.noise === 0 || f.raw - f.noise > 2 * Math.sqrt(f.raw + f.noise))
          : f.noise === 0 && f.raw / ep.requests >= absolute;
        fields.push({ path, raw: f.raw, noise: f.noise, kinds: f.kinds, real });
      }
      fields.sort((a, b) => Number(b.real) - Number(a.real) || b.raw - a.raw || a.path.localeCompare(b.path));
      const realPaths = new Set(fields.filter((f) => f.real).map((f) => f.path));
      const differing = ep.rows.filter((r) => r.paths.some((p) => realPaths.has(p)));
      const examples = differing.slice(0, this.opts.examples ?? 3).map((r) => ({
        request: r.request, differences: r.differences.filter((d) => realPaths.has(d.path)),
        primary: r.answers[0], ...(r.answers[1] ? { secondary: r.answers[1] } : {}), candidate: r.answers[2],
      }));
      requests += ep.requests;
      withDifferences += differing.length;
      endpoints.push({ endpoint: name, requests: ep.requests, withDifferences: differing.length, fields, examples });
    }
    return { mode: this.mode, requests, withDifferences, thresholds: { relative, absolute }, endpoints, problems: { ...this.problems } };
  }

  private endpoint(name: string): Endpoint {
    let ep = this.endpoints.get(name);
    if (!ep) this.endpoints.set(name, ep = { requests: 0, fields: new Map(), rows: [] });
    ep.requests++;
    return ep;
  }

  private field(ep: Endpoint, path: string): Field {
    let f = ep.fields.get(path);
    if (!f) ep.fields.set(path, f = { raw: 0, noise: 0, kinds: {} });
    return f;
  }

  private row(ep: Endpoint, request: string, raw: Difference[], answers: [Answer, Answer | undefined, Answer]): void {
    const paths = [...new Set(raw.map((d) => d.path))];
    for (const d of raw) {
      const f = this.field(ep, d.path);
      f.kinds[d.kind] = (f.kinds[d.kind] ?? 0) + 1;
    }
    for (const p of paths) this.field(ep, p).raw++;
    // Requests without a raw difference cannot have a real one: only the others are kept.
    if (paths.length > 0) ep.rows.push({ request, paths, differences: raw, answers });
  }

  private note(...answers: (Answer | undefined)[]): void {
    const names = ['primary', 'secondary', 'candidate'];
    answers.forEach((a, i) => {
      if (!a) return;
      if (a.bodyError) this.problems[`${names[i]}: ${a.bodyError.replace(/ \(.*$/, '')}`] = (this.problems[`${names[i]}: ${a.bodyError.replace(/ \(.*$/, '')}`] ?? 0) + 1;
      if (a.status === 'no answer') this.problems[`${names[i]}: no answer`] = (this.problems[`${names[i]}: no answer`] ?? 0) + 1;
    });
  }
}

function describe(r: AnyRecord): string {
  if (r.protocol === 'http1') return `${r.request.method} ${r.request.target}`;
  if (r.protocol === 'http2') return `${r.request.method} ${r.request.path}`;
  return r.endpoint;
}
