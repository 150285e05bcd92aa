/** DeepFlow's HTTP/2 and gRPC captures (all joined mid-connection): flowtap agrees with what DeepFlow decoded. */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CaptureDecoder, type ExchangeRecord } from '../src/index.js';

const dir = new URL('../../shared/conformance/deepflow/', import.meta.url).pathname;
const have = existsSync(`${dir}grpc-unary.pcap`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function read(name: string): any[] {
  const out: ExchangeRecord[] = [];
  const d = new CaptureDecoder({}, (r) => out.push(r));
  d.write(readFileSync(`${dir}${name}.pcap`));
  d.end();
  return out;
}

/** Values DeepFlow extracted for a field, from its Rust Debug lines. */
function deepflow(name: string, field: string): string[] {
  const text = readFileSync(`${dir}${name}.result`, 'utf8');
  return [...text.matchAll(new RegExp(`(?<![a-z_])${field}: (Some\\((?:"[^"]*"|\\d+)\\)|"[^"]*"|[A-Za-z]+)`, 'g'))].map((m) => m[1]).filter((v) => v !== 'None');
}

describe.skipIf(!have)('DeepFlow HTTP/2 and gRPC captures, detected from the bytes with no port hints', () => {
  it('grpc-unary: /agent.Synchronizer/Sync on stream 1, :status 200; the capture holds no trailers', () => {
    const [r] = read('grpc-unary');
    // No grpc-status was seen: code is null (never the HTTP status; DeepFlow's status_code 200 is httpStatus).
    expect(r).toMatchObject({ protocol: 'grpc', streamId: 1, endpoint: '/agent.Synchronizer/Sync', code: null, status: 'timeout',
      error: 'the connection (or capture) ended before the stream did',
      request: { service: 'agent.Synchronizer', method: 'Sync' }, response: { httpStatus: 200, grpcStatus: null } });
    expect(deepflow('grpc-unary', 'path')).toContain('"/agent.Synchronizer/Sync"');
    expect(deepflow('grpc-unary', 'status_code')).toEqual(['Some(200)']);
    expect(deepflow('grpc-unary', 'stream_id').every((v) => v === 'Some(1)')).toBe(true);
  });

  it('grpc-server-stream: the server-streaming call, grpc-status 0, messages counted', () => {
    const [r] = read('grpc-server-stream');
    expect(deepflow('grpc-server-stream', 'grpc_status_code')).toEqual(['Some(0)']);
    expect(`"${r.endpoint}"`).toBe(deepflow('grpc-server-stream', 'path').find((p) => p !== '""'));
    expect(r).toMatchObject({ protocol: 'grpc', code: 0, status: 'ok', streamId: 1, response: { httpStatus: 200, grpcStatus: 0 } });
    expect(r.response.messages).toBeGreaterThan(1);
  });

  it('http2-multi: both POSTs on streams 18131981/18131983 with :status 200; unknowable fields are null, not guessed', () => {
    const rs = read('http2-multi').sort((a, b) => a.streamId - b.streamId);
    expect(rs.map((r) => [r.streamId, r.request.method, r.code, r.hpackIncomplete])).toEqual([[18131981, 'POST', 200, true], [18131983, 'POST', 200, true]]);
    expect([...new Set(deepflow('http2-multi', 'stream_id'))].sort()).toEqual(['Some(18131981)', 'Some(18131983)']);
    expect(deepflow('http2-multi', 'method').filter((m) => m !== '')).toEqual(['Post', 'Post']);
    for (const r of rs) expect(r.request.path).toBeNull(); // DeepFlow and tshark could not decode it either
  });
});
