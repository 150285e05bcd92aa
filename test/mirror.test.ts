/** Mirroring: shadows that fail, hang or are down never alter or slow the primary; every copy is accounted for. */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TapProxy } from '../src/index.js';
import { Mirror } from '../src/replay/index.js';
import { spawn } from 'node:child_process';
import { cleanups, freePort } from './tools.js';

const { closers, listen } = cleanups(afterEach);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

/** Raw request → raw response over one keep-alive socket, and how long each took. */
async function rawSession(port: number, requests: Buffer[]): Promise<{ answers: Buffer[]; ms: number[] }> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const answers: Buffer[] = [];
  const ms: number[] = [];
  let buf = Buffer.alloc(0);
  s.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); });
  for (const q of requests) {
    const t0 = performance.now();
    buf = Buffer.alloc(0);
    s.write(q);
    // Each answer is "HTTP/1.1 200 OK ... Content-Length: N\r\n\r\n" + N bytes.
    for (;;) {
      const head = buf.indexOf('\r\n\r\n');
      const len = head < 0 ? -1 : Number(/content-length: (\d+)/i.exec(buf.subarray(0, head).toString())?.[1]);
      if (head >= 0 && buf.length >= head + 4 + len) break;
      await once(s, 'data');
    }
    answers.push(Buffer.from(buf));
    ms.push(performance.now() - t0);
  }
  s.end();
  return { answers, ms };
}

