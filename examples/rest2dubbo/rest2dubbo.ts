/**
 * rest2dubbo as a flowtap application (Pipy's traffic-interceptor/rest2dubbo, done right): an HTTP server
 * on Rest2Dubbo from flowtap/gateway, configured by config.json. Its default config reproduces Pipy's demo:
 * `POST /v1/getBook` with `{"id": 1}` calls io.flomesh.demo.api.BookWarehouseService:v1 getBook(String).
 *
 *   node --import tsx examples/rest2dubbo/rest2dubbo.ts [--config FILE] [--listen PORT] [--upstream HOST:PORT] [--records FILE]
 */
import { appendFileSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Rest2Dubbo, type Rest2DubboRoute } from 'flowtap/gateway';

export interface AppConfig { listen: number; upstream: string; timeout?: number; connections?: number; routes: Rest2DubboRoute[] }

export async function startRest2Dubbo(config: AppConfig, onRecord?: (line: string) => void): Promise<{ server: http.Server; gateway: Rest2Dubbo; port: number }> {
  const m = /^(.+):(\d+)$/.exec(config.upstream);
  if (!m) throw new Error(`upstream must be HOST:PORT, not "${config.upstream}"`);
  const gateway = new Rest2Dubbo({ routes: config.routes, upstream: { host: m[1], port: Number(m[2]), timeout: config.timeout, connections: config.connections } });
  if (onRecord) gateway.on('record', (h, d) => { onRecord(JSON.stringify(h)); if (d) onRecord(JSON.stringify(d)); });
  const server = http.createServer(gateway.handler);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(config.listen, '127.0.0.1', () => resolve()); });
  return { server, gateway, port: (server.address() as { port: number }).port };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { values: v } = parseArgs({ options: { config: { type: 'string' }, listen: { type: 'string' }, upstream: { type: 'string' }, records: { type: 'string' } } });
  const config = JSON.parse(readFileSync(v.config ?? new URL('./config.json', import.meta.url).pathname, 'utf8')) as AppConfig;
  if (v.listen) config.listen = Number(v.listen);
  if (v.upstream) config.upstream = v.upstream;
  const records = v.records;
  const { port } = await startRest2Dubbo(config, records ? (line) => appendFileSync(records, line + '\n') : undefined);
  console.log(`rest2dubbo: listening on ${port}, calling Dubbo at ${config.upstream}`);
}
