/**
 * Sinks opened by the tap proxy's decoding thread (`sinks`, what `flowtap dump --out jsonl:FILE` uses by
 * default): the records written there are the ones `flowtap read` finds in a capture of the same traffic,
 * masked in the thread, counted, rotated as the sink says; the forwarding thread never sees them.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TapProxy, type ExchangeRecord, type Http1Record } from '../src/index.js';
import { captureSkipReason, cleanups, run, runAsync, startCapture, tempDir } from './tools.js';

const { closers, listen } = cleanups(afterEach);
const capSkip = captureSkipReason(['curl']);
if (capSkip) console.warn(`thread sink capture test skipped: ${capSkip}`);

const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

describe.skipIf(capSkip !== null)('sinks in the decoding thread', () => {
  it('write the records flowtap read finds in a capture of the same traffic, masked in the thread; a rotated second sink gets them too', async () => {
    const upstream = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
        res.end(req.url === '/chunked' ? 'x'.repeat(9000) : `{"token":"t0k3n","path":"${req.url}"}`);
      });
    });
    const dir = tempDir();
    const file = join(dir, 'records.jsonl');
    const rotated = join(dir, 'rotated.jsonl');
    const proxy = new TapProxy({
      listen: { port: 0 }, upstream: { host: '127.0.0.1', port: await listen(upstream) }, decodeIn: 'worker', mask: true,
      // The first holds its records until the end (a long flush interval): closing the proxy must write them.
      sinks: [{ kind: 'jsonl', options: { path: file, flushInterval: 60_000 } }, { kind: 'jsonl', options: { path: rotated, rotateBytes: 4000, keep: 20, batchSize: 3 } }],
    });
    let events = 0;
    proxy.on('record', () => { events++; });
    proxy.on('lines', () => { events++; });
    const { port } = await proxy.listen();
    closers.push(() => proxy.close());
    const pcap = join(dir, 'legs.pcap');
    const cap = await startCapture('lo', pcap, `tcp port ${port}`);
    for (const path of ['/a?x=1', '/missing', '/chunked']) {
      const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-H', 'authorization: Bearer secret', `http://127.0.0.1:${port}${path}`]);
      expect(r.status).toBe(0);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => http.request({ port, host: '127.0.0.1', path: `/k${i}`, method: 'POST', agent,
        headers: { 'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', resolve); }).end('{"password":"hunter2"}'));
    }
    agent.destroy();
    await new Promise((r) => setTimeout(r, 200));
    await cap.stop();
    for (let i = 0; i < 100 && proxy.stats.records < 23; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proxy.sinkStats[0]).toMatchObject({ accepted: 23, queued: 23, written: 0 });
    await proxy.close(); // the thread's sinks write what they hold before it ends

    const written = linesOf(file).map((l) => JSON.parse(l) as Http1Record);
    expect(written).toHaveLength(23);
    expect(proxy.stats.records).toBe(23);
    expect(proxy.sinkStats.map((s) => [s.accepted, s.written, s.dropped, s.queued])).toEqual([[23, 23, 0, 0], [23, 23, 0, 0]]);
    expect(events).toBe(0);
    // Masked in the thread, before writing.
    expect(written.filter((r) => r.request?.headers?.authorization === '***')).toHaveLength(3);
    expect(written.filter((r) => r.request?.body === '{"password":"***"}')).toHaveLength(20);
    expect(written.filter((r) => r.response?.body === '{"token":"***","path":"/k0"}')).toHaveLength(1);

    // The same exchanges as a capture of the client leg, read by the CLI (then masked as the proxy does).
    const { masker } = await import('../src/pipeline/stages.js');
    const m = masker();
    const out = run('node', [new URL('../dist/cli.js', import.meta.url).pathname, 'read', pcap]);
    expect(out.status, out.stderr).toBe(0);
    const masked = out.stdout.trim().split('\n').map((l) => m(JSON.parse(l)) as ExchangeRecord);
    const comparable = (r: ExchangeRecord) => {
      const { connectionId, startTime, endTime, duration, server, ...rest } = r;
      void connectionId; void startTime; void endTime; void duration; void server;
      return JSON.stringify(rest);
    };
    expect(written.map(comparable).sort()).toEqual(masked.map(comparable).sort());

    // The rotated sink (a piece per batch of 3): the same records, over several files.
    const parts = [rotated, ...Array.from({ length: 20 }, (_, i) => `${rotated}.${i + 1}`)].filter(existsSync);
    expect(parts.length).toBeGreaterThan(2);
    const all = parts.flatMap(linesOf);
    expect(all.sort()).toEqual(linesOf(file).sort());
  }, 60_000);

  it('a burst of records (3,000 pipelined requests in one write) waits as bytes and reaches a small sink whole', async () => {
    const upstream = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
    const file = join(tempDir(), 'burst.jsonl');
    // A queue of 1,000: without the thread pacing itself, the burst's records would overflow it at once.
    const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: await listen(upstream) }, decodeIn: 'worker',
      sinks: [{ kind: 'jsonl', options: { path: file, maxQueue: 1000 } }] });
    const { port } = await proxy.listen();
    closers.push(() => proxy.close());
    const n = 3000;
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from('GET /b HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n))));
      let got = '';
      s.on('data', (d) => { got += d; if (got.split('HTTP/1.1 200').length - 1 === n) { s.end(); resolve(); } });
      s.on('error', reject);
    });
    await proxy.close();
    expect(proxy.sinkStats[0]).toMatchObject({ accepted: n, written: n, dropped: 0 });
    expect(linesOf(file)).toHaveLength(n);
    expect(proxy.stats.decodeShed).toBe(0);
  }, 30_000);

  it('need the decoding thread, and say so', () => {
    expect(() => new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: 1 }, sinks: [{ kind: 'jsonl', options: { path: '/dev/null' } }] }))
      .toThrow("sinks are opened in the decoding thread: they need decodeIn 'worker'");
  });
});
