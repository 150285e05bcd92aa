/**
 * Dubbo against Java: a provider and consumer written with Caucho Hessian (test/java/DubboPeer.java), so the
 * bodies flowtap reads were written by Java. Checked four ways: a capture read by `flowtap read`, the decoder
 * fed directly, flowtap-encoded requests answered by the Java provider, and flowtap-encoded responses
 * accepted by the Java consumer (which must print exactly what it printed for the Java provider).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDubboValues } from '../src/codecs/index.js';
import {
  DubboDecoder, encodeHeartbeat, encodeRequest, encodeResponse, javaException, type DubboMessage, type DubboRecord,
} from '../src/index.js';
import { captureSkipReason, have, run, runAsync, startCapture, tempDir } from './tools.js';

const HESSIAN_JAR = '/usr/share/java/hessian.jar';
const javaSkip = !have('javac') || !have('java') ? 'no JDK (apt-get install -y openjdk-17-jdk-headless)'
  : !existsSync(HESSIAN_JAR) ? 'no Caucho Hessian (apt-get install -y libhessian-java)' : null;
const skip = javaSkip ?? captureSkipReason();
if (skip) console.warn(`Java Dubbo peer tests skipped: ${skip}`);

// Java 17 keeps java.base closed to reflection; Hessian (like Dubbo itself on 17) needs these opened.
const OPENS = ['java.lang', 'java.util', 'java.math', 'java.util.concurrent'].flatMap((p) => ['--add-opens', `java.base/${p}=ALL-UNNAMED`]);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const SRC = new URL('./java/DubboPeer.java', import.meta.url).pathname;

interface JavaLine { id: string; status: number; event: boolean; flag?: number; value?: unknown; exception?: string; error?: string; attachments?: unknown }

describe.skipIf(skip !== null)('Dubbo with a Java provider and consumer', () => {
  const dir = tempDir();
  const cp = `${HESSIAN_JAR}:${dir}`;
  let provider: ChildProcess;
  let javaPort = 0;
  let javaAnswers: JavaLine[] = [];
  let records: DubboRecord[] = [];

  // Async: the flowtap provider answering it runs in this very process.
  const consumer = async (port: number): Promise<JavaLine[]> => {
    const r = await runAsync('java', [...OPENS, '-cp', cp, 'DubboPeer', 'consumer', String(port)]);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l)).sort((a, b) => Number(a.id) - Number(b.id));
  };

  beforeAll(async () => {
    const c = spawnSync('javac', ['-cp', HESSIAN_JAR, '-d', dir, SRC], { encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    provider = spawn('java', [...OPENS, '-cp', cp, 'DubboPeer', 'provider', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
    javaPort = await new Promise<number>((resolve, reject) => {
      provider.stdout!.once('data', (d) => resolve(Number(/listening (\d+)/.exec(String(d))![1])));
      provider.once('exit', (code) => reject(new Error(`provider exited ${code}`)));
    });
    const pcap = join(dir, 'dubbo.pcap');
    const cap = await startCapture('lo', pcap, `tcp port ${javaPort}`);
    javaAnswers = await consumer(javaPort);
    await cap.stop();
    const out = run('node', [CLI, 'read', pcap, '--values']);
    expect(out.status, out.stderr).toBe(0);
    records = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
  }, 120_000);

  afterAll(() => { provider?.stdin?.end(); provider?.kill(); });

  it('flowtap read of the capture: one record per call, paired by id though answered out of order', () => {
    const answered = javaAnswers.filter((a) => !a.event);
    expect(answered.map((a) => a.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    // Out of order on the wire: slow(300) was sent first and answered last.
    expect(records.map((r) => r.requestId).sort((a, b) => Number(a) - Number(b))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
    for (const a of answered) {
      const r = records.find((x) => x.requestId === a.id)!;
      expect(r.code).toBe(a.status);
      expect(r.endpoint).toMatch(/^org\.example\.UserService\//);
      if (a.exception) expect(`java.lang.IllegalStateException: ${r.error}`).toBe(a.exception);
      if (a.error) expect(r.error).toBe(a.error);
      if (a.flag !== undefined) expect(r.response!.kind).toBe({ 0: 'exception', 1: 'value', 2: 'null', 3: 'exception', 4: 'value', 5: 'null' }[a.flag]);
      if (a.attachments) expect(r.response!.attachments).toEqual(a.attachments);
      if ('value' in a) expect(javaJson(r.response!.value)).toEqual(a.value);
      expect(r.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(r.xRequestId).toBe(`java-${a.id}`); // attachment key was "X-Request-ID"
    }
    const oneWay = records.find((r) => r.requestId === '11')!;
    expect(oneWay).toMatchObject({ status: 'ok', response: null, request: { twoWay: false, method: 'echo' } });
    expect(records.find((r) => r.requestId === '2')!.request).toMatchObject({ serviceVersion: null, args: ['alice', 's3cret'] });
    expect(records.find((r) => r.requestId === '3')!.request).toMatchObject({ serviceVersion: '', args: ['9007199254740993'] });
    expect(records.find((r) => r.requestId === '5')).toMatchObject({ status: 'server_error', error: 'no such order: 42' });
    expect(records.find((r) => r.requestId === '6')).toMatchObject({ status: 'server_error', code: 60 });
    const big = records.find((r) => r.requestId === '7')!;
    expect(big.responseSize).toBeGreaterThan(150_000);
    expect((big.response!.value as string).length).toBeGreaterThanOrEqual(150_000); // UTF-16 units, as Java counts
  });

  it('flowtap-encoded requests are answered by the Java provider; the decoder reads the answers directly', async () => {
    const calls = [
      encodeRequest({ requestId: 101, service: 'org.example.UserService', serviceVersion: null, method: 'getUser', parameterTypes: 'J',
        args: [{ $class: 'long', $: '9007199254740993' }] }),
      encodeRequest({ requestId: 102, service: 'org.example.UserService', method: 'echo', parameterTypes: 'Ljava/util/Map;',
        args: [{ text: 'ünïcødé ✓ 😀', when: new Date(1700000000000), nested: { list: [1, 'two', [true]] } }] }),
      encodeRequest({ requestId: 103, service: 'org.example.UserService', method: 'fail', parameterTypes: 'Ljava/lang/String;', args: ['from node'] }),
      encodeHeartbeat(104),
    ];
    const msgs = await exchange(javaPort, Buffer.concat(calls), 4);
    const byId = Object.fromEntries(msgs.map((m) => [m.requestId, m]));
    expect(byId['104'].event).toBe(true);
    const user = byId['101'].values!.value as Record<string, unknown>;
    expect(user).toMatchObject({ id: '9007199254740993', name: 'user-9007199254740993', roles: ['admin', 'ops'] });
    expect((user.created as Date).getTime()).toBe(1700000000123);
    expect(byId['102'].values!.value).toEqual({ text: 'ünïcødé ✓ 😀', when: new Date(1700000000000), nested: { list: [1, 'two', [true]] } });
    expect(byId['103'].response).toMatchObject({ kind: 'exception', errorMessage: 'from node', exceptionClass: 'java.lang.IllegalStateException' });
  });

  it('the Java consumer accepts flowtap-encoded responses and prints exactly what the Java provider gave it', async () => {
    // Answers as the Java provider gives them, from the arguments decoded with their Java types.
    const answer = async (m: DubboMessage): Promise<Buffer> => {
      const args = m.values?.args ?? [];
      const att = { dubbo: '2.0.2' };
      const id = m.requestId;
      switch (m.request!.method) {
        case 'login': return encodeResponse({ requestId: id, value: javaUser(7, args[0] as string), attachments: att });
        case 'getUser': return encodeResponse({ requestId: id, value: javaUser(args[0], `user-${unwrap(args[0])}`), attachments: att });
        case 'echo': return encodeResponse({ requestId: id, value: args[0], attachments: att });
        case 'echoPlain': return encodeResponse({ requestId: id, value: args[0] });
        case 'nothing': return encodeResponse({ requestId: id, value: null, attachments: att });
        case 'big': {
          let s = '';
          while (s.length < 150_000) s += 'héllo wörld ✓ 😀 ';
          return encodeResponse({ requestId: id, value: s, attachments: att });
        }
        case 'slow': {
          await new Promise((r) => setTimeout(r, Number(unwrap(args[0]))));
          return encodeResponse({ requestId: id, value: `slept ${unwrap(args[0])}`, attachments: att });
        }
        case 'fail': return encodeResponse({ requestId: id, exception: javaException('java.lang.IllegalStateException', unwrap(args[0]) as string), attachments: att });
        case 'missing': return encodeResponse({ requestId: id, status: 60, errorMessage: `Not found exported service: ${m.request!.service}:missing` });
        default: return encodeResponse({ requestId: id, status: 40, errorMessage: 'unknown method' });
      }
    };
    // Frames are cut here so each body can be decoded with types (to echo arguments back unchanged).
    const typedServer = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32BE(12)) {
          const len = buf.readUInt32BE(12);
          const frame = buf.subarray(0, 16 + len);
          buf = buf.subarray(16 + len);
          new DubboDecoder({ onMessage: (m) => {
            if (m.event) { sock.write(encodeHeartbeat(m.requestId, true)); return; }
            if (!m.twoWay) return;
            m.values = decodeDubboValues(m, frame.subarray(16), true);
            answer(m).then((b) => sock.write(b));
          } }).write(frame);
        }
      });
      sock.on('error', () => {});
    });
    typedServer.listen(0, '127.0.0.1');
    await new Promise((r) => typedServer.once('listening', r));
    const port = (typedServer.address() as AddressInfo).port;
    const fromFlowtap = await consumer(port);
    typedServer.close();
    if (JSON.stringify(fromFlowtap) !== JSON.stringify(javaAnswers)) {
      // Keep both for a look; the assertion below prints a diff too long to read.
      writeFileSync(join(dir, 'from-java.json'), JSON.stringify(javaAnswers, null, 1));
      writeFileSync(join(dir, 'from-flowtap.json'), JSON.stringify(fromFlowtap, null, 1));
      console.warn(`consumer outputs differ; see ${dir}/from-java.json and from-flowtap.json`);
    }
    expect(fromFlowtap).toEqual(javaAnswers);
  });
});

/** A User as the Java provider builds it, as a hessian.js typed value. */
function javaUser(id: unknown, name: string): unknown {
  return {
    $class: 'DubboPeer$User',
    $: {
      id: typeof id === 'object' ? id : { $class: 'long', $: id },
      name,
      created: new Date(1700000000123),
      tags: { tier: 'gold', score: 42, nested: { list: [1, 2, 3], ok: true } },
      roles: ['admin', 'ops'],
    },
  };
}

function unwrap(v: unknown): unknown {
  return v !== null && typeof v === 'object' && '$' in (v as object) ? (v as { $: unknown }).$ : v;
}

/** Write `bytes` to a Dubbo server and collect `count` answers through the decoder. */
function exchange(port: number, bytes: Buffer, count: number): Promise<DubboMessage[]> {
  return new Promise((resolve, reject) => {
    const msgs: DubboMessage[] = [];
    const dec = new DubboDecoder({ decodeValues: true, onMessage: (m) => { msgs.push(m); if (msgs.length === count) { s.end(); resolve(msgs); } },
      onError: (e) => reject(new Error(e.reason)) });
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('data', (d) => dec.write(d));
    s.on('error', reject);
  });
}

/** flowtap's JSON value in the Java consumer's JSON shape: dates as {$date}, map keys sorted. */
function javaJson(v: unknown): unknown {
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return { $date: Date.parse(v) };
  if (v instanceof Date) return { $date: v.getTime() };
  if (Array.isArray(v)) return v.map(javaJson);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, javaJson((v as Record<string, unknown>)[k])]));
  }
  return v;
}
