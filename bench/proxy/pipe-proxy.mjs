// The baseline: a plain Node TCP proxy, socket.pipe() both ways, nothing else.
import net from 'node:net';
const [listen, upstream] = process.argv.slice(2).map(Number);
net.createServer((c) => {
  const u = net.connect(upstream, '127.0.0.1');
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
}).listen(listen, '127.0.0.1', () => process.send?.('ready'));
