/**
 * Pipy's port-interceptor controller as a flowtap app: a YAML file of interceptors becomes a PortInterceptor
 * (BPF) plus one tap proxy per intercepted port, composed with the traffic-dump pipeline — so a client that
 * talks to the original port is recorded without knowing it. The file is watched; what changed is applied.
 *
 *   sudo node --import tsx examples/port-interceptor/controller.ts [interceptors.yaml]
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, unwatchFile, watchFile } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { mask, pipeline, tee, type AnyRecord, type TapProxy } from 'flowtap';
import { PortInterceptor } from 'flowtap/bpf';
import type { RecordSink } from 'flowtap/sinks';
import { makeSinks, startService, type OutputConfig, type ServiceConfig } from '../traffic-dump/traffic-dump.js';

export interface Interceptor { name: string; port: number; proxyPort: number; type?: ServiceConfig['type']; protoDir?: string }
export interface InterceptorConfig {
  mode?: 'cgroup' | 'tc' | 'both';
  cgroup?: string;
  /** The proxy's cgroup, where SO_ORIGINAL_DST is answered (default: the controller's own). */
  proxyCgroup?: string;
  interfaces?: string[];
  interceptors: Interceptor[];
  outputs: OutputConfig[];
}

/** Read and check a config file; errors name the file and what is wrong. */
export function loadConfig(file: string): InterceptorConfig {
  const bad = (why: string) => new Error(`${file}: ${why}`);
  let c: InterceptorConfig | null;
  try {
    c = parse(readFileSync(file, 'utf8')) as InterceptorConfig | null;
  } catch (e) {
    throw bad((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message.split('\n')[0]);
  }
  if (!c || typeof c !== 'object') throw bad('expected a mapping with interceptors and outputs');
  if (!Array.isArray(c.interceptors)) throw bad('interceptors must be a list');
  const seen = new Set<number>();
  for (const [k, i] of c.interceptors.entries()) {
    if (!i || !Number.isInteger(i.port) || !Number.isInteger(i.proxyPort)) throw bad(`interceptors[${k}] needs integer port and proxyPort`);
    if (seen.has(i.port)) throw bad(`port ${i.port} is intercepted twice`);
    seen.add(i.port);
    i.name ??= `port-${i.port}`;
    if (i.protoDir) i.protoDir = resolve(dirname(file), i.protoDir);
  }
  c.outputs ??= [{ type: 'jsonl', path: 'records.jsonl' }];
  return c;
}

/** What to stop and start to go from one list of interceptors to another (an edited one counts as both). */
export function diffInterceptors(before: Interceptor[], after: Interceptor[]): { remove: Interceptor[]; add: Interceptor[] } {
  const key = (i: Interceptor) => JSON.stringify([i.port, i.proxyPort, i.type ?? 'auto', i.protoDir ?? null]);
  const old = new Map(before.map((i) => [i.port, i]));
  const next = new Map(after.map((i) => [i.port, i]));
  return {
    remove: before.filter((i) => !next.has(i.port) || key(next.get(i.port)!) !== key(i)),
    add: after.filter((i) => !old.has(i.port) || key(old.get(i.port)!) !== key(i)),
  };
}

export interface Controller {
  interceptor: PortInterceptor;
  sinks: RecordSink[];
  /** Interceptors in force now. */
  readonly active: Interceptor[];
  /** Re-read the file and apply the difference (also done on every change to the file). */
  reload(): Promise<{ added: string[]; removed: string[] }>;
  close(): Promise<void>;
}

export async function startController(file: string, opts: { onRecord?: (r: AnyRecord) => void; log?: (line: string) => void } = {}): Promise<Controller> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const config = loadConfig(file);
  // A cgroup the controller makes is removed again when it stops (if nothing is left in it).
  const madeCgroup = config.mode !== 'tc' && config.cgroup && !existsSync(config.cgroup) ? config.cgroup : null;
  if (madeCgroup) mkdirSync(madeCgroup, { recursive: true });
  const interceptor = PortInterceptor.open({ mode: config.mode ?? 'cgroup', cgroupPath: config.cgroup, proxyCgroupPath: config.proxyCgroup, interfaces: config.interfaces });
  interceptor.on('warning', (w) => log(`warning: ${w}`));
  const sinks = makeSinks(config.outputs);
  const handle = pipeline(mask(), tee(...sinks, ...(opts.onRecord ? [opts.onRecord] : [])));
  const proxies = new Map<number, { proxy: TapProxy; spec: Interceptor }>();

  const start = async (i: Interceptor) => {
    const proxy = await startService({ name: i.name, port: i.proxyPort, originalPort: i.port, listenHost: '::', type: i.type, protoDir: i.protoDir }, handle, (socket) => {
      // Where this client was going (SO_ORIGINAL_DST, or the tc mapping); never a guess.
      const d = interceptor.originalDestination(socket);
      if (!d) throw new Error(`no original destination for ${socket.remoteAddress}:${socket.remotePort}`);
      return { host: d.address, port: d.port };
    });
    proxies.set(i.port, { proxy, spec: i });
    interceptor.add({ originalPort: i.port, port: i.proxyPort });
  };
  const stop = async (i: Interceptor) => {
    interceptor.remove(i.port); // new connections go direct from now on
    const p = proxies.get(i.port);
    proxies.delete(i.port);
    await p?.proxy.close();
  };

  let applying = Promise.resolve({ added: [] as string[], removed: [] as string[] });
  const reload = () => {
    applying = applying.then(async () => {
      let next: InterceptorConfig;
      try {
        next = loadConfig(file);
      } catch (e) {
        log(`not applied: ${(e as Error).message}`); // keep what runs; a half-saved file must not tear it down
        return { added: [], removed: [] };
      }
      const { remove, add } = diffInterceptors([...proxies.values()].map((p) => p.spec), next.interceptors);
      for (const i of remove) { await stop(i); log(`removed ${i.name}: ${i.port} goes direct again`); }
      for (const i of add) { await start(i); log(`intercepting ${i.name}: ${i.port} -> tap proxy ${i.proxyPort} (${i.type ?? 'auto'})`); }
      return { added: add.map((i) => i.name), removed: remove.map((i) => i.name) };
    });
    return applying;
  };

  for (const i of config.interceptors) {
    await start(i);
    log(`intercepting ${i.name}: ${i.port} -> tap proxy ${i.proxyPort} (${i.type ?? 'auto'})`);
  }
  // Polling, not fs.watch: editors replace files, which an inotify watch on the old inode misses.
  watchFile(file, { interval: 300 }, () => { void reload(); });

  return {
    interceptor,
    sinks,
    get active() { return [...proxies.values()].map((p) => p.spec); },
    reload,
    async close() {
      unwatchFile(file);
      await applying;
      interceptor.close();
      await Promise.all([...proxies.values()].map((p) => p.proxy.close()));
      await Promise.all(sinks.map((s) => s.close()));
      if (madeCgroup) try { rmdirSync(madeCgroup); } catch { /* processes still in it: theirs to move */ }
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const file = resolve(process.argv[2] ?? new URL('./interceptors.yaml', import.meta.url).pathname);
  try {
    const c = await startController(file);
    console.log(`watching ${file}; Ctrl-C to stop (everything is detached on exit)`);
    const stop = () => { void c.close().then(() => process.exit(0)); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (e) {
    console.error(`flowtap port interceptor: ${(e as Error).message}`);
    process.exit(1);
  }
}
