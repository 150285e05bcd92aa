/**
 * `npm run demo:plugin-proxy`: Pipy's plugin-proxy files run as they are, with three upstream services
 * and a local Splunk HEC endpoint started on the ports those files name (8080, 8081, 8082, 8088; the proxy
 * listens on 8000). Some requests, and the access records that reached the HEC endpoint.
 */
import http from 'node:http';
import { startPluginProxy } from './plugin-proxy.js';

const servers: http.Server[] = [];
const listen = (port: number, h: http.RequestListener) => new Promise<void>((resolve, reject) => {
  const s = http.createServer(h);
  servers.push(s);
  s.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`port ${port} is taken (${e.code}): the demo uses the ports of Pipy's files`)));
  s.listen(port, '127.0.0.1', () => resolve());
});
const events: unknown[] = [];
await listen(8080, (q, r) => r.end(`hi from 8080 (${q.url})\n`));
await listen(8082, (q, r) => r.end(q.url === '/' || q.url?.startsWith('/?') ? `your ip: ${q.headers['x-forwarded-for']}\n` : `hi from 8082 (${q.url})\n`));
await listen(8081, (q, r) => q.pipe(r));
await listen(8088, (q, r) => {
  let b = '';
  q.on('data', (d) => { b += d; }).on('end', () => { for (const l of b.trim().split('\n')) events.push(JSON.parse(l).event); r.end('{"text":"Success","code":0}'); });
});
const proxy = await startPluginProxy(new URL('.', import.meta.url).pathname);
const call = async (method: string, path: string, body?: string) => {
  const r = await fetch(`http://127.0.0.1:${proxy.port}${path}`, { method, body });
  console.log(`${method} ${path}`.padEnd(24), '→', r.status, (await r.text()).trim());
};
await call('GET', '/hi');
await call('GET', '/hi/there');
await call('POST', '/echo', 'echo me');
await call('GET', '/ip');
await call('GET', '/nowhere');
await new Promise((r) => setTimeout(r, 1500)); // the logger flushes a trickle within a second
console.log(`\n${events.length} access records reached the HEC endpoint; the first:`);
console.log(JSON.stringify(events[0], null, 2).split('\n').slice(0, 12).join('\n'), '\n  ...');
await proxy.close();
for (const s of servers) { s.close(); s.closeAllConnections(); }
