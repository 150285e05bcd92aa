/**
 * The flood for the tap proxy's shedding test, in a process of its own so that its work is not the test
 * process's: an upstream that answers every request (each ends at its blank line; none has a body) with a
 * 204, and, when asked, clients that flood the proxy with pipelined tiny requests and huge headers.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

const ANSWER = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
const upstream = net.createServer((s) => {
  let tail = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    // Blank lines counted across chunk boundaries: the last 3 bytes are carried over.
    const b = tail.length ? Buffer.concat([tail, d]) : d;
    let n = 0;
    for (let i = b.indexOf('\r\n\r\n'); i >= 0; i = b.indexOf('\r\n\r\n', i + 4)) n++;
    tail = b.subarray(-4).equals(Buffer.from('\r\n\r\n')) ? Buffer.alloc(0) : Buffer.from(b.subarray(Math.max(0, b.length - 3)));
    if (n) s.write(n === 1 ? ANSWER : Buffer.concat(Array(n).fill(ANSWER)));
  });
  s.on('error', () => {});
});

async function flood(port: number, batches: number): Promise<boolean> {
  const tiny = Buffer.from('GET /f HTTP/1.1\r\nHost: x\r\n\r\n');
  const huge = Buffer.from(`GET /h HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(32_000)}\r\n\r\n`);
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  let got = 0;
  s.on('data', (d: Buffer) => { got += d.length; });
  const batch = Buffer.concat([...Array(2000).fill(tiny), ...Array(5).fill(huge)]);
  for (let i = 0; i < batches; i++) if (!s.write(batch)) await once(s, 'drain');
  const want = batches * 2005 * ANSWER.length;
  for (let i = 0; i < 1000 && got < want; i++) await new Promise((r) => setTimeout(r, 20));
  s.destroy();
  return got === want;
}

upstream.listen(0, '127.0.0.1', () => process.send!({ port: (upstream.address() as AddressInfo).port }));
process.on('message', async (m: { flood: number; clients: number; batches: number }) => {
  const ok = await Promise.all(Array.from({ length: m.clients }, () => flood(m.flood, m.batches)));
  process.send!({ ok });
});
