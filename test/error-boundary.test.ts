/** A record callback that throws is the user's error: reported as such, and everything else goes on. */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CaptureDecoder, Conversation, RecordCallbackError, TapProxy, type AnyRecord,
} from '../src/index.js';
import { pcapFile, tcpPackets, type Seg } from './helpers.js';

const req = (path: string) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
const res = (body: string) => Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

describe('a throwing record callback', () => {
  it('in a capture read: reported with the record it was given, every later record still produced, no parse_error', () => {
    const segs: Seg[] = [{ from: 'c', syn: true }, { from: 's', syn: true }];
    for (let i = 0; i < 5; i++) segs.push({ from: 'c', data: req(`/r${i}`) }, { from: 's', data: res(`b${i}`) });
    const file = pcapFile(101, tcpPackets(segs).map((p) => ({ data: p.ip, time: p.time })));
    const seen: AnyRecord[] = [];
    const errors: RecordCallbackError[] = [];
    const dec = new CaptureDecoder({ onUserError: (e) => errors.push(e) }, (r) => {
      seen.push(r);
      if (r.endpoint === '/r1' || r.endpoint === '/r3') throw new TypeError(`my bug at ${r.endpoint}`);
    });
    dec.write(file);
    const summary = dec.end();
    expect(dec.error).toBeNull(); // not "not a capture", not an unreadable file
    expect(seen.map((r) => r.endpoint)).toEqual(['/r0', '/r1', '/r2', '/r3', '/r4']);
    expect(seen.every((r) => r.status === 'ok')).toBe(true);
    expect(summary).toMatchObject({ records: 5, userErrors: 2 });
    expect(errors.map((e) => [e.name, (e.cause as Error).message, e.record.endpoint])).toEqual([
      ['RecordCallbackError', 'my bug at /r1', '/r1'], ['RecordCallbackError', 'my bug at /r3', '/r3']]);
  });

  it('in a Conversation: no INTERNAL parse error from inside llhttp; the throw reaches the caller after every record of the call', () => {
    const seen: string[] = [];
    const conv = new Conversation({
      client: { ip: '1.1.1.1', port: 1 }, server: { ip: '2.2.2.2', port: 80 }, connectionId: 'c',
      onRecord: (r) => { seen.push(`${r.endpoint} ${r.status}`); throw new Error('boom'); },
    });
    conv.write('client', Buffer.concat([req('/a'), req('/b'), req('/c')]), 1);
    // One chunk answers all three: all three are delivered, then the first throw comes back.
    expect(() => conv.write('server', Buffer.concat([res('1'), res('2'), res('3')]), 2)).toThrow('boom');
    expect(seen).toEqual(['/a ok', '/b ok', '/c ok']);
    expect(conv.userErrors).toBe(3);
    // Decoding is intact: the next exchange decodes normally.
    conv.write('client', req('/d'), 3);
    expect(() => conv.write('server', res('4'), 4)).toThrow('boom');
    expect(seen.at(-1)).toBe('/d ok');
  });

  it('in the proxy: guarded record listeners keep the emitter\'s own semantics (once, off, context, listeners)', async () => {
    const server = http.createServer((q, s) => s.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } });
    const seen = { once: 0, on: 0, removed: 0 };
    const ctx = { name: 'ctx' };
    let self: unknown = null;
    const removed = () => { seen.removed++; };
    proxy.once('record', () => { seen.once++; });
    proxy.on('record', function (this: unknown) { seen.on++; self = this; }, ctx);
    proxy.on('record', removed);
    expect(proxy.listeners('record')).toContain(removed);
    proxy.off('record', removed);
    expect(proxy.listenerCount('record')).toBe(2);
    const { port } = await proxy.listen();
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: `/${i}`, agent: false }, (r) => { r.resume(); r.on('end', () => resolve()); }).on('error', reject);
        });
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual({ once: 1, on: 3, removed: 0 });
      expect(self).toBe(ctx);
      expect(proxy.listenerCount('record')).toBe(1);
    } finally {
      await proxy.close();
      server.close();
    }
  });

  it('in the proxy: forwarding unchanged, a userError event and counter per throw, other listeners still get every record', async () => {
    const server = http.createServer((q, s) => s.end(`answer to ${q.url}`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } });
    const good: string[] = [];
    const userErrors: RecordCallbackError[] = [];
    proxy.on('record', () => { throw new Error('listener bug'); });
    proxy.on('record', (r) => good.push(r.endpoint));
    proxy.on('userError', (e) => userErrors.push(e));
    let tapErrors = 0;
    proxy.on('tapError', () => tapErrors++);
    const { port } = await proxy.listen();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: `/x${i}`, agent }, (r) => {
            let b = '';
            r.setEncoding('utf8').on('data', (d) => { b += d; }).on('end', () => resolve(b));
          }).on('error', reject);
        });
        expect(body).toBe(`answer to /x${i}`);
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(good).toEqual(['/x0', '/x1', '/x2', '/x3', '/x4']);
      expect(userErrors).toHaveLength(5);
      expect(userErrors[0]).toBeInstanceOf(RecordCallbackError);
      expect(proxy.stats).toMatchObject({ userErrors: 5, tapErrors: 0, records: 5 });
      expect(tapErrors).toBe(0); // decoding was never switched off
    } finally {
      agent.destroy();
      await proxy.close();
      await new Promise((r) => server.close(r));
    }
  });
});
