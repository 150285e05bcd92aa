/**
 * gRPC from @grpc/grpc-js client and server: every call kind captured by tcpdump, read by `flowtap read`,
 * checked against what the client saw and against tshark's HTTP/2 + gRPC dissection.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProtoRegistry, type GrpcRecord } from '../src/index.js';
import { protobufDump } from '../src/codecs/index.js';
import { runCalls, startServer, type Outcome } from './grpc/peer.js';
import { captureSkipReason, run, startCapture, tempDir } from './tools.js';

const skip = captureSkipReason();
if (skip) console.warn(`gRPC real-peer tests skipped: ${skip}`);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

describe.skipIf(skip !== null)('gRPC with @grpc/grpc-js', () => {
  const pcap = join(tempDir(), 'grpc.pcap');
  let port = 0;
  let seen: Outcome[] = [];
  let records: GrpcRecord[] = [];

  beforeAll(async () => {
    const s = await startServer();
    port = s.port;
    const cap = await startCapture('lo', pcap, `tcp port ${port}`);
    seen = await runCalls(port);
    await new Promise((r) => setTimeout(r, 500)); // let the slow handler finish after its caller gave up
    await cap.stop();
    s.server.forceShutdown();
    const out = run('node', [CLI, 'read', pcap]);
    expect(out.status, out.stderr).toBe(0);
    records = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }, 60_000);

  it('one grpc record per call, with the status code the client saw (deadline and cancel included)', () => {
    expect(records.every((r) => r.protocol === 'grpc')).toBe(true);
    expect(records.map((r) => `${r.endpoint} ${r.code}`).sort()).toEqual(seen.map((o) => `${o.path} ${o.code}`).sort());
    const fail = records.find((r) => r.endpoint === '/demo.Echo/Fail')!;
    expect(fail).toMatchObject({ status: 'client_error', code: 5, error: 'no such order ✓ 42',
      request: { service: 'demo.Echo', method: 'Fail' }, response: { grpcStatus: 5, grpcMessage: 'no such order ✓ 42', messages: 0 } });
    const slow = records.filter((r) => r.endpoint === '/demo.Echo/Slow').sort((a, b) => (a.code ?? 0) - (b.code ?? 0));
    expect(slow.map((r) => [r.code, r.status])).toEqual([[1, 'client_error'], [4, 'server_error']]);
    expect(slow[1].request.timeout).toBeGreaterThan(0);
  });

  it('message counts each way for unary, server-, client- and bidi-streaming; first messages decoded schema-less', () => {
    const by = (path: string) => records.filter((r) => r.endpoint === path);
    expect(by('/demo.Echo/ServerStream')[0]).toMatchObject({ request: { messages: 1 }, response: { messages: 5, message: { 1: 'item 0' } } });
    expect(by('/demo.Echo/ClientStream')[0]).toMatchObject({ request: { messages: 4, message: { 1: 'part 0' } }, response: { messages: 1, message: { 1: 'got 4' } } });
    expect(by('/demo.Echo/Bidi')[0]).toMatchObject({ request: { messages: 3 }, response: { messages: 3 } });
    const unary = by('/demo.Echo/Unary');
    expect(unary.map((r) => (r.request.message as { 1: string })[1].slice(0, 12)).sort()).toEqual(['compressed c', 'hello', 'xxxxxxxxxxxx']);
    expect(unary.find((r) => r.request.metadata['grpc-encoding'] === 'gzip')).toBeDefined(); // the compressed one
    const first = unary.find((r) => r.xRequestId === 'grpc-req-1')!;
    expect(first).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' });
    expect(unary.find((r) => r.requestSize > 40_000)!.response!.messages).toBe(1); // a 40 KB message across DATA frames
  });

  it('paths and the number of gRPC messages agree with tshark', () => {
    const t = run('tshark', ['-r', pcap, '-d', `tcp.port==${port},http2`, '-Y', 'http2.type == 1', '-T', 'fields', '-E', 'aggregator=;', '-e', 'http2.headers.path']);
    const paths = t.stdout.split(/[\n;]/).filter((x) => x.trim() !== '');
    expect(records.map((r) => r.request.path).sort()).toEqual(paths.sort());
    const m = run('tshark', ['-r', pcap, '-d', `tcp.port==${port},http2`, '-Y', 'grpc', '-T', 'fields', '-E', 'aggregator=;', '-e', 'grpc.message_length']);
    const tsharkMessages = m.stdout.split(/[\n;]/).filter((x) => x.trim() !== '').length;
    const ours = records.reduce((n, r) => n + r.request.messages + (r.response?.messages ?? 0), 0);
    expect(ours).toBe(tsharkMessages);
  });

  it('with --proto-dir the messages decode with their schema', () => {
    const out = run('node', [CLI, 'read', pcap, '--proto-dir', new URL('./grpc/', import.meta.url).pathname]);
    expect(out.status, out.stderr).toBe(0);
    const typed: GrpcRecord[] = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const server = typed.find((r) => r.endpoint === '/demo.Echo/ServerStream')!;
    expect(server.request.message).toEqual({ text: 'go' });
    expect(server.response!.message).toEqual({ text: 'item 0' });
    expect(typed.find((r) => r.endpoint === '/demo.Echo/ClientStream')!.response!.message).toEqual({ text: 'got 4' });
    // Decoding threads load the same schemas and print the same.
    const threads = run('node', [CLI, 'read', pcap, '--proto-dir', new URL('./grpc/', import.meta.url).pathname, '--threads', '2']);
    expect(threads).toEqual(out);
  });
});

describe('protobuf schemas', () => {
  const pipy = new URL('../../shared/conformance/pipy/', import.meta.url).pathname;
  it.skipIf(!existsSync(join(pipy, 'addressbook.bin')))("Pipy's addressbook.bin decodes with addressbook.proto to the right tutorial.AddressBook", () => {
    const reg = ProtoRegistry.load(pipy);
    const book = reg.decodeType('tutorial.AddressBook', readFileSync(join(pipy, 'addressbook.bin'))) as { people: Record<string, unknown>[] };
    expect(book.people[0]).toEqual({ name: 'Pipy', id: 12345678, email: 'pipy@flomesh.io',
      phones: [{ number: '86-21-88888888', type: 'WORK' }, { number: '86-21-66666666', type: 'HOME' }] });
    expect(book.people[1]).toMatchObject({ name: 'Pajama Coder', id: 87654321, email: 'pajamacoder@flomesh.io' });
    // Without the schema the same bytes still dump, field by number.
    const dumped = protobufDump(readFileSync(join(pipy, 'addressbook.bin'))) as Record<string, Record<string, unknown>[]>;
    expect(dumped['1'][0]).toMatchObject({ 1: 'Pipy', 2: 12345678, 3: 'pipy@flomesh.io' });
  });

  it('a missing or broken proto directory is one clear line and exit 2', () => {
    const missing = run('node', [CLI, 'read', '/dev/null', '--proto-dir', '/no/such/dir']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe('flowtap: cannot read the proto directory /no/such/dir: ENOENT\n');
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.proto'), 'syntax = "proto3"; message { nope');
    const bad = run('node', [CLI, 'read', '/dev/null', '--proto-dir', dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^flowtap: cannot load the \.proto files under .*\n$/);
  });
});
