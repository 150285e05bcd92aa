/** rest2dubbo against the Java provider (Caucho Hessian) in test/java: books, exceptions, timeouts, load, a provider restart. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DubboRecord, Http1Record } from '../src/index.js';
import { Rest2Dubbo } from '../src/gateway/index.js';
import { freePort, have, tempDir } from './tools.js';

const HESSIAN_JAR = '/usr/share/java/hessian.jar';
const skip = !have('javac') || !have('java') ? 'no JDK' : !existsSync(HESSIAN_JAR) ? 'no Caucho Hessian (libhessian-java)' : null;
const OPENS = ['java.lang', 'java.util', 'java.math', 'java.util.concurrent'].flatMap((p) => ['--add-opens', `java.base/${p}=ALL-UNNAMED`]);
const SERVICE = 'io.flomesh.demo.api.BookWarehouseService';

/** The Book the Java provider builds for an id (test/java/DubboPeer.java), as JSON. */
function javaBook(id: number) {
  return {
    id, isbn: `978-${1000000000 + id}`, author: id % 3 === 0 ? 'Łukasz Żółć' : id % 3 === 1 ? '松本 行弘' : 'Ada Lovelace',
    name: `Book #${id}`, value: (id * 7) % 100, date: new Date(1600000000000 + id * 86400000).toISOString(),
  };
}

describe.skipIf(skip !== null)(`rest2dubbo against the Java provider${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const dir = tempDir();
  let provider: ChildProcess | null = null;
  let dubboPort = 0;
  let gateway: Rest2Dubbo;
  let server: http.Server;
  let port = 0;
  const records: [Http1Record, DubboRecord | null][] = [];

  const startProvider = async () => {
    const p = spawn('java', [...OPENS, '-cp', `${HESSIAN_JAR}:${dir}`, 'DubboPeer', 'provider', String(dubboPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', (d) => { dubboPort = Number(/listening (\d+)/.exec(String(d))![1]); resolve(); });
      p.once('exit', (code) => reject(new Error(`provider exited ${code}`)));
    });
    provider = p;
  };

  beforeAll(async () => {
    const c = spawnSync('javac', ['-cp', HESSIAN_JAR, '-d', dir, new URL('./java/DubboPeer.java', import.meta.url).pathname], { encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    dubboPort = await freePort();
    await startProvider();
    gateway = new Rest2Dubbo({
      upstream: { host: '127.0.0.1', port: dubboPort, connections: 4, timeout: 1000, reconnect: { min: 50, max: 200 } },
      routes: [
        { method: 'POST', path: '/v1/getBook', service: SERVICE, version: 'v1', call: 'getBook', parameterTypes: ['java.lang.String'], args: [{ from: 'body', field: 'id' }] },
        { method: 'GET', path: '/v1/books/{id}', service: SERVICE, version: 'v1', call: 'getBook', parameterTypes: ['java.lang.String'], args: [{ from: 'path', name: 'id' }], timeout: 300 },
      ],
    });
    gateway.on('record', (h, d) => records.push([h, d]));
    server = http.createServer(gateway.handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
    await gateway.client.ready();
    for (let i = 0; i < 50 && gateway.client.connected < 4; i++) await new Promise((r) => setTimeout(r, 20));
  }, 60_000);

  afterAll(() => {
    server?.close();
    gateway?.close();
    provider?.kill();
  });

  const post = async (body: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}/v1/getBook`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };

  it("Pipy's request: POST /v1/getBook {\"id\": 1} gives the Java side's Book, field for field (non-ASCII authors, the Date as ISO-8601)", async () => {
    for (const id of [1, 2, 3]) {
      const r = await post(JSON.stringify({ id }));
      expect(r.status).toBe(200);
      expect(r.type).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual(javaBook(id));
    }
    const g = await fetch(`http://127.0.0.1:${port}/v1/books/42`);
    expect(await g.json()).toEqual(javaBook(42));
  });

  it('a Java exception is 500 with its class and message; null is 204; bad JSON, a wrong method, an unknown path: 400, 405, 404 with a one-line reason', async () => {
    expect(await post('{"id": "abc"}')).toEqual({ status: 500, type: 'application/json', body: '{"exception":"java.lang.IllegalArgumentException","message":"no book with id abc"}' });
    expect((await post('{"id": "none"}')).status).toBe(204);
    const bad = await post('{"id": ');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/^the body is not JSON: /);
    const missing = await post('{}');
    expect(missing).toMatchObject({ status: 400, body: '{"error":"body field \\"id\\" is missing"}' });
    const wrong = await fetch(`http://127.0.0.1:${port}/v1/getBook`);
    expect([wrong.status, wrong.headers.get('allow'), await wrong.text()]).toEqual([405, 'POST', '{"error":"GET is not allowed on /v1/getBook (use POST)"}']);
    const none = await fetch(`http://127.0.0.1:${port}/v2/x`, { method: 'POST' });
    expect([none.status, await none.text()]).toEqual([404, '{"error":"no route for /v2/x"}']);
  });

  it('a slow call past its timeout is 504, and its late answer is discarded', async () => {
    const late = gateway.client.stats.lateAnswers;
    const t0 = performance.now();
    const r = await fetch(`http://127.0.0.1:${port}/v1/books/slow:800`);
    expect(r.status).toBe(504);
    expect(performance.now() - t0).toBeLessThan(700);
    expect(JSON.parse(await r.text()).error).toMatch(/no answer from io\.flomesh\.demo\.api\.BookWarehouseService\.getBook within 300 ms/);
    await new Promise((res) => setTimeout(res, 700));
    expect(gateway.client.stats.lateAnswers).toBe(late + 1);
    // The connection is still good: the next call is answered.
    expect((await post('{"id": 5}')).status).toBe(200);
  });

  it('200 concurrent requests for different books over 4 Dubbo connections, answered out of order: everyone gets their own book', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    const answers = await Promise.all(ids.map((id) => post(JSON.stringify({ id: String(id) }))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.map((a) => JSON.parse(a.body).id)).toEqual(ids);
    expect(answers.every((a, i) => a.body === JSON.stringify(javaBook(ids[i])))).toBe(true);
    expect(gateway.client.connected).toBe(4);
    // The provider really answered out of order (how often depends on its threads' scheduling: 19 of 200 in
    // one CI-like run, more usually), so every answer above was matched by id, not by order.
    expect(gateway.client.stats.outOfOrder).toBeGreaterThan(0);
  });

  it('each HTTP exchange and its Dubbo call are records sharing the trace id, which the call carries as an attachment', async () => {
    records.length = 0;
    await post('{"id": 7}', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    const [h, d] = records.at(-1)!;
    expect(h).toMatchObject({ protocol: 'http1', code: 200, endpoint: '/v1/getBook', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(d).toMatchObject({ protocol: 'dubbo', code: 20, status: 'ok', endpoint: `${SERVICE}/getBook`, traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      request: { serviceVersion: 'v1', parameterTypes: 'Ljava/lang/String;', attachments: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } } });
  });

  it('the provider is killed: calls fail fast with 503; restarted on the same port, later calls succeed', async () => {
    provider!.kill('SIGKILL');
    await new Promise((r) => provider!.once('exit', r));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const down = await post('{"id": 1}');
    expect([502, 503]).toContain(down.status);
    expect(performance.now() - t0).toBeLessThan(200); // fast: no waiting for a timeout
    await startProvider();
    let ok = 0;
    for (let i = 0; i < 40 && ok === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if ((await post('{"id": 2}')).status === 200) ok++;
    }
    expect(ok).toBe(1);
    expect(gateway.client.stats.reconnects).toBeGreaterThan(0);
  }, 30_000);
});

