/**
 * `flowtap read --threads N`: the output of N decoding threads is the output of one, byte for byte, on a
 * capture made to reach every path where order could differ (equal start times across connections,
 * timeouts, idle connections swept, roles judged without a SYN, time going backwards, a lost segment,
 * undecodable bytes, gRPC), on the conformance captures when they are here, and through the CLI.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureDecoder, type CaptureSummary } from '../src/capture/read.js';
import { ParallelCaptureReader } from '../src/capture/parallel.js';
import { formatTableRow } from '../src/cli/table.js';
import type { AnyRecord } from '../src/records/types.js';
import { pcapFile, tcpPackets, type Seg } from './helpers.js';
import { run, tempDir } from './tools.js';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));
const cli = join(__dirname, '../dist/cli.js');

type Options = { format: 'jsonl' | 'table'; timeout?: number; decode?: Record<number, string> };

function oneThread(file: Buffer, o: Options): { text: string; summary: CaptureSummary } {
  let text = '';
  const dec = new CaptureDecoder({ timeout: o.timeout, decode: o.decode },
    (r: AnyRecord) => { text += (o.format === 'table' ? formatTableRow(r) : JSON.stringify(r)) + '\n'; });
  for (let i = 0; i < file.length; i += 1 << 16) dec.write(file.subarray(i, i + (1 << 16)));
  const summary = dec.end();
  return { text, summary };
}

async function threads(n: number, file: Buffer, o: Options, chunk = 1 << 16): Promise<{ text: string; summary: CaptureSummary }> {
  const parts: Buffer[] = [];
  const dec = new ParallelCaptureReader({ threads: n, ...o }, (b) => parts.push(Buffer.from(b)));
  for (let i = 0; i < file.length; i += chunk) {
    dec.write(file.subarray(i, i + chunk));
    await dec.ready();
  }
  const summary = await dec.end();
  expect(dec.error).toBeNull();
  return { text: Buffer.concat(parts).toString(), summary };
}

/** Packets of many connections, interleaved, with the awkward cases (see the header). */
function mixedCapture(): Buffer {
  const flows: { ip: Buffer; time: number }[][] = [];
  const handshake: Seg[] = [{ from: 'c', syn: true, time: 1000 }, { from: 's', syn: true, time: 1000 }, { from: 'c', time: 1000 }];
  const get = (i: number) => crlf(`GET /item/${i} HTTP/1.1\nHost: api\nX-Request-Id: ${i}\n\n`);
  const ok = (i: number) => crlf(`HTTP/1.1 200 OK\nContent-Length: ${String(i).length}\n\n${i}`);
  // 120 keep-alive connections whose packets share timestamps (the same start time in many connections), four
  // exchanges each, 300 ms apart: releases happen between them (every 256 packets).
  for (let f = 0; f < 120; f++) {
    const segs: Seg[] = [{ from: 'c', syn: true, time: 999 }, { from: 's', syn: true, time: 999 }, { from: 'c', time: 999 }];
    for (let k = 0; k < 4; k++) segs.push({ from: 'c', data: get(f * 10 + k), time: 1000 + k * 300 }, { from: 's', data: ok(f * 10 + k), time: 1001 + k * 300 });
    segs.push({ from: 'c', fin: true, time: 2200 }, { from: 's', fin: true, time: 2200 });
    flows.push(tcpPackets(segs, { cip: `10.0.0.${f % 250}`, cport: 30000 + f, sip: '10.9.0.1', sport: 8080 }));
  }
  // A slow exchange (answered after 950 ms, within the timeout): it holds back the records of exchanges that
  // start after it, in whichever thread it is.
  flows.push(tcpPackets([{ from: 'c', syn: true, time: 999 }, { from: 's', syn: true, time: 999 }, { from: 'c', time: 999 },
    { from: 'c', data: get(4000), time: 1000.5 }, { from: 's', data: ok(4000), time: 1950 }], { cip: '10.0.0.251', cport: 30500, sip: '10.9.0.1', sport: 8080 }));
  // Requests never answered: timeout records once capture time passes them by a second; their connections then
  // go idle and are swept.
  for (let f = 0; f < 15; f++) {
    flows.push(tcpPackets([{ from: 'c', syn: true, time: 999 }, { from: 's', syn: true, time: 999 }, { from: 'c', time: 999 },
      { from: 'c', data: get(5000 + f), time: 1000.25 + f }], { cip: '10.0.1.1', cport: 31000 + f, sip: '10.9.0.2', sport: 80 }));
  }
  // Mid-stream: no SYN, the server's bytes first (roles judged from what each side says).
  for (let f = 0; f < 10; f++) {
    flows.push(tcpPackets([{ from: 's', data: ok(7000 + f), time: 1200 }, { from: 'c', data: get(7100 + f), time: 1500 }, { from: 's', data: ok(7100 + f), time: 3600 + f }],
      { cip: '10.0.2.1', cport: 32000 + f, sip: '10.9.0.3', sport: 9000 }));
  }
  // Time going backwards inside a connection, and a segment the capture lost (the peer acknowledges it).
  flows.push(tcpPackets([...handshake, { from: 'c', data: get(8000), time: 1500 }, { from: 's', data: ok(8000), time: 1100 },
    { from: 'c', data: get(8001), time: 1101 }], { cip: '10.0.3.1', cport: 33000, sip: '10.9.0.4', sport: 80 }));
  const lost = crlf('POST /lost HTTP/1.1\nContent-Length: 20\n\n' + 'x'.repeat(20));
  flows.push(tcpPackets([...handshake, { from: 'c', data: lost.subarray(0, 40), at: 0 },
    { from: 's', data: crlf('HTTP/1.1 201 Created\nContent-Length: 0\n\n') }, { from: 'c', data: get(8100), at: lost.length }],
  { cip: '10.0.3.2', cport: 33001, sip: '10.9.0.4', sport: 80 }));
  // Bytes no decoder claims, and a gRPC connection (a real client's and server's bytes).
  flows.push(tcpPackets([...handshake, { from: 'c', data: Buffer.from('\x00\x01binary nonsense\xff') }, { from: 's', data: Buffer.from('\x07\x07') }],
    { cip: '10.0.4.1', cport: 34000, sip: '10.9.0.5', sport: 7777 }));
  const h2c = readFileSync(join(__dirname, 'fixtures/h2-client.bin'));
  const h2s = readFileSync(join(__dirname, 'fixtures/h2-server.bin'));
  flows.push(tcpPackets([...handshake, { from: 'c', data: h2c }, { from: 's', data: h2s }, { from: 'c', fin: true }, { from: 's', fin: true }],
    { cip: '10.0.5.1', cport: 35000, sip: '10.9.0.6', sport: 50051 }));
  // Round-robin over the connections, each keeping its own timestamps (relative ones made absolute).
  const packets: { data: Buffer; time: number }[] = [];
  const at = (t: number) => (t < 1e12 ? 1_700_000_000_000 + t : t);
  for (let i = 0; flows.some((f) => i < f.length); i++) for (const f of flows) if (i < f.length) packets.push({ data: f[i].ip, time: at(f[i].time) });
  return pcapFile(101, packets);
}

