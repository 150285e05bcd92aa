/**
 * Plain HTTP/2 from real peers — Node's http2 client and server, curl --http2-prior-knowledge, nghttp and
 * h2load — captured by tcpdump, read by `flowtap read`, checked against tshark's HTTP/2 dissection and
 * against what each client saw. (gRPC on top of this is the next step of issue 4.)
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Http2Record } from '../src/index.js';
import { captureSkipReason, run, runAsync, startCapture, tempDir } from './tools.js';

const skip = captureSkipReason(['curl', 'nghttp', 'h2load']);
if (skip) console.warn(`HTTP/2 real-peer tests skipped: ${skip}`);

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

describe.skipIf(skip !== null)('HTTP/2 real peers vs tshark', () => {
  const dir = tempDir();
  const pcap = join(dir, 'h2.pcap');
  let port = 0;
  let records: Http2Record[] = [];
  const seen: { path: string; status: number }[] = [];

  beforeAll(async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      let n = 0;
      stream.on('data', (d: Buffer) => { n += d.length; });
      stream.on('error', () => {});
      stream.on('end', () => {
        const path = String(headers[':path']);
        if (path.startsWith('/slow')) { setTimeout(() => { if (!stream.destroyed) { stream.respond({ ':status': 200 }); stream.end('late'); } }, 300); return; }
        if (path === '/missing') { stream.respond({ ':status': 404 }); stream.end('no'); return; }
        if (path === '/fail') { stream.respond({ ':status': 503 }); stream.end(); return; }
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-received': String(n) });
        stream.end(path === '/big' ? 'z'.repeat(300_000) : `ok ${n}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    const cap = await startCapture('lo', pcap, `tcp port ${port}`);

    // Node's client: concurrent streams on one connection, a large upload and download, errors, a cancel.
    const c = http2.connect(`http://127.0.0.1:${port}`);
    const go = (path: string, method = 'GET', body?: Buffer) => new Promise<void>((resolve) => {
      const req = c.request({ ':path': path, ':method': method, 'x-request-id': `node${path}` });
      req.on('response', (h) => seen.push({ path: path.split('?')[0], status: Number(h[':status']) }));
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', () => resolve());
      req.end(body);
    });
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => go(`/item/${i}?v=1`)),
      go('/missing'), go('/fail'), go('/big'), go('/upload', 'POST', Buffer.alloc(200_000, 0x61)),
    ]);
    await new Promise<void>((resolve) => {
      const req = c.request({ ':path': '/slow-cancelled' });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
      setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 50);
    });
    c.close();
    // Other clients: curl, nghttp, h2load.
    const curl = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--http2-prior-knowledge', `http://127.0.0.1:${port}/curl?x=1`]);
    seen.push({ path: '/curl', status: Number(curl.stdout) });
    const ng = await runAsync('nghttp', ['-n', `http://127.0.0.1:${port}/nghttp`]);
    expect(ng.status).toBe(0);
    seen.push({ path: '/nghttp', status: 200 });
    const h2l = await runAsync('h2load', ['-n', '20', '-c', '2', '-m', '5', `http://127.0.0.1:${port}/h2load`]);
    expect(h2l.stdout).toMatch(/20 succeeded/);
    for (let i = 0; i < 20; i++) seen.push({ path: '/h2load', status: 200 });
    await cap.stop();
    server.close();
    const out = run('node', [CLI, 'read', pcap]);
    expect(out.status, out.stderr).toBe(0);
    records = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }, 60_000);

  it('one record per stream, with the status each client saw', () => {
    const answered = records.filter((r) => r.code !== null).map((r) => ({ path: r.endpoint, status: r.code! }));
    const byKey = (x: { path: string; status: number }) => `${x.path} ${x.status}`;
    expect(answered.map(byKey).sort()).toEqual(seen.map(byKey).sort());
    expect(records.every((r) => r.protocol === 'http2' && typeof r.streamId === 'number')).toBe(true);
    const cancelled = records.find((r) => r.endpoint === '/slow-cancelled')!;
    expect(cancelled).toMatchObject({ status: 'client_error', code: null, error: 'stream reset by the client (CANCEL)' });
  });

  it('method, path and :status agree with tshark for every stream', () => {
    const t = run('tshark', ['-r', pcap, '-d', `tcp.port==${port},http2`, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=;',
      '-e', 'http2.headers.method', '-e', 'http2.headers.path', '-e', 'http2.headers.status']);
    expect(t.status, t.stderr).toBe(0);
    const methods: string[] = [];
    const statuses: string[] = [];
    for (const line of t.stdout.trim().split('\n')) {
      const [m, p, s] = line.split('|').map((f) => (f ? f.split(';') : []));
      m.forEach((x, i) => methods.push(`${x} ${p[i]}`));
      statuses.push(...s);
    }
    expect(records.map((r) => `${r.request.method} ${r.request.path}`).sort()).toEqual(methods.sort());
    expect(records.filter((r) => r.code !== null).map((r) => String(r.code)).sort()).toEqual(statuses.sort());
  });

  it('bodies, sizes and headers come through', () => {
    const big = records.find((r) => r.endpoint === '/big')!;
    expect(big.response).toMatchObject({ bodySize: 300_000, headers: { 'content-type': 'text/plain' } });
    expect(big.responseSize).toBeGreaterThan(300_000);
    const up = records.find((r) => r.endpoint === '/upload')!;
    expect(up.request).toMatchObject({ method: 'POST', bodySize: 200_000 });
    expect(up.response!.headers['x-received']).toBe('200000');
    expect(records.find((r) => r.endpoint === '/item/3')!.xRequestId).toBe('node/item/3?v=1');
    expect(records.filter((r) => r.hpackIncomplete)).toEqual([]);
  });
});
