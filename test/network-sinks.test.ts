/**
 * Network sinks. Elasticsearch and Splunk cannot be installed here, so they are tested against strict local
 * endpoints that validate the documented wire formats (`_bulk` NDJSON action/source pairs and the index
 * template; the HEC event envelope and `Authorization: Splunk`), including their partial and busy answers.
 * ClickHouse is the real server from Debian (18.16), started from a config the test writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TapCluster, TapProxy, type ExchangeRecord } from '../src/index.js';
import { ClickHouseSink, ElasticsearchSink, SplunkSink } from '../src/sinks/index.js';
import { freePort, have, tempDir } from './tools.js';

function rec(i: number, protocol: ExchangeRecord['protocol'] = 'http1'): ExchangeRecord {
  return {
    protocol, client: { ip: '10.0.0.1', port: 1000 + i }, server: { ip: '10.0.0.2', port: 80 }, connectionId: String(i),
    startTime: 1_700_000_000_000 + i, endTime: 1_700_000_000_010 + i, duration: 10, status: 'ok', code: 200, endpoint: `/e${i}`,
    error: null, traceId: `t${i}`, spanId: null, xRequestId: null, requestSize: 10, responseSize: 20,
    request: { method: 'GET', headers: { host: 'x' }, bodySize: 0 }, response: { statusCode: 200, headers: {}, bodySize: 0 },
  };
}

async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const s = http.createServer(handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => new Promise((r) => s.close(() => r())) };
}

const bodyOf = (req: http.IncomingMessage) => new Promise<string>((resolve) => {
  const parts: Buffer[] = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
});

const waitFor = async (cond: () => boolean, ms = 5000) => {
  for (let t = 0; t < ms && !cond(); t += 20) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
};

describe('Elasticsearch sink against a strict _bulk endpoint', () => {
  /** Validates the documented _bulk wire format; answers with per-item statuses chosen by `itemStatus`. */
  function strictEs(opts: { auth: string; itemStatus?: (doc: Record<string, unknown>, attempt: number) => number; busyFirst?: number }) {
    const indexed: { index: string; doc: Record<string, unknown> }[] = [];
    const violations: string[] = [];
    const templates: unknown[] = [];
    const attempts = new Map<string, number>();
    let busy = opts.busyFirst ?? 0;
    const handler: http.RequestListener = async (req, res) => {
      const body = await bodyOf(req);
      const fail = (why: string) => { violations.push(why); res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: why })); };
      if (req.headers.authorization !== opts.auth) return fail(`auth header ${req.headers.authorization}`);
      if (req.method === 'PUT' && req.url === '/_index_template/flowtap') {
        const t = JSON.parse(body);
        if (!Array.isArray(t.index_patterns) || t.template?.mappings?.properties?.startTime?.type !== 'date'
          || t.template?.mappings?.properties?.endTime?.type !== 'date') return fail('template without date mappings');
        templates.push(t);
        return res.writeHead(200, { 'content-type': 'application/json' }).end('{"acknowledged":true}');
      }
      if (req.method !== 'POST' || req.url !== '/_bulk') return fail(`${req.method} ${req.url}`);
      if (req.headers['content-type'] !== 'application/x-ndjson') return fail(`content-type ${req.headers['content-type']}`);
      if (!body.endsWith('\n')) return fail('bulk body must end with a newline');
      if (busy > 0) { busy--; return res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}'); }
      const lines = body.slice(0, -1).split('\n');
      if (lines.length % 2 !== 0) return fail('action/source lines are not paired');
      const items: unknown[] = [];
      for (let i = 0; i < lines.length; i += 2) {
        const action = JSON.parse(lines[i]);
        const keys = Object.keys(action);
        if (keys.length !== 1 || !['index', 'create'].includes(keys[0]) || typeof action[keys[0]]._index !== 'string') return fail(`bad action ${lines[i]}`);
        const doc = JSON.parse(lines[i + 1]);
        if (typeof doc.startTime !== 'number') return fail('source without startTime');
        const key = doc.connectionId as string;
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        const status = opts.itemStatus?.(doc, n) ?? 201;
        if (status < 300) indexed.push({ index: action[keys[0]]._index, doc });
        items.push({ index: { _index: action[keys[0]]._index, status, ...(status >= 300 ? { error: { type: status === 429 ? 'es_rejected_execution_exception' : 'mapper_parsing_exception' } } : {}) } });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ took: 1, errors: items.some((it) => (it as { index: { status: number } }).index.status >= 300), items }));
    };
    return { handler, indexed, violations, templates };
  }

  it('writes NDJSON action/source pairs, one index per protocol, after putting the date-mapped template (basic auth)', async () => {
    const es = strictEs({ auth: `Basic ${Buffer.from('elastic:changeme').toString('base64')}` });
    const srv = await serve(es.handler);
    const sink = new ElasticsearchSink({ url: srv.url.replace('http://', 'http://elastic:changeme@'), batchSize: 7, flushInterval: 10 });
    for (let i = 0; i < 20; i++) sink.write(rec(i, i % 2 ? 'dubbo' : 'http1'));
    await sink.close();
    await srv.close();
    expect(es.violations).toEqual([]);
    expect(es.templates).toHaveLength(1);
    expect(es.indexed).toHaveLength(20);
    expect(new Set(es.indexed.map((x) => x.index))).toEqual(new Set(['flowtap-http1', 'flowtap-dubbo']));
    expect(sink.stats).toMatchObject({ written: 20, rejected: 0, dropped: 0 });
  });

  it('a partial failure (errors: true) retries the 429 items, counts the refused ones, and survives a 503 (API key auth)', async () => {
    const es = strictEs({
      auth: 'ApiKey aWQ6a2V5',
      busyFirst: 2,
      itemStatus: (doc, attempt) => (Number(doc.connectionId) % 5 === 0 ? 400 : Number(doc.connectionId) % 3 === 0 && attempt === 1 ? 429 : 201),
    });
    const srv = await serve(es.handler);
    const sink = new ElasticsearchSink({ url: srv.url, apiKey: 'aWQ6a2V5', template: false, batchSize: 10, flushInterval: 10, backoff: 10 });
    for (let i = 0; i < 30; i++) sink.write(rec(i));
    await waitFor(() => sink.stats.written + sink.stats.rejected === 30);
    await sink.close();
    await srv.close();
    expect(es.violations).toEqual([]);
    const refused = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 5 === 0);
    expect(sink.stats.rejected).toBe(refused.length);
    expect(es.indexed.map((x) => Number(x.doc.connectionId)).sort((a, b) => a - b))
      .toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 5 !== 0)); // each exactly once
    expect(sink.stats.failures).toBeGreaterThanOrEqual(3); // two 503s and at least one partial batch
  });
});