describe('flowtap read with decoding threads', () => {
  const file = mixedCapture();

  it('gives what one thread gives, byte for byte, with the same summary, for 2 and 3 threads and both formats', async () => {
    for (const format of ['jsonl', 'table'] as const) {
      const o: Options = { format, timeout: 1000 };
      const one = oneThread(file, o);
      // The capture reaches what it was made for.
      if (format === 'jsonl') {
        const rs = one.text.trim().split('\n').map((l) => JSON.parse(l) as AnyRecord);
        expect(rs.filter((r) => r.status === 'timeout').length).toBeGreaterThan(10);
        expect(rs.some((r) => r.protocol === 'grpc')).toBe(true);
        const starts = rs.map((r) => r.startTime);
        expect(new Set(starts).size).toBeLessThan(starts.length / 10);
        expect(one.summary.undecoded).toBeGreaterThan(0);
      }
      for (const n of [2, 3]) {
        const many = await threads(n, file, o);
        expect(many.text).toBe(one.text);
        expect(many.summary).toEqual(one.summary);
      }
    }
  }, 30_000);

  it('the same when the file comes in pieces smaller than a packet', async () => {
    const o: Options = { format: 'jsonl', timeout: 1000 };
    expect((await threads(2, file, o, 1000)).text).toBe(oneThread(file, o).text);
  }, 30_000);

  it("an output callback that throws stops the read with the caller's error, not a decoding one", async () => {
    const dec = new ParallelCaptureReader({ threads: 2, format: 'jsonl' }, () => { throw new Error('disk full'); });
    dec.write(file);
    await dec.ready();
    await dec.end();
    expect(dec.error).toBe('the onOutput callback threw: disk full');
  });

  const conformance = join(__dirname, '../../shared/conformance');
  const captures = existsSync(conformance) ? readdirSync(conformance, { recursive: true }).map(String).filter((f) => /\.pcap(ng)?$/.test(f)) : [];
  it.skipIf(captures.length === 0)('the conformance captures: the same output (skipped without ../shared)', async () => {
    for (const f of captures) {
      const bytes = readFileSync(join(conformance, f));
      expect((await threads(2, bytes, { format: 'jsonl' })).text, f).toBe(oneThread(bytes, { format: 'jsonl' }).text);
    }
  }, 60_000);

  it('the CLI: --threads gives the same stdout and stderr; a bad value or plugins with threads are usage errors', () => {
    const dir = tempDir();
    const path = join(dir, 'mixed.pcap');
    writeFileSync(path, file);
    // Every option that reaches the decoders reaches the threads' (each changes the output here).
    const opts = ['--timeout', '1', '--body-capture', '1', '--trace-key', 'x-request-id', '--span-key', 'host', '--decode', '9000=http1', '--values'];
    const one = run('node', [cli, 'read', path, ...opts, '--threads', '1']);
    expect(one.status).toBe(0);
    expect(one.stdout).not.toBe(run('node', [cli, 'read', path, '--threads', '1']).stdout);
    expect(one.stdout).toMatch(/"traceId":"1192"/);
    const two = run('node', [cli, 'read', path, ...opts, '--threads', '2']);
    expect({ status: two.status, stdout: two.stdout, stderr: two.stderr }).toEqual({ status: 0, stdout: one.stdout, stderr: one.stderr });
    // A capture cut short inside a packet: the same records and the same warning.
    writeFileSync(path, file.subarray(0, file.length - 7));
    const cut1 = run('node', [cli, 'read', path, '--threads', '1']);
    const cut2 = run('node', [cli, 'read', path, '--threads', '2']);
    expect(cut1.stderr).toMatch(/warning/);
    expect(cut2).toEqual(cut1);
    // A record length no capture has, after good packets: the records before it, and the same error.
    const bogus = Buffer.alloc(16);
    bogus.writeUInt32LE(1 << 30, 8);
    writeFileSync(path, Buffer.concat([file, bogus, Buffer.alloc(64)]));
    const broken1 = run('node', [cli, 'read', path, '--threads', '1']);
    expect(broken1.status).toBe(2);
    expect(broken1.stdout.length).toBeGreaterThan(0);
    expect(broken1.stderr).toMatch(/not plausible/);
    expect(run('node', [cli, 'read', path, '--threads', '2'])).toEqual(broken1);
    // Not a capture: the same error.
    writeFileSync(path, 'not a capture at all, just text');
    const bad1 = run('node', [cli, 'read', path, '--threads', '1']);
    expect(bad1.status).toBe(2);
    expect(run('node', [cli, 'read', path, '--threads', '2'])).toEqual(bad1);
    for (const v of ['0', 'two', '65']) {
      const r = run('node', [cli, 'read', path, '--threads', v]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--threads/);
    }
    const plugin = join(dir, 'p.mjs');
    writeFileSync(plugin, 'export default { name: "p" };');
    const r = run('node', [cli, 'read', path, '--threads', '2', '--plugin', plugin]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--threads above 1 cannot be used with --plugin/);
  }, 30_000);
});
