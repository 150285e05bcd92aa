import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Conversation, dubboDecoder, encodeHeartbeat, encodeRequest, encodeResponse,
  javaException, type DubboMessage, type DubboRecord, type ExchangeRecord,
} from '../src/index.js';
import { countParameters, decodeDubboValues, Hessian2Reader } from '../src/codecs/index.js';
import { cutAt, everySplit, randomSplits } from './helpers.js';

const PIPY = new URL('../../shared/conformance/pipy/dubbo-stream.bin', import.meta.url).pathname;

function frames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length;) {
    const len = buf.readUInt32BE(i + 12);
    out.push(buf.subarray(i, i + 16 + len));
    i += 16 + len;
  }
  return out;
}

function decodeAll(chunks: Buffer[], opts: { decodeValues?: boolean; maxBodySize?: number } = {}) {
  const msgs: DubboMessage[] = [];
  const errors: string[] = [];
  const d = dubboDecoder({ ...opts, onMessage: (m) => msgs.push(m), onError: (e) => errors.push(e.code) });
  chunks.forEach((c, i) => d.write(c, i));
  d.end(chunks.length);
  return { msgs, errors };
}

/** Every value of a body read with flowtap's own Hessian reader (as hessian.js would read them). */
function readerValues(m: DubboMessage, body: Buffer): unknown {
  const r = new Hessian2Reader(body);
  if (m.type === 'request') {
    for (let i = 0; i < 4; i++) r.readString();
    const n = countParameters(r.readString() ?? '');
    const args = Array.from({ length: n }, () => r.read());
    expect(r.error).toBeNull();
    return { args };
  }
  const flag = r.readInt();
  const v = flag === 1 || flag === 4 ? { value: r.read() } : flag === 0 || flag === 3 ? { exception: r.read() } : { value: null };
  expect(r.error).toBeNull();
  return v;
}

/** Normalise for comparing the two readers: no class names, longs by value, exceptions by message. */
function norm(v: unknown): unknown {
  if (v === null || v === undefined) return v ?? null;
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v) ? BigInt(v).toString() : v;
  if (typeof v === 'string') return /^-?\d{16,}$/.test(v) ? BigInt(v).toString() : v;
  if (v instanceof Date) return { $date: v.getTime() };
  if (Buffer.isBuffer(v)) return { $bin: v.toString('hex') };
  if (v instanceof Error) return { message: v.message };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    // A Throwable: hessian.js gives an Error (for *Exception classes) or a plain object; compare messages.
    if ('detailMessage' in o) return { message: o.detailMessage };
    return Object.fromEntries(Object.entries(o).filter(([k]) => k !== '$class').map(([k, x]) => [k, norm(x)]));
  }
  return v;
}

