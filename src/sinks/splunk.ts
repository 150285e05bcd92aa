/**
 * Splunk HTTP Event Collector: `POST /services/collector/event`, `Authorization: Splunk <token>`, a batch as
 * concatenated event envelopes. A refused token or bad data is an error the sink reports and retries with
 * backoff (the operator may fix the token); busy (503) and throttling (429) are retried too.
 */
import type { ExchangeRecord } from '../records/types.js';
import { BatchingSink, type BatchingOptions } from './batching.js';
import { request } from './http.js';

export interface SplunkSinkOptions extends BatchingOptions {
  /** HEC base URL, e.g. https://splunk:8088. */
  url: string;
  token: string;
  /** Splunk index (default: the token's). */
  index?: string;
  /** Default "flowtap". */
  source?: string;
  /** Default "flowtap:{protocol}". */
  sourcetype?: string;
  host?: string;
}

export class SplunkSink extends BatchingSink {
  private readonly endpoint: string;

  constructor(private readonly opts: SplunkSinkOptions) {
    super(opts);
    this.endpoint = `${opts.url.replace(/\/$/, '')}/services/collector/event`;
  }

  protected async send(batch: ExchangeRecord[]): Promise<void> {
    let body = '';
    for (const r of batch) {
      const envelope: Record<string, unknown> = {
        time: r.startTime / 1000, // HEC wants epoch seconds
        source: this.opts.source ?? 'flowtap',
        sourcetype: (this.opts.sourcetype ?? 'flowtap:{protocol}').replace('{protocol}', r.protocol),
        event: r,
      };
      if (this.opts.index) envelope.index = this.opts.index;
      if (this.opts.host) envelope.host = this.opts.host;
      body += JSON.stringify(envelope) + '\n';
    }
    const res = await request(this.endpoint, {
      method: 'POST', headers: { authorization: `Splunk ${this.opts.token}`, 'content-type': 'application/json' }, body,
    });
    if (res.status >= 300) throw new Error(`HEC: ${res.status} ${res.text.slice(0, 200)}`);
  }
}
