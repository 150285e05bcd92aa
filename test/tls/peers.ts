/**
 * TLS peers for test/tls.test.ts, run in a child process started with `node --tls-keylog=FILE`, so every
 * TLS session here (clients and servers) writes its secrets. HTTPS from Node with several suites and both
 * versions, a secure HTTP/2 server with a Node client, and grpc-js over TLS. Prints what the clients saw.
 *
 *   node --tls-keylog=KEYS --import tsx test/tls/peers.ts CERT KEY HTTPS_PORT H2_PORT GRPC_PORT
 *
 * curl (SSLKEYLOGFILE=KEYS) makes one more request while the servers are up, and `openssl s_client`
 * sends a TLS 1.3 KeyUpdate between two requests on one connection (its `k` command).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { EchoService, pbString } from '../grpc/peer.js';

const [certFile, keyFile, httpsPort, h2Port, grpcPort, keylog] = process.argv.slice(2);
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);
const seen: { kind: string; path: string; status: number; bodySize: number; version?: string; cipher?: string }[] = [];

const body = (n: number) => 'x'.repeat(n);
const hs = https.createServer({ cert, key }, (req, res) => {
  let n = 0;
  req.on('data', (d: Buffer) => { n += d.length; });
  req.on('end', () => {
    const size = Number(new URL(req.url!, 'https://x').searchParams.get('size') ?? 10);
    res.writeHead(req.url!.startsWith('/missing') ? 404 : 200, { 'content-type': 'text/plain', 'x-got': String(n) });
    res.end(body(size));
  });
});
const h2 = http2.createSecureServer({ cert, key }, (req, res) => {
  req.resume();
  req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ path: req.url, pad: body(3000) })); });
});

function get(path: string, opts: https.RequestOptions, method = 'GET', send = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const q = https.request({ host: '127.0.0.1', port: Number(httpsPort), path, method, ca: cert, agent: false, ...opts }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => { n += d.length; });
      res.on('end', () => {
        const s = res.socket as import('node:tls').TLSSocket;
        seen.push({ kind: 'https', path, status: res.statusCode!, bodySize: n, version: s.getProtocol?.() ?? undefined, cipher: s.getCipher?.()?.standardName });
        resolve();
      });
    });
    q.on('error', reject);
    q.end(send);
  });
}

/** Two requests on one TLS 1.3 connection with a KeyUpdate from the client between them. */
async function keyUpdate(): Promise<void> {
  const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-tls1_3', '-keylogfile', keylog, '-crlf'],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  c.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  c.stderr.on('data', (d: Buffer) => { out += d.toString('latin1'); }); // s_client says KEYUPDATE here
  const say = (text: string, ms: number) => new Promise<void>((r) => setTimeout(() => { c.stdin.write(text); r(); }, ms));
  await say('GET /ku/one?size=7 HTTP/1.1\nHost: x\n\n', 600);
  await say('k\n', 300);
  await say('GET /ku/two?size=9 HTTP/1.1\nHost: x\n\n', 300);
  await new Promise((r) => setTimeout(r, 400));
  c.kill();
  if (out.includes('KEYUPDATE')) {
    for (const [path, size] of [['/ku/one?size=7', 7], ['/ku/two?size=9', 9]] as const) seen.push({ kind: 'keyupdate', path, status: 200, bodySize: size });
  }
}

async function main(): Promise<void> {
  await new Promise<void>((r) => hs.listen(Number(httpsPort), '127.0.0.1', r));
  await new Promise<void>((r) => h2.listen(Number(h2Port), '127.0.0.1', r));
  const server = new grpc.Server();
  server.addService(EchoService as never, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
    Fail: (_c: unknown, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such order' } as grpc.ServiceError),
  } as never);
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${grpcPort}`,
    grpc.ServerCredentials.createSsl(null, [{ private_key: key, cert_chain: cert }]), (e) => (e ? reject(e) : resolve())));

  // TLS 1.3 with each suite, TLS 1.2 with AES-GCM (128, 256) and ChaCha20-Poly1305.
  await get('/a?size=100', {});
  await get('/b?size=70000', { ciphers: 'TLS_AES_128_GCM_SHA256' });
  await get('/c?size=5', { ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }, 'POST', body(2000));
  await get('/d?size=300', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
  await get('/e?size=40000', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
  await get('/missing?size=3', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' });

  // Asynchronously: the server answering it lives on this event loop.
  const { stdout } = await promisify(execFile)('curl', ['-s', '--cacert', certFile, '-w', '%{http_code} %{size_download}', '-o', '/dev/null',
    `https://localhost:${httpsPort}/curl?size=1234`], { env: { ...process.env, SSLKEYLOGFILE: keylog } });
  const out = stdout.split(' ');
  seen.push({ kind: 'curl', path: '/curl?size=1234', status: Number(out[0]), bodySize: Number(out[1]) });

  await keyUpdate();

  const c = http2.connect(`https://localhost:${h2Port}`, { ca: cert });
  for (const path of ['/h2/one', '/h2/two?x=1']) {
    await new Promise<void>((resolve) => {
      const q = c.request({ ':method': 'POST', ':path': path });
      let status = 0;
      let n = 0;
      q.on('response', (h) => { status = Number(h[':status']); });
      q.on('data', (d: Buffer) => { n += d.length; });
      q.on('end', () => { seen.push({ kind: 'h2', path, status, bodySize: n }); resolve(); });
      q.end('payload');
    });
  }
  c.close();

  const Client = grpc.makeGenericClientConstructor(EchoService as never, 'Echo');
  const g = new Client(`localhost:${grpcPort}`, grpc.credentials.createSsl(cert)) as unknown as Record<string, Function> & grpc.Client;
  for (const name of ['Unary', 'Fail']) {
    await new Promise<void>((resolve) => {
      g[name](pbString('hello'), new grpc.Metadata(), {}, (err: grpc.ServiceError | null) => {
        seen.push({ kind: 'grpc', path: `/demo.Echo/${name}`, status: err ? err.code : 0, bodySize: 0 });
        resolve();
      });
    });
  }
  g.close();
  await new Promise((r) => setTimeout(r, 200));
  server.forceShutdown();
  hs.close();
  h2.close();
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e?.stack ?? e) + '\n'); process.exit(1); });
