import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CaptureDecoder, type ExchangeRecord, type Http1Record } from '../src/index.js';
import { frame, pcapFile, pcapngFile, tcpPackets, type Seg } from './helpers.js';

const crlf = (s: string) => s.replace(/\n/g, '\r\n');

function read(file: Buffer, opts: ConstructorParameters<typeof CaptureDecoder>[0] = {}, chunk = 1 << 20) {
  const records: Http1Record[] = [];
  const d = new CaptureDecoder(opts, (r: ExchangeRecord) => records.push(r as Http1Record));
  for (let i = 0; i < file.length; i += chunk) d.write(file.subarray(i, i + chunk));
  const summary = d.end();
  return { records, summary, error: d.error };
}

const REQ1 = Buffer.from(crlf('GET /one HTTP/1.1\nHost: a\n\n'));
const RES1 = Buffer.from(crlf('HTTP/1.1 200 OK\nContent-Length: 5\n\nhello'));
const REQ2 = Buffer.from(crlf('POST /two HTTP/1.1\nHost: a\nContent-Length: 3\n\nxyz'));
const RES2 = Buffer.from(crlf('HTTP/1.1 500 Oops\nContent-Length: 0\n\n'));
const handshake: Seg[] = [{ from: 'c', syn: true }, { from: 's', syn: true }, { from: 'c' }];
const exchange: Seg[] = [...handshake, { from: 'c', data: REQ1 }, { from: 's', data: RES1 }, { from: 'c', data: REQ2 },
  { from: 's', data: RES2 }, { from: 'c', fin: true }, { from: 's', fin: true }];

const summary = (rs: Http1Record[]) => rs.map((r) => [r.client.port, r.server.port, r.endpoint, r.code, r.status, r.requestSize, r.responseSize]);
const EXPECTED = [[40000, 80, '/one', 200, 'ok', REQ1.length, RES1.length], [40000, 80, '/two', 500, 'server_error', REQ2.length, RES2.length]];

