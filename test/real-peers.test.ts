/**
 * Real traffic on loopback — curl, Node's http client and server, a raw pipelining client and a raw
 * close-delimited server — captured by tcpdump, read by `flowtap read` (the built CLI), and checked against
 * tshark's dissection of the same file and against what each client itself saw.
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Http1Record } from '../src/index.js';
import { captureSkipReason, run, runAsync, startCapture, tempDir, captureReordered, sameMessages } from './tools.js';

const skip = captureSkipReason(['curl', 'editcap']);
if (skip) console.warn(`real-peer tests skipped: ${skip}`);

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const letters = (n: number, seed = 0) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7 + seed) % 26);
  return b;
};

interface Seen { path: string; status: number }

describe.skipIf(skip !== null)('real peers on loopback vs tshark', () => {
  const dir = tempDir();
  const loFile = join(dir, 'lo.pcap');
  const anyFile = join(dir, 'any.pcap');
  const seen: Seen[] = [];
  let ports: number[] = [];
  let records: Http1Record[] = [];

  beforeAll(async () => {
    // Node http server: keep-alive, chunked, 304, big bodies, HEAD, 100-continue (Node answers it itself).
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const url = req.url!;
        if (url.startsWith('/chunked')) { res.write(letters(1000)); res.write(letters(3000, 1)); res.end(letters(17, 2)); return; }
        if (url === '/etag') {
          if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"' }); res.end(); return; }
          res.writeHead(200, { etag: '"v1"', 'content-length': 5 }); res.end('hello'); return;
        }
        if (url === '/big') { res.writeHead(200, { 'content-length': 3_000_000 }); res.end(letters(3_000_000, 3)); return; }
        if (url === '/missing') { res.writeHead(404, { 'content-length': 9 }); res.end('not found'); return; }
        if (url === '/fail') { res.writeHead(503, { 'content-length': 4 }); res.end('busy'); return; }
        const body = Buffer.concat(chunks);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 8 + String(body.length).length });
        res.end(`received${body.length}`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // Raw server: answers each connection with an HTTP/1.0 response delimited by the close.
    const raw = net.createServer((s) => {
      let got = '';
      s.on('data', (d) => {
        got += d;
        if (got.includes('\r\n\r\n')) s.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'), letters(5000, 4)]));
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    const hp = (server.address() as AddressInfo).port;
    const rp = (raw.address() as AddressInfo).port;
    ports = [hp, rp];
    const filter = `tcp port ${hp} or tcp port ${rp}`;
    const capLo = await startCapture('lo', loFile, filter);
    const capAny = await startCapture('any', anyFile, filter);

    const curl = async (path: string, ...args: string[]) => {
      const port = path === '/close-delimited' ? rp : hp;
      const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args, `http://127.0.0.1:${port}${path}`]);
      seen.push({ path: path.split('?')[0], status: Number(r.stdout) });
    };
    await curl('/plain?x=1');
    await curl('/head', '-I');
    const upload = join(dir, 'upload.txt');
    writeFileSync(upload, letters(200_000, 5));
    await curl('/upload', '-H', 'Expect: 100-continue', '--data-binary', `@${upload}`);
    await curl('/missing');

    // Node client, one keep-alive connection: chunked, 200 then 304, a 3 MB download, a 2 MB upload, a 503.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string, opts: http.RequestOptions = {}, body?: Buffer) => new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: hp, path, agent, ...opts }, (res) => {
        res.resume();
        res.on('end', () => { seen.push({ path, status: res.statusCode! }); resolve(); });
      });
      req.on('error', reject);
      req.end(body);
    });
    await get('/chunked');
    await get('/etag');
    await get('/etag', { headers: { 'if-none-match': '"v1"' } });
    await get('/big');
    await get('/upload-big', { method: 'POST' }, letters(2_000_000, 6));
    await get('/fail');
    agent.destroy();

    // Raw pipelining client: three requests in one write.
    await new Promise<void>((resolve) => {
      const s = net.connect(hp, '127.0.0.1', () => {
        s.write(['/p1', '/p2', '/p3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
      });
      let got = '';
      s.on('data', (d) => {
        got += d;
        if ((got.match(/HTTP\/1\.1 200/g) ?? []).length === 3) { s.end(); resolve(); }
      });
      for (const p of ['/p1', '/p2', '/p3']) seen.push({ path: p, status: 200 });
    });
    // Raw close-delimited server, with curl and with Node.
    await curl('/close-delimited');

    await capLo.stop();
    await capAny.stop();
    server.close();
    raw.close();
    const out = run('node', [CLI, 'read', loFile]);
    expect(out.status, out.stderr).toBe(0);
    records = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }, 120_000);

  afterAll(() => { /* servers are closed in beforeAll; the temp dir is left for inspection on failure */ });

  it('every request the clients made is one record, with the status the client saw', () => {
    expect(records.map((r) => r.status === 'ok' || r.status === 'client_error' || r.status === 'server_error')).not.toContain(false);
    const mine = records.map((r) => ({ path: r.endpoint, status: r.code! })).sort(byPath);
    expect(mine).toEqual([...seen].sort(byPath));
  });

  it('method, URI, status and body lengths agree with tshark for every message', () => {
    const d = ports.flatMap((p) => ['-d', `tcp.port==${p},http`]);
    const t = run('tshark', ['-r', loFile, ...d, '-Y', 'http', '-T', 'fields', '-E', 'separator=|', '-E', 'aggregator=;',
      '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code', '-e', 'http.response_for.uri', '-e', 'http.file_data']);
    expect(t.status, t.stderr).toBe(0);
    const tsReq: string[] = [];
    const tsCodes: string[] = [];
    const tsPairs: string[] = [];
    const tsBodies: number[] = [];
    for (const line of t.stdout.trim().split('\n')) {
      const [methods, uris, codes, fors, data] = line.split('|').map((f) => (f ? f.split(';') : []));
      methods.forEach((m, i) => tsReq.push(`${m} ${uris[i]}`));
      for (const c of codes) if (c !== '100') tsCodes.push(c);
      for (const b of data) if (b.length > 0) tsBodies.push(b.length);
      // tshark pairs every response to pipelined requests sent in one frame with the frame's last request,
      // so its pairing is taken as an oracle only for connections without pipelining.
      if (codes.length === 1 && codes[0] !== '100' && !/\/p\d$/.test(fors[0])) {
        const u = new URL(fors[0]);
        tsPairs.push(`${codes[0]} ${u.pathname}${u.search}`);
      }
    }
    const ftReq = records.map((r) => `${r.request.method} ${r.request.target}`);
    const ftCodes = records.map((r) => String(r.code));
    const ftPairs = records.filter((r) => !/^\/p\d$/.test(r.endpoint)).map((r) => `${r.code} ${r.request.target}`);
    const ftBodies = records.flatMap((r) => [r.request.bodySize, r.response!.bodySize]).filter((n) => n > 0);
    // A capture that holds a segment out of order: tshark's view is a lower bound (see captureReordered);
    // the test above holds flowtap to what the clients saw either way.
    const reordered = captureReordered(loFile);
    const same = <T>(ours: T[], theirs: T[]) => sameMessages(ours, theirs, reordered, expect);
    same(ftReq, tsReq);
    same(ftCodes, tsCodes);
    same(ftPairs, tsPairs);
    expect(records.filter((r) => /^\/p\d$/.test(r.endpoint)).map((r) => r.endpoint)).toEqual(['/p1', '/p2', '/p3']);
    same(ftBodies, tsBodies);
    // tshark shows the 100 Continue as a response of its own; flowtap lists it on the exchange.
    const continues = t.stdout.split('\n').filter((l) => l.split('|')[2]?.split(';').includes('100')).length;
    expect(records.filter((r) => r.response?.interim?.includes(100)).length).toBe(continues);
    expect(continues).toBeGreaterThan(0);
  });

  it('sizes, bodies and timing are consistent with the wire', () => {
    const big = records.find((r) => r.endpoint === '/big')!;
    expect(big.response).toMatchObject({ bodySize: 3_000_000, body: letters(4096, 3).toString() });
    expect(big.responseSize).toBeGreaterThan(3_000_000);
    const head = records.find((r) => r.endpoint === '/head')!;
    expect(head.request.method).toBe('HEAD');
    expect(head.response!.bodySize).toBe(0);
    expect(Number(head.response!.headers['content-length'])).toBeGreaterThan(0);
    const chunked = records.find((r) => r.endpoint === '/chunked')!;
    expect(chunked.response).toMatchObject({ bodySize: 4017, headers: { 'transfer-encoding': 'chunked' } });
    const closeDelimited = records.find((r) => r.endpoint === '/close-delimited')!;
    expect(closeDelimited.response).toMatchObject({ version: '1.0', bodySize: 5000 });
    for (const r of records) {
      expect(r.duration).toBeGreaterThanOrEqual(0);
      expect(r.client.port).not.toBe(r.server.port);
      expect(ports).toContain(r.server.port);
    }
    const starts = records.map((r) => r.startTime);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });

  it('the same traffic captured on "any" (Linux SLL2), and converted to pcapng and ns pcap by editcap, reads the same', () => {
    const strip = (out: string) => out.trim().split('\n').map((l) => {
      const r = JSON.parse(l);
      delete r.connectionId;
      // Two captures of the same packets differ only in timestamps by a few µs.
      return JSON.stringify({ ...r, startTime: null, endTime: null, duration: null });
    });
    const base = strip(run('node', [CLI, 'read', loFile]).stdout);
    const link = run('tshark', ['-r', anyFile, '-T', 'fields', '-e', 'frame.protocols', '-c', '1']).stdout;
    expect(link).toMatch(/^sll/);
    expect(strip(run('node', [CLI, 'read', anyFile]).stdout)).toEqual(base);
    for (const format of ['pcapng', 'nsecpcap']) {
      const f = join(dir, `conv.${format}`);
      expect(run('editcap', ['-F', format, loFile, f]).status).toBe(0);
      expect(strip(run('node', [CLI, 'read', f]).stdout)).toEqual(base);
    }
    expect(readFileSync(join(dir, 'conv.pcapng')).readUInt32LE(0)).toBe(0x0a0d0d0a);
  });
});

function byPath(a: Seen, b: Seen): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : a.status - b.status;
}
