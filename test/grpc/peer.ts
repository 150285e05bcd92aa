/**
 * A gRPC service and client on @grpc/grpc-js with raw protobuf bytes (a generic service, so no .proto is
 * needed): unary, server-, client- and bidi-streaming, errors, metadata, big and compressed messages.
 */
import * as grpc from '@grpc/grpc-js';

/** protobuf `{ 1: string }` — field 1, wire type 2. */
export function pbString(s: string): Buffer {
  const b = Buffer.from(s);
  const len: number[] = [];
  let n = b.length;
  do { len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>= 7; } while (n > 0);
  return Buffer.concat([Buffer.from([0x0a, ...len]), b]);
}

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/demo.Echo/${name}`, requestStream, responseStream,
  requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize,
});
export const EchoService = {
  Unary: method('Unary', false, false),
  Fail: method('Fail', false, false),
  Slow: method('Slow', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
};

export function startServer(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(EchoService as never, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      call.sendMetadata(new grpc.Metadata());
      cb(null, call.request);
    },
    Fail: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.NOT_FOUND, details: 'no such order ✓ 42' } as grpc.ServiceError),
    Slow: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => { setTimeout(() => cb(null, pbString('late')), 400); },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let i = 0; i < 5; i++) call.write(pbString(`item ${i}`));
      call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let n = 0;
      call.on('data', () => { n++; });
      call.on('end', () => cb(null, pbString(`got ${n}`)));
    },
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(m));
      call.on('end', () => call.end());
    },
  } as never);
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port })));
  });
}

export type Outcome = { path: string; code: number; messagesIn?: number; details?: string };

/** Every kind of call once (gzip on a second channel); resolves with what the client itself saw. */
export async function runCalls(port: number): Promise<Outcome[]> {
  const Client = grpc.makeGenericClientConstructor(EchoService as never, 'Echo');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
  const gz = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 }) as unknown as Record<string, Function> & grpc.Client;
  const out: Outcome[] = [];
  const unary = (cl: typeof c, name: string, msg: Buffer, opts: object = {}, md = new grpc.Metadata()) => new Promise<void>((resolve) => {
    cl[name](msg, md, opts, (err: grpc.ServiceError | null) => { out.push({ path: `/demo.Echo/${name}`, code: err ? err.code : 0, details: err?.details }); resolve(); });
  });
  const md = new grpc.Metadata();
  md.set('x-request-id', 'grpc-req-1');
  md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  await unary(c, 'Unary', pbString('hello'), {}, md);
  await unary(c, 'Unary', pbString('x'.repeat(40_000))); // bigger than one 16 KiB DATA frame
  await unary(gz, 'Unary', pbString('compressed '.repeat(200)));
  await unary(c, 'Fail', pbString('42'));
  await unary(c, 'Slow', pbString('deadline'), { deadline: Date.now() + 100 });
  await new Promise<void>((resolve) => {
    const s = c.ServerStream(pbString('go'));
    let n = 0;
    s.on('data', () => { n++; });
    s.on('status', (st: grpc.StatusObject) => { out.push({ path: '/demo.Echo/ServerStream', code: st.code, messagesIn: n }); resolve(); });
  });
  await new Promise<void>((resolve) => {
    const s = c.ClientStream((err: grpc.ServiceError | null) => { out.push({ path: '/demo.Echo/ClientStream', code: err ? err.code : 0 }); resolve(); });
    for (let i = 0; i < 4; i++) s.write(pbString(`part ${i}`));
    s.end();
  });
  await new Promise<void>((resolve) => {
    const s = c.Bidi();
    let n = 0;
    s.on('data', () => { n++; });
    s.on('status', (st: grpc.StatusObject) => { out.push({ path: '/demo.Echo/Bidi', code: st.code, messagesIn: n }); resolve(); });
    for (let i = 0; i < 3; i++) s.write(pbString(`ping ${i}`));
    s.end();
  });
  await new Promise<void>((resolve) => {
    const call = c.Slow(pbString('cancel me'), (err: grpc.ServiceError | null) => { out.push({ path: '/demo.Echo/Slow', code: err ? err.code : 0 }); resolve(); });
    setTimeout(() => call.cancel(), 50);
  });
  c.close();
  gz.close();
  return out;
}
