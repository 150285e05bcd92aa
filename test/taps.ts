/** Tap proxies in front of test upstreams: one helper for every test that records through the proxy. */
import { TapCluster, TapProxy, type AnyRecord, type TapClusterOptions } from '../src/index.js';
import { Recorder } from '../src/replay/index.js';

type TapOptions = Partial<ConstructorParameters<typeof TapProxy>[0]>;
type Closers = (() => Promise<unknown> | unknown)[];

/**
 * A tap proxy on a free loopback port in front of `port`; its records go to `onRecord` (default: the
 * returned array). The proxy is closed by `closers` after the test.
 */
export async function tapTo(closers: Closers, port: number, opts: TapOptions = {}, onRecord?: (r: AnyRecord, records: AnyRecord[]) => void) {
  const records: AnyRecord[] = [];
  const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port }, ...opts });
  proxy.on('record', onRecord ? (r) => onRecord(r, records) : (r) => records.push(r));
  const addr = await proxy.listen();
  closers.push(() => proxy.close());
  return { proxy, records, port: addr.port };
}

/** The same over a TapCluster of `workers` processes (records come back to this one). */
export async function clusterTo(closers: Closers, port: number, opts: Partial<TapClusterOptions['proxy']> = {}, workers = 2) {
  const records: AnyRecord[] = [];
  const proxy = new TapCluster({ workers, proxy: { listen: { port: 0 }, upstream: { host: '127.0.0.1', port }, ...opts } });
  proxy.on('record', (r) => records.push(r));
  const addr = await proxy.listen();
  closers.push(() => proxy.close());
  return { proxy, records, port: addr.port };
}

/** What the tests use of either, so one test body runs against both. */
export interface Tap {
  on(event: 'record', fn: (r: AnyRecord) => void): unknown;
  on(event: 'upstreamError', fn: (e: Error & { code?: string }) => void): unknown;
  on(event: 'lines', fn: (text: string, count: number) => void): unknown;
  on(event: 'userError', fn: (e: Error) => void): unknown;
  readonly stats: TapProxy['stats'];
  readonly address: { port: number } | null;
}

/** A proxy's counts now: a TapCluster is asked for them (its `stats` lag by up to 250 ms). */
export const statsOf = async (p: Tap) => (p instanceof TapCluster ? p.refreshStats() : p.stats);

/** Record what `traffic` does through a keepRaw tap proxy into `file`; the originals are the proxy's records. */
export async function recordThrough<T>(file: string, upstreamPort: number, traffic: (port: number) => Promise<T>) {
  const recorder = new Recorder(file);
  const originals: AnyRecord[] = [];
  const proxy = new TapProxy({ listen: { port: 0 }, upstream: { host: '127.0.0.1', port: upstreamPort }, keepRaw: 1 << 20 });
  proxy.on('record', (r) => { originals.push(r); recorder.record(r); });
  const { port } = await proxy.listen();
  const result = await traffic(port);
  // Let the last exchange's record out of the proxy before closing.
  await new Promise((r) => setTimeout(r, 200));
  await proxy.close();
  await recorder.close();
  return { recorder, originals, result };
}
