/** Plugins: the examples in examples/plugins/ against real peers, isolation, and loading from the CLI. */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  loadPlugins, PluginHost, type AnyRecord, type RecordCallbackError, type FlowtapPlugin, type GrpcRecord, type Http1Record, type PluginRecord,
} from '../src/index.js';
import { tapTo } from './taps.js';
import { captureSkipReason, cleanups, run, startCapture, tempDir } from './tools.js';

const examples = new URL('../examples/plugins/', import.meta.url).pathname;
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const { closers, listen } = cleanups(afterEach);

/** A tap proxy to `port` whose records go through `host` into the returned array. */
function tapWith(host: PluginHost, port: number) {
  closers.push(() => host.close());
  return tapTo(closers, port, { protocols: host.allProtocols }, (r, records) => host.process(r, (out) => records.push(out)));
}

function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (r) => {
      let b = '';
      r.setEncoding('utf8').on('data', (d) => { b += d; }).on('end', () => resolve({ status: r.statusCode!, body: b }));
    }).on('error', reject);
  });
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('examples/plugins against real peers', () => {
  it('opt-status: an HTTP 200 whose JSON says OPT_STATUS != SUCCESS becomes code 500, server_error, DESCRIPTION as error', async () => {
    const server = http.createServer((q, s) => {
      s.setHeader('content-type', 'application/json');
      s.end(q.url === '/bad' ? '{"OPT_STATUS":"AUTH_HEADER_ERROR","DESCRIPTION":"the auth header is missing"}' : '{"OPT_STATUS":"SUCCESS"}');
    });
    const host = await loadPlugins([join(examples, 'opt-status.mjs')]);
    const t = await tapWith(host, await listen(server));
    expect(await get(t.port, '/bad')).toEqual({ status: 200, body: '{"OPT_STATUS":"AUTH_HEADER_ERROR","DESCRIPTION":"the auth header is missing"}' });
    await get(t.port, '/good');
    await until(() => t.records.length === 2);
    const [bad, good] = t.records as Http1Record[];
    expect(bad).toMatchObject({ endpoint: '/bad', code: 500, status: 'server_error', error: 'the auth header is missing', attributes: { op_stat: 'AUTH_HEADER_ERROR' } });
    expect(bad.response?.statusCode).toBe(200); // the wire's own value is kept in the protocol part
    expect(good).toMatchObject({ endpoint: '/good', code: 200, status: 'ok', error: null });
    expect(good.attributes).toBeUndefined();
  });

  it('business-id: a grpc-js OrderRequest { string business_id = 1235 } becomes traceId and attributes, with OrderResponse.msg', async () => {
    const root = protobuf.parse(`syntax = "proto3"; package bank;
      message OrderRequest { string business_id = 1235; } message OrderResponse { string msg = 1235; }`, { keepCase: true }).root;
    const Req = root.lookupType('bank.OrderRequest');
    const Res = root.lookupType('bank.OrderResponse');
    const service = { Place: {
      path: '/bank.Orders/Place', requestStream: false, responseStream: false,
      requestSerialize: (m: object) => Buffer.from(Req.encode(m).finish()), requestDeserialize: (b: Buffer) => Req.decode(b),
      responseSerialize: (m: object) => Buffer.from(Res.encode(m).finish()), responseDeserialize: (b: Buffer) => Res.decode(b),
    } };
    const server = new grpc.Server();
    server.addService(service as never, {
      Place: (call: grpc.ServerUnaryCall<{ business_id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { msg: `placed ${call.request.business_id}` }),
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    closers.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
    const host = await loadPlugins([join(examples, 'business-id.mjs')]);
    const t = await tapWith(host, port);
    const Client = grpc.makeGenericClientConstructor(service as never, 'Orders');
    const client = new Client(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure()) as unknown as {
      Place(m: object, cb: (e: Error | null, r: { msg: string }) => void): void; close(): void };
    closers.push(() => client.close());
    const answer = await new Promise<{ msg: string }>((resolve, reject) => client.Place({ business_id: 'BIZ-2026-0001' }, (e, r) => (e ? reject(e) : resolve(r))));
    expect(answer.msg).toBe('placed BIZ-2026-0001');
    await until(() => t.records.length === 1);
    expect(t.records[0]).toMatchObject({ protocol: 'grpc', endpoint: '/bank.Orders/Place', status: 'ok', code: 0, traceId: 'BIZ-2026-0001',
      attributes: { business_id: 'BIZ-2026-0001', msg: 'placed BIZ-2026-0001' } });
    expect((t.records[0] as GrpcRecord).request.message).toEqual({ 1235: 'BIZ-2026-0001' });
  });

  it('mask-cards: Luhn-valid card numbers in bodies are masked in the record, and the traffic is untouched', async () => {
    const server = http.createServer((q, s) => {
      let b = '';
      q.on('data', (d) => { b += d; }).on('end', () => s.end(`charged ${b}`));
    });
    const host = await loadPlugins([join(examples, 'mask-cards.mjs')]);
    const t = await tapWith(host, await listen(server));
    const body = '{"card":"4111 1111 1111 1111","order":"1234567890123"}';
    const answer = await new Promise<string>((resolve, reject) => {
      const q = http.request({ host: '127.0.0.1', port: t.port, method: 'POST', path: '/pay' }, (r) => {
        let b = '';
        r.setEncoding('utf8').on('data', (d) => { b += d; }).on('end', () => resolve(b));
      });
      q.on('error', reject);
      q.end(body);
    });
    expect(answer).toBe(`charged ${body}`); // byte for byte: plugins never touch forwarding
    await until(() => t.records.length === 1);
    const r = t.records[0] as Http1Record;
    expect(r.request.body).toBe('{"card":"****1111","order":"1234567890123"}'); // 1234567890123 fails Luhn: kept
    expect(r.response?.body).toBe('charged {"card":"****1111","order":"1234567890123"}');
    expect(r.request.bodySize).toBe(body.length);
    expect(r.attributes).toEqual({ masked: 'card' });
  });
});

// ---- a private protocol: acme-kv (examples/plugins/acme-kv.mjs), client and server written here ----

function kvServer(): net.Server {
  const store = new Map<string, string>();
  return net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [verb, key, ...value] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (verb === 'SET') { store.set(key, value.join(' ')); s.write('OK\n'); }
        else if (store.has(key)) s.write(`OK ${store.get(key)}\n`);
        else s.write(`ERR no such key ${key}\n`);
      }
    });
  });
}