describe('JSON ↔ Hessian and the demo', () => {
  it('longs beyond 2^53 travel exactly as strings; dates, ints, lists and POJOs by declared type; a wrong value is one sentence', async () => {
    const { toJava, toJson, descriptor } = await import('../src/gateway/index.js');
    const { encodeRequest, DubboDecoder } = await import('../src/index.js');
    const args = [toJava('9007199254740993', 'long'), toJava('2026-12-01T10:00:00Z', 'java.util.Date'), toJava(7, 'int'), toJava(['a', 'b'], 'java.lang.String[]'),
      toJava({ id: '9007199254740995', name: 'n' }, 'com.example.Book')];
    expect(descriptor(['long', 'java.util.Date', 'int', 'java.lang.String[]', 'com.example.Book'])).toBe('JLjava/util/Date;I[Ljava/lang/String;Lcom/example/Book;');
    const frame = encodeRequest({ requestId: 1n, service: 's', method: 'm', parameterTypes: descriptor(['long', 'java.util.Date', 'int', 'java.lang.String[]', 'com.example.Book']), args });
    let decoded: unknown[] = [];
    new DubboDecoder({ decodeValues: true, onMessage: (m) => { decoded = m.values!.args!; } }).write(frame);
    expect(toJson(decoded)).toEqual(['9007199254740993', '2026-12-01T10:00:00.000Z', 7, ['a', 'b'], { id: '9007199254740995', name: 'n' }]);
    expect(() => toJava(2 ** 53 + 2, 'long', 'body field "id"')).toThrow('body field "id": 9007199254740994 is beyond 2^53 as a JSON number: pass it as a string');
    expect(() => toJava('x', 'int')).toThrow('argument: a whole number was expected, not "x"');
    expect(() => toJava(2 ** 31, 'int')).toThrow('does not fit a Java int');
  });

  it('npm run demo:rest2dubbo: the calls and their statuses, on a provider of flowtap\'s encoder', async () => {
    const { runAsync } = await import('./tools.js');
    const r = await runAsync('node', ['--import', 'tsx', new URL('../examples/rest2dubbo/demo.ts', import.meta.url).pathname]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/POST \/v1\/getBook \{"id": 1\}\s+→ 200 \{"id":1,"isbn":"978-1000000001","author":"Ada Lovelace","name":"Book #1","value":7,"date":"2020-09-14T12:26:40\.000Z"\}/);
    expect(r.stdout).toMatch(/→ 500 \{"exception":"java\.lang\.IllegalArgumentException","message":"no book with id 999999"\}/);
    expect(r.stdout).toMatch(/GET \/v1\/getBook\s+→ 405 /);
    expect(r.stdout).toMatch(/POST \/v2\/nothing \{\}\s+→ 404 /);
    expect(r.stdout).toMatch(/9 exchange records/);
  });
});
