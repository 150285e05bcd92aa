/**
 * Elasticsearch through `_bulk` (NDJSON action/source pairs), one index per protocol by default
 * (`flowtap-http1`, `flowtap-dubbo`, ...). Items the cluster could not take now (429, 5xx) are retried;
 * items it refused (a mapping error) are counted as rejected.
 */
import type { ExchangeRecord } from '../records/types.js';
import { BatchingSink, type BatchingOptions, type PartialOutcome } from './batching.js';
import { request, storeEndpoint } from './http.js';

export interface ElasticsearchSinkOptions extends BatchingOptions {
  /** Cluster URL, e.g. http://localhost:9200 (credentials in the URL are used for basic auth). */
  url: string;
  /** Index name; `{protocol}` and `{date}` (YYYY.MM.DD of startTime) are filled in. Default `flowtap-{protocol}`. */
  index?: string;
  username?: string;
  password?: string;
  /** An API key (the base64 "id:key" form), sent as `Authorization: ApiKey ...`. */
  apiKey?: string;
  /** Put an index template mapping startTime/endTime as dates before the first batch. Default true. */
  template?: boolean;
}

export class ElasticsearchSink extends BatchingSink {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private templated = false;

  constructor(private readonly opts: ElasticsearchSinkOptions) {
    super(opts);
    const { base, authorization } = storeEndpoint(opts.url, opts.username, opts.password);
    this.base = base;
    this.headers = {};
    if (opts.apiKey) this.headers.authorization = `ApiKey ${opts.apiKey}`;
    else if (authorization) this.headers.authorization = authorization;
  }

  protected async send(batch: ExchangeRecord[]): Promise<void | PartialOutcome> {
    if (!this.templated && this.opts.template !== false) {
      await this.putTemplate();
      this.templated = true;
    }
    let body = '';
    for (const r of batch) body += `${JSON.stringify({ index: { _index: this.indexFor(r) } })}\n${JSON.stringify(r)}\n`;
    const res = await request(`${this.base}/_bulk`, {
      method: 'POST', headers: { ...this.headers, 'content-type': 'application/x-ndjson' }, body,
    });
    if (res.status >= 300) throw new Error(`_bulk: ${res.status} ${res.text.slice(0, 200)}`);
    const answer = JSON.parse(res.text) as { errors?: boolean; items?: Record<string, { status: number }>[] };
    if (!answer.errors) return;
    const retry: ExchangeRecord[] = [];
    let rejected = 0;
    (answer.items ?? []).forEach((item, i) => {
      const status = Object.values(item)[0]?.status ?? 500;
      if (status === 429 || status >= 500) retry.push(batch[i]);
      else if (status >= 300) rejected++;
    });
    return { retry, rejected };
  }

  private indexFor(r: ExchangeRecord): string {
    const tpl = this.opts.index ?? 'flowtap-{protocol}';
    if (!tpl.includes('{')) return tpl;
    const d = new Date(r.startTime);
    const date = `${d.getUTCFullYear()}.${String(d.getUTCMonth() + 1).padStart(2, '0')}.${String(d.getUTCDate()).padStart(2, '0')}`;
    return tpl.replace('{protocol}', r.protocol).replace('{date}', date);
  }

  private async putTemplate(): Promise<void> {
    const pattern = (this.opts.index ?? 'flowtap-{protocol}').replace(/\{[^}]+\}/g, '*');
    const body = JSON.stringify({
      index_patterns: [pattern],
      template: {
        mappings: {
          properties: {
            startTime: { type: 'date', format: 'epoch_millis' },
            endTime: { type: 'date', format: 'epoch_millis' },
            duration: { type: 'double' },
            status: { type: 'keyword' }, protocol: { type: 'keyword' }, endpoint: { type: 'keyword' },
            traceId: { type: 'keyword' }, spanId: { type: 'keyword' }, xRequestId: { type: 'keyword' },
            connectionId: { type: 'keyword' }, requestId: { type: 'keyword' }, code: { type: 'integer' },
          },
        },
      },
    });
    const res = await request(`${this.base}/_index_template/flowtap`, {
      method: 'PUT', headers: { ...this.headers, 'content-type': 'application/json' }, body,
    });
    if (res.status >= 300) throw new Error(`index template: ${res.status} ${res.text.slice(0, 200)}`);
  }
}