async function kvSession(port: number, lines: string[]): Promise<string[]> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  const answers: string[] = [];
  let buf = '';
  c.on('data', (d) => { buf += d; });
  for (const l of lines) {
    c.write(`${l}\n`);
    await until(() => buf.split('\n').length - 1 > answers.length);
    answers.push(buf.split('\n')[answers.length]);
  }
  c.end();
  await once(c, 'close');
  return answers;
}

const KV_LINES = ['SET user:1 ada lovelace', 'GET user:1', 'GET user:2', 'SET user:2 grace'];
const KV_ANSWERS = ['OK', 'OK ada lovelace', 'ERR no such key user:2', 'OK'];

function kvRecords(records: AnyRecord[]) {
  return (records.filter((r) => r.protocol === 'acme-kv') as PluginRecord[])
    .map((r) => [r.endpoint, r.status, r.error, r.request, r.response, r.requestSize, r.responseSize]);
}
const KV_EXPECTED = [
  ['SET user:1', 'ok', null, { command: 'SET', key: 'user:1', value: 'ada lovelace' }, { answer: 'OK', value: null }, 24, 3],
  ['GET user:1', 'ok', null, { command: 'GET', key: 'user:1', value: null }, { answer: 'OK', value: 'ada lovelace' }, 11, 16],
  ['GET user:2', 'server_error', 'no such key user:2', { command: 'GET', key: 'user:2', value: null }, { answer: 'ERR', value: 'no such key user:2' }, 11, 23],
  ['SET user:2', 'ok', null, { command: 'SET', key: 'user:2', value: 'grace' }, { answer: 'OK', value: null }, 17, 3],
];

