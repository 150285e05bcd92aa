/**
 * `npm run demo:rest2dubbo`: a Book provider (Java's in test/java when a JDK and Hessian are installed,
 * else flowtap's encoder), rest2dubbo in front of it with its default config, and a few calls: a book, an
 * unknown id (500 with the Java exception), bad JSON (400), a wrong method (405), an unknown path (404).
 */
import { startRest2Dubbo, type AppConfig } from './rest2dubbo.js';
import { startBookProvider } from './book-provider.js';
import { readFileSync } from 'node:fs';

const provider = await startBookProvider();
const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url).pathname, 'utf8')) as AppConfig;
const records: string[] = [];
const { server, gateway, port } = await startRest2Dubbo({ ...config, listen: 0, upstream: `127.0.0.1:${provider.port}` }, (l) => records.push(l));
await gateway.client.ready();
const call = async (method: string, path: string, body?: string) => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
  console.log(`${method} ${path} ${body ?? ''}`.padEnd(44), '→', r.status, await r.text());
};
await call('POST', '/v1/getBook', '{"id": 1}');
await call('GET', '/v1/books/3');
await call('POST', '/v1/getBook', '{"id": 999999}');
await call('POST', '/v1/getBook', '{"id": ');
await call('GET', '/v1/getBook');
await call('POST', '/v2/nothing', '{}');
console.log(`\n${records.length} exchange records (HTTP and Dubbo, paired by trace id)`);
server.close();
gateway.close();
provider.server.close();
