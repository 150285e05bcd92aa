/** Response diff: an old version run twice, a new one with one regression, noisy answers; the report names only the regression. */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diffRecordings, type DiffReport } from '../src/diff/index.js';
import { encodeFtr, FTR_HEADER } from '../src/replay/index.js';
import { recordThrough } from './taps.js';
import { cleanups, freePort, runAsync, tempDir } from './tools.js';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const { closers, listen } = cleanups(afterEach);
const T0 = 1_700_000_000_000_000_000n;
const id = (n: number) => n.toString(16).padStart(24, '0');

/** The orders service. Every answer is noisy: a timestamp, a random request id, a shuffled tag list. */
function ordersService(version: 'old' | 'new') {
  return http.createServer((q, s) => {
    const url = new URL(q.url!, 'http://x');
    const noise = { servedAt: `${new Date().toISOString()} ${process.hrtime.bigint()}`, requestId: randomUUID(), tags: ['a', 'b', 'c', 'd'].sort(() => Math.random() - 0.5) };
    s.setHeader('content-type', 'application/json');
    s.setHeader('x-served-by', randomUUID()); // a volatile header too
    let m = /^\/orders\/(\d+)$/.exec(url.pathname);
    if (m) {
      const n = Number(m[1]);
      // The regression: the new version rounds prices down.
      const price = (i: number) => (version === 'new' ? Math.floor(9.99 + i) : 9.99 + i);
      s.end(JSON.stringify({ id: n, status: 'shipped', items: [{ sku: `s${n}`, price: price(0) }, { sku: `t${n}`, price: price(1) }], ...noise }));
      return;
    }
    m = /^\/users\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (m) { s.end(JSON.stringify({ user: m[1], name: 'Ada', ...noise })); return; }
    if (url.pathname === '/health') { s.end(JSON.stringify({ ok: true, ...noise })); return; }
    s.statusCode = 404;
    s.end('{"error":"not found"}');
  });
}

async function sides(candidate: http.Server = ordersService('new')) {
  const primary = await listen(ordersService('old'));
  const secondary = await listen(ordersService('old'));
  const cand = await listen(candidate);
  return { primary: `http://127.0.0.1:${primary}`, secondary: `http://127.0.0.1:${secondary}`, candidate: `http://127.0.0.1:${cand}`, primaryPort: primary };
}

