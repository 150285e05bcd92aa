/**
 * Imperfect captures (issue 14): real traffic captured with tcpdump, then cut the ways captures go wrong.
 * What the bytes determine is reported, compared with tshark on the same cut file, and a seeded sweep of
 * cuts checks that (a) exchanges the cut did not touch give exactly the full capture's records and (b) no
 * salvaged record contradicts the full capture's record for any field it reports.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRecord } from '../src/records/types.js';
import { pcapFile, rng, tcpPackets } from './helpers.js';
import { startServer, runCalls } from './grpc/peer.js';
import { contradictions, parsePcap, readAll, snapped, tcpInfo, writePcap, type Packet, type Pcap } from './salvage-cuts.js';
import { captureReordered, captureSkipReason, have, runAsync, run, sameMessages, startCapture, tempDir } from './tools.js';

const skip = captureSkipReason(['curl']);
if (skip) console.log(`salvage tests skipped: ${skip}`);

const dir = tempDir();
const captures: Record<string, Buffer> = {};
const closers: (() => unknown)[] = [];
afterAll(async () => { for (const c of closers.reverse()) await c(); });

const json = (n: number) => JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}` })) });

async function listen(server: http.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => new Promise((r) => server.close(r)));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  if (skip) return;
  const h1 = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; });
    req.on('end', () => {
      if (req.url === '/chunked') { res.write(json(300)); res.end(json(300)); return; }
      if (req.url === '/missing') { res.writeHead(404, { 'x-why': 'no such thing' }); res.end('not here'); return; }
      const body = req.url === '/big' ? json(3000) : JSON.stringify({ got: n });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-padding': 'p'.repeat(2000) });
      res.end(body);
    });
  });
  const h2 = http2.createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(json(req.url === '/big' ? 2000 : 3)); });
  });
  const [p1, p2] = [await listen(h1), await listen(h2)];
  const g = await startServer();
  closers.push(() => g.server.forceShutdown());
  const file = join(dir, 'lo.pcap');
  const cap = await startCapture('lo', file, `tcp port ${p1} or tcp port ${p2} or tcp port ${g.port}`);
  const tp = 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  for (const args of [['-d', 'x'.repeat(60_000), '-H', tp, `http://127.0.0.1:${p1}/upload`], [`http://127.0.0.1:${p1}/big`],
    [`http://127.0.0.1:${p1}/chunked`], ['-H', 'x-request-id: r-404', `http://127.0.0.1:${p1}/missing`]]) {
    await runAsync('curl', ['-s', '-o', '/dev/null', ...args]);
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const path of ['/a', '/big', '/b']) {
    await new Promise<void>((r) => http.get({ host: '127.0.0.1', port: p1, path, agent, headers: { 'x-request-id': `node${path}` } }, (res) => { res.resume(); res.on('end', r); }));
  }
  agent.destroy();
  const c2 = http2.connect(`http://127.0.0.1:${p2}`);
  for (const path of ['/x', '/big', '/y?z=1']) {
    await new Promise<void>((r) => { const q = c2.request({ ':method': 'POST', ':path': path }); q.end('payload'); q.resume(); q.on('end', () => r()); });
  }
  c2.close();
  await runCalls(g.port);
  await cap.stop();
  captures.http = readFileSync(file);
  const dubbo = join(__dirname, '../../shared/conformance/deepflow/dubbo_hessian2.pcap');
  if (existsSync(dubbo)) captures.dubbo = readFileSync(dubbo);
}, 60_000);

/** Index of packets carrying TCP payload, with their connection. */
function dataPackets(p: Pcap): { i: number; conn: string; len: number }[] {
  return p.packets.map((k, i) => ({ i, info: tcpInfo(p, k) }))
    .filter((x) => x.info !== null && x.info.payloadLen > 0)
    .map((x) => ({ i: x.i, conn: x.info!.conn, len: x.info!.payloadLen }));
}

function write(name: string, p: Pcap, packets: Packet[]): string {
  const f = join(dir, name);
  writeFileSync(f, writePcap(p, packets));
  return f;
}

