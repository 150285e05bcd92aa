/**
 * ClickHouse over its HTTP interface: `INSERT INTO db.table FORMAT JSONEachRow`, one row per record with the
 * common fields as columns and the protocol parts as JSON text. Checked against Debian's ClickHouse 18.16,
 * so the schema uses only types that old servers have (no DateTime64: times are ms as Float64).
 */
import type { ExchangeRecord } from '../records/types.js';
import { BatchingSink, type BatchingOptions } from './batching.js';
import { request, storeEndpoint } from './http.js';

export interface ClickHouseSinkOptions extends BatchingOptions {
  /** HTTP interface URL, e.g. http://localhost:8123 (credentials in the URL are used for basic auth). */
  url: string;
  database?: string;
  /** Default `flowtap_records`. */
  table?: string;
  username?: string;
  password?: string;
  /** Create the table (if missing) before the first batch. Default false. */
  createTable?: boolean;
}

/** The table, as `createTable` makes it. */
export function clickHouseSchema(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  protocol String, connectionId String, streamId Nullable(UInt32), requestId Nullable(String),
  clientIp String, clientPort UInt16, serverIp String, serverPort UInt16,
  startTime Float64, endTime Nullable(Float64), duration Nullable(Float64),
  status String, code Nullable(Int32), endpoint String, error Nullable(String),
  traceId Nullable(String), spanId Nullable(String), xRequestId Nullable(String), forwardedFor Nullable(String),
  requestSize UInt64, responseSize UInt64, request String, response Nullable(String), attributes Nullable(String)
) ENGINE = MergeTree() ORDER BY startTime`;
}

export class ClickHouseSink extends BatchingSink {
  private readonly base: string;
  private readonly headers: Record<string, string> = {};
  private readonly table: string;
  private created = false;

  constructor(private readonly opts: ClickHouseSinkOptions) {
    super(opts);
    const { base, authorization } = storeEndpoint(opts.url, opts.username, opts.password);
    this.base = base;
    if (authorization) this.headers.authorization = authorization;
    const name = opts.table ?? 'flowtap_records';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || (opts.database && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(opts.database))) {
      throw new Error(`ClickHouse table and database names must be plain identifiers, not "${opts.database ?? ''}.${name}"`);
    }
    this.table = opts.database ? `${opts.database}.${name}` : name;
  }

  protected async send(batch: ExchangeRecord[]): Promise<void> {
    if (this.opts.createTable && !this.created) {
      await this.query(clickHouseSchema(this.table));
      this.created = true;
    }
    let body = '';
    for (const r of batch) body += JSON.stringify(row(r)) + '\n';
    await this.query(`INSERT INTO ${this.table} FORMAT JSONEachRow`, body);
  }

  private async query(sql: string, body?: string): Promise<string> {
    const url = body === undefined ? `${this.base}/` : `${this.base}/?query=${encodeURIComponent(sql)}&input_format_skip_unknown_fields=1`;
    const res = await request(url, { method: 'POST', headers: this.headers, body: body ?? sql });
    if (res.status >= 300) throw new Error(`ClickHouse: ${res.status} ${res.text.slice(0, 300)}`);
    return res.text;
  }
}

function row(r: ExchangeRecord): Record<string, unknown> {
  return {
    protocol: r.protocol, connectionId: r.connectionId, streamId: r.streamId ?? null, requestId: r.requestId ?? null,
    clientIp: r.client.ip, clientPort: r.client.port, serverIp: r.server.ip, serverPort: r.server.port,
    startTime: r.startTime, endTime: r.endTime, duration: r.duration,
    status: r.status, code: r.code, endpoint: r.endpoint, error: r.error,
    traceId: r.traceId, spanId: r.spanId, xRequestId: r.xRequestId, forwardedFor: r.forwardedFor ?? null,
    requestSize: r.requestSize, responseSize: r.responseSize,
    request: JSON.stringify(r.request), response: r.response === null ? null : JSON.stringify(r.response),
    attributes: r.attributes ? JSON.stringify(r.attributes) : null,
  };
}