describe('capture files', () => {
  const pkts = tcpPackets(exchange);

  it('pcap in both byte orders, µs and ns, read in chunks of any size', () => {
    for (const bigEndian of [false, true]) {
      for (const nanos of [false, true]) {
        const file = pcapFile(1, pkts.map((p) => ({ data: frame(1, p.ip), time: p.time })), { bigEndian, nanos });
        for (const chunk of [1, 7, 1 << 20]) {
          const { records } = read(file, {}, chunk);
          expect(summary(records)).toEqual(EXPECTED);
          expect(records[0].startTime).toBe(pkts[3].time);
        }
      }
    }
  });

  it('pcapng with several interfaces of different link types and timestamp resolutions, both byte orders', () => {
    for (const bigEndian of [false, true]) {
      const ifaces = [{ linkType: 1 }, { linkType: 113, tsresol: 9 }, { linkType: 101, tsresol: 0x80 | 20 }];
      const file = pcapngFile(ifaces, pkts.map((p, i) => ({ iface: i % 3, data: frame(ifaces[i % 3].linkType, p.ip), time: p.time })), { bigEndian });
      const { records } = read(file, {}, 13);
      expect(summary(records)).toEqual(EXPECTED);
      expect(records[0].startTime).toBeCloseTo(pkts[3].time, 3);
    }
  });

  it('pcapng simple packet blocks', () => {
    const file = pcapngFile([{ linkType: 1 }], pkts.map((p) => ({ iface: 0, data: frame(1, p.ip), time: p.time })), { simple: true });
    expect(summary(read(file).records)).toEqual(EXPECTED);
  });

  it('link types: Ethernet with stacked VLAN tags, Linux SLL and SLL2, raw IP, BSD loopback (both byte orders); IPv6', () => {
    const cases: [number, Parameters<typeof frame>[2]][] = [[1, { vlan: [100, 200] }], [113, {}], [276, {}], [101, {}], [0, {}], [0, { bigEndianNull: true }]];
    for (const v6 of [false, true]) {
      const p = tcpPackets(exchange, v6 ? { cip: 'fd00::1', cport: 40000, sip: 'fd00::2:0:0:2', sport: 80 } : undefined, v6);
      for (const [lt, o] of cases) {
        const { records } = read(pcapFile(lt, p.map((x) => ({ data: frame(lt, x.ip, o), time: x.time }))));
        expect(summary(records), `link ${lt} v6=${v6}`).toEqual(EXPECTED);
        if (v6) expect(records[0].client.ip).toBe('fd00::1');
        if (v6) expect(records[0].server.ip).toBe('fd00::2:0:0:2');
      }
    }
  });

  it('addresses that share a slot of the address-text cache are told apart (IPv4 and IPv6)', () => {
    // Pairs that land in the same slot (IPv4: Fibonacci hashing of the address; IPv6: its last bytes): each comes back as itself.
    const pairs: [string, string, boolean][] = [['10.0.0.1', '10.0.16.86', false], ['fd00::1', 'fe00::1', true]];
    for (const [a, b, v6] of pairs) {
      for (const ip of [a, b, a]) {
        const peer = v6 ? 'fd00::99' : '10.9.9.9';
        const p = tcpPackets(exchange, { cip: ip, cport: 40000, sip: peer, sport: 80 }, v6);
        const { records } = read(pcapFile(101, p.map((x) => ({ data: x.ip, time: x.time }))));
        expect(records.map((r) => [r.client.ip, r.server.ip])).toEqual([[ip, peer], [ip, peer]]);
      }
    }
  });

  it('600 connections open at once (more than the release interval): every exchange, in time order, ids by opening', () => {
    // Packets of all connections interleaved round-robin, so all are open together; then each closes.
    const N = 600;
    const flows = Array.from({ length: N }, (_, f) =>
      tcpPackets(exchange, { cip: `10.0.${f >> 8}.${f & 255}`, cport: 40000 + f, sip: '10.1.0.1', sport: 80 }));
    const packets: { data: Buffer; time: number }[] = [];
    let t = 1_700_000_000_000;
    for (let i = 0; i < flows[0].length; i++) for (const f of flows) packets.push({ data: f[i].ip, time: (t += 0.01) });
    const { records } = read(pcapFile(101, packets));
    expect(records).toHaveLength(2 * N);
    for (let i = 1; i < records.length; i++) expect(records[i].startTime).toBeGreaterThanOrEqual(records[i - 1].startTime);
    for (const r of records) {
      const f = r.client.port - 40000;
      expect(r.client.ip).toBe(`10.0.${f >> 8}.${f & 255}`);
      // Connections get ids in the order they opened (their SYNs came in flow order).
      expect(r.connectionId).toBe(String(f + 1));
    }
    expect(records.filter((r) => r.endpoint === '/one')).toHaveLength(N);
    expect(records.filter((r) => r.endpoint === '/two' && r.code === 500)).toHaveLength(N);
  });

  it('reassembly: out of order, retransmitted and overlapping segments give the same records', () => {
    const body = Buffer.from('0123456789'.repeat(50));
    const req = Buffer.concat([Buffer.from(crlf(`POST /big HTTP/1.1\nContent-Length: ${body.length}\n\n`)), body]);
    const a = req.subarray(0, 100); const b = req.subarray(100, 300); const c = req.subarray(300);
    const segs: Seg[] = [...handshake,
      { from: 'c', data: b, at: 100 }, { from: 'c', data: c, at: 300 }, // ahead of the hole
      { from: 'c', data: a, at: 0 }, // fills it
      { from: 'c', data: req.subarray(50, 350), at: 50 }, // retransmission overlapping everything
      { from: 's', data: RES1 }, { from: 'c', fin: true, at: req.length }, { from: 's', fin: true }];
    const { records } = read(pcapFile(101, tcpPackets(segs).map((p) => ({ data: p.ip, time: p.time }))));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ endpoint: '/big', code: 200, requestSize: req.length, request: { bodySize: body.length } });
  });

  it('a segment the capture lost (acknowledged by the peer) is counted in the body and said; later exchanges still decode', () => {
    const lostReq = Buffer.from(crlf('POST /lost HTTP/1.1\nContent-Length: 20\n\n') + 'x'.repeat(20));
    const segs: Seg[] = [...handshake,
      { from: 'c', data: lostReq.subarray(0, 50), at: 0 },
      // bytes 50.. never captured; the server acknowledges them and answers
      { from: 's', data: Buffer.from(crlf('HTTP/1.1 201 Created\nContent-Length: 0\n\n')) },
      { from: 'c', data: REQ1, at: lostReq.length }, { from: 's', data: RES1 }];
    const pk = tcpPackets(segs);
    // make the server's ACKs cover the lost bytes (as a real receiver would)
    for (const p of pk.slice(4)) if ((p.ip[20 + 13] & 0x10) && p.ip.readUInt16BE(20) === 80) {
      p.ip.writeUInt32BE(1000 + 1 + lostReq.length + (p === pk[6] ? REQ1.length : 0), 20 + 8);
    }
    const { records } = read(pcapFile(101, pk.map((p) => ({ data: p.ip, time: p.time }))));
    expect(records.map((r) => [r.endpoint, r.status, r.code])).toEqual([['/lost', 'parse_error', 201], ['/one', 'ok', 200]]);
    expect(records[0].error).toBe('request body incomplete: 13 of its 20 bytes are missing from the capture');
    expect(records[0].requestSize).toBe(lostReq.length);
  });

  it('mid-stream connections (no SYN): roles come from which side opens a request, whatever the ports', () => {
    const ep = { cip: '10.0.0.9', cport: 80, sip: '10.0.0.8', sport: 50000 }; // client on the low port
    const segs: Seg[] = [{ from: 's', data: Buffer.from('...tail of an earlier response body') },
      { from: 'c', data: REQ1 }, { from: 's', data: RES1 }];
    const { records } = read(pcapFile(101, tcpPackets(segs, ep).map((p) => ({ data: p.ip, time: p.time }))));
    expect(records.map((r) => [r.client.port, r.server.port, r.endpoint, r.code])).toEqual([[80, 50000, '/one', 200]]);
  });

  it('records come out ordered by startTime across connections', () => {
    const a = tcpPackets(exchange, { cip: '10.0.0.1', cport: 1111, sip: '10.0.0.2', sport: 80 });
    const b = tcpPackets([...handshake, { from: 'c', data: REQ1 }, { from: 's', data: RES1 }],
      { cip: '10.0.0.3', cport: 2222, sip: '10.0.0.2', sport: 80 });
    // b's request starts while a's first exchange is still open, and finishes first
    b.forEach((p, i) => { p.time = a[3].time + 0.5 + i * 0.01; });
    const all = [...a, ...b].sort((x, y) => x.time - y.time);
    const { records } = read(pcapFile(101, all.map((p) => ({ data: p.ip, time: p.time }))));
    const starts = records.map((r) => r.startTime);
    expect(starts).toEqual([...starts].sort((x, y) => x - y));
    expect(records.map((r) => r.client.port)).toEqual([1111, 2222, 1111]);
  });

  it('a file that is not a capture is an error value; a truncated one is a warning', () => {
    expect(read(Buffer.from('this is not a capture at all')).error).toMatch(/not a pcap or pcapng file/);
    expect(read(Buffer.alloc(0)).error).toMatch(/empty/);
    const file = pcapFile(101, tcpPackets(exchange).map((p) => ({ data: p.ip, time: p.time })));
    const cut = read(file.subarray(0, file.length - 5));
    expect(cut.error).toBeNull();
    expect(cut.summary.warning).toMatch(/ends inside a record/);
  });
});

