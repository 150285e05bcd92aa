/**
 * gRPC records/s: a real @grpc/grpc-js connection (unary calls with metadata, server streams) is recorded
 * once through a byte-recording TCP relay, then replayed through flowtap's HTTP/2 + gRPC session, with and
 * without protobuf schemas. No peer decodes gRPC into records, so these are flowtap's own figures.
 */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Conversation } from '../src/pipeline/conversation.js';
import { ProtoRegistry } from '../src/codecs/grpc/schemas.js';
import { EchoService, pbString, startServer } from '../test/grpc/peer.js';
import { compare, ratio, type BenchResult } from './measure.js';

type Chunk = { side: 'client' | 'server'; chunk: Buffer; time: number };

/** Relay one connection to the upstream, keeping every chunk each way in order. */
async function recordingRelay(upstreamPort: number): Promise<{ port: number; chunks: Chunk[]; close(): void }> {
  const chunks: Chunk[] = [];
  const server = net.createServer((c) => {
    const u = net.connect(upstreamPort, '127.0.0.1');
    c.on('data', (d) => { chunks.push({ side: 'client', chunk: d, time: performance.now() }); u.write(d); });
    u.on('data', (d) => { chunks.push({ side: 'server', chunk: d, time: performance.now() }); c.write(d); });
    c.on('close', () => u.destroy());
    u.on('close', () => c.destroy());
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, chunks, close: () => server.close() };
}



async function recordTraffic(unary: number, streams: number): Promise<Chunk[]> {
  const { server, port } = await startServer();
  const relay = await recordingRelay(port);
  const Client = grpc.makeGenericClientConstructor(EchoService as never, 'Echo');
  const c = new Client(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
  const call = (i: number) => new Promise<void>((resolve, reject) => {
    const md = new grpc.Metadata();
    md.set('x-request-id', `req-${i}`);
    md.set('traceparent', `00-4bf92f3577b34da6a3ce929d0e0e${String(i % 10000).padStart(4, '0')}-00f067aa0ba902b7-01`);
    c.Unary(pbString(`order ${i} ${'x'.repeat(i % 200)}`), md, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  for (let i = 0; i < unary; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => call(i + k)));
  for (let i = 0; i < streams; i++) {
    await new Promise<void>((resolve) => {
      const s = c.ServerStream(pbString('watch'));
      s.on('data', () => {});
      s.on('end', () => resolve());
    });
  }
  c.close();
  await new Promise((r) => setTimeout(r, 100));
  relay.close();
  server.forceShutdown();
  return relay.chunks;
}

export async function benchGrpc(): Promise<BenchResult> {
  const UNARY = 2000;
  const STREAMS = 100;
  const chunks = await recordTraffic(UNARY, STREAMS);
  const bytes = chunks.reduce((n, c) => n + c.chunk.length, 0);
  const protos = ProtoRegistry.load(new URL('../test/grpc/', import.meta.url).pathname);
  // Several connections per pass: a pass long enough that one garbage collection does not decide it.
  const CONNECTIONS = 5;
  const replay = (withSchemas: boolean) => () => {
    let records = 0;
    for (let k = 0; k < CONNECTIONS; k++) {
      const conv = new Conversation({
        client: { ip: '127.0.0.1', port: 40000 + k }, server: { ip: '127.0.0.1', port: 50051 }, connectionId: String(k),
        protocol: 'http2', protos: withSchemas ? protos : undefined,
        onRecord: (r) => { if (r.protocol === 'grpc' && r.status === 'ok') records++; },
      });
      for (const c of chunks) conv.write(c.side, c.chunk, c.time);
      conv.close(chunks[chunks.length - 1].time);
    }
    if (records !== CONNECTIONS * (UNARY + STREAMS)) throw new Error(`${records} gRPC records, expected ${CONNECTIONS * (UNARY + STREAMS)}`);
  };
  const results = compare([
    { name: 'flowtap gRPC records (schema-less dump)', fn: replay(false) },
    { name: 'flowtap gRPC records (decoded with .proto)', fn: replay(true) },
  ], CONNECTIONS * (UNARY + STREAMS), CONNECTIONS * bytes);
  return {
    name: 'grpc',
    unit: `gRPC records/s replaying a recorded grpc-js connection (${UNARY} unary + ${STREAMS} server streams, ${(bytes / 1e6).toFixed(1)} MB) ${CONNECTIONS}× per round, median of 15 rounds`,
    results,
    ratios: { 'with schemas / schema-less': ratio(results[1], results[0]), 'schema-less records/s': results[0].opsPerSec },
    targets: { 'schema-less records/s': 100_000 },
  };
}
