/**
 * HTTPS (issue 14): real TLS traffic captured with tcpdump — Node https with TLS 1.3 and 1.2 and every AEAD
 * suite, curl with SSLKEYLOGFILE, a TLS 1.3 KeyUpdate from openssl s_client, Node http2 over TLS and grpc-js
 * over TLS — read with its key log and compared with what the clients saw and with tshark given the same
 * key log; the same capture with the secrets injected into pcapng; a wrong key log; and the TLS-terminating
 * tap proxy in front of a Node https upstream.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureDecoder } from '../src/capture/read.js';
import { KeyLog } from '../src/capture/tls/keylog.js';
import { TapProxy } from '../src/pipeline/tap-proxy.js';
import type { AnyRecord } from '../src/records/types.js';
import { captureSkipReason, freePort, have, run, runAsync, startCapture, tempDir } from './tools.js';

const skip = captureSkipReason(['curl', 'openssl', 'editcap']);
if (skip) console.log(`TLS capture tests skipped: ${skip}`);

const dir = tempDir();
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
const keys = join(dir, 'keys.log');
const pcap = join(dir, 'tls.pcap');
let seen: { kind: string; path: string; status: number; bodySize: number; version?: string; cipher?: string }[] = [];

function makeCert(): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
    '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2'], { stdio: 'ignore' });
}

beforeAll(async () => {
  if (skip) return;
  makeCert();
  const ports = [await freePort(), await freePort(), await freePort()];
  const cap = await startCapture('lo', pcap, ports.map((p) => `tcp port ${p}`).join(' or '));
  const r = await runAsync('node', [`--tls-keylog=${keys}`, '--import', 'tsx', join(__dirname, 'tls/peers.ts'), cert, key,
    ...ports.map(String), keys]);
  await cap.stop();
  if (r.status !== 0) throw new Error(`TLS peers failed: ${r.stderr}`);
  seen = JSON.parse(r.stdout.trim().split('\n').pop()!);
}, 60_000);

function read(file: string, keylog?: KeyLog | string): { records: AnyRecord[]; tls: { decrypted: number; noKeys: number; badKeys: number } } {
  const records: AnyRecord[] = [];
  const dec = new CaptureDecoder({ keylog }, (r) => records.push(r));
  dec.write(readFileSync(file));
  return { records, tls: dec.end().tls };
}

/** What a record says in the terms the clients used: kind of call, path with query, status, body size. */
function described(r: AnyRecord): { path: string; status: number | null; bodySize: number | null } {
  if (r.protocol === 'http1') return { path: r.request.target ?? '', status: r.code, bodySize: r.response?.bodySize ?? null };
  if (r.protocol === 'http2') return { path: r.request.path ?? '', status: r.code, bodySize: r.response?.bodySize ?? null };
  if (r.protocol === 'grpc') return { path: r.endpoint, status: r.code, bodySize: 0 };
  return { path: r.endpoint, status: r.code, bodySize: null };
}

