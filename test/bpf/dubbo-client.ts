/** A Dubbo consumer as its own process (so it can run inside the test cgroup): one call, prints the answer. */
import net from 'node:net';
import { DubboDecoder, encodeRequest } from '../../src/index.js';

const [host, port, method] = [process.argv[2], Number(process.argv[3]), process.argv[4] ?? 'ping'];
const s = net.connect(port, host, () => {
  s.write(encodeRequest({ requestId: 7, service: 'demo.Echo', method, parameterTypes: '', args: [] }));
});
const d = new DubboDecoder({
  decodeValues: true,
  onMessage: (m) => { console.log(JSON.stringify({ status: m.status, value: m.values?.value })); s.end(); },
});
s.on('data', (c) => d.write(c));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => { console.error('no answer'); process.exit(1); }, 5000).unref();
