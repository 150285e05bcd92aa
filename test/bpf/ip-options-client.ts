/**
 * An HTTP GET over a TCP socket whose every IPv4 packet carries IP options (IP_OPTIONS: NOP NOP NOP EOL), so
 * the tc program must find the TCP header from IHL. Node cannot set socket options before connect, so this
 * client is plain libc through koffi. Prints the response.
 */
import { createRequire } from 'node:module';

const koffi = createRequire(import.meta.url)('koffi') as { load(n: string): { func(s: string): (...a: unknown[]) => number } };
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int, int, int)');
const setsockopt = libc.func('int setsockopt(int, int, int, void *, uint32_t)');
const connect = libc.func('int connect(int, void *, uint32_t)');
const write = libc.func('long write(int, void *, size_t)');
const read = libc.func('long read(int, void *, size_t)');
const close = libc.func('int close(int)');

const [host, port, path] = [process.argv[2], Number(process.argv[3]), process.argv[4] ?? '/'];
const fd = socket(2, 1, 0);
if (setsockopt(fd, 0, 4 /* IP_OPTIONS */, Buffer.from([1, 1, 1, 0]), 4) !== 0) throw new Error('setsockopt(IP_OPTIONS) failed');
const sa = Buffer.alloc(16);
sa.writeUInt16LE(2, 0);
sa.writeUInt16BE(port, 2);
host.split('.').forEach((o, i) => { sa[4 + i] = Number(o); });
if (connect(fd, sa, 16) !== 0) throw new Error('connect failed');
const req = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
write(fd, req, req.length);
const chunks: Buffer[] = [];
for (;;) {
  const b = Buffer.alloc(65536);
  const n = read(fd, b, b.length);
  if (n <= 0) break;
  chunks.push(b.subarray(0, n));
}
close(fd);
process.stdout.write(Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[1] ?? '');