describe('a protocol plugin: acme-kv', () => {
  it('through the tap proxy: its own protocol in records, paired in order, the traffic forwarded as is', async () => {
    const host = await loadPlugins([join(examples, 'acme-kv.mjs')]);
    const t = await tapWith(host, await listen(kvServer()));
    expect(await kvSession(t.port, KV_LINES)).toEqual(KV_ANSWERS);
    await until(() => t.records.length === 4);
    expect(t.records.every((r) => r.protocol === 'acme-kv')).toBe(true);
    expect(kvRecords(t.records)).toEqual(KV_EXPECTED);
    // HTTP through a proxy with the plugin loaded is still HTTP: the plugin refuses what is not its own.
    const web = http.createServer((_q, s) => s.end('hi'));
    const t2 = await tapWith(await loadPlugins([join(examples, 'acme-kv.mjs')]), await listen(web));
    expect((await get(t2.port, '/x')).body).toBe('hi');
    await until(() => t2.records.length === 1);
    expect(t2.records[0].protocol).toBe('http1');
  });

  const skip = captureSkipReason();
  it.skipIf(skip !== null)(`through flowtap read --plugin of a tcpdump capture${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    const port = await listen(kvServer());
    const pcap = join(tempDir(), 'acme-kv.pcap');
    const cap = await startCapture('lo', pcap, `tcp port ${port}`);
    expect(await kvSession(port, KV_LINES)).toEqual(KV_ANSWERS);
    await cap.stop();
    const out = run('node', [CLI, 'read', pcap, '--plugin', join(examples, 'acme-kv.mjs')]);
    expect(out.status, out.stderr).toBe(0);
    expect(kvRecords(out.stdout.trim().split('\n').map((l) => JSON.parse(l)))).toEqual(KV_EXPECTED);
    // Without the plugin, "GET user:1" reads as a broken HTTP/1 request line: parse errors, never acme-kv records.
    const plain = run('node', [CLI, 'read', pcap]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(plain.every((r) => r.protocol === 'http1' && r.status === 'parse_error')).toBe(true);
  });
});

describe('isolation', () => {
  it("isolate: 'worker' with while (true) {}: traffic keeps flowing, records pass unchanged, the plugin is reported", async () => {
    const server = http.createServer((q, s) => s.end(`answer ${q.url}`));
    const host = await loadPlugins([{ path: join(examples, 'loop.mjs'), isolate: 'worker' }], { timeoutMs: 100, maxFailures: 2 });
    const timeouts: string[] = [];
    host.on('timeout', (name) => timeouts.push(name));
    const t = await tapWith(host, await listen(server));
    const agent = new http.Agent({ keepAlive: true });
    closers.push(() => agent.destroy());
    const started = performance.now();
    for (let i = 0; i < 3; i++) expect((await get(t.port, `/r${i}`, agent)).body).toBe(`answer /r${i}`);
    // Forwarding never waited for the stuck plugin (each answer came long before a worker timeout).
    expect(performance.now() - started).toBeLessThan(1000);
    await until(() => t.records.length === 3, 5000);
    expect(t.records.map((r) => [r.endpoint, r.status, r.attributes])).toEqual([['/r0', 'ok', undefined], ['/r1', 'ok', undefined], ['/r2', 'ok', undefined]]);
    expect(timeouts.length).toBeGreaterThanOrEqual(1);
    const s = host.stats[0];
    expect(s).toMatchObject({ name: 'loop', isolate: 'worker' });
    expect(s.timeouts).toBeGreaterThanOrEqual(1);
  });

  it("with a worker plugin, a `next` that throws is reported as the caller's error and later records still pass", async () => {
    const host = await loadPlugins([{ path: join(examples, 'business-id.mjs'), isolate: 'worker' }]);
    closers.push(() => host.close());
    const userErrors: RecordCallbackError[] = [];
    host.on('userError', (e) => userErrors.push(e));
    const out: string[] = [];
    for (let i = 0; i < 4; i++) {
      host.process({ protocol: 'http1', endpoint: `/${i}`, status: 'ok' } as AnyRecord, (r) => {
        if (r.endpoint === '/1') throw new Error('caller bug');
        out.push(r.endpoint);
      });
    }
    await host.drain();
    expect(out).toEqual(['/0', '/2', '/3']);
    expect(userErrors.map((e) => [e.record.endpoint, (e.cause as Error).message])).toEqual([['/1', 'caller bug']]);
    expect(host.stats[0].failures).toBe(0);
  });

  it('a hook that throws leaves the record as it was, is counted, and is switched off after maxFailures', () => {
    const calls: string[] = [];
    const bad: FlowtapPlugin = { name: 'bad', hooks: { any: (r) => { calls.push(r.endpoint); throw new Error('oops'); } } };
    const good: FlowtapPlugin = { name: 'good', hooks: { any: () => ({ attributes: { seen: 'yes' } }) } };
    const host = new PluginHost({ maxFailures: 3 }).add(bad).add(good);
    const errors: string[] = [];
    const disabled: string[] = [];
    host.on('error', (name, e) => errors.push(`${name}: ${e.message}`));
    host.on('disabled', (name, why) => disabled.push(`${name}: ${why}`));
    const out: AnyRecord[] = [];
    for (let i = 0; i < 5; i++) {
      host.process({ protocol: 'http1', endpoint: `/${i}`, status: 'ok' } as AnyRecord, (r) => out.push(r));
    }
    expect(calls).toEqual(['/0', '/1', '/2']); // switched off after the third failure
    expect(errors).toEqual(['bad: oops', 'bad: oops', 'bad: oops']);
    expect(disabled).toEqual(['bad: 3 failures (last: oops)']);
    expect(out.map((r) => [r.endpoint, r.status, r.attributes])).toEqual([0, 1, 2, 3, 4].map((i) => [`/${i}`, 'ok', { seen: 'yes' }]));
    expect(host.stats.map((s) => [s.name, s.failures, s.modified, s.disabled !== null])).toEqual([['bad', 3, 0, true], ['good', 0, 5, false]]);
  });

  it('a hook over its time budget is reported (and switched off when asked)', () => {
    const slow: FlowtapPlugin = { name: 'slow', hooks: { any: () => { const end = performance.now() + 3; while (performance.now() < end); } } };
    const host = new PluginHost({ budgetMs: 1, disableOverBudget: true, maxFailures: 2 }).add(slow);
    const over: number[] = [];
    host.on('overBudget', (_n, ms) => over.push(ms));
    for (let i = 0; i < 4; i++) host.process({ protocol: 'http1', endpoint: '/' } as AnyRecord, () => {});
    expect(over.length).toBe(2);
    expect(over.every((ms) => ms >= 1)).toBe(true);
    expect(host.stats[0].disabled).toMatch(/over its 1 ms budget 2 times/);
  });

  it('the CLI: a plugin file that does not load is one line and exit 2', () => {
    const r = run('node', [CLI, 'read', '/dev/null', '--plugin', '/nonexistent/plugin.mjs']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^flowtap: cannot load plugin \/nonexistent\/plugin.mjs: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
