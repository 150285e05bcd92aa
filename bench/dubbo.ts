/**
 * Dubbo: exchange records/s from flowtap (attachments decoded, arguments and values skipped) vs hessian.js
 * decoding the same bodies fully, one run, same frames.
 */
import { createRequire } from 'node:module';
import { Conversation, dubboDecoder, encodeRequest, encodeResponse } from '../dist/index.js';
import { compare, ratio, type BenchResult } from './measure.js';

const require = createRequire(import.meta.url);

/** Calls shaped like a Java service's: a POJO argument, a map, a long; POJO answers; Dubbo's usual attachments. */
export function dubboCorpus(exchanges: number): { side: 'client' | 'server'; chunk: Buffer }[] {
  const out: { side: 'client' | 'server'; chunk: Buffer }[] = [];
  for (let i = 1; i <= exchanges; i++) {
    const user = { $class: 'com.example.User', $: { id: { $class: 'long', $: i }, name: `user-${i}`, email: `u${i}@example.com`,
      created: new Date(1700000000000 + i), roles: ['admin', 'ops'], tags: { tier: 'gold', region: 'eu-west-1' } } };
    out.push({ side: 'client', chunk: encodeRequest({
      requestId: i, service: 'com.example.UserService', serviceVersion: '1.0.0', method: 'updateUser',
      parameterTypes: 'Lcom/example/User;Ljava/util/Map;J',
      args: [user, { reason: 'profile edit', source: 'web' }, { $class: 'long', $: i * 1000 }],
      attachments: { path: 'com.example.UserService', interface: 'com.example.UserService', version: '1.0.0', timeout: '3000',
        traceparent: `00-4bf92f3577b34da6a3ce929d0e0e${String(i % 10000).padStart(4, '0')}-00f067aa0ba902b7-01`, 'remote.application': 'web' },
    }) });
    out.push({ side: 'server', chunk: encodeResponse({ requestId: i, value: user, attachments: { dubbo: '2.0.2' } }) });
  }
  return out;
}

export function benchDubbo(): BenchResult {
  const EX = 20_000;
  const input = dubboCorpus(EX);
  const bytes = input.reduce((n, c) => n + c.chunk.length, 0);
  const hessian = require('hessian.js') as { DecoderV2: new (b: Buffer) => { read(): unknown } };
  const results = compare([
    {
      name: 'flowtap (records, args skipped)',
      fn: () => {
        let n = 0;
        const c = new Conversation({ client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 20880 }, connectionId: '1',
          protocol: 'dubbo', onRecord: () => { n++; } });
        let t = 1_700_000_000_000;
        for (const { side, chunk } of input) c.write(side, chunk, t++);
        if (n !== EX) throw new Error(`flowtap produced ${n} records, expected ${EX}`);
      },
    },
    {
      name: 'flowtap decoder (messages only)',
      fn: () => {
        let n = 0;
        const d = dubboDecoder({ onMessage: () => { n++; } });
        for (const { chunk } of input) d.write(chunk, 0);
        if (n !== 2 * EX) throw new Error(`decoder produced ${n} messages`);
      },
    },
    {
      name: 'hessian.js (full bodies)',
      fn: () => {
        let n = 0;
        for (const { side, chunk } of input) {
          const d = new hessian.DecoderV2(chunk.subarray(16));
          if (side === 'client') { for (let k = 0; k < 5 + 3 + 1; k++) d.read(); } // 5 strings, 3 args, attachments
          else { d.read(); d.read(); d.read(); } // flag, value, attachments
          n++;
        }
        if (n !== 2 * EX) throw new Error('hessian.js decoded too few');
      },
    },
  ], EX, bytes);
  const [flowtap, decoder, hjs] = results;
  return {
    name: 'dubbo',
    unit: 'exchanges/s, median of 15 interleaved rounds',
    results,
    ratios: { 'flowtap/hessian.js': ratio(flowtap, hjs), 'decoder only/hessian.js': ratio(decoder, hjs) },
    targets: { 'flowtap/hessian.js': 4 },
  };
}