/** tshark's HTTP/1 view of a file: methods with URIs, and status codes. */
function tsharkHttp(file: string): { requests: string[]; codes: number[] } {
  const t = run('tshark', ['-r', file, '-Y', 'http.request || http.response', '-T', 'fields', '-E', 'separator=|',
    '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code']);
  const requests: string[] = [];
  const codes: number[] = [];
  for (const line of t.stdout.split('\n').filter(Boolean)) {
    const [m, uri, code] = line.split('|');
    if (m) requests.push(`${m} ${uri}`);
    if (code) codes.push(Number(code));
  }
  return { requests, codes };
}

const connOf = (r: AnyRecord) => `${Math.min(r.client.port, r.server.port)}-${Math.max(r.client.port, r.server.port)}`;
const h1 = (rs: AnyRecord[]) => rs.filter((r) => r.protocol === 'http1');
const requestsOf = (rs: AnyRecord[]) => h1(rs).filter((r) => r.request.method).map((r) => `${r.request.method} ${r.protocol === 'http1' ? r.request.target : ''}`);

describe.skipIf(skip !== null)('imperfect captures of real traffic, against tshark and the whole capture', () => {
  it('the whole capture: flowtap and tshark see the same HTTP/1 requests and statuses', () => {
    const full = readAll(captures.http);
    const t = tsharkHttp(join(dir, 'lo.pcap'));
    const reordered = captureReordered(join(dir, 'lo.pcap')); // tshark's view is then a lower bound
    sameMessages(requestsOf(full), t.requests, reordered, expect);
    sameMessages(h1(full).map((r) => r.code).filter((c) => c !== null), t.codes, reordered, expect);
    expect(full.filter((r) => r.protocol === 'http2').length).toBe(3);
    expect(full.some((r) => r.protocol === 'grpc')).toBe(true);
  });

  it('a segment of a request body the capture missed (the server ACKs it): head, trace id and the answer kept, the loss said', () => {
    const p = parsePcap(captures.http);
    const full = readAll(captures.http);
    const upload = full.find((r) => r.endpoint === '/upload')!;
    expect(upload.status).toBe('ok');
    // the second data segment of the upload's connection, from the client: part of the 60 kB body
    const port = upload.client.port;
    const seg = dataPackets(p).filter((d) => d.conn.includes(String(port)) && p.packets[d.i].data.includes(Buffer.from('xxxxxxxxxx')))[1];
    const cut = write('body-hole.pcap', p, p.packets.filter((_, i) => i !== seg.i));
    const r = readAll(readFileSync(cut)).find((x) => x.client.port === port)!;
    expect(r.endpoint).toBe('/upload');
    expect(r.request.method).toBe('POST');
    expect(r.traceId).toBe(upload.traceId);
    expect(r.code).toBe(200);
    expect(r.requestSize).toBe(upload.requestSize);
    expect(r.error).toBe(`request body incomplete: ${seg.len} of its 60000 bytes are missing from the capture`);
    expect(contradictions(r, upload)).toEqual([]);
    // tshark cannot reassemble the request: what it still reports, flowtap reports too
    const t = tsharkHttp(cut);
    const ours = readAll(readFileSync(cut));
    for (const q of t.requests) expect(requestsOf(ours)).toContain(q);
    for (const c of t.codes) expect(ours.map((x) => x.code)).toContain(c);
  });

  it('a capture that ends inside a response head: the status code and version are reported', () => {
    const p = parsePcap(captures.http);
    const full = readAll(captures.http);
    const missing = full.find((r) => r.endpoint === '/missing')!;
    const at = p.packets.findIndex((k) => k.data.includes(Buffer.from('HTTP/1.1 404')));
    const k = p.packets[at];
    const head = k.data.indexOf(Buffer.from('HTTP/1.1 404'));
    const lineEnd = k.data.indexOf(Buffer.from('\r\n'), head) + 2;
    // the status line and one header, then the capture stops in the middle of the next header
    const keep = k.data.indexOf(Buffer.from('\r\n'), lineEnd) + 6;
    const cut = write('head-cut.pcap', p, [...p.packets.slice(0, at), snapped(p, k, keep)]);
    const r = readAll(readFileSync(cut)).find((x) => x.client.port === missing.client.port)!;
    expect(r.code).toBe(404);
    expect(r.response).toMatchObject({ statusCode: 404, version: '1.1', reason: 'Not Found' });
    expect(r.error).toMatch(/inside the head/);
    expect(contradictions(r, missing)).toEqual([]);
    const t = tsharkHttp(cut);
    expect(t.requests).toContain('GET /missing');
    for (const c of t.codes) expect(r.code === c || readAll(readFileSync(cut)).some((x) => x.code === c)).toBe(true);
  });

  it('a capture that ends inside a request line\'s headers: method and target are reported', () => {
    const p = parsePcap(captures.http);
    const at = p.packets.findIndex((k) => k.data.includes(Buffer.from('GET /missing HTTP/1.1')));
    const k = p.packets[at];
    const keep = k.data.indexOf(Buffer.from('\r\n', 'latin1'), k.data.indexOf(Buffer.from('GET /missing'))) + 8;
    const cut = write('request-cut.pcap', p, [...p.packets.slice(0, at), snapped(p, k, keep)]);
    const r = readAll(readFileSync(cut)).find((x) => x.endpoint === '/missing')!;
    expect(r.request).toMatchObject({ method: 'GET', target: '/missing', version: '1.1' });
    expect(r.error).toBe('request truncated: the capture ended inside the head');
  });

  it('a body cut by the end of the capture: sizes as seen, flagged', () => {
    const p = parsePcap(captures.http);
    const full = readAll(captures.http);
    const big = full.find((r) => r.endpoint === '/big' && r.protocol === 'http1')!;
    const conn = dataPackets(p).filter((d) => d.conn.includes(String(big.client.port)));
    const firstBody = conn.findIndex((d) => p.packets[d.i].data.includes(Buffer.from('HTTP/1.1 200')));
    const end = conn[firstBody + 1].i; // the capture stops after the head and the first body segment
    const cut = write('body-cut.pcap', p, p.packets.slice(0, end));
    const r = readAll(readFileSync(cut)).find((x) => x.client.port === big.client.port && x.endpoint === '/big')!;
    expect(r.code).toBe(200);
    expect(r.error).toMatch(/^response truncated: the capture ended after \d+ of \d+ body bytes$/);
    expect(r.responseSize).toBeGreaterThan(0);
    expect(r.responseSize).toBeLessThan(big.responseSize);
    expect(contradictions(r, big)).toEqual([]);
  });

  it('HTTP/2: a HEADERS frame seen, its stream never finished: method, path and what was seen', () => {
    const p = parsePcap(captures.http);
    const full = readAll(captures.http);
    const s = full.find((r) => r.protocol === 'http2' && r.endpoint === '/big')!;
    const conn = dataPackets(p).filter((d) => d.conn.includes(String(s.client.port)));
    // stop the capture in the middle of the big response's data
    const big = conn.filter((d) => d.len > 10_000)[0] ?? conn[conn.length - 2];
    const cut = write('h2-cut.pcap', p, [...p.packets.slice(0, big.i), snapped(p, p.packets[big.i], 2000)]);
    const r = readAll(readFileSync(cut)).find((x) => x.protocol === 'http2' && x.endpoint === '/big')!;
    expect(r.request).toMatchObject({ method: 'POST', path: '/big' });
    expect(r.code).toBe(200);
    expect(r.error).not.toBeNull();
    expect(contradictions(r, s)).toEqual([]);
    // tshark on the same cut file names the same request and status
    const t = run('tshark', ['-r', cut, '-d', `tcp.port==${s.server.port},http2`, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'separator=|',
      '-e', 'http2.streamid', '-e', 'http2.headers.method', '-e', 'http2.headers.path', '-e', 'http2.headers.status']);
    const rows = t.stdout.split('\n').filter(Boolean).map((l) => l.split('|')).filter((f) => Number(f[0].split(',')[0]) === r.streamId);
    expect(rows.some((f) => f[1] === 'POST' && f[2] === '/big')).toBe(true);
    expect(rows.some((f) => f[3] === '200')).toBe(true);
  });

  it('HTTP/2 joined mid-connection: roles from content whatever the ports, same methods and paths as tshark', () => {
    const p = parsePcap(captures.http);
    const full = readAll(captures.http).filter((r) => r.protocol === 'http2');
    const conn = connOf(full[0]);
    const data = dataPackets(p).filter((d) => d.conn === conn);
    // from the second request on: no SYN, no preface, no SETTINGS; the HPACK table is unknown
    const ms = (k: Packet) => (p.le ? k.header.readUInt32LE(0) * 1000 + k.header.readUInt32LE(4) / 1000
      : k.header.readUInt32BE(0) * 1000 + k.header.readUInt32BE(4) / 1000);
    const from = data.find((d) => ms(p.packets[d.i]) >= full[1].startTime - 0.0005)!.i;
    const joined = p.packets.filter((_, i) => i >= from);
    const file = write('h2-joined.pcap', p, joined);
    const rs = readAll(readFileSync(file)).filter((r) => r.protocol === 'http2');
    expect(rs.map((r) => [r.client.port, r.request.method, r.endpoint])).toEqual(
      full.slice(1).map((r) => [r.client.port, 'POST', r.endpoint]));
    for (const r of rs) expect(contradictions(r, full.find((f) => f.endpoint === r.endpoint)!)).toEqual([]);
    const server = full[0].server.port;
    const t = run('tshark', ['-r', file, '-d', `tcp.port==${server},http2`, '-Y', 'http2.header.name == ":path"', '-T', 'fields',
      '-e', 'http2.headers.method', '-e', 'http2.headers.path']);
    const lines = t.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const [m, path] = line.split('\t');
      if (path) expect(rs.map((r) => r.request.path)).toContain(path);
      if (m) expect(m).toBe('POST');
    }
  });

  it.skipIf(!existsSync(join(__dirname, '../../shared/conformance/deepflow/dubbo_hessian2.pcap')))(
    'Dubbo: a header seen, the body cut: id, flags, status and the readable part of the body', () => {
      const p = parsePcap(captures.dubbo);
      const full = readAll(captures.dubbo).filter((r) => r.protocol === 'dubbo');
      const data = dataPackets(p);
      const last = data[data.length - 1];
      // the response's packet, with its 16-byte header and 4 bytes of body (payload after the TCP header)
      const keep = tcpInfo(p, p.packets[last.i])!.payloadAt + 20;
      const cut = write('dubbo-cut.pcap', p, [...p.packets.slice(0, last.i), snapped(p, p.packets[last.i], keep)]);
      const r = readAll(readFileSync(cut)).filter((x) => x.protocol === 'dubbo');
      const whole = full[full.length - 1];
      const salvaged = r.find((x) => x.requestId === whole.requestId)!;
      expect(salvaged.code).toBe(whole.code);
      expect(salvaged.error).toMatch(/^response incomplete: the capture ended after 4 of its \d+ body bytes$/);
      expect(contradictions(salvaged, whole)).toEqual([]);
    });

  for (const name of ['http', 'dubbo']) {
    it(`${name}: 200+ seeded cuts — untouched exchanges give the same records, salvaged ones contradict nothing`, () => {
      if (!captures[name]) return;
      const p = parsePcap(captures[name]);
      const full = readAll(captures[name]);
      const data = dataPackets(p);
      const random = rng(Number(process.env.SWEEP_SEED ?? 14));
      let salvaged = 0;
      for (let n = 0; n < 220; n++) {
        const d = data[Math.floor(random() * data.length)];
        const info = tcpInfo(p, p.packets[d.i])!;
        const mode = n % 3; // drop the segment, snap it short, or end the capture inside it
        const keep = info.payloadAt + Math.floor(random() * d.len);
        const packets = mode === 0 ? p.packets.filter((_, i) => i !== d.i)
          : mode === 1 ? p.packets.map((k, i) => (i === d.i ? snapped(p, k, keep) : k))
          : [...p.packets.slice(0, d.i), snapped(p, p.packets[d.i], keep)];
        const h = p.packets[d.i].header;
        const cutAt = mode === 2 ? (p.le ? h.readUInt32LE(0) : h.readUInt32BE(0)) * 1000 : Infinity;
        const cut = readAll(writePcap(p, packets));
        const fullByKey = new Map(full.map((r) => [JSON.stringify(r), r]));
        for (const r of cut) {
          const conn = connOf(r);
          if (conn !== d.conn) {
            // (a) another connection: untouched, so exactly the full capture's record
            if (mode !== 2 || (r.endTime !== null && r.endTime < cutAt - 1000)) {
              expect(fullByKey.has(JSON.stringify(r)), `cut ${n}: ${JSON.stringify(r).slice(0, 300)}`).toBe(true);
            }
            continue;
          }
          // (b) on the cut connection: some whole record agrees with every field it reports
          // (A stream whose content-type was an HPACK entry the cut lost cannot be told gRPC: http2 then.)
          const unsure = (r as { hpackIncomplete?: boolean }).hpackIncomplete === true && r.protocol === 'http2';
          const candidates = full.filter((f) => connOf(f) === conn && (f.protocol === r.protocol || (unsure && f.protocol === 'grpc')));
          const ok = candidates.some((f) => contradictions(r, f).length === 0);
          if (!ok) {
            const best = candidates.map((f) => contradictions(r, f)).sort((a, b) => a.length - b.length)[0];
            expect.fail(`cut ${n} (mode ${mode}, packet ${d.i}): ${JSON.stringify(r).slice(0, 500)} contradicts: ${best?.join('; ') ?? 'no record of that connection'}`);
          }
          if (r.error) salvaged++;
        }
        // (a) every record of the other connections that the cut did not reach is still there
        if (mode !== 2) {
          const cutKeys = new Set(cut.map((r) => JSON.stringify(r)));
          for (const f of full) {
            if (connOf(f) !== d.conn) expect(cutKeys.has(JSON.stringify(f)), `cut ${n} lost ${f.endpoint}`).toBe(true);
          }
        }
      }
      expect(salvaged).toBeGreaterThan(0);
    });
  }
});