describe.skipIf(!existsSync(PIPY))('Pipy dubbo-stream.bin (written by dubbo-go)', () => {
  const stream = existsSync(PIPY) ? readFileSync(PIPY) : Buffer.alloc(0);

  it('every frame decodes: services, methods, parameter types, attachments, the User object argument', () => {
    const { msgs, errors } = decodeAll([stream], { decodeValues: true });
    expect(errors).toEqual([]);
    expect(msgs).toHaveLength(14);
    expect(msgs.every((m) => m.bodyError === null && m.serializationId === 2)).toBe(true);
    const reqs = msgs.filter((m) => m.type === 'request');
    expect(reqs.map((m) => [m.request!.method, m.request!.parameterTypes])).toEqual([
      ['GetUser', 'Lorg/apache/dubbo/sample/User;'], ['GetGender', 'I'], ['GetUser0', 'Ljava/lang/String;Ljava/lang/String;'],
      ['GetUsers', '[Ljava/lang/String;'], ['getUser', 'I'], ['GetErr', 'Lorg/apache/dubbo/sample/User;'], ['GetErr', 'Lorg/apache/dubbo/sample/User;'],
    ]);
    for (const r of reqs) {
      expect(r.request).toMatchObject({ dubboVersion: '2.0.2', service: 'org.apache.dubbo.sample.UserProvider', serviceVersion: '' });
      expect(r.request!.attachments).toMatchObject({ interface: 'org.apache.dubbo.sample.UserProvider', environment: 'dev', timeout: '0' });
    }
    // The User argument is a Hessian class definition + instance with a nested enum object.
    expect(reqs[0].values!.args).toEqual([{ id: '003', name: '', age: 0, time: null, sex: { name: 'MAN' } }]);
    const own = new Hessian2Reader(frames(stream)[0].subarray(16));
    for (let i = 0; i < 5; i++) own.readString();
    expect(own.read()).toEqual({ $class: 'org.apache.dubbo.sample.User', id: '003', name: '', age: 0, time: null,
      sex: { $class: 'org.apache.dubbo.sample.Gender', name: 'MAN' } });
    // Responses: values, and GetErr's exception with its message.
    const res = msgs.filter((m) => m.type === 'response');
    expect(res.map((m) => [m.requestId, m.status, m.response!.kind])).toEqual([
      ['2', 20, 'value'], ['4', 20, 'value'], ['6', 20, 'value'], ['8', 20, 'value'], ['10', 20, 'value'], ['12', 20, 'exception'], ['14', 20, 'exception'],
    ]);
    expect(res[5].response!.errorMessage).toBe('exception');
    expect(res[5].response!.attachments).toMatchObject({ dubbo: '2.0.2' });
    // Request ids are u64 and exact: the first is 0x8000000000000002 on the wire.
    expect(reqs[0].requestId).toBe('9223372036854775810');
  });

  it('the same messages whatever the chunking: every split offset and one byte at a time', () => {
    const whole = decodeAll([stream]).msgs.map(({ startTime, endTime, ...m }) => m);
    for (const chunks of everySplit(stream)) {
      expect(decodeAll(chunks).msgs.map(({ startTime, endTime, ...m }) => m)).toEqual(whole);
    }
  });

  it('flowtap\'s reader and hessian.js agree on every value of every frame', () => {
    for (const f of frames(stream)) {
      const { msgs } = decodeAll([f]);
      const m = msgs[0];
      expect(norm(readerValues(m, f.subarray(16)))).toEqual(norm(decodeDubboValues(m, f.subarray(16))));
    }
  });

  it('re-encoding each frame gives equal values; byte-identical where the encoders make the same choices', () => {
    const identical: string[] = [];
    for (const f of frames(stream)) {
      const m = decodeAll([f]).msgs[0];
      const typed = decodeDubboValues(m, f.subarray(16), true);
      const again = m.type === 'request'
        ? encodeRequest({ requestId: m.requestId, twoWay: m.twoWay, dubboVersion: m.request!.dubboVersion!, service: m.request!.service!,
          serviceVersion: m.request!.serviceVersion, method: m.request!.method!, parameterTypes: m.request!.parameterTypes!,
          args: typed.args!, attachments: m.request!.attachments })
        : encodeResponse({ requestId: m.requestId, status: m.status, value: typed.value, exception: typed.exception,
          attachments: m.response!.attachments ?? undefined });
      if (again.equals(f)) identical.push(`${m.type} ${m.requestId}`);
      const m2 = decodeAll([again], { decodeValues: true }).msgs[0];
      const m1 = decodeAll([f], { decodeValues: true }).msgs[0];
      expect(norm(m2.values)).toEqual(norm(m1.values));
      expect({ ...m2.request, attachments: { ...m2.request?.attachments } }).toEqual({ ...m1.request, attachments: { ...m1.request?.attachments } });
      expect(m2.response).toEqual(m1.response);
    }
    // Differences, each an equivalent encoding: GetUsers' String[] (dubbo-go writes `V type len`, hessian.js the
    // compact typed list); dubbo-go appends a Hessian null after response attachments; hessian.js's typed
    // decode turns a compact long 0 into a number, so Throwable.serialVersionUID comes back as an int.
    expect(identical).toEqual(['request 9223372036854775810', 'request 4', 'request 6', 'request 10', 'request 12', 'request 14']);
  });
});

describe('Hessian class definitions seen before', () => {
  it('a definition whose bytes differ only after the cache\'s probe bytes is read as itself, in any order', () => {
    // Same name (so the same probe bytes and slot), different field names.
    const a = encodeResponse({ requestId: 1, value: { $class: 'com.example.Item', $: { id: 1, name: 'a' } } });
    const b = encodeResponse({ requestId: 2, value: { $class: 'com.example.Item', $: { id: 2, nick: 'b' } } });
    const read = (f: Buffer) => { const r = new Hessian2Reader(f.subarray(16)); r.readInt(); const v = r.read(); expect(r.error).toBeNull(); return v; };
    for (let round = 0; round < 2; round++) {
      expect(read(a)).toEqual({ $class: 'com.example.Item', id: 1, name: 'a' });
      expect(read(b)).toEqual({ $class: 'com.example.Item', id: 2, nick: 'b' });
    }
    // And cut short inside a definition that is known whole, the reader still fails rather than read past.
    const r = new Hessian2Reader(a.subarray(16, 16 + 12));
    r.readInt();
    r.read();
    expect(r.error).toMatch(/end of the body|unexpected end/);
  });
});

