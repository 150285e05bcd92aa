/**
 * Plain HTTP/2 from real peers — Node's http2 client and server, curl --http2-prior-knowledge, nghttp and
 * h2load — captured by tcpdump, read by `flowtap read`, checked against tshark's HTTP/2 dissection and
 * against what each client saw. (gRPC on top of this is the next step of issue 4.)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Http1Record, Http2Record } from '../src/index.js';
import { captureSkipReason, freePort, have, run, runAsync, startCapture, tempDir } from './tools.js';

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

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

const skipH2c = skip ?? (have('nghttpx') ? null : 'nghttpx is not installed (apt-get install -y nghttp2-proxy)');
if (skipH2c && !skip) console.warn(`h2c upgrade tests skipped: ${skipH2c}`);

// h2c (HTTP/1.1 Upgrade → HTTP/2): nghttpx is the real server side (it accepts the upgrade on a cleartext
// frontend), a Node http server behind it; curl --http2 and nghttp -u are the clients.
describe.skipIf(skipH2c !== null)('h2c upgrade from real peers vs tshark', () => {
  const dir = tempDir();
  const pcap = join(dir, 'h2c.pcap');
  let port = 0;
  let records: (Http2Record | Http1Record)[] = [];
  const seen: string[] = [];

  beforeAll(async () => {
    const backend = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => { n += d.length; });
      req.on('end', () => {
        res.setHeader('x-received', String(n));
        if (req.url === '/missing') { res.statusCode = 404; res.end('no'); return; }
        // Under 32 KiB: curl gives up ("connection buffer size is too small to store data following HTTP
        // Upgrade response header", exit 16) when more than its 32 KiB buffer arrives with the 101 in one read.
        res.end(req.url === '/big' ? 'b'.repeat(30_000) : `ok ${req.url}`);
      });
    }).listen(0, '127.0.0.1');
    await once(backend, 'listening');
    port = await freePort();
    const proxy = spawn('nghttpx', ['--conf=/dev/null', `--frontend=127.0.0.1,${port};no-tls`,
      `--backend=127.0.0.1,${(backend.address() as AddressInfo).port}`, '--workers=1', '--no-ocsp'], { stdio: 'ignore' });
    try {
      await listening(port);
      const cap = await startCapture('lo', pcap, `tcp port ${port}`);
      const curl = async (path: string, extra: string[] = []) => {
        const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--http2', ...extra, `http://127.0.0.1:${port}${path}`]);
        seen.push(`${path} ${r.stdout}`);
      };
      await curl('/big');
      await curl('/form', ['-d', 'name=flowtap&x=1']);
      await curl('/missing');
      // nghttp -u: the upgrade request is stream 1, the next request a stream of its own on the same connection.
      const ng = await runAsync('nghttp', ['-u', '-n', `http://127.0.0.1:${port}/ng1`, `http://127.0.0.1:${port}/ng2`]);
      expect(ng.status, ng.stderr).toBe(0);
      seen.push('/ng1 2 200', '/ng2 2 200');
      await cap.stop();
    } finally {
      proxy.kill();
      backend.close();
    }
    const out = run('node', [CLI, 'read', pcap]);
    expect(out.status, out.stderr).toBe(0);
    records = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }, 60_000);

  it('the 101 is an http1 record and the upgraded request is HTTP/2 stream 1, answered as the client saw', () => {
    // Every client really switched: curl reports HTTP version 2.
    expect(seen.filter((s) => s.includes(' 2 ')).length, seen.join(', ')).toBe(seen.length);
    const h1 = records.filter((r) => r.protocol === 'http1') as Http1Record[];
    expect(h1.map((r) => `${r.endpoint} ${r.code}`).sort()).toEqual(['/big 101', '/form 101', '/missing 101', '/ng1 101']);
    const h2 = records.filter((r) => r.protocol === 'http2') as Http2Record[];
    expect(h2.map((r) => `${r.endpoint} 2 ${r.code}`).sort()).toEqual(seen.slice().sort());
    for (const r of h2.filter((x) => x.endpoint !== '/ng2')) {
      expect(r.streamId).toBe(1);
      const up = h1.find((x) => x.endpoint === r.endpoint && x.connectionId === r.connectionId)!;
      expect(r.startTime).toBe(up.startTime); // the same request, seen as both
      expect(r.request).toMatchObject({ method: up.request.method, scheme: 'http', authority: up.request.host });
      expect(r.request.headers).not.toHaveProperty('upgrade');
      expect(r.request.headers).not.toHaveProperty('http2-settings');
    }
    const form = h2.find((r) => r.endpoint === '/form')!;
    expect(form.request).toMatchObject({ method: 'POST', bodySize: 16, body: 'name=flowtap&x=1' });
    expect(form.response!.headers['x-received']).toBe('16');
    expect(h2.find((r) => r.endpoint === '/big')!.response!.bodySize).toBe(30_000);
    expect(h2.find((r) => r.endpoint === '/ng2')!.streamId).toBeGreaterThan(1);
    expect(records.filter((r) => r.error !== null || (r as Http2Record).hpackIncomplete)).toEqual([]);
  });

  it('agrees with tshark: the HTTP/1.1 upgrade requests and every HTTP/2 response status', () => {
    const t = run('tshark', ['-r', pcap, '-d', `tcp.port==${port},http`, '-Y', 'http.request || http.response || http2.type == 1',
      '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=;', '-e', 'http.request.uri', '-e', 'http.response.code', '-e', 'http2.headers.path', '-e', 'http2.headers.status']);
    expect(t.status, t.stderr).toBe(0);
    const uris: string[] = [];
    const codes: string[] = [];
    const h2paths: string[] = [];
    const h2statuses: string[] = [];
    for (const line of t.stdout.trim().split('\n')) {
      const [u, c, p, s] = line.split('|').map((f) => (f ? f.split(';') : []));
      uris.push(...u); codes.push(...c); h2paths.push(...p); h2statuses.push(...s);
    }
    const h1 = records.filter((r) => r.protocol === 'http1') as Http1Record[];
    expect(h1.map((r) => r.request.target).sort()).toEqual(uris.sort());
    expect(codes.every((c) => c === '101')).toBe(true);
    const h2 = records.filter((r) => r.protocol === 'http2') as Http2Record[];
    // tshark shows HTTP/2 HEADERS only: stream 1's request was HTTP/1.1, so its path is among the URIs above.
    expect(h2.filter((r) => r.streamId !== 1).map((r) => r.request.path).sort()).toEqual(h2paths.sort());
    expect(h2.map((r) => String(r.code)).sort()).toEqual(h2statuses.sort());
  });
});
