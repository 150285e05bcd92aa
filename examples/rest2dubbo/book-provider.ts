/**
 * A BookWarehouseService provider on flowtap's Dubbo encoder, for `npm run demo:rest2dubbo` on machines
 * without Java (the tests use the Java provider in test/java). getBook(String id) answers a Book POJO, or
 * an IllegalArgumentException for an unknown id.
 */
import net from 'node:net';
import { DubboDecoder, encodeHeartbeat, encodeResponse, javaException } from 'flowtap';

export function startBookProvider(port = 0): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((sock) => {
    const d = new DubboDecoder({ decodeValues: true, onMessage: (m) => {
      const id = BigInt(m.requestId);
      if (m.event) { if (m.twoWay) sock.write(encodeHeartbeat(id, true)); return; }
      if (m.type !== 'request' || !m.twoWay) return;
      const arg = String(m.values?.args?.[0] ?? '');
      const n = Number(arg);
      if (m.request?.method !== 'getBook') { sock.write(encodeResponse({ requestId: id, status: 40, errorMessage: `unknown method ${m.request?.method}` })); return; }
      if (!Number.isInteger(n) || n < 1 || n > 100000) { sock.write(encodeResponse({ requestId: id, exception: javaException('java.lang.IllegalArgumentException', `no book with id ${arg}`) })); return; }
      sock.write(encodeResponse({ requestId: id, value: { $class: 'io.flomesh.demo.api.Book', $: {
        id: { $class: 'long', $: n }, isbn: `978-${1000000000 + n}`, author: n % 3 === 0 ? 'Łukasz Żółć' : 'Ada Lovelace', name: `Book #${n}`,
        value: { $class: 'int', $: (n * 7) % 100 }, date: new Date(1600000000000 + n * 86400000) } } }));
    } });
    sock.on('data', (b: Buffer) => d.write(b));
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port })));
}
