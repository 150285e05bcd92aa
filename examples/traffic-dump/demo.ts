/**
 * `npm run demo`: the whole traffic-dump picture on loopback, in one command.
 * Starts three demo services (an HTTP orders API, a Dubbo user service built on flowtap's own codec and a
 * gRPC inventory service on @grpc/grpc-js),
 * puts a tap proxy in front of each, sends mixed traffic through them (including errors and slow calls),
 * writes every exchange to ./records.jsonl and prints a summary per endpoint.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { DubboDecoder, encodeRequest, encodeResponse, javaException, type DubboMessage, type AnyRecord } from 'flowtap';
import { startTrafficDump } from './traffic-dump.js';

const OUT = resolve(process.cwd(), process.env.FLOWTAP_DEMO_OUT ?? 'records.jsonl');
const PROTOS = new URL('./protos', import.meta.url).pathname;

async function listen(server: net.Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

const freePort = async () => { const s = net.createServer(); const p = await listen(s); s.close(); return p; };

/** The orders API: fast reads, writes, a 404, a 500 and a slow report. */
function ordersApi(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '/';
      const json = (code: number, body: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (url.startsWith('/orders/missing')) return json(404, { error: 'no such order' });
      if (url.startsWith('/orders') && req.method === 'POST') return json(201, { id: 1001, status: 'created' });
      if (url.startsWith('/orders')) return json(200, { id: 42, items: 3, total: 99.5 });
      if (url.startsWith('/boom')) return json(500, { error: 'database unavailable' });
      if (url.startsWith('/report')) { setTimeout(() => json(200, { rows: 1200 }), 120 + Math.random() * 80); return; }
      json(404, { error: 'not found' });
    });
  });
}

/** A Dubbo provider written with flowtap's decoder and encoder. */
function userService(): net.Server {
  return net.createServer((sock) => {
    const reply = (m: DubboMessage) => {
      const id = m.requestId;
      switch (m.request?.method) {
        case 'getUser':
          return encodeResponse({ requestId: id, value: { $class: 'demo.User', $: { id: 7, name: 'Ada', email: 'ada@example.com' } }, attachments: { dubbo: '2.0.2' } });
        case 'updateUser':
          return encodeResponse({ requestId: id, exception: javaException('java.lang.IllegalArgumentException', 'email is not valid'), attachments: { dubbo: '2.0.2' } });
        case 'export':
          return encodeResponse({ requestId: id, value: 'done' });
        default:
          return encodeResponse({ requestId: id, status: 60, errorMessage: `Not found exported service: demo.UserService:${m.request?.method}` });
      }
    };
    const d = new DubboDecoder({
      onMessage: (m) => {
        if (m.type !== 'request' || !m.twoWay) return;
        const delay = m.request?.method === 'export' ? 150 + Math.random() * 100 : Math.random() * 3;
        setTimeout(() => sock.write(reply(m)), delay);
      },
    });
    sock.on('data', (c) => d.write(c));
    sock.on('error', () => {});
  });
}

/** The inventory service's methods, (de)serialised with protobufjs from protos/inventory.proto. */
function inventoryDefinition(): grpc.ServiceDefinition {
  const root = new protobuf.Root().loadSync(`${PROTOS}/inventory.proto`, { keepCase: true });
  const codec = (name: string) => {
    const t = root.lookupType(name);
    return { serialize: (o: object) => Buffer.from(t.encode(t.fromObject(o)).finish()), deserialize: (b: Buffer) => t.toObject(t.decode(b)) };
  };
  const method = (name: string, req: string, res: string, responseStream: boolean) => {
    const [q, r] = [codec(`demo.${req}`), codec(`demo.${res}`)];
    return { path: `/demo.Inventory/${name}`, requestStream: false, responseStream,
      requestSerialize: q.serialize, requestDeserialize: q.deserialize, responseSerialize: r.serialize, responseDeserialize: r.deserialize };
  };
  return {
    GetStock: method('GetStock', 'StockRequest', 'Stock', false),
    WatchStock: method('WatchStock', 'StockRequest', 'Stock', true),
    Reserve: method('Reserve', 'ReserveRequest', 'Reservation', false),
  };
}