/** A recording of GETs: orders, users (uuid paths), health. */
function recording(dir: string, n = 60): string {
  const lines = [FTR_HEADER + '\n'];
  const users = Array.from({ length: 5 }, () => randomUUID());
  for (let i = 0; i < n; i++) {
    const path = i % 3 === 0 ? `/orders/${1000 + i}` : i % 3 === 1 ? `/users/${users[i % 5]}` : '/health';
    lines.push(encodeFtr({ type: 1, id: id(i), timestamp: T0 + BigInt(i) * 1_000_000n, latency: -1n, protocol: 'http1',
      raw: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: prod\r\nAccept: application/json\r\n\r\n`) }));
  }
  const file = join(dir, 'prod.ftr');
  writeFileSync(file, lines.join(''));
  return file;
}

const realFields = (r: DiffReport) => r.endpoints.flatMap((e) => e.fields.filter((f) => f.real).map((f) => `${e.endpoint} ${f.path} ${Object.keys(f.kinds).join('/')}`));

describe('three-way diff from a recording', () => {
  it('names exactly the regression (one field of one endpoint) and nothing from the noise', async () => {
    const s = await sides();
    const dir = tempDir();
    const { report, sent } = await diffRecordings([recording(dir)], { primary: s.primary, secondary: s.secondary, candidate: s.candidate });
    expect(sent).toEqual({ primary: 60, secondary: 60, candidate: 60 });
    expect(realFields(report)).toEqual(['GET /orders/{id} body.items[].price value changed']);
    const orders = report.endpoints.find((e) => e.endpoint === 'GET /orders/{id}')!;
    expect(orders).toMatchObject({ requests: 20, withDifferences: 20 });
    // The noise was seen, and cancelled: timestamps, request ids, the shuffled tags, the volatile header.
    const noise = orders.fields.filter((f) => !f.real).map((f) => f.path).sort();
    expect(noise).toEqual(expect.arrayContaining(['body.servedAt', 'body.requestId', 'header.x-served-by']));
    expect(report.endpoints.map((e) => e.endpoint)).toEqual(['GET /health', 'GET /orders/{id}', 'GET /users/{id}']);
    expect(report.withDifferences).toBe(20);
    expect(orders.examples[0].differences).toEqual([{ path: 'body.items[].price', kind: 'value changed' }, { path: 'body.items[].price', kind: 'value changed' }]);
  });

  it('the CLI: terminal table, JSON report, --fail-on-diff exit 1; no regression: exit 0', async () => {
    const s = await sides();
    const dir = tempDir();
    const file = recording(dir, 30);
    const r = await runAsync('node', [CLI, 'diff', file, '--primary', s.primary, '--secondary', s.secondary, '--candidate', s.candidate,
      '--report-json', join(dir, 'r.json'), '--fail-on-diff']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^ENDPOINT\s+REQUESTS\s+DIFFERING\s+REAL DIFFERENCES \(TOP FIELDS\)\n/);
    expect(r.stdout).toMatch(/GET \/orders\/\{id\}\s+10\s+10\s+body\.items\[\]\.price: value changed\n/);
    expect(r.stdout).toMatch(/GET \/health\s+10\s+0\s+-\n/);
    const json = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as DiffReport;
    expect(realFields(json)).toEqual(['GET /orders/{id} body.items[].price value changed']);
    const same = await sides(ordersService('old'));
    const ok = await runAsync('node', [CLI, 'diff', file, '--primary', same.primary, '--secondary', same.secondary, '--candidate', same.candidate, '--fail-on-diff']);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/three-way: 30 requests, 0 with real differences/);
  });

  it('bad input: unknown --ignore syntax is one line and exit 2; an unreachable side and a body that is not the JSON it claims are noted, and the diff goes on', async () => {
    const s = await sides();
    const dir = tempDir();
    const file = recording(dir, 12);
    const bad = await runAsync('node', [CLI, 'diff', file, '--primary', s.primary, '--secondary', s.secondary, '--candidate', s.candidate, '--ignore', 'xpath://a']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe('flowtap: unknown --ignore rule "xpath://a": use header:NAME or json:$.path.to.field (with [*] for array elements)');
    const liar = await listen(http.createServer((_q, r) => { r.setHeader('content-type', 'application/json'); r.end('<html>oops</html>'); }));
    const dead = await freePort();
    const r = await runAsync('node', [CLI, 'diff', file, '--primary', s.primary, '--secondary', `http://127.0.0.1:${dead}`, '--candidate', `http://127.0.0.1:${liar}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/three-way: 12 requests/);
    expect(r.stdout).toMatch(/note: 12 × secondary: no answer/);
    expect(r.stdout).toMatch(/note: 12 × candidate: not JSON although declared so/);
    // A report path that cannot be written is said before the run, not thrown after it.
    const nowhere = join(dir, 'no/report.html');
    const unwritable = await runAsync('node', [CLI, 'diff', file, '--primary', s.primary, '--secondary', s.secondary, '--candidate', s.candidate, '--report-html', nowhere]);
    expect(unwritable.status).toBe(2);
    expect(unwritable.stderr).toBe(`flowtap: --report-html ${nowhere}: ${join(dir, 'no')}: no such directory\n`);
    expect(unwritable.stdout).toBe('');
  });
});

/** One request and its raw answer over a fresh connection. */
async function raw(port: number, request: string): Promise<Buffer> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  c.end(request);
  const parts: Buffer[] = [];
  c.on('data', (d: Buffer) => parts.push(d));
  await once(c, 'close');
  return Buffer.concat(parts);
}