describe('Splunk HEC sink against a strict endpoint', () => {
  it('sends event envelopes with the Splunk token; a refused token and a busy collector are retried until accepted', async () => {
    const events: Record<string, unknown>[] = [];
    const violations: string[] = [];
    let token = 'wrong-until-fixed';
    let busy = 1;
    const srv = await serve(async (req, res) => {
      const body = await bodyOf(req);
      if (req.method !== 'POST' || req.url !== '/services/collector/event') { violations.push(`${req.method} ${req.url}`); return res.writeHead(404).end(); }
      if (req.headers.authorization !== `Splunk ${token}`) return res.writeHead(403, { 'content-type': 'application/json' }).end('{"text":"Invalid token","code":4}');
      if (busy-- > 0) return res.writeHead(503, { 'content-type': 'application/json' }).end('{"text":"Server is busy","code":9}');
      // A batch is concatenated JSON objects; each needs an "event", a numeric "time" in seconds.
      const objs = body.trim().split('\n').map((l) => JSON.parse(l));
      for (const o of objs) {
        if (typeof o.event !== 'object' || typeof o.time !== 'number' || o.time > 1e11) violations.push(`bad envelope ${JSON.stringify(o).slice(0, 80)}`);
        if (o.sourcetype !== `flowtap:${o.event.protocol}`) violations.push(`sourcetype ${o.sourcetype}`);
      }
      events.push(...objs);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
    const sink = new SplunkSink({ url: srv.url, token: 'the-token', index: 'net', batchSize: 5, flushInterval: 10, backoff: 10, maxBackoff: 20 });
    const errors: string[] = [];
    sink.on('error', (e) => errors.push(e.message));
    for (let i = 0; i < 12; i++) sink.write(rec(i));
    await waitFor(() => errors.length >= 2);
    token = 'the-token'; // the operator fixes the token
    await waitFor(() => sink.stats.written === 12);
    await sink.close();
    await srv.close();
    expect(violations).toEqual([]);
    expect(events.map((e) => (e.event as ExchangeRecord).connectionId)).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    expect(events[0]).toMatchObject({ index: 'net', source: 'flowtap', time: 1_700_000_000 });
    expect(errors.some((m) => m.includes('403'))).toBe(true);
    expect(errors.some((m) => m.includes('503'))).toBe(true);
  });
});

const chSkip = have('clickhouse-server') ? null : 'clickhouse-server is not installed (apt-get install -y clickhouse-server)';
if (chSkip) console.warn(`ClickHouse tests skipped: ${chSkip}`);

describe.skipIf(chSkip !== null)('ClickHouse sink against a real server (Debian 18.16)', () => {
  const dir = tempDir();
  let server: ChildProcess | null = null;
  let port = 0;

  async function start(): Promise<void> {
    for (const d of ['data', 'tmp', 'uf', 'fs']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'users.xml'), `<yandex><profiles><default></default></profiles><users>
      <flowtap><password>secret</password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></flowtap>
      <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
      </users><quotas><default></default></quotas></yandex>`);
    writeFileSync(join(dir, 'config.xml'), `<yandex>
      <logger><level>warning</level><log>${dir}/ch.log</log><errorlog>${dir}/ch.err</errorlog><console>0</console></logger>
      <http_port>${port}</http_port><tcp_port>${await freePort()}</tcp_port><listen_host>127.0.0.1</listen_host>
      <path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path><user_files_path>${dir}/uf/</user_files_path>
      <format_schema_path>${dir}/fs/</format_schema_path><users_config>${dir}/users.xml</users_config>
      <default_profile>default</default_profile><default_database>default</default_database>
      <mark_cache_size>1073741824</mark_cache_size><mlock_executable>false</mlock_executable></yandex>`);
    server = spawn('clickhouse-server', [`--config-file=${dir}/config.xml`], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if ((await query('SELECT 1').catch(() => '')).trim() === '1') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('ClickHouse did not answer SELECT 1 within 20 s');
  }

  async function stop(): Promise<void> {
    if (!server) return;
    const s = server;
    server = null;
    const exited = once(s, 'exit');
    s.kill('SIGTERM'); // by pid: only the server this test started
    await exited;
  }

  async function query(sql: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: sql, headers: { authorization: `Basic ${Buffer.from('flowtap:secret').toString('base64')}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(text);
    return text;
  }

  afterAll(() => stop());

  it('creates its table and inserts records as JSONEachRow rows that read back field for field', async () => {
    port = await freePort();
    await start();
    const sink = new ClickHouseSink({ url: `http://flowtap:secret@127.0.0.1:${port}`, table: 'records_a', createTable: true, batchSize: 10, flushInterval: 10 });
    for (let i = 0; i < 25; i++) sink.write({ ...rec(i, i % 2 ? 'dubbo' : 'http1'), requestId: i % 2 ? String(2n ** 63n + BigInt(i)) : undefined });
    await sink.close();
    expect(sink.stats).toMatchObject({ written: 25, dropped: 0 });
    const rows = (await query('SELECT * FROM records_a ORDER BY startTime FORMAT JSONEachRow')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(25);
    expect(rows[1]).toMatchObject({ protocol: 'dubbo', connectionId: '1', clientIp: '10.0.0.1', clientPort: 1001, startTime: 1_700_000_000_001,
      status: 'ok', code: 200, endpoint: '/e1', traceId: 't1', requestId: String(2n ** 63n + 1n) });
    expect(JSON.parse(rows[0].request)).toEqual(rec(0).request);
  }, 60_000);

  // The sink on the forwarding thread (a `record` listener), or opened by the decoding thread itself
  // (`sinks`, as `flowtap dump --out clickhouse:…` does), where its counts come back as `sinkStats`.
  it.each([['the forwarding thread', 'records_b'], ['the decoding thread', 'records_c'], ['each of two tap processes', 'records_d']])('stopped mid-run, a sink on %s: forwarding is unaffected, drops are counted, memory stays bounded; once back, records flow again', async (where, table) => {
    const upstream = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const options = { url: `http://127.0.0.1:${port}`, username: 'flowtap', password: 'secret', table, createTable: true,
      maxQueue: 200, batchSize: 50, flushInterval: 20, backoff: 20, maxBackoff: 200, sendTimeout: 2000 };
    const inThread = where !== 'the forwarding thread';
    const proxyOptions = { listen: { port: 0 }, upstream: { host: '127.0.0.1', port: (upstream.address() as AddressInfo).port },
      ...(inThread ? { decodeIn: 'worker' as const, sinks: [{ kind: 'clickhouse' as const, options }] } : {}) };
    // Two processes (`dump --workers 2 --out clickhouse:…`): each writes to the server itself, counts summed here.
    const proxy = where === 'each of two tap processes' ? new TapCluster({ workers: 2, proxy: proxyOptions }) : new TapProxy(proxyOptions);
    // What the test uses of either (their listener types differ).
    const on = proxy.on.bind(proxy) as unknown as (event: string, fn: (...args: never[]) => void) => void;
    const sink = inThread ? null : new ClickHouseSink(options);
    const errors: string[] = [];
    if (sink) on('record', (r: ExchangeRecord) => sink.write(r));
    else on('sinkError', (e: Error, i: number) => errors.push(`${i}: ${e.message}`));
    let events = 0;
    on('record', () => { events++; });
    const stats = () => (sink ? sink.stats : proxy.sinkStats[0]);
    const { port: pp } = await proxy.listen();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const burst = (n: number, tag: string) => Promise.all(Array.from({ length: n }, (_, i) => new Promise<number>((resolve, reject) => {
      http.get({ port: pp, host: '127.0.0.1', path: `/${tag}/${i}`, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject);
    })));
    expect((await burst(100, 'before')).every((c) => c === 200)).toBe(true);
    await waitFor(() => stats().written === 100);
    await stop();
    const heap0 = process.memoryUsage().heapUsed;
    expect((await burst(1000, 'during')).every((c) => c === 200)).toBe(true); // forwarding unaffected
    await waitFor(() => stats().dropped > 0);
    expect(stats().queued).toBeLessThanOrEqual(where === 'each of two tap processes' ? 2 * 200 : 200); // the bound is each sink's
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 * 1024 * 1024);
    await start();
    await waitFor(() => stats().queued === 0, 15_000);
    expect((await burst(10, 'after')).every((c) => c === 200)).toBe(true);
    // Every record reached the sink (from a thread, they come after their answers) and was written.
    await waitFor(() => stats().accepted + stats().dropped === 1110 && stats().queued === 0 && stats().accepted === stats().written, 15_000);
    const after = Number((await query(`SELECT count() FROM ${table} WHERE endpoint LIKE '/after/%'`)).trim());
    expect(after).toBe(10);
    expect(stats().accepted + stats().dropped).toBe(1110);
    if (proxy instanceof TapCluster) await proxy.refreshStats();
    expect(proxy.stats.records).toBe(1110);
    if (inThread) {
      // The records stayed in the thread; its sink's failures came here as events.
      expect(events).toBe(0);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((e) => e.startsWith('0: '))).toBe(true);
    }
    agent.destroy();
    await proxy.close();
    await sink?.close();
    upstream.close();
  }, 90_000);
});
