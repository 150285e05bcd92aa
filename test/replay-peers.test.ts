/** Replay of HTTP/2, gRPC and Dubbo recordings to real servers: Node http2, @grpc/grpc-js, the Java provider. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { wireOf, type GrpcRecord, type Http2Record } from '../src/index.js';
import { Replayer, readRecordings, type Payload } from '../src/replay/index.js';
import { runCalls, startServer } from './grpc/peer.js';
import { recordThrough } from './taps.js';
import { cleanups, have, runAsync, tempDir } from './tools.js';

const { closers } = cleanups(afterEach);

async function payloads(file: string): Promise<Payload[]> {
  const out: Payload[] = [];
  for await (const p of readRecordings([file])) out.push(p);
  return out;
}

describe('HTTP/2 replay to a Node http2 server (h2c, prior knowledge)', () => {
  it('every recorded request arrives once: method, path, headers, body and trailers as recorded', async () => {
    type Got = { method: string; path: string; body: string; headers: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders };
    const serve = async (tag: string) => {
      const got: Got[] = [];
      const server = http2.createServer();
      server.on('stream', (stream, headers) => {
        const parts: Buffer[] = [];
        stream.on('data', (d: Buffer) => parts.push(d));
        stream.on('end', () => {
          got.push({ method: String(headers[':method']), path: String(headers[':path']), body: Buffer.concat(parts).toString(), headers, trailers: (stream as unknown as { trailers?: http2.IncomingHttpHeaders }).trailers });
          stream.respond({ ':status': headers[':path'] === '/missing' ? 404 : 200, 'x-server': tag });
          stream.end(`${tag} ${headers[':path']}`);
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      closers.push(() => new Promise<void>((r) => server.close(() => r())));
      return { got, port: (server.address() as { port: number }).port };
    };
    const a = await serve('A');
    const dir = tempDir();
    const file = join(dir, 'h2.ftr');
    await recordThrough(file, a.port, async (port) => {
      const c = http2.connect(`http://127.0.0.1:${port}`);
      const call = (headers: http2.OutgoingHttpHeaders, body?: string) => new Promise<void>((resolve) => {
        const s = c.request(headers);
        s.on('response', () => {});
        s.resume();
        s.on('end', () => resolve());
        s.end(body);
      });
      await call({ ':path': '/a?q=1', 'x-custom': 'kept' });
      await call({ ':method': 'POST', ':path': '/form', 'content-type': 'text/plain' }, 'x'.repeat(40_000));
      await call({ ':path': '/missing' });
      c.close();
    });
    const b = await serve('B');
    const records: Http2Record[] = [];
    const s = await new Replayer({ target: `http://127.0.0.1:${b.port}`, speed: 'max', selection: { allowSideEffects: true } })
      .on('record', (r) => records.push(r as Http2Record)).run([file]);
    expect(s).toMatchObject({ requests: 3, sent: 3, answered: 3, failed: 0, byCode: { '2xx': 2, '4xx': 1 } });
    const strip = (g: Got) => ({ method: g.method, path: g.path, body: g.body, custom: g.headers['x-custom'], type: g.headers['content-type'] });
    expect(b.got.map(strip).sort((x, y) => x.path.localeCompare(y.path))).toEqual(a.got.map(strip).sort((x, y) => x.path.localeCompare(y.path)));
    expect(records.map((r) => [r.protocol, r.endpoint, r.code, r.response?.headers['x-server']]).sort()).toEqual([
      ['http2', '/a', 200, 'B'], ['http2', '/form', 200, 'B'], ['http2', '/missing', 404, 'B']]);
  });
});

describe('gRPC replay to a @grpc/grpc-js server', () => {
  it('every call kind arrives once and the grpc-status the server gives is the one recorded', async () => {
    const a = await startServer();
    closers.push(() => { a.server.forceShutdown(); });
    const dir = tempDir();
    const file = join(dir, 'grpc.ftr');
    const { recorder } = await recordThrough(file, a.port, (port) => runCalls(port));
    expect(recorder.stats.unrecordable).toBe(0);
    const recorded = await payloads(file);
    const status = (p: Payload) => {
      const all = [...(p.http2!.trailers ?? []), ...p.http2!.headers];
      const v = all.find(([k]) => k === 'grpc-status')?.[1];
      return v === undefined ? null : Number(v);
    };
    const originalStatus = new Map(recorded.filter((p) => p.type === 2).map((p) => [p.id, status(p)]));
    const paths = new Map(recorded.filter((p) => p.type === 1).map((p) => [p.id, p.http2!.headers.find(([k]) => k === ':path')![1]]));
    expect(paths.size).toBe(9);

    const b = await startServer();
    closers.push(() => { b.server.forceShutdown(); });
    const replayed = new Map<string, GrpcRecord>();
    const r = new Replayer({ target: `http://127.0.0.1:${b.port}`, speed: 'max', selection: { allowSideEffects: true } });
    r.on('record', (rec, id) => replayed.set(id, rec as GrpcRecord));
    const s = await r.run([file]);
    expect(s).toMatchObject({ requests: 9, sent: 9, failed: 0 });
    expect([...replayed.values()].every((x) => x.protocol === 'grpc')).toBe(true);
    let compared = 0;
    for (const [id, original] of originalStatus) {
      if (original === null) continue; // the client cancelled before the server answered: nothing to compare
      expect([paths.get(id), replayed.get(id)?.response?.grpcStatus]).toEqual([paths.get(id), original]);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(7);
    // The streams' messages went through whole: the echo of 3 bidi pings and 4 client-stream parts.
    const byPath = (p: string) => [...replayed.entries()].filter(([id]) => paths.get(id) === p).map(([, x]) => x);
    expect(byPath('/demo.Echo/Bidi')[0].response?.messages).toBe(3);
    expect(byPath('/demo.Echo/ClientStream')[0].request.messages).toBe(4);
    expect(byPath('/demo.Echo/ServerStream')[0].response?.messages).toBe(5);
    // The recorded deadline (grpc-timeout) went with the request: the server enforced it again.
    expect(byPath('/demo.Echo/Slow').map((x) => x.code).sort()).toEqual([0, 4]);
  });
});

const HESSIAN_JAR = '/usr/share/java/hessian.jar';
const javaSkip = !have('javac') || !have('java') ? 'no JDK' : !existsSync(HESSIAN_JAR) ? 'no Caucho Hessian (libhessian-java)' : null;
const OPENS = ['java.lang', 'java.util', 'java.math', 'java.util.concurrent'].flatMap((p) => ['--add-opens', `java.base/${p}=ALL-UNNAMED`]);

describe.skipIf(javaSkip !== null)(`Dubbo replay to the Java provider${javaSkip ? ` (skipped: ${javaSkip})` : ''}`, () => {
  it('new ids per connection, answers paired by id, values equal to the recorded ones', async () => {
    const dir = tempDir();
    const cp = `${HESSIAN_JAR}:${dir}`;
    const c = spawnSync('javac', ['-cp', HESSIAN_JAR, '-d', dir, new URL('./java/DubboPeer.java', import.meta.url).pathname], { encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    const start = async () => {
      const p: ChildProcess = spawn('java', [...OPENS, '-cp', cp, 'DubboPeer', 'provider', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
      closers.push(() => { p.kill(); });
      return new Promise<number>((resolve, reject) => {
        p.stdout!.once('data', (d) => resolve(Number(/listening (\d+)/.exec(String(d))![1])));
        p.once('exit', (code) => reject(new Error(`provider exited ${code}`)));
      });
    };
    const first = await start();
    const file = join(dir, 'dubbo.ftr');
    await recordThrough(file, first, async (port) => {
      const r = await runAsync('java', [...OPENS, '-cp', cp, 'DubboPeer', 'consumer', String(port)]);
      expect(r.status, r.stderr).toBe(0);
    });
    const recorded = await payloads(file);
    const answers = new Map(recorded.filter((p) => p.type === 2).map((p) => [p.id, p.raw!]));
    const second = await start();
    const replayed = new Map<string, Buffer>();
    const codes: number[] = [];
    const r = new Replayer({ target: `http://127.0.0.1:${second}`, speed: 'max', workers: 2, selection: { allowSideEffects: true } });
    r.on('record', (rec, id) => {
      codes.push(rec.code ?? -1);
      const w = wireOf(rec);
      if (w && w.response) replayed.set(id, w.response as Buffer);
    });
    const s = await r.run([file]);
    const twoWay = recorded.filter((p) => p.type === 1 && (p.raw![2] & 0x40) !== 0).length;
    expect(s.sent).toBe(recorded.filter((p) => p.type === 1).length);
    expect(s.answered).toBe(twoWay);
    let compared = 0;
    for (const [id, original] of answers) {
      const again = replayed.get(id);
      if (!again) continue;
      // Same status byte, same body: only the request id in the header differs.
      expect(again[3]).toBe(original[3]);
      expect(again.subarray(16).equals(original.subarray(16))).toBe(true);
      compared++;
    }
    expect(compared).toBe(answers.size);
    expect(codes).toContain(60); // the provider's "service not found" came back as recorded
  });
});
