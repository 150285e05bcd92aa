// The HTTP upstream for bench/proxy: a small JSON answer; uploads are read and discarded.
import http from 'node:http';
const body = JSON.stringify({ id: 1, name: 'widget', tags: ['a', 'b'], price: 9.99 });
const server = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(req.method === 'POST' ? String(n) : body); });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