describe('three-way diff live, as a proxy', () => {
  it('clients get the primary\'s bytes unchanged even when the candidate is down or slow', async () => {
    const primary = await listen(http.createServer((q, s) => { s.sendDate = false; s.setHeader('connection', 'close'); s.end(`primary says ${q.url}`); }));
    const secondary = await listen(http.createServer((q, s) => s.end(`primary says ${q.url}`)));
    const slow = await listen(http.createServer((q, s) => { setTimeout(() => s.end('late'), 3000); }));
    const dead = await freePort();
    for (const candidate of [`http://127.0.0.1:${dead}`, `http://127.0.0.1:${slow}`]) {
      const port = await freePort();
      const dir = tempDir();
      const child = spawn('node', [CLI, 'diff', '--listen', String(port), '--primary', `http://127.0.0.1:${primary}`, '--secondary', `http://127.0.0.1:${secondary}`,
        '--candidate', candidate, '--timeout', '500ms', '--report-json', join(dir, 'r.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
      child.stderr!.resume();
      const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      for (let i = 0; i < 50; i++) {
        const up = await new Promise<boolean>((r) => { const c = net.connect(port, '127.0.0.1', () => { c.destroy(); r(true); }); c.on('error', () => r(false)); });
        if (up) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const req = 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
      const direct = await raw(primary, req);
      const t0 = performance.now();
      const through = await raw(port, req);
      expect(performance.now() - t0).toBeLessThan(1000); // not waiting for the slow candidate
      expect(through.equals(direct)).toBe(true);
      await new Promise((r) => setTimeout(r, 700));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toMatch(/three-way: 1 requests/);
      const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as DiffReport;
      expect(report.problems).toEqual({ 'candidate: no answer': 1 });
    }
  });
});

describe('two-way diff on a recording made by replay', () => {
  it('finds a changed status and a changed JSON field; --ignore and repeated identical requests take out the noise', async () => {
    const old = await listen(ordersService('old'));
    const changed = await listen(http.createServer((q, s) => {
      if (q.url === '/health') { s.statusCode = 503; s.end('{"ok":false}'); return; }
      s.setHeader('content-type', 'application/json');
      const m = /^\/orders\/(\d+)$/.exec(q.url!);
      s.end(JSON.stringify({ id: Number(m?.[1]), status: 'pending', items: [], servedAt: new Date().toISOString(), requestId: randomUUID(), tags: ['a'] }));
    }));
    const dir = tempDir();
    // Record the old version through the proxy (types 1 and 2), each request twice: identical requests.
    await recordThrough(join(dir, 'prod.ftr'), old, async (port) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (const p of ['/orders/1', '/orders/2', '/health', '/orders/1', '/orders/2', '/health']) {
        await new Promise<void>((resolve) => http.get({ host: '127.0.0.1', port, path: p, agent }, (r) => { r.resume(); r.on('end', () => resolve()); }));
      }
      agent.destroy();
    });
    const replayed = await runAsync('node', [CLI, 'replay', join(dir, 'prod.ftr'), '--target', `http://127.0.0.1:${changed}`, '--speed', 'max', '--out', join(dir, 'out.ftr')]);
    expect(replayed.status, replayed.stderr).toBe(0);
    const r = await runAsync('node', [CLI, 'diff', join(dir, 'out.ftr'), '--ignore', 'json:$.tags', '--report-json', join(dir, 'r.json')]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as DiffReport;
    expect(report.mode).toBe('two-way');
    const real = realFields(report);
    expect(real).toContain('GET /health status value changed');
    expect(real).toContain('GET /orders/{id} body.status value changed');
    expect(real).toContain('GET /orders/{id} body.items array length');
    // Noise: timestamps and ids differed between identical requests; tags were ignored by rule.
    expect(real.filter((f) => /servedAt|requestId|tags/.test(f))).toEqual([]);
  });
});

describe('three-way diff over gRPC (grpc-js, with a .proto) and Dubbo (a provider on flowtap\'s encoder)', () => {
  it('gRPC: the changed field of one method is reported by name, the noisy fields are not', async () => {
    const grpc = await import('@grpc/grpc-js');
    const protobuf = (await import('protobufjs')).default;
    const protoDir = new URL('./grpc/catalog/', import.meta.url).pathname;
    const root = protobuf.loadSync(join(protoDir, 'catalog.proto'));
    const Req = root.lookupType('shop.ItemRequest');
    const Item = root.lookupType('shop.Item');
    const method = { path: '/shop.Catalog/GetItem', requestStream: false, responseStream: false,
      requestSerialize: (m: object) => Buffer.from(Req.encode(m).finish()), requestDeserialize: (b: Buffer) => Req.decode(b) as unknown as { id: string },
      responseSerialize: (m: object) => Buffer.from(Item.encode(m).finish()), responseDeserialize: (b: Buffer) => Item.decode(b) };
    const serve = async (version: 'old' | 'new') => {
      const server = new grpc.Server();
      server.addService({ GetItem: method } as never, {
        GetItem: (call: { request: { id: string } }, cb: (e: null, v: object) => void) => cb(null, {
          id: call.request.id, name: version === 'new' && call.request.id.startsWith('b') ? 'renamed' : `item ${call.request.id}`, price: 4.5,
          servedAt: String(process.hrtime.bigint()), trace: randomUUID() // (protobufjs takes camelCase; the schema says served_at), tags: ['x', 'y', 'z'].sort(() => Math.random() - 0.5),
        }),
      });
      const port = await new Promise<number>((r, j) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p))));
      closers.push(() => { server.forceShutdown(); });
      return `http://127.0.0.1:${port}`;
    };
    const [primary, secondary, candidate] = [await serve('old'), await serve('old'), await serve('new')];
    const dir = tempDir();
    const lines = [FTR_HEADER + '\n'];
    for (let i = 0; i < 40; i++) {
      const msg = Buffer.from(Req.encode({ id: `${i % 2 ? 'b' : 'a'}${i}` }).finish());
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(msg.length, 1);
      lines.push(encodeFtr({ type: 1, id: id(i), timestamp: T0 + BigInt(i), latency: -1n, protocol: 'grpc', http2: {
        headers: [[':method', 'POST'], [':scheme', 'http'], [':path', '/shop.Catalog/GetItem'], [':authority', 'catalog'], ['content-type', 'application/grpc'], ['te', 'trailers']],
        trailers: null, body: Buffer.concat([prefix, msg]), bodyCut: false } }));
    }
    writeFileSync(join(dir, 'grpc.ftr'), lines.join(''));
    const r = await runAsync('node', [CLI, 'diff', join(dir, 'grpc.ftr'), '--primary', primary, '--secondary', secondary, '--candidate', candidate,
      '--proto-dir', protoDir, '--allow-side-effects', '--report-json', join(dir, 'r.json')]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as DiffReport;
    expect(realFields(report)).toEqual(['/shop.Catalog/GetItem body.name value changed']);
    const ep = report.endpoints[0];
    expect(ep).toMatchObject({ requests: 40, withDifferences: 20 });
    expect(ep.fields.filter((f) => !f.real).map((f) => f.path)).toEqual(expect.arrayContaining(['body.served_at', 'body.trace']));
    // Held back without --allow-side-effects: a gRPC call may change state.
    const held = await runAsync('node', [CLI, 'diff', join(dir, 'grpc.ftr'), '--primary', primary, '--secondary', secondary, '--candidate', candidate]);
    expect(held.stdout).toMatch(/three-way: 0 requests/);
  });

  it('Dubbo: the status byte and values compared (hessian.js); the regression in one method is reported, noise is not', async () => {
    const { DubboDecoder, encodeResponse } = await import('../src/index.js');
    const { encodeRequest } = await import('../src/index.js');
    const provider = async (version: 'old' | 'new') => {
      const server = net.createServer((sock) => {
        const d = new DubboDecoder({ onMessage: (m) => {
          if (m.type !== 'request' || m.event) return;
          const method = m.request?.method;
          const requestId = BigInt(m.requestId);
          if (method === 'getUser') {
            sock.write(encodeResponse({ requestId, value: new Map<string, unknown>([['name', 'Ada'], ['level', version === 'new' ? 'gold' : 'silver'], ['servedAt', String(process.hrtime.bigint())]]) }));
          } else {
            sock.write(encodeResponse({ requestId, value: new Map<string, unknown>([['ok', true], ['nonce', randomUUID()]]) }));
          }
        } });
        sock.on('data', (b: Buffer) => d.write(b));
        sock.on('error', () => {});
      });
      return `http://127.0.0.1:${await listen(server)}`;
    };
    const [primary, secondary, candidate] = [await provider('old'), await provider('old'), await provider('new')];
    const dir = tempDir();
    const lines = [FTR_HEADER + '\n'];
    for (let i = 0; i < 30; i++) {
      const raw = encodeRequest({ requestId: BigInt(i + 1), service: 'demo.UserService', method: i % 2 ? 'getUser' : 'ping', parameterTypes: 'J', args: [{ $class: 'long', $: i }] });
      lines.push(encodeFtr({ type: 1, id: id(i), timestamp: T0 + BigInt(i), latency: -1n, protocol: 'dubbo', raw }));
    }
    writeFileSync(join(dir, 'dubbo.ftr'), lines.join(''));
    const { report } = await diffRecordings([join(dir, 'dubbo.ftr')], { primary, secondary, candidate, allowSideEffects: true });
    expect(realFields(report)).toEqual(['demo.UserService/getUser body.level value changed']);
    expect(report.endpoints.map((e) => [e.endpoint, e.requests, e.withDifferences])).toEqual([['demo.UserService/getUser', 15, 15], ['demo.UserService/ping', 15, 0]]);
    expect(report.endpoints[0].examples[0].primary.status).toBe('dubbo 20 value');
  });
});

const chromium = '/usr/bin/chromium';
describe.skipIf(!existsSync(chromium))(`the HTML report in a real browser${existsSync(chromium) ? '' : ' (skipped: no /usr/bin/chromium: apt-get install chromium)'}`, () => {
  it('renders the regression row from a self-contained page (no network), and a screenshot is kept', async () => {
    const s = await sides();
    const dir = tempDir();
    const html = join(dir, 'report.html');
    const r = await runAsync('node', [CLI, 'diff', recording(dir, 30), '--primary', s.primary, '--secondary', s.secondary, '--candidate', s.candidate, '--report-html', html]);
    expect(r.status, r.stderr).toBe(0);
    const page = readFileSync(html, 'utf8');
    expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)=/); // nothing to fetch
    const { chromium: browserType } = await import('playwright-core');
    const browser = await browserType.launch({ executablePath: chromium, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
    closers.push(() => browser.close());
    const ctx = await browser.newContext({ offline: true });
    const tab = await ctx.newPage();
    await tab.goto(`file://${html}`);
    const row = tab.locator('section.differs tr.real').first();
    expect(await row.innerText()).toMatch(/^body\.items\[\]\.price\s+value changed ×20\s+10\s+0\s+real$/);
    expect(await tab.locator('section.differs h2').allInnerTexts()).toEqual(['GET /orders/{id}']);
    await tab.locator('#filter').check(); // the page's own script: hide endpoints without real differences
    expect(await tab.locator('section.endpoint:visible').count()).toBe(1);
    const artifacts = new URL('./artifacts/', import.meta.url).pathname;
    mkdirSync(artifacts, { recursive: true });
    await tab.locator('#filter').uncheck();
    await tab.screenshot({ path: join(artifacts, 'diff-report.png'), fullPage: true });
    expect(statSync(join(artifacts, 'diff-report.png')).size).toBeGreaterThan(10_000);
  });
});