/** The inventory: lookups (unknown SKUs are NOT_FOUND), a stock feed, and reservations that are sometimes slow. */
async function inventoryService(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  type Call<T> = { request: T };
  server.addService(inventoryDefinition(), {
    GetStock: (call: Call<{ sku: string }>, cb: grpc.sendUnaryData<object>) => {
      if (call.request.sku.startsWith('X-')) cb({ code: grpc.status.NOT_FOUND, details: `no such SKU: ${call.request.sku}` });
      else cb(null, { sku: call.request.sku, available: 12, warehouse: 'fra-1' });
    },
    WatchStock: (call: grpc.ServerWritableStream<{ sku: string }, object>) => {
      for (let i = 0; i < 5; i++) call.write({ sku: call.request.sku, available: 12 - i, warehouse: 'fra-1' });
      call.end();
    },
    Reserve: (call: Call<{ sku: string; qty: number }>, cb: grpc.sendUnaryData<object>) => {
      const slow = call.request.sku === 'SLOW-1';
      setTimeout(() => cb(null, { id: `r-${Math.random().toString(36).slice(2, 8)}`, sku: call.request.sku, qty: call.request.qty }), slow ? 300 : 5);
    },
  });
  return new Promise((done, fail) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? fail(e) : done({ server, port }))));
}

async function grpcTraffic(port: number): Promise<void> {
  const Client = grpc.makeGenericClientConstructor(inventoryDefinition(), 'Inventory');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown>;
  const unary = (method: string, req: object, deadlineMs = 5000) => new Promise<void>((done) => {
    client[method](req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, () => done());
  });
  await unary('GetStock', { sku: 'A-0' }); // the channel connects lazily: let the first call open it
  const calls: Promise<void>[] = [];
  for (let i = 1; i < 20; i++) calls.push(unary('GetStock', { sku: `A-${i % 4}` }));
  for (let i = 0; i < 4; i++) calls.push(unary('GetStock', { sku: `X-${i}` }));
  for (let i = 0; i < 6; i++) calls.push(unary('Reserve', { sku: 'A-1', qty: i + 1, customer_token: 'demo-secret' }));
  // Two reservations the server answers too late for their 100 ms deadline: DEADLINE_EXCEEDED.
  for (let i = 0; i < 2; i++) calls.push(unary('Reserve', { sku: 'SLOW-1', qty: 1, customer_token: 'demo-secret' }, 100));
  for (let i = 0; i < 3; i++) {
    calls.push(new Promise<void>((done) => {
      const stream = client.WatchStock({ sku: 'A-2' }) as grpc.ClientReadableStream<object>;
      stream.on('data', () => {});
      stream.on('error', () => done());
      stream.on('end', () => done());
    }));
  }
  await Promise.all(calls);
  (client as unknown as grpc.Client).close();
}

async function httpTraffic(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const call = (method: string, path: string, body?: string) => new Promise<void>((done) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: 'Bearer demo-secret-token', 'x-request-id': `demo-${Math.random().toString(36).slice(2, 10)}` } },
      (res) => { res.resume(); res.on('end', () => done()); });
    req.on('error', () => done());
    req.end(body);
  });
  const plan: [string, string, string?][] = [];
  for (let i = 0; i < 40; i++) plan.push(['GET', '/orders?id=42']);
  for (let i = 0; i < 10; i++) plan.push(['POST', '/orders', JSON.stringify({ item: 'book', qty: 1, password: 'hunter2' })]);
  for (let i = 0; i < 5; i++) plan.push(['GET', '/orders/missing']);
  for (let i = 0; i < 3; i++) plan.push(['GET', '/boom']);
  for (let i = 0; i < 4; i++) plan.push(['GET', '/report']);
  await Promise.all(plan.map(([m, p, b]) => call(m, p, b)));
  agent.destroy();
}

