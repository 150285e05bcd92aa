/**
 * TLS: the same keep-alive HTTP/1 traffic (Node https and http, one connection each, 2000 requests),
 * recorded as the bytes each side sent, decoded into records from the plaintext and from the TLS 1.3
 * stream with its key log (decryption + decoding). Needs openssl for the test certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Conversation, KeyLog, tlsProtocol } from '../dist/index.js';
import { compare, ratio, type BenchResult } from './measure.js';

type Chunks = { side: 'client' | 'server'; chunk: Buffer }[];
const N = 2000;

/** A relay that keeps every chunk each side sent. */
async function relay(port: number): Promise<{ port: number; chunks: Chunks; close: () => void }> {
  const chunks: Chunks = [];
  const s = net.createServer((c) => {
    const u = net.connect(port, '127.0.0.1');
    c.on('data', (d) => { chunks.push({ side: 'client', chunk: d }); u.write(d); });
    u.on('data', (d) => { chunks.push({ side: 'server', chunk: d }); c.write(d); });
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { port: (s.address() as AddressInfo).port, chunks, close: () => s.close() };
}

async function traffic(secure: boolean, pem: { cert: Buffer; key: Buffer }): Promise<{ chunks: Chunks; keylog: string }> {
  const body = JSON.stringify({ id: 12345, name: 'widget', tags: ['a', 'b', 'c'], price: 9.99 });
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(body); });
  };
  const server = secure ? https.createServer(pem, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const r = await relay((server.address() as AddressInfo).port);
  let keylog = '';
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1, ca: pem.cert }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  agent.on('keylog', (line: Buffer) => { keylog += line.toString('latin1'); });
  const get = secure ? https.get : http.get;
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve) => get({ host: '127.0.0.1', port: r.port, path: `/v1/items/${i}`, agent,
      headers: { 'x-request-id': `req-${i}` } }, (res) => { res.resume(); res.on('end', resolve); }));
  }
  agent.destroy();
  await new Promise((x) => setTimeout(x, 100));
  r.close();
  server.close();
  return { chunks: r.chunks, keylog };
}

export async function benchTls(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-bench-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
  } catch {
    throw new Error('needs openssl (for the test certificate)');
  }
  const pem = { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  const plain = await traffic(false, pem);
  const tls = await traffic(true, pem);
  const keylog = new KeyLog().add(tls.keylog);
  const bytes = (c: Chunks) => c.reduce((n, x) => n + x.chunk.length, 0);
  const run = (chunks: Chunks, protocols?: ReturnType<typeof tlsProtocol>[]) => () => {
    let n = 0;
    const c = new Conversation({
      client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 443 }, connectionId: '1',
      protocol: protocols ? 'auto' : 'http1', protocols, onRecord: () => { n++; },
    });
    let t = 1_700_000_000_000;
    for (const { side, chunk } of chunks) c.write(side, chunk, t++);
    c.close(t);
    if (n !== N) throw new Error(`${n} records, expected ${N}`);
  };
  const [plaintext, decrypted] = compare([
    { name: 'plaintext HTTP/1 records', fn: run(plain.chunks) },
    { name: 'TLS 1.3 decrypted HTTP/1 records', fn: run(tls.chunks, [tlsProtocol(keylog, { decrypted: 0, noKeys: 0, badKeys: 0 })]) },
  ], N, (bytes(plain.chunks) + bytes(tls.chunks)) / 2);
  return {
    name: 'tls',
    unit: `records/s, ${N} keep-alive exchanges on one connection, median of 15 interleaved rounds`,
    results: [plaintext, decrypted],
    ratios: { 'decrypted/plaintext': ratio(decrypted, plaintext) },
    targets: {},
  };
}
