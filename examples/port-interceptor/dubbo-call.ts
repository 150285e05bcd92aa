/** A Dubbo consumer that knows nothing about flowtap: one call to host:port, prints the answer. */
import net from 'node:net';
import { DubboDecoder, encodeRequest } from 'flowtap';

const [host = '127.0.0.1', port = '20880', method = 'getUser'] = process.argv.slice(2);
const s = net.connect(Number(port), host, () => {
  s.write(encodeRequest({ requestId: 1, service: 'demo.UserService', serviceVersion: '1.0.0', method, parameterTypes: 'J', args: [{ $class: 'long', $: 7 }] }));
});
const d = new DubboDecoder({ decodeValues: true, onMessage: (m) => { console.log(JSON.stringify(m.values?.value ?? m.response)); s.end(); } });
s.on('data', (c) => d.write(c));
s.on('error', (e) => { console.error(`dubbo call failed: ${e.message}`); process.exit(1); });
