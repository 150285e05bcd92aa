/**
 * Pipy's traffic-dump as a flowtap app: a config of services (listen `port`, forward to `originalPort`,
 * protocol `type`) becomes one tap proxy per service; every record is masked and written to the outputs.
 *
 *   node --import tsx examples/traffic-dump/traffic-dump.ts examples/traffic-dump/config.json
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadPlugins, mask, pipeline, ProtoRegistry, tee, TapProxy, type AnyRecord, type PluginFile, type PluginHost, type TapProxyOptions } from 'flowtap';
import { ClickHouseSink, ElasticsearchSink, JsonlSink, SplunkSink, type RecordSink } from 'flowtap/sinks';

export interface ServiceConfig {
  name: string;
  port: number;
  originalPort: number;
  originalHost?: string;
  /** Where the tap proxy listens (default 127.0.0.1; '::' for both IPv4 and IPv6). */
  listenHost?: string;
  type?: 'http' | 'dubbo' | 'grpc' | 'auto';
  /** gRPC: a directory of .proto files, so records carry decoded messages instead of a schema-less dump. */
  protoDir?: string;
}
export type OutputConfig =
  | { type: 'jsonl'; path: string }
  | { type: 'elasticsearch'; url: string }
  | { type: 'splunk'; url: string; token: string }
  | { type: 'clickhouse'; url: string; table?: string; createTable?: boolean };
export interface TrafficDumpConfig {
  services: ServiceConfig[];
  outputs: OutputConfig[];
  /** Plugin files (docs/plugins.md): a path, or { path, isolate: 'worker' }. */
  plugins?: (string | PluginFile)[];
}

export interface TrafficDump {
  proxies: TapProxy[];
  sinks: RecordSink[];
  close(): Promise<void>;
}

const PROTOCOL = { http: 'http1', dubbo: 'dubbo', grpc: 'http2', auto: 'auto' } as const;

/** The outputs of a config as sinks. */
export function makeSinks(outputs: OutputConfig[]): RecordSink[] {
  return outputs.map((o) => {
    switch (o.type) {
      case 'jsonl': return new JsonlSink({ path: o.path });
      case 'elasticsearch': return new ElasticsearchSink({ url: o.url });
      case 'splunk': return new SplunkSink({ url: o.url, token: o.token });
      case 'clickhouse': return new ClickHouseSink({ url: o.url, table: o.table, createTable: o.createTable });
    }
  });
}

/**
 * One service's tap proxy, listening and sending its records to `handle`. `upstream` replaces the fixed
 * originalHost:originalPort — the port interceptor passes one that asks each connection where it was going.
 */
export async function startService(s: ServiceConfig, handle: (r: AnyRecord) => void, upstream?: TapProxyOptions['upstream'],
  plugins?: PluginHost): Promise<TapProxy> {
  const proxy = new TapProxy({
    listen: { host: s.listenHost, port: s.port },
    upstream: upstream ?? { host: s.originalHost ?? '127.0.0.1', port: s.originalPort },
    protocol: PROTOCOL[s.type ?? 'auto'],
    protocols: plugins?.allProtocols,
    protos: s.protoDir ? ProtoRegistry.load(s.protoDir) : undefined,
  });
  proxy.on('record', handle);
  await proxy.listen();
  return proxy;
}

export async function startTrafficDump(config: TrafficDumpConfig, onRecord?: (r: AnyRecord) => void): Promise<TrafficDump> {
  const sinks = makeSinks(config.outputs);
  const plugins = config.plugins?.length ? await loadPlugins(config.plugins) : undefined;
  const handle = pipeline(...(plugins ? [plugins.stage()] : []), mask(), tee(...sinks, ...(onRecord ? [onRecord] : [])));
  const proxies: TapProxy[] = [];
  for (const s of config.services) proxies.push(await startService(s, handle, undefined, plugins));
  return {
    proxies,
    sinks,
    async close() {
      await Promise.all(proxies.map((p) => p.close()));
      await plugins?.close();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const file = process.argv[2] ?? new URL('./config.json', import.meta.url).pathname;
  const config = JSON.parse(readFileSync(file, 'utf8')) as TrafficDumpConfig;
  // Schemas sit beside the config, wherever it is run from; outputs land where the user runs it.
  for (const s of config.services) if (s.protoDir) s.protoDir = resolve(dirname(file), s.protoDir);
  config.plugins = config.plugins?.map((p) => (typeof p === 'string' ? resolve(dirname(file), p) : { ...p, path: resolve(dirname(file), p.path) }));
  const dump = await startTrafficDump(config);
  for (const s of config.services) console.log(`${s.name}: listening on ${s.port}, forwarding to ${s.originalHost ?? '127.0.0.1'}:${s.originalPort}`);
  process.once('SIGINT', () => { void dump.close().then(() => process.exit(0)); });
}