describe('conformance: DeepFlow httpv1.pcap', () => {
  const path = new URL('../../shared/conformance/deepflow/httpv1.pcap', import.meta.url).pathname;
  it.skipIf(!existsSync(path))('agrees with httpv1.result (path, host, lengths, status, endpoint, bytes)', () => {
    const { records } = read(readFileSync(path));
    const result = readFileSync(path.replace('.pcap', '.result'), 'utf8');
    const field = (name: string) => [...result.matchAll(new RegExp(`(?<![a-z_])${name}: ([^,]+),`, 'g'))].map((m) => m[1]);
    expect(records).toHaveLength(1);
    const r = records[0];
    expect(JSON.stringify(r.request.target)).toBe(field('path')[0]);
    expect(JSON.stringify(r.request.host)).toBe(field('host')[0]);
    expect(`Some(${r.request.bodySize})`).toBe(field('req_content_length')[0]);
    expect(`Some(${r.response!.bodySize})`).toBe(field('resp_content_length')[1]);
    expect(`Some(${r.code})`).toBe(field('status_code')[1]);
    expect(`Some(${JSON.stringify(r.endpoint)})`).toBe(field('endpoint')[0]);
    expect(String(r.requestSize)).toBe(field('captured_request_byte')[0]);
    expect(String(r.responseSize)).toBe(field('captured_response_byte')[1]);
    expect(r.request.method).toBe('POST');
  });
});