describe('Hessian lists with a length', () => {
  it('a negative length is an error, read or skipped (-1 and -2 once meant "until Z" and "nothing open" inside the reader)', () => {
    // 'X' (untyped) and 'V' + type (typed) fixed-length lists, the length as a 32-bit int, then bytes that
    // would read as values: a 16-byte body found by the skip-vs-read fuzz test, and its relatives.
    const int32 = (n: number) => { const b = Buffer.alloc(5); b[0] = 0x49; b.writeInt32BE(n, 1); return b; };
    const tail = Buffer.from('096e6f7420666f776e64', 'hex'); // a 9-character string, cut short
    const typed = Buffer.concat([Buffer.from([0x56]), Buffer.from([0x04]), Buffer.from('java')]);
    for (const n of [-1, -2, -3, -4, -5, -(2 ** 31)]) {
      for (const head of [Buffer.from([0x58]), typed]) {
        const body = Buffer.concat([head, int32(n), tail]);
        const read = new Hessian2Reader(body);
        read.read();
        expect(read.error).toBe(`list length ${n} is negative`);
        const skipped = new Hessian2Reader(body);
        skipped.skip();
        expect(skipped.error).toBe(`list length ${n} is negative`);
      }
    }
    // Lengths that fit still read, both ways.
    const ok = Buffer.concat([Buffer.from([0x58]), int32(2), Buffer.from([0x91, 0x92])]);
    const r = new Hessian2Reader(ok);
    expect(r.read()).toEqual([1, 2]);
    const s = new Hessian2Reader(ok);
    s.skip();
    expect([s.pos, s.error]).toEqual([ok.length, null]);
  });
});