describe.skipIf(!have('tshark'))('HTTP/2 content that decides roles, against tshark', () => {
  it('a lone HEADERS frame on stream 1001 (indexed :scheme, literal :path and :authority, indexed :method): a request with method and path', () => {
    const path = '/api/orders/42';
    const authority = 'orders.internal:8080';
    const block = Buffer.concat([Buffer.from([0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, authority.length]),
      Buffer.from(authority), Buffer.from([0x83])]);
    const frame = Buffer.concat([Buffer.from([0, 0, block.length, 1, 0x4, 0, 0, 0x03, 0xe9]), block]);
    // No SYN, no other traffic; the client is on the low port, so ports would name the wrong side.
    const ep = { cip: '10.0.0.9', cport: 80, sip: '10.0.0.8', sport: 50051 };
    const file = join(dir, 'lone-headers.pcap');
    writeFileSync(file, pcapFile(101, tcpPackets([{ from: 'c', data: frame }], ep).map((p) => ({ data: p.ip, time: p.time }))));
    const [r] = readAll(readFileSync(file));
    expect(r).toMatchObject({ protocol: 'http2', streamId: 1001, endpoint: path, client: { port: 80 }, server: { port: 50051 } });
    expect(r.request).toMatchObject({ method: 'POST', path, authority, scheme: 'http' });
    const t = run('tshark', ['-r', file, '-d', 'tcp.port==50051,http2', '-T', 'fields', '-E', 'separator=|',
      '-e', 'http2.headers.method', '-e', 'http2.headers.path', '-e', 'http2.headers.authority']);
    expect(t.stdout.trim()).toBe(`POST|${path}|${authority}`);
  });

  it('a server direction opening with a SETTINGS ack and a PING ack, then HEADERS with :status: the server, whatever the ports', () => {
    const settingsAck = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);
    const pingAck = Buffer.concat([Buffer.from([0, 0, 8, 6, 1, 0, 0, 0, 0]), Buffer.alloc(8, 7)]);
    const headers = Buffer.from([0, 0, 1, 1, 0x5, 0, 0, 0, 0x05, 0x8d]); // :status 404, END_STREAM
    const ep = { cip: '10.0.0.9', cport: 80, sip: '10.0.0.8', sport: 50051 };
    const file = join(dir, 'acks-then-headers.pcap');
    writeFileSync(file, pcapFile(101, tcpPackets([{ from: 's', data: Buffer.concat([settingsAck, pingAck, headers]) }], ep)
      .map((p) => ({ data: p.ip, time: p.time }))));
    const [r] = readAll(readFileSync(file));
    expect(r).toMatchObject({ protocol: 'http2', streamId: 5, code: 404, client: { port: 80 }, server: { port: 50051 } });
    const t = run('tshark', ['-r', file, '-d', 'tcp.port==50051,http2', '-Y', 'http2.type == 1', '-T', 'fields', '-e', 'http2.headers.status']);
    expect(t.stdout.trim()).toBe('404');
  });
});
