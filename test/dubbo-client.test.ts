/** The Dubbo client on its own: heartbeats both ways, one-way calls, typed errors, ids per connection. */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DubboDecoder, encodeHeartbeat, encodeResponse, type DubboMessage } from '../src/index.js';
import { DubboCallError, DubboClient } from '../src/gateway/index.js';
import { cleanups, freePort } from './tools.js';

const { closers, listen } = cleanups(afterEach);

/** A provider on flowtap's codec that records every frame it gets and answers `echo`. */
async function provider(opts: { heartbeatEvery?: number } = {}) {
  const got: DubboMessage[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    const d = new DubboDecoder({ decodeValues: true, onMessage: (m) => {
      got.push(m);
      if (m.event) return; // heartbeats: the client's, or the answers to ours
      if (m.type === 'request' && m.twoWay) s.write(encodeResponse({ requestId: BigInt(m.requestId), value: m.values?.args?.[0] ?? null }));
    } });
    s.on('data', (b: Buffer) => d.write(b));
    s.on('error', () => {});
    if (opts.heartbeatEvery) {
      const t = setInterval(() => s.write(encodeHeartbeat(900n + BigInt(got.length))), opts.heartbeatEvery);
      s.on('close', () => clearInterval(t));
    }
  });
  const port = await listen(server);
  return { port, got, sockets };
}

describe('DubboClient', () => {
  it('answers the provider\'s heartbeats, sends its own on an idle connection, and one-way calls expect nothing', async () => {
    const p = await provider({ heartbeatEvery: 50 });
    const c = new DubboClient({ host: '127.0.0.1', port: p.port, connections: 1, heartbeat: 150 });
    closers.push(() => c.close());
    await c.ready();
    const a = await c.invoke({ service: 'demo.Echo', method: 'echo', parameterTypes: 'Ljava/lang/String;', args: ['hi'], attachments: { sw8: 'x' } });
    expect(a).toMatchObject({ status: 20, kind: 'value', value: 'hi' });
    const one = await c.invoke({ service: 'demo.Echo', method: 'log', parameterTypes: 'Ljava/lang/String;', args: ['fire'], oneWay: true });
    expect(one.kind).toBe('null');
    await new Promise((r) => setTimeout(r, 400));
    const requests = p.got.filter((m) => m.type === 'request' && !m.event);
    expect(requests.map((m) => [m.request?.method, m.twoWay, m.request?.attachments?.sw8, m.request?.attachments?.path])).toEqual([
      ['echo', true, 'x', 'demo.Echo'], ['log', false, undefined, 'demo.Echo']]);
    // The provider's heartbeats (every 50 ms) were answered; with them the connection is never idle.
    expect(c.stats.heartbeatsAnswered).toBeGreaterThan(3);
    expect(p.got.some((m) => m.event && m.type === 'response')).toBe(true);
    expect(c.stats.heartbeatsSent).toBe(0);
    // A quiet provider: after 150 ms of silence the client sends its own heartbeat.
    const quiet = await provider();
    const q = new DubboClient({ host: '127.0.0.1', port: quiet.port, connections: 1, heartbeat: 150 });
    closers.push(() => q.close());
    await q.ready();
    await new Promise((r) => setTimeout(r, 400));
    expect(q.stats.heartbeatsSent).toBeGreaterThan(0);
    expect(quiet.got.some((m) => m.event && m.type === 'request' && m.twoWay)).toBe(true);
  });

  it('ids are unique per connection; a provider that is gone fails calls at once with a typed error; the client comes back', async () => {
    const p = await provider();
    const c = new DubboClient({ host: '127.0.0.1', port: p.port, connections: 2, reconnect: { min: 20, max: 50 } });
    closers.push(() => c.close());
    await c.ready();
    for (let i = 0; i < 50 && c.connected < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await Promise.all([1, 2, 3, 4].map((i) => c.invoke({ service: 's', method: 'echo', parameterTypes: 'I', args: [{ $class: 'int', $: i }] })));
    const ids = p.got.filter((m) => !m.event).map((m) => m.requestId).sort();
    expect(ids).toEqual(['1', '1', '2', '2']); // two connections, each numbering its own calls
    for (const s of p.sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 5));
    const err = await c.invoke({ service: 's', method: 'echo', parameterTypes: 'I', args: [{ $class: 'int', $: 1 }] }).catch((e) => e);
    expect(err).toBeInstanceOf(DubboCallError);
    expect((err as DubboCallError).kind).toBe('unavailable');
    for (let i = 0; i < 50 && c.connected === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await expect(c.invoke({ service: 's', method: 'echo', parameterTypes: 'I', args: [{ $class: 'int', $: 5 }] })).resolves.toMatchObject({ value: 5 });
    const nobody = new DubboClient({ host: '127.0.0.1', port: await freePort(), connections: 1 });
    closers.push(() => nobody.close());
    await expect(nobody.ready(300)).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