describe('Dubbo framing', () => {
  const req = encodeRequest({ requestId: 1, service: 'a.B', method: 'm', parameterTypes: 'I', args: [7], attachments: { k: 'v' } });
  const res = encodeResponse({ requestId: 1, value: 'ok' });

  it('many frames per chunk and frames split anywhere give the same messages', () => {
    const stream = Buffer.concat([req, encodeHeartbeat(2), res, req, res]);
    const whole = decodeAll([stream]).msgs.map((m) => [m.type, m.requestId, m.event, m.size]);
    expect(whole).toEqual([['request', '1', false, req.length], ['request', '2', true, 17], ['response', '1', false, res.length],
      ['request', '1', false, req.length], ['response', '1', false, res.length]]);
    for (const chunks of randomSplits(stream, 300, 5)) expect(decodeAll(chunks).msgs.map((m) => [m.type, m.requestId, m.event, m.size])).toEqual(whole);
  });

  it('lost framing is one error, then decoding resumes at the next magic (even split across chunks)', () => {
    const junk = Buffer.from('garbage \xda not a header \xda\xbc', 'latin1');
    const stream = Buffer.concat([req, junk, res]);
    for (const chunks of [[stream], ...everySplit(stream)]) {
      const { msgs, errors } = decodeAll(chunks);
      expect(errors).toEqual(['bad_magic']);
      expect(msgs.map((m) => m.type)).toEqual(['request', 'response']);
    }
  });

  it('a body over the limit is an error and is skipped by its length', () => {
    const big = encodeResponse({ requestId: 9, value: 'x'.repeat(5000) });
    const { msgs, errors } = decodeAll(cutAt(Buffer.concat([req, big, res]), [30, 2000]), { maxBodySize: 1000 });
    expect(errors).toEqual(['too_large']);
    expect(msgs.map((m) => m.requestId)).toEqual(['1', '1']);
  });

  it('request ids are exact u64 decimal strings', () => {
    for (const id of [0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
      const { msgs } = decodeAll([encodeRequest({ requestId: id, service: 's', method: 'm', parameterTypes: '', args: [] })]);
      expect(msgs[0].requestId).toBe(id.toString());
    }
  });

  it('other serializations give header-level messages without body decoding', () => {
    const f = Buffer.from(req);
    f[2] = (f[2] & 0xe0) | 6; // fastjson
    const { msgs } = decodeAll([f]);
    expect(msgs[0]).toMatchObject({ serializationId: 6, request: null, bodyError: null, size: req.length });
  });
});

describe('Dubbo exchange records', () => {
  function run(client: Buffer[], server: Buffer[], opts: { decodeValues?: boolean } = {}) {
    const records: DubboRecord[] = [];
    const c = new Conversation({ client: { ip: '10.0.0.1', port: 5000 }, server: { ip: '10.0.0.2', port: 20880 }, connectionId: 'd',
      onRecord: (r: ExchangeRecord) => records.push(r as DubboRecord), ...opts });
    let t = 1000;
    const n = Math.max(client.length, server.length);
    for (let i = 0; i < n; i++) {
      if (client[i]) c.write('client', client[i], t++);
      if (server[i]) c.write('server', server[i], t++);
    }
    c.close(t);
    return records;
  }

  it('generic calls ($invoke, $invokeAsync) report the real method and its parameter types; heartbeats stay out', () => {
    const GENERIC_TYPES = 'Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;';
    const generic = (id: number, method: string, real: string, types: string[], args: unknown[]) => encodeRequest({
      requestId: id, service: 'svc.Users', method, parameterTypes: GENERIC_TYPES, attachments: { generic: 'true' },
      args: [real, { $class: '[string', $: types }, { $class: '[object', $: args }],
    });
    const records = run(
      [Buffer.concat([
        generic(1, '$invoke', 'getUser', ['long'], [{ $class: 'long', $: 7 }]),
        generic(2, '$invokeAsync', 'rename', ['long', 'java.lang.String', 'int[]'], [{ $class: 'long', $: 7 }, 'ann', { $class: '[int', $: [1] }]),
        encodeHeartbeat(98, true),
      ])],
      [Buffer.concat([encodeResponse({ requestId: 1, value: 'u7' }), encodeResponse({ requestId: 2, value: null }), encodeHeartbeat(98, false)])],
      { decodeValues: true },
    );
    expect(records.map((r) => [r.requestId, r.endpoint, r.request.method, r.request.parameterTypes, r.status])).toEqual([
      ['1', 'svc.Users/getUser', 'getUser', 'J', 'ok'],
      ['2', 'svc.Users/rename', 'rename', 'JLjava/lang/String;[I', 'ok'],
    ]);
    expect(records[0].request.attachments).toMatchObject({ generic: 'true' });
  });

  it('pairs out-of-order answers by id; status classes and errors follow record.md', () => {
    const call = (id: number, method: string, extra: object = {}) => encodeRequest({ requestId: id, service: 'svc.Orders', serviceVersion: null,
      method, parameterTypes: 'Ljava/lang/String;', args: ['x'], attachments: { traceparent: '00-aaa-bbb-01', 'X-Request-Id': `r${id}` }, ...extra });
    const records = run(
      [Buffer.concat([call(1, 'get'), call(2, 'fail'), call(3, 'gone'), call(4, 'nil'), call(5, 'busy'), call(6, 'fire', { twoWay: false }), call(7, 'lost')])],
      [Buffer.concat([
        encodeResponse({ requestId: 4, value: null, attachments: { dubbo: '2.0.2' } }),
        encodeResponse({ requestId: 2, exception: javaException('java.lang.IllegalStateException', 'no stock') }),
        encodeResponse({ requestId: 1, value: { $class: 'svc.Order', $: { id: 1 } } }),
        encodeResponse({ requestId: 3, status: 60, errorMessage: 'Not found exported service' }),
        encodeResponse({ requestId: 5, status: 25, errorMessage: 'serialization failed' }),
        encodeHeartbeat(99, true),
      ])],
    );
    const byId = Object.fromEntries(records.map((r) => [r.requestId, r]));
    expect(byId['1']).toMatchObject({ status: 'ok', code: 20, endpoint: 'svc.Orders/get', error: null, response: { kind: 'value', statusName: 'OK' },
      traceId: 'aaa', spanId: 'bbb', xRequestId: 'r1' });
    expect(byId['1'].request.serviceVersion).toBeNull();
    expect(byId['1'].request.method).toBe('get'); // DeepFlow loses the method when the version is null
    expect(byId['2']).toMatchObject({ status: 'server_error', code: 20, error: 'no stock', response: { kind: 'exception' } });
    expect(byId['3']).toMatchObject({ status: 'server_error', code: 60, error: 'Not found exported service', response: { kind: 'error', statusName: 'SERVICE_NOT_FOUND' } });
    expect(byId['4']).toMatchObject({ status: 'ok', response: { kind: 'null', attachments: { dubbo: '2.0.2' } } });
    expect(byId['5']).toMatchObject({ status: 'server_error', code: 25 }); // DeepFlow reports 25 as OK
    expect(byId['6']).toMatchObject({ status: 'ok', response: null, request: { twoWay: false } });
    expect(byId['7']).toMatchObject({ status: 'timeout', response: null, code: null });
    expect(records).toHaveLength(7); // the heartbeat is not an exchange
    expect(byId['1'].requestSize).toBe(call(1, 'get').length);
  });

  it('client errors (30, 35, 40, 90) and decodeValues bring args and values', () => {
    for (const status of [30, 35, 40, 90]) {
      const [r] = run([encodeRequest({ requestId: 1, service: 's', method: 'm', parameterTypes: '', args: [] })], [encodeResponse({ requestId: 1, status, errorMessage: 'e' })]);
      expect(r.status).toBe('client_error');
    }
    const [r] = run([encodeRequest({ requestId: 1, service: 's', method: 'm', parameterTypes: 'J[I', args: [{ $class: 'long', $: '9007199254740993' }, [1, 2]] })],
      [encodeResponse({ requestId: 1, value: { a: [1, 'b'] } })], { decodeValues: true });
    expect(r.request.args).toEqual(['9007199254740993', [1, 2]]);
    expect(r.response!.value).toEqual({ a: [1, 'b'] });
  });
});