async function dubboTraffic(port: number): Promise<void> {
  const calls: string[] = [...Array(30).fill('getUser'), ...Array(5).fill('updateUser'), ...Array(3).fill('export'), 'deleteUser'];
  await new Promise<void>((done) => {
    const s = net.connect(port, '127.0.0.1', () => {
      // Pipelined: all calls in one write, answers come back in any order.
      s.write(Buffer.concat(calls.map((method, i) => encodeRequest({
        requestId: i + 1, service: 'demo.UserService', serviceVersion: '1.0.0', method, parameterTypes: 'J',
        args: [{ $class: 'long', $: 7 }], attachments: { traceparent: `00-${'0'.repeat(30)}${String(i).padStart(2, '0')}-00f067aa0ba902b7-01`, token: 'demo-secret' },
      }))));
    });
    let answers = 0;
    const d = new DubboDecoder({ onMessage: () => { if (++answers === calls.length) { s.end(); done(); } } });
    s.on('data', (c) => d.write(c));
    s.on('error', () => done());
  });
}

function summary(records: AnyRecord[]): string {
  const rows = new Map<string, { calls: number; errors: number; ms: number[] }>();
  for (const r of records) {
    const method = (r.request as { method?: string | null }).method;
    const key = r.protocol === 'http1' ? `http1  ${method} ${r.endpoint}` : `${r.protocol.padEnd(6)} ${r.endpoint}`;
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { calls: 0, errors: 0, ms: [] }));
    row.calls++;
    if (r.status !== 'ok') row.errors++;
    if (r.duration !== null) row.ms.push(r.duration);
  }
  const pct = (xs: number[], p: number) => {
    if (xs.length === 0) return '-';
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)].toFixed(1);
  };
  const lines = [`${'ENDPOINT'.padEnd(40)} ${'CALLS'.padStart(6)} ${'ERRORS'.padStart(7)} ${'P50 ms'.padStart(8)} ${'P99 ms'.padStart(8)}`];
  for (const [k, v] of [...rows].sort((a, b) => a[0].localeCompare(b[0]))) {
    lines.push(`${k.padEnd(40)} ${String(v.calls).padStart(6)} ${String(v.errors).padStart(7)} ${pct(v.ms, 50).padStart(8)} ${pct(v.ms, 99).padStart(8)}`);
  }
  return lines.join('\n');
}

const orders = ordersApi();
const users = userService();
const inventory = await inventoryService();
const ordersPort = await listen(orders);
const usersPort = await listen(users);
const [ordersProxy, usersProxy, inventoryProxy] = [await freePort(), await freePort(), await freePort()];
rmSync(OUT, { force: true });
const records: AnyRecord[] = [];
const dump = await startTrafficDump({
  services: [
    { name: 'orders-http', port: ordersProxy, originalPort: ordersPort, type: 'http' },
    { name: 'users-dubbo', port: usersProxy, originalPort: usersPort, type: 'dubbo' },
    { name: 'inventory-grpc', port: inventoryProxy, originalPort: inventory.port, type: 'grpc', protoDir: PROTOS },
  ],
  outputs: [{ type: 'jsonl', path: OUT }],
}, (r) => records.push(r));

console.log('flowtap demo: three services on loopback, each behind a tap proxy');
console.log(`  orders API (HTTP)         127.0.0.1:${ordersPort}  ← tap proxy 127.0.0.1:${ordersProxy}`);
console.log(`  user service (Dubbo)      127.0.0.1:${usersPort}  ← tap proxy 127.0.0.1:${usersProxy}`);
console.log(`  inventory (gRPC)          127.0.0.1:${inventory.port}  ← tap proxy 127.0.0.1:${inventoryProxy}`);
console.log('sending mixed traffic (errors and slow calls included)...\n');
await Promise.all([httpTraffic(ordersProxy), dubboTraffic(usersProxy), grpcTraffic(inventoryProxy)]);
await new Promise((r) => setTimeout(r, 400)); // the slow reservations' late answers
await dump.close();
users.close();
orders.close();
inventory.server.forceShutdown();

const byStatus = records.reduce<Record<string, number>>((m, r) => { m[r.status] = (m[r.status] ?? 0) + 1; return m; }, {});
console.log(summary(records));
console.log(`\n${records.length} exchanges recorded (${Object.entries(byStatus).map(([k, v]) => `${v} ${k}`).join(', ')}); ` +
  `${dump.sinks.reduce((n, s) => n + s.stats.dropped, 0)} dropped`);
console.log(`records: ${OUT} (secrets such as the Authorization header and "password" fields are masked)`);
console.log('read them with: head -n 3 records.jsonl, or point flowtap at your own service with `node dist/cli.js dump --help`');