describe.skipIf(skip !== null)('HTTPS from key logs, against the clients and tshark', () => {
  it('every exchange decrypts: the methods, paths, statuses and body sizes the clients saw, and the TLS that carried them', () => {
    expect(seen.map((s) => s.kind)).toEqual(expect.arrayContaining(['https', 'curl', 'keyupdate', 'h2', 'grpc']));
    const { records, tls } = read(pcap, keys);
    expect(tls).toEqual({ decrypted: expect.any(Number), noKeys: 0, badKeys: 0 });
    const got = records.map(described);
    for (const s of seen) expect(got).toContainEqual({ path: s.path, status: s.status, bodySize: s.bodySize });
    expect(records.length).toBe(seen.length);
    // The suites the clients negotiated are the ones the records name.
    for (const s of seen.filter((x) => x.cipher)) {
      const r = records.find((x) => described(x).path === s.path)!;
      expect(r.tls).toMatchObject({ version: s.version!.replace('TLSv', 'TLS '), cipher: s.cipher });
    }
    expect(records.filter((r) => r.protocol === 'grpc').map((r) => r.tls?.alpn)).toEqual(['h2', 'h2']);
    expect(records.find((r) => described(r).path === '/curl?size=1234')!.tls).toMatchObject({ sni: 'localhost', alpn: 'http/1.1' });
  });

  it('tshark with the same key log sees the same requests and statuses', () => {
    const t = run('tshark', ['-r', pcap, '-o', `tls.keylog_file:${keys}`, '-Y', 'http || http2.type == 1', '-T', 'fields', '-E', 'separator=|',
      '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'http.response.code', '-e', 'http2.headers.method', '-e', 'http2.headers.path']);
    const theirs = t.stdout.split('\n').filter(Boolean).map((l) => l.split('|')).filter((f) => f[0] || f[3]).map((f) => `${f[0] || f[3]} ${f[1] || f[4]}`);
    const codes = t.stdout.split('\n').map((l) => l.split('|')[2]).filter(Boolean).map(Number);
    const { records } = read(pcap, keys);
    const ours = records.map((r) => `${r.protocol === 'grpc' ? 'POST' : r.protocol === 'http1' || r.protocol === 'http2' ? r.request.method : ''} ${described(r).path}`);
    expect(ours.sort()).toEqual(theirs.sort());
    expect(records.filter((r) => r.protocol === 'http1').map((r) => r.code).sort()).toEqual(codes.sort());
  });

  it('a pcapng with the secrets injected (editcap --inject-secrets) decodes without a key log', () => {
    const dsb = join(dir, 'tls-dsb.pcapng');
    execFileSync('editcap', ['--inject-secrets', `tls,${keys}`, pcap, dsb], { stdio: 'ignore' });
    // pcapng keeps nanoseconds where pcap kept microseconds: times agree to the microsecond.
    const same = (rs: AnyRecord[]) => rs.map((r) => JSON.stringify({ ...r, startTime: r.startTime.toFixed(3),
      endTime: r.endTime?.toFixed(3), duration: null })).sort();
    const { records, tls } = read(dsb);
    expect(tls.decrypted).toBeGreaterThan(0);
    expect(same(records)).toEqual(same(read(pcap, keys).records));
  });

  it('a wrong key log gives handshake-only records and a warning, not garbage', () => {
    const wrong = join(dir, 'wrong.log');
    writeFileSync(wrong, readFileSync(keys, 'latin1').split('\n').filter(Boolean)
      .map((l) => { const [a, b, c] = l.split(' '); return `${a} ${b} ${'5a'.repeat(c.length / 2)}`; }).join('\n'));
    const { records, tls } = read(pcap, wrong);
    expect(tls.badKeys).toBeGreaterThan(0);
    expect(tls.decrypted).toBe(0);
    for (const r of records) {
      expect(r.status).toBe('parse_error');
      expect(r.error).toMatch(/^TLS \(TLS 1\.[23].*do not decrypt/);
      expect(r.tls?.version).toMatch(/^TLS 1\.[23]$/);
      expect(r.endpoint).toBe('');
    }
    const cli = run('node', [join(__dirname, '../dist/cli.js'), 'read', pcap, '--keylog', wrong]);
    expect(cli.status).toBe(0);
    expect(cli.stderr).toMatch(/did not decrypt with the key log's secrets/);
  });

  it('decoding threads (--threads 2) print what one thread does: with a key log, with the secrets in pcapng, with a wrong one', () => {
    const dsb = join(dir, 'tls-dsb-threads.pcapng');
    execFileSync('editcap', ['--inject-secrets', `tls,${keys}`, pcap, dsb], { stdio: 'ignore' });
    const wrong = join(dir, 'wrong-threads.log');
    writeFileSync(wrong, readFileSync(keys, 'latin1').replace(/ ([0-9a-f]+)$/gm, (_, s: string) => ` ${'5a'.repeat(s.length / 2)}`));
    for (const args of [[pcap, '--keylog', keys], [dsb], [pcap, '--keylog', wrong], [pcap]]) {
      const one = run('node', [join(__dirname, '../dist/cli.js'), 'read', ...args, '--threads', '1']);
      expect(one.status).toBe(0);
      expect(one.stdout.length).toBeGreaterThan(0);
      expect(run('node', [join(__dirname, '../dist/cli.js'), 'read', ...args, '--threads', '2']), args.join(' ')).toEqual(one);
    }
  });

  it('without a key log each TLS connection is one record of what its handshake shows', () => {
    const { records } = read(pcap);
    expect(records.every((r) => r.status === 'parse_error' && r.tls !== undefined)).toBe(true);
    expect(records.some((r) => r.tls?.sni === 'localhost')).toBe(true);
    expect(new Set(records.map((r) => r.connectionId)).size).toBe(records.length);
  });
});

describe.skipIf(!have('curl') || !have('openssl'))('the TLS-terminating tap proxy', () => {
  const closers: (() => unknown)[] = [];
  afterAll(async () => { for (const c of closers.reverse()) await c(); });

  it('curl --cacert through it to a Node https upstream: bodies byte-exact, records as in plaintext, with tls', async () => {
    if (!have('openssl')) return;
    makeCert();
    const pem = { cert: readFileSync(cert), key: readFileSync(key) };
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const upstream = https.createServer(pem, (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => { res.writeHead(req.url === '/missing' ? 404 : 200, { 'x-len': String(Buffer.concat(parts).length) }); res.end(payload); });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => upstream.close(r)));
    const port = (upstream.address() as AddressInfo).port;
    const through = async (proxy: TapProxy, scheme: string) => {
      const records: AnyRecord[] = [];
      proxy.on('record', (r) => records.push(r));
      const a = await proxy.listen();
      closers.push(() => proxy.close());
      const bodies: Buffer[] = [];
      for (const path of ['/a', '/missing']) {
        const out = join(dir, `body-${scheme}-${path.slice(1)}`);
        const r = await runAsync('curl', ['-s', '--cacert', cert, '-o', out, '-d', 'hello', `${scheme}://localhost:${a.port}${path}`]);
        expect(r.status).toBe(0);
        bodies.push(readFileSync(out));
      }
      await new Promise((r) => setTimeout(r, 100));
      return { records, bodies };
    };
    const secure = await through(new TapProxy({ listen: { port: 0 }, upstream: { host: 'localhost', port }, tls: pem, upstreamTls: { ca: pem.cert } }), 'https');
    // The same requests through a plain tap into the same upstream (re-encrypted there too): the reference.
    const plain = await through(new TapProxy({ listen: { port: 0 }, upstream: { host: 'localhost', port }, upstreamTls: { ca: pem.cert } }), 'http');
    for (const b of [...secure.bodies, ...plain.bodies]) expect(b.equals(payload)).toBe(true);
    const comparable = (r: AnyRecord) => {
      const { client: _c, connectionId: _i, startTime: _s, endTime: _e, duration: _d, tls: _t, ...rest } = r;
      // The Host names each proxy's own port, the Date each answer's second; the rest must be the same.
      if (rest.protocol === 'http1') {
        return { ...rest, request: { ...rest.request, host: null, headers: { ...rest.request.headers, host: null } },
          response: rest.response && { ...rest.response, headers: { ...rest.response.headers, date: null } } };
      }
      return rest;
    };
    expect(secure.records.map(comparable)).toEqual(plain.records.map(comparable));
    expect(secure.records.map((r) => [r.code, r.tls?.version, r.tls?.sni])).toEqual([[200, 'TLS 1.3', 'localhost'], [404, 'TLS 1.3', 'localhost']]);
  });

  it('--upstream-tls verifies the upstream: an untrusted certificate is an upstream error, --insecure lets it through', async () => {
    makeCert();
    const pem = { cert: readFileSync(cert), key: readFileSync(key) };
    const upstream = https.createServer(pem, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => upstream.close(r)));
    const port = (upstream.address() as AddressInfo).port;
    for (const [rejectUnauthorized, ok] of [[true, false], [false, true]] as const) {
      const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: 'localhost', port }, upstreamTls: { rejectUnauthorized } });
      const errors: string[] = [];
      proxy.on('upstreamError', (e) => errors.push(e.message));
      const a = await proxy.listen();
      closers.push(() => proxy.close());
      const r = await runAsync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${a.port}/`]);
      expect(r.stdout === '200').toBe(ok);
      expect(errors.length > 0).toBe(!ok);
      if (!ok) expect(errors[0]).toMatch(/self[- ]signed|certificate/i);
    }
  });
});
