// A plain Node http reverse proxy (http.request + pipe, a keep-alive agent): the peer of the plugin proxy.
import http from 'node:http';
const [port, up] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
http.createServer((q, s) => {
  const u = http.request({ host: '127.0.0.1', port: up, method: q.method, path: q.url, headers: q.headers, agent }, (r) => { s.writeHead(r.statusCode, r.headers); r.pipe(s); });
  u.on('error', () => { s.writeHead(502).end(); });
  q.pipe(u);
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