describe('mirror', () => {
  it('a shadow that answers 5xx, one that hangs and one that is down: the primary is byte-identical and fast; the counts add up', async () => {
    const primary = http.createServer((q, s) => {
      s.sendDate = false; // deterministic bytes, so "byte-identical" can be checked
      let b = '';
      q.on('data', (d) => { b += d; }).on('end', () => { s.setHeader('content-type', 'text/plain'); s.end(`primary ${q.method} ${q.url} ${b.length}`); });
    });
    const primaryPort = await listen(primary);
    const seen5xx: string[] = [];
    const failing = await listen(http.createServer((q, s) => { seen5xx.push(`${q.method} ${q.url}`); q.resume(); s.statusCode = 503; s.end('down for maintenance'); }));
    const hanging = await listen(net.createServer((c) => { c.on('data', () => {}); closers.push(() => { c.destroy(); }); }));
    const down = await freePort();

    const mirror = new Mirror({ targets: [`http://127.0.0.1:${failing}`, `http://127.0.0.1:${hanging}`, `http://127.0.0.1:${down}`], queue: 20, workers: 2, timeout: 300 });
    const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: primaryPort }, mirror });
    let records = 0;
    proxy.on('record', () => { records++; });
    const { port } = await proxy.listen();
    closers.push(() => mirror.close(), () => proxy.close());

    const N = 200;
    const requests = Array.from({ length: N }, (_, i) => Buffer.from(i % 4 === 0
      ? `POST /orders/${i} HTTP/1.1\r\nHost: prod\r\nContent-Length: 5\r\n\r\nhello`
      : `GET /items/${i}?x=${i} HTTP/1.1\r\nHost: prod\r\n\r\n`));
    const direct = await rawSession(primaryPort, requests);
    const through = await rawSession(port, requests);
    expect(through.answers.map((b) => b.toString())).toEqual(direct.answers.map((b) => b.toString()));
    expect(through.answers.every((b, i) => b.equals(direct.answers[i]))).toBe(true);
    const p99 = [...through.ms].sort((a, b) => a - b)[Math.floor(N * 0.99)];
    expect(p99).toBeLessThan(100); // a hanging shadow never holds a primary answer

    // Let every copy finish (answer, fail or time out).
    const settle = Date.now() + 5000;
    while (mirror.stats.some((s) => s.queued > 0) && Date.now() < settle) await new Promise((r) => setTimeout(r, 50));
    expect(records).toBe(N);
    const [fiveXx, hang, dead] = mirror.stats;
    for (const s of mirror.stats) {
      expect(s.mirrored + s.dropped + s.skipped, s.target).toBe(N); // every request accounted for
      expect(s.answered + s.failed, s.target).toBe(s.mirrored); // and every copy's outcome
    }
    expect(fiveXx.answered).toBe(N);
    expect(seen5xx).toHaveLength(N);
    expect(seen5xx.filter((x) => x.startsWith('POST'))).toHaveLength(N / 4); // side effects are mirrored
    expect(hang.answered).toBe(0);
    expect(hang.dropped).toBeGreaterThan(0); // its queue filled: new copies dropped, not buffered
    expect(dead.answered).toBe(0);
    expect(dead.failed).toBe(dead.mirrored);
  });

  it('copies of requests that close their connection (Connection: close, HTTP/1.0) each get a connection of their own: none is lost', async () => {
    const primary = await listen(http.createServer((q, s) => { q.resume(); s.end('primary'); }));
    const seen: string[] = [];
    // The shadow honours close like any server: it answers, then ends the connection.
    const shadow = await listen(http.createServer((q, s) => { seen.push(q.url!); q.resume(); s.end('shadow'); }));
    const mirror = new Mirror({ targets: [`http://127.0.0.1:${shadow}`], workers: 2 });
    const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: primary }, mirror });
    const { port } = await proxy.listen();
    closers.push(() => mirror.close(), () => proxy.close());
    const one = (i: number) => new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.end(i % 2
        ? `GET /close${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`
        : `GET /ten${i} HTTP/1.0\r\n\r\n`));
      c.on('error', reject).resume().on('end', () => resolve());
    });
    await Promise.all(Array.from({ length: 30 }, (_, i) => one(i)));
    for (let i = 0; i < 100 && mirror.stats[0].answered + mirror.stats[0].failed < 30; i++) await new Promise((r) => setTimeout(r, 20));
    expect(mirror.stats[0]).toMatchObject({ mirrored: 30, answered: 30, failed: 0 });
    expect(seen.sort()).toEqual(Array.from({ length: 30 }, (_, i) => (i % 2 ? `/close${i}` : `/ten${i}`)).sort());
  });

  it('flowtap dump --mirror: the copy reaches the shadow (filters apply) and the counts are printed at exit', async () => {
    const primary = await listen(http.createServer((q, s) => s.end(`primary ${q.url}`)));
    const shadowSeen: string[] = [];
    const shadow = await listen(http.createServer((q, s) => { shadowSeen.push(`${q.url} ${q.headers['x-mirrored']}`); s.end('shadow'); }));
    const port = await freePort();
    const child = spawn('node', [CLI, 'dump', '--listen', String(port), '--upstream', `127.0.0.1:${primary}`, '--out', 'jsonl:/dev/null',
      '--mirror', `http://127.0.0.1:${shadow}`, '--disallow-url', '^/private', '--set-header', 'X-Mirrored: 1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    for (let i = 0; i < 50; i++) {
      try { await new Promise<void>((res, rej) => { const c = net.connect(port, '127.0.0.1', () => { c.end(); res(); }); c.on('error', rej); }); break; } catch { await new Promise((r) => setTimeout(r, 50)); }
    }
    const get = (path: string) => new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path }, (r) => { let b = ''; r.on('data', (d) => { b += d; }).on('end', () => resolve(b)); }).on('error', reject);
    });
    expect(await get('/public/1')).toBe('primary /public/1');
    expect(await get('/private/2')).toBe('primary /private/2');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(0);
    expect(shadowSeen).toEqual(['/public/1 1']);
    expect(stderr).toMatch(new RegExp(`mirror http://127\\.0\\.0\\.1:${shadow}: 1 mirrored, 1 answered, 0 failed, 0 dropped \\(queue full or over --rate\\), 1 not mirrored \\(filters\\)`));
  });
});
