/**
 * Run inside a test network namespace: the iptables paths users may prefer to BPF.
 *  redirect ORIG PROXY — iptables REDIRECT sends this process's own connection to ORIG to PROXY; the listener
 *    asks getOriginalDestination and prints it.
 *  tproxy PORT — a transparent listener (IP_TRANSPARENT) on PORT; prints the local address of what it accepts.
 */
import net from 'node:net';
import { getOriginalDestination, isTransparent, listenTransparent } from '../../src/bpf/index.js';

const [mode, a, b] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
if (mode === 'redirect') {
  const server = net.createServer((s) => { console.log(JSON.stringify({ original: getOriginalDestination(s) })); s.end(); server.close(); });
  server.listen(b, '127.0.0.1', () => { net.connect(a, '127.0.0.1').on('error', () => {}); });
} else {
  const server = await listenTransparent({ host: '0.0.0.0', port: a });
  console.log(JSON.stringify({ transparent: isTransparent(server) }));
  server.on('connection', (s) => {
    console.log(JSON.stringify({ accepted: { localAddress: s.localAddress, localPort: s.localPort } }));
    s.end('tproxy says hi\n');
    server.close();
  });
}
